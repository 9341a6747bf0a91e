//! The shared control block and how a ring is set up, observed and reset.

use core::ptr::NonNull;

use crate::consumer::Consumer;
use crate::producer::Producer;
use crate::record::{HEADER_SIZE, KIND_FRAME, RECORD_ALIGN, corrupt_skip, record_size, skip_len};
use crate::storage::Storage;
use crate::sync::{AtomicU64, Ordering};

/// Where a [`crate::Reservation`] or a [`crate::Hold`] was handed out: a core's address and the
/// number of its split. A plain value (no pointer), so the values that carry it stay `Send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    core: usize,
    split: u64,
}

/// Hands out split numbers: each split of any core gets a new one, so a core freed and another
/// placed at the same address (a stack slot used again, a pool block reallocated) never repeats
/// an earlier split's number. Not part of the ring's protocol (only a split, under `&mut`, touches
/// it), so it is `core`'s atomic in the loom build too.
static SPLITS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

fn next_split() -> u64 {
    SPLITS.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
}

/// Smallest storage a ring accepts.
pub const MIN_CAPACITY: usize = 4096;
/// Largest storage a ring accepts (frame lengths are 32-bit).
pub const MAX_CAPACITY: usize = 1 << 30;

/// Keeps what it wraps on its own cache line pair (128 bytes: adjacent-line prefetch on x86).
#[repr(C, align(128))]
struct CachePadded<T>(T);

/// The producer's published position: alone on its cache lines, because the consumer reads it.
#[repr(C)]
struct ProducerShared {
    /// Bytes of records and padding the producer has published since the ring was split or reset.
    /// Invariant: `head <= tail <= head + capacity`. Written only by the producer, with Release,
    /// after the bytes it newly covers are written; the consumer loads it with Acquire before it
    /// reads those bytes.
    tail: AtomicU64,
}

/// The producer's counters: on their own cache lines, which only the producer writes and only
/// [`RingCore::stats`] reads, so counting costs the consumer nothing.
#[repr(C)]
struct ProducerStats {
    /// Frames committed (Relaxed, single writer).
    frames_in: AtomicU64,
    /// Payload bytes committed (Relaxed, single writer).
    bytes_in: AtomicU64,
    /// The highest fill measured right after a commit (Relaxed, single writer). Only exact
    /// measurements are stored; see `Producer::record_stats` for when one is taken.
    high_water: AtomicU64,
}

/// The consumer's published position: alone on its cache lines, because the producer reads it.
#[repr(C)]
struct ConsumerShared {
    /// Bytes the consumer is done with. Written only by the consumer, with Release, after its last
    /// read of those bytes; the producer loads it with Acquire before it overwrites them. Never
    /// past the oldest byte the consumer holds ([`Consumer::take`]): held bytes stay in
    /// `[head, tail)`, out of the producer's reach, until [`Consumer::release_held`].
    head: AtomicU64,
}

/// The consumer's counters (only the consumer writes them).
#[repr(C)]
struct ConsumerStats {
    /// Frames fully consumed (Relaxed, single writer). A frame taken in place counts when its last
    /// part is taken, not when it is released.
    frames_out: AtomicU64,
    /// Payload bytes consumed, partial reads and in-place takes included, counted when read or
    /// taken (Relaxed, single writer).
    bytes_out: AtomicU64,
}

/// Written only by [`reset`] and [`Consumer::drain`], both of which hold the consumer exclusively
/// (`&mut`), so there is one writer at a time (a load and a store, no read-modify-write).
#[repr(C)]
struct ResetShared {
    /// Frames thrown away by resets and drains.
    discarded_frames: AtomicU64,
    /// Payload bytes thrown away by resets and drains.
    discarded_bytes: AtomicU64,
}

