//! A spin lock that owns its data. (The other synchronisation tool, the KS cancel-safe queue of
//! stream requests, is [`super::stream::StreamQueue`].)

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

use ksabi::{KIRQL, KSPIN_LOCK};

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
