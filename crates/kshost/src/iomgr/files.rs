//! File objects and their close: dropping a reference, `IRP_MJ_CLEANUP` when the last handle
//! goes, `IRP_MJ_CLOSE` when the last reference goes, and the check that no driver IRP to the file
//! is still in flight when it is freed.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ksabi::{FILE_OBJECT, IRP, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, PASSIVE_LEVEL, STATUS_SUCCESS};

use super::devices::related_device;
use super::requests::{IrpSpec, Request, issue, wait_or_report};
use crate::machine::{MachineInner, violation};
use crate::objects::{FileBox, IrpBox, Origin};
use crate::sync::Locked;
use crate::verifier::Rule;

/// Drops a reference to a file object; at the last one, sends `IRP_MJ_CLOSE`. The close runs at
/// `PASSIVE_LEVEL` outside any driver call: inline when the caller is a client call (`at_passive`),
/// otherwise on a system worker thread (as Windows finishes completions in an APC later).
///
/// # Safety
/// `file` is a kshost file object (a `FileBox` from the create path) on which the caller holds a
/// reference (a handle's, an IRP's, a `Referenced`, an `ObReferenceObject`), and this call gives
/// that reference up: the caller does not use `file` afterwards unless it holds another one.
pub(crate) unsafe fn release_file(m: &Arc<MachineInner>, file: *mut FILE_OBJECT, at_passive: bool) {
    // SAFETY: the caller gives up one of its references, so the box is alive until the decrement;
    // only the record is referenced.
    let f = unsafe { FileBox::meta_of(file) };
    if f.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    if at_passive && crate::irql::current() == PASSIVE_LEVEL {
        // SAFETY: the decrement above dropped the last reference, and only the thread that drops
        // it gets here: this is the one close, and nothing else uses the object any more.
        unsafe { close_file(m, file) };
    } else {
        // SAFETY: as above: the last reference is gone and this is the one close.
        unsafe { crate::worker::defer(m, file as usize) };
    }
}

/// Sends `IRP_MJ_CLOSE` for a file object nothing references any more, then frees it.
///
/// # Safety
/// `file` is a kshost file object whose last reference [`release_file`] has just dropped, and
/// this is its one close: nothing uses it meanwhile but the close IRP sent here, and it is freed
/// on return.
pub(crate) unsafe fn close_file(m: &Arc<MachineInner>, file: *mut FILE_OBJECT) {
    // SAFETY: the closer frees the box below and nothing else references it any more; only the
    // record is referenced (the close IRP passes the `FILE_OBJECT` to the driver meanwhile).
    let f = unsafe { FileBox::meta_of(file) };
    if f.created.load(Ordering::Acquire) && !f.closed.swap(true, Ordering::AcqRel) {
        // SAFETY: a live file object (freed only at the end of this function).
        let device = unsafe { related_device(file) };
        // The close IRP holds no reference of its own on the object it closes.
        let spec = IrpSpec::no_parameters(IRP_MJ_CLOSE, 0, file, ksabi::KernelMode, STATUS_SUCCESS);
        f.refs.fetch_add(1, Ordering::AcqRel); // balanced by the close IRP's completion
        let request = Request::new();
        // SAFETY: `device` is the top of the stack the file was opened on, a device of this live
        // machine; the close IRP's file object is alive until this function frees it, after the
        // wait (the count taken just above keeps a completion from closing it a second time).
        let _ = unsafe { issue(m, device, spec, &request, false) };
        wait_or_report(m, &request, "IRP_MJ_CLOSE");
        f.refs.fetch_sub(1, Ordering::AcqRel);
    }
    check_no_irps_in_flight(m, file);
    m.objects.locked().files.remove(&(file as usize));
    // SAFETY: allocated with Box::into_raw by the create path; nothing references it now.
    drop(unsafe { Box::from_raw(file.cast::<FileBox>()) });
}

/// A file object may go only when no IRP addressed to it is still in a driver: the driver's own
/// IRPs (`IoAllocateIrp`) hold no reference, so a driver that drops its reference too early is
/// caught here.
///
/// `file` is only compared, never read, so this stays safe to call: the IRPs it reads come from
/// the registry, under its lock.
fn check_no_irps_in_flight(m: &MachineInner, file: *mut FILE_OBJECT) {
    // The registry stays locked while the IRPs are looked at: an IRP leaves it before it is freed
    // (`release_irp`), so none of these can be freed meanwhile by another thread.
    let in_flight: Vec<usize> = m
        .objects
        .locked()
        .irps
        .iter()
        .copied()
        .filter(|&p| {
            // Only the record is referenced (its atomics and its `origin`, immutable since the
            // IRP's allocation), through a raw projection: the IRP and its stack belong to
            // whichever driver has it, which may be writing them on another thread right now, so a
            // reference covering them would be undefined behaviour here even though only atomics
            // are read. Nor does the owner's side ever hold a `&mut` over the record: `IrpBox::of`
            // gives it the IRP and stack mutably but the record only shared (`IrpView`).
            // SAFETY: the IRP is in the registry, which stays locked while this runs, so it cannot
            // be freed (`release_irp` takes it out of the registry before freeing it).
            let meta = unsafe { IrpBox::meta_of(p as *mut IRP) };
            matches!(meta.origin, Origin::Driver)
                && !meta.driver_owned.load(Ordering::Acquire)
                && meta.sent_to.load(Ordering::Acquire) == file
        })
        .collect();
    for p in in_flight {
        violation(
            Rule::FileClosedWithIrpsInFlight,
            format!("file object {file:p} closed while the driver's IRP {p:#x} to it is in flight"),
        );
    }
}

/// Sends `IRP_MJ_CLEANUP`: the last handle of the file object was closed.
///
/// # Safety
/// `file` is a kshost file object kept alive for the call by a reference the caller holds (the
/// closing handle's, given up only after this returns).
pub(crate) unsafe fn cleanup_file(m: &Arc<MachineInner>, file: *mut FILE_OBJECT) {
    // Sent whether or not the driver handles it (the default slot fails it; the result is not
    // used), as the I/O manager does.
    // SAFETY: the closing handle's reference keeps the file object alive for the call.
    let device = unsafe { related_device(file) };
    let spec = IrpSpec::no_parameters(IRP_MJ_CLEANUP, 0, file, ksabi::UserMode, STATUS_SUCCESS);
    let request = Request::new();
    // SAFETY: `device` is the top of the file's stack, a device of this live machine; the
    // caller's reference keeps the file object alive for the IRP, whose own reference it takes.
    let _ = unsafe { issue(m, device, spec, &request, false) };
    wait_or_report(m, &request, "IRP_MJ_CLEANUP");
}
