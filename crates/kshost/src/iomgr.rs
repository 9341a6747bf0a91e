//! The I/O manager: driver and device objects, the root bus the driver's device sits on, issuing
//! IRPs, `IofCallDriver`, `IofCompleteRequest` (the stack walk, completion routines, then the
//! I/O manager's own completion: copy-back, buffer and MDL release, signalling the issuer),
//! `IoCancelIrp`, file-object references and the close that follows the last one.

use std::ffi::c_void;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ksabi::{
    DEVICE_OBJECT, DISPATCH_LEVEL, DRIVER_OBJECT, DeviceFlags, FILE_OBJECT, IO_STACK_LOCATION,
    IO_STACK_PARAMETERS, IRP, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_COUNT, IRP_MJ_PNP, IRP_MJ_POWER, IrpFlags,
    KIRQL, KPROCESSOR_MODE, NTSTATUS, PASSIVE_LEVEL, PDRIVER_CANCEL, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR,
    SL_INVOKE_ON_SUCCESS, SL_PENDING_RETURNED, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_NOT_SUPPORTED, STATUS_PENDING, STATUS_SUCCESS, UNICODE_STRING,
    nt_error,
};

use crate::machine::{Enter, MachineInner, violation};
use crate::objects::{DeviceBox, DeviceMeta, DriverBox, FileBox, IoStatus, IrpBox, Origin};
use crate::sync::Locked;
use crate::verifier::Rule;

/// A `UNICODE_STRING` with its own storage.
pub(crate) struct OwnedUnicode(pub UNICODE_STRING, #[allow(dead_code)] pub Vec<u16>);

pub(crate) fn unicode_owned(text: &str) -> OwnedUnicode {
    let mut chars: Vec<u16> = text.encode_utf16().collect();
    let bytes = u16::try_from(chars.len() * 2).unwrap_or(u16::MAX - 1);
    chars.push(0);
    let s = UNICODE_STRING { Length: bytes, MaximumLength: bytes + 2, Buffer: chars.as_mut_ptr() };
    OwnedUnicode(s, chars)
}

/// Runs driver code entered at `PASSIVE_LEVEL` and checks it comes back at `PASSIVE_LEVEL`.
pub(crate) fn call_guarded<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let entered = crate::irql::current();
    let r = f();
    crate::irql::check_restored(entered, what);
    r
}

// ---- objects -----------------------------------------------------------------------------------

pub(crate) fn create_driver_object(m: &MachineInner, service: &str) -> *mut DRIVER_OBJECT {
    let name: Vec<u16> = format!("\\Driver\\{service}").encode_utf16().collect();
    // SAFETY: DRIVER_OBJECT is a C structure for which all-zero is valid.
    let drv = unsafe { std::mem::zeroed::<DRIVER_OBJECT>() };
    // SAFETY: likewise DRIVER_EXTENSION.
    let ext = unsafe { std::mem::zeroed::<ksabi::DRIVER_EXTENSION>() };
    let mut b = Box::new(DriverBox {
        drv,
        ext,
        name,
        ks_routed: Mutex::new(Vec::new()),
        extensions: Mutex::new(Vec::new()),
    });
    b.drv.Type = ksabi::IO_TYPE_DRIVER;
    b.drv.Size = i16::try_from(std::mem::size_of::<DRIVER_OBJECT>()).unwrap_or(i16::MAX);
    let bytes = u16::try_from(b.name.len() * 2).unwrap_or(u16::MAX);
    b.drv.DriverName = UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: b.name.as_mut_ptr() };
    b.drv.MajorFunction = [Some(invalid_device_request); IRP_MJ_COUNT];
    let raw = Box::into_raw(b);
    // SAFETY: the box was just allocated here and is not yet registered or shown to anyone: this is the
    // only reference.
    let this = unsafe { DriverBox::of(raw.cast()) };
    this.ext.DriverObject = &raw mut this.drv;
    this.drv.DriverExtension = &raw mut this.ext;
    m.driver_boxes.locked().push(raw as usize);
    raw.cast()
}

