//! The record format inside the ring's storage.
//!
//! Every record starts at an 8-byte-aligned offset with a [`RecordHeader`], followed by the payload
//! padded to a multiple of 8. A record never wraps around the end of the storage: when the next
//! frame does not fit before the end, the producer fills the rest with padding — a padding record
//! if at least a header fits, otherwise nothing (the consumer skips any tail shorter than a header).
//!
//! A record may be followed by a **gap**: space the producer reserved for a longer frame
//! ([`crate::Producer::reserve_pending`]) and then committed shorter, or abandoned while later
//! reservations already sat behind it. A gap is a multiple of 8 bytes, at least 8, and starts with
//! an 8-byte [`SkipMarker`] — a header's first field (`len`, `kind`) — with `kind`
//! [`KIND_SKIP`] and `len` the whole gap's length, marker included. The consumer reads
//! the 8-byte prefix of a record first and the rest of the header only for a frame, so it never
//! reads past a gap into bytes not yet published. A gap that starts less than a header before the
//! end of the storage lies where no record can start: the consumer passes such bytes without
//! reading them, as far as they are published. [`HEADER_SIZE`] stays 40 bytes.

/// Metadata carried with each frame (the fields of a `KSSTREAM_HEADER` that describe the data).
/// `repr(C)`: it is also the part of a record header after its 8-byte marker, written and read
/// in the storage as it is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameMeta {
    /// `KSSTREAM_HEADER_OPTIONSF_*`.
    pub options_flags: u32,
    /// Format-specific flags.
    pub type_specific_flags: u32,
    /// Presentation time.
    pub presentation_time: i64,
    /// Presentation time scale numerator.
    pub numerator: u32,
    /// Presentation time scale denominator.
    pub denominator: u32,
    /// Duration in 100 ns units.
    pub duration: i64,
}

/// The header in front of every record: its 8-byte prefix, then the frame's metadata. 40 bytes,
/// 8-aligned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// `len`: payload bytes (without the padding to 8); `kind`: [`KIND_FRAME`] or
    /// [`KIND_PADDING`] ([`KIND_SKIP`] only ever in a lone [`SkipMarker`]).
    pub marker: SkipMarker,
    /// The frame's metadata (zero for padding). The consumer reads it only for a frame, after the
    /// marker said so.
    pub meta: FrameMeta,
}

/// A frame record.
pub(crate) const KIND_FRAME: u32 = 0x4652_4D46; // "FMRF"
/// A padding record: skip to the start of the storage.
pub(crate) const KIND_PADDING: u32 = 0x4450_4150; // "PAPD"
/// A gap: skip `len` bytes (the marker included). Only the 8-byte [`SkipMarker`] is written.
pub(crate) const KIND_SKIP: u32 = 0x5049_4B53; // "SKIP"

/// The first 8 bytes of every record: all of a gap, the start of a header otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SkipMarker {
    /// For a gap, the gap's bytes (marker included); for a frame or padding, its payload bytes.
    pub len: u32,
    /// The record's kind.
    pub kind: u32,
}

const _: () = assert!(core::mem::offset_of!(RecordHeader, meta) == MARKER_SIZE);

/// Bytes to pass over for a record that is not a frame, whose 8-byte prefix is `marker`, with
/// `to_end` bytes (at least a header's) left before the end of the storage and `published` bytes
/// published from its start: all of `to_end` for padding; a gap's length if it is one a producer
/// can write (at least 8, a multiple of 8, within both). `None` for anything else — corruption.
#[inline]
pub(crate) fn skip_len(marker: SkipMarker, to_end: usize, published: u64) -> Option<usize> {
    let len = marker.len as usize;
    match marker.kind {
        KIND_PADDING => Some(to_end),
        KIND_SKIP
            if len >= MARKER_SIZE
                && len.is_multiple_of(RECORD_ALIGN)
                && len <= to_end
                && len as u64 <= published =>
        {
            Some(len)
        }
        _ => None,
    }
}

/// What the consumer passes over where [`skip_len`] found corruption: the rest of the storage, but
/// never past what is published. A multiple of 8 (positions, `tail` and the storage's length all
/// are) and more than 0 (there is a record here), so a walk over corrupt records still ends, and
/// stays in bounds and aligned.
#[inline]
pub(crate) fn corrupt_skip(marker: SkipMarker, to_end: usize, published: u64) -> usize {
    // Never padding here (skip_len takes padding): so this fails, with what was found.
    debug_assert!(
        marker.kind == KIND_PADDING,
        "ring storage corrupted: {marker:?} is neither a frame, padding nor a gap"
    );
    #[allow(clippy::cast_possible_truncation)] // <= to_end
    let step = published.min(to_end as u64) as usize;
    step
}

/// Bytes of a [`SkipMarker`]: the smallest gap.
pub(crate) const MARKER_SIZE: usize = core::mem::size_of::<SkipMarker>();
const _: () = assert!(MARKER_SIZE == RECORD_ALIGN);

/// Bytes of a record header.
pub const HEADER_SIZE: usize = core::mem::size_of::<RecordHeader>();
/// Alignment of records, and of the storage the ring is given.
pub const RECORD_ALIGN: usize = 8;

const _: () = assert!(HEADER_SIZE == 40 && HEADER_SIZE.is_multiple_of(RECORD_ALIGN));
const _: () = assert!(core::mem::align_of::<RecordHeader>() == RECORD_ALIGN);

/// Bytes a record with `payload_len` bytes of payload occupies. `None` on overflow.
#[inline]
pub(crate) const fn record_size(payload_len: usize) -> Option<usize> {
    match payload_len.checked_add(HEADER_SIZE + RECORD_ALIGN - 1) {
        Some(n) => Some(n & !(RECORD_ALIGN - 1)),
        None => None,
    }
}

impl RecordHeader {
    #[inline]
    pub(crate) const fn frame(payload_len: u32, meta: &FrameMeta) -> Self {
        Self { marker: SkipMarker { len: payload_len, kind: KIND_FRAME }, meta: *meta }
    }

    pub(crate) const fn padding(payload_len: u32) -> Self {
        let meta = FrameMeta {
            options_flags: 0,
            type_specific_flags: 0,
            presentation_time: 0,
            numerator: 0,
            denominator: 0,
            duration: 0,
        };
        Self { marker: SkipMarker { len: payload_len, kind: KIND_PADDING }, meta }
    }

    /// Payload bytes.
    #[inline]
    pub(crate) const fn payload_len(&self) -> usize {
        self.marker.len as usize
    }
}
