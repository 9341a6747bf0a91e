//! Requests: issuing an IRP and waiting for it, `IofCallDriver`, `IofCompleteRequest` (the stack
//! walk and completion routines, then the I/O manager's own completion: copy-back, buffer and MDL
//! release, signalling the issuer), and the checks made when a dispatch routine returns.

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ksabi::{
    DEVICE_OBJECT, DISPATCH_LEVEL, FILE_OBJECT, IO_STACK_LOCATION, IO_STACK_PARAMETERS, IRP, IRP_MJ_PNP,
    IrpFlags, KPROCESSOR_MODE, NTSTATUS, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS,
    SL_PENDING_RETURNED, STATUS_INVALID_DEVICE_REQUEST, STATUS_MORE_PROCESSING_REQUIRED,
    STATUS_NOT_SUPPORTED, STATUS_PENDING, nt_error,
};

use super::files::release_file;
use crate::machine::{Enter, MachineInner, violation};
use crate::objects::{DeviceBox, DriverBox, FileBox, IoStatus, IrpBox, Origin};
use crate::sync::Locked;
use crate::verifier::Rule;

/// Completion state an issuer waits on.
pub(crate) struct Request {
    state: Mutex<Option<IoStatus>>,
    cv: Condvar,
}

impl Request {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(None), cv: Condvar::new() })
    }

    pub(crate) fn finish(&self, s: IoStatus) {
        *self.state.locked() = Some(s);
        self.cv.notify_all();
    }

    /// Waits up to `timeout`; `None` if the request is still in the driver.
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> Option<IoStatus> {
        let guard = self.state.locked();
        let (guard, _) = self.cv.wait_timeout_while(guard, timeout, |s| s.is_none()).unwrap();
        *guard
    }

    pub(crate) fn peek(&self) -> Option<IoStatus> {
        *self.state.locked()
    }
}

/// The shape of a request to issue.
pub(crate) struct IrpSpec {
    pub major: u8,
    pub minor: u8,
    pub params: IO_STACK_PARAMETERS,
    pub file: *mut FILE_OBJECT,
    pub requestor: KPROCESSOR_MODE,
    pub user_buffer: usize,
    pub system_buffer: *mut c_void,
    pub flags: IrpFlags,
    pub user_output: Option<(*mut u8, usize)>,
    pub mappings: Vec<(*const u8, u64)>,
    pub initial_status: NTSTATUS,
}

impl IrpSpec {
    /// A request that moves no data (create, cleanup, close, PnP): `params` for its stack
    /// location, no buffers, no flags.
    pub(crate) fn bufferless(
        major: u8,
        minor: u8,
        params: IO_STACK_PARAMETERS,
        file: *mut FILE_OBJECT,
        requestor: KPROCESSOR_MODE,
        initial_status: NTSTATUS,
    ) -> Self {
        Self {
            major,
            minor,
            params,
            file,
            requestor,
            user_buffer: 0,
            system_buffer: std::ptr::null_mut(),
            flags: IrpFlags::empty(),
            user_output: None,
            mappings: Vec::new(),
            initial_status,
        }
    }

    /// [`IrpSpec::bufferless`] with all-zero parameters.
    pub(crate) fn no_parameters(
        major: u8,
        minor: u8,
        file: *mut FILE_OBJECT,
        requestor: KPROCESSOR_MODE,
        initial_status: NTSTATUS,
    ) -> Self {
        // SAFETY: all-zero parameters are valid plain data.
        let params = unsafe { std::mem::zeroed() };
        Self::bufferless(major, minor, params, file, requestor, initial_status)
    }
}

/// A reference count.
pub(crate) struct RefCount(pub AtomicUsize);

