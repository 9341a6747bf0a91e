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
//! - A write's `Information` is the bytes accepted; a cancelled write keeps it (those bytes are in
//!   the ring and will be read). A cancelled read that already holds frames completes with
//!   success, so no data is lost to a cancel.
//! - With the input pin closed and the ring drained, a read gets a header with `DataUsed` 0 and
//!   `KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM`.
//!
//! Lost wake-ups: each side bumps its queue's count (`SeqCst`) before looking at the ring, and each
//! pump issues a `SeqCst` fence between moving data and looking at the other side's count, so of a
//! writer that adds data and a reader that adds an IRP, at least one sees the other.

mod completions;
mod cursor;
mod read;
mod write;

use core::sync::atomic::{AtomicBool, Ordering, fence};

use framering::HEADER_SIZE;
use ksabi::{
    DEVICE_OBJECT, IOCTL_KS_READ_STREAM, IRP, KSSTATE_STOP, KsProbe, KsStreamOptions, NTSTATUS,
    STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_FILE_CLOSED, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_PENDING, STATUS_SUCCESS, nt_success,
};
use ksring_api::{KSRING_OPTIONSF_CONTINUES, PIN_INPUT, PIN_OUTPUT};

pub use cursor::Cursor;
pub use write::meta_of;

use crate::filter::Filter;
use crate::kernel::irp::Irp;
use crate::kernel::nt;
use crate::kernel::object::{self, Object};
use crate::kernel::sync::IrpQueue;
use crate::sys;
use completions::Completions;

/// Which stream IOCTL.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `IOCTL_KS_WRITE_STREAM`, on the input pin.
    Write,
    /// `IOCTL_KS_READ_STREAM`, on the output pin.
    Read,
}

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
                let more = one_hold(f, &mut Completions::new(), &mut progress);
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
    in_progress: *mut IRP,
    /// Producer side: the metadata of a frame whose first parts went out (into the ring or a
    /// read) and whose end has not — a write split it, then was cancelled or reset before its
    /// last part. The next frame ends it first ([`write`]'s `end_open_frame`), so that a reader
    /// never joins the two.
    open_frame: Option<framering::FrameMeta>,
}

// SAFETY: the request pointer is only used under the side's spin lock.
unsafe impl<T: Send> Send for Side<T> {}

impl<T> Side<T> {
    /// No ring, no request in progress.
    pub const fn new() -> Self {
        Self { ring: None, in_progress: core::ptr::null_mut(), open_frame: None }
    }

    /// The request in progress, if any, handed to the caller.
    fn take_in_progress(&mut self) -> Option<*mut IRP> {
        let irp = core::mem::replace(&mut self.in_progress, core::ptr::null_mut());
        (!irp.is_null()).then_some(irp)
    }

    /// Whether a request is in progress.
    pub fn has_in_progress(&self) -> bool {
        !self.in_progress.is_null()
    }

    /// Drops the ring's half (the ring is being freed); a frame left open in it is forgotten with
    /// it — no reader holds a part of it any more.
    pub fn drop_ring(&mut self) {
        self.ring = None;
        self.open_frame = None;
    }

    /// Keeps `irp` (acquired from this side's queue) in progress for the next hold.
    fn set_in_progress(&mut self, irp: *mut IRP) {
        debug_assert!(self.in_progress.is_null());
        self.in_progress = irp;
    }
}

/// Gives the side's request in progress back to `queue` (a cancel that came meanwhile completes
/// it, through `done`).
fn let_go_locked<T>(side: &mut Side<T>, queue: &IrpQueue, done: &mut Completions) {
    if let Some(irp) = side.take_in_progress() {
        // SAFETY: acquired from this queue by a pump of this side, under the side's lock, held now.
        unsafe { release(queue, irp, done) };
    }
}

/// Gives pin `pin`'s request in progress back to its queue: after its requests were cancelled
/// (STOP, reset, cleanup) the cancel then completes it.
pub fn let_go(f: &Filter, pin: u32) {
    // The lock guard is a temporary of each statement: it goes at the statement's end, the
    // completions (dropped last) after it.
    let mut done = Completions::new();
    if pin == PIN_INPUT {
        let_go_locked(&mut f.producer.lock(), &f.writes, &mut done);
    } else {
        let_go_locked(&mut f.consumer.lock(), &f.reads, &mut done);
    }
}

