//! IRP-source pins: a pin created with `PinToHandle` set moves data itself, with IRPs it builds,
//! to or from a pin of another ksring filter (KS-REFERENCE, "KS Pins": IRP source vs IRP sink,
//! independent of data flow).
//!
//! - **Push** — an output pin (data source) connected to another filter's input pin: in RUN it
//!   takes frames out of its ring and sends them with `IOCTL_KS_WRITE_STREAM`.
//! - **Pull** — an input pin (data sink) connected to another filter's output pin: in RUN it sends
//!   `IOCTL_KS_READ_STREAM` and puts what comes back into its ring.
//!
//! Each source owns [`SLOTS`] IRPs (`IoAllocateIrp`, reused with `IoReuseIrp`) with their header
//! arrays and [`SLOT_BYTES`]-byte buffers, all allocated at connection: nothing is allocated while
//! streaming, and at most [`SLOTS`] requests are in flight (back-pressure: a sink whose ring is full
//! holds our writes; a source whose own ring is full stops reading). Requests are built and sent
//! only from a work item, at `PASSIVE_LEVEL` as `KsProbeStreamIrp` on the sink side needs;
//! completion routines record the result, free the MDLs the sink's probe built, and schedule the
//! work item again.
//!
//! Nothing accepted is lost or repeated: a write the sink refuses or cancels (STOP, reset) keeps
//! its unaccepted remainder and sends it again, in order, once nothing else is in flight and the
//! sink says it runs again; reads are handed to the ring strictly in the order they were sent.
//! Data a source still holds when it stops, its sink goes away, or it closes is counted as
//! discarded.
//!
//! Termination (KS: the source's handle closes before the file object it refers to goes away; the
//! sink tells the source when its side ends): the source holds a reference on the sink's file
//! object from connection until every request it sent has completed. If the sink's last handle
//! closes first, the sink's cleanup tells the source, which lets its requests finish and then drops
//! the reference (so the sink's close comes last). If the source closes first, its cleanup
//! unregisters it (no more notifications), cancels what is in flight, waits for it, and drops the
//! reference. A push source whose filter's input has ended sends a zero-length `ENDOFSTREAM` frame;
//! a pull source that reads one ends its own filter's input, so end of stream travels down a chain.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use framering::{FrameMeta, ReserveError};
use ksabi::{
    FILE_READ_DATA, FILE_WRITE_DATA, HANDLE, IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, KSSTREAM_HEADER,
    KSTIME, KsStreamOptions, NTSTATUS, STATUS_CANCELLED, STATUS_DEVICE_NOT_READY,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_NO_MATCH,
    STATUS_SUCCESS,
};
use ksring_api::{KSRING_OPTIONSF_CONTINUES, PIN_INPUT, PIN_OUTPUT};

use crate::filter::{Counters, Filter};
use crate::format::Format;
use crate::ids;
use crate::kernel::irp::{Device, Irp};
use crate::kernel::object::{Held, Object};
use crate::kernel::outbound::{Activity, Headers, Lease, Outbound, Owner, StreamHeaders, Target, Worker};
use crate::kernel::pool::{PoolBox, PoolBuffer, Shared};
use crate::kernel::sync::{Exclusive, ExclusiveGuard};
use crate::stream::{self, HOLD_BUDGET, RECORD_COST, part_flags, piece_limit};

/// Requests a source keeps in flight at most.
pub const SLOTS: usize = 4;
/// Stream headers per request.
pub const HEADERS: usize = 16;
/// Data bytes per request.
pub const SLOT_BYTES: usize = 256 << 10;
/// What a pull source asks for per read header.
const PART: usize = SLOT_BYTES / HEADERS;
const HEADER: usize = size_of::<KSSTREAM_HEADER>();

/// Which way a source moves data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// An output pin writing to another filter's input.
    Push,
    /// An input pin reading from another filter's output.
    Pull,
}

/// Where a request slot stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SlotState {
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
struct AtomicSlotState(AtomicU32);

impl AtomicSlotState {
    const fn new() -> Self {
        Self(AtomicU32::new(SlotState::Free as u32))
    }

