//! Request bytes, built and read field by field at the offsets of the `ksabi` structures (whose
//! layouts are checked against windows-sys and mingw-w64): property requests, `KSPIN_CONNECT`
//! blobs, formats and ranges, `KSMULTIPLE_ITEM` lists, stream headers.
//!
//! Pure and safe: no pointers are dereferenced, so these builders double as fuzz-input makers.
//!
//! `no_std` (with `alloc`), so the user-mode client (`ksclient`, re-exported as
//! `ksclient::request`) and the native test client (`ksnative`, which runs before Win32 exists)
//! build their requests with the same code: there is one copy of each KS layout.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod pattern;

use alloc::vec;
use alloc::vec::Vec;

use core::mem::{offset_of, size_of};

use ksabi::{
    GUID, KSDATAFORMAT, KSDATAFORMAT_SPECIFIER_NONE, KSDATAFORMAT_SPECIFIER_WAVEFORMATEX,
    KSDATAFORMAT_SUBTYPE_NONE, KSDATAFORMAT_SUBTYPE_PCM, KSDATAFORMAT_TYPE_AUDIO, KSDATAFORMAT_TYPE_STREAM,
    KSDATARANGE_AUDIO, KSIDENTIFIER, KSINTERFACE_STANDARD_STREAMING, KSINTERFACESETID_Standard,
    KSMEDIUM_TYPE_ANYINSTANCE, KSMEDIUMSETID_Standard, KSMULTIPLE_ITEM, KSP_NODE, KSP_PIN, KSPIN_CONNECT,
    KSPRIORITY, KSPRIORITY_NORMAL, KSSTREAM_HEADER, KSTIME, KsPropertyType, WAVE_FORMAT_PCM, WAVEFORMATEX,
};

/// Little-endian field writer over a zeroed buffer.
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// `len` zero bytes.
    #[must_use]
    pub fn zeroed(len: usize) -> Self {
        Self(vec![0; len])
    }
    /// Writes a `u16` at `at`.
    pub fn u16(&mut self, at: usize, v: u16) -> &mut Self {
        self.0[at..at + 2].copy_from_slice(&v.to_le_bytes());
        self
    }
    /// Writes a `u32` at `at`.
    pub fn u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    /// Writes a `u64` at `at`.
    pub fn u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
    /// Writes a GUID at `at`.
    pub fn guid(&mut self, at: usize, g: GUID) -> &mut Self {
        self.0[at..at + 16].copy_from_slice(&g.to_le_bytes());
        self
    }
    /// Writes a `KSIDENTIFIER` at `at`.
    pub fn identifier(&mut self, at: usize, set: GUID, id: u32, flags: u32) -> &mut Self {
        self.guid(at + offset_of!(KSIDENTIFIER, Set), set)
            .u32(at + offset_of!(KSIDENTIFIER, Id), id)
            .u32(at + offset_of!(KSIDENTIFIER, Flags), flags)
    }
}

/// Reads a `u32` at `at` (`None` past the end).
#[must_use]
pub fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a `u64` at `at`.
#[must_use]
pub fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads a GUID at `at`.
#[must_use]
pub fn guid_at(b: &[u8], at: usize) -> Option<GUID> {
    Some(GUID::from_le_bytes(b.get(at..at + 16)?.try_into().ok()?))
}

/// A `KSPROPERTY` request.
#[must_use]
pub fn property(set: GUID, id: u32, flags: KsPropertyType) -> Vec<u8> {
    let mut b = Bytes::zeroed(size_of::<KSIDENTIFIER>());
    b.identifier(0, set, id, flags.bits());
    b.0
}

/// A `KSP_PIN` request.
#[must_use]
pub fn pin_property(set: GUID, id: u32, flags: KsPropertyType, pin: u32) -> Vec<u8> {
    let mut b = Bytes::zeroed(size_of::<KSP_PIN>());
    b.identifier(offset_of!(KSP_PIN, Property), set, id, flags.bits()).u32(offset_of!(KSP_PIN, PinId), pin);
    b.0
}

