//! The driver and device level: `DriverEntry`, `AddDevice`, PnP, unload.
//!
//! The device is root-enumerated. Its extension starts with the `KSDEVICE_HEADER` (KS finds it
//! there) and holds the filter create item, which must outlive the header, and the device-wide
//! pin counts (`KSPROPERTY_PIN_GLOBALCINSTANCES`).

use core::mem::size_of;
use core::ptr::{self, null_mut};
use core::sync::atomic::AtomicU32;

use ksabi::{
    DEVICE_OBJECT, DRIVER_OBJECT, DeviceFlags, Executive, FALSE, FILE_DEVICE_KS, FILE_DEVICE_SECURE_OPEN,
    IRP, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL, IRP_MJ_PNP, IRP_MJ_POWER,
    IRP_MJ_SYSTEM_CONTROL, IRP_MN_REMOVE_DEVICE, IRP_MN_START_DEVICE, IRP_MN_SURPRISE_REMOVAL, KEVENT,
    KSOBJECT_CREATE_ITEM, KernelMode, NTSTATUS, NotificationEvent, STATUS_INVALID_PARAMETER,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING, STATUS_SUCCESS, TRUE, UNICODE_STRING, nt_success,
};

use crate::kernel::driver::{Driver, Key};
use crate::kernel::irp::{Device, Irp};
use crate::kernel::nt;
use crate::kernel::nt::{current_stack, static_unicode, utf16};
use crate::log::{LEVEL_ERROR, LEVEL_INFO, kdprint};
use crate::{filter, ids, kernel, pin, sys};

/// The major functions KS dispatches through each file object's `KSDISPATCH_TABLE`.
/// Every dispatch table of the driver has an entry for each of them.
pub const KS_ROUTED_MAJORS: [u8; 3] = [IRP_MJ_CREATE, IRP_MJ_CLOSE, IRP_MJ_DEVICE_CONTROL];

/// `"GLOBAL"` in UTF-16: the filter create item's name and the interface reference string.
static REFERENCE_STRING_UTF16: [u16; 6] = utf16(ids::REFERENCE_STRING);

/// Counts across every filter of the device.
pub struct DeviceCounters {
    /// Pin instances per factory.
    pub pins: [AtomicU32; 2],
}

/// Per-device storage, in the device object's extension.
#[repr(C)]
struct DeviceExtension {
    /// `KSDEVICE_HEADER`: KS requires it to be the first field.
    header: *mut core::ffi::c_void,
    /// The device below (the PDO) that PnP and power IRPs go to.
    lower: *mut DEVICE_OBJECT,
    /// The symbolic link of the registered interface (allocated by the I/O manager).
    interface_link: UNICODE_STRING,
    /// The filter factory, referenced (not copied) by the device header.
    create_items: [KSOBJECT_CREATE_ITEM; 1],
    /// Device-wide counts.
    counters: DeviceCounters,
}

/// The device-wide counters of our device object.
///
/// # Safety
/// `device` must be this driver's device object.
pub unsafe fn counters(device: *mut DEVICE_OBJECT) -> *const DeviceCounters {
    // SAFETY: `device` is our FDO, whose extension AddDevice initialised.
    let extension = unsafe { (*device).DeviceExtension }.cast::<DeviceExtension>();
    // SAFETY: as above; only the address is taken.
    unsafe { &raw const (*extension).counters }
}

