//! A source's request slots: the IRP, the stream headers and buffer each request carries, where
//! it stands, and how it ended.

use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use framering::FrameMeta;
use ksabi::{KSSTREAM_HEADER, KSTIME, KsStreamOptions};

use super::{HEADER, HEADERS};
use crate::kernel::outbound::{Headers, Outbound, StreamHeaders};
use crate::kernel::pool::{PoolBox, PoolBuffer};
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
    /// Accounted, with data still to go (a push's refused remainder, a pull's frames not yet in
    /// the ring).
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
    pub(super) headers: StreamHeaders<HEADERS>,
    /// The bytes the headers describe.
    pub(super) data: PoolBuffer,
    /// Where each header's bytes start in `data`.
    pub(super) start: [usize; HEADERS],
    /// Headers in use.
    pub(super) count: usize,
    /// Pull: the first header not yet in the ring, and how much of it is.
    pub(super) next: usize,
    pub(super) offset: usize,
}

impl Headers for PoolBox<SlotIo> {
    fn headers(&mut self) -> *mut core::ffi::c_void {
        self.headers.as_mut_ptr().cast()
    }
}

impl SlotIo {
    /// Header `i` over `n` bytes at `start` of the buffer, with `flags` and the frame's metadata.
    pub(super) fn set(&mut self, i: usize, start: usize, n: usize, flags: u32, meta: &FrameMeta) {
        self.start[i] = start;
        self.headers[i] = KSSTREAM_HEADER {
            Data: self.data.as_mut_ptr().wrapping_add(start).cast(),
            ..header(n, flags, meta)
        };
    }

    /// The bytes header `i` holds (as far as they lie in the buffer).
    pub(super) fn bytes(&self, i: usize) -> &[u8] {
        let start = self.start[i].min(self.data.len());
        let used = (self.headers[i].DataUsed as usize).min(self.data.len() - start);
        &self.data[start..start + used]
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

/// A header with nothing in it.
pub(super) const EMPTY_HEADER: KSSTREAM_HEADER = KSSTREAM_HEADER {
    Size: 0,
    TypeSpecificFlags: 0,
    PresentationTime: KSTIME { Time: 0, Numerator: 0, Denominator: 0 },
    Duration: 0,
    FrameExtent: 0,
    DataUsed: 0,
    Data: core::ptr::null_mut(),
    OptionsFlags: 0,
    Reserved: 0,
};

/// A stream header over `n` bytes with `flags` and the frame's metadata (no buffer yet:
/// [`SlotIo::set`] points it at the slot's).
pub(super) fn header(n: usize, flags: u32, meta: &FrameMeta) -> KSSTREAM_HEADER {
    #[allow(clippy::cast_possible_truncation)] // n <= SLOT_BYTES
    let n = n as u32;
    KSSTREAM_HEADER {
        #[allow(clippy::cast_possible_truncation)] // 56
        Size: HEADER as u32,
        TypeSpecificFlags: meta.type_specific_flags,
        PresentationTime: KSTIME { Time: meta.presentation_time, Numerator: meta.numerator, Denominator: meta.denominator },
        Duration: meta.duration,
        FrameExtent: n,
        DataUsed: n,
        Data: core::ptr::null_mut(),
        OptionsFlags: flags,
        Reserved: 0,
    }
}

/// Fills a free slot with the end-of-stream frame: no data, `ENDOFSTREAM`.
pub(super) fn end_of_stream(io: &mut SlotIo) -> usize {
    io.headers[0] = header(0, KsStreamOptions::ENDOFSTREAM.bits(), &FrameMeta::default());
    io.start[0] = 0;
    1
}
