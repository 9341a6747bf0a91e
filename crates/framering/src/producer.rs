//! The writing half.

use crate::record::{FrameMeta, HEADER_SIZE, KIND_SKIP, RecordHeader, SkipMarker, record_size};
use crate::ring::{Origin, RingCore};
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
    /// Physical offset where the next record goes: `front % capacity`.
    write_off: usize,
    /// Position published so far (the producer's own copy of `tail`).
    tail: u64,
    /// End of the space reserved so far. Invariant: `tail <= front <= head + capacity`;
    /// `front == tail` exactly when no reservation of [`Producer::reserve_pending`] is pending.
    /// `[tail, front)` holds the pending reservations back to back (each with the padding it
    /// needed before it), written by nobody but the producer and the owner of each reservation,
    /// and invisible to the consumer until published in order.
    front: u64,
    /// Last `head` loaded; reloaded only when it says the ring is too full.
    cached_head: u64,
    /// Ticket of the next pending reservation. Never reset (not even by [`crate::reset`]), so a
    /// ticket from before a reset is never taken for a new one.
    next_ticket: u64,
    /// Ticket of the oldest pending reservation, the only one that may be committed or abandoned.
    /// Invariant: `commit_ticket <= next_ticket`; equal exactly when `front == tail`.
    commit_ticket: u64,
}

/// A reservation made by [`Producer::reserve_pending`]: a value (no borrow of the producer) that
/// names `capacity()` payload bytes at `offset()` into the ring's storage, to be filled by anyone
/// (e.g. a device through an MDL) and then committed — or abandoned — in reservation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Order among the pending reservations.
    ticket: u64,
    /// Position of its first byte (the padding it needed before it included).
    start: u64,
    /// Position past its record.
    end: u64,
    /// Offset of the payload in the storage.
    offset: usize,
    /// Payload bytes reserved.
    len: usize,
    /// The core and split it was made in: another ring's reservation, or one from before the
    /// core was split again, may line up with a pending one here in every other field.
    origin: Origin,
}

impl Reservation {
    /// Offset of the reserved payload bytes from the start of the ring's storage.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Payload bytes reserved (the most the frame may carry when committed).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.len
    }

    /// The reservation's place in the order of commits (increasing by one per reservation).
    #[must_use]
    pub fn ticket(&self) -> u64 {
        self.ticket
    }
}

/// Why [`Producer::commit_pending`] or [`Producer::abandon_pending`] refused (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitError {
    /// An older reservation is still pending: commit or abandon that one first.
    OutOfOrder,
    /// Not a pending reservation of this producer: already committed or abandoned, made before a
    /// reset, or made by another ring's producer or by an earlier split of this ring.
    NotPending,
    /// The frame is longer than the reservation.
    TooLong {
        /// Payload bytes asked for.
        len: usize,
        /// Payload bytes reserved.
        capacity: usize,
    },
}

// SAFETY: the producer only touches the free region of the storage and the atomics it owns; it can
// move to another thread (its borrow of the storage and the core lasts 'a either way).
unsafe impl Send for Producer<'_> {}

