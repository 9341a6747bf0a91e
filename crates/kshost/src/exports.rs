//! The kernel routines a driver imports, with their Windows names and C signatures.
//!
//! The driver's host build re-exports these where the Windows build imports them from
//! `ntoskrnl.exe` and `ks.sys` (`src/sys`), and checks at compile time that each signature is the
//! one it declares. Each routine finds its machine through the calling thread (see
//! `crate::machine`) and checks the IRQL it must be called at.
// Each routine is the Windows routine of the same name; the WDK documents its contract.
#![allow(non_snake_case, missing_docs, clippy::missing_safety_doc, clippy::missing_panics_doc)]

use std::ffi::{CStr, c_void};

use ksabi::{
    DEVICE_OBJECT, DISPATCH_LEVEL, DRIVER_OBJECT, GUID, IRP, KIRQL, KPROCESSOR_MODE, KSDISPATCH_TABLE,
    KSIDENTIFIER, KSIRP_REMOVAL_OPERATION, KSLIST_ENTRY_LOCATION, KSOBJECT_CREATE_ITEM, KSP_PIN,
    KSPIN_CONNECT, KSPIN_DESCRIPTOR, KSPIN_LOCK, KSPROPERTY_SET, KSRESET, KSTOPOLOGY, LIST_ENTRY, MDL,
    MDL_MAPPED_TO_SYSTEM_VA, NTSTATUS, PASSIVE_LEVEL, PDRIVER_CANCEL, PFNKSINTERSECTHANDLER, POOL_FLAGS,
    STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS, UNICODE_STRING,
};

use crate::machine::{current, violation};
use crate::sync::Locked;
use crate::verifier::Rule;

// ---- pool ----------------------------------------------------------------------------------------

#[must_use]
pub unsafe extern "system" fn ExAllocatePool2(flags: POOL_FLAGS, bytes: usize, tag: u32) -> *mut c_void {
    current().pool.allocate(flags, bytes, tag).cast()
}

pub unsafe extern "system" fn ExFreePoolWithTag(block: *mut c_void, tag: u32) {
    // SAFETY: the routine's contract: the caller no longer uses the block.
    unsafe { current().pool.free(block.cast(), Some(tag)) };
}

// ---- IRQL and spin locks ---------------------------------------------------------------------------

#[must_use]
pub unsafe extern "system" fn KeGetCurrentIrql() -> KIRQL {
    crate::irql::current()
}

pub unsafe extern "system" fn KeAcquireSpinLockRaiseToDpc(lock: *mut KSPIN_LOCK) -> KIRQL {
    crate::machine::with_current(|m| m.preempt.before("KeAcquireSpinLockRaiseToDpc"));
    // SAFETY: the driver's lock word.
    unsafe { crate::irql::acquire(lock, "KeAcquireSpinLockRaiseToDpc") }
}

pub unsafe extern "system" fn KeReleaseSpinLock(lock: *mut KSPIN_LOCK, new_irql: KIRQL) {
    // SAFETY: the driver's lock word.
    unsafe { crate::irql::release(lock, new_irql, "KeReleaseSpinLock") };
}

pub unsafe extern "system" fn KeAcquireSpinLockAtDpcLevel(lock: *mut KSPIN_LOCK) {
    if crate::irql::current() < DISPATCH_LEVEL {
        violation(Rule::SpinLockIrqlMismatch, "KeAcquireSpinLockAtDpcLevel below DISPATCH_LEVEL".into());
    }
    // SAFETY: the driver's lock word.
    unsafe { crate::irql::acquire(lock, "KeAcquireSpinLockAtDpcLevel") };
}

pub unsafe extern "system" fn KeReleaseSpinLockFromDpcLevel(lock: *mut KSPIN_LOCK) {
    // SAFETY: the driver's lock word.
    unsafe { crate::irql::release(lock, DISPATCH_LEVEL, "KeReleaseSpinLockFromDpcLevel") };
}

// ---- I/O manager -----------------------------------------------------------------------------------

