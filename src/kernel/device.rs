//! The driver's entry points and its device, as types: the raw `DriverEntry`, `AddDevice` and
//! PnP routines live here; what the driver sets up and decides is [`crate::device`]'s, through
//! [`DriverSetup`] (only `DriverEntry` holds one) and [`PnpDevice`] (only the PnP dispatch routine
//! holds one, and PnP requests for a device are serialised).
//!
//! The device is root-enumerated. Its extension starts with the `KSDEVICE_HEADER` (KS finds it
//! there) and holds the filter create item, which must outlive the header, and the device-wide
//! counters.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr::{NonNull, null_mut};

use ksabi::{
    DEVICE_OBJECT, DRIVER_OBJECT, DeviceFlags, FALSE, FILE_DEVICE_KS, FILE_DEVICE_SECURE_OPEN, IRP,
    KSOBJECT_CREATE_ITEM, NTSTATUS, PDRIVER_DISPATCH, STATUS_INVALID_PARAMETER,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING, STATUS_UNSUCCESSFUL, TRUE, UNICODE_STRING, nt_success,
};

use super::driver::{Driver, Key};
use super::irp::{Device, Irp};
use super::nt;
use super::sync::Event;
use crate::device::DeviceCounters;
use crate::log::{LEVEL_ERROR, kdprint};
use crate::{ids, sys};

/// Per-device storage, in the device object's extension.
#[repr(C)]
struct DeviceExtension {
    /// `KSDEVICE_HEADER`: KS requires it to be the first field.
    header: *mut c_void,
    /// The device below (the PDO) that PnP and power IRPs go to.
    lower: *mut DEVICE_OBJECT,
    /// The symbolic link of the registered interface (allocated by the I/O manager), written by
    /// `AddDevice` and then only by PnP requests, which come one at a time ([`PnpDevice`]).
    interface_link: UnsafeCell<UNICODE_STRING>,
    /// The filter factory, referenced (not copied) by the device header.
    create_items: [KSOBJECT_CREATE_ITEM; 1],
    /// Device-wide counts.
    counters: DeviceCounters,
}

// SAFETY: shared across threads: the counters are atomics; `header`, `lower` and the create items
// are written only by `AddDevice`, before the device is initialised (and so before any request
// reaches it); the link only by PnP requests, which come one at a time.
unsafe impl Sync for DeviceExtension {}

impl Device {
    /// Its extension: initialised by `AddDevice` before any request reaches the device, alive
    /// until the device is removed — which PnP does only after every file object opened on it has
    /// closed, so as long as anything that can reach a `Device` exists.
    fn extension(self) -> &'static DeviceExtension {
        // SAFETY: dispatch routines are called with the driver's own device.
        let extension = unsafe { (*self.as_raw()).DeviceExtension }.cast::<DeviceExtension>();
        // SAFETY: as above; shared only (see `Sync`).
        unsafe { &*extension }
    }

    /// The device-wide counters in our device's extension.
    pub fn counters(self) -> &'static DeviceCounters {
        &self.extension().counters
    }
}

/// What `DriverEntry` may do to the driver object: it alone has it to itself.
pub struct DriverSetup {
    raw: NonNull<DRIVER_OBJECT>,
}

impl DriverSetup {
    /// The driver object, to keep driver-wide state in.
    pub fn driver(&self) -> Driver {
        Driver::from_non_null(self.raw)
    }

    /// `KsSetMajorFunctionHandler`: KS routes `major` to the dispatch table of the file object's
    /// KS object header.
    pub fn route_to_ks(&mut self, major: u8) -> NTSTATUS {
        // SAFETY: DriverEntry's driver object.
        unsafe { sys::KsSetMajorFunctionHandler(self.raw.as_ptr(), u32::from(major)) }
    }

    /// Sets the dispatch routine of `major`.
    pub fn set_dispatch(&mut self, major: u8, routine: PDRIVER_DISPATCH) {
        // SAFETY: DriverEntry has the driver object to itself (`&mut self`).
        let driver = unsafe { self.raw.as_mut() };
        driver.MajorFunction[usize::from(major)] = routine;
    }

    /// Makes the driver unloadable (there is nothing global to undo: devices are deleted by
    /// `IRP_MN_REMOVE_DEVICE`) and sets [`add_device`] as its `AddDevice`.
    pub fn set_pnp_routines(&mut self) {
        // SAFETY: as in `set_dispatch`.
        let driver = unsafe { self.raw.as_mut() };
        driver.DriverUnload = Some(driver_unload);
        // SAFETY: the I/O manager gives every driver object a valid extension.
        let extension = unsafe { &mut *driver.DriverExtension };
        extension.AddDevice = Some(add_device);
    }
}

