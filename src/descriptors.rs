//! The filter's static description: its two pin factories (`KSPIN_DESCRIPTOR`), their data
//! ranges, interfaces and mediums, the topology, and the component id.
//!
//! KS reads these tables (through `KsValidateConnectRequest`, `KsPinPropertyHandler`,
//! `KsTopologyPropertyHandler`) for as long as the driver is loaded.

use core::mem::size_of;
use core::ptr::null;

use ksabi::{
    GUID, KSCATEGORY_DATATRANSFORM, KSCOMPONENTID, KSDATAFORMAT_SPECIFIER_NONE,
    KSDATAFORMAT_SPECIFIER_WAVEFORMATEX, KSDATAFORMAT_SUBTYPE_NONE, KSDATAFORMAT_SUBTYPE_PCM,
    KSDATAFORMAT_TYPE_AUDIO, KSDATAFORMAT_TYPE_STREAM, KSDATARANGE, KSDATARANGE_AUDIO, KSFILTER_NODE,
    KSINTERFACE_STANDARD_STREAMING, KSINTERFACESETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE,
    KSMEDIUMSETID_Standard, KSPIN_COMMUNICATION_BOTH, KSPIN_DATAFLOW_IN, KSPIN_DATAFLOW_OUT,
    KSPIN_DESCRIPTOR, KSPIN_INTERFACE, KSPIN_MEDIUM, KSTOPOLOGY, KSTOPOLOGY_CONNECTION,
};
use ksring_api::{
    KSCATEGORY_KSRING, KSRING_COMPONENT, KSRING_MANUFACTURER, KSRING_NAME, KSRING_PRODUCT, KSRING_REVISION,
    KSRING_VERSION, PIN_FACTORIES, PIN_INPUT, PIN_OUTPUT, PINCATEGORY_KSRING_INPUT,
    PINCATEGORY_KSRING_OUTPUT, PINNAME_KSRING_INPUT, PINNAME_KSRING_OUTPUT, pcm,
};

pub use crate::kernel::tables::Table;

#[allow(clippy::cast_possible_truncation)] // 64 and 88 bytes
const fn range(size: usize, major: GUID, sub: GUID, specifier: GUID) -> KSDATARANGE {
    KSDATARANGE {
        FormatSize: size as u32,
        Flags: 0,
        SampleSize: 0,
        Reserved: 0,
        MajorFormat: major,
        SubFormat: sub,
        Specifier: specifier,
    }
}

/// Any byte stream.
static STREAM_RANGE: KSDATARANGE = range(
    size_of::<KSDATARANGE>(),
    KSDATAFORMAT_TYPE_STREAM,
    KSDATAFORMAT_SUBTYPE_NONE,
    KSDATAFORMAT_SPECIFIER_NONE,
);

/// PCM audio within ksring's bounds.
static AUDIO_RANGE: KSDATARANGE_AUDIO = KSDATARANGE_AUDIO {
    DataRange: range(
        size_of::<KSDATARANGE_AUDIO>(),
        KSDATAFORMAT_TYPE_AUDIO,
        KSDATAFORMAT_SUBTYPE_PCM,
        KSDATAFORMAT_SPECIFIER_WAVEFORMATEX,
    ),
    MaximumChannels: pcm::MAX_CHANNELS,
    MinimumBitsPerSample: pcm::MIN_BITS,
    MaximumBitsPerSample: pcm::MAX_BITS,
    MinimumSampleFrequency: pcm::MIN_RATE,
    MaximumSampleFrequency: pcm::MAX_RATE,
};

/// Both pins take either format (the byte stream first: it is what a wildcard range gets).
static RANGES: Table<[*const KSDATARANGE; 2]> =
    Table([&raw const STREAM_RANGE, &raw const AUDIO_RANGE.DataRange]);

/// The standard streaming interface, the only one.
static INTERFACES: [KSPIN_INTERFACE; 1] =
    [KSPIN_INTERFACE { Set: KSINTERFACESETID_Standard, Id: KSINTERFACE_STANDARD_STREAMING, Flags: 0 }];

/// The standard any-instance medium, the only one.
static MEDIUMS: [KSPIN_MEDIUM; 1] =
    [KSPIN_MEDIUM { Set: KSMEDIUMSETID_Standard, Id: KSMEDIUM_TYPE_ANYINSTANCE, Flags: 0 }];

#[allow(clippy::cast_possible_truncation)] // one-element tables
const fn pin(flow: i32, category: &'static GUID, name: &'static GUID) -> KSPIN_DESCRIPTOR {
    KSPIN_DESCRIPTOR {
        InterfacesCount: INTERFACES.len() as u32,
        Interfaces: INTERFACES.as_ptr(),
        MediumsCount: MEDIUMS.len() as u32,
        Mediums: MEDIUMS.as_ptr(),
        DataRangesCount: 2,
        DataRanges: RANGES.0.as_ptr(),
        DataFlow: flow,
        Communication: KSPIN_COMMUNICATION_BOTH,
        Category: category,
        Name: name,
        ConstrainedDataRangesCount: 0,
        ConstrainedDataRanges: null(),
    }
}

/// The pin factories, indexed by pin id: input (data sink) and output (data source), each an
/// IRP sink or an IRP source (communication BOTH).
pub static PINS: Table<[KSPIN_DESCRIPTOR; PIN_FACTORIES as usize]> = Table([
    pin(KSPIN_DATAFLOW_IN, &PINCATEGORY_KSRING_INPUT, &PINNAME_KSRING_INPUT),
    pin(KSPIN_DATAFLOW_OUT, &PINCATEGORY_KSRING_OUTPUT, &PINNAME_KSRING_OUTPUT),
]);

const _: () = assert!(PIN_INPUT == 0 && PIN_OUTPUT == 1, "PINS is indexed by pin id");

/// The filter's categories.
static CATEGORIES: [GUID; 2] = [KSCATEGORY_KSRING, KSCATEGORY_DATATRANSFORM];

/// Data goes straight from the input pin to the output pin, through no node.
static CONNECTIONS: [KSTOPOLOGY_CONNECTION; 1] = [KSTOPOLOGY_CONNECTION {
    FromNode: KSFILTER_NODE,
    FromNodePin: PIN_INPUT,
    ToNode: KSFILTER_NODE,
    ToNodePin: PIN_OUTPUT,
}];

/// The topology: two categories, no nodes, one connection.
#[allow(clippy::cast_possible_truncation)] // tiny tables
pub static TOPOLOGY: Table<KSTOPOLOGY> = Table(KSTOPOLOGY {
    CategoriesCount: CATEGORIES.len() as u32,
    Categories: CATEGORIES.as_ptr(),
    TopologyNodesCount: 0,
    TopologyNodes: null(),
    TopologyConnectionsCount: CONNECTIONS.len() as u32,
    TopologyConnections: CONNECTIONS.as_ptr(),
    TopologyNodesNames: null(),
    Reserved: 0,
});

/// `KSPROPERTY_GENERAL_COMPONENTID`.
pub const COMPONENT_ID: KSCOMPONENTID = KSCOMPONENTID {
    Manufacturer: KSRING_MANUFACTURER,
    Product: KSRING_PRODUCT,
    Component: KSRING_COMPONENT,
    Name: KSRING_NAME,
    Version: KSRING_VERSION,
    Revision: KSRING_REVISION,
};