pub unsafe extern "system" fn IoCreateDevice(
    driver: *mut DRIVER_OBJECT,
    extension_size: u32,
    _name: *mut UNICODE_STRING,
    device_type: u32,
    characteristics: u32,
    _exclusive: u8,
    device: *mut *mut DEVICE_OBJECT,
) -> NTSTATUS {
    if !crate::irql::require_at_most(PASSIVE_LEVEL, "IoCreateDevice") || device.is_null() || driver.is_null()
    {
        return STATUS_INVALID_PARAMETER;
    }
    if current().pool.injected_failure() {
        // SAFETY: the caller's out pointer (checked not null above); NULL on failure, as ReactOS.
        unsafe { *device = std::ptr::null_mut() };
        return ksabi::STATUS_INSUFFICIENT_RESOURCES; // the device object comes from pool
    }
    // SAFETY: the routine's contract: the caller's own driver object, from `DriverEntry` or
    // `AddDevice` (PnP-serialised).
    let d = unsafe {
        crate::iomgr::create_device(&current(), driver, extension_size, device_type, characteristics)
    };
    // SAFETY: the caller's out pointer.
    unsafe { *device = d };
    STATUS_SUCCESS
}

pub unsafe extern "system" fn IoDeleteDevice(device: *mut DEVICE_OBJECT) {
    crate::irql::require_at_most(PASSIVE_LEVEL, "IoDeleteDevice");
    // SAFETY: the routine's contract: the caller deletes its own device on its remove path
    // (PnP-serialised).
    unsafe { crate::iomgr::delete_device(&current(), device) };
}

pub unsafe extern "system" fn IoAttachDeviceToDeviceStack(
    source: *mut DEVICE_OBJECT,
    target: *mut DEVICE_OBJECT,
) -> *mut DEVICE_OBJECT {
    // SAFETY: the routine's contract: the caller attaches its new device in `AddDevice`
    // (PnP-serialised).
    unsafe { crate::iomgr::attach_device(&current(), source, target) }
}

pub unsafe extern "system" fn IoDetachDevice(target: *mut DEVICE_OBJECT) {
    // SAFETY: the driver detaches its own lower device, in its remove path (the export's contract).
    unsafe { crate::iomgr::detach(target) };
}

pub unsafe extern "system" fn IoRegisterDeviceInterface(
    pdo: *mut DEVICE_OBJECT,
    class: *const GUID,
    reference: *mut UNICODE_STRING,
    link: *mut UNICODE_STRING,
) -> NTSTATUS {
    if !crate::irql::require_at_most(PASSIVE_LEVEL, "IoRegisterDeviceInterface")
        || class.is_null()
        || link.is_null()
    {
        return STATUS_INVALID_PARAMETER;
    }
    let m = current();
    if m.pool.injected_failure() {
        return ksabi::STATUS_INSUFFICIENT_RESOURCES; // the link's buffer comes from pool
    }
    // SAFETY: the caller's GUID.
    let class = unsafe { *class };
    // SAFETY: the caller's optional reference string.
    let reference = unsafe { unicode_to_string(reference) };
    let path = {
        let mut ifaces = m.interfaces.locked();
        let existing =
            ifaces.iter_mut().find(|i| i.category == class && i.reference.eq_ignore_ascii_case(&reference));
        if let Some(i) = existing {
            i.pdo = pdo as usize;
            i.path.clone()
        } else {
            let path = crate::machine::interface_path("Root\\KsRing", class, &reference);
            ifaces.push(crate::machine::InterfaceInfo {
                category: class,
                reference: reference.clone(),
                path: path.clone(),
                friendly_name: None,
                clsid: None,
                enabled: false,
                pdo: pdo as usize,
            });
            path
        }
    };
    // The symbolic link the driver gets: `\??\` in place of `\\?\`.
    let text = format!("\\??\\{}", &path[4..]);
    let mut chars: Vec<u16> = text.encode_utf16().collect();
    let bytes = u16::try_from(chars.len() * 2).unwrap_or(u16::MAX);
    chars.push(0);
    // SAFETY: the caller's out string.
    unsafe {
        *link = UNICODE_STRING { Length: bytes, MaximumLength: bytes + 2, Buffer: chars.as_mut_ptr() };
    }
    m.objects.locked().link_strings.insert(chars.as_ptr() as usize, chars);
    STATUS_SUCCESS
}