/// `DriverEntry`: [`crate::device::init`] with the driver object and the service's
/// registry key.
///
/// # Safety
/// Called once by the I/O manager with a valid driver object and registry path.
#[unsafe(export_name = "DriverEntry")]
pub unsafe extern "system" fn driver_entry(
    driver: *mut DRIVER_OBJECT,
    registry_path: *mut UNICODE_STRING,
) -> NTSTATUS {
    sys::resolve_imports();
    let Some(raw) = NonNull::new(driver) else { return STATUS_INVALID_PARAMETER };
    // SAFETY: DriverEntry's registry path, at PASSIVE_LEVEL. (The key closes at the end.)
    let key = unsafe { Key::service(registry_path) };
    crate::device::init(DriverSetup { raw }, key.as_ref())
}

unsafe extern "system" fn driver_unload(_driver: *mut DRIVER_OBJECT) {
    crate::device::unload();
}

/// `AddDevice`: creates the FDO with its extension and KS device header (whose one create item
/// is [`crate::device::filter_factory`]), attaches it to the stack, registers the device
/// interface ([`ids::KSCATEGORY_KSRING`], reference string [`crate::device::REFERENCE_STRING`]).
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
    let Some(fdo) = NonNull::new(fdo).filter(|_| nt_success(status)) else {
        kdprint!(LEVEL_ERROR, "IoCreateDevice failed:", status);
        return if nt_success(status) { STATUS_UNSUCCESSFUL } else { status };
    };
    let initial = DeviceExtension {
        header: null_mut(),
        lower: null_mut(),
        interface_link: UnsafeCell::new(UNICODE_STRING { Length: 0, MaximumLength: 0, Buffer: null_mut() }),
        create_items: [crate::device::filter_factory()],
        counters: DeviceCounters::new(),
    };
    // SAFETY: a device we just created and own: its extension pointer is set.
    let extension = unsafe { (*fdo.as_ptr()).DeviceExtension }.cast::<MaybeUninit<DeviceExtension>>();
    // SAFETY: an extension sized and aligned for `DeviceExtension`, not yet initialised, nothing
    // else refers to it until the device is initialised.
    let ext = unsafe { &mut *extension }.write(initial);
    let setup = NewDevice { fdo, ext };
    let ext = &mut *setup.ext;

    // SAFETY: the create-item array lives in the extension, which outlives the header (the header
    // is freed by KsDefaultDispatchPnp at removal, before the device is deleted).
    let status =
        unsafe { sys::KsAllocateDeviceHeader(&raw mut ext.header, 1, ext.create_items.as_mut_ptr()) };
    if !nt_success(status) {
        ext.header = null_mut();
        return status;
    }
    // SAFETY: both device objects are valid; attaching returns the device below or NULL.
    ext.lower = unsafe { sys::IoAttachDeviceToDeviceStack(fdo.as_ptr(), pdo) };
    if ext.lower.is_null() {
        kdprint!(LEVEL_ERROR, "IoAttachDeviceToDeviceStack failed");
        return STATUS_UNSUCCESSFUL;
    }
    // SAFETY: valid header and device objects.
    unsafe { sys::KsSetDevicePnpAndBaseObject(ext.header, ext.lower, fdo.as_ptr()) };

    let mut reference = nt::static_unicode(&crate::device::REFERENCE_STRING);
    // SAFETY: valid PDO; the GUID and reference string outlive the call; the link is written by
    // the I/O manager and freed with RtlFreeUnicodeString at removal.
    let status = unsafe {
        sys::IoRegisterDeviceInterface(
            pdo,
            &ids::KSCATEGORY_KSRING,
            &raw mut reference,
            ext.interface_link.get(),
        )
    };
    if !nt_success(status) {
        kdprint!(LEVEL_ERROR, "IoRegisterDeviceInterface failed:", status);
        return status;
    }

    core::mem::forget(setup); // the device stays
    // SAFETY: we own the new device until DO_DEVICE_INITIALIZING is cleared; no reference to it
    // is held across this.
    let device = unsafe { &mut *fdo.as_ptr() };
    let flags = DeviceFlags::from_bits_retain(device.Flags);
    device.Flags =
        flags.union(DeviceFlags::POWER_PAGABLE).difference(DeviceFlags::DEVICE_INITIALIZING).bits();
    crate::log::kdprint!(crate::log::LEVEL_INFO, "device added");
    ksabi::STATUS_SUCCESS
}

/// A device `AddDevice` is setting up: if it fails, dropping this undoes what was done — detaches
/// the device (if attached), frees its KS device header (if allocated) and deletes it. Nothing else
/// refers to the device until `AddDevice` succeeds, which forgets this.
struct NewDevice {
    fdo: NonNull<DEVICE_OBJECT>,
    ext: &'static mut DeviceExtension,
}

