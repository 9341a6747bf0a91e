//! A spin lock that owns its data, and [`Exclusive`]: one holder at a time, checked, never
//! waited for. (The KS cancel-safe queue of stream requests is [`super::stream::StreamQueue`].)

use core::cell::UnsafeCell;
use core::marker::{PhantomData, PhantomPinned};
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};

use ksabi::{
    DISPATCHER_HEADER, Executive, KEVENT, KIRQL, KSPIN_LOCK, KernelMode, LIST_ENTRY, NotificationEvent,
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
        // SAFETY: the lock is held from here until the guard drops: no other reference to the
        // value exists meanwhile.
        let value = unsafe { &mut *self.value.get() };
        SpinGuard { lock: &self.lock, value, irql, not_send: PhantomData }
    }
}

/// Access to a [`SpinLock`]'s value while it is held. Not `Send`: the lock is released, and the
/// IRQL restored, on the processor that took it.
pub struct SpinGuard<'a, T> {
    lock: &'a UnsafeCell<KSPIN_LOCK>,
    value: &'a mut T,
    irql: KIRQL,
    not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard gives `&T` only: as `&T` itself, sound to share when `T: Sync`.
unsafe impl<T: Sync> Sync for SpinGuard<'_, T> {}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: acquired in `SpinLock::lock` by this thread; restores the IRQL it raised from.
        unsafe { sys::KeReleaseSpinLock(self.lock.get(), self.irql) };
    }
}

/// A value one holder at a time may use, checked with an atomic flag instead of a lock — for
/// state a protocol already gives to one thread at a time (a work routine's, a request slot's
/// between its sends), so that a broken protocol is a refused claim, not a data race. Nothing
/// ever waits for it.
pub struct Exclusive<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and the flag lets at most one exist.
unsafe impl<T: Send> Sync for Exclusive<T> {}

impl<T> Exclusive<T> {
    /// Unclaimed, holding `value`.
    pub const fn new(value: T) -> Self {
        Self { held: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// The value, if nobody holds it (nor a request it was lent to).
    pub fn claim(&self) -> Option<ExclusiveGuard<'_, T>> {
        // (`then`, not `then_some`: a guard made and dropped on failure would release the holder's.)
        let claimed = !self.held.swap(true, Ordering::Acquire);
        claimed.then(|| ExclusiveGuard {
            cell: self,
            // SAFETY: the flag is ours from here until the guard drops (or lends the value): no
            // other reference to the value exists meanwhile.
            value: unsafe { &mut *self.value.get() },
        })
    }

    /// Ends the loan [`ExclusiveGuard::lend`] made.
    ///
    /// # Safety
    /// The value was lent, and whoever it was lent to is done with it.
    pub(in crate::kernel) unsafe fn end_loan(&self) {
        self.held.store(false, Ordering::Release);
    }
}

/// The one access to an [`Exclusive`]'s value (`Send`/`Sync` as `&mut T` is).
pub struct ExclusiveGuard<'a, T> {
    cell: &'a Exclusive<T>,
    value: &'a mut T,
}

impl<'a, T> ExclusiveGuard<'a, T> {
    /// The cell the guard holds.
    pub(in crate::kernel) fn cell(&self) -> &'a Exclusive<T> {
        self.cell
    }

    /// Keeps the value claimed after the guard and returns the cell and the value's address, for
    /// a request that uses it until [`Exclusive::end_loan`].
    pub(in crate::kernel) fn lend(self) -> (&'a Exclusive<T>, *mut T) {
        let cell = self.cell;
        let value = core::ptr::from_mut(self.value);
        core::mem::forget(self);
        (cell, value)
    }
}

impl<T> Deref for ExclusiveGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for ExclusiveGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T> Drop for ExclusiveGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.held.store(false, Ordering::Release);
    }
}

/// A kernel notification event (`KEVENT`): set once something is done, waited on at
/// `PASSIVE_LEVEL`. Its wait list points at itself, so it is initialised where it stays
/// ([`Event::init`] takes it pinned); until then, setting and waiting do nothing.
pub struct Event {
    raw: UnsafeCell<KEVENT>,
    ready: AtomicBool,
    _pinned: PhantomPinned,
}

// SAFETY: a kernel event is made to be set and waited on from any thread; the flag is atomic.
unsafe impl Send for Event {}
// SAFETY: as above.
unsafe impl Sync for Event {}

impl Event {
    /// An event not yet initialised.
    pub const fn new() -> Self {
        let empty = LIST_ENTRY { Flink: core::ptr::null_mut(), Blink: core::ptr::null_mut() };
        let header = DISPATCHER_HEADER { Lock: 0, SignalState: 0, WaitListHead: empty };
        Self {
            raw: UnsafeCell::new(KEVENT { Header: header }),
            ready: AtomicBool::new(false),
            _pinned: PhantomPinned,
        }
    }

    /// `KeInitializeEvent` (a notification event, not set) at its final address.
    pub fn init(self: Pin<&Self>) {
        if self.ready.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: the event at an address it keeps (pinned), not yet used by anyone.
        unsafe { sys::KeInitializeEvent(self.raw.get(), NotificationEvent, 0) };
        self.ready.store(true, Ordering::Release);
    }

    /// Whether `init` ran (else the event is not used: a driver bug, caught in debug builds).
    fn ready(&self, what: &str) -> bool {
        let ready = self.ready.load(Ordering::Acquire);
        debug_assert!(ready, "an event {what} before its init");
        ready
    }

    /// `KeSetEvent`: wakes its waiters (at most `DISPATCH_LEVEL`).
    pub fn set(&self) {
        if self.ready("set") {
            // SAFETY: initialised at its final address (the flag says so).
            unsafe { sys::KeSetEvent(self.raw.get(), 0, 0) };
        }
    }

    /// `KeWaitForSingleObject`, at `PASSIVE_LEVEL`, until it is set.
    pub fn wait(&self) {
        if self.ready("waited on") {
            // SAFETY: as in `set`.
            unsafe {
                sys::KeWaitForSingleObject(
                    self.raw.get().cast(),
                    Executive,
                    KernelMode,
                    0,
                    core::ptr::null_mut(),
                )
            };
        }
    }
}