pub unsafe extern "system" fn IoSetDeviceInterfaceState(link: *mut UNICODE_STRING, enable: u8) -> NTSTATUS {
    crate::irql::require_at_most(PASSIVE_LEVEL, "IoSetDeviceInterfaceState");
    let m = current();
    // SAFETY: the caller's string.
    let text = unsafe { unicode_to_string(link) };
    let Some(rest) = text.strip_prefix("\\??\\") else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    let mut ifaces = m.interfaces.locked();
    match ifaces.iter_mut().find(|i| i.path[4..].eq_ignore_ascii_case(rest)) {
        Some(i) => {
            i.enabled = enable != 0;
            STATUS_SUCCESS
        }
        None => STATUS_OBJECT_NAME_NOT_FOUND,
    }
}

pub unsafe extern "system" fn RtlFreeUnicodeString(string: *mut UNICODE_STRING) {
    if string.is_null() {
        return;
    }
    let m = current();
    // SAFETY: the caller's string.
    let buffer = unsafe { (*string).Buffer } as usize;
    if buffer != 0 && m.objects.locked().link_strings.remove(&buffer).is_none() {
        violation(
            Rule::PoolBadFree,
            format!("RtlFreeUnicodeString: buffer {buffer:#x} was not allocated by the system"),
        );
    }
    // SAFETY: as above.
    unsafe { *string = UNICODE_STRING { Length: 0, MaximumLength: 0, Buffer: std::ptr::null_mut() } };
}

/// # Safety
/// `s` is null or a valid `UNICODE_STRING`.
unsafe fn unicode_to_string(s: *const UNICODE_STRING) -> String {
    // SAFETY: the caller's contract.
    let Some(s) = (unsafe { s.as_ref() }) else {
        return String::new();
    };
    if s.Buffer.is_null() {
        return String::new();
    }
    // SAFETY: `Length` bytes of characters.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(s.Buffer, s.Length as usize / 2) })
}

pub unsafe extern "system" fn IofCompleteRequest(irp: *mut IRP, _priority_boost: i8) {
    // SAFETY: the routine's contract: the caller owns the IRP and gives it up.
    unsafe { crate::iomgr::complete_request(&current(), irp) };
}

pub unsafe extern "system" fn IofCallDriver(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    crate::machine::with_current(|m| m.preempt.before("IofCallDriver"));
    // SAFETY: the routine's contract: a device of the stack and an IRP the caller owns, its next
    // location set up, handed on.
    unsafe { crate::iomgr::call_driver(device, irp) }
}

pub unsafe extern "system" fn IoCancelIrp(irp: *mut IRP) -> u8 {
    // A driver about to cancel a request of its own (an IRP source's work routine): a test may
    // stop it here, the decision taken, and change what the request's return will find.
    crate::machine::with_current(|m| m.preempt.before("IoCancelIrp"));
    // SAFETY: the driver cancels an IRP it sent and has not yet had back, so it is alive (the
    // export's contract).
    u8::from(unsafe { crate::iomgr::cancel_irp(&current(), irp) })
}

pub unsafe extern "system" fn IoAcquireCancelSpinLock(irql: *mut KIRQL) {
    let old = current().cancel_lock.acquire();
    if !irql.is_null() {
        // SAFETY: the caller's out pointer.
        unsafe { *irql = old };
    }
}

pub unsafe extern "system" fn IoReleaseCancelSpinLock(irql: KIRQL) {
    let m = current();
    m.cancel_lock.release(irql);
    // A driver's cancel routine lets go of the cancel spin lock first: back below `DISPATCH_LEVEL`
    // it may be preempted there, with the IRP's cancel routine already swapped out, while the
    // driver's completing thread finds `IoSetCancelRoutine(NULL)` returning NULL.
    m.preempt.after("IoReleaseCancelSpinLock");
}

