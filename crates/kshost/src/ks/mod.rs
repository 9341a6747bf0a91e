//! ks.sys: device and object headers, create-item dispatch by name, dispatch through each file
//! object's `KSDISPATCH_TABLE`, and the default routines.
//!
//! Fidelity (KS-REFERENCE §1.2–1.5, §7.1):
//! - Headers are referenced, not copied: the create-item arrays and dispatch tables must stay
//!   valid until the header is freed (as Windows requires). KS finds an object's header as the
//!   first pointer of the structure at `FsContext` (Windows' convention; ReactOS uses
//!   `FsContext2` — not emulated).
//! - Name matching follows ReactOS: a leading `\` is skipped, the text up to the next `\` is
//!   compared case-insensitively with each item's `ObjectClass`, a `KSCREATE_ITEM_WILDCARD` item
//!   takes any name no other item takes. No match: `STATUS_OBJECT_NAME_NOT_FOUND` (Windows' status
//!   is UNVERIFIED; ReactOS returns `STATUS_UNSUCCESSFUL`; this is the status the I/O manager uses
//!   for an unknown name). `KSCREATE_ITEM_NOPARAMETERS` with parameters: `STATUS_INVALID_PARAMETER`.
//! - `KsSetMajorFunctionHandler` accepts the eight majors KS routes; the fast-I/O flag is not
//!   emulated (`STATUS_INVALID_PARAMETER`, recorded as `UNSUPPORTED`).
//! - `KsDefaultDeviceIoCompletion` follows ReactOS: property/method/event IOCTLs →
//!   `STATUS_PROPSET_NOT_FOUND`, `IOCTL_KS_RESET_STATE` → `STATUS_SUCCESS`, others →
//!   `STATUS_INVALID_DEVICE_REQUEST`.
//! - `KsDefaultDispatchPnp` forwards everything; at `IRP_MN_REMOVE_DEVICE` it frees the device
//!   header first, and detaches and deletes the device after (ReactOS order).

pub(crate) mod connect;
pub(crate) mod property;
pub(crate) mod queue;
pub(crate) mod stream;

use std::ffi::c_void;

use ksabi::{
    DEVICE_OBJECT, DRIVER_OBJECT, FILE_OBJECT, IOCTL_KS_DISABLE_EVENT, IOCTL_KS_ENABLE_EVENT,
    IOCTL_KS_METHOD, IOCTL_KS_PROPERTY, IOCTL_KS_RESET_STATE, IRP, IRP_MJ_CLOSE, IRP_MJ_CREATE,
    IRP_MJ_DEVICE_CONTROL, IRP_MJ_FLUSH_BUFFERS, IRP_MJ_PNP, IRP_MJ_POWER, IRP_MJ_QUERY_SECURITY,
    IRP_MJ_READ, IRP_MJ_SET_SECURITY, IRP_MJ_SYSTEM_CONTROL, IRP_MJ_WRITE, IRP_MN_REMOVE_DEVICE,
    KSDISPATCH_TABLE, KSOBJECT_CREATE_ITEM, KsCreateItem, NTSTATUS, PDRIVER_DISPATCH,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_PROPSET_NOT_FOUND, STATUS_SUCCESS,
};

use crate::machine::{MachineInner, current, violation};
use crate::objects::{DeviceBox, DriverBox, IrpBox};
use crate::sync::Locked;
use crate::verifier::Rule;

/// Majors `KsSetMajorFunctionHandler` accepts.
pub(crate) const ROUTABLE: [u8; 8] = [
    IRP_MJ_CREATE,
    IRP_MJ_CLOSE,
    IRP_MJ_DEVICE_CONTROL,
    IRP_MJ_READ,
    IRP_MJ_WRITE,
    IRP_MJ_FLUSH_BUFFERS,
    IRP_MJ_QUERY_SECURITY,
    IRP_MJ_SET_SECURITY,
];

/// `KSDISPATCH_FASTIO`.
const KSDISPATCH_FASTIO: u32 = 0x8000_0000;

/// A device header: the filter factories (create items) of a device.
pub(crate) struct DeviceHeader {
    pub items: *mut KSOBJECT_CREATE_ITEM,
    pub count: u32,
    pub pnp_device: *mut DEVICE_OBJECT,
    pub base_device: *mut DEVICE_OBJECT,
}

