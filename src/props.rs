//! Property sets: the tables `KsPropertyHandler` dispatches through, and the handlers ksring
//! answers itself. ks.sys captures the request and value (so no user pointer is touched here),
//! checks `MinProperty`/`MinData`, and answers `BASICSUPPORT` from the tables.
//!
//! Filter: `KSPROPSETID_Pin` (static ids through `KsPinPropertyHandler`; CINSTANCES,
//! GLOBALCINSTANCES, NECESSARYINSTANCES, DATAINTERSECTION, PROPOSEDATAFORMAT here),
//! `KSPROPSETID_Topology`, `KSPROPSETID_General`, and the private `KSPROPSETID_KsRing`.
//! Pins: `KSPROPSETID_Connection` (STATE, DATAFORMAT, ALLOCATORFRAMING) and `KSPROPSETID_KsRing`.
//! Ids not in a table (e.g. PHYSICALCONNECTION: ksring has none) get `STATUS_NOT_FOUND` from KS.

use core::ffi::c_void;
use core::ptr::null;

use ksabi::{
    GUID, IRP, KSALLOCATOR_FRAMING, KSCOMPONENTID, KSDATAFORMAT, KSIDENTIFIER, KSINSTANCE_INDETERMINATE,
    KSMULTIPLE_ITEM, KSP_NODE, KSP_PIN, KSPIN_CINSTANCES, KSPROPERTY, KSPROPERTY_BOUNDS_LONG,
    KSPROPERTY_GENERAL_COMPONENTID, KSPROPERTY_ITEM, KSPROPERTY_MEMBER_RANGES, KSPROPERTY_MEMBERSHEADER,
    KSPROPERTY_MEMBERSLIST, KSPROPERTY_SET, KSPROPERTY_VALUES, KSPROPSETID_Connection, KSPROPSETID_General,
    KSPROPSETID_Pin, KSPROPSETID_Topology, KSPROPTYPESETID_General, KSSTATE, KsAllocatorRequirements,
    NTSTATUS, PFNKSHANDLER, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS, VT_UI4, connection_property, pin_property, topology_property,
};
use ksring_api::{
    KSPROPSETID_KsRing, KsRingStatistics, MAX_CAPACITY, MIN_CAPACITY, PIN_FACTORIES, ksring_property,
};

use crate::descriptors::{COMPONENT_ID, PINS, TOPOLOGY, Table};
use crate::filter::{Filter, peer};
use crate::format::{self, Format};
use crate::nt;
use crate::object::{self, Object};
use crate::pin::Pin;
use crate::sys;

/// `KsPropertyHandler` with the filter's sets.
///
/// # Safety
/// `irp` is an `IOCTL_KS_PROPERTY` IRP of a filter, owned by the caller.
pub unsafe fn filter_property(irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the caller's IRP; static tables.
    unsafe { sys::KsPropertyHandler(irp, count(&FILTER_SETS.0), FILTER_SETS.0.as_ptr()) }
}

/// `KsPropertyHandler` with a pin's sets.
///
/// # Safety
/// `irp` is an `IOCTL_KS_PROPERTY` IRP of a pin, owned by the caller.
pub unsafe fn pin_property(irp: *mut IRP) -> NTSTATUS {
    // SAFETY: the caller's IRP; static tables.
    unsafe { sys::KsPropertyHandler(irp, count(&PIN_SETS.0), PIN_SETS.0.as_ptr()) }
}

#[allow(clippy::cast_possible_truncation)] // tables of a few entries
const fn count<T>(table: &[T]) -> u32 {
    table.len() as u32
}

type Handler = unsafe extern "system" fn(*mut IRP, *mut KSIDENTIFIER, *mut c_void) -> NTSTATUS;

#[allow(clippy::cast_possible_truncation)] // structure sizes
const fn item(
    id: u32,
    get: Option<Handler>,
    set: Option<Handler>,
    min_property: usize,
    min_data: usize,
    values: *const KSPROPERTY_VALUES,
) -> KSPROPERTY_ITEM {
    let get: PFNKSHANDLER = get;
    KSPROPERTY_ITEM {
        PropertyId: id,
        GetPropertyHandler: get,
        MinProperty: min_property as u32,
        MinData: min_data as u32,
        SetPropertyHandler: set,
        Values: values,
        RelationsCount: 0,
        Relations: null(),
        SupportHandler: None,
        SerializedSize: 0,
    }
}

