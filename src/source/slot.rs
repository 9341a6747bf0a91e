//! A source's request slots: the IRP, the stream headers and buffer each request carries, where
//! it stands, and how it ended.

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use framering::{FrameMeta, Hold, Reservation};
use ksabi::KsStreamOptions;

use super::HEADERS;
use crate::kernel::outbound::{Lend, Outbound, StreamBuffers};
use crate::kernel::pool::PoolBox;
use crate::kernel::sync::Exclusive;

/// Where a request slot stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum SlotState {
    /// Unused: the work routine may fill and send it.
    Free,
    /// Sent: its buffers are the target's until it completes.
    InFlight,
    /// Completed, not yet accounted by the work routine.
    Done,
    /// Accounted, with data still to go (a push's refused remainder; a pull's frames not yet
    /// committed: an older read is not back, or the input does not run).
    Held,
}

/// A [`SlotState`] shared between the work routine and the slot's completion.
pub(super) struct AtomicSlotState(AtomicU32);

impl AtomicSlotState {
    pub(super) const fn new() -> Self {
        Self(AtomicU32::new(SlotState::Free as u32))
    }

    pub(super) fn load(&self) -> SlotState {
        match self.0.load(Ordering::SeqCst) {
            1 => SlotState::InFlight,
            2 => SlotState::Done,
            3 => SlotState::Held,
            _ => SlotState::Free,
        }
    }

    pub(super) fn store(&self, state: SlotState) {
        self.0.store(state as u32, Ordering::SeqCst);
    }
}

/// A request's buffers and bookkeeping: the work routine's between sends, the target's while in
/// flight (lent to the request).
pub(super) struct SlotIo {
    /// The headers, naming the ring's storage.
    pub(super) buffers: StreamBuffers<HEADERS>,
    /// Push: the holds on the ring space of the frame parts this slot sends in place, in the
    /// order they were taken (one per header as first sent); released in that order, after every
    /// earlier slot's ([`super::Source::release_holds`]).
    pub(super) holds: Holds,
    /// Pull: the ring space this slot's read headers name, one reservation per header, committed
    /// (or abandoned) in the order they were made ([`super::Source::settle_reservations`]).
    pub(super) reserved: Reserved,
    /// Pull, a lent read ([`super::lend`]): how many headers its request over the client's buffers
    /// has (in `buffers`' array, [`StreamBuffers::foreign_headers`]; the upstream filter fills
    /// them in).
    pub(super) hop_count: usize,
}

/// A pull slot's reservations in its filter's ring: `count` of them, the first `settled`
/// committed or abandoned. Invariant: `settled <= count <= HEADERS`.
#[derive(Default)]
pub(super) struct Reserved {
    pub(super) list: [Option<Reservation>; HEADERS],
    pub(super) count: usize,
    pub(super) settled: usize,
}

impl Reserved {
    /// Whether every reservation made has been committed or abandoned (the slot may reserve anew).
    pub(super) fn settled(&self) -> bool {
        self.settled == self.count
    }

    /// The next reservation to settle, if any: taken out of the list and counted settled.
    pub(super) fn next(&mut self) -> Option<Reservation> {
        if self.settled >= self.count {
            return None;
        }
        let r = self.list.get_mut(self.settled).and_then(Option::take);
        self.settled += 1;
        r
    }

    /// Adds one (`false`, nothing changed, if the list is full).
    pub(super) fn add(&mut self, r: Reservation) -> bool {
        let Some(entry) = self.list.get_mut(self.count) else { return false };
        *entry = Some(r);
        self.count += 1;
        true
    }

    /// Starts over (only once settled).
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}

/// A slot's holds on its ring's space: `taken` of them, the first `done` finished (their bytes
/// accepted by the sink, or dropped), the first `released` given back to the ring.
/// Invariant: `released <= done <= taken <= HEADERS`.
#[derive(Default)]
pub(super) struct Holds {
    pub(super) list: [Option<Hold>; HEADERS],
    pub(super) taken: usize,
    pub(super) done: usize,
    pub(super) released: usize,
}

impl Holds {
    /// Whether every hold taken has been given back (the slot may take new ones).
    pub(super) fn settled(&self) -> bool {
        self.released == self.taken
    }

    /// Starts over (only once settled).
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}

impl Lend<HEADERS> for PoolBox<SlotIo> {
    fn stream_buffers(&mut self) -> &mut StreamBuffers<HEADERS> {
        &mut self.buffers
    }
}

/// One request: its IRP, its buffers (a pool block of their own: a kernel stack has no room to
/// build four of them in place), where it stands and how it ended.
pub(super) struct Slot {
    pub(super) request: Outbound<PoolBox<SlotIo>>,
    pub(super) io: Exclusive<PoolBox<SlotIo>>,
    pub(super) state: AtomicSlotState,
    pub(super) status: AtomicI32,
    pub(super) information: AtomicUsize,
    /// Order of sending (and, for pulls, of handing data to the ring).
    pub(super) seq: AtomicU64,
}

/// Fills a free slot with the end-of-stream frame: no data, `ENDOFSTREAM`.
pub(super) fn end_of_stream(io: &mut SlotIo) -> usize {
    // Header 0 exists (HEADERS > 0).
    let set = io.buffers.set_empty(0, KsStreamOptions::ENDOFSTREAM.bits(), &FrameMeta::default());
    debug_assert!(set.is_ok());
    1
}
