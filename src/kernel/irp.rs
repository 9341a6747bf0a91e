//! Requests as a type. A dispatch routine owns the IRP it is given until it completes it or hands
//! it on; an [`Irp`] is that ownership: [`Irp::complete`] consumes it, so "completed exactly once"
//! is checked by the compiler instead of promised in a comment at every call. Objects found
//! through it ([`Irp::object`]) are borrowed from it: they are guaranteed only while the request
//! is outstanding (its file object is referenced by the I/O manager until completion).

use core::ptr::{NonNull, null_mut};

use ksabi::{
    DEVICE_OBJECT, DRIVER_OBJECT, IRP, KSDATAFORMAT, KSPIN_CONNECT, KSRESET, NTSTATUS,
    STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER,
};
use ksring_api::PIN_FACTORIES;

use crate::descriptors::PINS;
use crate::kernel::driver::Driver;
use crate::kernel::nt::OwnedIrp;
use crate::kernel::object::Object;
use crate::limits::{Limits, NO_LIMITS};
use crate::sys;

/// An IRP the driver owns: complete it or hand it on.
#[must_use = "an IRP must be completed or handed on"]
pub struct Irp {
    raw: OwnedIrp,
}

/// The device object a dispatch routine was called for (the driver's own).
#[derive(Clone, Copy)]
pub struct Device {
    raw: *mut DEVICE_OBJECT,
}

// SAFETY: the driver's device object, which lives while any file object opened on it is open —
// and every holder of a `Device` is reached through one; the kernel's routines on it may be
// called from any thread.
unsafe impl Send for Device {}
// SAFETY: as above; `&Device` gives nothing more than `Device`.
unsafe impl Sync for Device {}

impl Device {
    /// The device a dispatch routine was called for.
    ///
    /// # Safety
    /// `raw` is one of this driver's devices, initialised by `AddDevice`, and the caller is a
    /// routine the I/O manager called for it (so it is not removed meanwhile).
    pub(in crate::kernel) unsafe fn from_raw(raw: *mut DEVICE_OBJECT) -> Self {
        Self { raw }
    }

    /// The raw device object, for the layers that still take one.
    pub fn as_raw(self) -> *mut DEVICE_OBJECT {
        self.raw
    }

    /// The driver object the device belongs to.
    pub fn driver_object(self) -> *mut DRIVER_OBJECT {
        // SAFETY: the driver's own device, alive (see `Send`); `DriverObject` is set at its creation.
        unsafe { (*self.raw).DriverObject }
    }

    /// The driver's pool caps (its driver object's extension).
    pub fn limits(self) -> &'static Limits {
        // `DriverEntry` fails unless it kept the limits, before any device existed.
        NonNull::new(self.driver_object())
            .map(Driver::from_non_null)
            .and_then(Driver::get)
            .unwrap_or(&NO_LIMITS)
    }
}

impl Irp {
    /// Takes ownership of a raw IRP.
    ///
    /// # Safety
    /// `raw` is a valid IRP the caller owns (as a dispatch routine owns the IRP it was called
    /// with) and gives to the returned value; nobody else completes it.
    pub unsafe fn from_raw(raw: *mut IRP) -> Option<Self> {
        // SAFETY: the caller's promise.
        NonNull::new(raw).map(|raw| Self { raw: unsafe { OwnedIrp::new(raw) } })
    }

    /// The raw IRP, still owned by `self` (for calls that take one and give it back).
    pub fn as_raw(&self) -> *mut IRP {
        self.raw.as_ptr()
    }

    /// Gives up ownership: the caller hands the raw IRP on (to a queue, to the stream path).
    pub fn into_raw(self) -> *mut IRP {
        self.raw.as_ptr()
    }

    /// Its fields.
    pub(in crate::kernel) fn owned(&self) -> &OwnedIrp {
        &self.raw
    }

    /// Its fields, to change.
    pub(in crate::kernel) fn owned_mut(&mut self) -> &mut OwnedIrp {
        &mut self.raw
    }

    /// Gives up ownership to another owning type of this layer (a stream request).
    pub(in crate::kernel) fn into_owned(self) -> OwnedIrp {
        self.raw
    }

    /// `IoCompleteRequest` with `status` and `information`; returns `status`, as a dispatch
    /// routine does.
    pub fn complete(self, status: NTSTATUS, information: usize) -> NTSTATUS {
        self.raw.complete(status, information)
    }

    /// Completes with the status given and the `Information` a handler already set (KS' handlers
    /// set it in the IRP).
    pub fn complete_keeping_information(self, status: NTSTATUS) -> NTSTATUS {
        let information = self.raw.io_status().Information;
        self.complete(status, information)
    }

    /// The minor function code of the current stack location (`IRP_MN_*` of a PnP request).
    pub fn minor_function(&self) -> u8 {
        self.raw.stack().MinorFunction
    }

    /// The `IoControlCode` of a device-control IRP.
    pub fn ioctl_code(&self) -> u32 {
        self.raw.ioctl().IoControlCode
    }