/// Issues a request to `device` and returns what the dispatch routine returned; `request` is
/// finished when the IRP completes. The IRP has two references here: the dispatch call's (dropped
/// when dispatch returns and its checks are done) and the completion's.
///
/// # Safety
/// - `device` is a device object of this live machine (the top of a stack), and no PnP change
///   alters its stack during the call.
/// - `spec.file` is null or a kshost file object on which the caller holds a reference for the
///   call (the IRP takes one of its own).
/// - `spec.system_buffer` is null or kshost's (`alloc_system_buffer`, or pool), given to the IRP;
///   `spec.user_output`, if any, stays writable until `request` is finished (the completion
///   copies back into it); `spec.mappings` are mappings the IRP may unmap when it is freed.
pub(crate) unsafe fn issue(
    m: &Arc<MachineInner>,
    device: *mut DEVICE_OBJECT,
    spec: IrpSpec,
    request: &Arc<Request>,
    client: bool,
) -> NTSTATUS {
    // SAFETY: the caller's contract: a device of this live machine; one field is read through the
    // raw pointer.
    let stack_size = unsafe { (*device).StackSize };
    let origin =
        if client { Origin::Client(Arc::clone(request)) } else { Origin::System(Arc::clone(request)) };
    let mut b = IrpBox::new(stack_size, origin, spec.file);
    b.irp.RequestorMode = spec.requestor;
    b.irp.UserBuffer = spec.user_buffer as *mut c_void;
    b.irp.IoStatus.Status = spec.initial_status;
    b.irp.AssociatedIrp.SystemBuffer = spec.system_buffer;
    b.irp.Flags = spec.flags.bits();
    b.meta.user_output = spec.user_output;
    b.meta.mappings = spec.mappings;
    let count = location_index(b.irp.StackCount) + 1;
    {
        let next = &mut b.stack[count - 1];
        next.MajorFunction = spec.major;
        next.MinorFunction = spec.minor;
        next.Parameters = spec.params;
        next.FileObject = spec.file;
    }
    b.irp.Tail.Overlay.OriginalFileObject = spec.file;
    b.refs = RefCount(AtomicUsize::new(2));
    let irp: *mut IRP = Box::into_raw(b).cast();
    m.objects.locked().irps.insert(irp as usize);
    if client {
        // On its thread's list until the I/O manager's completion takes it off (before it lets
        // the IRP go).
        m.thread_irps.locked().push(irp as usize);
    }
    if !spec.file.is_null() {
        // SAFETY: the issuer holds a reference to the file object it issues on (a handle, `Referenced` or
        // the close path), so the box is alive; only atomics and the `pending` lock are used.
        let f = unsafe { FileBox::meta_of(spec.file) };
        f.refs.fetch_add(1, Ordering::AcqRel);
        f.pending.locked().push(irp as usize);
    }
    // SAFETY: `device` is the caller's (see above); the IRP was just built here, its first location
    // set, and it is handed to the driver now, not touched by this thread until it comes back.
    let status = unsafe { call_driver(device, irp) };
    // SAFETY: the dispatch call's reference (one of the two the box was made with) keeps it alive.
    unsafe { after_dispatch(irp, status) };
    // SAFETY: gives up the dispatch call's reference; `irp` is not used after.
    unsafe { release_irp(m, irp) };
    status
}