    fn load(&self) -> SlotState {
        match self.0.load(Ordering::SeqCst) {
            1 => SlotState::InFlight,
            2 => SlotState::Done,
            3 => SlotState::Held,
            _ => SlotState::Free,
        }
    }

    fn store(&self, state: SlotState) {
        self.0.store(state as u32, Ordering::SeqCst);
    }
}

/// A request's buffers and bookkeeping: the work routine's between sends, the target's while in
/// flight (lent to the request).
struct SlotIo {
    headers: StreamHeaders<HEADERS>,
    /// The bytes the headers describe.
    data: PoolBuffer,
    /// Where each header's bytes start in `data`.
    start: [usize; HEADERS],
    /// Headers in use.
    count: usize,
    /// Pull: the first header not yet in the ring, and how much of it is.
    next: usize,
    offset: usize,
}

impl Headers for PoolBox<SlotIo> {
    fn headers(&mut self) -> *mut core::ffi::c_void {
        self.headers.as_mut_ptr().cast()
    }
}

impl SlotIo {
    /// Header `i` over `n` bytes at `start` of the buffer, with `flags` and the frame's metadata.
    fn set(&mut self, i: usize, start: usize, n: usize, flags: u32, meta: &FrameMeta) {
        self.start[i] = start;
        self.headers[i] = KSSTREAM_HEADER {
            Data: self.data.as_mut_ptr().wrapping_add(start).cast(),
            ..header(n, flags, meta)
        };
    }

    /// The bytes header `i` holds (as far as they lie in the buffer).
    fn bytes(&self, i: usize) -> &[u8] {
        let start = self.start[i].min(self.data.len());
        let used = (self.headers[i].DataUsed as usize).min(self.data.len() - start);
        &self.data[start..start + used]
    }
}

/// One request: its IRP, its buffers (a pool block of their own: a kernel stack has no room to
/// build four of them in place), where it stands and how it ended.
struct Slot {
    request: Outbound<PoolBox<SlotIo>>,
    io: Exclusive<PoolBox<SlotIo>>,
    state: AtomicSlotState,
    status: AtomicI32,
    information: AtomicUsize,
    /// Order of sending (and, for pulls, of handing data to the ring).
    seq: AtomicU64,
}

/// The work routine's own state.
struct Work {
    /// The source pin's filter (a reference on its file object, as the pin holds one): the work
    /// routine's to use, the cleanup's to let go (a pass takes it out while it runs).
    filter: Option<Held<Filter>>,
    /// The right to send to the target, and to let it go.
    lease: Lease,
    next_seq: u64,
    next_done: u64,
    /// The sink refused: wait for it to say it runs again.
    blocked: bool,
    eos_sent: bool,
    /// Pull: the sink ended; end the filter's input once everything held is in the ring.
    end_input_pending: bool,
}

/// An IRP-source pin's connection.
pub struct Source {
    kind: Kind,
    /// The driver's device (the pins at both ends are on it).
    device: Device,
    target: Target,
    activity: Activity,
    worker: Worker,
    in_flight: AtomicU32,
    /// The sink's last handle closed.
    ended: AtomicBool,
    shutting_down: AtomicBool,
    /// The pin went to STOP: drop what is held.
    stopping: AtomicBool,
    /// A kick since the last run (the sink or the filter moved): retry refused requests.
    unblock: AtomicBool,
    work: Exclusive<Work>,
    slots: [Slot; SLOTS],
}

/// Why a connection was refused.
pub type Refusal = NTSTATUS;

