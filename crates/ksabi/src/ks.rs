//! Kernel Streaming structures (KS-REFERENCE §2), x64 layouts.
//!
//! C declares `KSIDENTIFIER` and `KSDATAFORMAT` as unions with a `LONGLONG Alignment` member whose
//! only job is 8-byte alignment; here they are structs with `align(8)`, which has the same layout.

use core::ffi::c_void;

use crate::{
    DEVICE_OBJECT, FILE_OBJECT, GUID, HANDLE, IO_STATUS_BLOCK, IRP, NTSTATUS, PDRIVER_DISPATCH,
    PFAST_IO_DEVICE_CONTROL, PFAST_IO_READ, PFAST_IO_WRITE, PVOID, UNICODE_STRING,
};

/// `KSIDENTIFIER`: a set GUID, an id in the set, and flags. Also `KSPROPERTY`, `KSMETHOD`,
/// `KSEVENT`, `KSPIN_INTERFACE` and `KSPIN_MEDIUM` (where `Flags` is reserved).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSIDENTIFIER {
    /// The set.
    pub Set: GUID,
    /// The item within the set.
    pub Id: u32,
    /// `KSPROPERTY_TYPE_*` for properties; reserved for interfaces and mediums.
    pub Flags: u32,
}

/// `KSPROPERTY`.
pub type KSPROPERTY = KSIDENTIFIER;
/// `KSMETHOD`.
pub type KSMETHOD = KSIDENTIFIER;
/// `KSEVENT`.
pub type KSEVENT = KSIDENTIFIER;
/// `KSPIN_INTERFACE`.
pub type KSPIN_INTERFACE = KSIDENTIFIER;
/// `KSPIN_MEDIUM`.
pub type KSPIN_MEDIUM = KSIDENTIFIER;

/// `KSP_PIN`: a property request addressed to one pin factory.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSP_PIN {
    /// The property.
    pub Property: KSPROPERTY,
    /// The pin factory id.
    pub PinId: u32,
    /// `Reserved` or `Flags` (`KSPROPERTY_PIN_FLAGS_ATTRIBUTE_RANGE_AWARE`).
    pub Reserved: u32,
}

/// `KSP_NODE`: a property request addressed to one topology node.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSP_NODE {
    /// The property.
    pub Property: KSPROPERTY,
    /// The node id.
    pub NodeId: u32,
    /// Reserved.
    pub Reserved: u32,
}

/// `KSPRIORITY`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSPRIORITY {
    /// `KSPRIORITY_*` class.
    pub PriorityClass: u32,
    /// Sub-class.
    pub PrioritySubClass: u32,
}

/// `KSPIN_CONNECT`: what a client asks for when it creates a pin; a `KSDATAFORMAT` follows it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_CONNECT {
    /// Requested interface.
    pub Interface: KSPIN_INTERFACE,
    /// Requested medium.
    pub Medium: KSPIN_MEDIUM,
    /// Pin factory id.
    pub PinId: u32,
    /// NULL: the new pin is an IRP sink. Otherwise the sink pin this IRP-source pin connects to.
    pub PinToHandle: HANDLE,
    /// Priority.
    pub Priority: KSPRIORITY,
}

/// `KSDATAFORMAT` (also `KSDATARANGE`): a format or a range of formats.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSDATAFORMAT {
    /// Bytes including any format-specific tail.
    pub FormatSize: u32,
    /// `KSDATAFORMAT_*` / `KSDATARANGE_*` flags.
    pub Flags: u32,
    /// Fixed sample size, or 0.
    pub SampleSize: u32,
    /// Must be 0.
    pub Reserved: u32,
    /// Major format.
    pub MajorFormat: GUID,
    /// Sub format.
    pub SubFormat: GUID,
    /// Specifier: what the format-specific tail is.
    pub Specifier: GUID,
}

/// `KSDATARANGE`.
pub type KSDATARANGE = KSDATAFORMAT;