/// The checks the I/O manager and Driver Verifier make when a dispatch routine returns.
///
/// # Safety
/// `irp` is a kshost IRP issued by [`issue`], kept alive for the call by the dispatch call's
/// reference, which the caller holds.
unsafe fn after_dispatch(irp: *mut IRP, status: NTSTATUS) {
    // Once the dispatch routine has returned (STATUS_PENDING above all) another thread may be
    // completing the IRP, so no reference covers the IRP or its stack here: its fields are read
    // through the raw pointer and the record through `meta_of`. The dispatch call's reference,
    // dropped by `release_irp` after this, keeps the box alive throughout.
    let bx = irp.cast::<IrpBox>();
    // SAFETY: a live box (the dispatch call's reference); `StackCount` is never written after
    // allocation.
    let top = location_index(unsafe { (*irp).StackCount });
    // SAFETY: a live box, read through the raw pointer. (A completion on another thread may set
    // `SL_PENDING_RETURNED` in this location meanwhile: that race is the Verifier check's own.)
    let marked = unsafe { (*bx).stack[top].Control } & SL_PENDING_RETURNED != 0;
    // SAFETY: the dispatch call's reference keeps the box alive; the IRP has been issued.
    let b = unsafe { IrpBox::meta_of(irp) };
    let completed = b.completed.load(Ordering::Acquire);
    // SAFETY: a live box, read through the raw pointer; `MajorFunction` of the top location is
    // written only by the issuer, before the dispatch.
    let major = unsafe { (*bx).stack[top].MajorFunction };
    if status == STATUS_PENDING {
        if !marked {
            violation(
                Rule::PendingNotMarked,
                format!("major {major:#x}: returned STATUS_PENDING without IoMarkIrpPending"),
            );
        }
        return;
    }
    if marked {
        violation(
            Rule::MarkedPendingReturnedOther,
            format!(
                "major {major:#x}: IoMarkIrpPending, then returned {}",
                crate::status_map::describe(status)
            ),
        );
    }
    if !completed {
        violation(
            Rule::ReturnedWithoutCompleting,
            format!(
                "major {major:#x}: returned {} without completing the IRP",
                crate::status_map::describe(status)
            ),
        );
        // The issuer would wait forever on Windows; kshost finishes the request with what was
        // returned so that the test can go on and report.
        if let Some(r) = b.origin.request() {
            r.finish(IoStatus { status, information: 0 });
        }
        return;
    }
    // SAFETY: a live box (the dispatch call's reference); only the atomic field is referenced.
    let final_status = unsafe { &(*bx).final_status }.load(Ordering::Acquire);
    if final_status != status {
        violation(
            Rule::ReturnedStatusMismatch,
            format!(
                "major {major:#x}: returned {} but completed with {}",
                crate::status_map::describe(status),
                crate::status_map::describe(final_status)
            ),
        );
    }
}

/// Drops one IRP reference; frees the IRP when the last goes.
///
/// # Safety
/// `irp` is a kshost IRP on which the caller holds a reference, given up here: the caller does
/// not use `irp` afterwards unless it holds another one.
pub(crate) unsafe fn release_irp(m: &MachineInner, irp: *mut IRP) {
    // Only the count is referenced: the IRP may be in a driver's hands on another thread.
    // SAFETY: the caller gives up one of the IRP's references, so the box is alive until this
    // decrement.
    if unsafe { IrpBox::refs_of(irp) }.0.fetch_sub(1, Ordering::AcqRel) == 1 {
        m.objects.locked().irps.remove(&(irp as usize));
        // SAFETY: allocated by `issue`/`IoAllocateIrp` with Box::into_raw; the last reference.
        let b = unsafe { Box::from_raw(irp.cast::<IrpBox>()) };
        for &(ptr, id) in &b.meta.mappings {
            m.user.unmap(ptr, id);
        }
    }
}