/// Connects pin `pin` of `filter` (format `format`) as a source to the pin behind `handle`, for
/// the pin's create request `irp` on `device` (at `PASSIVE_LEVEL`, in the caller's context).
///
/// Checks, in order: the handle names a file object (`ObReferenceObjectByHandle`:
/// `STATUS_INVALID_HANDLE`, `STATUS_OBJECT_TYPE_MISMATCH`); it is a pin of another ksring filter
/// (`STATUS_INVALID_PARAMETER`); of the opposite data flow, an IRP sink itself, streaming the same
/// format (`STATUS_NO_MATCH`); not already fed by a source (`STATUS_DEVICE_BUSY`); then the
/// source's memory (`STATUS_INSUFFICIENT_RESOURCES`).
///
/// # Errors
/// The refusal.
pub fn connect(
    device: Device,
    irp: &Irp,
    filter: &Filter,
    pin: u32,
    format: Format,
    handle: HANDLE,
) -> Result<Shared<Source>, Refusal> {
    // A push source writes to the pin it names, a pull source reads from it: a user-mode caller's
    // handle must grant that (the object manager checks it for UserMode), or the caller could make
    // ksring write through a handle it may only read.
    let access = if pin == PIN_OUTPUT { FILE_WRITE_DATA } else { FILE_READ_DATA };
    let (target, lease) = irp.reference_handle(handle, access)?;
    check_target(device, &target, filter, pin, format)?;
    let kind = if pin == PIN_OUTPUT { Kind::Push } else { Kind::Pull };
    let own_filter = irp.hold_parent::<Filter>().ok_or(STATUS_INVALID_PARAMETER)?;
    // On a refusal from here on the source is dropped, and with it the target's reference.
    let source = Source::new(kind, own_filter, device, target, lease).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    {
        let claim = source.target.claim().ok_or(STATUS_INVALID_PARAMETER)?;
        let Some(Object::Pin(sink)) = claim.object(device) else {
            return Err(STATUS_INVALID_PARAMETER); // checked above; the reference keeps it
        };
        sink.filter().attach_feeder(sink.id, source.clone())?;
    }
    filter.attach_source(pin, source.clone());
    Ok(source)
}

/// Whether a source pin `pin` of `filter` streaming `format` may feed the pin behind `target`.
fn check_target(
    device: Device,
    target: &Target,
    filter: &Filter,
    pin: u32,
    format: Format,
) -> Result<(), Refusal> {
    let claim = target.claim().ok_or(STATUS_INVALID_PARAMETER)?;
    // Not one of our pins (only on our device stack is FsContext ours), or a filter.
    let Some(Object::Pin(sink)) = claim.object(device) else {
        return Err(STATUS_INVALID_PARAMETER);
    };
    if core::ptr::eq(sink.filter(), filter) {
        return Err(STATUS_INVALID_PARAMETER); // a filter's own pin: a loop
    }
    let opposite = if pin == PIN_OUTPUT { PIN_INPUT } else { PIN_OUTPUT };
    if sink.id != opposite
        || sink.filter().is_source(sink.id)
        || sink.filter().format(sink.id) != Some(format)
    {
        return Err(STATUS_NO_MATCH);
    }
    Ok(())
}

impl Owner for Source {
    fn activity(&self) -> &Activity {
        &self.activity
    }

    fn worker(&self) -> &Worker {
        &self.worker
    }

    fn run(this: &Shared<Self>) {
        Self::run(this);
    }

    /// Records the result; the work routine accounts it.
    fn completed(this: &Shared<Self>, slot: usize, status: NTSTATUS, information: usize) {
        let Some(s) = this.slots.get(slot) else { return };
        s.status.store(status, Ordering::SeqCst);
        s.information.store(information, Ordering::SeqCst);
        s.state.store(SlotState::Done);
        // Out of flight before the work routine is scheduled, so that the run it triggers sees it.
        this.in_flight.fetch_sub(1, Ordering::SeqCst);
        Worker::schedule(this);
    }
}

impl Source {
    /// A source with its requests, buffers and work item; `None` if any could not be allocated.
    fn new(
        kind: Kind,
        filter: Held<Filter>,
        device: Device,
        target: Target,
        lease: Lease,
    ) -> Option<Shared<Self>> {
        let stack_size = target.stack_size(&lease);
        let slot = |i| {
            let data = PoolBuffer::new(ids::TAG_SOURCE, SLOT_BYTES)?;
            let io = SlotIo {
                headers: StreamHeaders([EMPTY_HEADER; HEADERS]),
                data,
                start: [0; HEADERS],
                count: 0,
                next: 0,
                offset: 0,
            };
            Some(Slot {
                request: Outbound::new(stack_size, i)?,
                io: Exclusive::new(PoolBox::new(ids::TAG_SOURCE, io)?),
                state: AtomicSlotState::new(),
                status: AtomicI32::new(0),
                information: AtomicUsize::new(0),
                seq: AtomicU64::new(0),
            })
        };
        let slots = [slot(0)?, slot(1)?, slot(2)?, slot(3)?];
        let source = Self {
            kind,
            device,
            activity: Activity::new(ids::TAG_SOURCE)?,
            worker: Worker::new(device)?,
            target,
            in_flight: AtomicU32::new(0),
            ended: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            unblock: AtomicBool::new(false),
            work: Exclusive::new(Work {
                filter: Some(filter),
                lease,
                next_seq: 0,
                next_done: 0,
                blocked: false,
                eos_sent: false,
                end_input_pending: false,
            }),
            slots,
        };
        Shared::new(ids::TAG_SOURCE, source)
    }