/// The ring's control block: the two published positions and the statistics, each half on its own
/// cache lines. It lives wherever the owner puts it (a `Box`, a static, the head of a pool
/// allocation); the frames live in separate storage given to [`RingCore::split`].
#[repr(C)]
pub struct RingCore {
    producer: CachePadded<ProducerShared>,
    consumer: CachePadded<ConsumerShared>,
    producer_stats: CachePadded<ProducerStats>,
    consumer_stats: CachePadded<ConsumerStats>,
    reset: CachePadded<ResetShared>,
    /// Storage bytes, fixed at split.
    capacity: u64,
    /// Which split the halves come from: a number no split of any core in this program had
    /// before ([`next_split`]), set by each split (under `&mut self`) and kept by [`reset`]. A
    /// [`crate::Reservation`] and a [`crate::Hold`] carry it with the core's address, and the
    /// halves refuse one that does not carry theirs: tickets and hold numbers restart with each
    /// split, and positions line up easily, so neither tells where a value comes from.
    split: u64,
    #[cfg(loom)]
    tracks: std::vec::Vec<loom::cell::UnsafeCell<()>>,
}

/// Why storage was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The storage does not start on an 8-byte boundary.
    Misaligned {
        /// The alignment needed ([`RECORD_ALIGN`]).
        required: usize,
    },
    /// The length is out of range or not a multiple of 8.
    BadCapacity {
        /// The length given.
        len: usize,
    },
}

/// A snapshot of the counters. Each value is read atomically; together they are a best-effort view
/// (the halves keep moving while it is taken).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Storage bytes.
    pub capacity: u64,
    /// Bytes in use now (records, headers, padding, and space the consumer holds).
    pub used: u64,
    /// Frames committed.
    pub frames_in: u64,
    /// Payload bytes committed.
    pub bytes_in: u64,
    /// Frames fully consumed (a frame taken in place counts when its last part is taken).
    pub frames_out: u64,
    /// Payload bytes consumed (taken in place included, counted at the take, not the release).
    pub bytes_out: u64,
    /// Highest fill measured right after a commit (bytes). Never above the true peak; at most
    /// `capacity / 16` below it (measuring every commit would cost a cross-core load per frame).
    pub high_water: u64,
    /// Frames discarded by resets and drains.
    pub discarded_frames: u64,
    /// Payload bytes discarded by resets and drains.
    pub discarded_bytes: u64,
}

/// What a reset or a drain threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Discarded {
    /// Frames (a partly consumed frame counts once).
    pub frames: u64,
    /// Payload bytes not yet consumed.
    pub bytes: u64,
}

/// [`reset`] was given halves of two different rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotSameRing;

impl RingCore {
    /// A control block for a ring not yet split.
    #[cfg(not(loom))]
    #[must_use]
    pub const fn new() -> Self {
        Self {
            producer: CachePadded(ProducerShared { tail: AtomicU64::new(0) }),
            consumer: CachePadded(ConsumerShared { head: AtomicU64::new(0) }),
            producer_stats: CachePadded(ProducerStats {
                frames_in: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                high_water: AtomicU64::new(0),
            }),
            consumer_stats: CachePadded(ConsumerStats {
                frames_out: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
            }),
            reset: CachePadded(ResetShared {
                discarded_frames: AtomicU64::new(0),
                discarded_bytes: AtomicU64::new(0),
            }),
            capacity: 0,
            split: 0,
        }
    }

    /// A control block for a ring not yet split (loom build: not `const`).
    #[cfg(loom)]
    #[must_use]
    pub fn new() -> Self {
        Self {
            producer: CachePadded(ProducerShared { tail: AtomicU64::new(0) }),
            consumer: CachePadded(ConsumerShared { head: AtomicU64::new(0) }),
            producer_stats: CachePadded(ProducerStats {
                frames_in: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
                high_water: AtomicU64::new(0),
            }),
            consumer_stats: CachePadded(ConsumerStats {
                frames_out: AtomicU64::new(0),
                bytes_out: AtomicU64::new(0),
            }),
            reset: CachePadded(ResetShared {
                discarded_frames: AtomicU64::new(0),
                discarded_bytes: AtomicU64::new(0),
            }),
            capacity: 0,
            split: 0,
            tracks: std::vec::Vec::new(),
        }
    }