/// `KSDATARANGE_AUDIO`: a PCM range with channel, bit-depth and rate bounds.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSDATARANGE_AUDIO {
    /// The generic range.
    pub DataRange: KSDATARANGE,
    /// Most channels.
    pub MaximumChannels: u32,
    /// Fewest bits per sample.
    pub MinimumBitsPerSample: u32,
    /// Most bits per sample.
    pub MaximumBitsPerSample: u32,
    /// Lowest rate in Hz.
    pub MinimumSampleFrequency: u32,
    /// Highest rate in Hz.
    pub MaximumSampleFrequency: u32,
}

/// `WAVEFORMATEX` (packed to 1 byte, as `mmreg.h` declares it).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WAVEFORMATEX {
    /// `WAVE_FORMAT_PCM` (1) or `WAVE_FORMAT_EXTENSIBLE` (0xFFFE)...
    pub wFormatTag: u16,
    /// Channels.
    pub nChannels: u16,
    /// Sample rate in Hz.
    pub nSamplesPerSec: u32,
    /// `nSamplesPerSec * nBlockAlign`.
    pub nAvgBytesPerSec: u32,
    /// Bytes per sample frame: `nChannels * wBitsPerSample / 8`.
    pub nBlockAlign: u16,
    /// Bits per sample.
    pub wBitsPerSample: u16,
    /// Bytes of extra format data that follow.
    pub cbSize: u16,
}

/// `WAVE_FORMAT_PCM`.
pub const WAVE_FORMAT_PCM: u16 = 1;
/// `WAVE_FORMAT_EXTENSIBLE`.
pub const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Size of `KSDATAFORMAT_WAVEFORMATEX` (a `KSDATAFORMAT` then a `WAVEFORMATEX`, packed: 82 bytes).
///
/// Rust cannot nest the 8-aligned `KSDATAFORMAT` in a packed struct, so PCM formats are read as a
/// `KSDATAFORMAT` followed by a `WAVEFORMATEX` at offset `size_of::<KSDATAFORMAT>()`.
pub const KSDATAFORMAT_WAVEFORMATEX_SIZE: usize =
    core::mem::size_of::<KSDATAFORMAT>() + core::mem::size_of::<WAVEFORMATEX>();

/// `KSMULTIPLE_ITEM`: the head of a list: total size in bytes (including this head) and count.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSMULTIPLE_ITEM {
    /// Bytes of the whole list, this head included.
    pub Size: u32,
    /// Items that follow.
    pub Count: u32,
}

/// `KSATTRIBUTE`: one attribute of a format (after `KSDATAFORMAT_ATTRIBUTES`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSATTRIBUTE {
    /// Bytes of this attribute.
    pub Size: u32,
    /// `KSATTRIBUTE_REQUIRED`.
    pub Flags: u32,
    /// The attribute.
    pub Attribute: GUID,
}

/// `KSPIN_CINSTANCES`: how many pins a factory can make and has made.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSPIN_CINSTANCES {
    /// Limit, or `KSINSTANCE_INDETERMINATE`.
    pub PossibleCount: u32,
    /// Current count.
    pub CurrentCount: u32,
}

/// `KSTIME`: a time in units of `Numerator/Denominator` seconds... scaled by 100 ns for media time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSTIME {
    /// The time.
    pub Time: i64,
    /// Scale numerator.
    pub Numerator: u32,
    /// Scale denominator.
    pub Denominator: u32,
}

/// `KSSTREAM_HEADER` (x64: 0x38 bytes with the trailing `Reserved`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSSTREAM_HEADER {
    /// Bytes of this header (larger for extended headers; a multiple of 8).
    pub Size: u32,
    /// Format-specific flags.
    pub TypeSpecificFlags: u32,
    /// Presentation time.
    pub PresentationTime: KSTIME,
    /// Duration in 100 ns units.
    pub Duration: i64,
    /// Bytes available at `Data`.
    pub FrameExtent: u32,
    /// Bytes of valid data (0 when a read is submitted).
    pub DataUsed: u32,
    /// The frame's buffer (a caller address).
    pub Data: PVOID,
    /// `KSSTREAM_HEADER_OPTIONSF_*`.
    pub OptionsFlags: u32,
    /// Reserved (x64 only).
    pub Reserved: u32,
}

