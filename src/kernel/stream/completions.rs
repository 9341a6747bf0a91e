//! Requests to complete once the stream path has let go of its locks, in the order they finished.
//!
//! Completing runs other drivers' completion routines, which must not find ksring's spin locks
//! held: a kernel client may send its next request from its completion routine, straight back
//! into ksring's dispatch on this thread. The list is intrusive (linked through
//! `Tail.Overlay.DriverContext[3]`, which nothing else uses), so collecting costs no allocation.
//!
//! The same slot marks an IRP a pump is releasing to its queue ([`arm`], [`disarm`]): a cancel
//! routine that runs for it meanwhile — inline in `KsReleaseIrpOnCancelableQueue`, under the
//! pump's lock — leaves the completion to the pump ([`defer_cancel`]) instead of completing there.
//!
//! A list is only had through [`Completions::scope`], which completes what it collected after its
//! closure returns: a pump takes its locks inside the closure, so they are let go first.

use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, Ordering};

use ksabi::{IO_NO_INCREMENT, IRP, NTSTATUS};

use super::StreamIrp;
use crate::kernel::nt::tail_overlay;
use crate::sys;

/// A FIFO of requests with their final status and information already set, completed when the
/// [`Completions::scope`] that made the list ends.
pub struct Completions {
    head: *mut IRP,
    tail: *mut IRP,
}

impl Completions {
    /// Runs `f` with an empty list, then completes what it collected, oldest first. Lock guards
    /// taken inside `f` are let go before: `R: 'static` keeps them from escaping through it.
    pub fn scope<R: 'static>(f: impl FnOnce(&mut Self) -> R) -> R {
        let mut done = Self { head: null_mut(), tail: null_mut() };
        f(&mut done)
    }

    /// Queues `irp` for completion with `status` and `information`.
    pub(super) fn push(&mut self, irp: StreamIrp, status: NTSTATUS, information: usize) {
        let mut irp = irp.into_owned();
        let io = irp.io_status_mut();
        io.Status = status;
        io.Information = information;
        let irp = irp.into_non_null().as_ptr();
        // SAFETY: the IRP's driver context is ours while we own it (given to us with the
        // `StreamIrp`: owned outright, off every queue).
        unsafe { (*tail_overlay(irp)).DriverContext[3] = null_mut() };
        if self.tail.is_null() {
            self.head = irp;
        } else {
            // SAFETY: the previous tail is an IRP of this list.
            unsafe { (*tail_overlay(self.tail)).DriverContext[3] = irp.cast() };
        }
        self.tail = irp;
    }

    /// Completes every IRP of the list, oldest first.
    fn complete_all(&mut self) {
        let mut irp = self.head;
        self.head = null_mut();
        self.tail = null_mut();
        while !irp.is_null() {
            // SAFETY: an IRP of this list; read its link before giving it up.
            let next = unsafe { (*tail_overlay(irp)).DriverContext[3] }.cast::<IRP>();
            // SAFETY: ours to complete, exactly once.
            unsafe { sys::IofCompleteRequest(irp, IO_NO_INCREMENT) };
            irp = next;
        }
    }
}

impl Drop for Completions {
    fn drop(&mut self) {
        self.complete_all();
    }
}

/// The slot's value while a pump releases the IRP.
const RELEASING: *mut c_void = core::ptr::without_provenance_mut(1);
/// The slot's value once a cancel routine has left the completion to the pump.
const DEFERRED: *mut c_void = core::ptr::without_provenance_mut(2);

/// The IRP's `DriverContext[3]`, shared between a pump and a cancel routine.
///
/// # Safety
/// `irp` is a valid stream IRP of this driver, not yet completed.
unsafe fn marker<'a>(irp: *mut IRP) -> &'a AtomicPtr<c_void> {
    // SAFETY: the caller's valid IRP; only the field's address is taken.
    let slot = unsafe { &raw mut (*tail_overlay(irp)).DriverContext[3] };
    // SAFETY: the slot is an aligned pointer-sized field of the IRP, which outlives this use;
    // every access to it while the IRP is queued goes through this atomic view.
    unsafe { AtomicPtr::from_ptr(slot) }
}

/// Clears the slot of a new stream IRP, before it is queued.
///
/// # Safety
/// As [`marker`], and the caller owns the IRP.
pub(super) unsafe fn clear(irp: *mut IRP) {
    // SAFETY: as above.
    unsafe { marker(irp) }.store(null_mut(), Ordering::SeqCst);
}

/// Marks an acquired IRP as being released by the caller.
///
/// # Safety
/// As [`marker`]; the caller acquired the IRP from its queue.
pub(super) unsafe fn arm(irp: *mut IRP) {
    // SAFETY: as above.
    unsafe { marker(irp) }.store(RELEASING, Ordering::SeqCst);
}

/// Ends the release: `true` if a cancel routine ran for the IRP meanwhile and left its
/// completion to the caller (the IRP is then off its queue and the caller's to complete).
///
/// # Safety
/// As [`marker`]; the caller armed the IRP and still holds the lock its queue's pumps take.
pub(super) unsafe fn disarm(irp: *mut IRP) -> bool {
    // SAFETY: as above.
    unsafe { marker(irp) }.swap(null_mut(), Ordering::SeqCst) == DEFERRED
}

/// Called by the cancel routine after unlinking the IRP: `true` if a pump is releasing it, which
/// now completes it once its locks are dropped; `false` if the cancel routine completes it.
///
/// # Safety
/// As [`marker`]; the cancel routine holds the IRP, unlinked.
pub(super) unsafe fn defer_cancel(irp: *mut IRP) -> bool {
    // SAFETY: as above.
    unsafe { marker(irp) }.compare_exchange(RELEASING, DEFERRED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
}