/// A `KSP_NODE` request (topology node properties).
#[must_use]
pub fn node_property(set: GUID, id: u32, flags: KsPropertyType, node: u32) -> Vec<u8> {
    let mut b = Bytes::zeroed(size_of::<KSP_NODE>());
    b.identifier(offset_of!(KSP_NODE, Property), set, id, flags.bits())
        .u32(offset_of!(KSP_NODE, NodeId), node);
    b.0
}

/// What a `KSPIN_CONNECT` asks for; [`Connect::new`] gives the standard interface and medium.
#[derive(Clone, Debug)]
pub struct Connect {
    /// Interface set, id, flags.
    pub interface: (GUID, u32, u32),
    /// Medium set, id, flags.
    pub medium: (GUID, u32, u32),
    /// Pin factory.
    pub pin_id: u32,
    /// `PinToHandle` (0: the new pin is an IRP sink).
    pub pin_to_handle: u64,
    /// The `KSDATAFORMAT` (and its tail) that follows.
    pub format: Vec<u8>,
}

impl Connect {
    /// A connection to `pin_id` with `format`, standard interface and medium, as an IRP sink.
    #[must_use]
    pub fn new(pin_id: u32, format: Vec<u8>) -> Self {
        Self {
            interface: (KSINTERFACESETID_Standard, KSINTERFACE_STANDARD_STREAMING, 0),
            medium: (KSMEDIUMSETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE, 0),
            pin_id,
            pin_to_handle: 0,
            format,
        }
    }

    /// The blob `KsCreatePin` sends: a `KSPIN_CONNECT` followed by the format.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Bytes::zeroed(size_of::<KSPIN_CONNECT>());
        let (s, i, f) = self.interface;
        b.identifier(offset_of!(KSPIN_CONNECT, Interface), s, i, f);
        let (s, i, f) = self.medium;
        b.identifier(offset_of!(KSPIN_CONNECT, Medium), s, i, f);
        b.u32(offset_of!(KSPIN_CONNECT, PinId), self.pin_id)
            .u64(offset_of!(KSPIN_CONNECT, PinToHandle), self.pin_to_handle)
            .u32(
                offset_of!(KSPIN_CONNECT, Priority) + offset_of!(KSPRIORITY, PriorityClass),
                KSPRIORITY_NORMAL,
            )
            .u32(offset_of!(KSPIN_CONNECT, Priority) + offset_of!(KSPRIORITY, PrioritySubClass), 1);
        let mut out = b.0;
        out.extend_from_slice(&self.format);
        out
    }
}

/// The byte-stream format.
#[must_use]
pub fn stream_format() -> Vec<u8> {
    data_format(
        size_of::<KSDATAFORMAT>(),
        KSDATAFORMAT_TYPE_STREAM,
        KSDATAFORMAT_SUBTYPE_NONE,
        KSDATAFORMAT_SPECIFIER_NONE,
    )
}

/// A `KSDATAFORMAT` (or `KSDATARANGE`) header of `size` bytes with these GUIDs; the rest zero.
#[must_use]
pub fn data_format(size: usize, major: GUID, sub: GUID, specifier: GUID) -> Vec<u8> {
    let mut b = Bytes::zeroed(size.max(size_of::<KSDATAFORMAT>()));
    b.u32(offset_of!(KSDATAFORMAT, FormatSize), u32::try_from(size).unwrap_or(u32::MAX))
        .guid(offset_of!(KSDATAFORMAT, MajorFormat), major)
        .guid(offset_of!(KSDATAFORMAT, SubFormat), sub)
        .guid(offset_of!(KSDATAFORMAT, Specifier), specifier);
    b.0.truncate(size);
    b.0
}

/// A PCM `KSDATAFORMAT_WAVEFORMATEX` (consistent block align and byte rate).
#[must_use]
pub fn pcm_format(channels: u16, bits: u16, rate: u32) -> Vec<u8> {
    let wfx = size_of::<KSDATAFORMAT>();
    let size = ksabi::KSDATAFORMAT_WAVEFORMATEX_SIZE;
    let align = channels.wrapping_mul(bits / 8);
    let mut b = Bytes(data_format(
        size,
        KSDATAFORMAT_TYPE_AUDIO,
        KSDATAFORMAT_SUBTYPE_PCM,
        KSDATAFORMAT_SPECIFIER_WAVEFORMATEX,
    ));
    b.u32(offset_of!(KSDATAFORMAT, SampleSize), u32::from(align))
        .u16(wfx + offset_of!(WAVEFORMATEX, wFormatTag), WAVE_FORMAT_PCM)
        .u16(wfx + offset_of!(WAVEFORMATEX, nChannels), channels)
        .u32(wfx + offset_of!(WAVEFORMATEX, nSamplesPerSec), rate)
        .u32(wfx + offset_of!(WAVEFORMATEX, nAvgBytesPerSec), rate.wrapping_mul(u32::from(align)))
        .u16(wfx + offset_of!(WAVEFORMATEX, nBlockAlign), align)
        .u16(wfx + offset_of!(WAVEFORMATEX, wBitsPerSample), bits);
    b.0
}

