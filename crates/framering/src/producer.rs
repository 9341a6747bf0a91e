//! The writing half.

use crate::record::{FrameMeta, HEADER_SIZE, RecordHeader, record_size};
use crate::ring::RingCore;
use crate::storage::Storage;

/// Why a frame cannot be reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReserveError {
    /// The frame can never fit, even in an empty ring.
    TooLarge {
        /// Payload bytes asked for.
        len: usize,
        /// The most payload a frame can carry in this ring.
        max: usize,
    },
    /// Not enough free space now; it frees up as the consumer releases frames.
    Full,
}

/// The producer half: reserves a contiguous region for a frame, lets the caller fill it, commits.
pub struct Producer<'a> {
    core: &'a RingCore,
    storage: Storage<'a>,
    capacity: usize,
    /// Physical offset where the next record goes.
    write_off: usize,
    /// Position published so far (the producer's own copy of `tail`).
    tail: u64,
    /// Last `head` loaded; reloaded only when it says the ring is too full.
    cached_head: u64,
}

// SAFETY: the producer only touches the free region of the storage and the atomics it owns; it can
// move to another thread (its borrow of the storage and the core lasts 'a either way).
unsafe impl Send for Producer<'_> {}

impl<'a> Producer<'a> {
    pub(crate) fn new(core: &'a RingCore, storage: Storage<'a>, capacity: usize) -> Self {
        Self { core, storage, capacity, write_off: 0, tail: 0, cached_head: 0 }
    }

    /// The most payload one frame can carry: the whole storage less one header.
    #[must_use]
    pub fn max_frame(&self) -> usize {
        self.capacity - HEADER_SIZE
    }

    /// The control block (for statistics). Borrowed from the half, not for the ring's whole
    /// life: an owner that frees the ring's memory once it holds both halves again (a kernel
    /// driver's) must not find a reference to it left behind.
    #[must_use]
    pub fn core(&self) -> &RingCore {
        self.core
    }

