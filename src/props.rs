//! Property sets: the tables `KsPropertyHandler` dispatches through, and the handlers ksring
//! answers itself. ks.sys captures the request and value (so no user pointer is touched here),
//! checks `MinProperty`/`MinData`, and answers `BASICSUPPORT` from the tables.
//!
//! Filter: `KSPROPSETID_Pin` (static ids through `KsPinPropertyHandler`; CINSTANCES,
//! GLOBALCINSTANCES, NECESSARYINSTANCES, DATAINTERSECTION, PROPOSEDATAFORMAT here),
//! `KSPROPSETID_Topology`, `KSPROPSETID_General`, and the private `KSPROPSETID_KsRing`.
//! Pins: `KSPROPSETID_Connection` (STATE, DATAFORMAT, ALLOCATORFRAMING) and `KSPROPSETID_KsRing`.
//! Ids not in a table (e.g. PHYSICALCONNECTION: ksring has none) get `STATUS_NOT_FOUND` from KS.

#![allow(
    clippy::unnecessary_wraps,
    reason = "every handler has the one signature `property::Handler`, fallible or not"
)]

use core::ptr::null;

use ksabi::{
    GUID, KSALLOCATOR_FRAMING, KSCOMPONENTID, KSDATAFORMAT, KSIDENTIFIER, KSINSTANCE_INDETERMINATE,
    KSMULTIPLE_ITEM, KSP_NODE, KSP_PIN, KSPIN_CINSTANCES, KSPROPERTY, KSPROPERTY_BOUNDS_LONG,
    KSPROPERTY_GENERAL_COMPONENTID, KSPROPERTY_ITEM, KSPROPERTY_MEMBER_RANGES, KSPROPERTY_MEMBERSHEADER,
    KSPROPERTY_MEMBERSLIST, KSPROPERTY_SET, KSPROPERTY_VALUES, KSPROPSETID_Connection, KSPROPSETID_General,
    KSPROPSETID_Pin, KSPROPSETID_Topology, KSPROPTYPESETID_General, KSSTATE, KsAllocatorRequirements,
    NTSTATUS, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER, VT_UI4, connection_property,
    pin_property, topology_property,
};
use ksring_api::{KSPROPSETID_KsRing, KsRingStatistics, MAX_CAPACITY, MIN_CAPACITY, ksring_property};

use crate::descriptors::COMPONENT_ID;
use crate::format::{self, Format};
use crate::kernel::property::{self, Request, Value};
use crate::kernel::tables::{Table, property_item};
use crate::pin::Pin;
use crate::pin_id::PinId;

/// The filter's property sets, for `KsPropertyHandler`.
pub fn filter_sets() -> &'static [KSPROPERTY_SET] {
    &FILTER_SETS.0
}

/// A pin's property sets, for `KsPropertyHandler`.
pub fn pin_sets() -> &'static [KSPROPERTY_SET] {
    &PIN_SETS.0
}

#[allow(clippy::cast_possible_truncation)] // tables of a few entries
const fn count<T>(table: &[T]) -> u32 {
    table.len() as u32
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
    property_item(
        pin_property::CINSTANCES,
        Some(pin_cinstances),
        None,
        PIN_REQ,
        size_of::<KSPIN_CINSTANCES>(),
        None,
    ),
    property_item(pin_property::CTYPES, Some(property::pin_descriptors), None, PLAIN_REQ, 4, None),
    property_item(pin_property::DATAFLOW, Some(property::pin_descriptors), None, PIN_REQ, 4, None),
    property_item(pin_property::DATARANGES, Some(property::pin_descriptors), None, PIN_REQ, 0, None),
    property_item(
        pin_property::DATAINTERSECTION,
        Some(pin_intersection),
        None,
        PIN_REQ + size_of::<KSMULTIPLE_ITEM>(),
        0,
        None,
    ),
    property_item(pin_property::INTERFACES, Some(property::pin_descriptors), None, PIN_REQ, 0, None),
    property_item(pin_property::MEDIUMS, Some(property::pin_descriptors), None, PIN_REQ, 0, None),
    property_item(pin_property::COMMUNICATION, Some(property::pin_descriptors), None, PIN_REQ, 4, None),
    property_item(
        pin_property::GLOBALCINSTANCES,
        Some(pin_global_cinstances),
        None,
        PIN_REQ,
        size_of::<KSPIN_CINSTANCES>(),
        None,
    ),
    property_item(pin_property::NECESSARYINSTANCES, Some(pin_necessary), None, PIN_REQ, 4, None),
    property_item(
        pin_property::CATEGORY,
        Some(property::pin_descriptors),
        None,
        PIN_REQ,
        size_of::<GUID>(),
        None,
    ),
    property_item(pin_property::NAME, Some(property::pin_descriptors), None, PIN_REQ, 0, None),
    property_item(
        pin_property::CONSTRAINEDDATARANGES,
        Some(property::pin_descriptors),
        None,
        PIN_REQ,
        0,
        None,
    ),
    property_item(
        pin_property::PROPOSEDATAFORMAT,
        Some(pin_propose_get),
        Some(pin_propose_set),
        PIN_REQ,
        0,
        None,
    ),
]);