/// `IofCallDriver`.
///
/// # Safety
/// As `IofCallDriver`'s contract: `device` is a device object of this live machine; `irp` is a
/// live kshost IRP that the caller owns (as for [`IrpBox::of`]) with its next location set up,
/// and hands on here: the caller does not touch it again until it gets it back (a completion
/// routine, or the dispatch's return for an IRP it still holds a reference to).
pub(crate) unsafe fn call_driver(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    if !crate::irql::require_at_most(DISPATCH_LEVEL, "IofCallDriver") {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    // SAFETY: the caller owns the IRP it sends (the issuer, or the driver passing it down), so no
    // one else touches it until the dispatch below; `b` is not used after that call.
    let b = unsafe { IrpBox::of(irp) };
    if b.irp.CurrentLocation <= 1 {
        violation(
            Rule::Unsupported,
            "IofCallDriver: no stack location left (device stack deeper than the IRP)".into(),
        );
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if matches!(b.meta.origin, Origin::Driver) {
        // The file object the driver's own IRP is sent for: recorded while the sender still owns
        // the IRP, so a close elsewhere can tell (atomically) what is in flight to it.
        let next = location_index(b.irp.CurrentLocation - 1);
        b.meta.sent_to.store(b.stack[next].FileObject, Ordering::Release);
        if b.meta.driver_owned.swap(false, Ordering::AcqRel) {
            // The driver's own IRP leaves its hands; it is completed back to its completion routine.
            b.meta.completed.store(false, Ordering::Release);
            crate::machine::current().driver_irps_sent.fetch_add(1, Ordering::SeqCst);
        }
    }
    b.irp.CurrentLocation -= 1;
    let idx = location_index(b.irp.CurrentLocation);
    let stack: *mut IO_STACK_LOCATION = &raw mut b.stack[idx];
    b.irp.Tail.Overlay.CurrentStackLocation = stack;
    b.stack[idx].DeviceObject = device;
    let major = b.stack[idx].MajorFunction;
    // SAFETY: the target is a device of this machine (its box lives as long as the machine); only
    // `DriverObject`, set at creation, is read.
    let driver = unsafe { DeviceBox::of(device) }.dev.DriverObject;
    // SAFETY: a device's driver object is a kshost driver box; `MajorFunction` is filled by
    // `DriverEntry` before any IRP and only read afterwards.
    let dispatch = unsafe { DriverBox::of(driver) }.drv.MajorFunction[usize::from(major)];
    let Some(dispatch) = dispatch else {
        violation(Rule::Unsupported, format!("major {major:#x}: the driver's MajorFunction slot is NULL"));
        return STATUS_INVALID_DEVICE_REQUEST;
    };
    let entered = crate::irql::current();
    // SAFETY: the driver's dispatch routine with its device and an IRP it now owns.
    let status = unsafe { dispatch(device, irp) };
    crate::irql::check_restored(entered, "a dispatch routine");
    status
}

/// `IofCompleteRequest`.
///
/// # Safety
/// As `IofCompleteRequest`'s contract: `irp` is a live kshost IRP that the caller owns (as for
/// [`IrpBox::of`]: the driver routine holding it, a cancel routine, the I/O manager's own
/// routines) and gives up here. (A pointer that is not a live IRP is reported without being read.)
pub(crate) unsafe fn complete_request(m: &Arc<MachineInner>, irp: *mut IRP) {
    if !m.objects.locked().irps.contains(&(irp as usize)) {
        violation(Rule::UnknownObject, format!("IofCompleteRequest({irp:p}): not a live IRP"));
        return;
    }
    crate::irql::require_at_most(DISPATCH_LEVEL, "IofCompleteRequest");
    // SAFETY: a live IRP (checked above) that its owner, the caller, completes: no one else uses
    // it now. `b` is taken anew after each call that hands the IRP to other code.
    let mut b = unsafe { IrpBox::of(irp) };
    if b.meta.completed.swap(true, Ordering::AcqRel) {
        violation(Rule::IrpCompletedTwice, format!("IRP {irp:p} completed a second time"));
        return;
    }
    if b.irp.CancelRoutine.is_some() {
        violation(
            Rule::IrpCompletedWithCancelRoutine,
            format!("IRP {irp:p} completed with a cancel routine set"),
        );
        b.irp.CancelRoutine = None;
    }
    if !b.meta.queue.load(Ordering::Acquire).is_null() {
        violation(
            Rule::IrpCompletedWhileQueued,
            format!("IRP {irp:p} completed while on a KS cancelable queue"),
        );
        // Take it off the driver's list so that the list does not point at a freed IRP.
        // SAFETY: the IRP is live and on a KS queue (checked just above); `b` is not used
        // during the call.
        unsafe { crate::ks::queue::remove_specific(irp) };
        // SAFETY: as at the top: the completing caller owns the IRP again.
        b = unsafe { IrpBox::of(irp) };
    }
    if b.irp.IoStatus.Status == STATUS_PENDING {
        violation(Rule::IrpCompletedWithPendingStatus, format!("IRP {irp:p} completed with STATUS_PENDING"));
    }
    // Walk the stack upwards, calling completion routines.
    while b.irp.CurrentLocation <= b.irp.StackCount {
        let idx = location_index(b.irp.CurrentLocation);
        let (routine, context, control) = {
            let s = &mut b.stack[idx];
            let r = (s.CompletionRoutine, s.Context, s.Control);
            s.CompletionRoutine = None;
            r
        };
        b.irp.PendingReturned = u8::from(control & SL_PENDING_RETURNED != 0);
        b.irp.CurrentLocation += 1;
        let next = b.stack.as_mut_ptr().wrapping_add(location_index(b.irp.CurrentLocation));
        b.irp.Tail.Overlay.CurrentStackLocation = next;
        let status = b.irp.IoStatus.Status;
        let wanted = if b.irp.Cancel != 0 {
            control & SL_INVOKE_ON_CANCEL != 0
        } else if nt_error(status) {
            control & SL_INVOKE_ON_ERROR != 0
        } else {
            control & SL_INVOKE_ON_SUCCESS != 0
        };
        match routine {
            Some(routine) if wanted => {
                let device = if b.irp.CurrentLocation <= b.irp.StackCount {
                    // SAFETY: a location inside the box.
                    unsafe { (*next).DeviceObject }
                } else {
                    std::ptr::null_mut()
                };
                // A routine that returns STATUS_MORE_PROCESSING_REQUIRED may already have handed the
                // IRP on (an event, a work item) before it returns: from the call on, it may be
                // completed again, reused or freed on another thread, so the I/O manager's marks
                // are set first and the IRP is not touched after such a return.
                let allocators_routine =
                    matches!(b.meta.origin, Origin::Driver) && b.irp.CurrentLocation > b.irp.StackCount;
                b.meta.completed.store(false, Ordering::Release);
                if allocators_routine {
                    b.meta.driver_owned.store(true, Ordering::Release);
                }
                let entered = crate::irql::current();
                // SAFETY: the completion routine set by the driver above, with its context.
                let r = unsafe { routine(device, irp, context) };
                crate::irql::check_restored(entered, "a completion routine");
                if r == STATUS_MORE_PROCESSING_REQUIRED {
                    return; // the routine's driver owns the IRP now
                }
                // Not kept: the completion goes on upwards.
                // SAFETY: the routine returned without keeping the IRP, so the completing thread
                // owns it again; the reference from before the call is not used any more.
                b = unsafe { IrpBox::of(irp) };
                b.meta.completed.store(true, Ordering::Release);
                if allocators_routine {
                    b.meta.driver_owned.store(false, Ordering::Release);
                }
            }
            _ => {
                if b.irp.PendingReturned != 0 && b.irp.CurrentLocation <= b.irp.StackCount {
                    // SAFETY: a location inside the box.
                    unsafe { (*next).Control |= SL_PENDING_RETURNED };
                }
            }
        }
    }
    // SAFETY: no completion routine kept the IRP: the completing thread owns it, and its
    // completion's reference keeps it alive.
    unsafe { io_manager_completion(m, irp) };
}

/// What the I/O manager does once no driver wants the IRP any more.
///
/// # Safety
/// `irp` is a live kshost IRP that no driver wants any more (its completion routines have run and
/// none kept it): the calling thread owns it, and its completion's reference keeps it alive.
unsafe fn io_manager_completion(m: &Arc<MachineInner>, irp: *mut IRP) {
    // SAFETY: no driver wants the IRP any more: the completing thread owns it, and the
    // completion's reference keeps it alive until `release_irp` below (after `b`'s last use).
    let b = unsafe { IrpBox::of(irp) };
    if matches!(b.meta.origin, Origin::Driver) {
        // On Windows the I/O manager would treat it as a thread's IRP and crash: the driver that
        // allocated it must take it back with a completion routine.
        violation(
            Rule::DriverIrpMisuse,
            format!(
                "IRP {irp:p} from IoAllocateIrp completed back to the I/O manager (no completion routine kept it)"
            ),
        );
        b.meta.driver_owned.store(true, Ordering::Release);
        return;
    }
    let status = b.irp.IoStatus.Status;
    let information = b.irp.IoStatus.Information;
    b.final_status.store(status, Ordering::Release);
    let flags = IrpFlags::from_bits_retain(b.irp.Flags);
    // SAFETY: the union member the I/O manager set (or a capture replaced).
    let system = unsafe { b.irp.AssociatedIrp.SystemBuffer }.cast::<u8>();
    let mut information_out = information;
    if flags.contains(IrpFlags::BUFFERED_IO) && !system.is_null() {
        if let (true, Some((dst, len))) =
            (flags.contains(IrpFlags::INPUT_OPERATION) && !nt_error(status), b.meta.user_output)
        {
            {
                if information > len {
                    violation(
                        Rule::InformationExceedsBuffer,
                        format!(
                            "IRP {irp:p}: Information {information} exceeds the {len}-byte output buffer"
                        ),
                    );
                    information_out = len;
                }
                if !dst.is_null() && information_out > 0 {
                    // SAFETY: the system buffer holds at least the output length (captures size it
                    // so); `dst` is the caller's live output buffer of `len` bytes.
                    unsafe { std::ptr::copy_nonoverlapping(system, dst, information_out) };
                    for &(offset, original) in b.meta.restore.locked().iter() {
                        if offset + size_of::<usize>() <= information_out {
                            let bytes = original.to_ne_bytes();
                            let at = dst.wrapping_add(offset);
                            // SAFETY: inside the bytes just copied to the caller's buffer.
                            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len()) };
                        }
                    }
                }
            }
        }
        if flags.contains(IrpFlags::DEALLOCATE_BUFFER) {
            // SAFETY: the IRP's own system buffer (`IRP_DEALLOCATE_BUFFER`): no driver has the IRP
            // any more, and the pointer is cleared just below, so nothing uses it again.
            unsafe { free_system_buffer(m, system) };
            b.irp.AssociatedIrp.SystemBuffer = std::ptr::null_mut();
        }
    }
    // SAFETY: the IRP's chain; no driver has the IRP any more, and the chain is unhooked just below.
    unsafe { free_mdl_chain(m, b.irp.MdlAddress) };
    b.irp.MdlAddress = std::ptr::null_mut();
    let file = b.meta.file;
    if !file.is_null() {
        // SAFETY: the IRP holds a reference to its file object until `release_file` below.
        unsafe { FileBox::meta_of(file) }.pending.locked().retain(|&p| p != irp as usize);
    }
    if matches!(b.meta.origin, Origin::Client(_)) {
        m.thread_irps.locked().retain(|&p| p != irp as usize);
    }
    let result = IoStatus { status, information: information_out };
    let Some(request) = b.meta.origin.request().cloned() else { return };
    if !file.is_null() {
        // SAFETY: gives up the reference `issue` took for the IRP on its file object.
        unsafe { release_file(m, file, false) };
    }
    // SAFETY: gives up the completion's reference; `irp` and `b` are not used after.
    unsafe { release_irp(m, irp) };
    request.finish(result);
}