/// `KSPIN_DESCRIPTOR`: a pin factory. Kernel-only (not in windows-sys).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPIN_DESCRIPTOR {
    /// Interfaces in the table at `Interfaces` (0: the standard streaming interface).
    pub InterfacesCount: u32,
    /// The interfaces.
    pub Interfaces: *const KSPIN_INTERFACE,
    /// Mediums in the table at `Mediums` (0: the standard any-instance medium).
    pub MediumsCount: u32,
    /// The mediums.
    pub Mediums: *const KSPIN_MEDIUM,
    /// Ranges at `DataRanges`.
    pub DataRangesCount: u32,
    /// Pointers to the ranges (each may be a larger, specifier-specific range).
    pub DataRanges: *const *const KSDATARANGE,
    /// `KSPIN_DATAFLOW_IN` (data sink) or `_OUT` (data source).
    pub DataFlow: KSPIN_DATAFLOW,
    /// `KSPIN_COMMUNICATION_*`: IRP sink, source, both...
    pub Communication: KSPIN_COMMUNICATION,
    /// Category GUID (may be NULL).
    pub Category: *const GUID,
    /// Name GUID (may be NULL: the category's name is used).
    pub Name: *const GUID,
    /// Constrained ranges (a union with a `LONGLONG Reserved` in C; zero when unused).
    pub ConstrainedDataRangesCount: u32,
    /// The constrained ranges.
    pub ConstrainedDataRanges: *const *const KSDATARANGE,
}

/// `KSPIN_DATAFLOW`.
pub type KSPIN_DATAFLOW = i32;
/// Data flows into the pin: a data sink ("input").
pub const KSPIN_DATAFLOW_IN: KSPIN_DATAFLOW = 1;
/// Data flows out of the pin: a data source ("output").
pub const KSPIN_DATAFLOW_OUT: KSPIN_DATAFLOW = 2;

/// `KSPIN_COMMUNICATION`.
pub type KSPIN_COMMUNICATION = i32;
/// Not connectable.
pub const KSPIN_COMMUNICATION_NONE: KSPIN_COMMUNICATION = 0;
/// IRP sink: receives IRPs.
pub const KSPIN_COMMUNICATION_SINK: KSPIN_COMMUNICATION = 1;
/// IRP source: issues IRPs to another pin.
pub const KSPIN_COMMUNICATION_SOURCE: KSPIN_COMMUNICATION = 2;
/// Either.
pub const KSPIN_COMMUNICATION_BOTH: KSPIN_COMMUNICATION = 3;
/// A bridge to non-KS I/O.
pub const KSPIN_COMMUNICATION_BRIDGE: KSPIN_COMMUNICATION = 4;

/// `KSOBJECT_CREATE_ITEM`: a named entry that creates a filter (device header) or pin (object header).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSOBJECT_CREATE_ITEM {
    /// The create dispatch routine; it completes the IRP itself.
    pub Create: PDRIVER_DISPATCH,
    /// Context for the routine.
    pub Context: PVOID,
    /// The name matched against the file name (reference string, `KSSTRING_Pin`...).
    pub ObjectClass: UNICODE_STRING,
    /// `PSECURITY_DESCRIPTOR`.
    pub SecurityDescriptor: PVOID,
    /// `KSCREATE_ITEM_*`.
    pub Flags: u32,
}