impl<'a> Producer<'a> {
    pub(crate) fn new(core: &'a RingCore, storage: Storage<'a>, capacity: usize) -> Self {
        Self {
            core,
            storage,
            capacity,
            write_off: 0,
            tail: 0,
            front: 0,
            cached_head: 0,
            next_ticket: 0,
            commit_ticket: 0,
        }
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
    /// only ever waits for room at the start — once the consumer has passed that padding, an
    /// empty ring takes any frame up to [`Producer::max_frame`]. (The padding is published only
    /// when the end of the storage is free: gaps the consumer has not passed yet there make this
    /// call `Full` without it, and the next call publishes it.)
    ///
    /// # Errors
    /// [`ReserveError::TooLarge`] if `len` exceeds [`Producer::max_frame`];
    /// [`ReserveError::Full`] if the consumer must release frames first, or while reservations of
    /// [`Producer::reserve_pending`] are pending (a grant publishes at once, so it waits for them).
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<WriteGrant<'_, 'a>, ReserveError> {
        let max = self.max_frame();
        let need = match record_size(len) {
            Some(need) if len <= max => need,
            _ => return Err(ReserveError::TooLarge { len, max }),
        };
        if self.front != self.tail {
            return Err(ReserveError::Full);
        }
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

    /// Fills `bytes` (the rest of the storage, known free) with padding and publishes it. Only
    /// with nothing pending.
    fn publish_padding(&mut self, bytes: usize) {
        self.write_padding(bytes);
        self.tail += bytes as u64;
        self.front = self.tail;
        self.core.publish_tail(self.tail);
        self.write_off = 0;
    }

    /// Writes padding over `bytes` at `write_off` (the rest of the storage, known free).
    fn write_padding(&mut self, bytes: usize) {
        if bytes >= HEADER_SIZE {
            #[allow(clippy::cast_possible_truncation)] // bytes < capacity <= MAX_CAPACITY < 2^32
            let padding = RecordHeader::padding((bytes - HEADER_SIZE) as u32);
            // SAFETY: ensure_free() showed these bytes are free, so they are the producer's.
            unsafe { self.storage.write_header(self.write_off, &padding) };
        }
        // Shorter than a header: nothing to write, the consumer skips such a tail by itself.
    }

    /// Reserves room for a frame of `len` payload bytes **without publishing anything**, as a
    /// value: several reservations may be pending at once, and each is filled by whoever owns it
    /// (e.g. a read request in flight whose MDL covers `offset()..offset() + capacity()` of the
    /// storage), then committed with [`Producer::commit_pending`] — possibly shorter — or
    /// abandoned with [`Producer::abandon_pending`], in the order they were reserved. The
    /// consumer sees a frame only at its commit, and the frames in reservation order.
    ///
    /// Space a reservation does not use (committed shorter, or abandoned behind a later one)
    /// becomes a gap the consumer passes over; a frame that does not fit before the end of the
    /// storage is preceded by padding, published (with nothing pending) at once as
    /// [`Producer::reserve`] does, or (behind pending ones) with the reservation's commit.
    ///
    /// While reservations are pending, [`Producer::reserve`] reports [`ReserveError::Full`].
    ///
    /// # Errors
    /// [`ReserveError::TooLarge`] if `len` exceeds [`Producer::max_frame`];
    /// [`ReserveError::Full`] if there is no room now (nothing is reserved).
    pub fn reserve_pending(&mut self, len: usize) -> Result<Reservation, ReserveError> {
        let max = self.max_frame();
        let need = match record_size(len) {
            Some(need) if len <= max => need,
            _ => return Err(ReserveError::TooLarge { len, max }),
        };
        let mut pad = 0;
        let to_end = self.capacity - self.write_off;
        if need > to_end {
            if self.front == self.tail {
                // Nothing pending: publish the padding now, so an empty ring takes any frame.
                self.ensure_free(to_end as u64)?;
                self.publish_padding(to_end);
            } else {
                pad = to_end;
            }
        }
        self.ensure_free((pad + need) as u64)?;
        if pad != 0 {
            // Behind pending reservations: written now, published with this one's commit.
            self.write_padding(pad);
        }
        let start = self.front;
        let record = if pad == 0 { self.write_off } else { 0 };
        self.front += (pad + need) as u64;
        self.write_off = if record + need == self.capacity { 0 } else { record + need };
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        Ok(Reservation {
            ticket,
            start,
            end: self.front,
            offset: record + HEADER_SIZE,
            len,
            origin: self.core.origin(),
        })
    }

    /// Reservations of [`Producer::reserve_pending`] not yet committed or abandoned.
    #[must_use]
    pub fn pending(&self) -> u64 {
        self.next_ticket - self.commit_ticket
    }

    /// Checks that `r` is the oldest pending reservation of this producer, and returns the offset
    /// of its record. A reservation made by another core, or by this core's earlier split, is
    /// refused first: its ticket and layout may line up with one pending here (tickets restart at
    /// each split), and committing it would publish bytes nobody wrote — the consumer would read
    /// stale bytes as a header. Every other field is then checked against the producer's own
    /// state as well (defence in depth: a forged value can at worst name bytes of `[tail, front)`).
    fn check_oldest(&self, r: &Reservation) -> Result<usize, CommitError> {
        if r.origin != self.core.origin() || r.ticket < self.commit_ticket || r.ticket >= self.next_ticket {
            return Err(CommitError::NotPending);
        }
        if r.ticket != self.commit_ticket {
            return Err(CommitError::OutOfOrder);
        }
        let need = record_size(r.len).filter(|_| r.len <= self.max_frame()).ok_or(CommitError::NotPending)?;
        let capacity = self.capacity as u64;
        if r.start != self.tail || r.end > self.front || r.end < r.start + need as u64 {
            return Err(CommitError::NotPending);
        }
        let record_pos = r.end - need as u64;
        #[allow(clippy::cast_possible_truncation)] // < capacity
        let record = (record_pos % capacity) as usize;
        let start_off = r.start % capacity;
        let padded = record_pos != r.start;
        if record + need > self.capacity
            || record + HEADER_SIZE != r.offset
            || (padded && (record != 0 || record_pos - r.start != capacity - start_off))
        {
            return Err(CommitError::NotPending);
        }
        Ok(record)
    }

    /// The payload bytes of a pending reservation, to fill from safe code (`None` if `r` is not
    /// pending here — another ring's or an earlier split's included). Any pending reservation, not
    /// only the oldest.
    #[must_use]
    pub fn pending_payload(&mut self, r: &Reservation) -> Option<&mut [u8]> {
        let need = record_size(r.len).filter(|_| r.len <= self.max_frame())?;
        let capacity = self.capacity as u64;
        let fits = r.origin == self.core.origin()
            && r.ticket >= self.commit_ticket
            && r.ticket < self.next_ticket
            && r.start >= self.tail
            && r.end <= self.front
            && r.end >= r.start + need as u64;
        if !fits {
            return None;
        }
        let record_pos = r.end - need as u64;
        #[allow(clippy::cast_possible_truncation)] // < capacity
        let record = (record_pos % capacity) as usize;
        if record + need > self.capacity || record + HEADER_SIZE != r.offset {
            return None;
        }
        // SAFETY: the record lies in [tail, front): reserved, unpublished, so the producer's alone,
        // and borrowed mutably from the producer for the slice's life.
        Some(unsafe { self.storage.slice_mut(r.offset, r.len) })
    }

    /// Commits the oldest pending reservation as a frame of `len <= r.capacity()` payload bytes
    /// (its first `len` bytes) with `meta`, and publishes it — with the padding before it, and a
    /// gap for the bytes it did not use.
    ///
    /// # Errors
    /// [`CommitError`] if `r` is not the oldest pending reservation or `len` is too long; then
    /// nothing changes.
    pub fn commit_pending(
        &mut self,
        r: &Reservation,
        len: usize,
        meta: &FrameMeta,
    ) -> Result<(), CommitError> {
        let record = self.check_oldest(r)?;
        if len > r.len {
            return Err(CommitError::TooLong { len, capacity: r.len });
        }
        #[allow(clippy::cast_possible_truncation)] // len <= max_frame < 2^32
        let header = RecordHeader::frame(len as u32, meta);
        // SAFETY: the record is in [tail, front), the producer's (checked above).
        unsafe { self.storage.write_header(record, &header) };
        let used = record_size(len).unwrap_or(HEADER_SIZE);
        let need = record_size(r.len).unwrap_or(HEADER_SIZE);
        self.write_gap(record + used, need - used);
        self.commit_ticket += 1;
        self.tail = r.end;
        self.core.publish_tail(self.tail);
        self.record_stats(len as u64);
        Ok(())
    }

    /// Gives up the oldest pending reservation: no frame. If it is the only one pending, its space
    /// (and the padding before it) is simply reserved no more; otherwise it becomes a gap,
    /// published at once.
    ///
    /// # Errors
    /// [`CommitError`] if `r` is not the oldest pending reservation; then nothing changes.
    pub fn abandon_pending(&mut self, r: &Reservation) -> Result<(), CommitError> {
        let record = self.check_oldest(r)?;
        self.commit_ticket += 1;
        if self.commit_ticket == self.next_ticket {
            // The newest too: give the space back unpublished.
            self.front = self.tail;
            #[allow(clippy::cast_possible_truncation)] // < capacity
            let off = (self.tail % self.capacity as u64) as usize;
            self.write_off = off;
            return Ok(());
        }
        let need = record_size(r.len).unwrap_or(HEADER_SIZE);
        self.write_gap(record, need);
        self.tail = r.end;
        self.core.publish_tail(self.tail);
        Ok(())
    }

    /// Marks `bytes` (a multiple of 8, possibly 0) at `offset` as a gap the consumer skips.
    fn write_gap(&mut self, offset: usize, bytes: usize) {
        if bytes == 0 {
            return;
        }
        #[allow(clippy::cast_possible_truncation)] // bytes < capacity <= MAX_CAPACITY < 2^32
        let marker = SkipMarker { len: bytes as u32, kind: KIND_SKIP };
        // SAFETY: the gap is part of a pending reservation, in [tail, front): the producer's.
        unsafe { self.storage.write_marker(offset, &marker) };
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

    /// Whether the consumer has released everything this producer published: no frame waits, none
    /// is being read or held, and no padding is left to pass. One atomic load, no lock of the
    /// consumer's: a producer that would hand a frame straight to a reader only when the ring is
    /// empty asks this first, and leaves the consumer alone while the answer is no. A stale `head`
    /// only says no when the answer was yes a moment ago (it never says yes too early).
    #[must_use]
    pub fn is_drained(&self) -> bool {
        self.core.load_head() == self.tail
    }

    /// Whether a frame of `len` payload bytes could be reserved now.
    pub fn can_reserve(&mut self, len: usize) -> bool {
        self.reserve(len).is_ok()
    }

    /// Room for new reservations: pending ones count as used.
    #[inline]
    fn free_space(&self, head: u64) -> u64 {
        self.capacity as u64 - (self.front - head)
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
        self.front = 0;
        self.cached_head = 0;
        // Pending reservations are forgotten; their tickets are never valid again.
        self.commit_ticket = self.next_ticket;
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
        producer.front = producer.tail;
        producer.core.publish_tail(producer.tail);
        let end = producer.write_off + need;
        producer.write_off = if end == producer.capacity { 0 } else { end };
        producer.record_stats(len as u64);
    }
}