/// An object header: a file object's dispatch table and child create items.
pub(crate) struct ObjectHeader {
    pub items: *mut KSOBJECT_CREATE_ITEM,
    pub count: u32,
    pub table: *const KSDISPATCH_TABLE,
    pub file: *mut FILE_OBJECT,
    pub create_item: *mut KSOBJECT_CREATE_ITEM,
}

/// Completes an IRP with `status`.
///
/// # Safety
/// As for [`IrpBox::of`], for the call: a live kshost IRP that the caller owns and gives up.
unsafe fn complete(irp: *mut IRP, status: NTSTATUS) -> NTSTATUS {
    // SAFETY: the caller's contract is `IrpBox::of`'s; the reference ends before the completion.
    unsafe { IrpBox::of(irp) }.irp.IoStatus.Status = status;
    // SAFETY: the caller's contract: an IRP it owns and gives up.
    unsafe { crate::iomgr::complete_request(&current(), irp) };
    status
}

/// `IoSkipCurrentIrpStackLocation`.
///
/// # Safety
/// As for [`IrpBox::of`], for the call: a live kshost IRP that the caller owns.
pub(crate) unsafe fn skip_current(irp: *mut IRP) {
    // SAFETY: the caller's contract is `IrpBox::of`'s.
    let mut b = unsafe { IrpBox::of(irp) };
    b.irp.CurrentLocation += 1;
    let overlay = b.overlay();
    overlay.CurrentStackLocation = overlay.CurrentStackLocation.wrapping_add(1);
}

// ---- headers -------------------------------------------------------------------------------------

/// `KsAllocateDeviceHeader`.
///
/// # Safety
/// As the routine's contract: `out` is null or valid for writing a pointer, and `items` (if
/// `count > 0`) is an array of `count` create items that stays valid until the header is freed
/// (the header keeps the pointer, as ks.sys does).
pub(crate) unsafe fn allocate_device_header(
    m: &MachineInner,
    out: *mut *mut c_void,
    count: u32,
    items: *mut KSOBJECT_CREATE_ITEM,
) -> NTSTATUS {
    if out.is_null() || (count > 0 && items.is_null()) {
        return STATUS_INVALID_PARAMETER;
    }
    if m.pool.injected_failure() {
        return ksabi::STATUS_INSUFFICIENT_RESOURCES; // the header comes from pool
    }
    let h = Box::into_raw(Box::new(DeviceHeader {
        items,
        count,
        pnp_device: std::ptr::null_mut(),
        base_device: std::ptr::null_mut(),
    }));
    m.objects.locked().ks_headers.insert(h as usize, "device");
    // SAFETY: the caller's out pointer.
    unsafe { *out = h.cast() };
    STATUS_SUCCESS
}

/// `KsFreeDeviceHeader` (`kind` "device") and `KsFreeObjectHeader` ("object").
///
/// # Safety
/// As the routines' contract: no one uses the header during or after the call. The registry
/// makes the free itself sound (a pointer that is not a live header of `kind` is reported without
/// being read); the contract keeps others from reading a freed header.
pub(crate) unsafe fn free_header(m: &MachineInner, header: *mut c_void, kind: &'static str) {
    let known = m.objects.locked().ks_headers.remove(&(header as usize));
    match known {
        Some(k) if k == kind => {
            if kind == "device" {
                // SAFETY: allocated by allocate_device_header; removed from the registry once.
                drop(unsafe { Box::from_raw(header.cast::<DeviceHeader>()) });
            } else {
                // SAFETY: allocated by allocate_object_header; removed once.
                drop(unsafe { Box::from_raw(header.cast::<ObjectHeader>()) });
            }
        }
        Some(k) => {
            m.objects.locked().ks_headers.insert(header as usize, k);
            violation(Rule::KsHeaderBadFree, format!("KsFree{kind}Header on a {k} header {header:p}"));
        }
        None => violation(
            Rule::KsHeaderBadFree,
            format!("KsFree{kind}Header({header:p}): not an allocated header"),
        ),
    }
}

