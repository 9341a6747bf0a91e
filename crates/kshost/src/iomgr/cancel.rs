//! Cancellation: the `CancelRoutine` slot swapped atomically (`IoSetCancelRoutine`),
//! `IoCancelIrp`, and cancelling every IRP in flight on a file object (`CancelIoEx`).

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};

use ksabi::{DEVICE_OBJECT, IRP, KIRQL, PDRIVER_CANCEL};

use super::requests::release_irp;
use crate::machine::{MachineInner, violation};
use crate::objects::{FileMeta, IrpBox, Origin};
use crate::sync::Locked;
use crate::verifier::Rule;

/// Views `Irp->CancelRoutine` as the atomic pointer the I/O manager swaps.
///
/// # Safety
/// `irp` is a live kshost IRP that is not freed during `'a` (as for [`IrpBox::meta_of`]), and
/// every access to its `CancelRoutine` during `'a` is atomic (kshost swaps it only through this
/// slot; the driver sets it through `IoSetCancelRoutine`, which is this swap).
pub(crate) unsafe fn cancel_slot<'a>(irp: *mut IRP) -> &'a AtomicPtr<c_void> {
    // SAFETY: the caller's contract: a live IRP; the place is projected through the raw pointer,
    // so no reference to the IRP (which its owner may be writing) is made.
    let slot = unsafe { &raw mut (*irp).CancelRoutine }.cast::<*mut c_void>();
    // SAFETY: PDRIVER_CANCEL is a nullable function pointer: pointer-sized and aligned; the IRP
    // lives for 'a and every access to the slot meanwhile is atomic (the caller's contract).
    unsafe { AtomicPtr::from_ptr(slot) }
}

/// Swaps `Irp->CancelRoutine` atomically (`IoSetCancelRoutine`), returning the old routine.
///
/// # Safety
/// As for [`cancel_slot`], for the duration of the call.
pub(crate) unsafe fn swap_cancel_routine(irp: *mut IRP, new: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    let raw = new.map_or(std::ptr::null_mut(), |f| f as *mut c_void);
    // SAFETY: the caller's contract is `cancel_slot`'s.
    let old = unsafe { cancel_slot(irp) }.swap(raw, Ordering::AcqRel);
    if old.is_null() {
        None
    } else {
        // SAFETY: only cancel routines are ever stored in this slot.
        Some(unsafe {
            std::mem::transmute::<*mut c_void, unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP)>(old)
        })
    }
}

/// Runs a cancel routine the way the I/O manager does: the cancel spin lock held (acquired by
/// the caller at `irql`, which goes into `CancelIrql`), then checks that the routine released it
/// and left the IRQL where it found it.
///
/// # Safety
/// `irp` is a live kshost IRP whose cancel routine `routine` the caller has just taken (so no one
/// else runs it or dequeues the IRP), holding the cancel spin lock acquired at `irql`.
pub(crate) unsafe fn call_cancel_routine(
    m: &MachineInner,
    irp: *mut IRP,
    routine: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP),
    irql: KIRQL,
) {
    // SAFETY: the caller's contract; the field is written through the raw pointer for the cancel
    // routine to read, as `IoCancelIrp` does, so no reference covers the rest of the IRP.
    unsafe { (*irp).CancelIrql = irql };
    let device = {
        // SAFETY: the taken cancel routine gives the IRP to this canceller: no driver routine is
        // handling it while the location is read.
        let stack = unsafe { crate::objects::current_stack(irp) };
        // SAFETY: the current location of an IRP in a driver's hands.
        unsafe { (*stack).DeviceObject }
    };
    // SAFETY: the driver's (or KS') cancel routine, entered with the cancel lock held as required.
    unsafe { routine(device, irp) };
    if m.cancel_lock.held_by_me() {
        violation(
            Rule::CancelSpinLockNotHeld,
            "a cancel routine returned without releasing the cancel spin lock".into(),
        );
        m.cancel_lock.release(irql);
    }
    crate::irql::check_restored(irql, "a cancel routine");
}

/// `IoCancelIrp`.
///
/// # Safety
/// `irp` is a live kshost IRP that stays in the registry for the call (the caller holds a
/// reference to it, or the driver that owns it is the caller).
pub(crate) unsafe fn cancel_irp(m: &Arc<MachineInner>, irp: *mut IRP) -> bool {
    let irql: KIRQL = m.cancel_lock.acquire();
    // `Cancel` is written as `IoCancelIrp` writes it, while the driver may hold the IRP: through
    // the raw pointer, so no reference covers the rest of an IRP the driver may be writing.
    // SAFETY: the caller's contract: a live IRP (see `cancel_irp`'s `# Safety`).
    unsafe { (*irp).Cancel = 1 };
    // SAFETY: a live IRP (the caller's contract); its cancel routine is only ever swapped.
    if let Some(routine) = unsafe { swap_cancel_routine(irp, None) } {
        // SAFETY: the cancel routine was taken, so no one else will run it or dequeue the IRP.
        unsafe { call_cancel_routine(m, irp, routine, irql) };
        true
    } else {
        m.cancel_lock.release(irql);
        false
    }
}

