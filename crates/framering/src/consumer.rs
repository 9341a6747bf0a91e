//! The reading half.

use crate::record::{FrameMeta, HEADER_SIZE, KIND_FRAME, KIND_PADDING, RecordHeader, record_size};
use crate::ring::RingCore;
use crate::storage::Storage;

/// The consumer half: sees the oldest frame as metadata plus one contiguous slice, consumes it
/// whole or in part.
pub struct Consumer<'a> {
    core: &'a RingCore,
    storage: Storage<'a>,
    capacity: usize,
    /// Physical offset of the next record to look at.
    read_off: usize,
    /// Position of that record (padding skipped so far included).
    read_pos: u64,
    /// Last `tail` loaded; reloaded only when it says the ring is empty.
    cached_tail: u64,
    /// Payload bytes of the current frame already consumed (a partial read).
    taken: usize,
}

// SAFETY: the consumer only touches the filled region of the storage and the atomics it owns; it
// can move to another thread.
unsafe impl Send for Consumer<'_> {}

impl<'a> Consumer<'a> {
    pub(crate) fn new(core: &'a RingCore, storage: Storage<'a>, capacity: usize) -> Self {
        Self { core, storage, capacity, read_off: 0, read_pos: 0, cached_tail: 0, taken: 0 }
    }

    /// The control block (for statistics). Borrowed from the half, not for the ring's whole
    /// life: an owner that frees the ring's memory once it holds both halves again (a kernel
    /// driver's) must not find a reference to it left behind.
    #[must_use]
    pub fn core(&self) -> &RingCore {
        self.core
    }

    /// The oldest frame, or `None` if the ring is empty. Dropping the grant consumes nothing.
    #[inline]
    pub fn read(&mut self) -> Option<ReadGrant<'_, 'a>> {
        let (offset, header) = self.next_frame()?;
        Some(ReadGrant { consumer: self, header, offset })
    }

    /// Whether there is no frame to read.
    pub fn is_empty(&mut self) -> bool {
        self.next_frame().is_none()
    }

    /// Passes over padding at the head, publishing its space; `true` if there was any. A producer
    /// whose reserve published padding and then found the start of the storage still occupied
    /// gets [`crate::ReserveError::Full`], and that padding is freed only when the consumer looks —
    /// which a reader that already found the ring empty may never do again. Such a producer (or
    /// its owner) calls this, then reserves again.
    pub fn pass_padding(&mut self) -> bool {
        let before = self.read_pos;
        let _ = self.next_frame();
        self.read_pos != before
    }

    /// Finds the next frame record, skipping padding. Returns its offset and header.
    #[inline]
    fn next_frame(&mut self) -> Option<(usize, RecordHeader)> {
        loop {
            if self.read_pos == self.cached_tail {
                self.cached_tail = self.core.load_tail();
                if self.read_pos == self.cached_tail {
                    return None;
                }
            }
            let to_end = self.capacity - self.read_off;
            if to_end < HEADER_SIZE {
                // Too short for a header: implicit padding.
                self.skip_padding(to_end);
                continue;
            }
            // SAFETY: read_pos < tail (Acquire-loaded), so this record was published.
            let header = unsafe { self.storage.read_header(self.read_off) };
            if header.kind == KIND_PADDING {
                self.skip_padding(to_end);
                continue;
            }
            debug_assert_eq!(header.kind, KIND_FRAME, "ring storage corrupted");
            return Some((self.read_off, header));
        }
    }

    #[inline]
    fn advance(&mut self, bytes: usize) {
        self.read_pos += bytes as u64;
        self.read_off = if self.read_off + bytes == self.capacity { 0 } else { self.read_off + bytes };
    }

    /// Passes over padding and publishes it at once: the producer may be waiting for exactly that
    /// space (it publishes padding before the frame that follows exists). Once per lap.
    fn skip_padding(&mut self, bytes: usize) {
        self.advance(bytes);
        self.core.publish_head(self.read_pos);
    }

    /// Finishes the current frame and publishes the freed space — including padding right behind
    /// it that is already known to be published (no extra atomic load), so a producer waiting to
    /// wrap can go on without another `read`.
    #[inline]
    fn release(&mut self, header: &RecordHeader) {
        let size = record_size(header.payload_len as usize).unwrap_or(HEADER_SIZE);
        self.advance(size);
        self.taken = 0;
        while self.read_pos < self.cached_tail {
            let to_end = self.capacity - self.read_off;
            // SAFETY: read_pos < tail, so this record was published.
            if to_end >= HEADER_SIZE && unsafe { self.storage.read_kind(self.read_off) } != KIND_PADDING {
                break;
            }
            self.advance(to_end);
        }
        self.core.publish_head(self.read_pos);
    }

    pub(crate) fn position(&self) -> (u64, usize) {
        (self.read_pos, self.read_off)
    }

    pub(crate) fn taken(&self) -> usize {
        self.taken
    }

    pub(crate) fn restart(&mut self) {
        self.read_off = 0;
        self.read_pos = 0;
        self.cached_tail = 0;
        self.taken = 0;
    }
}

/// The oldest frame, borrowed from the ring until consumed or dropped.
pub struct ReadGrant<'c, 'a> {
    consumer: &'c mut Consumer<'a>,
    header: RecordHeader,
    offset: usize,
}

impl ReadGrant<'_, '_> {
    /// The frame's metadata.
    #[must_use]
    #[inline]
    pub fn meta(&self) -> FrameMeta {
        self.header.meta()
    }

    /// Payload bytes of the whole frame.
    #[must_use]
    #[inline]
    pub fn frame_len(&self) -> usize {
        self.header.payload_len as usize
    }

    /// Payload bytes of this frame already consumed by earlier partial reads.
    #[must_use]
    #[inline]
    pub fn taken(&self) -> usize {
        self.consumer.taken
    }

    /// Whether an earlier read took a prefix of this frame (what is left is a continuation).
    #[must_use]
    #[inline]
    pub fn is_continuation(&self) -> bool {
        self.consumer.taken != 0
    }

    /// The payload not yet consumed, as one contiguous slice.
    #[must_use]
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let start = self.offset + HEADER_SIZE + self.consumer.taken;
        let len = self.frame_len() - self.consumer.taken;
        // SAFETY: the record was published (read_pos < tail) and stays ours until released.
        unsafe { self.consumer.storage.slice(start, len) }
    }

    /// Consumes the first `n` bytes of what is left (clamped to it). Returns `true` if that
    /// finished the frame, which frees its space. `consume(0)` finishes an empty frame.
    #[allow(clippy::must_use_candidate)] // callers may ignore whether the frame ended
    #[inline]
    pub fn consume(self, n: usize) -> bool {
        let left = self.frame_len() - self.consumer.taken;
        let n = n.min(left);
        self.consumer.taken += n;
        let finished = n == left;
        self.consumer.core.count_out(n as u64, u64::from(finished));
        if finished {
            self.consumer.release(&self.header);
        }
        finished
    }

    /// Consumes the rest of the frame.
    #[inline]
    pub fn release(self) {
        let left = self.frame_len() - self.consumer.taken;
        self.consume(left);
    }
}