    /// The control block for the ring's whole life (inside the crate).
    pub(crate) fn ring_core(&self) -> &'a RingCore {
        self.core
    }

    /// Reserves room for a frame of `len` payload bytes: one contiguous slice, never wrapped.
    ///
    /// Nothing is visible to the consumer until [`WriteGrant::commit`]; dropping the grant abandons
    /// it. If the frame does not fit before the end of the storage, the rest of the storage is
    /// published as padding first (even if the reservation then has to wait), so that the frame
    /// only ever waits for room at the start — an empty ring always takes any frame up to
    /// [`Producer::max_frame`].
    ///
    /// # Errors
    /// [`ReserveError::TooLarge`] if `len` exceeds [`Producer::max_frame`];
    /// [`ReserveError::Full`] if the consumer must release frames first.
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_, 'a>, ReserveError> {
        let max = self.max_frame();
        let need = match record_size(len) {
            Some(need) if len <= max => need,
            _ => return Err(ReserveError::TooLarge { len, max }),
        };
        let to_end = self.capacity - self.write_off;
        if need > to_end {
            // A record never wraps: the tail of the storage becomes padding.
            self.ensure_free(to_end as u64)?;
            self.publish_padding(to_end);
        }
        self.ensure_free(need as u64)?;
        Ok(WriteGrant { producer: self, len })
    }

    /// Succeeds if `bytes` are free, reloading the consumer's position only if the cached one
    /// says they are not.
    #[inline]
    fn ensure_free(&mut self, bytes: u64) -> Result<(), ReserveError> {
        if self.free_space(self.cached_head) < bytes {
            self.cached_head = self.core.load_head();
            // A fresh head gives an exact fill: the moments the ring is nearly full all pass here.
            self.core.raise_high_water(self.tail - self.cached_head);
            if self.free_space(self.cached_head) < bytes {
                return Err(ReserveError::Full);
            }
        }
        Ok(())
    }

    /// Fills `bytes` (the rest of the storage, known free) with padding and publishes it.
    fn publish_padding(&mut self, bytes: usize) {
        if bytes >= HEADER_SIZE {
            #[allow(clippy::cast_possible_truncation)] // bytes < capacity <= MAX_CAPACITY < 2^32
            let padding = RecordHeader::padding((bytes - HEADER_SIZE) as u32);
            // SAFETY: ensure_free() showed these bytes are free, so they are the producer's.
            unsafe { self.storage.write_header(self.write_off, &padding) };
        }
        // Shorter than a header: nothing to write, the consumer skips such a tail by itself.
        self.tail += bytes as u64;
        self.core.publish_tail(self.tail);
        self.write_off = 0;
    }

    /// Copies `payload` into a new frame and commits it with `meta`.
    ///
    /// # Errors
    /// As [`Producer::reserve`]; nothing is written on error.
    #[inline]
    pub fn push(&mut self, payload: &[u8], meta: &FrameMeta) -> Result<(), ReserveError> {
        let mut grant = self.reserve(payload.len())?;
        grant.payload().copy_from_slice(payload);
        grant.commit(meta);
        Ok(())
    }

    /// Whether a frame of `len` payload bytes could be reserved now.
    pub fn can_reserve(&mut self, len: usize) -> bool {
        self.reserve(len).is_ok()
    }

    #[inline]
    fn free_space(&self, head: u64) -> u64 {
        self.capacity as u64 - (self.tail - head)
    }

    /// Counts a committed frame and keeps the high-water mark. The fill measured against the cached
    /// `head` is an upper bound; only when it beats the mark by more than `capacity / 16` is `head`
    /// reloaded to measure exactly (then the cache is fresh too). So the mark holds only exact
    /// measurements and is at most `capacity / 16` below the true peak, for about one cross-core
    /// load per sixteenth of the ring.
    #[inline]
    fn record_stats(&mut self, payload: u64) {
        self.core.count_in(payload);
        let upper = self.tail - self.cached_head;
        if upper > self.core.high_water() + (self.capacity / 16) as u64 {
            self.cached_head = self.core.load_head();
            self.core.raise_high_water(self.tail - self.cached_head);
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn storage(&self) -> Storage<'a> {
        self.storage
    }

    pub(crate) fn published_tail(&self) -> u64 {
        self.tail
    }

    pub(crate) fn restart(&mut self) {
        self.write_off = 0;
        self.tail = 0;
        self.cached_head = 0;
    }
}

/// A reserved, not yet published frame.
pub struct WriteGrant<'p, 'a> {
    producer: &'p mut Producer<'a>,
    /// Payload bytes reserved.
    len: usize,
}

impl WriteGrant<'_, '_> {
    /// The reserved payload bytes, to fill.
    #[inline]
    pub fn payload(&mut self) -> &mut [u8] {
        let off = self.producer.write_off + HEADER_SIZE;
        // SAFETY: reserve() showed the record's bytes are free, so the producer owns them until
        // it publishes a new tail.
        unsafe { self.producer.storage.slice_mut(off, self.len) }
    }

    /// Payload bytes reserved.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty (a header-only frame, e.g. end of stream).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Publishes the frame with all reserved bytes.
    #[inline]
    pub fn commit(self, meta: &FrameMeta) {
        let len = self.len;
        self.commit_len(len, meta);
    }

    /// Publishes the frame with only the first `len` bytes of the reservation (more is clamped to
    /// the reservation). The unused rest is free again.
    #[inline]
    pub fn commit_len(self, len: usize, meta: &FrameMeta) {
        let len = len.min(self.len);
        let producer = self.producer;
        #[allow(clippy::cast_possible_truncation)] // len <= max_frame < 2^32
        let header = RecordHeader::frame(len as u32, meta);
        // SAFETY: the record was reserved; its header slot is part of it.
        unsafe { producer.storage.write_header(producer.write_off, &header) };
        // `len` fits the reservation, so its record size is known to be representable.
        let need = record_size(len).unwrap_or(HEADER_SIZE);
        producer.tail += need as u64;
        producer.core.publish_tail(producer.tail);
        let end = producer.write_off + need;
        producer.write_off = if end == producer.capacity { 0 } else { end };
        producer.record_stats(len as u64);
    }
}