/// The device header `header` points to, if it is one (any other pointer is only looked up).
///
/// # Safety
/// If `header` is a live device header, it is not freed during `'a` and no other reference to it
/// is used meanwhile (the driver changes it only on its PnP-serialised paths).
pub(crate) unsafe fn device_header<'a>(
    m: &MachineInner,
    header: *mut c_void,
) -> Option<&'a mut DeviceHeader> {
    (m.objects.locked().ks_headers.get(&(header as usize)) == Some(&"device"))
        // SAFETY: a registered device header (checked just before), neither freed nor referenced
        // elsewhere during 'a (the caller's contract).
        .then(|| unsafe { &mut *header.cast::<DeviceHeader>() })
}

/// The object header `header` points to, if it is one (any other pointer is only looked up).
///
/// # Safety
/// If `header` is a live object header, it is not freed during `'a` (it lives as long as its file
/// object, which the caller keeps alive). Object headers are never written after allocation.
pub(crate) unsafe fn object_header<'a>(m: &MachineInner, header: *mut c_void) -> Option<&'a ObjectHeader> {
    (m.objects.locked().ks_headers.get(&(header as usize)) == Some(&"object"))
        // SAFETY: a registered object header (checked just before), not freed during 'a (the
        // caller's contract).
        .then(|| unsafe { &*header.cast::<ObjectHeader>() })
}

/// The first pointer of a device's extension (where KS requires the `KSDEVICE_HEADER`).
///
/// # Safety
/// `device` is a device object kshost created on a live machine (as for [`DeviceBox::of`]).
unsafe fn extension_header(device: *mut DEVICE_OBJECT) -> *mut c_void {
    // SAFETY: the caller's contract; `DeviceExtension`, set at creation, is read through the raw
    // pointer, so no reference covers a device the driver may be using.
    let ext = unsafe { (*device).DeviceExtension }.cast::<*mut c_void>();
    if ext.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a non-null extension is at least pointer-sized and 16-aligned (kshost allocates it).
    unsafe { *ext }
}

/// The device header at the start of a device's extension.
///
/// # Safety
/// As for [`extension_header`], and as for [`device_header`] during `'a`.
unsafe fn header_of_device<'a>(m: &MachineInner, device: *mut DEVICE_OBJECT) -> Option<&'a DeviceHeader> {
    // SAFETY: the caller's contract is `extension_header`'s.
    let header = unsafe { extension_header(device) };
    // SAFETY: the caller's contract is `device_header`'s.
    unsafe { device_header(m, header) }.map(|h| &*h)
}

/// The object header at the start of a file object's `FsContext` structure.
///
/// # Safety
/// `file` is null or a live file object of this machine (kept alive by a reference) whose
/// `FsContext` no one is writing (its create has returned), and that stays alive during `'a` (so
/// does its header, freed only by the driver's close).
unsafe fn header_of_file<'a>(m: &MachineInner, file: *mut FILE_OBJECT) -> Option<&'a ObjectHeader> {
    if file.is_null() {
        return None;
    }
    // SAFETY: the caller's contract: a live file object; `FsContext` is read through the raw
    // pointer.
    let ctx = unsafe { (*file).FsContext }.cast::<*mut c_void>();
    if ctx.is_null() {
        return None;
    }
    // SAFETY: the driver's FsContext structure starts with its KSOBJECT_HEADER.
    let header = unsafe { *ctx };
    // SAFETY: the file object, and so its header, lives during 'a (the caller's contract).
    let header = unsafe { object_header(m, header) }?;
    (header.file == file).then_some(header)
}

