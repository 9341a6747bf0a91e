//! Connecting an IRP-source pin: the checks on the pin its handle names, in the order a caller
//! sees their refusals, then the source made and registered with both filters.

use ksabi::{
    FILE_READ_DATA, FILE_WRITE_DATA, HANDLE, NTSTATUS, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_PARAMETER, STATUS_NO_MATCH,
};

use super::{Kind, Source};
use crate::filter::Filter;
use crate::format::Format;
use crate::kernel::irp::{Device, Irp};
use crate::kernel::object::Object;
use crate::kernel::outbound::Target;
use crate::kernel::pool::Shared;
use crate::pin_id::PinId;

/// Why a connection was refused.
pub type Refusal = NTSTATUS;

/// Connects pin `pin` of `filter` (format `format`) as a source to the pin behind `handle`, for
/// the pin's create request `irp` on `device` (at `PASSIVE_LEVEL`, in the caller's context).
///
/// Checks, in order: the handle names a file object (`ObReferenceObjectByHandle`:
/// `STATUS_INVALID_HANDLE`, `STATUS_OBJECT_TYPE_MISMATCH`); it is a pin of another ksring filter
/// (`STATUS_INVALID_PARAMETER`); of the opposite data flow, an IRP sink itself, streaming the same
/// format (`STATUS_NO_MATCH`); not already fed by a source (`STATUS_DEVICE_BUSY`); then the
/// source's memory (`STATUS_INSUFFICIENT_RESOURCES`).
///
/// # Errors
/// The refusal.
pub fn connect(
    device: Device,
    irp: &Irp,
    filter: &Filter,
    pin: PinId,
    format: Format,
    handle: HANDLE,
) -> Result<Shared<Source>, Refusal> {
    // A push source writes to the pin it names, a pull source reads from it: a user-mode caller's
    // handle must grant that (the object manager checks it for UserMode), or the caller could make
    // ksring write through a handle it may only read.
    let access = if pin == PinId::Output { FILE_WRITE_DATA } else { FILE_READ_DATA };
    let (target, lease) = irp.reference_handle(handle, access)?;
    check_target(device, &target, filter, pin, format)?;
    let kind = if pin == PinId::Output { Kind::Push } else { Kind::Pull };
    let own_filter = irp.hold_parent::<Filter>().ok_or(STATUS_INVALID_PARAMETER)?;
    // On a refusal from here on the source is dropped, and with it the target's reference.
    let source = Source::new(kind, own_filter, device, target, lease).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    {
        let claim = source.target.claim().ok_or(STATUS_INVALID_PARAMETER)?;
        let Some(Object::Pin(sink)) = claim.object(device) else {
            return Err(STATUS_INVALID_PARAMETER); // checked above; the reference keeps it
        };
        sink.filter().attach_feeder(sink.id, source.clone())?;
    }
    filter.attach_source(pin, source.clone());
    Ok(source)
}

/// Whether a source pin `pin` of `filter` streaming `format` may feed the pin behind `target`.
fn check_target(
    device: Device,
    target: &Target,
    filter: &Filter,
    pin: PinId,
    format: Format,
) -> Result<(), Refusal> {
    let claim = target.claim().ok_or(STATUS_INVALID_PARAMETER)?;
    // Not one of our pins (only on our device stack is FsContext ours), or a filter.
    let Some(Object::Pin(sink)) = claim.object(device) else {
        return Err(STATUS_INVALID_PARAMETER);
    };
    if core::ptr::eq(sink.filter(), filter) {
        return Err(STATUS_INVALID_PARAMETER); // a filter's own pin: a loop
    }
    if sink.id != pin.peer()
        || sink.filter().is_source(sink.id)
        || sink.filter().format(sink.id) != Some(format)
    {
        return Err(STATUS_NO_MATCH);
    }
    Ok(())
}