/// Cancels every IRP in flight on a file object (`CancelIoEx(handle, NULL)`), given its record:
/// the borrow is the caller's proof that the object is alive (it holds a reference to it), so no
/// raw pointer needs trusting here.
pub(crate) fn cancel_file_irps(m: &Arc<MachineInner>, file: &FileMeta) -> usize {
    let irps: Vec<usize> = {
        let pending = file.pending.locked();
        for &p in pending.iter() {
            // Only the count is referenced: the IRP is in a driver's hands, maybe on another
            // thread.
            // SAFETY: an IRP on the file's `pending` list is alive (the completion takes it off
            // the list, under this lock, before it drops its reference).
            unsafe { IrpBox::refs_of(p as *mut IRP) }.0.fetch_add(1, Ordering::AcqRel);
        }
        pending.clone()
    };
    // SAFETY: a reference on each was taken above, and is not used after.
    unsafe { cancel_and_release(m, &irps) }
}

/// `IoCancelIrp` on each of `irps` at `APC_LEVEL`, as WRK's `NtCancelIoFile` and `IoCancelThreadIo`
/// cancel (taken to hold for `NtCancelIoFileEx` too), then gives up the caller's reference on each
/// back at `PASSIVE_LEVEL` (a last one may close a file object, which Windows would defer to a
/// worker at `APC_LEVEL`). Returns how many had a cancel routine that ran.
///
/// # Safety
/// The caller holds one reference on each IRP in `irps`, which this call gives up.
unsafe fn cancel_and_release(m: &Arc<MachineInner>, irps: &[usize]) -> usize {
    let cancelled = crate::irql::at_apc_level(|| {
        // SAFETY: the caller's references keep the IRPs alive for the calls.
        irps.iter().filter(|&&p| unsafe { cancel_irp(m, p as *mut IRP) }).count()
    });
    for &p in irps {
        // SAFETY: gives up the caller's reference, which is not used after this.
        unsafe { release_irp(m, p as *mut IRP) };
    }
    cancelled
}

/// Thread rundown when the client process exits (`IoCancelThreadIo`, which each exiting thread
/// runs before the last one closes the process's handles): every request the process's threads
/// issued and that has not completed — on a handle still open or one closed already — is cancelled
/// (`IoCancelIrp`), newest first as Windows walks a thread's list, and the exit waits for them.
/// Microsoft: "The system cancels unprocessed IRPs if the thread that initiated the I/O request
/// exits", and one not completed within 5 minutes is timed out, disassociated from the thread, with
/// an error logged against the device that holds it; here, one not completed within the machine's
/// hang timeout (one deadline for all) is reported as [`Rule::IrpNeverCompleted`]. The driver's own
/// IRPs (`IoAllocateIrp`) belong to no thread and are left alone.
pub(crate) fn run_down_thread_io(m: &Arc<MachineInner>) {
    let irps: Vec<(usize, Arc<crate::iomgr::requests::Request>)> = {
        let list = m.thread_irps.locked();
        list.iter()
            .rev()
            .filter_map(|&p| {
                // SAFETY: an IRP on the thread list is alive while the list is locked (the I/O
                // manager's completion takes it off, under this lock, before it lets it go), and
                // issued (its record is no longer written).
                let Origin::Client(request) = &unsafe { IrpBox::meta_of(p as *mut IRP) }.origin else {
                    return None;
                };
                // Only the count is referenced: the IRP is in a driver's hands.
                // SAFETY: as above: alive while the list is locked.
                unsafe { IrpBox::refs_of(p as *mut IRP) }.0.fetch_add(1, Ordering::AcqRel);
                Some((p, Arc::clone(request)))
            })
            .collect()
    };
    let referenced: Vec<usize> = irps.iter().map(|&(p, _)| p).collect();
    // SAFETY: a reference on each was taken above, and is not used after.
    unsafe { cancel_and_release(m, &referenced) };
    let deadline = std::time::Instant::now() + m.settings.hang_timeout;
    for (irp, request) in irps {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if request.wait(left).is_none() {
            // Timed out: disassociated from its thread (`IopDisassociateThreadIrp`), so a later
            // exit neither cancels nor waits for it again. Off the list under its lock; the
            // completion's own removal then finds nothing.
            m.thread_irps.locked().retain(|&p| p != irp);
            violation(
                Rule::IrpNeverCompleted,
                format!(
                    "IRP {irp:#x} not completed within {:?} of being cancelled as its thread exited (Windows waits 5 minutes, then disassociates it and logs an error)",
                    m.settings.hang_timeout
                ),
            );
        }
    }
}
