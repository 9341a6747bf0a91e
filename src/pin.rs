//! Pin instances: creation through `KsValidateConnectRequest` and the driver's own rules, the
//! pin's dispatch table, cleanup (cancel its requests) and close.

use core::ptr::{self, null_mut};

use ksabi::{
    DEVICE_OBJECT, FILE_OBJECT, IOCTL_KS_PROPERTY, IOCTL_KS_READ_STREAM, IOCTL_KS_RESET_STATE,
    IOCTL_KS_WRITE_STREAM, IRP, KSDATAFORMAT, KSDISPATCH_TABLE, KSPIN_CONNECT, KSRESET, NTSTATUS,
    POOL_FLAG_NON_PAGED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS, nt_success,
};
use ksring_api::{PIN_FACTORIES, PIN_INPUT, PIN_OUTPUT};

use crate::descriptors::PINS;
use crate::filter::Filter;
use crate::format::Format;
use crate::nt;
use crate::object::{self, KIND_PIN, Object, ObjectPrefix};
use crate::source;
use crate::stream::{self, Direction};
use crate::{ids, props, sys};

/// A pin instance, at `FsContext` of its file object.
#[repr(C)]
pub struct Pin {
    prefix: ObjectPrefix,
    /// The filter the pin belongs to.
    filter: *const Filter,
    /// The filter's file object, referenced by the pin from its create to its close: the I/O
    /// manager keeps no reference on a `RelatedFileObject`, so without this one the filter could
    /// close (and be freed) under its pins — its handle closing first, or a process exiting.
    filter_file: *mut FILE_OBJECT,
    /// The pin factory: [`PIN_INPUT`] or [`PIN_OUTPUT`].
    pub id: u32,
}

impl Pin {
    /// The pin's filter.
    pub fn filter(&self) -> &Filter {
        // SAFETY: the pin holds a reference on the filter's file object until its own close, and
        // the filter is freed only at that file object's close.
        unsafe { &*self.filter }
    }
}

/// The pin's dispatch table.
static DISPATCH: KSDISPATCH_TABLE = object::dispatch_table(Some(device_control), Some(close));

/// The pin factory's create routine (`KSSTRING_Pin` under a filter). Checks, in order:
/// `KsValidateConnectRequest` (pin id, interface, medium, communication, format GUIDs); the format
/// in detail ([`Format::parse`]); one instance per factory and the other pin's format
/// ([`Filter::connect`]); for an IRP-source connection (`PinToHandle` set), the pin it names
/// ([`source::connect`]).
///
/// # Safety
/// Called by KS with our device and a create IRP whose related file object is a filter.
pub unsafe extern "system" fn dispatch_create(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the create IRP KS handed us; its file object's parent is the filter's.
    let parent = unsafe { nt::related_file_object(irp) };
    // SAFETY: KS only routes here for file objects opened relative to one of our filters.
    let Some(Object::Filter(filter)) = (unsafe { object::of_file(parent) }) else {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, STATUS_INVALID_PARAMETER, 0) };
    };
    let mut connect: *mut KSPIN_CONNECT = null_mut();
    // SAFETY: our create IRP and our static descriptor table.
    let status =
        unsafe { sys::KsValidateConnectRequest(irp, PIN_FACTORIES, PINS.0.as_ptr(), &raw mut connect) };
    if !nt_success(status) {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, status, 0) };
    }
    // SAFETY: on success KS returns the captured request, valid while the IRP is ours; at least
    // a KSDATAFORMAT follows it.
    let request = unsafe { &*connect };
    let format_ptr = connect.wrapping_add(1).cast::<KSDATAFORMAT>();
    // SAFETY: as above.
    let format_size = unsafe { (*format_ptr).FormatSize } as usize;
    // KS captured exactly the create parameter; not every ks.sys checks FormatSize against it
    // (Windows Server 2003's does not), so bound it by the parameter's length as KS computes it.
    // SAFETY: our create IRP.
    let parameter = unsafe { nt::create_parameter_len(irp, ksabi::KSSTRING_Pin.len()) };
    if format_size > parameter.saturating_sub(size_of::<KSPIN_CONNECT>()) {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, STATUS_INVALID_BUFFER_SIZE, 0) };
    }
    // SAFETY: FormatSize bytes follow the KSPIN_CONNECT in the captured request (bounded above).
    let format_bytes = unsafe { core::slice::from_raw_parts(format_ptr.cast::<u8>(), format_size) };
    let format = match Format::parse(format_bytes) {
        Ok(format) => format,
        // SAFETY: we complete the IRP once.
        Err(status) => return unsafe { nt::complete(irp, status, 0) },
    };
    let status = filter.connect(request.PinId, format);
    if !nt_success(status) {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, status, 0) };
    }
    let mut status = create_object(irp, filter, parent, request.PinId);
    if nt_success(status) && !request.PinToHandle.is_null() {
        let target = request.PinToHandle;
        // SAFETY: our create IRP at PASSIVE_LEVEL in the caller's context.
        let connected = unsafe { source::connect(device, irp, filter, request.PinId, format, target) };
        if let Err(refused) = connected {
            destroy_object(irp);
            status = refused;
        }
    }
    if nt_success(status) {
        // SAFETY: the parent file object is valid during the create; the reference keeps it (and
        // so the filter) until the pin's close drops it.
        unsafe { sys::ObfReferenceObject(parent.cast()) };
        filter.connected(request.PinId);
    } else {
        filter.abandon(request.PinId);
    }
    // SAFETY: we complete the IRP once.
    unsafe { nt::complete(irp, status, 0) }
}

