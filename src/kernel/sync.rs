//! The two synchronisation tools the driver uses: a spin lock that owns its data, and a KS
//! cancel-safe IRP queue that knows how many IRPs it holds.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU32, Ordering};

use ksabi::{
    IRP, KIRQL, KSPIN_LOCK, KsAcquireOnly, KsListEntryHead, KsListEntryTail, LIST_ENTRY, PDRIVER_CANCEL,
};

use crate::sys;

/// A `KSPIN_LOCK` and the data it guards. Locking raises to `DISPATCH_LEVEL`; the guard restores
/// the previous IRQL when dropped. Not re-entrant: the driver's lock order is written where the
/// locks are declared (`filter::Filter`).
pub struct SpinLock<T> {
    lock: UnsafeCell<KSPIN_LOCK>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, which exists only while the lock is held, so
// at most one thread touches it at a time; `T: Send` lets it be touched from any thread.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the value (the lock word is plain data while unlocked).
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        Self { lock: UnsafeCell::new(0), value: UnsafeCell::new(value) }
    }

    /// Spins until the lock is ours (`KeAcquireSpinLockRaiseToDpc`).
    pub fn lock(&self) -> SpinGuard<'_, T> {
        // SAFETY: the lock word lives as long as `self`; KS and the kernel only spin on it.
        let irql = unsafe { sys::KeAcquireSpinLockRaiseToDpc(self.lock.get()) };
        SpinGuard { lock: self, irql }
    }
}

/// Access to a [`SpinLock`]'s value while it is held.
pub struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
    irql: KIRQL,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held: no other reference to the value.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: acquired in `SpinLock::lock` by this thread; restores the IRQL it raised from.
        unsafe { sys::KeReleaseSpinLock(self.lock.lock.get(), self.irql) };
    }
}

/// A KS cancelable IRP queue (`KsAddIrpToCancelableQueue` and friends) with its own spin lock and
/// a count of the IRPs on it.
///
/// The count lets one side of the stream ask "is anyone waiting on the other side?" without
/// taking the other side's locks. It is raised before an IRP goes on the queue and lowered after
/// it comes off (removal or cancel), so it never undercounts an IRP that is on the queue.
/// Must be initialised in place ([`IrpQueue::init`]): the list head points at itself.
pub struct IrpQueue {
    head: UnsafeCell<LIST_ENTRY>,
    lock: UnsafeCell<KSPIN_LOCK>,
    count: AtomicU32,
}

// SAFETY: the list and the lock word are only touched by ks.sys' queue routines, which take the lock.
unsafe impl Sync for IrpQueue {}
// SAFETY: see `Sync`; an initialised queue is never moved (it lives in pool memory).
unsafe impl Send for IrpQueue {}

impl IrpQueue {
    /// An empty queue, to be initialised in place before use.
    pub const fn new() -> Self {
        Self {
            head: UnsafeCell::new(LIST_ENTRY { Flink: null_mut(), Blink: null_mut() }),
            lock: UnsafeCell::new(0),
            count: AtomicU32::new(0),
        }
    }

    /// `InitializeListHead` at the queue's final address.
    ///
    /// # Safety
    /// `self` must not move afterwards, and nothing else may use the queue yet.
    pub unsafe fn init(&self) {
        // SAFETY: the list head, at its final address, not yet shared.
        unsafe { crate::kernel::nt::init_list_head(self.head.get()) };
    }

    /// IRPs on the queue (including ones a pump holds acquired).
    pub fn len(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }

    /// Puts a pending IRP at the tail, cancelable through `cancel`.
    ///
    /// # Safety
    /// `irp` is a valid IRP the caller owns and has marked pending; `cancel` must call
    /// [`IrpQueue::cancelled`] for IRPs of this queue.
    pub unsafe fn push(&self, irp: *mut IRP, cancel: PDRIVER_CANCEL) {
        self.count.fetch_add(1, Ordering::SeqCst);
        // SAFETY: an initialised queue and its lock; the IRP is ours to queue.
        unsafe {
            sys::KsAddIrpToCancelableQueue(self.head.get(), self.lock.get(), irp, KsListEntryTail, cancel);
        };
    }

    /// Acquires the IRP at the head without unlinking it: its cancel routine is cleared, so it stays
    /// ours until [`IrpQueue::release`] or [`IrpQueue::remove`].
    pub fn acquire_first(&self) -> Option<*mut IRP> {
        // SAFETY: an initialised queue and its lock.
        let irp = unsafe {
            sys::KsRemoveIrpFromCancelableQueue(
                self.head.get(),
                self.lock.get(),
                KsListEntryHead,
                KsAcquireOnly,
            )
        };
        (!irp.is_null()).then_some(irp)
    }

    /// Gives an acquired IRP back, cancelable again (cancelled now if a cancel came meanwhile).
    ///
    /// # Safety
    /// `irp` was acquired from this queue and not yet released or removed.
    #[allow(clippy::unused_self)] // the queue is implied by the IRP; the call reads as queue.release
    pub unsafe fn release(&self, irp: *mut IRP, cancel: PDRIVER_CANCEL) {
        // SAFETY: an acquired IRP of this queue.
        unsafe { sys::KsReleaseIrpOnCancelableQueue(irp, cancel) };
    }

    /// Unlinks an acquired IRP: the caller now owns it outright and must complete it.
    ///
    /// # Safety
    /// `irp` was acquired from this queue and not yet released or removed.
    pub unsafe fn remove(&self, irp: *mut IRP) {
        // SAFETY: an acquired IRP of this queue.
        unsafe { sys::KsRemoveSpecificIrpFromCancelableQueue(irp) };
        self.count.fetch_sub(1, Ordering::SeqCst);
    }

    /// Called by the queue's cancel routine once it has taken an IRP off the queue.
    pub fn cancelled(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }

    /// `KsCancelIo`: cancels every IRP on the queue (acquired ones when they are released).
    pub fn cancel_all(&self) {
        // SAFETY: an initialised queue and its lock.
        unsafe { sys::KsCancelIo(self.head.get(), self.lock.get()) };
    }
}