    /// Something changed that may let refused requests through (the sink runs again, the filter
    /// moved data, the pin's state changed).
    pub fn kick(this: &Shared<Self>) {
        this.unblock.store(true, Ordering::SeqCst);
        Worker::schedule(this);
    }

    /// The sink's last handle closed: finish what is in flight, then let it go.
    pub fn sink_ended(this: &Shared<Self>) {
        this.ended.store(true, Ordering::SeqCst);
        Worker::schedule(this);
    }

    /// The source pin went to STOP: cancel what is in flight and drop what is held.
    pub fn stop(this: &Shared<Self>) {
        this.stopping.store(true, Ordering::SeqCst);
        this.cancel_in_flight();
        Worker::schedule(this);
    }

    fn cancel_in_flight(&self) {
        for slot in &self.slots {
            if slot.state.load() == SlotState::InFlight {
                slot.request.cancel();
            }
        }
    }

    /// Cleanup of the source pin (at `PASSIVE_LEVEL`, the source already detached from its own
    /// filter, so the filter no longer kicks it): no more notifications, cancel, wait, count what
    /// is left, release the target.
    pub fn shut_down(this: Shared<Self>) {
        // If the reference is still ours, the sink is alive: stop its notifications (the sink's
        // reference to us goes after its lock is let go).
        let mut claim = this.target.claim();
        let feeder = match claim.as_ref().and_then(|c| c.object(this.device)) {
            Some(Object::Pin(sink)) => sink.filter().detach_feeder(sink.id, &this),
            _ => None,
        };
        drop(feeder);
        this.shutting_down.store(true, Ordering::SeqCst);
        this.cancel_in_flight();
        // Satisfied once the last request and work routine pass are done.
        this.activity.finish();
        // Nothing runs any more (a pass scheduled late sees `shutting_down` and does nothing).
        if let Some(mut work) = this.work.claim() {
            let filter = work.filter.take();
            if let Some(filter) = &filter {
                this.drop_held(filter.get(), &mut work);
            }
            if let Some(claim) = claim.take() {
                claim.let_go(&mut work.lease);
            }
            // Not the filter's last reference: the source pin holds one until its close.
            drop(filter);
        }
        drop(claim);
        // The pin's reference goes; a sink that took its own just before our detach drops it
        // after telling us it ended (a late pass that does nothing).
        drop(this);
    }

    /// Settles completed requests, then counts what held slots carry as discarded and frees them.
    fn drop_held(&self, f: &Filter, work: &mut Work) {
        for slot in &self.slots {
            if slot.state.load() == SlotState::Done {
                match self.kind {
                    Kind::Push => self.write_done(f, slot, work),
                    Kind::Pull => {
                        Self::read_done(f, slot, work);
                    }
                }
            }
        }
        for slot in &self.slots {
            if slot.state.load() == SlotState::Held {
                Self::drop_slot(slot, self.kind, &f.counters);
            }
        }
        // Pull: what is still in flight comes back later and is handed over (or dropped) in order.
        work.next_done = self
            .slots
            .iter()
            .filter(|s| s.state.load() == SlotState::InFlight)
            .map(|s| s.seq.load(Ordering::SeqCst))
            .min()
            .unwrap_or(work.next_seq);
    }