/// `KsAllocateObjectHeader`.
///
/// # Safety
/// As the routine's contract: `out` is null or valid for writing a pointer; `irp` is null or the
/// create IRP the caller is dispatching, which it owns (as for [`IrpBox::of`]); `table` is null or
/// a dispatch table and `items` (if `count > 0`) an array of `count` create items, both valid
/// until the header is freed (the header keeps the pointers, as ks.sys does).
pub(crate) unsafe fn allocate_object_header(
    m: &MachineInner,
    out: *mut *mut c_void,
    count: u32,
    items: *mut KSOBJECT_CREATE_ITEM,
    irp: *mut IRP,
    table: *const KSDISPATCH_TABLE,
) -> NTSTATUS {
    if !crate::irql::require_at_most(ksabi::APC_LEVEL, "KsAllocateObjectHeader") {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if out.is_null() || table.is_null() || irp.is_null() || (count > 0 && items.is_null()) {
        return STATUS_INVALID_PARAMETER;
    }
    if m.pool.injected_failure() {
        return ksabi::STATUS_INSUFFICIENT_RESOURCES; // the header comes from pool
    }
    // SAFETY: the driver passes the create IRP it is dispatching, which it owns (the export's
    // contract).
    let mut b = unsafe { IrpBox::of(irp) };
    let (file, device) = (b.stack_mut().FileObject, b.stack_mut().DeviceObject);
    // Every major routed through KS needs an entry in this table.
    // SAFETY: the current location's device is the kshost device the IRP was dispatched to; only
    // `DriverObject`, set at creation, is read.
    let driver: *mut DRIVER_OBJECT = unsafe { DeviceBox::of(device) }.dev.DriverObject;
    // SAFETY: a device's driver object is a kshost driver box; only its `ks_routed` lock is used.
    let routed = unsafe { DriverBox::of(driver) }.ks_routed.locked().clone();
    // SAFETY: the table the driver passes, valid while the header lives.
    let t = unsafe { &*table };
    for major in routed {
        if major != IRP_MJ_CREATE && entry(t, major).is_none() {
            violation(
                Rule::MissingDispatchEntry,
                format!("KSDISPATCH_TABLE {table:p} has no entry for routed major {}", major_name(major)),
            );
        }
    }
    // KS stored the create item in DriverContext[0].
    let create_item = b.overlay().DriverContext[0].cast();
    let h = Box::into_raw(Box::new(ObjectHeader { items, count, table, file, create_item }));
    m.objects.locked().ks_headers.insert(h as usize, "object");
    // SAFETY: the caller's out pointer.
    unsafe { *out = h.cast() };
    STATUS_SUCCESS
}

fn entry(t: &KSDISPATCH_TABLE, major: u8) -> PDRIVER_DISPATCH {
    match major {
        IRP_MJ_DEVICE_CONTROL => t.DeviceIoControl,
        IRP_MJ_READ => t.Read,
        IRP_MJ_WRITE => t.Write,
        IRP_MJ_FLUSH_BUFFERS => t.Flush,
        IRP_MJ_CLOSE => t.Close,
        IRP_MJ_QUERY_SECURITY => t.QuerySecurity,
        IRP_MJ_SET_SECURITY => t.SetSecurity,
        _ => None,
    }
}

pub(crate) fn major_name(major: u8) -> &'static str {
    match major {
        IRP_MJ_CREATE => "IRP_MJ_CREATE",
        IRP_MJ_CLOSE => "IRP_MJ_CLOSE",
        IRP_MJ_READ => "IRP_MJ_READ",
        IRP_MJ_WRITE => "IRP_MJ_WRITE",
        IRP_MJ_FLUSH_BUFFERS => "IRP_MJ_FLUSH_BUFFERS",
        IRP_MJ_DEVICE_CONTROL => "IRP_MJ_DEVICE_CONTROL",
        IRP_MJ_QUERY_SECURITY => "IRP_MJ_QUERY_SECURITY",
        IRP_MJ_SET_SECURITY => "IRP_MJ_SET_SECURITY",
        IRP_MJ_PNP => "IRP_MJ_PNP",
        IRP_MJ_POWER => "IRP_MJ_POWER",
        _ => "another major",
    }
}

// ---- dispatch ------------------------------------------------------------------------------------

