//! The formats ksring streams, read from and written to the bytes of a `KSDATAFORMAT`: parsing a
//! client's format (pin creation, `DATAFORMAT`, `PROPOSEDATAFORMAT`) and intersecting a client's
//! data range with the pin's (`DATAINTERSECTION`).
//!
//! Pure: bytes in, a decision out — no kernel calls, no unsafe, so it is tested and fuzzed as is.
//! Byte offsets come from the `ksabi` structures (whose layouts are checked against windows-sys
//! and mingw-w64), never from numbers typed here.

use core::mem::{offset_of, size_of};

use ksabi::{
    GUID, GUID_NULL, KSDATAFORMAT, KSDATAFORMAT_SPECIFIER_NONE, KSDATAFORMAT_SPECIFIER_WAVEFORMATEX,
    KSDATAFORMAT_SUBTYPE_NONE, KSDATAFORMAT_SUBTYPE_PCM, KSDATAFORMAT_TYPE_AUDIO, KSDATAFORMAT_TYPE_STREAM,
    KSDATAFORMAT_WAVEFORMATEX_SIZE, KSDATARANGE_AUDIO, NTSTATUS, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, WAVE_FORMAT_PCM, WAVEFORMATEX,
};
use ksring_api::pcm;

/// A PCM format: interleaved integer samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcm {
    /// Channels, 1..=[`pcm::MAX_CHANNELS`].
    pub channels: u16,
    /// Bits per sample: 8, 16, 24 or 32.
    pub bits: u16,
    /// Samples per second per channel.
    pub rate: u32,
}

impl Pcm {
    /// Bytes per sample frame (`nBlockAlign`).
    #[must_use]
    pub const fn block_align(self) -> u16 {
        self.channels * (self.bits / 8)
    }
}

/// A format ksring streams. Both pins of a filter stream the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A byte stream (`KSDATAFORMAT_TYPE_STREAM` / `SUBTYPE_NONE` / `SPECIFIER_NONE`).
    Stream,
    /// PCM audio (`KSDATAFORMAT_TYPE_AUDIO` / `SUBTYPE_PCM` / `SPECIFIER_WAVEFORMATEX`).
    Pcm(Pcm),
}

/// The longest encoded format ([`Format::Pcm`]: a `KSDATAFORMAT_WAVEFORMATEX`).
pub const MAX_FORMAT_SIZE: usize = KSDATAFORMAT_WAVEFORMATEX_SIZE;
const HEADER: usize = size_of::<KSDATAFORMAT>();
const WFX: usize = HEADER; // the WAVEFORMATEX follows the KSDATAFORMAT

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn guid_at(b: &[u8], at: usize) -> GUID {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    GUID::from_le_bytes(g)
}

/// The GUID triple of a format or range. `bytes` holds at least a `KSDATAFORMAT`.
fn guids(bytes: &[u8]) -> (GUID, GUID, GUID) {
    (
        guid_at(bytes, offset_of!(KSDATAFORMAT, MajorFormat)),
        guid_at(bytes, offset_of!(KSDATAFORMAT, SubFormat)),
        guid_at(bytes, offset_of!(KSDATAFORMAT, Specifier)),
    )
}

const STREAM_GUIDS: (GUID, GUID, GUID) =
    (KSDATAFORMAT_TYPE_STREAM, KSDATAFORMAT_SUBTYPE_NONE, KSDATAFORMAT_SPECIFIER_NONE);
const PCM_GUIDS: (GUID, GUID, GUID) =
    (KSDATAFORMAT_TYPE_AUDIO, KSDATAFORMAT_SUBTYPE_PCM, KSDATAFORMAT_SPECIFIER_WAVEFORMATEX);