    /// Counts a held slot's remaining frames and bytes as discarded and frees it.
    fn drop_slot(slot: &Slot, kind: Kind, c: &Counters) {
        let Some(io) = slot.io.claim() else { return };
        let first = if kind == Kind::Pull { io.next } else { 0 };
        let mut frames = 0;
        let mut bytes = 0;
        for (i, h) in io.headers[..io.count].iter().enumerate().skip(first) {
            let skip = if kind == Kind::Pull && i == io.next { io.offset } else { 0 };
            frames += 1;
            bytes += (h.DataUsed as usize).saturating_sub(skip) as u64;
        }
        Counters::add(&c.discarded_frames, frames);
        Counters::add(&c.discarded_bytes, bytes);
        slot.state.store(SlotState::Free);
    }

    /// One pass of the work routine.
    fn run(this: &Shared<Self>) {
        if this.shutting_down.load(Ordering::SeqCst) {
            return; // the cleanup settles what is left once nothing runs
        }
        // One pass at a time (the worker), so the claim succeeds.
        let Some(mut work) = this.work.claim() else { return };
        let work = &mut *work;
        let Some(filter) = work.filter.take() else { return }; // let go by the cleanup
        Self::pass(this, filter.get(), work);
        work.filter = Some(filter);
    }

    /// [`Source::run`] with the work routine's state and the filter taken out of it.
    fn pass(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        if this.stopping.load(Ordering::SeqCst) {
            // The pin went to STOP: nothing more moves (its filter's ring was just emptied); what
            // is held, or comes back, is dropped until nothing is in flight.
            this.drop_held(f, work);
            if this.in_flight.load(Ordering::SeqCst) == 0 {
                this.stopping.store(false, Ordering::SeqCst);
            }
        } else {
            match this.kind {
                Kind::Push => Self::push(this, f, work),
                Kind::Pull => Self::pull(this, f, work),
            }
        }
        let quiet = this.in_flight.load(Ordering::SeqCst) == 0;
        if !this.ended.load(Ordering::SeqCst) || !quiet || this.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        if this.kind == Kind::Push {
            this.drop_held(f, work); // the sink is gone: nowhere to send it
        } else if !work.end_input_pending {
            work.end_input_pending = true;
        }
        if work.end_input_pending && !this.slots.iter().any(|s| s.state.load() != SlotState::Free) {
            // Everything the sink gave us is in the ring: the input ends behind it.
            work.end_input_pending = false;
            f.end_input();
        }
        if let Some(claim) = this.target.claim() {
            // Nothing of ours is in flight to the target. Letting go may close the sink (inline,
            // at PASSIVE_LEVEL): no lock is held here.
            claim.let_go(&mut work.lease);
        }
    }

    /// Slots in the order they were sent.
    fn by_seq(&self) -> [usize; SLOTS] {
        let mut order = [0, 1, 2, 3];
        order.sort_unstable_by_key(|&i| self.slots[i].seq.load(Ordering::SeqCst));
        order
    }

    fn push(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        for i in this.by_seq() {
            let slot = &this.slots[i];
            if slot.state.load() == SlotState::Done {
                this.write_done(f, slot, work);
            }
        }
        Self::take_unblock(&this.unblock, work);
        let held = this.slots.iter().any(|s| s.state.load() == SlotState::Held);
        let idle = this.in_flight.load(Ordering::SeqCst) == 0;
        if !f.flowing(PIN_OUTPUT)
            || this.ended.load(Ordering::SeqCst)
            || this.stopping.load(Ordering::SeqCst)
            || this.shutting_down.load(Ordering::SeqCst)
        {
            return;
        }
        if held {
            // What the sink did not take goes again first, in order, once nothing else is out.
            if idle && !work.blocked {
                for i in this.by_seq() {
                    if this.slots[i].state.load() == SlotState::Held
                        && let Some(io) = this.slots[i].io.claim()
                    {
                        let count = io.count;
                        Self::send(this, &work.lease, i, io, IOCTL_KS_WRITE_STREAM, count);
                    }
                }
            }
            return;
        }
        let mut moved = false;
        for (i, slot) in this.slots.iter().enumerate() {
            if slot.state.load() != SlotState::Free {
                continue;
            }
            let Some(mut io) = slot.io.claim() else { continue };
            let mut count = Self::fill_from_ring(f, &mut io);
            moved |= count > 0;
            // The end goes last: after every write has completed *and* been accounted (a write
            // that completed inline while this loop ran is DONE until the next pass counts it;
            // the end must not overtake its statistics down the chain).
            let settled = this.slots.iter().all(|s| s.state.load() == SlotState::Free);
            if count == 0 && f.input_closed() && settled && !work.eos_sent {
                count = end_of_stream(&mut io);
                work.eos_sent = true;
            }
            if count == 0 {
                break;
            }
            slot.seq.store(work.next_seq, Ordering::SeqCst);
            io.count = count;
            work.next_seq += 1;
            Self::send(this, &work.lease, i, io, IOCTL_KS_WRITE_STREAM, count);
        }
        if moved {
            stream::pump(f); // room in the ring: writes waiting for it go on
        }
    }