pub unsafe extern "system" fn MmMapLockedPagesSpecifyCache(
    mdl: *mut MDL,
    _mode: KPROCESSOR_MODE,
    _cache: i32,
    _base: *mut c_void,
    _bugcheck: u32,
    _priority: u32,
) -> *mut c_void {
    let m = current();
    if !m.objects.locked().mdls.contains(&(mdl as usize)) {
        violation(
            Rule::Unsupported,
            format!("MmMapLockedPagesSpecifyCache({mdl:p}): kshost maps only MDLs it built"),
        );
        return std::ptr::null_mut();
    }
    // SAFETY: a kshost MDL, live while its IRP is; its system address is a real mapping.
    let mdl = unsafe { &mut *mdl };
    if mdl.MdlFlags & (ksabi::MDL_PAGES_LOCKED | ksabi::MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
        // Windows maps whatever the (never filled) page array names, or bug-checks.
        violation(
            Rule::MdlNotLocked,
            format!("MmMapLockedPagesSpecifyCache({:p}): the MDL's pages are not locked", &raw const *mdl),
        );
        return std::ptr::null_mut();
    }
    mdl.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    mdl.MappedSystemVa
}

/// `DbgPrintEx(component, level, "%s", message)`: recorded on the machine (and echoed with
/// `KSHOST_DEBUG`).
pub fn dbg_print(level: u32, message: &CStr) {
    let m = current();
    let text = message.to_string_lossy().trim_end().to_string();
    if m.settings.echo_debug_output {
        eprintln!("[dbg {level}] {text}");
    }
    m.debug_output.locked().push(text);
}

// ---- ks.sys ------------------------------------------------------------------------------------------

pub unsafe extern "system" fn KsSetMajorFunctionHandler(driver: *mut DRIVER_OBJECT, major: u32) -> NTSTATUS {
    // SAFETY: the routine's contract: the caller's driver object, in its `DriverEntry`.
    unsafe { crate::ks::set_major_function_handler(driver, major) }
}

pub unsafe extern "system" fn KsAllocateDeviceHeader(
    header: *mut *mut c_void,
    count: u32,
    items: *mut KSOBJECT_CREATE_ITEM,
) -> NTSTATUS {
    // SAFETY: the routine's contract: the caller's out pointer and item array.
    unsafe { crate::ks::allocate_device_header(&current(), header, count, items) }
}

pub unsafe extern "system" fn KsFreeDeviceHeader(header: *mut c_void) {
    // SAFETY: the routine's contract: the caller does not use the header any more.
    unsafe { crate::ks::free_header(&current(), header, "device") };
}

pub unsafe extern "system" fn KsSetDevicePnpAndBaseObject(
    header: *mut c_void,
    pnp: *mut DEVICE_OBJECT,
    base: *mut DEVICE_OBJECT,
) {
    let m = current();
    // SAFETY: the routine's contract: the caller's header, set in its `AddDevice` (PnP-serialised),
    // so nothing else uses it meanwhile.
    match unsafe { crate::ks::device_header(&m, header) } {
        Some(h) => {
            h.pnp_device = pnp;
            h.base_device = base;
        }
        None => violation(
            Rule::UnknownObject,
            format!("KsSetDevicePnpAndBaseObject({header:p}): not a device header"),
        ),
    }
}

pub unsafe extern "system" fn KsAllocateObjectHeader(
    header: *mut *mut c_void,
    count: u32,
    items: *mut KSOBJECT_CREATE_ITEM,
    irp: *mut IRP,
    table: *const KSDISPATCH_TABLE,
) -> NTSTATUS {
    // SAFETY: the routine's contract: the caller's out pointer, items and table, and the create
    // IRP it is dispatching.
    unsafe { crate::ks::allocate_object_header(&current(), header, count, items, irp, table) }
}

pub unsafe extern "system" fn KsFreeObjectHeader(header: *mut c_void) {
    // SAFETY: the routine's contract: the caller does not use the header any more.
    unsafe { crate::ks::free_header(&current(), header, "object") };
}

