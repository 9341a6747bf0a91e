//! Property requests as safe types. `KsPropertyHandler` calls an item's handler with the IRP, the
//! captured request (`KSPROPERTY` and what follows it, `InputBufferLength` bytes) and the value
//! buffer (`OutputBufferLength` bytes, captured too), having checked `MinProperty` and `MinData`.
//! [`property_handlers!`] wraps a safe `fn(&Request, &mut Value) -> Result<NTSTATUS,
//! NTSTATUS>` into the `extern "system"` handler KS calls; the handler reads the request and
//! reads or writes the value only through bounds-checked methods, and never sees the IRP.

use core::ffi::c_void;

use ksabi::{
    IRP, KSALLOCATOR_FRAMING, KSCOMPONENTID, KSIDENTIFIER, KSP_PIN, KSPIN_CINSTANCES, KSPROPERTY_SET,
    NTSTATUS, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};
use ksring_api::KsRingStatistics;

use crate::filter::Filter;
use crate::kernel::irp::Irp;
use crate::kernel::object::Object;
use crate::pin::Pin;
use crate::sys;

/// Plain data that may be read from any bytes a caller sent and written whole to a caller's
/// buffer.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes is a valid `Self`, and `Self` has no padding
/// (writing it must not hand uninitialised kernel memory to user mode).
pub unsafe trait Plain: Copy {}

// SAFETY: integers: any bits, no padding.
unsafe impl Plain for u32 {}
// SAFETY: as above.
unsafe impl Plain for i32 {}
// SAFETY: a KSPROPERTY (a GUID and two u32s), then two u32s: no padding (checked below).
unsafe impl Plain for KSP_PIN {}
// SAFETY: two u32s.
unsafe impl Plain for KSPIN_CINSTANCES {}
// SAFETY: four GUIDs and two u32s: no padding (checked below).
unsafe impl Plain for KSCOMPONENTID {}
// SAFETY: six u32s.
unsafe impl Plain for KSALLOCATOR_FRAMING {}
// SAFETY: eleven u64 counters, two u32s, two u64s: no padding (checked below).
unsafe impl Plain for KsRingStatistics {}

const _: () = {
    // The "no padding" half of the promises above, checked: the fields add up to the size.
    assert!(size_of::<KSP_PIN>() == 16 + 4 * 4);
    assert!(size_of::<KSPIN_CINSTANCES>() == 2 * 4);
    assert!(size_of::<KSCOMPONENTID>() == 4 * 16 + 2 * 4);
    assert!(size_of::<KSALLOCATOR_FRAMING>() == 6 * 4);
    assert!(size_of::<KsRingStatistics>() == 13 * 8 + 2 * 4);
};

/// A property request: the object it addresses and the captured request bytes.
pub struct Request<'a> {
    object: Object<'a>,
    bytes: &'a [u8],
}

impl<'a> Request<'a> {
    /// The filter addressed, directly or through one of its pins.
    #[must_use]
    pub fn filter(&self) -> &'a Filter {
        match self.object {
            Object::Filter(f) => f,
            Object::Pin(p) => p.filter(),
        }
    }

    /// The pin addressed, if the request was sent to a pin.
    #[must_use]
    pub fn pin(&self) -> Option<&'a Pin> {
        match self.object {
            Object::Pin(p) => Some(p),
            Object::Filter(_) => None,
        }
    }

    /// The request read as `T` from its start (`KSP_PIN`, ...): `STATUS_INVALID_PARAMETER` if it
    /// is shorter (KS's `MinProperty` check normally prevents that).
    ///
    /// # Errors
    /// `STATUS_INVALID_PARAMETER` if the request is shorter than `T`.
    pub fn read<T: Plain>(&self) -> Result<T, NTSTATUS> {
        read_from(self.bytes).ok_or(STATUS_INVALID_PARAMETER)
    }

    /// The request bytes after its first `offset` (what follows a `KSP_PIN`, ...).
    #[must_use]
    pub fn tail(&self, offset: usize) -> &'a [u8] {
        self.bytes.get(offset..).unwrap_or_default()
    }
}