    /// Takes frames out of the ring into a free slot; returns the headers filled. The consumer
    /// lock is held for at most [`HOLD_BUDGET`] of copying at a time (this source is the ring's
    /// only consumer, so nothing else takes frames between holds).
    fn fill_from_ring(f: &Filter, io: &mut SlotIo) -> usize {
        let mut used = 0;
        let mut count = 0;
        loop {
            let mut consumer = f.consumer.lock();
            let Some(c) = consumer.ring.as_mut() else { return count };
            let mut budget = HOLD_BUDGET;
            while count < HEADERS && used < SLOT_BYTES && budget > 0 {
                let Some(grant) = c.read() else { return count };
                let payload = grant.payload();
                let n = payload.len().min(SLOT_BYTES - used).min(budget);
                io.data[used..used + n].copy_from_slice(&payload[..n]);
                Counters::add(&f.counters.copied_out, n as u64);
                let meta = grant.meta();
                let record_done = n == payload.len();
                io.set(count, used, n, part_flags(meta.options_flags, record_done), &meta);
                grant.consume(n);
                used += n;
                count += 1;
                budget = budget.saturating_sub(n.max(RECORD_COST));
                if !record_done && budget > 0 {
                    return count; // the slot is full
                }
            }
            if count == HEADERS || used == SLOT_BYTES {
                return count;
            }
            // The budget is spent: let the lock go, then go on.
        }
    }

    /// Accounts a completed write: what the sink accepted goes out; the rest is held for later
    /// (the sink refused or cancelled it) or dropped (it failed).
    fn write_done(&self, f: &Filter, slot: &Slot, work: &mut Work) {
        let c = &f.counters;
        let status = slot.status.load(Ordering::SeqCst);
        let all = status == STATUS_SUCCESS;
        let mut accepted = slot.information.load(Ordering::SeqCst);
        let Some(mut io) = slot.io.claim() else { return };
        let mut first = 0;
        while first < io.count {
            let used = io.headers[first].DataUsed as usize;
            // A failed write reports bytes: a zero-length frame at its edge counts as not taken
            // (sending it again is harmless; losing an end of stream is not).
            if !all && (used == 0 || accepted < used) {
                break;
            }
            if !all {
                accepted -= used;
            }
            Counters::add(&c.bytes_out, used as u64);
            // The end-of-stream marker this source made up itself (no buffer) was never in the
            // ring: it is not a frame out.
            let made_up = used == 0 && io.headers[first].Data.is_null();
            if io.headers[first].OptionsFlags & KSRING_OPTIONSF_CONTINUES == 0 && !made_up {
                Counters::add(&c.frames_out, 1);
            }
            first += 1;
        }
        if first < io.count && accepted > 0 {
            // The sink took the start of this frame: the rest goes again as its continuation.
            Counters::add(&c.bytes_out, accepted as u64);
            let h = io.headers[first];
            let rest = (h.DataUsed as usize).saturating_sub(accepted);
            let meta = stream::meta_of(&h);
            let start = io.start[first] + accepted;
            io.set(first, start, rest, h.OptionsFlags, &meta);
        }
        let count = io.count;
        io.headers.copy_within(first..count, 0);
        io.start.copy_within(first..count, 0);
        io.count -= first;
        if io.count == 0 {
            slot.state.store(SlotState::Free);
            return;
        }
        drop(io);
        slot.state.store(SlotState::Held);
        if matches!(status, STATUS_CANCELLED | STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE) {
            work.blocked = true; // the sink stopped or is resetting: it kicks us when it runs again
        } else {
            Self::drop_slot(slot, self.kind, c); // failed for good: counted
        }
    }