pub(crate) fn alloc_system_buffer(m: &MachineInner, len: usize) -> *mut u8 {
    let Ok(layout) = std::alloc::Layout::from_size_align(len.max(8), 16) else {
        return std::ptr::null_mut();
    };
    // SAFETY: non-zero size.
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if !p.is_null() {
        m.objects.locked().system_buffers.insert(p as usize, layout);
    }
    p
}

/// Frees a system buffer: one kshost allocated for a capture, or pool (a create parameter that
/// `KsValidateConnectRequest` captured, as ks.sys does, with `ExAllocatePool`).
///
/// # Safety
/// No one uses `p` during or after the call (it is no IRP's `SystemBuffer` any more). The
/// registry makes the free itself sound; the contract keeps others from reading freed memory.
pub(crate) unsafe fn free_system_buffer(m: &MachineInner, p: *mut u8) {
    let layout = m.objects.locked().system_buffers.remove(&(p as usize));
    if let Some(layout) = layout {
        // SAFETY: allocated by alloc_system_buffer with this layout; removed once.
        unsafe { std::alloc::dealloc(p, layout) };
    } else if m.pool.owns(p as usize) {
        // SAFETY: the caller's contract: no one uses `p` during or after the call.
        unsafe { m.pool.free(p, None) };
    }
}

