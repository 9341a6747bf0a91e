//! # ksring-api — the contract between the ksring driver and its clients
//!
//! Everything a client needs that the KS headers do not define: the interface category to find
//! KsRing filters by, the pin factory ids, the category and name GUIDs of the pins (named in the
//! INF's `MediaCategories`), the private property set with its layouts, the private stream-header
//! flag for split frames, and the bounds of the formats and ring capacity the driver accepts.
//!
//! The driver, the test suite and `ksctl` all take these values from here; `tests/inf_agrees.rs`
//! checks that `inf/ksring.inx` names the same ones.
#![no_std]
#![allow(non_upper_case_globals)] // KS spells set names KSPROPSETID_Xxx

use ksabi::GUID;

/// The device-interface category KsRing filters register under (the INF's `AddInterface`).
pub const KSCATEGORY_KSRING: GUID = GUID::from_u128(0xBC7386A2_FF61_46A7_8034_9B51685D7953);

/// The reference string of the device interface: opening an interface path sends `\GLOBAL`.
pub const REFERENCE_STRING: &str = "GLOBAL";

/// Pin factory 0: the input (data sink) — the ring's producer end.
pub const PIN_INPUT: u32 = 0;
/// Pin factory 1: the output (data source) — the ring's consumer end.
pub const PIN_OUTPUT: u32 = 1;
/// Pin factories per filter.
pub const PIN_FACTORIES: u32 = 2;

/// Category of the input pin factory.
pub const PINCATEGORY_KSRING_INPUT: GUID = GUID::from_u128(0x9D9903BD_7B2E_4CDB_BE92_CA48AD1233F9);
/// Category of the output pin factory.
pub const PINCATEGORY_KSRING_OUTPUT: GUID = GUID::from_u128(0xBD97E003_0F08_402E_8796_1CCE89511EAC);
/// Name GUID of the input pin factory (`KSPROPERTY_PIN_NAME` reads its text from the INF).
pub const PINNAME_KSRING_INPUT: GUID = GUID::from_u128(0x99D2811A_AA06_4D2F_B0A3_DE874BA7C511);
/// Name GUID of the output pin factory.
pub const PINNAME_KSRING_OUTPUT: GUID = GUID::from_u128(0x38C1D992_84EB_4757_9EE5_9C0A461E7AB3);

/// `KSCOMPONENTID.Manufacturer`.
pub const KSRING_MANUFACTURER: GUID = GUID::from_u128(0x03D49F0E_4CA3_408E_A85C_2F80407B0E45);
/// `KSCOMPONENTID.Product`.
pub const KSRING_PRODUCT: GUID = GUID::from_u128(0xA1111ECB_1DDF_413A_A80B_31FEF2895B4E);
/// `KSCOMPONENTID.Component`.
pub const KSRING_COMPONENT: GUID = GUID::from_u128(0x17BF0F18_CD0E_4689_842F_BDAF9537C674);
/// `KSCOMPONENTID.Name` (its text is under `MediaCategories` in the INF).
pub const KSRING_NAME: GUID = GUID::from_u128(0xBCEEC3BC_77CA_4C6B_80C6_E365909C5338);
/// `KSCOMPONENTID.Version`.
pub const KSRING_VERSION: u32 = 1;
/// `KSCOMPONENTID.Revision`.
pub const KSRING_REVISION: u32 = 0;

/// ksring's private property set, on the filter and on both pins.
pub const KSPROPSETID_KsRing: GUID = GUID::from_u128(0xEE23D318_3919_4925_A16A_5CA6AA7FCB4E);

/// Ids of [`KSPROPSETID_KsRing`].
pub mod ksring_property {
    /// `u32`: ring storage bytes. GET always; SET only while both pins are in `KSSTATE_STOP`
    /// (or absent), to a multiple of 8 in [`super::MIN_CAPACITY`]..=[`super::MAX_CAPACITY`].
    pub const CAPACITY: u32 = 0;
    /// [`super::KsRingStatistics`], GET.
    pub const STATISTICS: u32 = 1;
}