static TOPOLOGY_ITEMS: Table<[KSPROPERTY_ITEM; 4]> = Table([
    property_item(topology_property::CATEGORIES, Some(property::topology), None, PLAIN_REQ, 0, None),
    property_item(topology_property::NODES, Some(property::topology), None, PLAIN_REQ, 0, None),
    property_item(topology_property::CONNECTIONS, Some(property::topology), None, PLAIN_REQ, 0, None),
    property_item(topology_property::NAME, Some(property::topology), None, size_of::<KSP_NODE>(), 0, None),
]);

static GENERAL_ITEMS: Table<[KSPROPERTY_ITEM; 1]> = Table([property_item(
    KSPROPERTY_GENERAL_COMPONENTID,
    Some(component_id),
    None,
    PLAIN_REQ,
    size_of::<KSCOMPONENTID>(),
    None,
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
    property_item(
        ksring_property::CAPACITY,
        Some(capacity_get),
        Some(capacity_set),
        PLAIN_REQ,
        4,
        Some(&CAPACITY_VALUES),
    ),
    property_item(
        ksring_property::STATISTICS,
        Some(statistics),
        None,
        PLAIN_REQ,
        size_of::<KsRingStatistics>(),
        None,
    ),
]);

static CONNECTION_ITEMS: Table<[KSPROPERTY_ITEM; 3]> = Table([
    property_item(
        connection_property::STATE,
        Some(state_get),
        Some(state_set),
        PLAIN_REQ,
        size_of::<KSSTATE>(),
        None,
    ),
    property_item(connection_property::DATAFORMAT, Some(format_get), Some(format_set), PLAIN_REQ, 0, None),
    property_item(
        connection_property::ALLOCATORFRAMING,
        Some(framing),
        None,
        PLAIN_REQ,
        size_of::<KSALLOCATOR_FRAMING>(),
        None,
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

/// A SET value that is a `KSDATAFORMAT`: its `FormatSize` bytes, which must fit the buffer.
fn format_value<'v>(value: &'v Value<'_>) -> Result<&'v [u8], NTSTATUS> {
    let bytes = value.bytes();
    if bytes.len() < size_of::<KSDATAFORMAT>() {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    let size = value.get::<u32>()? as usize; // FormatSize, the first field
    bytes.get(..size).ok_or(STATUS_INVALID_BUFFER_SIZE)
}

/// The pin the request was sent to (the Connection set is a pin's).
fn pin<'a>(request: &Request<'a>) -> Result<&'a Pin, NTSTATUS> {
    request.pin().ok_or(STATUS_INVALID_PARAMETER)
}

/// The `KSP_PIN.PinId` of a request (`MinProperty` guarantees a `KSP_PIN`), checked as
/// `KsPinPropertyHandler` checks it: a known factory and `Reserved` 0.
fn pin_id(request: &Request<'_>) -> Result<PinId, NTSTATUS> {
    let pin = request.read::<KSP_PIN>()?;
    PinId::from_u32(pin.PinId).filter(|_| pin.Reserved == 0).ok_or(STATUS_INVALID_PARAMETER)
}

property::property_handlers! {
    pin_cinstances => get_cinstances,
    pin_global_cinstances => get_global_cinstances,
    pin_necessary => get_necessary,
    pin_intersection => get_intersection,
    pin_propose_get => get_proposed,
    pin_propose_set => set_proposed,
    component_id => get_component_id,
    capacity_get => get_capacity,
    capacity_set => set_capacity,
    statistics => get_statistics,
    state_get => get_state,
    state_set => set_state,
    format_get => get_format,
    format_set => set_format,
    framing => get_framing,
}

// ---- KSPROPSETID_Pin ----------------------------------------------------------------------------

fn get_cinstances(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let (possible, current) = request.filter().instances(pin_id(request)?);
    Ok(value.put(KSPIN_CINSTANCES { PossibleCount: possible, CurrentCount: current }))
}

fn get_global_cinstances(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let current = request.filter().global_instances(pin_id(request)?);
    Ok(value.put(KSPIN_CINSTANCES { PossibleCount: KSINSTANCE_INDETERMINATE, CurrentCount: current }))
}

/// One of each pin is needed for data to flow through the filter.
fn get_necessary(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    pin_id(request)?;
    Ok(value.put(1u32))
}

/// Not through `KsPinDataIntersection`: for a stream or wildcard client range it answers from the
/// pin's stream range by itself, whatever the other pin streams (audit F7). The list that follows
/// the `KSP_PIN` is walked and checked as it does ([`format::intersect_list`]).
fn get_intersection(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let id = pin_id(request)?;
    let list = request.tail(size_of::<KSP_PIN>());
    let offer = format::intersect_list(list, request.filter().format(id.peer()))?;
    Ok(value.put_sized(offer.encode().as_bytes()))
}

fn get_proposed(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let id = pin_id(request)?;
    Ok(value.put_sized(request.filter().proposed_format(id).encode().as_bytes()))
}

/// Success if a pin of the factory could be created (or set) with the format now.
fn set_proposed(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let id = pin_id(request)?;
    let format = Format::parse(format_value(value)?)?;
    Ok(request.filter().check_peer(id, format))
}

// ---- KSPROPSETID_General ------------------------------------------------------------------------

fn get_component_id(_request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    Ok(value.put(COMPONENT_ID))
}

// ---- KSPROPSETID_KsRing -------------------------------------------------------------------------

fn get_capacity(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    Ok(value.put(request.filter().capacity()))
}

fn set_capacity(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    Ok(request.filter().set_capacity(value.get::<u32>()?))
}

fn get_statistics(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    Ok(value.put(request.filter().statistics()))
}

// ---- KSPROPSETID_Connection (pins) --------------------------------------------------------------

fn get_state(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let p = pin(request)?;
    Ok(value.put(p.filter().state(p.id)))
}

fn set_state(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let p = pin(request)?;
    Ok(p.filter().set_state(p.id, value.get::<KSSTATE>()?))
}

fn get_format(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let p = pin(request)?;
    let format = p.filter().format(p.id).ok_or(STATUS_INVALID_PARAMETER)?;
    Ok(value.put_sized(format.encode().as_bytes()))
}

fn set_format(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    let p = pin(request)?;
    let format = Format::parse(format_value(value)?)?;
    Ok(p.filter().change_format(p.id, format))
}

/// What the ring can carry: frames up to the whole-frame limit, about two of them in flight,
/// in non-paged system memory, 8-byte aligned (`FILE_QUAD_ALIGNMENT`).
fn get_framing(request: &Request<'_>, value: &mut Value<'_>) -> Result<NTSTATUS, NTSTATUS> {
    /// `FILE_QUAD_ALIGNMENT`: alignment minus one.
    const FILE_QUAD_ALIGNMENT: u32 = 7;
    /// `NonPagedPoolNx`.
    const NON_PAGED_POOL_NX: u32 = 512;
    let f = request.filter();
    let frame = f.whole_frame_limit();
    #[allow(clippy::cast_possible_truncation)] // the record header is 40 bytes
    let per_frame = frame + framering::HEADER_SIZE as u32;
    Ok(value.put(KSALLOCATOR_FRAMING {
        OptionsFlags: KsAllocatorRequirements::SYSTEM_MEMORY.bits(),
        PoolType: NON_PAGED_POOL_NX,
        Frames: (f.capacity() / per_frame).max(1),
        FrameSize: frame,
        FileAlignment: FILE_QUAD_ALIGNMENT,
        Reserved: 0,
    }))
}