/// `KsSetMajorFunctionHandler`.
///
/// # Safety
/// As the routine's contract: `driver` is the caller's driver object (one kshost created), and
/// the caller is its `DriverEntry`: nothing else reads or writes it meanwhile.
pub(crate) unsafe fn set_major_function_handler(driver: *mut DRIVER_OBJECT, major: u32) -> NTSTATUS {
    if major & KSDISPATCH_FASTIO != 0 {
        violation(Rule::Unsupported, "KsSetMajorFunctionHandler with KSDISPATCH_FASTIO".into());
        return STATUS_INVALID_PARAMETER;
    }
    let Some(major) = u8::try_from(major).ok().filter(|m| ROUTABLE.contains(m)) else {
        return STATUS_INVALID_PARAMETER;
    };
    let handler: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP) -> NTSTATUS =
        if major == IRP_MJ_CREATE { dispatch_create } else { dispatch_by_table };
    // SAFETY: the driver's own object, during DriverEntry.
    unsafe { (*driver).MajorFunction[usize::from(major)] = Some(handler) };
    // SAFETY: the driver passes its own driver object (`KsSetMajorFunctionHandler` in
    // `DriverEntry`); only its `ks_routed` lock is used.
    let mut routed = unsafe { DriverBox::of(driver) }.ks_routed.locked();
    if !routed.contains(&major) {
        routed.push(major);
    }
    STATUS_SUCCESS
}

/// KS' `IRP_MJ_CREATE`: find the create item by name in the parent's object header (a pin of a
/// filter) or the device header (a filter), store it in `DriverContext[0]`, call it.
pub(crate) unsafe extern "system" fn dispatch_create(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let m = current();
    // SAFETY: a dispatch routine owns the IRP it is given.
    let file = unsafe { IrpBox::of(irp) }.stack_mut().FileObject;
    // SAFETY: the create's file object, allocated by kshost and referenced by the create IRP; only
    // kshost's create path and this dispatch use it until the create returns, and this dispatch
    // only reads it. Only the `FILE_OBJECT` is referenced, not kshost's record beside it.
    let fo = unsafe { &*file };
    let related = fo.RelatedFileObject;
    let found = if related.is_null() {
        // SAFETY: the device the I/O manager dispatched to, a kshost device; its header is freed
        // only at the remove, which comes after every create; two fields are copied out.
        unsafe { header_of_device(&m, device) }
            .map(|h| (h.items, h.count))
            .ok_or("the device extension does not start with a KS device header")
    } else {
        // SAFETY: the parent's file object, referenced by the child's while it is created; the
        // parent's create returned long ago, so its `FsContext` is not being written.
        unsafe { header_of_file(&m, related) }
            .map(|h| (h.items, h.count))
            .ok_or("relative to a file object without a KS object header")
    };
    let (items, count) = match found {
        Ok(f) => f,
        Err(why) => {
            violation(Rule::NoObjectHeader, format!("IRP_MJ_CREATE: {why}"));
            // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
            return unsafe { complete(irp, STATUS_INVALID_DEVICE_REQUEST) };
        }
    };
    let name_units = fo.FileName.Length as usize / 2;
    let name: &[u16] = if fo.FileName.Buffer.is_null() {
        &[]
    } else {
        // SAFETY: FileName points at `name_units` characters owned by the file object.
        unsafe { std::slice::from_raw_parts(fo.FileName.Buffer, name_units) }
    };
    let name = name.strip_prefix(&[u16::from(b'\\')]).unwrap_or(name);
    let (component, has_params) = match name.iter().position(|&c| c == u16::from(b'\\')) {
        Some(i) => (&name[..i], true),
        None => (name, false),
    };
    let items: &mut [KSOBJECT_CREATE_ITEM] = if count == 0 || items.is_null() {
        &mut []
    } else {
        // SAFETY: the driver's create-item array, valid while its header lives.
        unsafe { std::slice::from_raw_parts_mut(items, count as usize) }
    };
    let mut found: Option<&KSOBJECT_CREATE_ITEM> = None;
    let mut wildcard: Option<&KSOBJECT_CREATE_ITEM> = None;
    for item in items.iter() {
        if item.Create.is_none() {
            continue;
        }
        if KsCreateItem::from_bits_retain(item.Flags).contains(KsCreateItem::WILDCARD) {
            wildcard = Some(item);
        } else if eq_ignore_case(unicode_units(&item.ObjectClass), component) {
            found = Some(item);
            break;
        }
    }
    let Some(item) = found.or(wildcard) else {
        // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
        return unsafe { complete(irp, STATUS_OBJECT_NAME_NOT_FOUND) };
    };
    if has_params && KsCreateItem::from_bits_retain(item.Flags).contains(KsCreateItem::NOPARAMETERS) {
        // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
        return unsafe { complete(irp, STATUS_INVALID_PARAMETER) };
    }
    // KSCREATE_ITEM_IRP_STORAGE.
    // SAFETY: the create dispatch owns the IRP until it calls the create item below.
    unsafe { IrpBox::of(irp) }.overlay().DriverContext[0] = std::ptr::from_ref(item).cast_mut().cast();
    let create = item.Create.unwrap_or(invalid);
    // SAFETY: the driver's create routine with the IRP it now owns.
    unsafe { create(device, irp) }
}

