//! What the driver keeps at `FileObject->FsContext`: a filter or a pin, told apart by a tag that
//! follows the KS object header (which KS requires to be the first field).

use core::ffi::c_void;

use ksabi::{FILE_OBJECT, IRP, KSDISPATCH_TABLE, PDRIVER_DISPATCH};

use crate::filter::Filter;
use crate::pin::Pin;

/// `"KsFl"`: the object is a [`Filter`].
pub const KIND_FILTER: u32 = u32::from_le_bytes(*b"KsFl");
/// `"KsPn"`: the object is a [`Pin`].
pub const KIND_PIN: u32 = u32::from_le_bytes(*b"KsPn");

/// The first fields of every object the driver hangs on a file object.
#[repr(C)]
pub struct ObjectPrefix {
    /// `KSOBJECT_HEADER`, allocated by `KsAllocateObjectHeader`; first, as KS requires.
    pub header: *mut c_void,
    /// [`KIND_FILTER`] or [`KIND_PIN`].
    pub kind: u32,
}

/// A driver object found at a file object.
pub enum Object<'a> {
    /// A filter instance.
    Filter(&'a Filter),
    /// A pin instance.
    Pin(&'a Pin),
}

/// The object of the IRP's file object, if it has one of ours.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller, for a file object of this driver's device; the
/// object lives at least as long as the IRP is outstanding (KS and the I/O manager hold the file
/// object, and the driver frees an object only at its `IRP_MJ_CLOSE`).
pub unsafe fn of_irp<'a>(irp: *mut IRP) -> Option<Object<'a>> {
    // SAFETY: the caller's IRP.
    let file = unsafe { crate::nt::file_object(irp) };
    // SAFETY: as above.
    unsafe { of_file(file) }
}

/// The object at a file object's `FsContext`, if it has one of ours.
///
/// # Safety
/// As [`of_irp`]; `file` may be null.
pub unsafe fn of_file<'a>(file: *mut FILE_OBJECT) -> Option<Object<'a>> {
    if file.is_null() {
        return None;
    }
    // SAFETY: a valid file object of our device.
    let context = unsafe { (*file).FsContext }.cast::<ObjectPrefix>();
    if context.is_null() {
        return None;
    }
    // SAFETY: the driver only ever stores a Filter or a Pin there, both starting with the prefix.
    match unsafe { (*context).kind } {
        // SAFETY: the tag says which structure this is.
        KIND_FILTER => Some(Object::Filter(unsafe { &*context.cast::<Filter>() })),
        // SAFETY: as above.
        KIND_PIN => Some(Object::Pin(unsafe { &*context.cast::<Pin>() })),
        _ => None,
    }
}

/// A dispatch table with the object's own device-control and close routines; every other routed
/// major is refused (`KsDispatchInvalidDeviceRequest`) and there is no fast I/O.
pub const fn dispatch_table(device_control: PDRIVER_DISPATCH, close: PDRIVER_DISPATCH) -> KSDISPATCH_TABLE {
    KSDISPATCH_TABLE {
        DeviceIoControl: device_control,
        Read: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        Write: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        Flush: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        Close: close,
        QuerySecurity: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        SetSecurity: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        FastDeviceIoControl: None,
        FastRead: None,
        FastWrite: None,
    }
}