/// `DriverEntry`: routes the KS major functions and sets `AddDevice` and `DriverUnload`.
///
/// # Safety
/// Called once by the I/O manager with a valid driver object.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    registry_path: *mut UNICODE_STRING,
) -> NTSTATUS {
    sys::resolve_imports();
    // SAFETY: DriverEntry's own driver object.
    let Some(this) = (unsafe { Driver::from_raw(driver) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    // SAFETY: DriverEntry's registry path, at PASSIVE_LEVEL. (The key closes at the statement's end.)
    let status = crate::limits::load(this, unsafe { Key::service(registry_path) }.as_ref());
    if !nt_success(status) {
        return status;
    }
    for major in KS_ROUTED_MAJORS {
        // SAFETY: `driver` is the valid driver object passed to DriverEntry.
        let status = unsafe { sys::KsSetMajorFunctionHandler(driver, u32::from(major)) };
        if !nt_success(status) {
            return status;
        }
    }
    // SAFETY: DriverEntry has exclusive access to the driver object it is given.
    let driver = unsafe { &mut *driver };
    driver.MajorFunction[usize::from(IRP_MJ_CLEANUP)] = Some(dispatch_cleanup);
    driver.MajorFunction[usize::from(IRP_MJ_PNP)] = Some(dispatch_pnp);
    driver.MajorFunction[usize::from(IRP_MJ_POWER)] = Some(sys::KsDefaultDispatchPower);
    driver.MajorFunction[usize::from(IRP_MJ_SYSTEM_CONTROL)] = Some(sys::KsDefaultForwardIrp);
    driver.DriverUnload = Some(driver_unload);
    // SAFETY: the I/O manager gives every driver object a valid extension.
    let extension = unsafe { &mut *driver.DriverExtension };
    extension.AddDevice = Some(add_device);
    kdprint!(LEVEL_INFO, "DriverEntry done");
    STATUS_SUCCESS
}

/// Nothing global to undo: devices are deleted by `IRP_MN_REMOVE_DEVICE`. Its presence makes the
/// driver unloadable.
unsafe extern "system" fn driver_unload(_driver: *mut DRIVER_OBJECT) {
    kdprint!(LEVEL_INFO, "unload");
}

/// `AddDevice`: create the FDO with its KS device header, attach it, register the interface.
unsafe extern "system" fn add_device(driver: *mut DRIVER_OBJECT, pdo: *mut DEVICE_OBJECT) -> NTSTATUS {
    let mut fdo: *mut DEVICE_OBJECT = null_mut();
    #[allow(clippy::cast_possible_truncation)] // a few dozen bytes
    let extension_size = size_of::<DeviceExtension>() as u32;
    // SAFETY: valid driver object; unnamed device; `fdo` receives the new device.
    let status = unsafe {
        sys::IoCreateDevice(
            driver,
            extension_size,
            null_mut(),
            FILE_DEVICE_KS,
            FILE_DEVICE_SECURE_OPEN,
            FALSE,
            &raw mut fdo,
        )
    };
    if !nt_success(status) {
        kdprint!(LEVEL_ERROR, "IoCreateDevice failed: {status:#x}");
        return status;
    }
    // SAFETY: IoCreateDevice succeeded, so `fdo` is a valid device object we own.
    let extension = unsafe { (*fdo).DeviceExtension }.cast::<DeviceExtension>();
    let initial = DeviceExtension {
        header: null_mut(),
        lower: null_mut(),
        interface_link: UNICODE_STRING { Length: 0, MaximumLength: 0, Buffer: null_mut() },
        create_items: [KSOBJECT_CREATE_ITEM {
            Create: Some(filter::dispatch_create),
            Context: null_mut(),
            ObjectClass: static_unicode(&REFERENCE_STRING_UTF16),
            SecurityDescriptor: null_mut(),
            // A filter takes no parameters after its name: KS refuses `\GLOBAL\anything`.
            Flags: ksabi::KsCreateItem::NOPARAMETERS.bits(),
        }],
        counters: DeviceCounters { pins: [AtomicU32::new(0), AtomicU32::new(0)] },
    };
    // SAFETY: the extension is ours, sized and aligned for DeviceExtension, not yet initialised.
    unsafe { ptr::write(extension, initial) };
    // SAFETY: the extension was just initialised and nothing else refers to it yet.
    let ext = unsafe { &mut *extension };

    // SAFETY: the create-item array lives in the extension, which outlives the header (the header
    // is freed by KsDefaultDispatchPnp at removal, before the device is deleted).
    let status =
        unsafe { sys::KsAllocateDeviceHeader(&raw mut ext.header, 1, ext.create_items.as_mut_ptr()) };
    if !nt_success(status) {
        // SAFETY: the device was created above and nothing references it.
        unsafe { sys::IoDeleteDevice(fdo) };
        return status;
    }
    // SAFETY: both device objects are valid; attaching returns the device below or NULL.
    ext.lower = unsafe { sys::IoAttachDeviceToDeviceStack(fdo, pdo) };
    if ext.lower.is_null() {
        kdprint!(LEVEL_ERROR, "IoAttachDeviceToDeviceStack failed");
        undo_add_device(fdo, ext);
        return ksabi::STATUS_UNSUCCESSFUL;
    }
    // SAFETY: valid header and device objects.
    unsafe { sys::KsSetDevicePnpAndBaseObject(ext.header, ext.lower, fdo) };

    let mut reference = static_unicode(&REFERENCE_STRING_UTF16);
    // SAFETY: valid PDO; the GUID and reference string outlive the call; the link is written by
    // the I/O manager and freed with RtlFreeUnicodeString at removal.
    let status = unsafe {
        sys::IoRegisterDeviceInterface(
            pdo,
            &ids::KSCATEGORY_KSRING,
            &raw mut reference,
            &raw mut ext.interface_link,
        )
    };
    if !nt_success(status) {
        kdprint!(LEVEL_ERROR, "IoRegisterDeviceInterface failed: {status:#x}");
        // SAFETY: attached above.
        unsafe { sys::IoDetachDevice(ext.lower) };
        undo_add_device(fdo, ext);
        return status;
    }

    // SAFETY: we own the new device until DO_DEVICE_INITIALIZING is cleared.
    let device = unsafe { &mut *fdo };
    let flags = DeviceFlags::from_bits_retain(device.Flags);
    device.Flags =
        flags.union(DeviceFlags::POWER_PAGABLE).difference(DeviceFlags::DEVICE_INITIALIZING).bits();
    STATUS_SUCCESS
}

/// Frees the device header and deletes the device after a failed `AddDevice`.
fn undo_add_device(fdo: *mut DEVICE_OBJECT, ext: &mut DeviceExtension) {
    // SAFETY: the header was allocated by KsAllocateDeviceHeader and is freed exactly once.
    unsafe { sys::KsFreeDeviceHeader(ext.header) };
    ext.header = null_mut();
    // SAFETY: the device is not attached and no file object refers to it.
    unsafe { sys::IoDeleteDevice(fdo) };
}

/// `IRP_MJ_CLEANUP`, which KS does not route: a pin's last handle closed, so its pending requests
/// are cancelled (the close follows when they have completed).
fn cleanup(_device: Device, irp: Irp) -> NTSTATUS {
    pin::cleanup(&irp);
    irp.complete(STATUS_SUCCESS, 0)
}

kernel::irp::dispatch_routines! {
    dispatch_cleanup => cleanup,
}

/// PnP: enable the interface once the devices below have started, disable and free it at removal;
/// KS forwards everything else (and at removal frees the device header, detaches and deletes the
/// device).
unsafe extern "system" fn dispatch_pnp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the I/O manager passes a valid IRP it has given to us.
    let stack = unsafe { current_stack(irp) };
    // SAFETY: a valid IRP has a valid current stack location.
    let minor = unsafe { (*stack).MinorFunction };
    // SAFETY: `device` is our FDO.
    let extension = unsafe { (*device).DeviceExtension };
    // SAFETY: AddDevice initialised the extension; PnP IRPs for one device are serialised.
    let ext = unsafe { &mut *extension.cast::<DeviceExtension>() };
    match minor {
        IRP_MN_START_DEVICE => {
            // A start goes down first; the device is usable (and its interface may be enabled)
            // only once the devices below have started it.
            // SAFETY: our PnP IRP and the device below ours.
            let status = unsafe { forward_and_wait(ext.lower, irp) };
            if nt_success(status) {
                // SAFETY: the link was filled by IoRegisterDeviceInterface.
                let enabled = unsafe { sys::IoSetDeviceInterfaceState(&raw mut ext.interface_link, TRUE) };
                if !nt_success(enabled) {
                    kdprint!(LEVEL_ERROR, "enabling the interface failed: {enabled:#x}");
                }
            }
            // SAFETY: the start IRP is ours again (its completion routine kept it); completed once.
            return unsafe { nt::complete(irp, status, 0) };
        }
        IRP_MN_SURPRISE_REMOVAL | IRP_MN_REMOVE_DEVICE if !ext.interface_link.Buffer.is_null() => {
            // SAFETY: as above; disabling an interface that is not enabled is harmless.
            unsafe { sys::IoSetDeviceInterfaceState(&raw mut ext.interface_link, FALSE) };
            if minor == IRP_MN_REMOVE_DEVICE {
                // SAFETY: the buffer was allocated by IoRegisterDeviceInterface; freed once.
                unsafe { sys::RtlFreeUnicodeString(&raw mut ext.interface_link) };
                ext.interface_link.Buffer = null_mut();
            }
        }
        _ => {}
    }
    // SAFETY: forwards the IRP we were given; on removal this frees the header and the device.
    unsafe { sys::KsDefaultDispatchPnp(device, irp) }
}

/// Sends a PnP IRP down to `lower` and waits for the devices below to complete it; the IRP is
/// the caller's again afterwards (to complete). Returns their status.
///
/// # Safety
/// `irp` is a PnP IRP the caller owns, at `PASSIVE_LEVEL`; `lower` is the device below.
unsafe fn forward_and_wait(lower: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: an all-zero KEVENT is initialised below before use.
    let mut done: KEVENT = unsafe { core::mem::zeroed() };
    // SAFETY: a fresh event on this stack, which outlives the wait below.
    unsafe { sys::KeInitializeEvent(&raw mut done, NotificationEvent, FALSE) };
    // SAFETY: the caller's IRP with a location below ours.
    unsafe { nt::copy_current_to_next(irp) };
    // SAFETY: as above; the event outlives the request (we wait for it).
    unsafe { nt::set_completion_routine(irp, Some(started_below), (&raw mut done).cast()) };
    // SAFETY: the device below and the IRP with its next location set up.
    let status = unsafe { sys::IofCallDriver(lower, irp) };
    if status == STATUS_PENDING {
        // SAFETY: the event above, waited on at PASSIVE_LEVEL.
        unsafe {
            sys::KeWaitForSingleObject((&raw mut done).cast(), Executive, KernelMode, FALSE, null_mut())
        };
        // SAFETY: the IRP is ours again.
        return unsafe { (*irp).IoStatus.Status };
    }
    status
}

/// Completion routine of [`forward_and_wait`]: wakes the waiter and keeps the IRP.
unsafe extern "system" fn started_below(
    _device: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut core::ffi::c_void,
) -> NTSTATUS {
    // SAFETY: the waiter's event, alive until the wait ends.
    unsafe { sys::KeSetEvent(context.cast(), 0, FALSE) };
    STATUS_MORE_PROCESSING_REQUIRED
}