/// Unlocks and frees the MDLs kshost built (`KsProbeStreamIrp`), as the I/O manager does for every
/// MDL of a completed IRP; MDLs from elsewhere are left alone. One whose pages are not locked is
/// reported (`MDL_NOT_LOCKED`): Windows' `MmUnlockPages` would bug-check.
///
/// # Safety
/// `mdl` is null or the head of a completed IRP's chain: live MDLs that no one else uses during
/// or after the call.
pub(crate) unsafe fn free_mdl_chain(m: &MachineInner, mut mdl: *mut ksabi::MDL) {
    while !mdl.is_null() {
        // SAFETY: the caller's contract: MDLs of the chain are live until here and no one else
        // uses them.
        let m_ref = unsafe { &*mdl };
        let (next, flags) = (m_ref.Next, m_ref.MdlFlags);
        if flags & (ksabi::MDL_PAGES_LOCKED | ksabi::MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
            violation(
                Rule::MdlNotLocked,
                format!(
                    "IRP completed with MDL {mdl:p} (pages not locked) on its chain: the I/O manager unlocks it"
                ),
            );
        }
        if m.objects.locked().mdls.remove(&(mdl as usize)) {
            // SAFETY: allocated by kshost with Box::into_raw.
            drop(unsafe { Box::from_raw(mdl) });
        }
        mdl = next;
    }
}

