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
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::Ordering;

use ksabi::{IRP, NTSTATUS};

use super::StreamIrp;
use crate::kernel::nt::{ContextSlot, OwnedIrp};

/// A FIFO of requests with their final status and information already set, completed when the
/// [`Completions::scope`] that made the list ends.
pub struct Completions {
    head: Option<NonNull<IRP>>,
    tail: Option<NonNull<IRP>>,
}

impl Completions {
    /// Runs `f` with an empty list, then completes what it collected, oldest first. Lock guards
    /// taken inside `f` are let go before: `R: 'static` keeps them from escaping through it.
    pub fn scope<R: 'static>(f: impl FnOnce(&mut Self) -> R) -> R {
        let mut done = Self { head: None, tail: None };
        f(&mut done)
    }

    /// Queues `irp` for completion with `status` and `information`.
    pub(super) fn push(&mut self, irp: StreamIrp, status: NTSTATUS, information: usize) {
        let mut irp = irp.into_owned();
        let io = irp.io_status_mut();
        io.Status = status;
        io.Information = information;
        irp.context(ContextSlot::Link).store(null_mut(), Ordering::Relaxed);
        let irp = irp.into_non_null();
        if let Some(tail) = self.tail {
            // SAFETY: the previous tail, an IRP of this list: ours until completed.
            unsafe { OwnedIrp::new(tail) }
                .context(ContextSlot::Link)
                .store(irp.as_ptr().cast(), Ordering::Relaxed);
        } else {
            self.head = Some(irp);
        }
        self.tail = Some(irp);
    }

    /// Completes every IRP of the list, oldest first.
    fn complete_all(&mut self) {
        let mut next = self.head.take();
        self.tail = None;
        while let Some(raw) = next {
            // SAFETY: an IRP of this list, ours to complete (once: it leaves the list here).
            let irp = unsafe { OwnedIrp::new(raw) };
            next = NonNull::new(irp.context(ContextSlot::Link).load(Ordering::Relaxed).cast::<IRP>());
            irp.complete_as_set();
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

/// Clears the marker of a new stream request, before it is queued.
pub(super) fn clear(irp: &OwnedIrp) {
    irp.context(ContextSlot::Link).store(null_mut(), Ordering::SeqCst);
}

/// Marks an acquired request as being released by the caller.
pub(super) fn arm(irp: &OwnedIrp) {
    irp.context(ContextSlot::Link).store(RELEASING, Ordering::SeqCst);
}

/// Ends the release: `true` if a cancel routine ran for the request meanwhile and left its
/// completion to the caller (it is then off its queue and the caller's to complete). The caller
/// armed it and still holds the lock its queue's pumps take.
pub(super) fn disarm(irp: &OwnedIrp) -> bool {
    irp.context(ContextSlot::Link).swap(null_mut(), Ordering::SeqCst) == DEFERRED
}

/// Called by the cancel routine after unlinking the request: `true` if a pump is releasing it,
/// which now completes it once its locks are dropped; `false` if the cancel routine completes it.
pub(super) fn defer_cancel(irp: &OwnedIrp) -> bool {
    irp.context(ContextSlot::Link)
        .compare_exchange(RELEASING, DEFERRED, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
}