/// Smallest ring capacity.
pub const MIN_CAPACITY: u32 = 4096;
/// Largest ring capacity: 64 MiB of non-paged pool per filter is already a lot.
pub const MAX_CAPACITY: u32 = 64 << 20;
/// The capacity a new filter starts with.
pub const DEFAULT_CAPACITY: u32 = 4 << 20;

/// `KSSTREAM_HEADER.OptionsFlags` bit ksring sets on every part of a frame but the last, when a
/// frame reaches the reader in several headers (a read buffer smaller than the frame, or a frame
/// larger than half the ring). The parts carry the frame's metadata; `ENDOFSTREAM` is on the last
/// part only. Not a KS flag: bit 24 is unused by `KSSTREAM_HEADER_OPTIONSF_*`.
pub const KSRING_OPTIONSF_CONTINUES: u32 = 0x0100_0000;

/// Statistics of one filter's ring (`KSPROPERTY_KSRING_STATISTICS`). Counters start at 0 when
/// the filter is created and survive STOP (the ring's storage does not).
///
/// Accounting: every byte accepted is delivered, discarded, or still in the ring — a client that
/// counts what it wrote and read can check `bytes_in`/`bytes_out` against its own numbers, and
/// after the last pin closes, `bytes_in == bytes_out + discarded_bytes`. `copied_in + copied_out`
/// over `bytes_out` is the filter's copies per delivered byte (2 for a client writing and reading,
/// less with direct copies; summed over a chain, its copies per hop).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct KsRingStatistics {
    /// Ring storage bytes now (0 while both pins are stopped: no storage is allocated).
    pub capacity: u64,
    /// Bytes of the storage in use now (frames, their headers and padding).
    pub fill: u64,
    /// Highest fill seen (bytes of storage), over the filter's life.
    pub high_water: u64,
    /// Frames (write headers) accepted whole.
    pub frames_in: u64,
    /// Payload bytes accepted from writers.
    pub bytes_in: u64,
    /// Frames delivered whole to readers (a split frame counts once, at its last part).
    pub frames_out: u64,
    /// Payload bytes delivered to readers.
    pub bytes_out: u64,
    /// Frames (or parts) discarded by STOP, reset or the last pin closing.
    pub discarded_frames: u64,
    /// Payload bytes discarded.
    pub discarded_bytes: u64,
    /// Parts delivered with [`KSRING_OPTIONSF_CONTINUES`].
    pub split_parts: u64,
    /// Frames copied straight from a writer's buffer to a waiting reader's (one copy, not two).
    pub direct_frames: u64,
    /// Write requests pending now.
    pub pending_writes: u32,
    /// Read requests pending now.
    pub pending_reads: u32,
    /// Payload bytes the driver copied into the ring from a writer's buffer (an IRP source
    /// copies nothing: a push source's writes and a pull source's reads name the ring's storage,
    /// so the copy is the other filter's).
    pub copied_in: u64,
    /// Payload bytes the driver copied into a reader's buffer — from the ring, or straight from a
    /// writer's buffer when the read was waiting on an empty ring (one copy for that byte, not
    /// two).
    pub copied_out: u64,
}

/// The PCM formats the audio data range admits (`KSDATARANGE_AUDIO`).
pub mod pcm {
    /// Most channels.
    pub const MAX_CHANNELS: u32 = 8;
    /// Fewest bits per sample.
    pub const MIN_BITS: u32 = 8;
    /// Most bits per sample.
    pub const MAX_BITS: u32 = 32;
    /// Lowest rate in Hz.
    pub const MIN_RATE: u32 = 8_000;
    /// Highest rate in Hz.
    pub const MAX_RATE: u32 = 192_000;
}

// Clients read the statistics as plain bytes: no padding anywhere (eleven u64, two u32, then the
// two copy counters added later at the end, so the first 96 bytes keep their layout).
const _: () = assert!(
    core::mem::size_of::<KsRingStatistics>() == 13 * size_of::<u64>() + 2 * size_of::<u32>()
        && core::mem::align_of::<KsRingStatistics>() == 8
        && core::mem::offset_of!(KsRingStatistics, pending_reads) == 92
        && core::mem::offset_of!(KsRingStatistics, copied_in) == 96
        && core::mem::offset_of!(KsRingStatistics, copied_out) == 104
);