/// `KSDISPATCH_TABLE`: an object's dispatch routines, referenced by its object header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSDISPATCH_TABLE {
    /// `IRP_MJ_DEVICE_CONTROL`.
    pub DeviceIoControl: PDRIVER_DISPATCH,
    /// `IRP_MJ_READ`.
    pub Read: PDRIVER_DISPATCH,
    /// `IRP_MJ_WRITE`.
    pub Write: PDRIVER_DISPATCH,
    /// `IRP_MJ_FLUSH_BUFFERS`.
    pub Flush: PDRIVER_DISPATCH,
    /// `IRP_MJ_CLOSE`.
    pub Close: PDRIVER_DISPATCH,
    /// `IRP_MJ_QUERY_SECURITY`.
    pub QuerySecurity: PDRIVER_DISPATCH,
    /// `IRP_MJ_SET_SECURITY`.
    pub SetSecurity: PDRIVER_DISPATCH,
    /// Fast I/O device control.
    pub FastDeviceIoControl: PFAST_IO_DEVICE_CONTROL,
    /// Fast I/O read.
    pub FastRead: PFAST_IO_READ,
    /// Fast I/O write.
    pub FastWrite: PFAST_IO_WRITE,
}

/// `PFNKSHANDLER`: a property/method handler: `(Irp, Request, Data) -> NTSTATUS`.
pub type PFNKSHANDLER =
    Option<unsafe extern "system" fn(irp: *mut IRP, request: *mut KSIDENTIFIER, data: PVOID) -> NTSTATUS>;

/// `PFNKSINTERSECTHANDLER`: writes the format a client range and a factory range share.
pub type PFNKSINTERSECTHANDLER = Option<
    unsafe extern "system" fn(
        irp: *mut IRP,
        pin: *mut KSP_PIN,
        data_range: *mut KSDATARANGE,
        data: PVOID,
    ) -> NTSTATUS,
>;

/// `PFNKSFASTHANDLER`.
pub type PFNKSFASTHANDLER = Option<
    unsafe extern "system" fn(
        file: *mut FILE_OBJECT,
        request: *mut KSIDENTIFIER,
        request_length: u32,
        data: PVOID,
        data_length: u32,
        status: *mut IO_STATUS_BLOCK,
    ) -> u8,
>;

/// `PFNKSCONTEXT_DISPATCH`: a power callback registered with `KsSetPowerDispatch`.
pub type PFNKSCONTEXT_DISPATCH = Option<unsafe extern "system" fn(context: PVOID, irp: *mut IRP) -> NTSTATUS>;

/// `KSPROPERTY_MEMBERSHEADER`: the head of one member list in a basic-support reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSPROPERTY_MEMBERSHEADER {
    /// `KSPROPERTY_MEMBER_RANGES`, `_STEPPEDRANGES` or `_VALUES`.
    pub MembersFlags: u32,
    /// Bytes of one member.
    pub MembersSize: u32,
    /// Members.
    pub MembersCount: u32,
    /// `KSPROPERTY_MEMBER_FLAG_*`.
    pub Flags: u32,
}

/// `KSPROPERTY_MEMBERSLIST`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPROPERTY_MEMBERSLIST {
    /// The head.
    pub MembersHeader: KSPROPERTY_MEMBERSHEADER,
    /// The members.
    pub Members: *const c_void,
}

/// `KSPROPERTY_VALUES`: type and member lists of a property, for automatic basic support.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPROPERTY_VALUES {
    /// `{KSPROPTYPESETID_General, VT_xxx, 0}`.
    pub PropTypeSet: KSIDENTIFIER,
    /// Lists at `MembersList`.
    pub MembersListCount: u32,
    /// The lists.
    pub MembersList: *const KSPROPERTY_MEMBERSLIST,
}

/// `KSPROPERTY_BOUNDS_LONG` (the unsigned reading of the C union).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSPROPERTY_BOUNDS_LONG {
    /// Lower bound.
    pub UnsignedMinimum: u32,
    /// Upper bound.
    pub UnsignedMaximum: u32,
}

/// `KSPROPERTY_STEPPING_LONG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSPROPERTY_STEPPING_LONG {
    /// Step.
    pub SteppingDelta: u32,
    /// Reserved.
    pub Reserved: u32,
    /// Bounds.
    pub Bounds: KSPROPERTY_BOUNDS_LONG,
}