/// Allocates the pin, its object header, and hangs it on the file object.
fn create_object(irp: *mut IRP, filter: &Filter, filter_file: *mut FILE_OBJECT, id: u32) -> NTSTATUS {
    // SAFETY: a plain non-paged allocation of a Pin.
    let raw = unsafe { sys::ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<Pin>(), ids::TAG_PIN) };
    let pin = raw.cast::<Pin>();
    if pin.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let initial =
        Pin { prefix: ObjectPrefix { header: null_mut(), kind: KIND_PIN }, filter, filter_file, id };
    // SAFETY: a fresh block sized and aligned for a Pin.
    unsafe { pin.write(initial) };
    // SAFETY: initialised above, not shared yet.
    let header = unsafe { &raw mut (*pin).prefix.header };
    // SAFETY: the pin has no create items; the dispatch table is static.
    let status = unsafe { sys::KsAllocateObjectHeader(header, 0, null_mut(), irp, &raw const DISPATCH) };
    if !nt_success(status) {
        // SAFETY: allocated above with this tag; nothing refers to it.
        unsafe { sys::ExFreePoolWithTag(raw, ids::TAG_PIN) };
        return status;
    }
    // SAFETY: the create IRP of our file object.
    unsafe { nt::set_fs_context(irp, raw) };
    STATUS_SUCCESS
}

/// Undoes [`create_object`] for a pin whose connection was then refused.
fn destroy_object(irp: *mut IRP) {
    // SAFETY: the create IRP whose file object `create_object` just set up.
    let Some(Object::Pin(pin)) = (unsafe { object::of_irp(irp) }) else { return };
    // SAFETY: allocated by create_object; freed once.
    unsafe { sys::KsFreeObjectHeader(pin.prefix.header) };
    let raw = ptr::from_ref(pin).cast_mut().cast();
    // SAFETY: the create IRP of our file object.
    unsafe { nt::set_fs_context(irp, null_mut()) };
    // SAFETY: allocated by create_object with this tag.
    unsafe { sys::ExFreePoolWithTag(raw, ids::TAG_PIN) };
}