/// The request a hold starts with: the one in progress (unless a cancel came for it meanwhile:
/// then it goes back to its queue, where the cancel completes it), else the next on the queue.
fn first_request<T>(side: &mut Side<T>, queue: &IrpQueue, done: &mut Completions) -> Option<*mut IRP> {
    if let Some(irp) = side.take_in_progress() {
        // SAFETY: acquired by a pump of this side and ours under the side's lock.
        if unsafe { (*irp).Cancel } == 0 {
            return Some(irp);
        }
        // SAFETY: as above.
        unsafe { release(queue, irp, done) };
    }
    queue.acquire_first()
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
    // The rest of the stream path still takes the raw IRP (issue 14: a safe stream layer is next).
    let irp = irp.into_raw();
    // SAFETY: a stream IRP of one of our pins, ours: its pin lives while it is outstanding (and,
    // once it is queued, while we hold its file object below).
    let Some(Object::Pin(pin)) = (unsafe { object::of_irp(irp) }) else {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, STATUS_INVALID_PARAMETER, 0) };
    };
    let f = pin.filter();
    let (expected, probe) = match direction {
        Direction::Write => (
            PIN_INPUT,
            KsProbe::STREAMWRITE | KsProbe::ALLOCATEMDL | KsProbe::PROBEANDLOCK | KsProbe::SYSTEMADDRESS,
        ),
        Direction::Read => {
            (PIN_OUTPUT, KsProbe::ALLOCATEMDL | KsProbe::PROBEANDLOCK | KsProbe::SYSTEMADDRESS)
        }
    };
    let refused = if pin.id != expected || f.is_source(pin.id) {
        // A source pin moves data itself: it is not an IRP sink.
        STATUS_INVALID_DEVICE_REQUEST
    } else if f.closing(pin.id) {
        STATUS_FILE_CLOSED
    } else if f.state(pin.id) == KSSTATE_STOP {
        STATUS_INVALID_DEVICE_STATE
    } else if f.resetting(pin.id) {
        STATUS_DEVICE_NOT_READY
    } else {
        // SAFETY: our stream IRP; ks.sys probes, captures and maps the caller's headers and data.
        unsafe { sys::KsProbeStreamIrp(irp, probe.bits(), 0) }
    };
    if !nt_success(refused) {
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, refused, 0) };
    }
    // SAFETY: probed above.
    if let Err(status) = unsafe { Cursor::start(irp, direction == Direction::Read) } {
        // SAFETY: ours, not completed yet: no unlocked MDL may reach the I/O manager.
        unsafe { nt::free_unlocked_mdls(irp) };
        // SAFETY: we complete the IRP once.
        return unsafe { nt::complete(irp, status, 0) };
    }
    // SAFETY: the IRP is ours until queued.
    unsafe {
        (*irp).IoStatus.Information = 0;
    }
    // SAFETY: as above.
    unsafe { completions::clear(irp) };
    // SAFETY: as above.
    unsafe { nt::mark_pending(irp) };
    // Once queued, the IRP may complete on another thread at any moment, and with it the I/O
    // manager's reference on the pin's file object may go: the pin (and, through its reference,
    // the filter) could close under the rest of this call. Hold the pin's file object until the
    // end of it.
    // SAFETY: our IRP.
    let file = unsafe { nt::file_object(irp) };
    // SAFETY: the IRP's file object is referenced by the I/O manager while the IRP is ours.
    unsafe { sys::ObfReferenceObject(file.cast()) };
    let id = pin.id;
    let queue = f.queue(id);
    // SAFETY: ours and marked pending; `cancel` handles this queue. From here on the IRP is not
    // touched again.
    unsafe { queue.push(irp, Some(cancel)) };
    // A STOP or reset that began meanwhile may have missed it: cancel again (idempotent).
    if f.state(id) == KSSTATE_STOP || f.resetting(id) || f.closing(id) {
        f.cancel_requests(id);
    }
    pump(f);
    // SAFETY: the reference taken above, at PASSIVE_LEVEL (stream requests arrive there: ks.sys'
    // probe is pageable). The pin may close inside this call; nothing is touched after it.
    unsafe { sys::ObfDereferenceObject(file.cast()) };
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