const fn set<const N: usize>(guid: &'static GUID, items: &'static [KSPROPERTY_ITEM; N]) -> KSPROPERTY_SET {
    KSPROPERTY_SET {
        Set: guid,
        PropertiesCount: count(items),
        PropertyItem: items.as_ptr(),
        FastIoCount: 0,
        FastIoTable: null(),
    }
}

const PIN_REQ: usize = size_of::<KSP_PIN>();
const PLAIN_REQ: usize = size_of::<KSPROPERTY>();

static PIN_ITEMS: Table<[KSPROPERTY_ITEM; 14]> = Table([
    item(
        pin_property::CINSTANCES,
        Some(pin_cinstances),
        None,
        PIN_REQ,
        size_of::<KSPIN_CINSTANCES>(),
        null(),
    ),
    item(pin_property::CTYPES, Some(pin_static), None, PLAIN_REQ, 4, null()),
    item(pin_property::DATAFLOW, Some(pin_static), None, PIN_REQ, 4, null()),
    item(pin_property::DATARANGES, Some(pin_static), None, PIN_REQ, 0, null()),
    item(
        pin_property::DATAINTERSECTION,
        Some(pin_intersection),
        None,
        PIN_REQ + size_of::<KSMULTIPLE_ITEM>(),
        0,
        null(),
    ),
    item(pin_property::INTERFACES, Some(pin_static), None, PIN_REQ, 0, null()),
    item(pin_property::MEDIUMS, Some(pin_static), None, PIN_REQ, 0, null()),
    item(pin_property::COMMUNICATION, Some(pin_static), None, PIN_REQ, 4, null()),
    item(
        pin_property::GLOBALCINSTANCES,
        Some(pin_global_cinstances),
        None,
        PIN_REQ,
        size_of::<KSPIN_CINSTANCES>(),
        null(),
    ),
    item(pin_property::NECESSARYINSTANCES, Some(pin_necessary), None, PIN_REQ, 4, null()),
    item(pin_property::CATEGORY, Some(pin_static), None, PIN_REQ, size_of::<GUID>(), null()),
    item(pin_property::NAME, Some(pin_static), None, PIN_REQ, 0, null()),
    item(pin_property::CONSTRAINEDDATARANGES, Some(pin_static), None, PIN_REQ, 0, null()),
    item(pin_property::PROPOSEDATAFORMAT, Some(pin_propose_get), Some(pin_propose_set), PIN_REQ, 0, null()),
]);

static TOPOLOGY_ITEMS: Table<[KSPROPERTY_ITEM; 4]> = Table([
    item(topology_property::CATEGORIES, Some(topology), None, PLAIN_REQ, 0, null()),
    item(topology_property::NODES, Some(topology), None, PLAIN_REQ, 0, null()),
    item(topology_property::CONNECTIONS, Some(topology), None, PLAIN_REQ, 0, null()),
    item(topology_property::NAME, Some(topology), None, size_of::<KSP_NODE>(), 0, null()),
]);

static GENERAL_ITEMS: Table<[KSPROPERTY_ITEM; 1]> = Table([item(
    KSPROPERTY_GENERAL_COMPONENTID,
    Some(component_id),
    None,
    PLAIN_REQ,
    size_of::<KSCOMPONENTID>(),
    null(),
)]);

static CAPACITY_BOUNDS: KSPROPERTY_BOUNDS_LONG =
    KSPROPERTY_BOUNDS_LONG { UnsignedMinimum: MIN_CAPACITY, UnsignedMaximum: MAX_CAPACITY };
#[allow(clippy::cast_possible_truncation)] // 8 bytes
static CAPACITY_MEMBERS: Table<[KSPROPERTY_MEMBERSLIST; 1]> = Table([KSPROPERTY_MEMBERSLIST {
    MembersHeader: KSPROPERTY_MEMBERSHEADER {
        MembersFlags: KSPROPERTY_MEMBER_RANGES,
        MembersSize: size_of::<KSPROPERTY_BOUNDS_LONG>() as u32,
        MembersCount: 1,
        Flags: 0,
    },
    Members: (&raw const CAPACITY_BOUNDS).cast(),
}]);
/// `CAPACITY` is a `ULONG` in `[MIN_CAPACITY, MAX_CAPACITY]`, as BASICSUPPORT reports.
static CAPACITY_VALUES: Table<KSPROPERTY_VALUES> = Table(KSPROPERTY_VALUES {
    PropTypeSet: KSIDENTIFIER { Set: KSPROPTYPESETID_General, Id: VT_UI4, Flags: 0 },
    MembersListCount: 1,
    MembersList: CAPACITY_MEMBERS.0.as_ptr(),
});