    fn pull(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        // Hand what came back to the ring, strictly in the order it was asked for.
        let mut moved = false;
        let mut ended = false;
        let mut all_handed = true;
        for slot in &this.slots {
            let stale = slot.seq.load(Ordering::SeqCst) < work.next_done;
            if stale && slot.state.load() == SlotState::Done && Self::read_done(f, slot, work) {
                // Came back after a STOP dropped what was held: drop it too, counted.
                Self::drop_slot(slot, this.kind, &f.counters);
            }
        }
        let next_back = |next_done: u64| {
            this.slots.iter().find(|s| {
                s.seq.load(Ordering::SeqCst) == next_done
                    && matches!(s.state.load(), SlotState::Done | SlotState::Held)
            })
        };
        while let Some(slot) = next_back(work.next_done) {
            if slot.state.load() == SlotState::Done && !Self::read_done(f, slot, work) {
                work.next_done += 1;
                continue;
            }
            if !Self::to_ring(f, slot, &mut moved, &mut ended) {
                all_handed = false;
                break; // the ring is full: our readers will kick us
            }
            slot.state.store(SlotState::Free);
            work.next_done += 1;
        }
        if ended {
            f.end_input(); // pumps too
        } else if moved {
            stream::pump(f); // data in the ring: reads waiting for it go on
        }
        Self::take_unblock(&this.unblock, work);
        if !all_handed {
            return;
        }
        if !f.flowing(PIN_INPUT)
            || this.ended.load(Ordering::SeqCst)
            || this.stopping.load(Ordering::SeqCst)
            || this.shutting_down.load(Ordering::SeqCst)
            || f.input_closed()
            || work.blocked
        {
            return;
        }
        for (i, slot) in this.slots.iter().enumerate() {
            if slot.state.load() != SlotState::Free {
                continue;
            }
            let Some(mut io) = slot.io.claim() else { continue };
            for h in 0..HEADERS {
                io.set(h, h * PART, 0, 0, &FrameMeta::default());
                #[allow(clippy::cast_possible_truncation)] // 16 KiB
                let part = PART as u32;
                io.headers[h].FrameExtent = part;
            }
            io.count = HEADERS;
            io.next = 0;
            io.offset = 0;
            slot.seq.store(work.next_seq, Ordering::SeqCst);
            work.next_seq += 1;
            Self::send(this, &work.lease, i, io, IOCTL_KS_READ_STREAM, HEADERS);
        }
    }

    /// A kick since the sink refused (it runs again): try again. Taken only after this pass has
    /// settled its completed requests — a refusal settled in the same pass as the kick that
    /// followed it must not block the source until a kick that may never come.
    fn take_unblock(unblock: &AtomicBool, work: &mut Work) {
        if unblock.swap(false, Ordering::SeqCst) {
            work.blocked = false;
        }
    }

    /// Takes a completed read: `false` if it brought nothing (the slot is free again).
    fn read_done(f: &Filter, slot: &Slot, work: &mut Work) -> bool {
        let c = &f.counters;
        let status = slot.status.load(Ordering::SeqCst);
        let Some(mut io) = slot.io.claim() else { return false };
        let filled =
            if status == STATUS_SUCCESS { slot.information.load(Ordering::SeqCst) / HEADER } else { 0 };
        if filled == 0 {
            if matches!(status, STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE) {
                work.blocked = true;
            }
            slot.state.store(SlotState::Free);
            return false;
        }
        io.count = filled.min(HEADERS);
        io.next = 0;
        io.offset = 0;
        for h in &io.headers[..io.count] {
            Counters::add(&c.bytes_in, u64::from(h.DataUsed));
        }
        slot.state.store(SlotState::Held);
        true
    }