/// Gives an IRP the caller acquired from `queue` back to it, cancelable again. If a cancel came
/// for it meanwhile, `KsReleaseIrpOnCancelableQueue` runs [`cancel`] right here, under the
/// caller's lock: the cancel routine then leaves the completion to `done`, which runs it after the
/// caller has dropped its locks.
///
/// # Safety
/// `irp` was acquired from `queue` and not yet released or removed; the caller holds the lock
/// its queue's pumps take (producer for writes, consumer for reads).
pub(crate) unsafe fn release(queue: &IrpQueue, irp: *mut IRP, done: &mut Completions) {
    // SAFETY: an acquired stream IRP.
    unsafe { completions::arm(irp) };
    // SAFETY: acquired from this queue.
    unsafe { queue.release(irp, Some(cancel)) };
    // SAFETY: armed above, under the caller's lock.
    if unsafe { completions::disarm(irp) } {
        // SAFETY: the cancel routine unlinked it and left it to us.
        let (status, information) = unsafe { cancelled_result(irp) };
        // SAFETY: off the queue, ours to complete.
        unsafe { done.push(irp, status, information) };
    }
}

/// The cancel routine of queued stream IRPs: lets `KsCancelRoutine` unlink the IRP and release
/// the cancel spin lock (it does not complete an IRP whose status is already
/// `STATUS_CANCELLED`), then completes it — unless a pump is releasing it under its lock, which
/// then completes it after dropping the lock ([`release`]).
unsafe extern "system" fn cancel(device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: the I/O manager (or KS) calls us with the cancel spin lock held, for our IRP.
    unsafe {
        (*irp).IoStatus.Status = STATUS_CANCELLED;
    }
    // SAFETY: as above; the IRP was queued with KsAddIrpToCancelableQueue.
    unsafe { sys::KsCancelRoutine(device, irp) };
    // The IRP is off its queue and ours.
    // SAFETY: the pin lives while its IRPs are outstanding.
    if let Some(Object::Pin(pin)) = unsafe { object::of_irp(irp) } {
        pin.filter().queue(pin.id).cancelled();
    }
    // SAFETY: ours, unlinked.
    if unsafe { completions::defer_cancel(irp) } {
        return;
    }
    // SAFETY: as above.
    let (status, information) = unsafe { cancelled_result(irp) };
    // SAFETY: we complete the IRP once.
    unsafe { nt::complete(irp, status, information) };
}

/// How a cancelled stream IRP completes, so that nothing already moved is lost: a read that
/// holds frames completes with success; a write reports the bytes it got accepted.
///
/// # Safety
/// `irp` is a stream IRP set up by [`dispatch`], unlinked from its queue and owned by the caller.
unsafe fn cancelled_result(irp: *mut IRP) -> (NTSTATUS, usize) {
    // SAFETY: a device-control IRP.
    let reading = unsafe { nt::ioctl_parameters(irp) }.IoControlCode == IOCTL_KS_READ_STREAM;
    // SAFETY: set up by `dispatch`, and ours now.
    let mut cursor = unsafe { Cursor::load(irp) };
    if reading && cursor.offset > 0 {
        // A header holding the start of a frame (its rest not there yet) is delivered as a part:
        // those bytes left the ring and are in the reader's buffer.
        // SAFETY: the pin lives while its IRPs are outstanding.
        if let Some(Object::Pin(pin)) = unsafe { object::of_irp(irp) } {
            crate::filter::Counters::add(&pin.filter().counters.split_parts, 1);
        }
        cursor.advance();
    }
    // SAFETY: as above.
    let accepted = unsafe { (*irp).IoStatus.Information };
    match (reading, cursor.at) {
        (true, 0) => (STATUS_CANCELLED, 0),
        (true, filled) => (STATUS_SUCCESS, filled),
        (false, _) => (STATUS_CANCELLED, accepted),
    }
}