/// The value buffer of a property request: read for a SET, written for a GET. What it writes is
/// reported in the IRP's `Information`.
pub struct Value<'a> {
    bytes: &'a mut [u8],
    /// The IRP's `Information` (set into the IRP when the handler returns).
    information: usize,
}

impl Value<'_> {
    /// The whole buffer (a SET's value).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    /// A SET's fixed-size value.
    ///
    /// # Errors
    /// `STATUS_BUFFER_TOO_SMALL` if the buffer is shorter than `T` (KS's `MinData` prevents it).
    pub fn get<T: Plain>(&self) -> Result<T, NTSTATUS> {
        read_from(self.bytes).ok_or(STATUS_BUFFER_TOO_SMALL)
    }

    /// Answers a GET with a fixed-size value.
    pub fn put<T: Plain>(&mut self, value: T) -> NTSTATUS {
        let Some(out) = self.bytes.get_mut(..size_of::<T>()) else {
            return STATUS_BUFFER_TOO_SMALL;
        };
        // SAFETY: `out` is `size_of::<T>()` writable bytes; `T` is plain data without padding.
        unsafe { out.as_mut_ptr().cast::<T>().write_unaligned(value) };
        self.information = size_of::<T>();
        STATUS_SUCCESS
    }

    /// Answers a GET with a variable-size value, by the KS size protocol: an empty buffer asks for
    /// the size (`STATUS_BUFFER_OVERFLOW` with the size in `Information`), a short one is refused
    /// (`STATUS_BUFFER_TOO_SMALL`).
    pub fn put_sized(&mut self, bytes: &[u8]) -> NTSTATUS {
        if self.bytes.is_empty() {
            self.information = bytes.len();
            return STATUS_BUFFER_OVERFLOW;
        }
        let Some(out) = self.bytes.get_mut(..bytes.len()) else {
            return STATUS_BUFFER_TOO_SMALL;
        };
        out.copy_from_slice(bytes);
        self.information = bytes.len();
        STATUS_SUCCESS
    }
}