    /// The driver's object at the IRP's file object (`FsContext`), if it has one.
    pub fn object(&self) -> Option<Object<'_>> {
        self.file()?.object()
    }

    /// The driver's object at the parent (`RelatedFileObject`) of a create IRP's file object.
    pub fn parent_object(&self) -> Option<Object<'_>> {
        self.file()?.related()?.object()
    }

    /// `KsValidateConnectRequest` on a pin's create IRP with the driver's pin descriptors: the
    /// captured `KSPIN_CONNECT` and the `FormatSize` bytes of the data format after it. KS
    /// captured exactly the create parameter; not every ks.sys checks `FormatSize` against it
    /// (Windows Server 2003's does not), so the format is bounded here by the parameter's length
    /// as KS computes it (`STATUS_INVALID_BUFFER_SIZE` beyond it).
    ///
    /// # Errors
    /// What ks.sys refused the request with, or `STATUS_INVALID_BUFFER_SIZE`.
    pub fn connect_request(&self) -> Result<(KSPIN_CONNECT, &[u8]), NTSTATUS> {
        let mut connect: *mut KSPIN_CONNECT = null_mut();
        // SAFETY: a create IRP we own; the driver's static descriptor table.
        let status = unsafe {
            sys::KsValidateConnectRequest(self.as_raw(), PIN_FACTORIES, PINS.0.as_ptr(), &raw mut connect)
        };
        if !ksabi::nt_success(status) {
            return Err(status);
        }
        // SAFETY: on success KS returns the captured request (pool: aligned), valid while the IRP
        // is ours, and at least a KSDATAFORMAT follows it.
        let head = unsafe { connect.cast::<ConnectHead>().read() };
        let (request, format_size) = (head.connect, head.format.FormatSize as usize);
        let format = connect.wrapping_add(1).cast::<u8>();
        let parameter = self.file().map_or(0, |file| file.create_parameter_len(ksabi::KSSTRING_Pin.len()));
        if format_size > parameter.saturating_sub(size_of::<KSPIN_CONNECT>()) {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        // SAFETY: FormatSize bytes follow the KSPIN_CONNECT in the captured request (bounded above),
        // alive while the IRP is ours (the borrow of `self`).
        let bytes = unsafe { core::slice::from_raw_parts(format, format_size) };
        Ok((request, bytes))
    }

    /// `KsAcquireResetValue`: the `KSRESET` of an `IOCTL_KS_RESET_STATE` (probed by ks.sys).
    ///
    /// # Errors
    /// What ks.sys refused the value with.
    pub fn reset_value(&self) -> Result<KSRESET, NTSTATUS> {
        let mut value: KSRESET = 0;
        // SAFETY: owned by `self`; ks.sys probes and reads the caller's value.
        let status = unsafe { sys::KsAcquireResetValue(self.raw.as_ptr(), &raw mut value) };
        if ksabi::nt_success(status) { Ok(value) } else { Err(status) }
    }

    /// `KsDefaultDeviceIoCompletion`: KS' answer to what the driver does not handle (methods and
    /// events: `STATUS_PROPSET_NOT_FOUND`); it completes the IRP.
    pub fn complete_by_default(self, device: Device) -> NTSTATUS {
        // SAFETY: our device and IRP, handed to KS, which completes it.
        unsafe { sys::KsDefaultDeviceIoCompletion(device.raw, self.into_raw()) }
    }
}

/// The start of a captured connect request: the `KSPIN_CONNECT` and the `KSDATAFORMAT` right
/// after it.
#[repr(C)]
struct ConnectHead {
    connect: KSPIN_CONNECT,
    format: KSDATAFORMAT,
}

const _: () = assert!(core::mem::offset_of!(ConnectHead, format) == size_of::<KSPIN_CONNECT>());

/// Runs a safe dispatch routine on what the I/O manager (or KS) passed to a raw one.
///
/// # Safety
/// `device` is the driver's device and `irp` the IRP the raw dispatch routine was called with,
/// which it owns.
pub unsafe fn run(
    device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    routine: fn(Device, Irp) -> NTSTATUS,
) -> NTSTATUS {
    // SAFETY: the caller's promise: the dispatch routine's own IRP.
    match unsafe { Irp::from_raw(irp) } {
        Some(irp) => routine(Device { raw: device }, irp),
        None => STATUS_INVALID_PARAMETER,
    }
}

/// Wraps safe dispatch routines (`fn(Device, Irp) -> NTSTATUS`) into the
/// `unsafe extern "system"` routines a dispatch table names: for each `name => path`, a raw
/// routine `name` that calls [`run`] with `path`.
macro_rules! dispatch_routines {
    ($($(#[$attr:meta])* $vis:vis $name:ident => $routine:path),* $(,)?) => {
        $(
            $(#[$attr])*
            $vis unsafe extern "system" fn $name(
                device: *mut ::ksabi::DEVICE_OBJECT,
                irp: *mut ::ksabi::IRP,
            ) -> ::ksabi::NTSTATUS {
                // SAFETY: the I/O manager (or KS, routing by the object header) calls a dispatch
                // routine with the driver's device and an IRP the routine owns.
                unsafe { $crate::kernel::irp::run(device, irp, $routine) }
            }
        )*
    };
}
pub(crate) use dispatch_routines;