/// `IoAllocateDriverObjectExtension`.
pub(crate) fn allocate_driver_extension(
    driver: *mut DRIVER_OBJECT,
    client_id: *mut c_void,
    size: u32,
    out: *mut *mut c_void,
) -> NTSTATUS {
    if out.is_null() || driver.is_null() {
        return ksabi::STATUS_INVALID_PARAMETER;
    }
    // SAFETY: `driver` is a driver object of this machine (the export's caller passes its own); only the
    // `extensions` lock is used, and the driver object itself is not written meanwhile.
    let mut exts = unsafe { DriverBox::of(driver) }.extensions.locked();
    if exts.iter().any(|(id, _)| *id == client_id as usize) {
        // SAFETY: the caller's out pointer.
        unsafe { *out = std::ptr::null_mut() };
        return ksabi::STATUS_OBJECT_NAME_COLLISION;
    }
    let mut block = vec![0u128; (size as usize).div_ceil(16).max(1)].into_boxed_slice();
    // SAFETY: the caller's out pointer; the block lives as long as the driver object.
    unsafe { *out = block.as_mut_ptr().cast() };
    exts.push((client_id as usize, block));
    STATUS_SUCCESS
}

/// `IoGetDriverObjectExtension`.
pub(crate) fn driver_extension(driver: *mut DRIVER_OBJECT, client_id: *mut c_void) -> *mut c_void {
    if driver.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: as in `allocate_driver_extension`: the caller's own driver object; only its `extensions` lock
    // is used.
    unsafe { DriverBox::of(driver) }
        .extensions
        .locked()
        .iter_mut()
        .find(|(id, _)| *id == client_id as usize)
        .map_or(std::ptr::null_mut(), |(_, b)| b.as_mut_ptr().cast())
}

/// What the I/O manager puts in a driver's unset `MajorFunction` slots (`IopInvalidDeviceRequest`).
unsafe extern "system" fn invalid_device_request(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the I/O manager passes a live IRP that is now ours to complete.
    unsafe { (*irp).IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST };
    // SAFETY: as above.
    unsafe { crate::exports::IofCompleteRequest(irp, 0) };
    STATUS_INVALID_DEVICE_REQUEST
}

/// Creates a device object (`IoCreateDevice`).
pub(crate) fn create_device(
    m: &MachineInner,
    driver: *mut DRIVER_OBJECT,
    extension_size: u32,
    device_type: u32,
    characteristics: u32,
) -> *mut DEVICE_OBJECT {
    // SAFETY: DEVICE_OBJECT is a C structure for which all-zero is valid.
    let dev = unsafe { std::mem::zeroed::<DEVICE_OBJECT>() };
    let words = (extension_size as usize).div_ceil(16);
    let mut b = Box::new(DeviceBox {
        dev,
        meta: DeviceMeta {
            extension: vec![0u128; words.max(1)].into_boxed_slice(),
            deleted: false.into(),
            lower: AtomicPtr::new(std::ptr::null_mut()),
        },
    });
    b.dev.Type = ksabi::IO_TYPE_DEVICE;
    b.dev.Size =
        u16::try_from(std::mem::size_of::<DEVICE_OBJECT>() + extension_size as usize).unwrap_or(u16::MAX);
    b.dev.DriverObject = driver;
    b.dev.DeviceType = device_type;
    b.dev.Characteristics = characteristics;
    b.dev.StackSize = 1;
    b.dev.Flags = DeviceFlags::DEVICE_INITIALIZING.bits();
    b.dev.DeviceExtension =
        if extension_size == 0 { std::ptr::null_mut() } else { b.meta.extension.as_mut_ptr().cast() };
    let raw = Box::into_raw(b);
    m.device_boxes.locked().push(raw as usize);
    m.objects.locked().devices.insert(raw as usize);
    // Link into the driver's device list.
    // SAFETY: `driver` is the creating driver's object (`IoCreateDevice` is called from its
    // `DriverEntry`/`AddDevice`, PnP-serialised); no other reference to it is live here.
    let drv = &mut unsafe { DriverBox::of(driver) }.drv;
    // SAFETY: the device box was just allocated above; nothing else uses it until it is linked here.
    unsafe { DeviceBox::of(raw.cast()) }.dev.NextDevice = drv.DeviceObject;
    drv.DeviceObject = raw.cast();
    raw.cast()
}