/// Offset of a `WAVEFORMATEX` field inside a `KSDATAFORMAT_WAVEFORMATEX`.
#[must_use]
pub const fn wfx_offset(field_offset: usize) -> usize {
    size_of::<KSDATAFORMAT>() + field_offset
}

/// A `KSDATARANGE_AUDIO` for PCM with these bounds.
#[must_use]
pub fn audio_range(max_channels: u32, bits: (u32, u32), rates: (u32, u32)) -> Vec<u8> {
    let mut b = Bytes(data_format(
        size_of::<KSDATARANGE_AUDIO>(),
        KSDATAFORMAT_TYPE_AUDIO,
        KSDATAFORMAT_SUBTYPE_PCM,
        KSDATAFORMAT_SPECIFIER_WAVEFORMATEX,
    ));
    b.u32(offset_of!(KSDATARANGE_AUDIO, MaximumChannels), max_channels)
        .u32(offset_of!(KSDATARANGE_AUDIO, MinimumBitsPerSample), bits.0)
        .u32(offset_of!(KSDATARANGE_AUDIO, MaximumBitsPerSample), bits.1)
        .u32(offset_of!(KSDATARANGE_AUDIO, MinimumSampleFrequency), rates.0)
        .u32(offset_of!(KSDATARANGE_AUDIO, MaximumSampleFrequency), rates.1);
    b.0
}

/// A `KSMULTIPLE_ITEM` list of variable-size items, each padded to 8 bytes (as KS lays out
/// ranges).
#[must_use]
pub fn multiple_item(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; size_of::<KSMULTIPLE_ITEM>()];
    for item in items {
        out.extend_from_slice(item);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    let size = u32::try_from(out.len()).unwrap_or(u32::MAX);
    let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
    let mut b = Bytes(out);
    b.u32(offset_of!(KSMULTIPLE_ITEM, Size), size).u32(offset_of!(KSMULTIPLE_ITEM, Count), count);
    b.0
}

/// The items of a `KSMULTIPLE_ITEM` of fixed-size items; `None` if the list is malformed.
#[must_use]
pub fn fixed_items(bytes: &[u8], item_size: usize) -> Option<Vec<&[u8]>> {
    let size = u32_at(bytes, 0)? as usize;
    let count = u32_at(bytes, 4)? as usize;
    let body = bytes.get(size_of::<KSMULTIPLE_ITEM>()..size)?;
    (body.len() == count.checked_mul(item_size)?).then(|| body.chunks(item_size).collect())
}

/// The formats of a `KSMULTIPLE_ITEM` of data ranges (each `FormatSize` long, 8-aligned).
#[must_use]
pub fn range_items(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let size = u32_at(bytes, 0)? as usize;
    let count = u32_at(bytes, 4)? as usize;
    let list = bytes.get(..size)?;
    let mut at = size_of::<KSMULTIPLE_ITEM>();
    let mut out = Vec::new();
    for _ in 0..count {
        let len = u32_at(list, at)? as usize;
        out.push(list.get(at..at.checked_add(len)?)?);
        at = at.checked_add(len)?.next_multiple_of(8);
    }
    Some(out)
}

/// One stream header to put in a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// `Data`: the frame buffer's address in the caller's memory.
    pub data: u64,
    /// `FrameExtent`.
    pub frame_extent: u32,
    /// `DataUsed`.
    pub data_used: u32,
    /// `OptionsFlags`.
    pub options_flags: u32,
    /// `TypeSpecificFlags`.
    pub type_specific_flags: u32,
    /// `PresentationTime.Time`.
    pub time: i64,
    /// `PresentationTime.Numerator`.
    pub numerator: u32,
    /// `PresentationTime.Denominator`.
    pub denominator: u32,
    /// `Duration`.
    pub duration: i64,
}

