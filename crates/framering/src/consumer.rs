//! The reading half.

use crate::record::{FrameMeta, HEADER_SIZE, KIND_FRAME, RecordHeader, corrupt_skip, record_size, skip_len};
use crate::ring::{Discarded, walk_discarding};
use crate::ring::{Origin, RingCore};
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
    /// Payload bytes of the current frame already consumed (a partial read) or taken in place.
    taken: usize,
    /// Position of the oldest byte held ([`Consumer::take`] and not yet released), `u64::MAX`
    /// when nothing is held. Every head publication is `min(read_pos, held_from)`, so the
    /// producer never reaches a held byte. Invariant: `held_from == released_pos` while
    /// `released < issued || in_place`, `u64::MAX` otherwise.
    held_from: u64,
    /// Holds handed out by [`Consumer::take`] (the sequence number of the newest).
    issued: u64,
    /// Sequence number of the newest hold released. Invariant: `released <= issued`.
    released: u64,
    /// Position the space is released up to: the newest released hold's, or, when holding began,
    /// the first held byte's. Invariant while holding: `head <= released_pos <= hold_end`.
    released_pos: u64,
    /// Position the newest hold handed out frees up to. Invariant: `hold_end <= read_pos`.
    hold_end: u64,
    /// Whether parts of the frame at `read_pos` were taken in place: its record stays held until
    /// the frame is finished (by a take or a read) and the holds of those parts are released.
    in_place: bool,
}

/// Where a part of a frame taken in place by [`Consumer::take`] lies, and the hold that keeps it
/// there. A plain value: it borrows nothing, so its owner may keep it across time (e.g. inside a
/// request whose MDL names the bytes) and give the hold back with [`Consumer::release_held`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    offset: usize,
    len: usize,
    /// Position of the first byte.
    at: u64,
    meta: FrameMeta,
    start: bool,
    more: bool,
    hold: Hold,
}

impl Taken {
    /// Offset of the part's first byte from the start of the ring's storage.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Bytes in this part (contiguous: `offset()..offset() + len()`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the part is empty (an empty frame, or a take with `max` 0).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The frame's metadata.
    #[must_use]
    pub fn meta(&self) -> FrameMeta {
        self.meta
    }

    /// Whether this part begins the frame (no earlier take or read consumed any of it).
    #[must_use]
    pub fn is_start(&self) -> bool {
        self.start
    }

    /// Whether more of the frame follows this part.
    #[must_use]
    pub fn has_more(&self) -> bool {
        self.more
    }

    /// The hold to give back to [`Consumer::release_held`] once the bytes are no longer used.
    #[must_use]
    pub fn hold(&self) -> Hold {
        self.hold
    }
}

/// A consumer's claim on space taken in place, up to a position. Holds are released in the order
/// they were taken; releasing one frees the space taken since the previous one's release — its own
/// part's space if that part finished its frame (the space of a frame taken in several parts is
/// freed by the hold of its last part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Sequence number among the holds handed out (from 1).
    seq: u64,
    /// Position up to which space may be freed once this hold is released.
    pos: u64,
    /// The core and split it was taken in: sequence numbers restart with each split, and
    /// positions line up easily, so neither tells where a hold comes from.
    origin: Origin,
}

/// Why [`Consumer::release_held`] refused a hold (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseError {
    /// This hold was released already (or a reset forgot it).
    AlreadyReleased,
    /// This consumer never handed out the hold (it comes from another ring, or from an earlier
    /// split of this one).
    NotTaken,
    /// An earlier hold is still outstanding: release that one first. Its bytes, and this one's,
    /// may still be in use (a request completing before an earlier one); freeing this hold's
    /// space would free theirs too, as space is freed in order.
    OutOfOrder,
}

// SAFETY: the consumer only touches the filled region of the storage and the atomics it owns; it
// can move to another thread.
unsafe impl Send for Consumer<'_> {}

