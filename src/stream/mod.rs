//! The stream path: `IOCTL_KS_WRITE_STREAM` on the input pin puts frames into the filter's ring,
//! `IOCTL_KS_READ_STREAM` on the output pin takes them out (DESIGN.md §3).
//!
//! Every stream IRP is probed by `KsProbeStreamIrp`, marked pending and queued on its pin's KS
//! cancel-safe queue; then [`pump`] moves whatever can move. A pump runs on whichever thread made
//! progress possible (a new IRP, a state change, the other side freeing room or adding data), so
//! a pending IRP completes as soon as the other side moves. Nothing on this path allocates.
//!
//! - A write header becomes one frame of `DataUsed` bytes with its metadata (`OptionsFlags`,
//!   `TypeSpecificFlags`, presentation time, duration). A frame larger than [`piece_limit`] goes
//!   into the ring in parts, all but the last marked [`KSRING_OPTIONSF_CONTINUES`].
//! - A read header receives one frame, or as much of it as `FrameExtent` holds; the rest follows
//!   in the next header, the part marked `CONTINUES`. A read completes when all its headers are
//!   filled or the ring has nothing more; `Information` is the bytes of the headers filled.
//! - When a read is waiting and the ring is empty, a write's data goes straight into the read's
//!   buffer: one copy instead of two.
//! - A filter between two IRP sources (its input written by another filter's push source, its
//!   output read by another's pull source) *passes large frames through*: a frame of at least
//!   [`write::PASS_THROUGH_MIN`] bytes that no read can take now waits in its write — its bytes
//!   stay in the upstream ring, held by that source — for a read to take it straight into the
//!   downstream ring. One copy between three rings; this filter's ring stays empty, and the chain
//!   buffers in its neighbours'.
//! - A filter whose input is a pull source lends it the oldest read while its ring is empty
//!   ([`lend_read`]): the upstream filter fills the client's buffers directly. While a read is lent
//!   the pump gives later reads nothing, not even the end of the stream, until the source gives it
//!   back ([`lent_read_given_back`]).
//! - A write's `Information` is the bytes accepted; a cancelled write keeps it (those bytes are in
//!   the ring and will be read). A cancelled read that already holds frames completes with
//!   success, so no data is lost to a cancel.
//! - With the input pin closed and the ring drained, a read gets a header with `DataUsed` 0 and
//!   `KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM`.
//!
//! Lost wake-ups: each side bumps its queue's count (`SeqCst`) before looking at the ring, and each
//! pump issues a `SeqCst` fence between moving data and looking at the other side's count, so of a
//! writer that adds data and a reader that adds an IRP, at least one sees the other.

mod read;
mod write;

use core::sync::atomic::{AtomicBool, Ordering, fence};

use framering::HEADER_SIZE;
use ksabi::{
    KSSTATE_STOP, KsStreamOptions, NTSTATUS, STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_FILE_CLOSED,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_PENDING,
    STATUS_SUCCESS,
};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

pub use crate::kernel::stream::Direction;
pub use read::{Lendable, given_back as lent_read_given_back, lend as lend_read};
pub use write::meta_of;

use crate::filter::Filter;
use crate::kernel::irp::Irp;
use crate::kernel::object::{FileRef, Object};
use crate::kernel::stream::{Acquired, Completions, PumpKey, StreamIrp, StreamQueue};
use crate::pin_id::PinId;

/// The work one hold of a ring lock (producer or consumer, at `DISPATCH_LEVEL`) may do: bytes
/// copied, each frame record counting at least `RECORD_COST`. 64 KiB is about 5–10 µs of
/// `memcpy` on current processors — inside Microsoft's 25 µs guidance for holding a spin lock
/// (and the 100 µs for a DPC), where a multi-MiB copy under the lock would stall the processor
/// for milliseconds. Larger frames move piece by piece, the lock let go between pieces; the
/// pieces of a frame are joined again in the reader's buffer.
pub const HOLD_BUDGET: usize = 64 << 10;

/// Who drains one side's queue: one thread at a time. A thread that finds another draining leaves
/// it the work (it asks for one more pass) instead of spinning on the side's lock for every piece
/// the other moves; the drainer passes again until nobody asked. (A flag, not a lock: a completion
/// that re-enters the driver on the draining thread just asks for another pass.)
pub struct Pumper {
    busy: AtomicBool,
    again: AtomicBool,
}

impl Pumper {
    /// Nobody draining.
    pub const fn new() -> Self {
        Self { busy: AtomicBool::new(false), again: AtomicBool::new(false) }
    }

    /// Drains one side in bounded holds: `one_hold` moves what one hold of the side's lock may,
    /// collecting completions, and says whether its budget ran out with more to do; the
    /// completions run between holds, outside the lock. Returns whether anything moved.
    pub fn drain(&self, f: &Filter, one_hold: fn(&Filter, &mut Completions, &mut bool) -> bool) -> bool {
        self.run(|| {
            let mut progress = false;
            loop {
                let more = Completions::scope(|done| one_hold(f, done, &mut progress));
                // The hold's lock is let go, and its completions have run (dropped above).
                if !more {
                    return progress;
                }
            }
        })
    }

