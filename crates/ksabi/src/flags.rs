//! Flag words as `bitflags` sets. Structures keep the raw `u32` (it comes from C and may hold bits
//! this crate does not name); code converts with `from_bits_retain` and tests with `contains`.

use bitflags::bitflags;

bitflags! {
    /// `KSPROPERTY_TYPE_*`: the verb and modifiers of a property request (`KSPROPERTY.Flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct KsPropertyType: u32 {
        /// Read the value.
        const GET = 0x0000_0001;
        /// Write the value.
        const SET = 0x0000_0002;
        /// Ask for the payload size (newer).
        const GETPAYLOADSIZE = 0x0000_0004;
        /// Enumerate supported sets.
        const SETSUPPORT = 0x0000_0100;
        /// Ask what is supported (access flags, description, ranges).
        const BASICSUPPORT = 0x0000_0200;
        /// Ask for related properties.
        const RELATIONS = 0x0000_0400;
        /// Serialise a set.
        const SERIALIZESET = 0x0000_0800;
        /// Unserialise a set.
        const UNSERIALIZESET = 0x0000_1000;
        /// Serialise raw.
        const SERIALIZERAW = 0x0000_2000;
        /// Unserialise raw.
        const UNSERIALIZERAW = 0x0000_4000;
        /// Serialised size.
        const SERIALIZESIZE = 0x0000_8000;
        /// Default values.
        const DEFAULTVALUES = 0x0001_0000;
        /// High priority (newer).
        const HIGHPRIORITY = 0x0800_0000;
        /// The request is a `KSP_NODE` addressed to a topology node.
        const TOPOLOGY = 0x1000_0000;
        /// File-system filter scope (newer).
        const FSFILTERSCOPE = 0x4000_0000;
        /// Copy payload (newer).
        const COPYPAYLOAD = 0x8000_0000;
    }
}

impl KsPropertyType {
    /// The bits that select what a request does; exactly one must be set.
    pub const VERBS: Self = Self::GET
        .union(Self::SET)
        .union(Self::SETSUPPORT)
        .union(Self::BASICSUPPORT)
        .union(Self::RELATIONS)
        .union(Self::SERIALIZESET)
        .union(Self::UNSERIALIZESET)
        .union(Self::SERIALIZERAW)
        .union(Self::UNSERIALIZERAW)
        .union(Self::SERIALIZESIZE)
        .union(Self::DEFAULTVALUES)
        .union(Self::GETPAYLOADSIZE);
}

bitflags! {
    /// `KSSTREAM_HEADER_OPTIONSF_*` (`KSSTREAM_HEADER.OptionsFlags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct KsStreamOptions: u32 {
        /// Splice point.
        const SPLICEPOINT = 0x0000_0001;
        /// Preroll.
        const PREROLL = 0x0000_0002;
        /// Data discontinuity.
        const DATADISCONTINUITY = 0x0000_0004;
        /// The buffer carries a new `KSDATAFORMAT`.
        const TYPECHANGED = 0x0000_0008;
        /// `PresentationTime` is valid.
        const TIMEVALID = 0x0000_0010;
        /// Time discontinuity.
        const TIMEDISCONTINUITY = 0x0000_0040;
        /// Flush on pause.
        const FLUSHONPAUSE = 0x0000_0080;
        /// `Duration` is valid.
        const DURATIONVALID = 0x0000_0100;
        /// The last frame of the stream.
        const ENDOFSTREAM = 0x0000_0200;
        /// Buffered transfer.
        const BUFFEREDTRANSFER = 0x0000_0400;
        /// VRAM data transfer.
        const VRAM_DATA_TRANSFER = 0x0000_0800;
        /// Metadata.
        const METADATA = 0x0000_1000;
        /// End of photo sequence.
        const ENDOFPHOTOSEQUENCE = 0x0000_2000;
        /// Frame info follows the header.
        const FRAMEINFO = 0x0000_4000;
        /// Persist sample.
        const PERSIST_SAMPLE = 0x0000_8000;
        /// Sample persisted.
        const SAMPLE_PERSISTED = 0x0001_0000;
        /// Secure buffer transfer.
        const SECUREBUFFERTRANSFER = 0x0004_0000;
        /// Looped data.
        const LOOPEDDATA = 0x8000_0000;
    }
}

