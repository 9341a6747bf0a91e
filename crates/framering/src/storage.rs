//! Raw access to the caller's storage, shared by the two halves.
//!
//! The halves never touch the same bytes at the same time: the producer writes only in the free
//! region `[tail, head + capacity)`, the consumer reads only in `[head, tail)` (positions modulo
//! capacity), and each moves a boundary only with a Release store after its last access. That is
//! the invariant every `unsafe` block below relies on. Held space (bytes the consumer has taken in
//! place and not released) lies in `[head, tail)`: the consumer never publishes a head past it.
//!
//! Under `--cfg loom` every access is also reported to loom, per 8-byte word, through
//! `loom::cell::UnsafeCell<()>` trackers, so a missing Acquire/Release on the indices shows up as
//! a causality violation on the data, not only as a wrong index.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::record::{FrameMeta, MARKER_SIZE, RECORD_ALIGN, RecordHeader, SkipMarker};

/// The ring's bytes: a pointer and a length, valid for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct Storage<'a> {
    base: NonNull<u8>,
    len: usize,
    #[cfg(loom)]
    tracks: &'a [loom::cell::UnsafeCell<()>],
    _borrow: PhantomData<&'a mut [u8]>,
}

#[cfg_attr(not(loom), allow(clippy::elidable_lifetime_names))] // 'a names the loom trackers' borrow
impl<'a> Storage<'a> {
    /// # Safety
    /// `base..base+len` is valid for reads and writes, initialised, and used by nothing but the
    /// ring's two halves for `'a`.
    pub(crate) unsafe fn new(
        base: NonNull<u8>,
        len: usize,
        #[cfg(loom)] tracks: &'a [loom::cell::UnsafeCell<()>],
    ) -> Self {
        Self {
            base,
            len,
            #[cfg(loom)]
            tracks,
            _borrow: PhantomData,
        }
    }
}

impl Storage<'_> {
    #[inline]
    fn at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.len);
        self.base.as_ptr().wrapping_add(offset)
    }

    /// Writes a header at an 8-aligned `offset` with room for it.
    ///
    /// # Safety
    /// The header's bytes belong to the calling half (see the module invariant).
    #[inline]
    pub(crate) unsafe fn write_header(&self, offset: usize, header: &RecordHeader) {
        debug_assert!(offset.is_multiple_of(RECORD_ALIGN) && offset + crate::HEADER_SIZE <= self.len);
        self.track_write(offset, crate::HEADER_SIZE);
        // SAFETY: in bounds and 8-aligned (the storage is 8-aligned, offsets are multiples of 8);
        // the bytes belong to the caller by the module invariant.
        #[allow(clippy::cast_ptr_alignment)] // 8-aligned storage (checked at split), 8-multiple offsets
        let slot = self.at(offset).cast::<RecordHeader>();
        // SAFETY: as above.
        unsafe { slot.write(*header) };
    }

    /// Reads the frame's metadata in the header at an 8-aligned `offset`, the part that follows its
    /// 8-byte prefix (read first with `read_marker`): 32 bytes at `offset + 8`.
    ///
    /// # Safety
    /// The header's bytes belong to the calling half and were written by `write_header`.
    #[inline]
    pub(crate) unsafe fn read_meta(&self, offset: usize) -> FrameMeta {
        debug_assert!(offset.is_multiple_of(RECORD_ALIGN) && offset + crate::HEADER_SIZE <= self.len);
        self.track_read(offset + MARKER_SIZE, crate::HEADER_SIZE - MARKER_SIZE);
        #[allow(clippy::cast_ptr_alignment)] // 8-aligned storage (checked at split), 8-multiple offsets
        let slot = self.at(offset + MARKER_SIZE).cast::<FrameMeta>();
        // SAFETY: in bounds, aligned, initialised by the producer before it published them.
        unsafe { slot.read() }
    }

    /// Reads the 8-byte prefix of the record at an 8-aligned `offset`: a whole gap's marker, or the
    /// `len` and `kind` of a header. Touches only those 8 bytes, so it is safe to use
    /// where a gap shorter than a header ends in bytes not yet published.
    ///
    /// # Safety
    /// The 8 bytes belong to the calling half and were written by `write_header` or
    /// `write_marker`.
    #[inline]
    pub(crate) unsafe fn read_marker(&self, offset: usize) -> SkipMarker {
        debug_assert!(offset.is_multiple_of(RECORD_ALIGN) && offset + MARKER_SIZE <= self.len);
        self.track_read(offset, MARKER_SIZE);
        #[allow(clippy::cast_ptr_alignment)] // 8-aligned storage (checked at split), 8-multiple offsets
        let slot = self.at(offset).cast::<SkipMarker>();
        // SAFETY: in bounds, aligned, initialised by the producer before it published them.
        unsafe { slot.read() }
    }

    /// Writes a gap's marker at an 8-aligned `offset`.
    ///
    /// # Safety
    /// The marker's 8 bytes belong to the calling half (see the module invariant).
    #[inline]
    pub(crate) unsafe fn write_marker(&self, offset: usize, marker: &SkipMarker) {
        debug_assert!(offset.is_multiple_of(RECORD_ALIGN) && offset + MARKER_SIZE <= self.len);
        self.track_write(offset, MARKER_SIZE);
        #[allow(clippy::cast_ptr_alignment)] // 8-aligned storage (checked at split), 8-multiple offsets
        let slot = self.at(offset).cast::<SkipMarker>();
        // SAFETY: in bounds and aligned; the bytes belong to the caller by the module invariant.
        unsafe { slot.write(*marker) };
    }

    /// The bytes `offset..offset+len`, for writing.
    ///
    /// # Safety
    /// The range is in bounds and belongs to the calling half for the returned lifetime.
    #[allow(clippy::mut_from_ref)] // the storage is shared raw memory; the protocol gives exclusivity
    #[inline]
    pub(crate) unsafe fn slice_mut(&self, offset: usize, len: usize) -> &mut [u8] {
        debug_assert!(offset + len <= self.len);
        self.track_write(offset, len);
        // SAFETY: in bounds, initialised, and exclusively the caller's by the module invariant.
        unsafe { core::slice::from_raw_parts_mut(self.at(offset), len) }
    }

    /// The bytes `offset..offset+len`, for reading.
    ///
    /// # Safety
    /// The range is in bounds and belongs to the calling half for the returned lifetime.
    #[inline]
    pub(crate) unsafe fn slice(&self, offset: usize, len: usize) -> &[u8] {
        debug_assert!(offset + len <= self.len);
        self.track_read(offset, len);
        // SAFETY: in bounds, initialised, and not written by anyone while the caller owns it.
        unsafe { core::slice::from_raw_parts(self.at(offset), len) }
    }

    #[cfg(loom)]
    pub(crate) fn track_write(&self, offset: usize, len: usize) {
        for word in offset / RECORD_ALIGN..(offset + len).div_ceil(RECORD_ALIGN) {
            self.tracks[word].with_mut(|_| ());
        }
    }

    #[cfg(loom)]
    pub(crate) fn track_read(&self, offset: usize, len: usize) {
        for word in offset / RECORD_ALIGN..(offset + len).div_ceil(RECORD_ALIGN) {
            self.tracks[word].with(|_| ());
        }
    }

    #[cfg(not(loom))]
    #[inline(always)]
    #[allow(clippy::unused_self)] // same signature as the loom build
    pub(crate) fn track_write(&self, _offset: usize, _len: usize) {}

    #[cfg(not(loom))]
    #[inline(always)]
    #[allow(clippy::unused_self)]
    pub(crate) fn track_read(&self, _offset: usize, _len: usize) {}
}