pub unsafe extern "system" fn KsQueryObjectCreateItem(header: *mut c_void) -> *mut KSOBJECT_CREATE_ITEM {
    // SAFETY: the routine's contract: the caller's own header, alive for the call; one field is
    // copied out.
    unsafe { crate::ks::object_header(&current(), header) }.map_or(std::ptr::null_mut(), |h| h.create_item)
}

pub unsafe extern "system" fn KsDispatchIrp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the routine's contract: the dispatched device and an IRP the caller hands on.
    unsafe { crate::ks::dispatch_irp(device, irp) }
}

pub unsafe extern "system" fn KsDispatchInvalidDeviceRequest(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the routine's contract: an IRP the caller owns and gives up.
    unsafe { crate::ks::dispatch_invalid(irp) }
}

pub unsafe extern "system" fn KsDefaultDeviceIoCompletion(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    // SAFETY: the routine's contract: an IRP the caller owns and gives up.
    unsafe { crate::ks::default_device_io_completion(irp) }
}

pub unsafe extern "system" fn KsDefaultDispatchPnp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwards the caller's device and IRP.
    unsafe { crate::ks::default_dispatch_pnp(device, irp) }
}

pub unsafe extern "system" fn KsDefaultDispatchPower(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwards the caller's device and IRP.
    unsafe { crate::ks::default_forward(device, irp) }
}

pub unsafe extern "system" fn KsDefaultForwardIrp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: forwards the caller's device and IRP.
    unsafe { crate::ks::default_forward(device, irp) }
}

pub unsafe extern "system" fn KsNullDriverUnload(_driver: *mut DRIVER_OBJECT) {}

pub unsafe extern "system" fn KsValidateConnectRequest(
    irp: *mut IRP,
    count: u32,
    descriptors: *const KSPIN_DESCRIPTOR,
    connect: *mut *mut KSPIN_CONNECT,
) -> NTSTATUS {
    // SAFETY: the routine's contract: the pin-create IRP the caller dispatches, its descriptors
    // and out pointer.
    unsafe { crate::ks::connect::validate(irp, count, descriptors, connect) }
}

pub unsafe extern "system" fn KsPropertyHandler(
    irp: *mut IRP,
    count: u32,
    sets: *const KSPROPERTY_SET,
) -> NTSTATUS {
    // SAFETY: the routine's contract: the property IRP the caller dispatches, its set table.
    unsafe { crate::ks::property::property_handler(irp, count, sets) }
}

pub unsafe extern "system" fn KsPinPropertyHandler(
    irp: *mut IRP,
    property: *mut KSIDENTIFIER,
    data: *mut c_void,
    count: u32,
    descriptors: *const KSPIN_DESCRIPTOR,
) -> NTSTATUS {
    // SAFETY: the routine's contract: a captured property IRP, its request and value area, the
    // caller's descriptors.
    unsafe { crate::ks::property::pin_property_handler(irp, property, data, count, descriptors) }
}

pub unsafe extern "system" fn KsHandleSizedListQuery(
    irp: *mut IRP,
    count: u32,
    item_size: u32,
    items: *const c_void,
) -> NTSTATUS {
    // SAFETY: the routine's contract: a captured property IRP and the caller's item table.
    unsafe { crate::ks::property::sized_list(irp, count, item_size, items) }
}

pub unsafe extern "system" fn KsPinDataIntersection(
    irp: *mut IRP,
    pin: *mut KSP_PIN,
    data: *mut c_void,
    count: u32,
    descriptors: *const KSPIN_DESCRIPTOR,
    handler: PFNKSINTERSECTHANDLER,
) -> NTSTATUS {
    // SAFETY: the routine's contract: a captured property IRP, its request and value area, the
    // caller's descriptors.
    unsafe { crate::ks::property::data_intersection(irp, pin, data, count, descriptors, handler) }
}

pub unsafe extern "system" fn KsTopologyPropertyHandler(
    irp: *mut IRP,
    property: *mut KSIDENTIFIER,
    data: *mut c_void,
    topology: *const KSTOPOLOGY,
) -> NTSTATUS {
    // SAFETY: the routine's contract: a captured property IRP, its request and value area, the
    // caller's topology.
    unsafe { crate::ks::property::topology_handler(irp, property, data, topology) }
}