impl<'a> Consumer<'a> {
    pub(crate) fn new(core: &'a RingCore, storage: Storage<'a>, capacity: usize) -> Self {
        Self {
            core,
            storage,
            capacity,
            read_off: 0,
            read_pos: 0,
            cached_tail: 0,
            taken: 0,
            held_from: u64::MAX,
            issued: 0,
            released: 0,
            released_pos: 0,
            hold_end: 0,
            in_place: false,
        }
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

    /// Passes over padding (and gaps) at the head and publishes its space; `true` if that gave
    /// the producer any space. A producer whose reserve published padding and then found the start
    /// of the storage still occupied gets [`crate::ReserveError::Full`], and that padding is freed
    /// only when the consumer looks — which a reader that already found the ring empty may never
    /// do again. Such a producer (or its owner) calls this, then reserves again if it returned
    /// `true`.
    ///
    /// While the consumer holds space ([`Consumer::take`]), padding behind the held space is
    /// passed but not published (space is freed in order): `false` then, and the space comes
    /// with the release of the holds.
    pub fn pass_padding(&mut self) -> bool {
        let before = self.read_pos.min(self.held_from);
        let _ = self.next_frame();
        self.read_pos.min(self.held_from) != before
    }

    /// Finds the next frame record, skipping padding and gaps. Returns its offset and header.
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
                // Too short for a header: implicit padding, or a gap, as far as it is published.
                let step = self.published_before_end(to_end);
                self.skip_padding(step);
                continue;
            }
            // SAFETY: read_pos < tail (Acquire-loaded), so this record's first 8 bytes were
            // published (a gap is at least 8 bytes).
            let marker = unsafe { self.storage.read_marker(self.read_off) };
            if marker.kind == KIND_FRAME {
                // SAFETY: a frame's whole header was published with its marker.
                let meta = unsafe { self.storage.read_meta(self.read_off) };
                return Some((self.read_off, RecordHeader { marker, meta }));
            }
            let published = self.cached_tail - self.read_pos;
            let step = skip_len(marker, to_end, published)
                .unwrap_or_else(|| corrupt_skip(marker, to_end, published));
            self.skip_padding(step);
        }
    }

    /// Of the `to_end` bytes before the end of the storage (fewer than a header, so no record
    /// starts in them), those already published.
    #[inline]
    fn published_before_end(&self, to_end: usize) -> usize {
        #[allow(clippy::cast_possible_truncation)] // <= to_end
        let published = (self.cached_tail - self.read_pos).min(to_end as u64) as usize;
        published
    }

    #[inline]
    fn advance(&mut self, bytes: usize) {
        self.read_pos += bytes as u64;
        self.read_off = if self.read_off + bytes == self.capacity { 0 } else { self.read_off + bytes };
    }

    /// Publishes what the consumer is done with: up to `read_pos`, but never past a held byte.
    #[inline]
    fn publish(&self) {
        self.core.publish_head(self.read_pos.min(self.held_from));
    }

    /// Passes over padding and publishes it at once: the producer may be waiting for exactly that
    /// space (it publishes padding before the frame that follows exists). Once per lap.
    fn skip_padding(&mut self, bytes: usize) {
        self.advance(bytes);
        self.publish();
    }

    /// Finishes the current frame and publishes the freed space — including padding and gaps right
    /// behind it that are already known to be published (no extra atomic load), so a producer
    /// waiting to wrap can go on without another `read`.
    #[inline]
    fn release(&mut self, header: &RecordHeader) {
        let size = record_size(header.payload_len()).unwrap_or(HEADER_SIZE);
        self.advance(size);
        self.finish_frame();
        while self.read_pos < self.cached_tail {
            let to_end = self.capacity - self.read_off;
            let step = if to_end < HEADER_SIZE {
                self.published_before_end(to_end)
            } else {
                // SAFETY: read_pos < tail, so this record's first 8 bytes were published.
                let marker = unsafe { self.storage.read_marker(self.read_off) };
                if marker.kind == KIND_FRAME {
                    break;
                }
                let published = self.cached_tail - self.read_pos;
                skip_len(marker, to_end, published).unwrap_or_else(|| corrupt_skip(marker, to_end, published))
            };
            self.advance(step);
        }
        self.publish();
    }

    /// The frame at `read_pos` is done (the position is already past it).
    #[inline]
    fn finish_frame(&mut self) {
        self.taken = 0;
        // `in_place` implies holding, so one test serves the path that holds nothing.
        if self.held_from != u64::MAX {
            self.in_place = false;
            self.settle_hold();
        }
    }

    /// Recomputes `held_from` from the holds.
    fn settle_hold(&mut self) {
        self.held_from =
            if self.released < self.issued || self.in_place { self.released_pos } else { u64::MAX };
    }

    /// Takes the oldest frame — or its next part, at most `max` bytes — **in place**: returns where
    /// the bytes lie in the storage (with the frame's metadata, whether the part starts the frame,
    /// whether more of it follows, and a [`Hold`]), moves the read position past them, and keeps
    /// their space from the producer until the hold is given back to
    /// [`Consumer::release_held`]. `None` if the ring is empty.
    ///
    /// The statistics count the part at the take (`bytes_out`, and `frames_out` with the last
    /// part), as [`ReadGrant::consume`] does — not at the release.
    ///
    /// Takes, reads and consumes may be mixed, in order: a frame may be started by one and
    /// finished by the other. Space is always freed in order, so a frame read normally behind
    /// held space is freed with that space.
    pub fn take(&mut self, max: usize) -> Option<Taken> {
        let (offset, header) = self.next_frame()?;
        let frame_len = header.payload_len();
        let n = max.min(frame_len - self.taken);
        let start = self.taken == 0;
        let at = self.read_pos + (HEADER_SIZE + self.taken) as u64;
        let part = offset + HEADER_SIZE + self.taken;
        if self.held_from == u64::MAX {
            // Holding begins: the head was published up to here.
            self.released_pos = self.read_pos;
        }
        self.taken += n;
        let more = self.taken < frame_len;
        self.core.count_out(n as u64, u64::from(!more));
        let pos = if more {
            self.in_place = true;
            self.read_pos
        } else {
            self.advance(record_size(frame_len).unwrap_or(HEADER_SIZE));
            self.taken = 0;
            self.in_place = false;
            self.read_pos
        };
        self.issued += 1;
        self.hold_end = pos;
        self.held_from = self.released_pos;
        Some(Taken {
            offset: part,
            len: n,
            at,
            meta: header.meta,
            start,
            more,
            hold: Hold { seq: self.issued, pos, origin: self.core.origin() },
        })
    }

    /// Gives back a hold of [`Consumer::take`]: frees the space taken up to it (its own part's
    /// frame if that part was the frame's last, and whatever was read normally behind the earlier
    /// holds), and publishes it to the producer.
    ///
    /// Holds are released **in the order they were taken**, each one: space is freed in order, so
    /// releasing a later hold first would free the earlier ones' bytes too, which their owners may
    /// still be using (requests complete out of order). Such a release is refused
    /// ([`ReleaseError::OutOfOrder`]); an owner whose requests complete out of order keeps the
    /// completed holds until the earlier ones are released.
    ///
    /// # Errors
    /// [`ReleaseError::AlreadyReleased`] for a hold released already (or forgotten by a reset);
    /// [`ReleaseError::OutOfOrder`] while an earlier hold is outstanding;
    /// [`ReleaseError::NotTaken`] for one this consumer never handed out (another ring's, or an
    /// earlier split's). Nothing changes then.
    pub fn release_held(&mut self, hold: Hold) -> Result<(), ReleaseError> {
        if hold.origin != self.core.origin() {
            return Err(ReleaseError::NotTaken);
        }
        if hold.seq <= self.released {
            return Err(ReleaseError::AlreadyReleased);
        }
        if hold.seq > self.issued || hold.pos < self.released_pos || hold.pos > self.hold_end {
            return Err(ReleaseError::NotTaken);
        }
        if hold.seq != self.released + 1 {
            return Err(ReleaseError::OutOfOrder);
        }
        self.released = hold.seq;
        self.released_pos = hold.pos;
        self.settle_hold();
        self.publish();
        Ok(())
    }

    /// Whether any space is held (taken in place and not released).
    #[must_use]
    pub fn is_holding(&self) -> bool {
        self.held_from != u64::MAX
    }

    /// The bytes of a part taken in place, while they are still held (`None` once released, or
    /// for a part this consumer did not hand out). For owners that read the bytes from safe code.
    #[must_use]
    pub fn held_payload(&self, part: &Taken) -> Option<&[u8]> {
        // Bytes in [held_from, limit) are published, and the producer cannot reach them.
        let limit = self.read_pos
            + if self.taken == 0 && !self.in_place { 0 } else { (HEADER_SIZE + self.taken) as u64 };
        let end = part.at.checked_add(part.len as u64)?;
        if part.hold.origin != self.core.origin()
            || self.held_from == u64::MAX
            || part.hold.seq <= self.released
            || part.hold.seq > self.issued
            || part.at < self.held_from
            || end > limit
        {
            return None;
        }
        if part.len == 0 {
            // Nothing to read (an empty frame's part may lie at the very end of the storage).
            return Some(&[]);
        }
        #[allow(clippy::cast_possible_truncation)] // < capacity
        let offset = (part.at % self.capacity as u64) as usize;
        if offset != part.offset || offset + part.len > self.capacity {
            return None;
        }
        // SAFETY: the range is in bounds and in [head, tail): published, and held from the producer
        // (head <= held_from) while the consumer is borrowed.
        Some(unsafe { self.storage.slice(offset, part.len) })
    }

    /// Discards every frame not yet taken or read — the rest of a frame partly taken included —
    /// and counts them as a reset does ([`RingStats::discarded_frames`]), leaving held space
    /// alone: its holds stay valid and free it as usual. For a consumer that holds space where it
    /// would otherwise [`reset`](crate::reset) (which forgets holds). Frames the producer
    /// publishes meanwhile may or may not be discarded.
    ///
    /// [`RingStats::discarded_frames`]: crate::RingStats::discarded_frames
    pub fn drain(&mut self) -> Discarded {
        self.cached_tail = self.core.load_tail();
        let (discarded, off) = walk_discarding(
            &self.storage,
            self.capacity,
            (self.read_pos, self.read_off),
            self.cached_tail,
            self.taken,
        );
        self.read_pos = self.cached_tail;
        self.read_off = off;
        self.finish_frame();
        self.publish();
        self.core.count_discarded(discarded);
        discarded
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
        // Holds are forgotten: every one handed out counts as released.
        self.released = self.issued;
        self.released_pos = 0;
        self.hold_end = 0;
        self.in_place = false;
        self.held_from = u64::MAX;
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
        self.header.meta
    }

    /// Payload bytes of the whole frame.
    #[must_use]
    #[inline]
    pub fn frame_len(&self) -> usize {
        self.header.payload_len()
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