impl Drop for NewDevice {
    fn drop(&mut self) {
        if !self.ext.lower.is_null() {
            // SAFETY: attached by `AddDevice` to this device below, detached once.
            unsafe { sys::IoDetachDevice(self.ext.lower) };
        }
        if !self.ext.header.is_null() {
            // SAFETY: allocated by KsAllocateDeviceHeader, freed once.
            unsafe { sys::KsFreeDeviceHeader(self.ext.header) };
        }
        // SAFETY: created by `AddDevice`, detached, referred to by no file object.
        unsafe { sys::IoDeleteDevice(self.fdo.as_ptr()) };
    }
}

/// A device during one of its PnP requests (which the PnP manager sends one at a time): its
/// interface and the device below.
pub struct PnpDevice {
    raw: *mut DEVICE_OBJECT,
    ext: &'static DeviceExtension,
}

impl PnpDevice {
    /// The interface's symbolic link, which only PnP requests touch.
    fn link(&mut self) -> &mut UNICODE_STRING {
        // SAFETY: PnP requests are serialised and only they touch the link (`&mut self`: this
        // one), so no other reference to it exists.
        unsafe { &mut *self.ext.interface_link.get() }
    }

    /// Sends the request down and waits for the devices below to complete it; it is ours again
    /// afterwards (to complete). Returns their status. At `PASSIVE_LEVEL`, as PnP requests are.
    pub fn forward_and_wait(&mut self, irp: &mut Irp) -> NTSTATUS {
        let done = core::pin::pin!(Event::new());
        let done = done.into_ref();
        done.init();
        let request = irp.owned_mut();
        // A PnP request has a location for the device below ours; the event outlives the
        // request's trip down (we wait for it).
        let context = core::ptr::from_ref(&*done).cast_mut().cast();
        if !request.forward_with_completion(Some(completed_below), context) {
            return ksabi::STATUS_INVALID_DEVICE_REQUEST; // no location below ours: nothing to forward to
        }
        // SAFETY: the device below (attached by AddDevice) and the request with its next location
        // set up.
        let status = unsafe { sys::IofCallDriver(self.ext.lower, request.as_ptr()) };
        if status != STATUS_PENDING {
            return status;
        }
        done.wait();
        // The completion routine kept the request: ours again.
        request.io_status().Status
    }

    /// `IoSetDeviceInterfaceState` on the registered interface (harmless if already so).
    pub fn set_interface(&mut self, enabled: bool) -> NTSTATUS {
        let link = self.link();
        // SAFETY: the link was filled by IoRegisterDeviceInterface (AddDevice fails without it)
        // and is freed only by `free_interface`, at the removal, after which no PnP request comes.
        unsafe { sys::IoSetDeviceInterfaceState(link, if enabled { TRUE } else { FALSE }) }
    }

    /// `IRP_MN_REMOVE_DEVICE`, the device's last PnP request: disables the interface (harmless
    /// if a surprise removal already did), frees its symbolic link and hands the request to KS
    /// ([`PnpDevice::pass_to_ks`]), which deletes the device.
    pub fn remove(mut self, irp: Irp) -> NTSTATUS {
        self.set_interface(false);
        let link = self.link();
        // SAFETY: allocated by IoRegisterDeviceInterface; freed once: `self` is consumed, and the
        // removal is the last PnP request.
        unsafe { sys::RtlFreeUnicodeString(&raw mut *link) };
        self.pass_to_ks(irp)
    }

    /// `KsDefaultDispatchPnp`: KS forwards the request (and at removal frees the device header,
    /// detaches and deletes the device).
    pub fn pass_to_ks(self, irp: Irp) -> NTSTATUS {
        // SAFETY: our device and a PnP request we own, handed to KS.
        unsafe { sys::KsDefaultDispatchPnp(self.raw, irp.into_raw()) }
    }
}

/// Completion routine of [`PnpDevice::forward_and_wait`]: wakes the waiter and keeps the request.
unsafe extern "system" fn completed_below(
    _device: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the waiter's event, alive until the wait ends.
    unsafe { &*context.cast::<Event>() }.set();
    STATUS_MORE_PROCESSING_REQUIRED
}

/// The PnP dispatch routine: [`crate::device::pnp`] with the device and the request.
pub unsafe extern "system" fn dispatch_pnp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the I/O manager's PnP request for our device, ours.
    let Some(irp) = (unsafe { Irp::from_raw(irp) }) else { return STATUS_INVALID_PARAMETER };
    // SAFETY: the I/O manager calls the PnP dispatch routine for our FDO, initialised by AddDevice.
    let ext = unsafe { Device::from_raw(device) }.extension();
    crate::device::pnp(PnpDevice { raw: device, ext }, irp)
}
