//! The Media class's upper filter: on 64-bit Windows `ksthunk` sits above every Media-class
//! device's function driver (Microsoft's `!devstack` of a `SysVAD` device shows `\Driver\ksthunk`
//! on top of the FDO, and the pin create's stack runs `ksthunk!CKernelFilterDevice::DispatchIrp`
//! before `portcls!DispatchCreate`). It thunks 32-bit clients' KS requests; for 64-bit callers
//! kshost models it as a pure pass-through. What it changes for a driver: `IoGetRelatedDeviceObject`
//! of the driver's own file objects returns *this* device, not the driver's FDO, and requests
//! reach the driver one stack location further down. On by default
//! ([`crate::Settings::class_upper_filter`]); sources in `FIDELITY.md`.

use ksabi::{DEVICE_OBJECT, DeviceFlags, IRP, IRP_MJ_COUNT, IRP_MJ_PNP, IRP_MN_REMOVE_DEVICE, NTSTATUS};

use crate::machine::MachineInner;
use crate::objects::{DeviceBox, DriverBox, IrpBox};

/// Creates `\Driver\ksthunk` and attaches its device to the top of `pdo`'s stack.
///
/// # Safety
/// `pdo` is a device object of this machine, and the caller is the install's PnP path: nothing
/// else reads or writes the devices of its stack during the call.
pub(crate) unsafe fn attach(m: &MachineInner, pdo: *mut DEVICE_OBJECT) {
    let driver = crate::iomgr::create_driver_object(m, "ksthunk");
    // SAFETY: the filter's driver object was just created above and is not yet shown to anyone.
    unsafe { DriverBox::of(driver) }.drv.MajorFunction = [Some(pass_through); IRP_MJ_COUNT];
    // SAFETY: the caller's contract: a device of this live machine on the PnP path, so its stack is
    // not changing.
    let top = unsafe { crate::iomgr::top_of_stack(pdo) };
    // SAFETY: a live device of this machine (the function driver's, after AddDevice).
    let device_type = unsafe { (*top).DeviceType };
    // SAFETY: as above.
    let lower_flags = unsafe { (*top).Flags };
    // SAFETY: the filter's driver object was just created above; the install is the PnP path.
    let device = unsafe { crate::iomgr::create_device(m, driver, 0, device_type, 0) };
    // SAFETY: both are devices of this machine, on the install's PnP path (the caller's contract).
    let lower = unsafe { crate::iomgr::attach_device(m, device, pdo) };
    let inherited = DeviceFlags::BUFFERED_IO | DeviceFlags::DIRECT_IO | DeviceFlags::POWER_PAGABLE;
    // SAFETY: the filter device was just created and attached here; no driver routine has it yet.
    let dev = &mut unsafe { DeviceBox::of(device) }.dev;
    dev.Flags = (DeviceFlags::from_bits_retain(lower_flags) & inherited).bits();
    debug_assert_eq!(lower, top);
}

/// Every request goes on down unchanged; after `IRP_MN_REMOVE_DEVICE` has gone down, the filter
/// detaches and deletes its device, as PnP filters do.
unsafe extern "system" fn pass_through(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the I/O manager calls this with the filter's own device, a kshost device; only its record is
    // referenced.
    let lower = unsafe { DeviceBox::meta_of(device) }.lower.load(std::sync::atomic::Ordering::Acquire);
    // SAFETY: a dispatch routine owns the IRP it is given until it passes it on below; `stack` is not used
    // after that.
    let stack = unsafe { IrpBox::of(irp) }.into_stack_location();
    let remove = stack.MajorFunction == IRP_MJ_PNP && stack.MinorFunction == IRP_MN_REMOVE_DEVICE;
    // SAFETY: a dispatch routine owns the IRP it is given, until it passes it on below.
    unsafe { crate::ks::skip_current(irp) };
    // SAFETY: `lower` is the device the filter attached to (a device of this machine); the IRP,
    // its location skipped, is handed on and not touched again here.
    let status = unsafe { crate::iomgr::call_driver(lower, irp) };
    if remove {
        // SAFETY: `lower` is the kshost device the filter attached to, in the remove path.
        unsafe { crate::iomgr::detach(lower) };
        // SAFETY: the filter's own device, deleted on the remove path (PnP-serialised).
        unsafe { crate::iomgr::delete_device(&crate::machine::current(), device) };
    }
    status
}