/// The characters of a counted string (empty if it has no buffer).
fn unicode_units(s: &ksabi::UNICODE_STRING) -> &[u16] {
    if s.Buffer.is_null() {
        &[]
    } else {
        // SAFETY: a driver's static name of `Length` bytes, valid while its header lives.
        unsafe { std::slice::from_raw_parts(s.Buffer, s.Length as usize / 2) }
    }
}

unsafe extern "system" fn invalid(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
    unsafe { complete(irp, STATUS_INVALID_DEVICE_REQUEST) }
}

fn eq_ignore_case(a: &[u16], b: &[u16]) -> bool {
    let lower = |c: u16| if (u16::from(b'A')..=u16::from(b'Z')).contains(&c) { c + 32 } else { c };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| lower(x) == lower(y))
}

/// KS' dispatch for every routed major but create: the entry of the file object's table.
pub(crate) unsafe extern "system" fn dispatch_by_table(
    device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    let m = current();
    let (file, major) = {
        // SAFETY: a dispatch routine owns the IRP it is given; `stack` ends before the IRP is passed on.
        let stack = unsafe { IrpBox::of(irp) }.into_stack_location();
        (stack.FileObject, stack.MajorFunction)
    };
    // SAFETY: the current location's file object, referenced by the IRP; its create has returned (requests
    // other than the create come after it).
    let Some(header) = (unsafe { header_of_file(&m, file) }) else {
        violation(
            Rule::NoObjectHeader,
            format!(
                "{}: the file object's FsContext does not start with its KS object header",
                major_name(major)
            ),
        );
        // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
        return unsafe { complete(irp, STATUS_INVALID_DEVICE_REQUEST) };
    };
    // SAFETY: the table referenced by the header stays valid while the header lives.
    let Some(handler) = entry(unsafe { &*header.table }, major) else {
        violation(
            Rule::MissingDispatchEntry,
            format!("{}: no entry in the object's KSDISPATCH_TABLE", major_name(major)),
        );
        // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
        return unsafe { complete(irp, STATUS_INVALID_DEVICE_REQUEST) };
    };
    // SAFETY: the driver's dispatch routine with the IRP it now owns.
    unsafe { handler(device, irp) }
}

/// `KsDispatchIrp`.
///
/// # Safety
/// As the routine's contract: `device` is the device the I/O manager dispatched `irp` to, and
/// `irp` an IRP the caller owns (as for [`IrpBox::of`]) and hands on here.
pub(crate) unsafe fn dispatch_irp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the driver passes the IRP it is dispatching, which it owns (the export's contract).
    let major = unsafe { IrpBox::of(irp) }.stack_mut().MajorFunction;
    let routine: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP) -> NTSTATUS = match major {
        IRP_MJ_CREATE => dispatch_create,
        IRP_MJ_PNP => default_dispatch_pnp,
        IRP_MJ_POWER | IRP_MJ_SYSTEM_CONTROL => default_forward,
        m if ROUTABLE.contains(&m) => dispatch_by_table,
        _ => invalid,
    };
    // SAFETY: a KS routine with the device and IRP we were given.
    unsafe { routine(device, irp) }
}

/// `KsDispatchInvalidDeviceRequest`.
///
/// # Safety
/// As the routine's contract: `irp` is an IRP the caller owns (as for [`IrpBox::of`]) and gives
/// up: it is completed here.
pub(crate) unsafe fn dispatch_invalid(irp: *mut IRP) -> NTSTATUS {
    // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
    unsafe { complete(irp, STATUS_INVALID_DEVICE_REQUEST) }
}