/// `IRP_MJ_DEVICE_CONTROL` of a pin: properties, stream I/O, reset.
unsafe extern "system" fn device_control(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: KS routes our pin's requests here.
    let Some(Object::Pin(pin)) = (unsafe { object::of_irp(irp) }) else {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, STATUS_INVALID_PARAMETER, 0) };
    };
    // SAFETY: a device-control IRP.
    let code = unsafe { nt::ioctl_parameters(irp) }.IoControlCode;
    match code {
        IOCTL_KS_PROPERTY => {
            // SAFETY: our IRP, our static property tables.
            let status = unsafe { crate::kernel::property::dispatch(irp, props::pin_sets()) };
            // SAFETY: our IRP.
            let information = unsafe { nt::information(irp) };
            // SAFETY: complete with the Information the handler set.
            unsafe { nt::complete(irp, status, information) }
        }
        IOCTL_KS_WRITE_STREAM => stream::dispatch(pin, irp, Direction::Write),
        IOCTL_KS_READ_STREAM => stream::dispatch(pin, irp, Direction::Read),
        IOCTL_KS_RESET_STATE => {
            let mut value: KSRESET = 0;
            // SAFETY: ks.sys probes and reads the caller's KSRESET.
            let mut status = unsafe { sys::KsAcquireResetValue(irp, &raw mut value) };
            if nt_success(status) {
                status = pin.filter().reset(pin.id, value);
            }
            // SAFETY: we complete the IRP once.
            unsafe { nt::complete(irp, status, 0) }
        }
        // SAFETY: KS' default completes the IRP (methods and events: STATUS_PROPSET_NOT_FOUND).
        _ => unsafe { sys::KsDefaultDeviceIoCompletion(device, irp) },
    }
}

/// `IRP_MJ_CLEANUP` (routed by the driver, not KS): the last handle of a pin closed. Its pending
/// requests are cancelled (the close follows once they have completed); a source feeding it is
/// told its sink ended; if it is a source itself, it shuts down — cancelling, waiting for and
/// letting go of what it sent, then releasing the pin it pointed at.
pub fn cleanup(irp: *mut IRP) {
    // SAFETY: a cleanup IRP of our device.
    if let Some(Object::Pin(pin)) = unsafe { object::of_irp(irp) } {
        let f = pin.filter();
        // Closing first (so that nothing new is queued), then what is queued is cancelled.
        f.sink_cleanup(pin.id);
        f.cancel_requests(pin.id);
        if let Some(src) = f.detach_source(pin.id) {
            // SAFETY: at PASSIVE_LEVEL (cleanup); detached from the filter just above.
            unsafe { source::Source::shut_down(src) };
        }
    }
}

/// `IRP_MJ_CLOSE` of a pin: nothing references it any more.
unsafe extern "system" fn close(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: KS routes the close of our pin's file object here.
    let Some(Object::Pin(pin)) = (unsafe { object::of_irp(irp) }) else {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, STATUS_INVALID_PARAMETER, 0) };
    };
    debug_assert!(pin.id == PIN_INPUT || pin.id == PIN_OUTPUT);
    pin.filter().disconnect(pin.id);
    let filter_file = pin.filter_file;
    // SAFETY: allocated at create; freed once, here.
    unsafe { sys::KsFreeObjectHeader(pin.prefix.header) };
    let raw = ptr::from_ref(pin).cast_mut().cast();
    // SAFETY: the close IRP of our file object; the object goes away now.
    unsafe { nt::set_fs_context(irp, null_mut()) };
    // SAFETY: allocated at create with this tag; nothing refers to it any more.
    unsafe { sys::ExFreePoolWithTag(raw, ids::TAG_PIN) };
    // SAFETY: we complete the IRP once.
    let status = unsafe { nt::complete(irp, STATUS_SUCCESS, 0) };
    // Last: the filter may close inside this call (if its handle is gone), and nothing of the pin
    // is touched after it.
    // SAFETY: the reference taken at the pin's create, dropped once, at PASSIVE_LEVEL.
    unsafe { sys::ObfDereferenceObject(filter_file.cast()) };
    status
}