static KSRING_ITEMS: Table<[KSPROPERTY_ITEM; 2]> = Table([
    item(
        ksring_property::CAPACITY,
        Some(capacity_get),
        Some(capacity_set),
        PLAIN_REQ,
        4,
        &raw const CAPACITY_VALUES.0,
    ),
    item(
        ksring_property::STATISTICS,
        Some(statistics),
        None,
        PLAIN_REQ,
        size_of::<KsRingStatistics>(),
        null(),
    ),
]);

static CONNECTION_ITEMS: Table<[KSPROPERTY_ITEM; 3]> = Table([
    item(
        connection_property::STATE,
        Some(state_get),
        Some(state_set),
        PLAIN_REQ,
        size_of::<KSSTATE>(),
        null(),
    ),
    item(connection_property::DATAFORMAT, Some(format_get), Some(format_set), PLAIN_REQ, 0, null()),
    item(
        connection_property::ALLOCATORFRAMING,
        Some(framing),
        None,
        PLAIN_REQ,
        size_of::<KSALLOCATOR_FRAMING>(),
        null(),
    ),
]);

static FILTER_SETS: Table<[KSPROPERTY_SET; 4]> = Table([
    set(&KSPROPSETID_Pin, &PIN_ITEMS.0),
    set(&KSPROPSETID_Topology, &TOPOLOGY_ITEMS.0),
    set(&KSPROPSETID_General, &GENERAL_ITEMS.0),
    set(&KSPROPSETID_KsRing, &KSRING_ITEMS.0),
]);

static PIN_SETS: Table<[KSPROPERTY_SET; 2]> =
    Table([set(&KSPROPSETID_Connection, &CONNECTION_ITEMS.0), set(&KSPROPSETID_KsRing, &KSRING_ITEMS.0)]);

// ---- helpers ------------------------------------------------------------------------------------

/// The value buffer's length (`OutputBufferLength`; for a SET it is the value's length).
fn value_len(irp: *mut IRP) -> usize {
    // SAFETY: handlers run on the property IRP KsPropertyHandler is processing.
    unsafe { nt::ioctl_parameters(irp) }.OutputBufferLength as usize
}

fn set_information(irp: *mut IRP, n: usize) {
    // SAFETY: the property IRP, owned by the handler's caller.
    unsafe {
        (*irp).IoStatus.Information = n;
    }
}

/// Writes a fixed-size value (`MinData` guarantees the room).
fn put<T: Copy>(irp: *mut IRP, data: *mut c_void, value: T) -> NTSTATUS {
    debug_assert!(value_len(irp) >= size_of::<T>());
    // SAFETY: KS checked the value buffer holds MinData = size_of::<T>() bytes.
    unsafe { data.cast::<T>().write_unaligned(value) };
    set_information(irp, size_of::<T>());
    STATUS_SUCCESS
}

/// Reads a fixed-size SET value (`MinData` guarantees it is there).
fn get<T: Copy>(data: *mut c_void) -> T {
    // SAFETY: KS checked the value buffer holds MinData = size_of::<T>() bytes.
    unsafe { data.cast::<T>().read_unaligned() }
}

/// Writes a variable-size value with the KS size protocol: an empty buffer asks for the size
/// (`STATUS_BUFFER_OVERFLOW`), a short one is refused (`STATUS_BUFFER_TOO_SMALL`).
fn put_sized(irp: *mut IRP, data: *mut c_void, bytes: &[u8]) -> NTSTATUS {
    let room = value_len(irp);
    if room == 0 {
        set_information(irp, bytes.len());
        return STATUS_BUFFER_OVERFLOW;
    }
    if room < bytes.len() {
        return STATUS_BUFFER_TOO_SMALL;
    }
    // SAFETY: the value buffer holds `room >= bytes.len()` bytes.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), data.cast::<u8>(), bytes.len()) };
    set_information(irp, bytes.len());
    STATUS_SUCCESS
}