pub unsafe extern "system" fn KsProbeStreamIrp(irp: *mut IRP, flags: u32, header_size: u32) -> NTSTATUS {
    // SAFETY: the routine's contract: the stream IRP the caller is dispatching, its headers valid.
    unsafe { crate::ks::stream::probe_stream_irp(irp, flags, header_size) }
}

pub unsafe extern "system" fn KsAcquireResetValue(irp: *mut IRP, value: *mut KSRESET) -> NTSTATUS {
    // SAFETY: the routine's contract: the reset IRP the caller is dispatching, its out pointer.
    unsafe { crate::ks::stream::acquire_reset_value(irp, value) }
}

pub unsafe extern "system" fn KsAddIrpToCancelableQueue(
    head: *mut LIST_ENTRY,
    lock: *mut KSPIN_LOCK,
    irp: *mut IRP,
    location: KSLIST_ENTRY_LOCATION,
    cancel: PDRIVER_CANCEL,
) {
    crate::machine::with_current(|m| m.preempt.before("KsAddIrpToCancelableQueue"));
    // SAFETY: the routine's contract: the caller's queue and lock, and an IRP it owns.
    unsafe { crate::ks::queue::add(head, lock, irp, location, cancel) };
    crate::machine::with_current(|m| m.preempt.after("KsAddIrpToCancelableQueue"));
}

pub unsafe extern "system" fn KsRemoveIrpFromCancelableQueue(
    head: *mut LIST_ENTRY,
    lock: *mut KSPIN_LOCK,
    location: KSLIST_ENTRY_LOCATION,
    operation: KSIRP_REMOVAL_OPERATION,
) -> *mut IRP {
    // SAFETY: the routine's contract: the caller's queue and its lock.
    unsafe { crate::ks::queue::remove(head, lock, location, operation) }
}

pub unsafe extern "system" fn KsReleaseIrpOnCancelableQueue(irp: *mut IRP, cancel: PDRIVER_CANCEL) {
    // SAFETY: the routine's contract: an IRP the caller acquired from its queue.
    unsafe { crate::ks::queue::release(irp, cancel) };
}

pub unsafe extern "system" fn KsRemoveSpecificIrpFromCancelableQueue(irp: *mut IRP) {
    // SAFETY: the driver passes an IRP it acquired from the queue, so it owns it (the export's
    // contract).
    unsafe { crate::ks::queue::remove_specific(irp) };
}

pub unsafe extern "system" fn KsCancelRoutine(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the routine's contract: called from a cancel routine, cancel lock held, with the
    // IRP being cancelled.
    unsafe { crate::ks::queue::cancel_routine(irp) };
}

pub unsafe extern "system" fn KsCancelIo(head: *mut LIST_ENTRY, lock: *mut KSPIN_LOCK) {
    // SAFETY: the routine's contract: the caller's queue and its lock.
    unsafe { crate::ks::queue::cancel_io(head, lock) };
}

// ---- object manager, the driver's own IRPs, work items, events ----------------------------------

pub unsafe extern "system" fn ObReferenceObjectByHandle(
    handle: ksabi::HANDLE,
    access: u32,
    object_type: *mut c_void,
    mode: KPROCESSOR_MODE,
    object: *mut *mut c_void,
    _handle_info: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the routine's contract: `object` is the caller's out pointer.
    unsafe { crate::ob::reference_by_handle(handle, access, object_type, mode, object) }
}

/// `ObfReferenceObject` (what `ObReferenceObject` expands to).
///
/// # Safety
/// `object` must be an object the caller holds a reference to (kshost checks it is a live file
/// object).
pub unsafe extern "system" fn ObfReferenceObject(object: *mut c_void) -> isize {
    // SAFETY: the routine's contract: the caller holds a reference to `object`.
    unsafe { crate::ob::reference(object) }
}