bitflags! {
    /// `KSPROBE_*`: what `KsProbeStreamIrp` captures, checks and maps.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct KsProbe: u32 {
        /// Stream write (data flows to the device); without it, a read.
        const STREAMWRITE = 0x0000_0001;
        /// Allocate one MDL per header buffer.
        const ALLOCATEMDL = 0x0000_0010;
        /// Probe and lock the MDLs' pages.
        const PROBEANDLOCK = 0x0000_0020;
        /// Map the MDLs to system addresses.
        const SYSTEMADDRESS = 0x0000_0040;
        /// Allow a single `TYPECHANGED` header on writes.
        const ALLOWFORMATCHANGE = 0x0000_0080;
        /// Headers are modified in place.
        const MODIFY = 0x0000_0200;
    }
}

impl KsProbe {
    /// `KSPROBE_STREAMREAD` (no bit set).
    pub const STREAMREAD: Self = Self::empty();
    /// `KSPROBE_STREAMWRITEMODIFY`.
    pub const STREAMWRITEMODIFY: Self = Self::MODIFY.union(Self::STREAMWRITE);
}

bitflags! {
    /// `KSCREATE_ITEM_*` (`KSOBJECT_CREATE_ITEM.Flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct KsCreateItem: u32 {
        /// The security descriptor changed.
        const SECURITYCHANGED = 0x0000_0001;
        /// Matches any name no other item matches.
        const WILDCARD = 0x0000_0002;
        /// Fails if parameters follow the name.
        const NOPARAMETERS = 0x0000_0004;
        /// Freed on stop.
        const FREEONSTOP = 0x0000_0008;
    }
}

bitflags! {
    /// `KSDATAFORMAT_*` / `KSDATARANGE_*` (`KSDATAFORMAT.Flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct KsDataFormatFlags: u32 {
        /// `KSDATAFORMAT_TEMPORAL_COMPRESSION`.
        const TEMPORAL_COMPRESSION = 0x0000_0001;
        /// `KSDATAFORMAT_ATTRIBUTES` / `KSDATARANGE_ATTRIBUTES`: an attribute list follows.
        const ATTRIBUTES = 0x0000_0002;
        /// `KSDATARANGE_REQUIRED_ATTRIBUTES`.
        const REQUIRED_ATTRIBUTES = 0x0000_0004;
    }
}

bitflags! {
    /// `KSALLOCATOR_REQUIREMENTF_*` (`KSALLOCATOR_FRAMING.RequirementsFlags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct KsAllocatorRequirements: u32 {
        /// In-place modifier.
        const INPLACE_MODIFIER = 0x0000_0001;
        /// System memory.
        const SYSTEM_MEMORY = 0x0000_0002;
        /// Frame integrity.
        const FRAME_INTEGRITY = 0x0000_0004;
        /// Must allocate.
        const MUST_ALLOCATE = 0x0000_0008;
        /// Preferences only.
        const PREFERENCES_ONLY = 0x8000_0000;
    }
}

bitflags! {
    /// `IRP_*` flags (`IRP.Flags`) the I/O manager acts on at completion.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct IrpFlags: u32 {
        /// `IRP_NOCACHE`.
        const NOCACHE = 0x0000_0001;
        /// `IRP_PAGING_IO`.
        const PAGING_IO = 0x0000_0002;
        /// `IRP_SYNCHRONOUS_API`.
        const SYNCHRONOUS_API = 0x0000_0004;
        /// `IRP_ASSOCIATED_IRP`.
        const ASSOCIATED_IRP = 0x0000_0008;
        /// `IRP_BUFFERED_IO`: `SystemBuffer` holds the data.
        const BUFFERED_IO = 0x0000_0010;
        /// `IRP_DEALLOCATE_BUFFER`: free `SystemBuffer` at completion.
        const DEALLOCATE_BUFFER = 0x0000_0020;
        /// `IRP_INPUT_OPERATION`: copy `Information` bytes of `SystemBuffer` back to `UserBuffer`.
        const INPUT_OPERATION = 0x0000_0040;
    }
}

bitflags! {
    /// `DO_*` flags (`DEVICE_OBJECT.Flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DeviceFlags: u32 {
        /// `DO_BUFFERED_IO`.
        const BUFFERED_IO = 0x0000_0004;
        /// `DO_EXCLUSIVE`.
        const EXCLUSIVE = 0x0000_0008;
        /// `DO_DIRECT_IO`.
        const DIRECT_IO = 0x0000_0010;
        /// `DO_DEVICE_INITIALIZING`: cleared by the driver when `AddDevice` is done.
        const DEVICE_INITIALIZING = 0x0000_0080;
        /// `DO_POWER_PAGABLE`.
        const POWER_PAGABLE = 0x0000_2000;
    }
}