/// `T` from the start of `bytes`, if they hold one.
fn read_from<T: Plain>(bytes: &[u8]) -> Option<T> {
    let bytes = bytes.get(..size_of::<T>())?;
    // SAFETY: `size_of::<T>()` readable bytes; any bits are a valid `T` (`Plain`).
    Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

/// A safe property handler.
pub type Handler = fn(&Request<'_>, &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS>;

/// Runs `handler` on the arguments `KsPropertyHandler` passed to an item's handler.
///
/// # Safety
/// `irp`, `request` and `data` are what `KsPropertyHandler` passed to a handler of one of this
/// driver's property tables, for a property IRP of one of the driver's file objects; the call is
/// made before that handler returns.
#[inline(never)] // one copy: each item's wrapper is a call with its handler
pub unsafe fn run(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
    handler: Handler,
) -> NTSTATUS {
    // SAFETY: the caller's promise: a property IRP of one of our file objects, owned by
    // KsPropertyHandler's caller (`handle`) for this call. This second `Irp` is a view of it for
    // the call: it is never completed or handed on here, only let go (the handler gets no `Irp`).
    let Some(mut irp) = (unsafe { Irp::from_raw(irp) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let parameters = irp.owned().ioctl();
    let request_len = parameters.InputBufferLength as usize;
    let value_len = if data.is_null() { 0 } else { parameters.OutputBufferLength as usize };
    let bytes = {
        // SAFETY: KS captured the whole request (`InputBufferLength` bytes, at least
        // `MinProperty`) into system memory that stays until the IRP completes; nothing writes it
        // meanwhile.
        unsafe { core::slice::from_raw_parts(request.cast::<u8>(), request_len) }
    };
    // SAFETY: KS captured (GET: allocated) the value buffer of `OutputBufferLength` bytes in
    // system memory, distinct from the request, alive until the IRP completes; only this handler
    // touches it during the call. A null buffer is taken as empty.
    let value_bytes = unsafe { raw_bytes(data.cast::<u8>(), value_len) };
    let information = irp.owned().io_status().Information;
    let Some(object) = irp.object() else {
        return STATUS_INVALID_PARAMETER;
    };
    let mut value = Value { bytes: value_bytes, information };
    let status = handler(&Request { object, bytes }, &mut value).unwrap_or_else(|status| status);
    irp.owned_mut().io_status_mut().Information = value.information;
    status
}

/// `len` bytes at `data`, or an empty slice when `len` is 0 (`data` may then be null).
///
/// # Safety
/// If `len` is not 0, `data` is valid for reads and writes of `len` bytes for `'a`, and nothing
/// else accesses them meanwhile.
unsafe fn raw_bytes<'a>(data: *mut u8, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: the caller's promise.
    unsafe { core::slice::from_raw_parts_mut(data, len) }
}

/// `KsPropertyHandler` on a property IRP with one of the driver's property tables, then the
/// IRP's completion with the `Information` the handler set.
///
/// The sets' handlers must be made with [`property_handlers!`] or be ks.sys' own (the tables in
/// `props` are): they run inside this call, on this IRP.
pub fn handle(irp: Irp, sets: &'static [KSPROPERTY_SET]) -> NTSTATUS {
    #[allow(clippy::cast_possible_truncation)] // tables of a few sets
    let count = sets.len() as u32;
    // SAFETY: a property IRP of one of the driver's file objects, owned by `irp`; static tables
    // whose handlers expect exactly that.
    let status = unsafe { sys::KsPropertyHandler(irp.as_raw(), count, sets.as_ptr()) };
    irp.complete_keeping_information(status)
}

/// Wraps safe [`Handler`]s into the `extern "system"` handlers a `KSPROPERTY_ITEM` names: for each
/// `name => path`, an `unsafe extern "system" fn name(irp, request, data)` that calls
/// [`run`] with `path`. Used in `props`' tables only.
macro_rules! property_handlers {
    ($($name:ident => $handler:path),* $(,)?) => {
        $(
            unsafe extern "system" fn $name(
                irp: *mut ::ksabi::IRP,
                request: *mut ::ksabi::KSIDENTIFIER,
                data: *mut ::core::ffi::c_void,
            ) -> ::ksabi::NTSTATUS {
                // SAFETY: KsPropertyHandler calls this item handler of the driver's tables with its
                // captured arguments, for a property IRP of one of the driver's file objects.
                unsafe { $crate::kernel::property::run(irp, request, data, $handler) }
            }
        )*
    };
}
pub(crate) use property_handlers;

/// The static descriptor properties of `KSPROPSETID_Pin` (CTYPES, DATAFLOW, DATARANGES, ...),
/// answered by ks.sys (`KsPinPropertyHandler`) from the driver's pin descriptors.
///
/// # Safety
/// Called by `KsPropertyHandler` as an item handler, with its captured arguments.
pub unsafe extern "system" fn pin_descriptors(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    use crate::descriptors::PINS;
    // SAFETY: KsPropertyHandler's captured request and value; the driver's static descriptors.
    unsafe { sys::KsPinPropertyHandler(irp, request, data, ksring_api::PIN_FACTORIES, PINS.0.as_ptr()) }
}

/// `KSPROPSETID_Topology`, answered by ks.sys (`KsTopologyPropertyHandler`) from the driver's
/// static topology.
///
/// # Safety
/// Called by `KsPropertyHandler` as an item handler, with its captured arguments.
pub unsafe extern "system" fn topology(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    use crate::descriptors::TOPOLOGY;
    // SAFETY: KsPropertyHandler's captured request and value; the driver's static topology.
    unsafe { sys::KsTopologyPropertyHandler(irp, request, data, &raw const TOPOLOGY.0) }
}