/// Bytes of one standard `KSSTREAM_HEADER`.
pub const HEADER_SIZE: usize = size_of::<KSSTREAM_HEADER>();

impl Header {
    /// Writes the header at `at` of `out` with `Size = size` (`HEADER_SIZE` or an extended size).
    pub fn write(&self, out: &mut [u8], at: usize, size: u32) {
        let mut b = Bytes::zeroed(HEADER_SIZE);
        let t = offset_of!(KSSTREAM_HEADER, PresentationTime);
        b.u32(offset_of!(KSSTREAM_HEADER, Size), size)
            .u32(offset_of!(KSSTREAM_HEADER, TypeSpecificFlags), self.type_specific_flags)
            .u64(t + offset_of!(KSTIME, Time), self.time.cast_unsigned())
            .u32(t + offset_of!(KSTIME, Numerator), self.numerator)
            .u32(t + offset_of!(KSTIME, Denominator), self.denominator)
            .u64(offset_of!(KSSTREAM_HEADER, Duration), self.duration.cast_unsigned())
            .u32(offset_of!(KSSTREAM_HEADER, FrameExtent), self.frame_extent)
            .u32(offset_of!(KSSTREAM_HEADER, DataUsed), self.data_used)
            .u64(offset_of!(KSSTREAM_HEADER, Data), self.data)
            .u32(offset_of!(KSSTREAM_HEADER, OptionsFlags), self.options_flags);
        out[at..at + HEADER_SIZE].copy_from_slice(&b.0);
    }

    /// Reads the header at `at` (`None` past the end).
    #[must_use]
    pub fn read(bytes: &[u8], at: usize) -> Option<(Self, u32)> {
        let h = bytes.get(at..at + HEADER_SIZE)?;
        let t = offset_of!(KSSTREAM_HEADER, PresentationTime);
        Some((
            Self {
                data: u64_at(h, offset_of!(KSSTREAM_HEADER, Data))?,
                frame_extent: u32_at(h, offset_of!(KSSTREAM_HEADER, FrameExtent))?,
                data_used: u32_at(h, offset_of!(KSSTREAM_HEADER, DataUsed))?,
                options_flags: u32_at(h, offset_of!(KSSTREAM_HEADER, OptionsFlags))?,
                type_specific_flags: u32_at(h, offset_of!(KSSTREAM_HEADER, TypeSpecificFlags))?,
                time: u64_at(h, t + offset_of!(KSTIME, Time))?.cast_signed(),
                numerator: u32_at(h, t + offset_of!(KSTIME, Numerator))?,
                denominator: u32_at(h, t + offset_of!(KSTIME, Denominator))?,
                duration: u64_at(h, offset_of!(KSSTREAM_HEADER, Duration))?.cast_signed(),
            },
            u32_at(h, offset_of!(KSSTREAM_HEADER, Size))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header {
            data: 0x1234_5678_9ABC,
            frame_extent: 100,
            data_used: 50,
            options_flags: 0x200,
            type_specific_flags: 7,
            time: -5,
            numerator: 1,
            denominator: 2,
            duration: 99,
        };
        let mut buf = vec![0u8; HEADER_SIZE * 2];
        h.write(&mut buf, HEADER_SIZE, 0x38);
        assert_eq!(Header::read(&buf, HEADER_SIZE), Some((h, 0x38)));
        assert_eq!(Header::read(&buf, HEADER_SIZE + 1), None);
    }

    #[test]
    fn lists_round_trip() {
        let ranges = vec![stream_format(), audio_range(2, (16, 16), (8000, 48000))];
        let list = multiple_item(&ranges);
        assert_eq!(range_items(&list), Some(ranges.iter().map(Vec::as_slice).collect()));
        let mut lying = list.clone();
        lying[4] = 9; // Count
        assert_eq!(range_items(&lying), None);
        assert_eq!(
            fixed_items(&[16, 0, 0, 0, 2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], 4).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(fixed_items(&[16, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], 4), None);
    }
}