/// A SET value that is a `KSDATAFORMAT`: its `FormatSize` bytes, which must fit the buffer.
fn format_value<'a>(irp: *mut IRP, data: *mut c_void) -> Result<&'a [u8], NTSTATUS> {
    let len = value_len(irp);
    if len < size_of::<KSDATAFORMAT>() {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    // SAFETY: at least a KSDATAFORMAT is there.
    let size = unsafe { (*data.cast::<KSDATAFORMAT>()).FormatSize } as usize;
    if size > len {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    // SAFETY: `size <= len` bytes of the captured value buffer.
    Ok(unsafe { core::slice::from_raw_parts(data.cast::<u8>(), size) })
}

/// The filter the property IRP addresses (directly, or through one of its pins).
fn filter<'a>(irp: *mut IRP) -> Option<&'a Filter> {
    // SAFETY: a property IRP of our file object.
    match unsafe { object::of_irp(irp) }? {
        Object::Filter(f) => Some(f),
        Object::Pin(p) => Some(p.filter()),
    }
}

fn pin<'a>(irp: *mut IRP) -> Option<&'a Pin> {
    // SAFETY: a property IRP of our file object.
    match unsafe { object::of_irp(irp) }? {
        Object::Pin(p) => Some(p),
        Object::Filter(_) => None,
    }
}

/// The `KSP_PIN.PinId` of a request (`MinProperty` guarantees a `KSP_PIN`), checked as
/// `KsPinPropertyHandler` checks it: a known factory and `Reserved` 0.
fn pin_id(request: *mut KSIDENTIFIER) -> Result<u32, NTSTATUS> {
    // SAFETY: KS checked the captured request holds MinProperty = sizeof(KSP_PIN) bytes.
    let pin = unsafe { *request.cast::<KSP_PIN>() };
    if pin.PinId < PIN_FACTORIES && pin.Reserved == 0 { Ok(pin.PinId) } else { Err(STATUS_INVALID_PARAMETER) }
}

/// Runs a handler body that may fail early.
fn answer(f: impl FnOnce() -> Result<NTSTATUS, NTSTATUS>) -> NTSTATUS {
    f().unwrap_or_else(|status| status)
}

// ---- KSPROPSETID_Pin ----------------------------------------------------------------------------

/// The static descriptor properties, answered by ks.sys from the descriptor table.
unsafe extern "system" fn pin_static(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    // SAFETY: KsPropertyHandler's captured request and value; our static descriptors.
    unsafe { sys::KsPinPropertyHandler(irp, request, data, PIN_FACTORIES, PINS.0.as_ptr()) }
}

unsafe extern "system" fn pin_cinstances(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let id = pin_id(request)?;
        let (possible, current) = filter(irp).ok_or(STATUS_INVALID_PARAMETER)?.instances(id);
        Ok(put(irp, data, KSPIN_CINSTANCES { PossibleCount: possible, CurrentCount: current }))
    })
}

unsafe extern "system" fn pin_global_cinstances(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let id = pin_id(request)?;
        let current = filter(irp).ok_or(STATUS_INVALID_PARAMETER)?.global_instances(id);
        Ok(put(
            irp,
            data,
            KSPIN_CINSTANCES { PossibleCount: KSINSTANCE_INDETERMINATE, CurrentCount: current },
        ))
    })
}

/// One of each pin is needed for data to flow through the filter.
unsafe extern "system" fn pin_necessary(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        pin_id(request)?;
        Ok(put(irp, data, 1u32))
    })
}

