//! Pin instances: creation through `KsValidateConnectRequest` and the driver's own rules, the
//! pin's dispatch table, cleanup (cancel its requests) and close.

use core::ptr::null_mut;

use ksabi::{
    IOCTL_KS_PROPERTY, IOCTL_KS_READ_STREAM, IOCTL_KS_RESET_STATE, IOCTL_KS_WRITE_STREAM, KSDISPATCH_TABLE,
    KSPIN_CONNECT, NTSTATUS, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, nt_success,
};

use crate::filter::Filter;
use crate::format::Format;
use crate::kernel::irp::{Device, Irp};
use crate::kernel::object::Held;
use crate::kernel::object::{self, KIND_PIN, Object, ObjectPrefix};
use crate::pin_id::PinId;
use crate::source;
use crate::stream::{self, Direction};
use crate::{kernel, props};

/// A pin instance, at `FsContext` of its file object.
#[repr(C)]
pub struct Pin {
    pub(crate) prefix: ObjectPrefix,
    /// The filter the pin belongs to, through a reference on its file object from the pin's
    /// create to its close: the I/O manager keeps no reference on a `RelatedFileObject`, so
    /// without this one the filter could close (and be freed) under its pins — its handle closing
    /// first, or a process exiting. Dropped after the pin's close has completed
    /// ([`kernel::object::close`]).
    filter: Held<Filter>,
    /// The pin factory.
    pub id: PinId,
}

impl Pin {
    /// The pin's filter.
    pub fn filter(&self) -> &Filter {
        self.filter.get()
    }
}

/// The pin's dispatch table.
static DISPATCH: KSDISPATCH_TABLE = object::dispatch_table(Some(device_control), Some(close));

kernel::irp::dispatch_routines! {
    /// The pin factory's create routine (`KSSTRING_Pin` under a filter). Checks, in order:
    /// `KsValidateConnectRequest` (pin id, interface, medium, communication, format GUIDs); the
    /// format in detail ([`Format::parse`]); one instance per factory and the other pin's format
    /// ([`Filter::connect`]); for an IRP-source connection (`PinToHandle` set), the pin it names
    /// ([`source::connect`]).
    pub dispatch_create => create,
}

fn create(device: Device, irp: Irp) -> NTSTATUS {
    let Some(Object::Filter(filter)) = irp.parent_object() else {
        return irp.complete(STATUS_INVALID_PARAMETER, 0);
    };
    let status = match irp.connect_request() {
        Err(status) => status,
        Ok((request, format)) => match Format::parse(format) {
            Err(status) => status,
            Ok(format) => connect(device, &irp, filter, &request, format),
        },
    };
    irp.complete(status, 0)
}

/// The pin object, once its create request is valid: the filter's instance and format rules,
/// then the object, then (for an IRP-source pin) the connection to the pin it names.
fn connect(device: Device, irp: &Irp, filter: &Filter, request: &KSPIN_CONNECT, format: Format) -> NTSTATUS {
    // KsValidateConnectRequest checked the id against the descriptors.
    let Some(id) = PinId::from_u32(request.PinId) else {
        return STATUS_INVALID_PARAMETER;
    };
    let status = filter.connect(id, format);
    if !nt_success(status) {
        return status;
    }
    let Some(held) = irp.hold_parent::<Filter>() else {
        filter.abandon(id);
        return STATUS_INVALID_PARAMETER;
    };
    let pin = Pin { prefix: ObjectPrefix { header: null_mut(), kind: KIND_PIN }, filter: held, id };
    let mut status = match kernel::object::create(irp, pin, &DISPATCH) {
        Ok(()) => STATUS_SUCCESS,
        Err(status) => status,
    };
    if nt_success(status) && !request.PinToHandle.is_null() {
        let connected = source::connect(device, irp, filter, id, format, request.PinToHandle);
        if let Err(refused) = connected {
            kernel::object::abandon::<Pin>(irp);
            status = refused;
        }
    }
    if nt_success(status) {
        filter.connected(id);
    } else {
        filter.abandon(id);
    }
    status
}

kernel::irp::dispatch_routines! {
    /// `IRP_MJ_DEVICE_CONTROL` of a pin: properties, stream I/O, reset.
    device_control => pin_device_control,
}

fn pin_device_control(device: Device, irp: Irp) -> NTSTATUS {
    if !matches!(irp.object(), Some(Object::Pin(_))) {
        return irp.complete(STATUS_INVALID_PARAMETER, 0);
    }
    match irp.ioctl_code() {
        IOCTL_KS_PROPERTY => kernel::property::handle(irp, props::pin_sets()),
        IOCTL_KS_WRITE_STREAM => stream::dispatch(irp, Direction::Write),
        IOCTL_KS_READ_STREAM => stream::dispatch(irp, Direction::Read),
        IOCTL_KS_RESET_STATE => {
            let status = match (irp.object(), irp.reset_value()) {
                (Some(Object::Pin(pin)), Ok(value)) => pin.filter().reset(pin.id, value),
                (_, Err(status)) => status,
                (_, Ok(_)) => STATUS_INVALID_PARAMETER,
            };
            irp.complete(status, 0)
        }
        _ => irp.complete_by_default(device),
    }
}

/// `IRP_MJ_CLEANUP` (routed by the driver, not KS): the last handle of a pin closed. Its pending
/// requests are cancelled (the close follows once they have completed); a source feeding it is
/// told its sink ended; if it is a source itself, it shuts down — cancelling, waiting for and
/// letting go of what it sent, then releasing the pin it pointed at.
pub fn cleanup(irp: &Irp) {
    if let Some(Object::Pin(pin)) = irp.object() {
        let f = pin.filter();
        // Closing first (so that nothing new is queued), then what is queued is cancelled.
        f.sink_cleanup(pin.id);
        f.cancel_requests(pin.id);
        if let Some(src) = f.detach_source(pin.id) {
            // At PASSIVE_LEVEL (cleanup); detached from the filter just above.
            source::Source::shut_down(src);
        }
    }
}

kernel::irp::dispatch_routines! {
    /// `IRP_MJ_CLOSE` of a pin: nothing references it any more. Its reference on the filter's
    /// file object goes last, after the close completed: the filter may close inside it (if its
    /// handle is gone).
    close => pin_close,
}

fn pin_close(_device: Device, irp: Irp) -> NTSTATUS {
    kernel::object::close(irp, |pin: &Pin| {
        pin.filter().disconnect(pin.id);
    })
}
