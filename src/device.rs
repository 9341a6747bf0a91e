//! The driver and device level: what `DriverEntry` sets up, the filter factory the device's KS
//! header holds, what PnP does, and cleanup. The raw entry points and the device object's
//! plumbing are `kernel::device`'s.

use core::ptr::null_mut;
use core::sync::atomic::AtomicU32;

use ksabi::{
    IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL, IRP_MJ_PNP, IRP_MJ_POWER,
    IRP_MJ_SYSTEM_CONTROL, IRP_MN_REMOVE_DEVICE, IRP_MN_START_DEVICE, IRP_MN_SURPRISE_REMOVAL,
    KSOBJECT_CREATE_ITEM, NTSTATUS, STATUS_SUCCESS, nt_success,
};

use crate::kernel::device::{DriverSetup, PnpDevice, dispatch_pnp};
use crate::kernel::driver::Key;
use crate::kernel::irp::{Device, Irp};
use crate::kernel::nt::{static_unicode, utf16};
use crate::log::{LEVEL_ERROR, LEVEL_INFO, kdprint};
use crate::pin_id::PerPin;
use crate::{filter, ids, kernel, pin, sys};

/// The major functions KS dispatches through each file object's `KSDISPATCH_TABLE`.
/// Every dispatch table of the driver has an entry for each of them.
pub const KS_ROUTED_MAJORS: [u8; 3] = [IRP_MJ_CREATE, IRP_MJ_CLOSE, IRP_MJ_DEVICE_CONTROL];

/// `"GLOBAL"` in UTF-16: the filter create item's name and the interface reference string.
pub static REFERENCE_STRING: [u16; 6] = utf16(ids::REFERENCE_STRING);

/// Counts across every filter of the device.
pub struct DeviceCounters {
    /// Pin instances per factory.
    pub pins: PerPin<AtomicU32>,
}

impl Default for DeviceCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceCounters {
    /// All zero.
    #[must_use]
    pub const fn new() -> Self {
        Self { pins: PerPin::new(AtomicU32::new(0), AtomicU32::new(0)) }
    }
}

/// What `DriverEntry` does: loads the pool caps, routes the KS major functions, and sets
/// cleanup, PnP, power, WMI, `AddDevice` and unload.
pub fn init(mut setup: DriverSetup, service_key: Option<&Key>) -> NTSTATUS {
    let status = crate::limits::load(setup.driver(), service_key);
    if !nt_success(status) {
        return status;
    }
    for major in KS_ROUTED_MAJORS {
        let status = setup.route_to_ks(major);
        if !nt_success(status) {
            return status;
        }
    }
    setup.set_dispatch(IRP_MJ_CLEANUP, Some(dispatch_cleanup));
    setup.set_dispatch(IRP_MJ_PNP, Some(dispatch_pnp));
    setup.set_dispatch(IRP_MJ_POWER, Some(sys::KsDefaultDispatchPower));
    setup.set_dispatch(IRP_MJ_SYSTEM_CONTROL, Some(sys::KsDefaultForwardIrp));
    setup.set_pnp_routines();
    kdprint!(LEVEL_INFO, "DriverEntry done");
    STATUS_SUCCESS
}

/// `DriverUnload`: nothing global to undo.
pub fn unload() {
    kdprint!(LEVEL_INFO, "unload");
}

/// The device header's one create item: the filter factory, `\GLOBAL`.
pub fn filter_factory() -> KSOBJECT_CREATE_ITEM {
    KSOBJECT_CREATE_ITEM {
        Create: Some(filter::dispatch_create),
        Context: null_mut(),
        ObjectClass: static_unicode(&REFERENCE_STRING),
        SecurityDescriptor: null_mut(),
        // A filter takes no parameters after its name: KS refuses `\GLOBAL\anything`.
        Flags: ksabi::KsCreateItem::NOPARAMETERS.bits(),
    }
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

/// PnP: the start is completed here once the devices below have started it, and the interface
/// enabled then; a surprise removal disables it, the removal disables and frees it. KS forwards
/// every request but the start (and at removal frees the device header, detaches and deletes the
/// device).
#[must_use]
pub fn pnp(mut device: PnpDevice, mut irp: Irp) -> NTSTATUS {
    match irp.minor_function() {
        IRP_MN_START_DEVICE => {
            // A start goes down first; the device is usable (and its interface may be enabled)
            // only once the devices below have started it.
            let status = device.forward_and_wait(&mut irp);
            if nt_success(status) {
                let enabled = device.set_interface(true);
                if !nt_success(enabled) {
                    kdprint!(LEVEL_ERROR, "enabling the interface failed:", enabled);
                }
            }
            return irp.complete(status, 0);
        }
        IRP_MN_SURPRISE_REMOVAL => {
            device.set_interface(false);
        }
        IRP_MN_REMOVE_DEVICE => return device.remove(irp),
        _ => {}
    }
    device.pass_to_ks(irp)
}