/// `KsDefaultDeviceIoCompletion`.
///
/// # Safety
/// As the routine's contract: `irp` is a device-control IRP the caller owns (as for
/// [`IrpBox::of`]) and gives up: it is completed here.
pub(crate) unsafe fn default_device_io_completion(irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the driver passes the IRP it is dispatching, which it owns (the export's contract).
    let code = unsafe { IrpBox::of(irp) }.ioctl().IoControlCode;
    let status = match code {
        IOCTL_KS_PROPERTY | IOCTL_KS_METHOD | IOCTL_KS_ENABLE_EVENT | IOCTL_KS_DISABLE_EVENT => {
            STATUS_PROPSET_NOT_FOUND
        }
        IOCTL_KS_RESET_STATE => STATUS_SUCCESS,
        _ => STATUS_INVALID_DEVICE_REQUEST,
    };
    // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
    unsafe { complete(irp, status) }
}

/// `KsDefaultDispatchPnp`.
pub(crate) unsafe extern "system" fn default_dispatch_pnp(
    device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
) -> NTSTATUS {
    let m = current();
    // SAFETY: a dispatch routine owns the IRP it is given.
    let minor = unsafe { IrpBox::of(irp) }.stack_mut().MinorFunction;
    // SAFETY: the device the I/O manager dispatched to, a kshost device.
    let header_ptr = unsafe { extension_header(device) };
    // SAFETY: the driver frees its device header only here, below, after the last use of
    // `header`; PnP IRPs are serialised, so nothing else uses the header meanwhile.
    let Some(header) = (unsafe { device_header(&m, header_ptr) }) else {
        violation(
            Rule::NoObjectHeader,
            "KsDefaultDispatchPnp: no KS device header at the start of the extension".into(),
        );
        // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
        return unsafe { complete(irp, STATUS_INVALID_DEVICE_REQUEST) };
    };
    let lower = header.pnp_device;
    if minor == IRP_MN_REMOVE_DEVICE {
        // SAFETY: KS frees the device header at the remove, which no one dispatches through
        // afterwards; `header` is not used after this.
        unsafe { free_header(&m, header_ptr, "device") };
    }
    let status = if lower.is_null() {
        // SAFETY: a dispatch routine owns the IRP it is given.
        let s = unsafe { IrpBox::of(irp) }.irp.IoStatus.Status;
        // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
        unsafe { complete(irp, s) }
    } else {
        // SAFETY: a dispatch routine owns the IRP it is given, until it passes it on below.
        unsafe { skip_current(irp) };
        // SAFETY: `lower` is the device the header names below this one, a kshost device; the
        // IRP is handed on and not touched again here.
        unsafe { crate::iomgr::call_driver(lower, irp) }
    };
    if minor == IRP_MN_REMOVE_DEVICE {
        if !lower.is_null() {
            // SAFETY: `lower` is the kshost device below, in the remove path.
            unsafe { crate::iomgr::detach(lower) };
        }
        // SAFETY: the driver's own device, deleted on the remove path (PnP-serialised).
        unsafe { crate::iomgr::delete_device(&m, device) };
    }
    status
}

/// `KsDefaultForwardIrp` and `KsDefaultDispatchPower` (no power callbacks are registered by
/// drivers kshost runs; `PoStartNextPowerIrp` is implicit).
pub(crate) unsafe extern "system" fn default_forward(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    let m = current();
    // SAFETY: the device the I/O manager dispatched to, a kshost device.
    let header_ptr = unsafe { extension_header(device) };
    // SAFETY: a forwarded IRP arrives before the remove frees the header (the driver may not
    // forward after its remove); only one field is copied out.
    let lower = unsafe { device_header(&m, header_ptr) }.map(|h| h.pnp_device);
    if let Some(lower) = lower.filter(|d| !d.is_null()) {
        // SAFETY: a dispatch routine owns the IRP it is given, until it passes it on below.
        unsafe { skip_current(irp) };
        // SAFETY: `lower` is the device the header names below this one, a kshost device; the
        // IRP is handed on and not touched again here.
        unsafe { crate::iomgr::call_driver(lower, irp) }
    } else {
        // SAFETY: a dispatch routine owns the IRP it is given.
        let s = unsafe { IrpBox::of(irp) }.irp.IoStatus.Status;
        // SAFETY: a dispatch routine owns the IRP it is given, and completing gives it up.
        unsafe { complete(irp, s) }
    }
}