/// `KSPROPERTY_DESCRIPTION`: the head of a full basic-support reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSPROPERTY_DESCRIPTION {
    /// `KSPROPERTY_TYPE_GET | _SET | _BASICSUPPORT` as supported.
    pub AccessFlags: u32,
    /// Bytes of this description plus all member lists.
    pub DescriptionSize: u32,
    /// Value type.
    pub PropTypeSet: KSIDENTIFIER,
    /// Member lists that follow.
    pub MembersListCount: u32,
    /// Reserved.
    pub Reserved: u32,
}

/// `KSPROPERTY_ITEM`: one property of a set. Kernel-only.
///
/// C overlays `GetPropertyHandler`/`SetPropertyHandler` with `BOOLEAN GetSupported`/`SetSupported`
/// (for stream-class minidrivers only); KS drivers use the handlers.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPROPERTY_ITEM {
    /// Id within the set.
    pub PropertyId: u32,
    /// GET handler (NULL: GET unsupported).
    pub GetPropertyHandler: PFNKSHANDLER,
    /// Smallest request (input) accepted.
    pub MinProperty: u32,
    /// Smallest value (output) buffer accepted.
    pub MinData: u32,
    /// SET handler (NULL: SET unsupported).
    pub SetPropertyHandler: PFNKSHANDLER,
    /// Type and ranges for automatic basic support.
    pub Values: *const KSPROPERTY_VALUES,
    /// Related properties.
    pub RelationsCount: u32,
    /// The related properties.
    pub Relations: *const KSPROPERTY,
    /// BASICSUPPORT handler (NULL: automatic answer).
    pub SupportHandler: PFNKSHANDLER,
    /// Serialised size.
    pub SerializedSize: u32,
}

/// `KSFASTPROPERTY_ITEM`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSFASTPROPERTY_ITEM {
    /// Id.
    pub PropertyId: u32,
    /// Fast GET handler.
    pub GetPropertyHandler: PFNKSFASTHANDLER,
    /// Fast SET handler.
    pub SetPropertyHandler: PFNKSFASTHANDLER,
    /// Reserved.
    pub Reserved: u32,
}

/// `KSPROPERTY_SET`: a property set as passed to `KsPropertyHandler`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSPROPERTY_SET {
    /// The set GUID.
    pub Set: *const GUID,
    /// Items at `PropertyItem`.
    pub PropertiesCount: u32,
    /// The items.
    pub PropertyItem: *const KSPROPERTY_ITEM,
    /// Fast items.
    pub FastIoCount: u32,
    /// The fast items.
    pub FastIoTable: *const KSFASTPROPERTY_ITEM,
}

/// `KSTOPOLOGY_CONNECTION`: an edge between node pins (`KSFILTER_NODE` = the filter's own pins).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSTOPOLOGY_CONNECTION {
    /// Source node.
    pub FromNode: u32,
    /// Source node pin.
    pub FromNodePin: u32,
    /// Destination node.
    pub ToNode: u32,
    /// Destination node pin.
    pub ToNodePin: u32,
}

/// `KSTOPOLOGY`: categories, nodes and connections, for `KsTopologyPropertyHandler`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KSTOPOLOGY {
    /// Categories.
    pub CategoriesCount: u32,
    /// The categories.
    pub Categories: *const GUID,
    /// Nodes.
    pub TopologyNodesCount: u32,
    /// Node type GUIDs (index = node id).
    pub TopologyNodes: *const GUID,
    /// Connections.
    pub TopologyConnectionsCount: u32,
    /// The connections.
    pub TopologyConnections: *const KSTOPOLOGY_CONNECTION,
    /// Node name GUIDs.
    pub TopologyNodesNames: *const GUID,
    /// Reserved.
    pub Reserved: u32,
}