/// Waits for a request kshost itself issued; a request that never completes is reported.
pub(crate) fn wait_or_report(m: &MachineInner, request: &Request, what: &str) -> IoStatus {
    if let Some(s) = request.wait(m.settings.hang_timeout) {
        return s;
    }
    violation(Rule::IrpNeverCompleted, format!("{what} not completed within {:?}", m.settings.hang_timeout));
    IoStatus { status: ksabi::STATUS_IO_TIMEOUT, information: 0 }
}

/// Sends a PnP IRP (kernel mode, initial status `STATUS_NOT_SUPPORTED`) and waits.
///
/// # Safety
/// `device` is a device object of this live machine, the top of its stack, and the caller is the
/// PnP path (install, remove): no other PnP change runs on the stack meanwhile.
pub(crate) unsafe fn send_pnp(m: &Arc<MachineInner>, device: *mut DEVICE_OBJECT, minor: u8) -> NTSTATUS {
    let _enter = Enter::new(m);
    let spec = IrpSpec::no_parameters(
        IRP_MJ_PNP,
        minor,
        std::ptr::null_mut(),
        ksabi::KernelMode,
        STATUS_NOT_SUPPORTED,
    );
    let request = Request::new();
    // SAFETY: the caller's contract: a device of this live machine, its stack not changing; no
    // file object, no buffers.
    let _ = unsafe { issue(m, device, spec, &request, false) };
    wait_or_report(m, &request, "a PnP IRP").status
}

/// The array index of 1-based stack location `location` (`CurrentLocation`, `StackCount`).
pub(crate) fn location_index(location: i8) -> usize {
    usize::try_from(location).unwrap_or(1).saturating_sub(1)
}
