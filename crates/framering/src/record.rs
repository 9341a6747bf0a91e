//! The record format inside the ring's storage.
//!
//! Every record starts at an 8-byte-aligned offset with a [`RecordHeader`], followed by the payload
//! padded to a multiple of 8. A record never wraps around the end of the storage: when the next
//! frame does not fit before the end, the producer fills the rest with padding — a padding record
//! if at least a header fits, otherwise nothing (the consumer skips any tail shorter than a header).

/// Metadata carried with each frame (the fields of a `KSSTREAM_HEADER` that describe the data).
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

/// The header in front of every record. 40 bytes, 8-aligned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Payload bytes (without the padding to 8).
    pub payload_len: u32,
    /// [`KIND_FRAME`] or [`KIND_PADDING`].
    pub kind: u32,
    pub options_flags: u32,
    pub type_specific_flags: u32,
    pub presentation_time: i64,
    pub numerator: u32,
    pub denominator: u32,
    pub duration: i64,
}

/// A frame record.
pub(crate) const KIND_FRAME: u32 = 0x4652_4D46; // "FMRF"
/// A padding record: skip to the start of the storage.
pub(crate) const KIND_PADDING: u32 = 0x4450_4150; // "PAPD"

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
        Self {
            payload_len,
            kind: KIND_FRAME,
            options_flags: meta.options_flags,
            type_specific_flags: meta.type_specific_flags,
            presentation_time: meta.presentation_time,
            numerator: meta.numerator,
            denominator: meta.denominator,
            duration: meta.duration,
        }
    }

    pub(crate) const fn padding(payload_len: u32) -> Self {
        Self {
            payload_len,
            kind: KIND_PADDING,
            options_flags: 0,
            type_specific_flags: 0,
            presentation_time: 0,
            numerator: 0,
            denominator: 0,
            duration: 0,
        }
    }

    #[inline]
    pub(crate) const fn meta(&self) -> FrameMeta {
        FrameMeta {
            options_flags: self.options_flags,
            type_specific_flags: self.type_specific_flags,
            presentation_time: self.presentation_time,
            numerator: self.numerator,
            denominator: self.denominator,
            duration: self.duration,
        }
    }
}