/// `KSALLOCATOR_FRAMING`: the frame count and size a pin wants.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSALLOCATOR_FRAMING {
    /// `OptionsFlags` / `RequirementsFlags` (a union in C).
    pub OptionsFlags: u32,
    /// `POOL_TYPE`.
    pub PoolType: u32,
    /// Frames.
    pub Frames: u32,
    /// Bytes per frame.
    pub FrameSize: u32,
    /// `FileAlignment` / `FramePitch` (a union in C).
    pub FileAlignment: u32,
    /// Reserved.
    pub Reserved: u32,
}

/// `KSCOMPONENTID`: who made the filter.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct KSCOMPONENTID {
    /// Manufacturer.
    pub Manufacturer: GUID,
    /// Product.
    pub Product: GUID,
    /// Component.
    pub Component: GUID,
    /// Name (looked up under MediaCategories).
    pub Name: GUID,
    /// Version.
    pub Version: u32,
    /// Revision.
    pub Revision: u32,
}

/// `KSSTATE`: STOP → ACQUIRE → PAUSE → RUN.
pub type KSSTATE = i32;
/// No resources held, no data.
pub const KSSTATE_STOP: KSSTATE = 0;
/// Resources acquired.
pub const KSSTATE_ACQUIRE: KSSTATE = 1;
/// Ready; data may be queued but does not move.
pub const KSSTATE_PAUSE: KSSTATE = 2;
/// Data moves.
pub const KSSTATE_RUN: KSSTATE = 3;

/// `KSRESET`.
pub type KSRESET = i32;
/// Begin a reset: cancel streaming, reject new streaming requests.
pub const KSRESET_BEGIN: KSRESET = 0;
/// End the reset.
pub const KSRESET_END: KSRESET = 1;

/// `KSLIST_ENTRY_LOCATION`.
pub type KSLIST_ENTRY_LOCATION = i32;
/// Tail of the queue.
pub const KsListEntryTail: KSLIST_ENTRY_LOCATION = 0;
/// Head of the queue.
pub const KsListEntryHead: KSLIST_ENTRY_LOCATION = 1;

/// `KSIRP_REMOVAL_OPERATION`.
pub type KSIRP_REMOVAL_OPERATION = i32;
/// Acquire; the IRP stays on the list.
pub const KsAcquireOnly: KSIRP_REMOVAL_OPERATION = 0;
/// Acquire and unlink.
pub const KsAcquireAndRemove: KSIRP_REMOVAL_OPERATION = 1;
/// Acquire only if it is the only IRP.
pub const KsAcquireOnlySingleItem: KSIRP_REMOVAL_OPERATION = 2;
/// Acquire and unlink only if it is the only IRP.
pub const KsAcquireAndRemoveOnlySingleItem: KSIRP_REMOVAL_OPERATION = 3;

/// `KSINTERFACE_STANDARD_STREAMING`.
pub const KSINTERFACE_STANDARD_STREAMING: u32 = 0;
/// `KSINTERFACE_STANDARD_LOOPED_STREAMING`.
pub const KSINTERFACE_STANDARD_LOOPED_STREAMING: u32 = 1;
/// `KSINTERFACE_STANDARD_CONTROL`.
pub const KSINTERFACE_STANDARD_CONTROL: u32 = 2;
/// `KSMEDIUM_TYPE_ANYINSTANCE` (= `KSMEDIUM_STANDARD_DEVIO`).
pub const KSMEDIUM_TYPE_ANYINSTANCE: u32 = 0;

/// `KSINSTANCE_INDETERMINATE`: no limit on instances.
pub const KSINSTANCE_INDETERMINATE: u32 = 0xFFFF_FFFF;
/// `KSFILTER_NODE`: "the filter itself" in topology connections.
pub const KSFILTER_NODE: u32 = 0xFFFF_FFFF;

/// `KSPRIORITY_LOW`.
pub const KSPRIORITY_LOW: u32 = 0x0000_0001;
/// `KSPRIORITY_NORMAL`.
pub const KSPRIORITY_NORMAL: u32 = 0x4000_0000;
/// `KSPRIORITY_HIGH`.
pub const KSPRIORITY_HIGH: u32 = 0x8000_0000;
/// `KSPRIORITY_EXCLUSIVE`.
pub const KSPRIORITY_EXCLUSIVE: u32 = 0xFFFF_FFFF;

