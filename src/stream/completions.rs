//! IRPs to complete once the stream path has let go of its locks, in the order they finished.
//!
//! Completing runs other drivers' completion routines, which must not find ksring's spin locks
//! held. The list is intrusive (linked through `Tail.Overlay.DriverContext[3]`, which nothing else
//! uses), so collecting costs no allocation.

use core::ptr::null_mut;

use ksabi::{IO_NO_INCREMENT, IRP, NTSTATUS};

use crate::nt::tail_overlay;
use crate::sys;

/// A FIFO of IRPs with their final status and information already set.
pub struct Completions {
    head: *mut IRP,
    tail: *mut IRP,
}

impl Completions {
    /// An empty list.
    pub const fn new() -> Self {
        Self { head: null_mut(), tail: null_mut() }
    }

    /// Queues `irp` for completion with `status` and `information`.
    ///
    /// # Safety
    /// The caller owns `irp` outright (off every queue) and gives it up.
    pub unsafe fn push(&mut self, irp: *mut IRP, status: NTSTATUS, information: usize) {
        // SAFETY: the caller's IRP.
        unsafe {
            (*irp).IoStatus.Status = status;
        }
        // SAFETY: as above.
        unsafe {
            (*irp).IoStatus.Information = information;
        }
        // SAFETY: the IRP's driver context is ours while we own it.
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
    pub fn complete_all(&mut self) {
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