/// The root bus driver that owns root-enumerated PDOs: it succeeds PnP and power IRPs.
pub(crate) fn create_root_pdo(m: &Arc<MachineInner>, hardware_id: &str) -> *mut DEVICE_OBJECT {
    let root = create_driver_object(m, "kshost_root");
    // SAFETY: the root driver object was just created above and is not yet shown to anyone.
    let drv = &mut unsafe { DriverBox::of(root) }.drv;
    drv.MajorFunction[usize::from(IRP_MJ_PNP)] = Some(root_pnp);
    drv.MajorFunction[usize::from(IRP_MJ_POWER)] = Some(root_pnp);
    let pdo = create_device(m, root, 0, ksabi::FILE_DEVICE_KS, 0);
    // SAFETY: the PDO was just created above by `create_device`, whose reference is gone; no driver has it
    // yet.
    unsafe { DeviceBox::of(pdo) }.dev.Flags &= !DeviceFlags::DEVICE_INITIALIZING.bits();
    let _ = hardware_id;
    pdo
}

unsafe extern "system" fn root_pnp(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // A root-enumerated PDO has nothing to start or stop: every PnP/power request succeeds.
    // SAFETY: a live IRP addressed to the root bus.
    unsafe { (*irp).IoStatus.Status = STATUS_SUCCESS };
    // SAFETY: as above.
    unsafe { crate::exports::IofCompleteRequest(irp, 0) };
    STATUS_SUCCESS
}

/// `IoGetRelatedDeviceObject`: where requests on `file` go — the top of the stack of the device
/// the file was opened on (`FILE_OBJECT.DeviceObject` is that named device, the PDO, not the
/// driver's FDO above it).
///
/// # Safety
/// `file` is a live file object of this machine (as for [`FileBox::of`]) for the call.
pub(crate) unsafe fn related_device(file: *mut FILE_OBJECT) -> *mut DEVICE_OBJECT {
    // SAFETY: the caller's contract: a live file object; only the `DeviceObject` field set at
    // create is read, through the raw pointer (no reference to the object the driver may use).
    let named = unsafe { (*file).DeviceObject };
    // SAFETY: the device a live file object was opened on is a device of this machine.
    unsafe { top_of_stack(named) }
}

/// The device at the top of the stack `device` is part of (`IoGetAttachedDevice`).
///
/// # Safety
/// `device` is a device object kshost created on a machine that is still alive (device boxes
/// live as long as the machine), and no one attaches or detaches a device while the call walks.
pub(crate) unsafe fn top_of_stack(device: *mut DEVICE_OBJECT) -> *mut DEVICE_OBJECT {
    let mut d = device;
    loop {
        // SAFETY: the caller's contract: `d` is `device` or a device attached above it, all of
        // them kshost devices of the live machine; `AttachedDevice` is read through the raw pointer.
        let up = unsafe { (*d).AttachedDevice };
        if up.is_null() {
            return d;
        }
        d = up;
    }
}

// ---- requests ------------------------------------------------------------------------------------

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

/// A reference count.
pub(crate) struct RefCount(pub AtomicUsize);

/// Issues a request to `device` and returns what the dispatch routine returned; `request` is
/// finished when the IRP completes. The IRP has two references here: the dispatch call's (dropped
/// when dispatch returns and its checks are done) and the completion's.
pub(crate) fn issue(
    m: &Arc<MachineInner>,
    device: *mut DEVICE_OBJECT,
    spec: IrpSpec,
    request: &Arc<Request>,
    client: bool,
) -> NTSTATUS {
    // SAFETY: a registered device.
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
    if !spec.file.is_null() {
        // SAFETY: the issuer holds a reference to the file object it issues on (a handle, `Referenced` or
        // the close path), so the box is alive; only atomics and the `pending` lock are used.
        let f = unsafe { FileBox::meta_of(spec.file) };
        f.refs.fetch_add(1, Ordering::AcqRel);
        f.pending.locked().push(irp as usize);
    }
    let status = call_driver(device, irp);
    after_dispatch(irp, status);
    release_irp(m, irp);
    status
}