/// `KSPROPERTY_PIN` ids of `KSPROPSETID_Pin`.
pub mod pin_property {
    /// Per-filter instance counts.
    pub const CINSTANCES: u32 = 0;
    /// Number of pin factories.
    pub const CTYPES: u32 = 1;
    /// Data flow.
    pub const DATAFLOW: u32 = 2;
    /// Data ranges.
    pub const DATARANGES: u32 = 3;
    /// Data intersection.
    pub const DATAINTERSECTION: u32 = 4;
    /// Interfaces.
    pub const INTERFACES: u32 = 5;
    /// Mediums.
    pub const MEDIUMS: u32 = 6;
    /// Communication.
    pub const COMMUNICATION: u32 = 7;
    /// Instance counts across all filters.
    pub const GLOBALCINSTANCES: u32 = 8;
    /// Instances needed before the filter can work.
    pub const NECESSARYINSTANCES: u32 = 9;
    /// Physical connection.
    pub const PHYSICALCONNECTION: u32 = 10;
    /// Category.
    pub const CATEGORY: u32 = 11;
    /// Name.
    pub const NAME: u32 = 12;
    /// Constrained data ranges.
    pub const CONSTRAINEDDATARANGES: u32 = 13;
    /// Proposed data format.
    pub const PROPOSEDATAFORMAT: u32 = 14;
    /// Proposed data format with attributes.
    pub const PROPOSEDATAFORMAT2: u32 = 15;
    /// Mode data formats.
    pub const MODEDATAFORMATS: u32 = 16;
}

/// `KSPROPERTY_CONNECTION` ids of `KSPROPSETID_Connection`.
pub mod connection_property {
    /// Stream state.
    pub const STATE: u32 = 0;
    /// Priority.
    pub const PRIORITY: u32 = 1;
    /// Data format.
    pub const DATAFORMAT: u32 = 2;
    /// Allocator framing.
    pub const ALLOCATORFRAMING: u32 = 3;
    /// Proposed data format.
    pub const PROPOSEDATAFORMAT: u32 = 4;
    /// Acquire ordering.
    pub const ACQUIREORDERING: u32 = 5;
    /// Extended allocator framing.
    pub const ALLOCATORFRAMING_EX: u32 = 6;
    /// Start at.
    pub const STARTAT: u32 = 7;
}

/// `KSPROPERTY_TOPOLOGY` ids of `KSPROPSETID_Topology`.
pub mod topology_property {
    /// Categories.
    pub const CATEGORIES: u32 = 0;
    /// Nodes.
    pub const NODES: u32 = 1;
    /// Connections.
    pub const CONNECTIONS: u32 = 2;
    /// Node name.
    pub const NAME: u32 = 3;
}

/// `KSPROPERTY_GENERAL_COMPONENTID` of `KSPROPSETID_General`.
pub const KSPROPERTY_GENERAL_COMPONENTID: u32 = 0;

/// `KSPROPERTY_MEMBER_RANGES`.
pub const KSPROPERTY_MEMBER_RANGES: u32 = 1;
/// `KSPROPERTY_MEMBER_STEPPEDRANGES`.
pub const KSPROPERTY_MEMBER_STEPPEDRANGES: u32 = 2;
/// `KSPROPERTY_MEMBER_VALUES`.
pub const KSPROPERTY_MEMBER_VALUES: u32 = 3;

/// `VT_UI4`: the variant type of a `ULONG` property value.
pub const VT_UI4: u32 = 19;
/// `VT_UI8`.
pub const VT_UI8: u32 = 21;
/// `VT_I4`.
pub const VT_I4: u32 = 3;
/// `VT_ILLEGAL`: the type of structured values.
pub const VT_ILLEGAL: u32 = 0xFFFF;

/// `PDEVICE_OBJECT`.
pub type PDEVICE_OBJECT = *mut DEVICE_OBJECT;