pub unsafe extern "system" fn ObfDereferenceObject(object: *mut c_void) -> isize {
    // SAFETY: the routine's contract: the caller gives up a reference it took on `object`.
    unsafe { crate::ob::dereference(object) }
}

/// `IoGetRelatedDeviceObject`: the top of the stack of the device a file object was opened on.
pub unsafe extern "system" fn IoGetRelatedDeviceObject(file: *mut ksabi::FILE_OBJECT) -> *mut DEVICE_OBJECT {
    let m = current();
    if !m.objects.locked().files.contains(&(file as usize)) {
        violation(Rule::UnknownObject, format!("IoGetRelatedDeviceObject({file:p}): not a live file object"));
        return std::ptr::null_mut();
    }
    // SAFETY: a registered file object (checked above) the driver holds a reference to.
    unsafe { crate::iomgr::related_device(file) }
}

/// `*IoFileObjectType` (a data export of ntoskrnl.exe; the driver's host build reads it here).
#[must_use]
pub fn file_object_type() -> *mut c_void {
    crate::ob::file_object_type()
}

#[must_use]
pub unsafe extern "system" fn IoAllocateIrp(stack_size: i8, _charge_quota: u8) -> *mut IRP {
    let m = current();
    if m.pool.injected_failure() {
        return std::ptr::null_mut(); // Driver Verifier's low-resources simulation fails it too
    }
    crate::iomgr::allocate_irp(&m, stack_size)
}

pub unsafe extern "system" fn IoFreeIrp(irp: *mut IRP) {
    // SAFETY: the routine's contract: the caller's own IRP, back in its hands, unused after.
    unsafe { crate::iomgr::free_irp(&current(), irp) };
}

pub unsafe extern "system" fn IoReuseIrp(irp: *mut IRP, status: NTSTATUS) {
    // An IRP source about to set a request of its own up again (its slot already counted in
    // flight): a test may stop it here, before the reuse clears a cancel that comes meanwhile.
    crate::machine::with_current(|m| m.preempt.before("IoReuseIrp"));
    // SAFETY: the routine's contract: the caller's own IRP, back in its hands.
    unsafe { crate::iomgr::reuse_irp(&current(), irp, status) };
}

pub unsafe extern "system" fn IoFreeMdl(mdl: *mut MDL) {
    // SAFETY: the routine's contract: the caller no longer uses the MDL.
    unsafe { crate::iomgr::free_mdl(&current(), mdl) };
}

pub unsafe extern "system" fn MmBuildMdlForNonPagedPool(mdl: *mut MDL) {
    // SAFETY: the routine's contract: the caller's MDL, which no one else uses meanwhile.
    unsafe { crate::iomgr::build_mdl_for_nonpaged_pool(&current(), mdl) };
}

pub unsafe extern "system" fn MmUnlockPages(mdl: *mut MDL) {
    // SAFETY: the routine's contract: an MDL of an IRP the caller owns.
    unsafe { crate::iomgr::unlock_pages(&current(), mdl) };
}

#[must_use]
pub unsafe extern "system" fn IoAllocateWorkItem(device: *mut DEVICE_OBJECT) -> *mut c_void {
    if current().pool.injected_failure() {
        return std::ptr::null_mut(); // Driver Verifier's low-resources simulation fails it too
    }
    crate::workitem::allocate(device)
}

pub unsafe extern "system" fn IoQueueWorkItem(
    item: *mut c_void,
    routine: ksabi::PIO_WORKITEM_ROUTINE,
    queue_type: i32,
    context: *mut c_void,
) {
    // SAFETY: the routine's contract: the caller's routine may run with the item's device and
    // `context`, which it keeps valid until then.
    unsafe { crate::workitem::queue(item, routine, queue_type, context) };
}

pub unsafe extern "system" fn IoFreeWorkItem(item: *mut c_void) {
    crate::workitem::free(item);
}

pub unsafe extern "system" fn KeInitializeEvent(event: *mut ksabi::KEVENT, event_type: i32, state: u8) {
    // SAFETY: the driver initialises its own event before sharing it (the export's contract).
    unsafe { crate::event::initialize(event, event_type, state != 0) };
}