unsafe extern "system" fn pin_intersection(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    // Not through KsPinDataIntersection: for a stream or wildcard client range it answers from the
    // pin's stream range by itself, whatever the other pin streams (audit F7). The list is walked
    // and checked as it does ([`format::intersect_list`]).
    answer(|| {
        let id = pin_id(request)?;
        let f = filter(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        // SAFETY: the property IRP KsPropertyHandler is processing.
        let in_len = unsafe { nt::ioctl_parameters(irp) }.InputBufferLength as usize;
        let list_len = in_len.saturating_sub(size_of::<KSP_PIN>());
        let start = request.cast::<u8>().wrapping_add(size_of::<KSP_PIN>());
        // SAFETY: KS captured the whole request (InputBufferLength bytes, at least MinProperty =
        // a KSP_PIN and a KSMULTIPLE_ITEM); the list follows the KSP_PIN.
        let list = unsafe { core::slice::from_raw_parts(start, list_len) };
        let offer = format::intersect_list(list, f.format(peer(id)))?;
        Ok(put_sized(irp, data, offer.encode().as_bytes()))
    })
}

unsafe extern "system" fn pin_propose_get(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let id = pin_id(request)?;
        let f = filter(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        Ok(put_sized(irp, data, f.proposed_format(id).encode().as_bytes()))
    })
}

/// Success if a pin of the factory could be created (or set) with the format now.
unsafe extern "system" fn pin_propose_set(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let id = pin_id(request)?;
        let f = filter(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        let format = Format::parse(format_value(irp, data)?)?;
        Ok(f.check_peer(id, format))
    })
}

// ---- KSPROPSETID_Topology, KSPROPSETID_General --------------------------------------------------

unsafe extern "system" fn topology(irp: *mut IRP, request: *mut KSIDENTIFIER, data: *mut c_void) -> NTSTATUS {
    // SAFETY: KsPropertyHandler's captured request and value; our static topology.
    unsafe { sys::KsTopologyPropertyHandler(irp, request, data, &raw const TOPOLOGY.0) }
}

unsafe extern "system" fn component_id(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    put(irp, data, COMPONENT_ID)
}

// ---- KSPROPSETID_KsRing -------------------------------------------------------------------------

unsafe extern "system" fn capacity_get(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| Ok(put(irp, data, filter(irp).ok_or(STATUS_INVALID_PARAMETER)?.capacity())))
}

unsafe extern "system" fn capacity_set(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| Ok(filter(irp).ok_or(STATUS_INVALID_PARAMETER)?.set_capacity(get::<u32>(data))))
}

unsafe extern "system" fn statistics(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| Ok(put(irp, data, filter(irp).ok_or(STATUS_INVALID_PARAMETER)?.statistics())))
}

// ---- KSPROPSETID_Connection (pins) --------------------------------------------------------------

unsafe extern "system" fn state_get(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let p = pin(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        Ok(put(irp, data, p.filter().state(p.id)))
    })
}

unsafe extern "system" fn state_set(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let p = pin(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        Ok(p.filter().set_state(p.id, get::<KSSTATE>(data)))
    })
}

unsafe extern "system" fn format_get(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let p = pin(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        let format = p.filter().format(p.id).ok_or(STATUS_INVALID_PARAMETER)?;
        Ok(put_sized(irp, data, format.encode().as_bytes()))
    })
}

unsafe extern "system" fn format_set(
    irp: *mut IRP,
    _request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    answer(|| {
        let p = pin(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        let format = Format::parse(format_value(irp, data)?)?;
        Ok(p.filter().change_format(p.id, format))
    })
}

/// What the ring can carry: frames up to the whole-frame limit, about two of them in flight,
/// in non-paged system memory, 8-byte aligned (`FILE_QUAD_ALIGNMENT`).
unsafe extern "system" fn framing(irp: *mut IRP, _request: *mut KSIDENTIFIER, data: *mut c_void) -> NTSTATUS {
    /// `FILE_QUAD_ALIGNMENT`: alignment minus one.
    const FILE_QUAD_ALIGNMENT: u32 = 7;
    /// `NonPagedPoolNx`.
    const NON_PAGED_POOL_NX: u32 = 512;
    answer(|| {
        let f = filter(irp).ok_or(STATUS_INVALID_PARAMETER)?;
        let frame = f.whole_frame_limit();
        #[allow(clippy::cast_possible_truncation)] // the record header is 40 bytes
        let per_frame = frame + framering::HEADER_SIZE as u32;
        Ok(put(
            irp,
            data,
            KSALLOCATOR_FRAMING {
                OptionsFlags: KsAllocatorRequirements::SYSTEM_MEMORY.bits(),
                PoolType: NON_PAGED_POOL_NX,
                Frames: (f.capacity() / per_frame).max(1),
                FrameSize: frame,
                FileAlignment: FILE_QUAD_ALIGNMENT,
                Reserved: 0,
            },
        ))
    })
}