impl Format {
    /// Reads a client's format: `bytes` is exactly the `FormatSize` bytes the client sent.
    ///
    /// # Errors
    /// - `STATUS_INVALID_BUFFER_SIZE`: shorter than a `KSDATAFORMAT`, `FormatSize` disagreeing
    ///   with the length, or a PCM format too short for its `WAVEFORMATEX` (and `cbSize` tail);
    /// - `STATUS_NO_MATCH`: GUIDs ksring does not stream, attribute flags, or PCM parameters outside
    ///   the range or inconsistent with each other (`nBlockAlign`, `nAvgBytesPerSec`, `SampleSize`).
    pub fn parse(bytes: &[u8]) -> Result<Self, NTSTATUS> {
        if bytes.len() < HEADER || u32_at(bytes, offset_of!(KSDATAFORMAT, FormatSize)) as usize != bytes.len()
        {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        if u32_at(bytes, offset_of!(KSDATAFORMAT, Flags)) != 0 {
            return Err(STATUS_NO_MATCH); // attribute lists: none are supported
        }
        let sample_size = u32_at(bytes, offset_of!(KSDATAFORMAT, SampleSize));
        match guids(bytes) {
            g if g == STREAM_GUIDS => Ok(Self::Stream),
            g if g == PCM_GUIDS => {
                if bytes.len() < KSDATAFORMAT_WAVEFORMATEX_SIZE {
                    return Err(STATUS_INVALID_BUFFER_SIZE);
                }
                let cb_size = u16_at(bytes, WFX + offset_of!(WAVEFORMATEX, cbSize));
                if bytes.len() < KSDATAFORMAT_WAVEFORMATEX_SIZE + usize::from(cb_size) {
                    return Err(STATUS_INVALID_BUFFER_SIZE);
                }
                let tag = u16_at(bytes, WFX + offset_of!(WAVEFORMATEX, wFormatTag));
                let channels = u16_at(bytes, WFX + offset_of!(WAVEFORMATEX, nChannels));
                let rate = u32_at(bytes, WFX + offset_of!(WAVEFORMATEX, nSamplesPerSec));
                let avg = u32_at(bytes, WFX + offset_of!(WAVEFORMATEX, nAvgBytesPerSec));
                let align = u16_at(bytes, WFX + offset_of!(WAVEFORMATEX, nBlockAlign));
                let bits = u16_at(bytes, WFX + offset_of!(WAVEFORMATEX, wBitsPerSample));
                let format = Pcm { channels, bits, rate };
                let in_range = tag == WAVE_FORMAT_PCM
                    && (1..=pcm::MAX_CHANNELS).contains(&u32::from(channels))
                    && matches!(bits, 8 | 16 | 24 | 32)
                    && (pcm::MIN_BITS..=pcm::MAX_BITS).contains(&u32::from(bits))
                    && (pcm::MIN_RATE..=pcm::MAX_RATE).contains(&rate);
                if !in_range
                    || align != format.block_align()
                    || u64::from(avg) != u64::from(rate) * u64::from(align)
                    || (sample_size != 0 && sample_size != u32::from(align))
                {
                    return Err(STATUS_NO_MATCH);
                }
                Ok(Self::Pcm(format))
            }
            _ => Err(STATUS_NO_MATCH),
        }
    }

    /// The format as a client receives it (`DATAFORMAT`, `DATAINTERSECTION`): a 64-byte
    /// `KSDATAFORMAT` for a stream, an 82-byte `KSDATAFORMAT_WAVEFORMATEX` for PCM.
    #[must_use]
    pub fn encode(self) -> Encoded {
        let mut out = Encoded { bytes: [0; MAX_FORMAT_SIZE], len: HEADER };
        let (major, sub, spec, sample) = match self {
            Self::Stream => (STREAM_GUIDS.0, STREAM_GUIDS.1, STREAM_GUIDS.2, 0),
            Self::Pcm(p) => {
                out.len = KSDATAFORMAT_WAVEFORMATEX_SIZE;
                let b = &mut out.bytes;
                put16(b, WFX + offset_of!(WAVEFORMATEX, wFormatTag), WAVE_FORMAT_PCM);
                put16(b, WFX + offset_of!(WAVEFORMATEX, nChannels), p.channels);
                put32(b, WFX + offset_of!(WAVEFORMATEX, nSamplesPerSec), p.rate);
                put32(
                    b,
                    WFX + offset_of!(WAVEFORMATEX, nAvgBytesPerSec),
                    p.rate * u32::from(p.block_align()),
                );
                put16(b, WFX + offset_of!(WAVEFORMATEX, nBlockAlign), p.block_align());
                put16(b, WFX + offset_of!(WAVEFORMATEX, wBitsPerSample), p.bits);
                (PCM_GUIDS.0, PCM_GUIDS.1, PCM_GUIDS.2, u32::from(p.block_align()))
            }
        };
        #[allow(clippy::cast_possible_truncation)] // at most MAX_FORMAT_SIZE
        let len = out.len as u32;
        let b = &mut out.bytes;
        put32(b, offset_of!(KSDATAFORMAT, FormatSize), len);
        put32(b, offset_of!(KSDATAFORMAT, SampleSize), sample);
        b[offset_of!(KSDATAFORMAT, MajorFormat)..][..16].copy_from_slice(&major.to_le_bytes());
        b[offset_of!(KSDATAFORMAT, SubFormat)..][..16].copy_from_slice(&sub.to_le_bytes());
        b[offset_of!(KSDATAFORMAT, Specifier)..][..16].copy_from_slice(&spec.to_le_bytes());
        out
    }

    /// The format a pin offers for a client's data range (`DATAINTERSECTION`), or `None`.
    ///
    /// `range` is the client's `KSDATARANGE` (its `FormatSize` bytes). GUIDs match when equal or
    /// when the client's is the wildcard. A full `KSDATARANGE_AUDIO` narrows the PCM bounds; the
    /// offer is then the most channels, bits and rate both sides admit. When the filter's other pin
    /// is connected (`peer`), only its format may be offered. A wildcard range gets the byte
    /// stream first.
    #[must_use]
    pub fn intersect(range: &[u8], peer: Option<Self>) -> Option<Self> {
        if range.len() < HEADER {
            return None;
        }
        let (major, sub, spec) = guids(range);
        let fits = |ours: GUID, theirs: GUID| theirs == ours || theirs == GUID_NULL;
        let admits = |g: (GUID, GUID, GUID)| fits(g.0, major) && fits(g.1, sub) && fits(g.2, spec);
        let bounds = PcmBounds::of_client(range);
        let candidate = |f: Self| match f {
            Self::Stream => admits(STREAM_GUIDS),
            Self::Pcm(p) => admits(PCM_GUIDS) && bounds.admits(p),
        };
        match peer {
            Some(f) => candidate(f).then_some(f),
            None if admits(STREAM_GUIDS) => Some(Self::Stream),
            None if admits(PCM_GUIDS) => bounds.best().map(Self::Pcm),
            None => None,
        }
    }
}

/// `KSDATARANGE_ATTRIBUTES`: an attribute list follows the range.
const RANGE_ATTRIBUTES: u32 = 0x2;
/// `KSDATARANGE_REQUIRED_ATTRIBUTES`: one of those attributes is required.
const RANGE_REQUIRED_ATTRIBUTES: u32 = 0x4;
/// `sizeof(KSMULTIPLE_ITEM)`.
const MULTIPLE_ITEM: usize = 8;

/// The first offer [`Format::intersect`] makes for a client's `KSMULTIPLE_ITEM` of data ranges
/// (`DATAINTERSECTION`: `list` is what follows the `KSP_PIN`), walking and checking the list as
/// ks.sys' `KsPinDataIntersectionEx` does — so a request gets the status Windows gives it,
/// whichever side answers.
///
/// # Errors
/// - `STATUS_INVALID_BUFFER_SIZE`: the list's `Size` beyond `list`, a range shorter than a
///   `KSDATARANGE` or beyond the list, a wildcard or `SPECIFIER_NONE` range longer than a
///   `KSDATARANGE`, an attribute list that is missing or does not fit;
/// - `STATUS_INVALID_PARAMETER`: range flags other than the attribute flags, or
///   `REQUIRED_ATTRIBUTES` alone;
/// - `STATUS_NO_MATCH`: no range gets an offer (a range with required attributes never does:
///   ksring has none).
pub fn intersect_list(list: &[u8], peer: Option<Format>) -> Result<Format, NTSTATUS> {
    if list.len() < MULTIPLE_ITEM {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    let size = u32_at(list, 0) as usize;
    let mut remaining = u32_at(list, 4);
    if size > list.len() {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    // ks.sys subtracts the header unchecked: a Size below it leaves "plenty" of room, which the
    // list's real length then bounds.
    let mut left = size.checked_sub(MULTIPLE_ITEM).map_or(list.len() - MULTIPLE_ITEM, |l| l);
    let mut at = MULTIPLE_ITEM;
    while remaining > 0 {
        let left_in_list = list.len().saturating_sub(at);
        if left < HEADER || left_in_list < HEADER {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        let range = &list[at..];
        let format_size = u32_at(range, offset_of!(KSDATAFORMAT, FormatSize)) as usize;
        let specifier = guid_at(range, offset_of!(KSDATAFORMAT, Specifier));
        let plain = specifier == GUID_NULL || specifier == KSDATAFORMAT_SPECIFIER_NONE;
        if format_size < HEADER
            || format_size > left
            || format_size > left_in_list
            || (format_size != HEADER && plain)
        {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        let flags = u32_at(range, offset_of!(KSDATAFORMAT, Flags));
        if flags & !(RANGE_ATTRIBUTES | RANGE_REQUIRED_ATTRIBUTES) != 0 || flags == RANGE_REQUIRED_ATTRIBUTES
        {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut step = format_size;
        if remaining > 1 {
            step = step.next_multiple_of(8);
            if step > left {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
        }
        if flags & RANGE_ATTRIBUTES != 0 {
            if remaining == 1 {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            remaining -= 1;
            if left < step + MULTIPLE_ITEM || left_in_list < step + MULTIPLE_ITEM {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            let attributes = u32_at(range, step) as usize;
            if attributes < MULTIPLE_ITEM || left < step + attributes || left_in_list < step + attributes {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            step += attributes;
            if remaining > 1 {
                step = step.next_multiple_of(8);
                if step > left {
                    return Err(STATUS_INVALID_BUFFER_SIZE);
                }
            }
        }
        if flags & RANGE_REQUIRED_ATTRIBUTES == 0
            && let Some(offer) = Format::intersect(&range[..format_size], peer)
        {
            return Ok(offer);
        }
        left -= step;
        at += step;
        remaining -= 1;
    }
    Err(STATUS_NO_MATCH)
}

/// PCM bounds: ksring's range narrowed by a client's `KSDATARANGE_AUDIO`.
struct PcmBounds {
    max_channels: u32,
    min_bits: u32,
    max_bits: u32,
    min_rate: u32,
    max_rate: u32,
}

impl PcmBounds {
    fn of_client(range: &[u8]) -> Self {
        let mut b = Self {
            max_channels: pcm::MAX_CHANNELS,
            min_bits: pcm::MIN_BITS,
            max_bits: pcm::MAX_BITS,
            min_rate: pcm::MIN_RATE,
            max_rate: pcm::MAX_RATE,
        };
        let is_audio_range = range.len() >= size_of::<KSDATARANGE_AUDIO>()
            && guid_at(range, offset_of!(KSDATAFORMAT, Specifier)) == KSDATAFORMAT_SPECIFIER_WAVEFORMATEX;
        if is_audio_range {
            b.max_channels =
                b.max_channels.min(u32_at(range, offset_of!(KSDATARANGE_AUDIO, MaximumChannels)));
            b.min_bits = b.min_bits.max(u32_at(range, offset_of!(KSDATARANGE_AUDIO, MinimumBitsPerSample)));
            b.max_bits = b.max_bits.min(u32_at(range, offset_of!(KSDATARANGE_AUDIO, MaximumBitsPerSample)));
            b.min_rate = b.min_rate.max(u32_at(range, offset_of!(KSDATARANGE_AUDIO, MinimumSampleFrequency)));
            b.max_rate = b.max_rate.min(u32_at(range, offset_of!(KSDATARANGE_AUDIO, MaximumSampleFrequency)));
        }
        b
    }

    fn admits(&self, p: Pcm) -> bool {
        u32::from(p.channels) <= self.max_channels
            && (self.min_bits..=self.max_bits).contains(&u32::from(p.bits))
            && (self.min_rate..=self.max_rate).contains(&p.rate)
    }

    /// The richest format inside the bounds.
    fn best(&self) -> Option<Pcm> {
        let bits = [32u16, 24, 16, 8]
            .into_iter()
            .find(|&b| (self.min_bits..=self.max_bits).contains(&u32::from(b)))?;
        let channels = u16::try_from(self.max_channels).ok().filter(|&c| c >= 1)?;
        (self.min_rate <= self.max_rate).then_some(Pcm { channels, bits, rate: self.max_rate })
    }
}

/// An encoded format: `len` bytes of `bytes`.
#[derive(Clone, Copy, Debug)]
pub struct Encoded {
    bytes: [u8; MAX_FORMAT_SIZE],
    len: usize,
}

impl Encoded {
    /// The format's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    fn pcm(channels: u16, bits: u16, rate: u32) -> Vec<u8> {
        Format::Pcm(Pcm { channels, bits, rate }).encode().as_bytes().to_vec()
    }

    fn set16(b: &mut [u8], field: usize, v: u16) {
        put16(b, WFX + field, v);
    }

    #[test]
    fn encode_then_parse_round_trips() {
        for f in [Format::Stream, Format::Pcm(Pcm { channels: 2, bits: 16, rate: 48_000 })] {
            let e = f.encode();
            assert_eq!(Format::parse(e.as_bytes()), Ok(f));
        }
        assert_eq!(Format::Stream.encode().as_bytes().len(), size_of::<KSDATAFORMAT>());
        assert_eq!(pcm(1, 8, 8000).len(), KSDATAFORMAT_WAVEFORMATEX_SIZE);
    }

    #[test]
    fn pcm_bounds_and_consistency() {
        assert!(Format::parse(&pcm(8, 32, 192_000)).is_ok());
        assert!(Format::parse(&pcm(1, 8, 8_000)).is_ok());
        for bad in [
            pcm(9, 16, 48_000),
            pcm(0, 16, 48_000),
            pcm(2, 12, 48_000),
            pcm(2, 16, 7_999),
            pcm(2, 16, 192_001),
        ] {
            assert_eq!(Format::parse(&bad), Err(STATUS_NO_MATCH));
        }
        let mut wrong_align = pcm(2, 16, 48_000);
        set16(&mut wrong_align, offset_of!(WAVEFORMATEX, nBlockAlign), 3);
        assert_eq!(Format::parse(&wrong_align), Err(STATUS_NO_MATCH));
        let mut wrong_avg = pcm(2, 16, 48_000);
        put32(&mut wrong_avg, WFX + offset_of!(WAVEFORMATEX, nAvgBytesPerSec), 1);
        assert_eq!(Format::parse(&wrong_avg), Err(STATUS_NO_MATCH));
        let mut extensible = pcm(2, 16, 48_000);
        set16(&mut extensible, offset_of!(WAVEFORMATEX, wFormatTag), ksabi::WAVE_FORMAT_EXTENSIBLE);
        assert_eq!(Format::parse(&extensible), Err(STATUS_NO_MATCH));
        let mut sample = pcm(2, 16, 48_000);
        put32(&mut sample, offset_of!(KSDATAFORMAT, SampleSize), 0);
        assert!(Format::parse(&sample).is_ok(), "SampleSize 0 means variable: accepted");
        put32(&mut sample, offset_of!(KSDATAFORMAT, SampleSize), 6);
        assert_eq!(Format::parse(&sample), Err(STATUS_NO_MATCH));
    }

    #[test]
    fn sizes_are_checked() {
        let good = pcm(2, 16, 48_000);
        assert_eq!(Format::parse(&good[..63]), Err(STATUS_INVALID_BUFFER_SIZE));
        assert_eq!(Format::parse(&good[..81]), Err(STATUS_INVALID_BUFFER_SIZE), "FormatSize says 82");
        let mut short = good[..64].to_vec();
        put32(&mut short, 0, 64);
        assert_eq!(
            Format::parse(&short),
            Err(STATUS_INVALID_BUFFER_SIZE),
            "PCM GUIDs without a WAVEFORMATEX"
        );
        let mut tail = good.clone();
        set16(&mut tail, offset_of!(WAVEFORMATEX, cbSize), 4);
        assert_eq!(Format::parse(&tail), Err(STATUS_INVALID_BUFFER_SIZE), "cbSize beyond FormatSize");
        tail.extend_from_slice(&[0; 4]);
        put32(&mut tail, 0, 86);
        assert!(Format::parse(&tail).is_ok(), "cbSize inside FormatSize");
        let mut flagged = Format::Stream.encode().as_bytes().to_vec();
        put32(&mut flagged, offset_of!(KSDATAFORMAT, Flags), 2);
        assert_eq!(Format::parse(&flagged), Err(STATUS_NO_MATCH), "attributes are not supported");
    }

    #[test]
    fn format_size_must_be_the_length_given() {
        let stream = Format::Stream.encode().as_bytes().to_vec();
        let mut longer = stream.clone();
        longer.extend_from_slice(&[0; 8]);
        assert_eq!(Format::parse(&longer), Err(STATUS_INVALID_BUFFER_SIZE), "FormatSize 64 of 72 bytes");
        let mut claims_more = stream.clone();
        put32(&mut claims_more, 0, 72);
        assert_eq!(Format::parse(&claims_more), Err(STATUS_INVALID_BUFFER_SIZE), "FormatSize 72 of 64 bytes");
        assert_eq!(Format::parse(&stream), Ok(Format::Stream));
    }

    #[test]
    fn a_waveformatex_body_needs_the_pcm_guids() {
        let good = pcm(2, 16, 48_000);
        for field in [
            offset_of!(KSDATAFORMAT, MajorFormat),
            offset_of!(KSDATAFORMAT, SubFormat),
            offset_of!(KSDATAFORMAT, Specifier),
        ] {
            let mut other = good.clone();
            other[field] ^= 1;
            assert_eq!(Format::parse(&other), Err(STATUS_NO_MATCH), "GUID at {field} changed");
        }
        assert!(Format::parse(&good).is_ok());
    }

    fn audio_range(max_ch: u32, bits: (u32, u32), rates: (u32, u32)) -> Vec<u8> {
        let mut r = Vec::from(&pcm(2, 16, 48_000)[..64]);
        r.resize(size_of::<KSDATARANGE_AUDIO>(), 0);
        #[allow(clippy::cast_possible_truncation)]
        put32(&mut r, 0, size_of::<KSDATARANGE_AUDIO>() as u32);
        put32(&mut r, offset_of!(KSDATARANGE_AUDIO, MaximumChannels), max_ch);
        put32(&mut r, offset_of!(KSDATARANGE_AUDIO, MinimumBitsPerSample), bits.0);
        put32(&mut r, offset_of!(KSDATARANGE_AUDIO, MaximumBitsPerSample), bits.1);
        put32(&mut r, offset_of!(KSDATARANGE_AUDIO, MinimumSampleFrequency), rates.0);
        put32(&mut r, offset_of!(KSDATARANGE_AUDIO, MaximumSampleFrequency), rates.1);
        r
    }

    #[test]
    fn intersection() {
        let stream = Format::Stream.encode().as_bytes().to_vec();
        assert_eq!(Format::intersect(&stream, None), Some(Format::Stream));
        let wildcard = [0u8; 64];
        assert_eq!(Format::intersect(&wildcard, None), Some(Format::Stream), "stream first");
        let narrow = audio_range(2, (16, 24), (44_100, 48_000));
        assert_eq!(
            Format::intersect(&narrow, None),
            Some(Format::Pcm(Pcm { channels: 2, bits: 24, rate: 48_000 }))
        );
        assert_eq!(
            Format::intersect(&audio_range(16, (8, 64), (1, 1_000_000)), None),
            Some(Format::Pcm(Pcm { channels: 8, bits: 32, rate: 192_000 }))
        );
        assert_eq!(Format::intersect(&audio_range(2, (12, 12), (8_000, 48_000)), None), None, "no bit depth");
        assert_eq!(Format::intersect(&audio_range(0, (16, 16), (8_000, 48_000)), None), None, "no channels");
        assert_eq!(Format::intersect(&audio_range(2, (16, 16), (200_000, 300_000)), None), None, "no rate");
        // A peer's format constrains the answer.
        let p = Format::Pcm(Pcm { channels: 2, bits: 16, rate: 44_100 });
        assert_eq!(Format::intersect(&narrow, Some(p)), Some(p));
        assert_eq!(Format::intersect(&wildcard, Some(p)), Some(p));
        assert_eq!(Format::intersect(&stream, Some(p)), None);
        assert_eq!(
            Format::intersect(&audio_range(1, (16, 16), (8_000, 48_000)), Some(p)),
            None,
            "peer outside"
        );
        assert_eq!(Format::intersect(&stream[..10], None), None);
    }

    fn list(ranges: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for r in ranges {
            body.extend_from_slice(r);
            body.resize(body.len().next_multiple_of(8), 0);
        }
        let mut out = Vec::new();
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn range_lists_are_walked_as_ks_does() {
        let stream = Format::Stream.encode().as_bytes().to_vec();
        let mut wildcard = [0u8; 64];
        put32(&mut wildcard, 0, 64);
        let p = Format::Pcm(Pcm { channels: 2, bits: 16, rate: 44_100 });
        let narrow = audio_range(2, (16, 24), (44_100, 48_000));
        assert_eq!(intersect_list(&list(&[&stream]), None), Ok(Format::Stream));
        assert_eq!(intersect_list(&list(&[&wildcard]), Some(p)), Ok(p), "the peer's format, not the stream");
        assert_eq!(intersect_list(&list(&[&stream]), Some(p)), Err(STATUS_NO_MATCH));
        assert_eq!(intersect_list(&list(&[&stream, &narrow]), Some(p)), Ok(p), "the first range that fits");
        assert_eq!(intersect_list(&list(&[]), None), Err(STATUS_NO_MATCH));
        let mut big = list(&[&stream]);
        put32(&mut big, 0, 4096);
        assert_eq!(intersect_list(&big, None), Err(STATUS_INVALID_BUFFER_SIZE), "Size beyond the request");
        let mut video = stream.clone();
        video[offset_of!(KSDATAFORMAT, MajorFormat)] ^= 1;
        let mut count = list(&[&video]);
        put32(&mut count, 4, 3);
        assert_eq!(intersect_list(&count, None), Err(STATUS_INVALID_BUFFER_SIZE), "Count beyond Size");
        put32(&mut count, 8 + offset_of!(KSDATAFORMAT, MajorFormat), 0);
        let mut lazy = list(&[&stream]);
        put32(&mut lazy, 4, 3);
        assert_eq!(intersect_list(&lazy, None), Ok(Format::Stream), "ranges after a match are not checked");
        let mut short = stream.clone();
        put32(&mut short, 0, 16);
        assert_eq!(intersect_list(&list(&[&short]), None), Err(STATUS_INVALID_BUFFER_SIZE));
        let mut long_stream = stream.clone();
        long_stream.resize(72, 0);
        put32(&mut long_stream, 0, 72);
        assert_eq!(intersect_list(&list(&[&long_stream]), None), Err(STATUS_INVALID_BUFFER_SIZE));
        let mut flagged = stream.clone();
        put32(&mut flagged, offset_of!(KSDATAFORMAT, Flags), 1);
        assert_eq!(intersect_list(&list(&[&flagged]), None), Err(STATUS_INVALID_PARAMETER));
        put32(&mut flagged, offset_of!(KSDATAFORMAT, Flags), RANGE_ATTRIBUTES);
        assert_eq!(intersect_list(&list(&[&flagged]), None), Err(STATUS_INVALID_BUFFER_SIZE), "no list");
        let attributes = [8u8, 0, 0, 0, 0, 0, 0, 0];
        let mut two = list(&[&flagged, &attributes]);
        put32(&mut two, 4, 2);
        assert_eq!(intersect_list(&two, None), Ok(Format::Stream), "optional attributes are ignored");
        put32(&mut two, 8 + offset_of!(KSDATAFORMAT, Flags), RANGE_ATTRIBUTES | RANGE_REQUIRED_ATTRIBUTES);
        assert_eq!(intersect_list(&two, None), Err(STATUS_NO_MATCH), "required attributes");
        assert_eq!(intersect_list(&[0; 4], None), Err(STATUS_INVALID_BUFFER_SIZE));
    }
}
