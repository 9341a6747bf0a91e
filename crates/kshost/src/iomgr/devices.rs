//! Driver and device objects: creating them, driver-object extensions, the root bus driver that
//! owns the root-enumerated PDO, and finding the top of a device stack.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, Ordering};

use ksabi::{
    DEVICE_OBJECT, DRIVER_OBJECT, DeviceFlags, FILE_OBJECT, IRP, IRP_MJ_COUNT, IRP_MJ_PNP, IRP_MJ_POWER,
    NTSTATUS, STATUS_INVALID_DEVICE_REQUEST, STATUS_SUCCESS, UNICODE_STRING,
};

use super::requests::complete_request;
use crate::machine::{MachineInner, violation};
use crate::objects::{DeviceBox, DeviceMeta, DriverBox};
use crate::sync::Locked;
use crate::verifier::Rule;

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
///
/// # Safety
/// As the routine's contract: `driver` is null or a driver object kshost created (driver boxes
/// live as long as the machine), and `out` is null or valid for writing a pointer.
pub(crate) unsafe fn allocate_driver_extension(
    driver: *mut DRIVER_OBJECT,
    client_id: *mut c_void,
    size: u32,
    out: *mut *mut c_void,
) -> NTSTATUS {
    if out.is_null() || driver.is_null() {
        return ksabi::STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller's contract: a driver object of this machine; only its `extensions` lock is
    // used, through a raw projection, so no reference covers the `DRIVER_OBJECT` the driver owns.
    let mut exts = unsafe { &(*driver.cast::<DriverBox>()).extensions }.locked();
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
///
/// # Safety
/// As the routine's contract: `driver` is null or a driver object kshost created.
pub(crate) unsafe fn driver_extension(driver: *mut DRIVER_OBJECT, client_id: *mut c_void) -> *mut c_void {
    if driver.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the caller's contract: a driver object of this machine; only its `extensions` lock is
    // used, through a raw projection.
    unsafe { &(*driver.cast::<DriverBox>()).extensions }
        .locked()
        .iter_mut()
        .find(|(id, _)| *id == client_id as usize)
        .map_or(std::ptr::null_mut(), |(_, b)| b.as_mut_ptr().cast())
}

/// What the I/O manager puts in a driver's unset `MajorFunction` slots (`IopInvalidDeviceRequest`).
unsafe extern "system" fn invalid_device_request(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the I/O manager passes a live IRP that is now ours to complete.
    unsafe { (*irp).IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST };
    // `IofCompleteRequest`.
    // SAFETY: the dispatch routine owns the IRP it is given, and completing gives it up.
    unsafe { complete_request(&crate::machine::current(), irp) };
    STATUS_INVALID_DEVICE_REQUEST
}

/// Creates a device object (`IoCreateDevice`).
///
/// # Safety
/// `driver` is a driver object kshost created, and the caller is on a PnP-serialised path
/// (`DriverEntry`, `AddDevice`, kshost's install): no one else reads or writes the driver object's
/// device list during the call.
pub(crate) unsafe fn create_device(
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
    // SAFETY: the caller's contract: a kshost driver object on a PnP-serialised path; no other
    // reference to it is live here.
    let drv = &mut unsafe { DriverBox::of(driver) }.drv;
    // SAFETY: the device box was just allocated above; nothing else uses it until it is linked here.
    unsafe { DeviceBox::of(raw.cast()) }.dev.NextDevice = drv.DeviceObject;
    drv.DeviceObject = raw.cast();
    raw.cast()
}

/// `IoDeleteDevice` (its IRQL check aside): unregisters `device` and unlinks it from its driver's
/// device list.
///
/// # Safety
/// The caller is on a PnP-serialised path (the remove): if `device` is a live device of this
/// machine, no one else reads or writes it, nor its driver's device list, during the call. (A
/// pointer that is not a live device is reported without being read.)
pub(crate) unsafe fn delete_device(m: &MachineInner, device: *mut DEVICE_OBJECT) {
    // SAFETY: `mark_deleted` runs only once `known_device` has found `device` in the registry.
    if !crate::machine::known_device(m, device) || !unsafe { crate::machine::mark_deleted(device) } {
        violation(Rule::DeviceBadDelete, format!("IoDeleteDevice({device:p}): not a live device"));
        return;
    }
    m.objects.locked().devices.remove(&(device as usize));
    // Still attached to the device below, that device's `AttachedDevice` would point at freed
    // memory: a driver detaches (`IoDetachDevice`) before it deletes (FIDELITY.md).
    // SAFETY: a registered device (checked above); deletion is PnP-serialised.
    let below = unsafe { DeviceBox::of(device) }.meta.lower.load(Ordering::Acquire);
    // SAFETY: the device it was attached to is a kshost device (boxes live as long as the machine).
    if !below.is_null() && unsafe { DeviceBox::of(below) }.dev.AttachedDevice == device {
        violation(
            Rule::DeviceBadDelete,
            format!("IoDeleteDevice({device:p}) while still attached to {below:p}: IoDetachDevice first"),
        );
    }
    // Unlink from the driver's device list.
    // SAFETY: a registered device (checked above); deletion is PnP-serialised (the caller's
    // contract), so no one else uses it meanwhile.
    let dev = &unsafe { DeviceBox::of(device) }.dev;
    // SAFETY: a device's driver object is a kshost driver box; its device list is changed only in
    // PnP-serialised paths (create, delete), of which this is one.
    let driver = &mut unsafe { DriverBox::of(dev.DriverObject) }.drv;
    if driver.DeviceObject == device {
        driver.DeviceObject = dev.NextDevice;
        return;
    }
    let mut at = driver.DeviceObject;
    while !at.is_null() {
        // SAFETY: a device on the driver's device list is a kshost device (boxes live as long as
        // the machine), distinct from `device`; the list is changed only in PnP-serialised paths.
        let entry = &mut unsafe { DeviceBox::of(at) }.dev;
        if entry.NextDevice == device {
            entry.NextDevice = dev.NextDevice;
            return;
        }
        at = entry.NextDevice;
    }
}

/// `IoAttachDeviceToDeviceStack`: attaches `source` to the top of `target`'s stack and returns the
/// device it is now attached to.
///
/// # Safety
/// The caller is on a PnP-serialised path (`AddDevice`, kshost's install): no one else reads or
/// writes the devices of `target`'s stack, nor `source`, during the call. (Pointers that are not
/// devices of this machine are reported without being read.)
pub(crate) unsafe fn attach_device(
    m: &MachineInner,
    source: *mut DEVICE_OBJECT,
    target: *mut DEVICE_OBJECT,
) -> *mut DEVICE_OBJECT {
    if !crate::machine::known_device(m, source) || !crate::machine::known_device(m, target) {
        violation(
            Rule::UnknownObject,
            "IoAttachDeviceToDeviceStack with a device kshost did not create".into(),
        );
        return std::ptr::null_mut();
    }
    // SAFETY: `target` is a registered device (checked above); attaching is PnP-serialised (the
    // caller's contract).
    let top = unsafe { top_of_stack(target) };
    let stack_size = {
        // SAFETY: the top of a registered device's stack is a kshost device; attaching is
        // PnP-serialised, so no one else writes it meanwhile.
        let below = &mut unsafe { DeviceBox::of(top) }.dev;
        below.AttachedDevice = source;
        below.StackSize + 1
    };
    // SAFETY: `source` is a registered device (checked above), not yet in any stack; `below` is no
    // longer used.
    let above = unsafe { DeviceBox::of(source) };
    above.dev.StackSize = stack_size;
    above.meta.lower.store(top, Ordering::Release);
    top
}

/// `IoDetachDevice`: detaches whatever is attached to `target`.
///
/// # Safety
/// `target` is a device object kshost created (as for [`DeviceBox::of`]), and the caller is on
/// a PnP-serialised path (remove), so no one else changes the device meanwhile.
pub(crate) unsafe fn detach(target: *mut DEVICE_OBJECT) {
    // SAFETY: the caller's contract is `DeviceBox::of`'s.
    unsafe { DeviceBox::of(target) }.dev.AttachedDevice = std::ptr::null_mut();
}

/// The root bus driver that owns root-enumerated PDOs: it succeeds PnP and power IRPs.
pub(crate) fn create_root_pdo(m: &Arc<MachineInner>, hardware_id: &str) -> *mut DEVICE_OBJECT {
    let root = create_driver_object(m, "kshost_root");
    // SAFETY: the root driver object was just created above and is not yet shown to anyone.
    let drv = &mut unsafe { DriverBox::of(root) }.drv;
    drv.MajorFunction[usize::from(IRP_MJ_PNP)] = Some(root_pnp);
    drv.MajorFunction[usize::from(IRP_MJ_POWER)] = Some(root_pnp);
    // SAFETY: the root driver object was just created above and is not yet shown to anyone.
    let pdo = unsafe { create_device(m, root, 0, ksabi::FILE_DEVICE_KS, 0) };
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
    // `IofCompleteRequest`.
    // SAFETY: the dispatch routine owns the IRP it is given, and completing gives it up.
    unsafe { complete_request(&crate::machine::current(), irp) };
    STATUS_SUCCESS
}

/// `IoGetRelatedDeviceObject`: where requests on `file` go — the top of the stack of the device
/// the file was opened on (`FILE_OBJECT.DeviceObject` is that named device, the PDO, not the
/// driver's FDO above it).
///
/// # Safety
/// `file` is a live file object of this machine (as for
/// [`FileBox::meta_of`](crate::objects::FileBox::meta_of)) for the call.
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