pub unsafe extern "system" fn KeSetEvent(event: *mut ksabi::KEVENT, _increment: i32, _wait: u8) -> i32 {
    // SAFETY: the driver passes an initialised event it keeps allocated (the export's contract).
    unsafe { crate::event::set(event) }
}

pub unsafe extern "system" fn KeClearEvent(event: *mut ksabi::KEVENT) {
    // SAFETY: the driver passes an initialised event it keeps allocated (the export's contract).
    unsafe { crate::event::clear(event) };
}

pub unsafe extern "system" fn KeWaitForSingleObject(
    object: *mut c_void,
    _reason: i32,
    _mode: KPROCESSOR_MODE,
    _alertable: u8,
    timeout: *mut i64,
) -> NTSTATUS {
    // SAFETY: the caller's optional timeout.
    let timeout = if timeout.is_null() { None } else { Some(unsafe { *timeout }) };
    // SAFETY: kshost waits only on events; the driver passes an initialised one that stays
    // allocated while it waits (the export's contract).
    unsafe { crate::event::wait(object.cast(), timeout) }
}

// ---- registry and driver object extensions -----------------------------------------------------

/// `ZwOpenKey`.
///
/// # Safety
/// Pointers as the routine's contract.
pub unsafe extern "system" fn ZwOpenKey(
    key: *mut ksabi::HANDLE,
    access: u32,
    attributes: *const ksabi::OBJECT_ATTRIBUTES,
) -> NTSTATUS {
    // SAFETY: the caller's pointers.
    unsafe { crate::registry::open_key(key, access, attributes) }
}

/// `ZwQueryValueKey`.
///
/// # Safety
/// Pointers as the routine's contract.
pub unsafe extern "system" fn ZwQueryValueKey(
    key: ksabi::HANDLE,
    name: *const UNICODE_STRING,
    class: i32,
    information: *mut c_void,
    length: u32,
    result_length: *mut u32,
) -> NTSTATUS {
    // SAFETY: the caller's pointers.
    unsafe { crate::registry::query_value(key, name, class, information, length, result_length) }
}

/// `ZwClose` (kernel handles of registry keys).
pub unsafe extern "system" fn ZwClose(handle: ksabi::HANDLE) -> NTSTATUS {
    crate::registry::close(handle)
}

/// `IoAllocateDriverObjectExtension`: zeroed storage tied to the driver object, found again by
/// `client_id`; a second allocation for the same id → `STATUS_OBJECT_NAME_COLLISION`.
///
/// # Safety
/// `driver` is the caller's driver object; `extension` a valid out pointer.
pub unsafe extern "system" fn IoAllocateDriverObjectExtension(
    driver: *mut DRIVER_OBJECT,
    client_id: *mut c_void,
    size: u32,
    extension: *mut *mut c_void,
) -> NTSTATUS {
    // SAFETY: the routine's contract: the caller's driver object and out pointer.
    unsafe { crate::iomgr::allocate_driver_extension(driver, client_id, size, extension) }
}

/// `IoGetDriverObjectExtension`.
pub unsafe extern "system" fn IoGetDriverObjectExtension(
    driver: *mut DRIVER_OBJECT,
    client_id: *mut c_void,
) -> *mut c_void {
    // SAFETY: the routine's contract: the caller's driver object.
    unsafe { crate::iomgr::driver_extension(driver, client_id) }
}

/// `RtlCopyMemory` (a `memcpy`): the host build's copy routine for every byte the driver moves, so
/// that kshost can count the bytes copied under each spin-lock hold.
///
/// # Safety
/// As `memcpy`: `n` bytes valid at both, not overlapping.
pub unsafe fn copy_memory(destination: *mut u8, source: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(source, destination, n) };
    crate::lockstats::copied(n);
}

/// `RtlMoveMemory` (a `memmove`: the ranges may overlap), counted as [`copy_memory`] is.
///
/// # Safety
/// As `memmove`: `n` bytes valid at both.
pub unsafe fn move_memory(destination: *mut u8, source: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy(source, destination, n) };
    crate::lockstats::copied(n);
}
