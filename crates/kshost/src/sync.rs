//! Locks that outlive a panic: a test that fails while kshost holds a lock must not make every
//! later kshost call fail too, so a poisoned lock is simply taken over.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `Mutex::lock` without poisoning.
pub(crate) trait Locked<T> {
    /// Locks, taking over a lock a panicking thread left behind.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