    /// Splits a ring over `storage` into its producer and consumer halves.
    ///
    /// The storage must start on an 8-byte boundary ([`RECORD_ALIGN`]) and be a multiple of 8 bytes
    /// between [`MIN_CAPACITY`] and [`MAX_CAPACITY`]. Any previous contents and counters are cleared,
    /// and the reservations and holds of earlier splits are refused by the new halves (each split
    /// has a number of its own, kept by [`reset`]).
    ///
    /// # Errors
    /// [`RingError`] if the storage is misaligned or its length is out of range.
    pub fn split<'a>(&'a mut self, storage: &'a mut [u8]) -> Result<(Producer<'a>, Consumer<'a>), RingError> {
        let len = storage.len();
        // SAFETY: the slice is valid, initialised and exclusively borrowed for 'a.
        unsafe { self.split_raw(NonNull::from(storage).cast(), len) }
    }

    /// [`RingCore::split`] over raw storage (e.g. non-paged pool in a driver).
    ///
    /// # Safety
    /// `storage..storage+len` must be valid for reads and writes, initialised (zero-filled pool is),
    /// and used by nothing else for `'a`.
    ///
    /// # Errors
    /// [`RingError`] if the storage is misaligned or its length is out of range.
    pub unsafe fn split_raw<'a>(
        &'a mut self,
        storage: NonNull<u8>,
        len: usize,
    ) -> Result<(Producer<'a>, Consumer<'a>), RingError> {
        if !storage.as_ptr().addr().is_multiple_of(RECORD_ALIGN) {
            return Err(RingError::Misaligned { required: RECORD_ALIGN });
        }
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&len) || !len.is_multiple_of(RECORD_ALIGN) {
            return Err(RingError::BadCapacity { len });
        }
        self.capacity = len as u64;
        self.split = next_split();
        for counter in [
            &self.producer.0.tail,
            &self.producer_stats.0.frames_in,
            &self.producer_stats.0.bytes_in,
            &self.producer_stats.0.high_water,
            &self.consumer.0.head,
            &self.consumer_stats.0.frames_out,
            &self.consumer_stats.0.bytes_out,
            &self.reset.0.discarded_frames,
            &self.reset.0.discarded_bytes,
        ] {
            // `&mut self`: nothing else can observe the core during the split.
            counter.store(0, Ordering::Relaxed);
        }
        #[cfg(loom)]
        {
            self.tracks = (0..len / RECORD_ALIGN).map(|_| loom::cell::UnsafeCell::new(())).collect();
        }
        let this: &'a Self = self;
        // SAFETY: the caller guarantees the storage for 'a; the two halves share it under the
        // protocol documented in `storage`.
        let storage = unsafe {
            Storage::new(
                storage,
                len,
                #[cfg(loom)]
                &this.tracks,
            )
        };
        Ok((Producer::new(this, storage, len), Consumer::new(this, storage, len)))
    }

    /// Storage bytes (0 before the first split).
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Where a reservation or a hold comes from: this core's address and its current split.
    #[inline]
    pub(crate) fn origin(&self) -> Origin {
        Origin { core: core::ptr::from_ref(self).addr(), split: self.split }
    }

    /// A snapshot of the counters, from any thread.
    #[must_use]
    pub fn stats(&self) -> RingStats {
        // head first: tail only grows, so a later tail is never behind it.
        let head = self.consumer.0.head.load(Ordering::Acquire);
        let tail = self.producer.0.tail.load(Ordering::Acquire);
        RingStats {
            capacity: self.capacity,
            used: tail.saturating_sub(head),
            frames_in: self.producer_stats.0.frames_in.load(Ordering::Relaxed),
            bytes_in: self.producer_stats.0.bytes_in.load(Ordering::Relaxed),
            frames_out: self.consumer_stats.0.frames_out.load(Ordering::Relaxed),
            bytes_out: self.consumer_stats.0.bytes_out.load(Ordering::Relaxed),
            high_water: self.producer_stats.0.high_water.load(Ordering::Relaxed),
            discarded_frames: self.reset.0.discarded_frames.load(Ordering::Relaxed),
            discarded_bytes: self.reset.0.discarded_bytes.load(Ordering::Relaxed),
        }
    }

    // ---- accessors for the halves -------------------------------------------------------------

    #[inline]
    pub(crate) fn load_tail(&self) -> u64 {
        self.producer.0.tail.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn publish_tail(&self, tail: u64) {
        self.producer.0.tail.store(tail, Ordering::Release);
    }

    #[inline]
    pub(crate) fn load_head(&self) -> u64 {
        self.consumer.0.head.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn publish_head(&self, head: u64) {
        self.consumer.0.head.store(head, Ordering::Release);
    }

    /// Adds to a counter only its half writes: a load and a store, no read-modify-write.
    #[inline]
    fn bump(counter: &AtomicU64, by: u64) {
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(by), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn high_water(&self) -> u64 {
        self.producer_stats.0.high_water.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn count_in(&self, payload: u64) {
        Self::bump(&self.producer_stats.0.frames_in, 1);
        Self::bump(&self.producer_stats.0.bytes_in, payload);
    }

    #[inline]
    pub(crate) fn raise_high_water(&self, used: u64) {
        if used > self.high_water() {
            self.producer_stats.0.high_water.store(used, Ordering::Relaxed);
        }
    }

    /// Adds to the discard counters (only [`reset`] and [`Consumer::drain`], each holding the
    /// consumer exclusively, call it).
    pub(crate) fn count_discarded(&self, discarded: Discarded) {
        Self::bump(&self.reset.0.discarded_frames, discarded.frames);
        Self::bump(&self.reset.0.discarded_bytes, discarded.bytes);
    }

    #[inline]
    pub(crate) fn count_out(&self, payload: u64, frames: u64) {
        Self::bump(&self.consumer_stats.0.bytes_out, payload);
        if frames != 0 {
            Self::bump(&self.consumer_stats.0.frames_out, frames);
        }
    }
}

impl Default for RingCore {
    fn default() -> Self {
        Self::new()
    }
}

/// Empties the ring: for the owner that holds both halves (e.g. a pin going to STOP). Returns what
/// was thrown away; both halves then start again at the beginning of the storage.
///
/// A reset also forgets the producer's pending reservations ([`Producer::reserve_pending`]) and
/// the consumer's held space ([`Consumer::take`]): their tickets and holds are refused afterwards,
/// and their bytes may be written again at once. An owner whose requests still use such bytes
/// must wait for them first — or, on the consumer's side, call [`Consumer::drain`] instead, which
/// leaves held space alone.
///
/// # Errors
/// [`NotSameRing`] if the halves come from different rings (nothing is changed).
pub fn reset(producer: &mut Producer<'_>, consumer: &mut Consumer<'_>) -> Result<Discarded, NotSameRing> {
    if !core::ptr::eq(producer.core(), consumer.core()) {
        return Err(NotSameRing);
    }
    let core = producer.ring_core();
    let (pos, off) = consumer.position();
    let (discarded, _) = walk_discarding(
        &producer.storage(),
        producer.capacity(),
        (pos, off),
        producer.published_tail(),
        consumer.taken(),
    );
    producer.restart();
    consumer.restart();
    core.publish_tail(0);
    core.publish_head(0);
    core.count_discarded(discarded);
    Ok(discarded)
}

/// Walks the published records from `(pos, off)` (a position and its offset) to `tail`, counting
/// the frames (the first less `taken` bytes already consumed). Returns the count and the offset of
/// `tail`. Used by [`reset`] and [`Consumer::drain`].
pub(crate) fn walk_discarding(
    storage: &Storage<'_>,
    capacity: usize,
    (mut pos, mut off): (u64, usize),
    tail: u64,
    taken: usize,
) -> (Discarded, usize) {
    let mut discarded = Discarded::default();
    let mut first = true;
    while pos < tail {
        let to_end = capacity - off;
        let step = if to_end < HEADER_SIZE {
            // No record starts here; pass what is published of it (a gap may end before the end).
            #[allow(clippy::cast_possible_truncation)] // < to_end
            let published = (tail - pos).min(to_end as u64) as usize;
            published
        } else {
            // SAFETY: the caller holds the consumer exclusively and pos < tail: published bytes.
            let marker = unsafe { storage.read_marker(off) };
            if marker.kind == KIND_FRAME {
                let len = u64::from(marker.len);
                let taken = if first { taken as u64 } else { 0 };
                discarded.frames += 1;
                discarded.bytes += len - taken;
                record_size(marker.len as usize).unwrap_or(to_end)
            } else {
                skip_len(marker, to_end, tail - pos)
                    .unwrap_or_else(|| corrupt_skip(marker, to_end, tail - pos))
            }
        };
        first = false;
        pos += step as u64;
        off = if off + step == capacity { 0 } else { off + step };
    }
    (discarded, off)
}