    /// Puts a held read's frames into the ring; `false` if the ring filled first. The producer
    /// lock is held for at most [`HOLD_BUDGET`] of copying at a time.
    fn to_ring(f: &Filter, slot: &Slot, moved: &mut bool, ended: &mut bool) -> bool {
        loop {
            // `None`: the budget is spent; the lock is let go before the next hold.
            if let Some(all) = Self::to_ring_once(f, slot, moved, ended) {
                return all;
            }
        }
    }

    /// One hold of the producer lock for [`Source::to_ring`]: `Some(all in)`, or `None` if the
    /// budget ran out first.
    fn to_ring_once(f: &Filter, slot: &Slot, moved: &mut bool, ended: &mut bool) -> Option<bool> {
        let c = &f.counters;
        let Some(mut io) = slot.io.claim() else { return Some(false) };
        let mut producer = f.producer.lock();
        // Data moves into the ring only while the input runs: a STOP (whose discard takes this
        // lock after the state changed) must not find frames put in behind it.
        if !f.flowing(PIN_INPUT) {
            return Some(false);
        }
        let Some(p) = producer.ring.as_mut() else { return Some(false) };
        let limit = piece_limit(p.max_frame()).min(HOLD_BUDGET);
        let mut budget = HOLD_BUDGET;
        while io.next < io.count {
            let h = io.headers[io.next];
            let used = h.DataUsed as usize;
            if used == 0 && h.OptionsFlags & KsStreamOptions::ENDOFSTREAM.bits() != 0 {
                // The upstream filter's input ended: so does ours (after what is in the ring), once
                // the caller has let go of the producer.
                *ended = true;
                io.next += 1;
                continue;
            }
            let meta = stream::meta_of(&h);
            loop {
                if budget == 0 {
                    return None;
                }
                let bytes = io.bytes(io.next);
                let rest = bytes.get(io.offset..).unwrap_or(&[]);
                let take = rest.len().min(limit).min(budget);
                match p.reserve(take) {
                    Ok(mut grant) => {
                        grant.payload().copy_from_slice(&rest[..take]);
                        budget = budget.saturating_sub(take.max(RECORD_COST));
                        Counters::add(&c.copied_in, take as u64);
                        let last = take == rest.len();
                        grant.commit(&FrameMeta {
                            options_flags: part_flags(meta.options_flags, last),
                            ..meta
                        });
                        *moved = true;
                        io.offset += take;
                        if last {
                            break;
                        }
                    }
                    Err(ReserveError::Full) if stream::pass_padding(f) => {} // room now: again
                    Err(ReserveError::Full | ReserveError::TooLarge { .. }) => return Some(false),
                }
            }
            if h.OptionsFlags & KSRING_OPTIONSF_CONTINUES == 0 {
                Counters::add(&c.frames_in, 1);
            }
            io.next += 1;
            io.offset = 0;
        }
        Some(true)
    }

    /// Sends slot `i`'s request with its buffers `io`.
    fn send(
        this: &Shared<Self>,
        lease: &Lease,
        i: usize,
        io: ExclusiveGuard<'_, PoolBox<SlotIo>>,
        code: u32,
        count: usize,
    ) {
        let slot = &this.slots[i];
        slot.state.store(SlotState::InFlight);
        this.in_flight.fetch_add(1, Ordering::SeqCst);
        #[allow(clippy::cast_possible_truncation)] // 16 headers
        let length = (count * HEADER) as u32;
        slot.request.send(this, &this.target, lease, code, io, length);
        // A STOP or shutdown that looked for requests in flight before this one was marked would
        // have missed it (both sides store, then load, sequentially consistent): cancel it here.
        let cancelling = this.stopping.load(Ordering::SeqCst) || this.shutting_down.load(Ordering::SeqCst);
        if cancelling && slot.state.load() == SlotState::InFlight {
            slot.request.cancel();
        }
    }
}

/// A header with nothing in it.
const EMPTY_HEADER: KSSTREAM_HEADER = KSSTREAM_HEADER {
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
fn header(n: usize, flags: u32, meta: &FrameMeta) -> KSSTREAM_HEADER {
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
fn end_of_stream(io: &mut SlotIo) -> usize {
    io.headers[0] = header(0, KsStreamOptions::ENDOFSTREAM.bits(), &FrameMeta::default());
    io.start[0] = 0;
    1
}