    /// Runs `drain` until nobody asks for another pass — or, if another thread is draining, asks
    /// it for one and returns. Returns whether any pass of this thread's made progress.
    pub fn run(&self, mut drain: impl FnMut() -> bool) -> bool {
        let mut progress = false;
        loop {
            self.again.store(true, Ordering::SeqCst);
            if self.busy.swap(true, Ordering::SeqCst) {
                return progress; // the drainer will see `again`
            }
            self.again.store(false, Ordering::SeqCst);
            progress |= drain();
            self.busy.store(false, Ordering::SeqCst);
            if !self.again.load(Ordering::SeqCst) {
                return progress;
            }
        }
    }
}

/// One side of the ring under its lock: the ring's half (while the ring exists), and the request
/// a pump on this side has begun and not finished when its hold's budget ran out. That request
/// stays acquired from its queue between two holds — whoever takes the lock next goes on with it
/// before any other, so requests keep their order — and goes back to its queue (cancelable again)
/// as soon as a pump stops for any other reason ([`let_go`]).
pub struct Side<T> {
    /// The ring's half.
    pub ring: Option<T>,
    /// The right to take this side's requests off its queue.
    key: PumpKey,
    in_progress: Option<Acquired>,
    /// Producer side: the metadata of a frame whose first parts went out (into the ring or a
    /// read) and whose end has not — a write split it, then was cancelled or reset before its
    /// last part. The next frame ends it first ([`write`]'s `end_open_frame`), so that a reader
    /// never joins the two.
    open_frame: Option<framering::FrameMeta>,
}

impl<T> Side<T> {
    /// No ring, no request in progress; `key` is the side's queue's.
    pub const fn new(key: PumpKey) -> Self {
        Self { ring: None, key, in_progress: None, open_frame: None }
    }

    /// Whether a request is in progress.
    pub fn has_in_progress(&self) -> bool {
        self.in_progress.is_some()
    }

    /// Takes the ring's half out (the ring is being freed); a frame left open in it is forgotten
    /// with it — no reader holds a part of it any more. No request may be in progress.
    pub fn take_ring(&mut self) -> Option<T> {
        debug_assert!(self.in_progress.is_none());
        self.open_frame = None;
        self.ring.take()
    }

    /// Keeps `irp` (acquired from this side's queue) in progress for the next hold.
    fn set_in_progress(&mut self, irp: Acquired) {
        debug_assert!(self.in_progress.is_none());
        self.in_progress = Some(irp);
    }

    /// Gives `irp` (acquired from this side's queue) back to `queue`, cancelable again.
    fn release(&mut self, irp: Acquired, done: &mut Completions) {
        irp.release(&mut self.key, done);
    }
}

/// Gives the side's request in progress back to its queue (a cancel that came meanwhile completes
/// it, through `done`).
fn let_go_locked<T>(side: &mut Side<T>, done: &mut Completions) {
    if let Some(irp) = side.in_progress.take() {
        side.release(irp, done);
    }
}

/// Gives pin `pin`'s request in progress back to its queue: after its requests were cancelled
/// (STOP, reset, cleanup) the cancel then completes it.
pub fn let_go(f: &Filter, pin: PinId) {
    // The lock guard is a temporary of the statement: it goes before the scope's completions run.
    Completions::scope(|done| {
        if pin == PinId::Input {
            let_go_locked(&mut f.producer.lock(), done);
        } else {
            let_go_locked(&mut f.consumer.lock(), done);
        }
    });
}

/// The request a hold starts with: the one in progress (unless a cancel came for it meanwhile:
/// then it goes back to its queue, where the cancel completes it), else the next on the queue.
fn first_request<T>(side: &mut Side<T>, queue: &StreamQueue, done: &mut Completions) -> Option<Acquired> {
    if let Some(irp) = side.in_progress.take() {
        if !irp.cancel_requested() {
            return Some(irp);
        }
        side.release(irp, done);
    }
    queue.acquire_first(&mut side.key)
}

/// What a frame record costs of [`HOLD_BUDGET`] at least, so that a hold over many tiny frames is
/// bounded too (at most 256 records).
pub const RECORD_COST: usize = HOLD_BUDGET / 256;

/// The largest frame part the producer puts in the ring: half the largest frame, so that a big
/// frame streams through in at least two parts while the reader drains the first (and no more
/// than [`HOLD_BUDGET`], which the pumps apply).
pub fn piece_limit(max_frame: usize) -> usize {
    (max_frame / 2) & !7
}

/// [`piece_limit`] for a ring of `capacity` bytes.
#[allow(clippy::cast_possible_truncation)] // capacity <= 64 MiB
pub fn piece_limit_for(capacity: u32) -> u32 {
    piece_limit(capacity as usize - HEADER_SIZE) as u32
}

/// The options flags of a part of a frame: all but the last part say `CONTINUES` and never
/// `ENDOFSTREAM`.
pub fn part_flags(frame_flags: u32, last: bool) -> u32 {
    if last {
        frame_flags
    } else {
        (frame_flags & !KsStreamOptions::ENDOFSTREAM.bits()) | KSRING_OPTIONSF_CONTINUES
    }
}