/// The checks the I/O manager and Driver Verifier make when a dispatch routine returns.
fn after_dispatch(irp: *mut IRP, status: NTSTATUS) {
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
pub(crate) fn release_irp(m: &MachineInner, irp: *mut IRP) {
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
pub(crate) fn call_driver(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
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
pub(crate) fn complete_request(m: &Arc<MachineInner>, irp: *mut IRP) {
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
    io_manager_completion(m, irp);
}

/// What the I/O manager does once no driver wants the IRP any more.
fn io_manager_completion(m: &Arc<MachineInner>, irp: *mut IRP) {
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
            free_system_buffer(m, system);
            b.irp.AssociatedIrp.SystemBuffer = std::ptr::null_mut();
        }
    }
    free_mdl_chain(m, b.irp.MdlAddress);
    b.irp.MdlAddress = std::ptr::null_mut();
    let file = b.meta.file;
    if !file.is_null() {
        // SAFETY: the IRP holds a reference to its file object until `release_file` below.
        unsafe { FileBox::meta_of(file) }.pending.locked().retain(|&p| p != irp as usize);
    }
    let result = IoStatus { status, information: information_out };
    let Some(request) = b.meta.origin.request().cloned() else { return };
    if !file.is_null() {
        release_file(m, file, false);
    }
    release_irp(m, irp);
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
pub(crate) fn free_system_buffer(m: &MachineInner, p: *mut u8) {
    let layout = m.objects.locked().system_buffers.remove(&(p as usize));
    if let Some(layout) = layout {
        // SAFETY: allocated by alloc_system_buffer with this layout; removed once.
        unsafe { std::alloc::dealloc(p, layout) };
    } else if m.pool.owns(p as usize) {
        m.pool.free(p, None);
    }
}

/// Unlocks and frees the MDLs kshost built (`KsProbeStreamIrp`), as the I/O manager does for every
/// MDL of a completed IRP; MDLs from elsewhere are left alone. One whose pages are not locked is
/// reported (`MDL_NOT_LOCKED`): Windows' `MmUnlockPages` would bug-check.
pub(crate) fn free_mdl_chain(m: &MachineInner, mut mdl: *mut ksabi::MDL) {
    while !mdl.is_null() {
        // SAFETY: MDLs in an IRP's chain are live until here.
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

// ---- cancel --------------------------------------------------------------------------------------

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
        // SAFETY: the cancel routine was taken, so no one else will run it; the field is written
        // through the raw pointer for the cancel routine to read, as `IoCancelIrp` does.
        unsafe { (*irp).CancelIrql = irql };
        let device = {
            // SAFETY: the cancel routine taken above makes the driver's queue give the IRP up to
            // this canceller: no driver routine is handling it while the location is read.
            let stack = unsafe { crate::objects::current_stack(irp) };
            // SAFETY: the current location of an IRP in a driver's hands.
            unsafe { (*stack).DeviceObject }
        };
        // SAFETY: the driver's cancel routine, entered with the cancel lock held as required.
        unsafe { routine(device, irp) };
        if m.cancel_lock.held_by_me() {
            violation(
                Rule::CancelSpinLockNotHeld,
                "a cancel routine returned without releasing the cancel spin lock".into(),
            );
            m.cancel_lock.release(irql);
        }
        crate::irql::check_restored(irql, "a cancel routine");
        true
    } else {
        m.cancel_lock.release(irql);
        false
    }
}

/// Cancels every IRP in flight on `file` (`CancelIoEx(handle, NULL)`).
pub(crate) fn cancel_file_irps(m: &Arc<MachineInner>, file: *mut FILE_OBJECT) -> usize {
    let irps: Vec<usize> = {
        // SAFETY: the caller (`CancelIo`) holds a reference to the file object (`Referenced`).
        let pending = unsafe { FileBox::meta_of(file) }.pending.locked();
        for &p in pending.iter() {
            // Only the count is referenced: the IRP is in a driver's hands, maybe on another
            // thread.
            // SAFETY: an IRP on the file's `pending` list is alive (the completion takes it off
            // the list, under this lock, before it drops its reference).
            unsafe { IrpBox::refs_of(p as *mut IRP) }.0.fetch_add(1, Ordering::AcqRel);
        }
        pending.clone()
    };
    let mut cancelled = 0;
    for p in irps {
        // SAFETY: the reference taken above keeps the IRP alive for the call.
        if unsafe { cancel_irp(m, p as *mut IRP) } {
            cancelled += 1;
        }
        release_irp(m, p as *mut IRP);
    }
    cancelled
}

// ---- file objects and their close ------------------------------------------------------------

/// Drops a reference to a file object; at the last one, sends `IRP_MJ_CLOSE`. The close runs at
/// `PASSIVE_LEVEL` outside any driver call: inline when the caller is a client call (`at_passive`),
/// otherwise on a system worker thread (as Windows finishes completions in an APC later).
pub(crate) fn release_file(m: &Arc<MachineInner>, file: *mut FILE_OBJECT, at_passive: bool) {
    // SAFETY: the caller gives up one of its references, so the box is alive until the decrement;
    // only the record is referenced.
    let f = unsafe { FileBox::meta_of(file) };
    if f.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
        return;
    }
    if at_passive && crate::irql::current() == PASSIVE_LEVEL {
        close_file(m, file);
    } else {
        crate::worker::defer(m, file as usize);
    }
}

/// Sends `IRP_MJ_CLOSE` for a file object nothing references any more, then frees it.
pub(crate) fn close_file(m: &Arc<MachineInner>, file: *mut FILE_OBJECT) {
    // SAFETY: the closer frees the box below and nothing else references it any more; only the
    // record is referenced (the close IRP passes the `FILE_OBJECT` to the driver meanwhile).
    let f = unsafe { FileBox::meta_of(file) };
    if f.created.load(Ordering::Acquire) && !f.closed.swap(true, Ordering::AcqRel) {
        // SAFETY: a live file object (freed only at the end of this function).
        let device = unsafe { related_device(file) };
        // The close IRP holds no reference of its own on the object it closes.
        let spec = IrpSpec {
            major: IRP_MJ_CLOSE,
            minor: 0,
            // SAFETY: all-zero parameters are valid.
            params: unsafe { std::mem::zeroed() },
            file,
            requestor: ksabi::KernelMode,
            user_buffer: 0,
            system_buffer: std::ptr::null_mut(),
            flags: IrpFlags::empty(),
            user_output: None,
            mappings: Vec::new(),
            initial_status: STATUS_SUCCESS,
        };
        f.refs.fetch_add(1, Ordering::AcqRel); // balanced by the close IRP's completion
        let request = Request::new();
        let _ = issue(m, device, spec, &request, false);
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
            // reference covering them (`IrpBox::of`) would be undefined behaviour here even though
            // only atomics are read.
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
pub(crate) fn cleanup_file(m: &Arc<MachineInner>, file: *mut FILE_OBJECT) {
    // Sent whether or not the driver handles it (the default slot fails it; the result is not
    // used), as the I/O manager does.
    // SAFETY: the closing handle's reference keeps the file object alive for the call.
    let device = unsafe { related_device(file) };
    let spec = IrpSpec {
        major: IRP_MJ_CLEANUP,
        minor: 0,
        // SAFETY: all-zero parameters are valid.
        params: unsafe { std::mem::zeroed() },
        file,
        requestor: ksabi::UserMode,
        user_buffer: 0,
        system_buffer: std::ptr::null_mut(),
        flags: IrpFlags::empty(),
        user_output: None,
        mappings: Vec::new(),
        initial_status: STATUS_SUCCESS,
    };
    let request = Request::new();
    let _ = issue(m, device, spec, &request, false);
    wait_or_report(m, &request, "IRP_MJ_CLEANUP");
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
pub(crate) fn send_pnp(m: &Arc<MachineInner>, device: *mut DEVICE_OBJECT, minor: u8) -> NTSTATUS {
    let _enter = Enter::new(m);
    let spec = IrpSpec {
        major: IRP_MJ_PNP,
        minor,
        // SAFETY: all-zero parameters are valid.
        params: unsafe { std::mem::zeroed() },
        file: std::ptr::null_mut(),
        requestor: ksabi::KernelMode,
        user_buffer: 0,
        system_buffer: std::ptr::null_mut(),
        flags: IrpFlags::empty(),
        user_output: None,
        mappings: Vec::new(),
        initial_status: STATUS_NOT_SUPPORTED,
    };
    let request = Request::new();
    let returned = issue(m, device, spec, &request, false);
    let _ = returned;
    wait_or_report(m, &request, "a PnP IRP").status
}

/// The array index of 1-based stack location `location` (`CurrentLocation`, `StackCount`).
pub(crate) fn location_index(location: i8) -> usize {
    usize::try_from(location).unwrap_or(1).saturating_sub(1)
}

// ---- the driver's own IRPs -----------------------------------------------------------------------

/// `IoAllocateIrp`: an IRP with `stack_size` locations, none current, owned by the driver.
pub(crate) fn allocate_irp(m: &MachineInner, stack_size: i8) -> *mut IRP {
    if stack_size < 1 || usize::try_from(stack_size).unwrap_or(usize::MAX) > crate::objects::MAX_STACK {
        violation(
            Rule::Unsupported,
            format!("IoAllocateIrp({stack_size}): kshost IRPs have 1..=8 locations"),
        );
        return std::ptr::null_mut();
    }
    let b = IrpBox::new(stack_size, Origin::Driver, std::ptr::null_mut());
    let irp: *mut IRP = Box::into_raw(b).cast();
    let mut o = m.objects.locked();
    o.irps.insert(irp as usize);
    o.driver_irps.insert(irp as usize);
    irp
}

/// Whether `irp` is one of the driver's own IRPs, back in its hands; reports `what` otherwise.
fn driver_irp_in_hand(m: &MachineInner, irp: *mut IRP, what: &str) -> bool {
    if !m.objects.locked().driver_irps.contains(&(irp as usize)) {
        violation(Rule::DriverIrpMisuse, format!("{what}({irp:p}): not an IRP from IoAllocateIrp"));
        return false;
    }
    // SAFETY: a registered driver IRP (checked just above); the driver may have it in flight, so
    // only the record is referenced.
    if !unsafe { IrpBox::meta_of(irp) }.driver_owned.load(Ordering::Acquire) {
        violation(Rule::DriverIrpMisuse, format!("{what}({irp:p}) while the IRP is in flight"));
        return false;
    }
    // SAFETY: a registered driver IRP back in the driver's hands (checked above), and the driver
    // is the caller: no one else touches it; one field is read through the raw pointer.
    if !unsafe { (*irp).MdlAddress }.is_null() {
        violation(Rule::DriverIrpMisuse, format!("{what}({irp:p}) with MDLs still chained at MdlAddress"));
    }
    true
}

/// `IoFreeIrp`.
pub(crate) fn free_irp(m: &MachineInner, irp: *mut IRP) {
    if !driver_irp_in_hand(m, irp, "IoFreeIrp") {
        return;
    }
    m.objects.locked().driver_irps.remove(&(irp as usize));
    release_irp(m, irp);
}

/// `IoReuseIrp`: as freshly allocated, with `status`.
pub(crate) fn reuse_irp(m: &MachineInner, irp: *mut IRP, status: NTSTATUS) {
    if !driver_irp_in_hand(m, irp, "IoReuseIrp") {
        return;
    }
    // SAFETY: a registered driver IRP back in the driver's hands (checked above), and the driver
    // is the caller: no one else touches it.
    let b = unsafe { IrpBox::of(irp) };
    let count = b.irp.StackCount;
    let fresh = IrpBox::new(count, Origin::Driver, std::ptr::null_mut());
    b.stack = fresh.stack;
    b.irp.Flags = 0;
    b.irp.MdlAddress = std::ptr::null_mut();
    b.irp.AssociatedIrp.SystemBuffer = std::ptr::null_mut();
    b.irp.IoStatus.Status = status;
    b.irp.IoStatus.Information = 0;
    b.irp.PendingReturned = 0;
    b.irp.Cancel = 0;
    b.irp.CancelRoutine = None;
    b.irp.UserBuffer = std::ptr::null_mut();
    b.irp.CurrentLocation = count + 1;
    let past_end = b.stack.as_mut_ptr().wrapping_add(location_index(count) + 1);
    b.irp.Tail.Overlay.CurrentStackLocation = past_end;
    b.meta.completed.store(false, Ordering::Release);
    b.meta.restore.locked().clear();
}

/// `IoFreeMdl` (after `MmUnlockPages`): an MDL `KsProbeStreamIrp` built for a driver's own IRP.
pub(crate) fn free_mdl(m: &MachineInner, mdl: *mut ksabi::MDL) {
    if m.objects.locked().mdls.remove(&(mdl as usize)) {
        // SAFETY: allocated by kshost with Box::into_raw; removed from the registry once.
        drop(unsafe { Box::from_raw(mdl) });
    } else {
        violation(Rule::UnknownObject, format!("IoFreeMdl({mdl:p}): not an MDL kshost built"));
    }
}

/// `MmUnlockPages`.
pub(crate) fn unlock_pages(m: &MachineInner, mdl: *mut ksabi::MDL) {
    if !m.objects.locked().mdls.contains(&(mdl as usize)) {
        violation(Rule::UnknownObject, format!("MmUnlockPages({mdl:p}): not an MDL kshost built"));
        return;
    }
    // SAFETY: a live kshost MDL.
    let flags = unsafe { &mut (*mdl).MdlFlags };
    if *flags & ksabi::MDL_PAGES_LOCKED == 0 {
        violation(Rule::Unsupported, format!("MmUnlockPages({mdl:p}): pages not locked"));
    }
    *flags &= !(ksabi::MDL_PAGES_LOCKED | ksabi::MDL_MAPPED_TO_SYSTEM_VA);
}