/// After a reserve in `f`'s ring found it full: lets the consumer pass over padding the producer
/// may just have published at the end of the storage (see `Consumer::pass_padding`); `true` if
/// that freed space, so that the reserve is worth trying again. Lock order: producer, consumer.
pub fn pass_padding(f: &Filter) -> bool {
    f.consumer.lock().ring.as_mut().is_some_and(framering::Consumer::pass_padding)
}

/// A stream IOCTL on a pin.
pub fn dispatch(irp: Irp, direction: Direction) -> NTSTATUS {
    // Once queued, the request may complete on another thread at any moment, and with it the I/O
    // manager's reference on the pin's file object may go: the pin (and, through its reference,
    // the filter) could close under the rest of this call. Hold the pin's file object until the
    // end of it.
    let file = irp.reference_file();
    let Some(Object::Pin(pin)) = file.as_ref().and_then(FileRef::object) else {
        drop(file); // not the last reference: the request holds one
        return irp.complete(STATUS_INVALID_PARAMETER, 0);
    };
    let f = pin.filter();
    let expected = if direction == Direction::Write { PinId::Input } else { PinId::Output };
    let refused = if pin.id != expected || f.is_source(pin.id) {
        // A source pin moves data itself: it is not an IRP sink.
        Some(STATUS_INVALID_DEVICE_REQUEST)
    } else if f.closing(pin.id) {
        Some(STATUS_FILE_CLOSED)
    } else if f.state(pin.id) == KSSTATE_STOP {
        Some(STATUS_INVALID_DEVICE_STATE)
    } else if f.resetting(pin.id) {
        Some(STATUS_DEVICE_NOT_READY)
    } else {
        None
    };
    if let Some(status) = refused {
        drop(file); // not the last reference: the request holds one
        return irp.complete(status, 0);
    }
    if direction == Direction::Write && f.feed_cancelled() {
        // Until the push source feeding the input has taken back the writes a cancel gave it
        // (`Filter::feed_acknowledged`): kicked once this is complete (and so its refusal
        // accounted by the pass the kick brings), it does.
        let status = irp.complete(STATUS_DEVICE_NOT_READY, 0);
        f.kick_sources();
        drop(file); // at PASSIVE_LEVEL: the pin may close here
        return status;
    }
    let request = match StreamIrp::probe(irp, direction) {
        Ok(request) => request,
        Err(status) => return status, // completed; the pin's file object is still referenced
    };
    let id = pin.id;
    f.queue(id).push(request);
    // A STOP or reset that began meanwhile may have missed it: cancel again (idempotent). So may
    // a cancel of a fed input's writes that began and ended since the look above: it set
    // `feed_cancelled` before it looked at the queue, so either it cancelled this write or this
    // sees the flag.
    if f.state(id) == KSSTATE_STOP
        || f.resetting(id)
        || f.closing(id)
        || (direction == Direction::Write && f.feed_cancelled())
    {
        f.cancel_requests(id);
    }
    pump(f);
    // The pin may close here, at PASSIVE_LEVEL (stream requests arrive there: ks.sys' probe is
    // pageable); nothing is touched after it.
    drop(file);
    STATUS_PENDING
}

/// Moves data until nothing more can move: writes into the ring (or straight to waiting reads),
/// reads out of it.
pub fn pump(f: &Filter) {
    loop {
        fence(Ordering::SeqCst);
        let mut progress = false;
        if f.writes.len() > 0 {
            progress |= write::pump(f);
        }
        fence(Ordering::SeqCst);
        if f.reads.len() > 0 {
            progress |= read::pump(f);
        }
        if !progress {
            break;
        }
    }
    f.kick_sources();
}

/// Called by the cancel routine of a stream request it took off its pin's queue: the queue's count
/// goes down.
pub fn on_cancel(irp: &StreamIrp) {
    if let Some(Object::Pin(pin)) = irp.object() {
        pin.filter().queue(pin.id).cancelled();
    }
}

/// How a cancelled stream request completes, so that nothing already moved is lost: a read that
/// holds frames completes with success; a write reports the bytes it got accepted.
pub fn cancelled_result(irp: &mut StreamIrp) -> (NTSTATUS, usize) {
    let reading = irp.is_read();
    // A header holding the start of a frame (its rest not there yet) is delivered as a part:
    // those bytes left the ring and are in the reader's buffer.
    let split = reading && irp.cursor().offset > 0;
    if split && let Some(Object::Pin(pin)) = irp.object() {
        crate::filter::Counters::add(&pin.filter().counters.split_parts, 1);
    }
    let mut cursor = irp.cursor();
    if split {
        cursor.advance();
    }
    match (reading, cursor.at) {
        (true, 0) => (STATUS_CANCELLED, 0),
        (true, filled) => (STATUS_SUCCESS, filled),
        (false, _) => (STATUS_CANCELLED, cursor.information()),
    }
}
