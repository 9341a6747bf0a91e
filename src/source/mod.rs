//! IRP-source pins: a pin created with `PinToHandle` set moves data itself, with IRPs it builds,
//! to or from a pin of another ksring filter (KS-REFERENCE, "KS Pins": IRP source vs IRP sink,
//! independent of data flow).
//!
//! - **Push** — an output pin (data source) connected to another filter's input pin: in RUN it
//!   takes frames out of its ring *in place* and sends them with `IOCTL_KS_WRITE_STREAM`: the
//!   request's headers name the frames' bytes in the ring's storage (no copy: the sink's copy into
//!   its own ring is the hop's only one), and the ring keeps that space until the request has
//!   completed and every request sent before it has too (framering holds, given back in the order
//!   they were taken).
//! - **Pull** — an input pin (data sink) connected to another filter's output pin: in RUN it sends
//!   `IOCTL_KS_READ_STREAM` whose headers name space reserved in its own ring (framering pending
//!   reservations: the upstream filter's copy into them is the hop's only one), and commits what
//!   comes back as frames, in the order the reads were sent; space a read did not fill, or whose
//!   data is dropped, is given up in that order too. While its ring is empty and a client's read
//!   waits on its filter's output, it *lends* that read instead ([`lend`]): its request carries
//!   the client read's buffers, and the upstream filter's copy goes straight to the client.
//!
//! Each source owns [`SLOTS`] IRPs (`IoAllocateIrp`, reused with `IoReuseIrp`) with their header
//! arrays, all allocated at connection (no data buffers: requests name the ring's storage, whose
//! memory is counted — [`crate::kernel::ring_memory::RingRef`] — so a request naming it keeps it
//! allocated even if a STOP lets the ring go meanwhile): nothing is allocated while streaming,
//! and at most [`SLOTS`] requests are in flight (back-pressure: a sink whose ring is full holds
//! our writes; a source whose own ring is full stops reading). Requests are built and sent
//! only from a work item, at `PASSIVE_LEVEL` as `KsProbeStreamIrp` on the sink side needs;
//! completion routines record the result, free the MDLs the sink's probe built, and schedule the
//! work item again.
//!
//! Nothing accepted is lost or repeated: a write the sink refuses or cancels (STOP, reset) keeps
//! its unaccepted remainder and sends it again, in order, once nothing else is in flight and the
//! sink says it runs again — and no newer write is sent while an older one has come back not
//! wholly accepted; reads are committed to the ring strictly in the order they were sent. A sink
//! whose input's writes were cancelled (reset, STOP) while its push source had writes out refuses
//! writes — and leaves queued ones where they are — until the source, with nothing in flight and
//! what came back accounted, acknowledges it (`Filter::feed_acknowledged`, on any such pass,
//! flowing or not): a reset that began *and* ended between a pass's last look at its requests
//! and a newer one's arrival (or its queueing) would otherwise have the newer one taken ahead of
//! an older one's remainder. A kick that comes while a request is back and not yet settled waits
//! for the pass that settles it ([`Source::take_unblock`]).
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

//! Modules: [`connect`] (the checks and the registration), [`slot`] (a request's IRP, headers and
//! buffer), [`push`] and [`pull`] (each kind's work), [`lend`] (a pull source's lent reads); here, the source itself, its work routine's
//! passes and its cleanup. The work item and the requests' plumbing are `kernel::outbound`'s.

mod connect;
mod lend;
mod pull;
mod push;
mod slot;

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use ksabi::{KSSTREAM_HEADER, NTSTATUS};

pub use connect::connect;
use slot::{AtomicSlotState, Slot, SlotIo, SlotState};

use crate::filter::{Counters, Filter};
use crate::ids;
use crate::kernel::irp::Device;
use crate::kernel::object::{Held, Object};
use crate::kernel::outbound::{Activity, Lease, Outbound, Owner, RequestMdls, StreamBuffers, Target, Worker};
use crate::kernel::pool::{PoolBox, Shared};
use crate::kernel::stream::Direction;
use crate::kernel::sync::{Exclusive, ExclusiveGuard};

/// Requests a source keeps in flight at most.
pub const SLOTS: usize = 4;
/// Stream headers per request.
pub const HEADERS: usize = 16;
const HEADER: usize = size_of::<KSSTREAM_HEADER>();

/// Which way a source moves data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// An output pin writing to another filter's input.
    Push,
    /// An input pin reading from another filter's output.
    Pull,
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
    /// Pull: after the sink ended, the filter's input ends once everything held is in the ring —
    /// once.
    input_end: InputEnd,
    /// Pull: what a read header reserves, learnt from what reads bring (0: not known yet, the
    /// most). Space a header does not fill stays reserved until its read is committed: sized to
    /// the frames, a read of small frames does not hold the ring's space for big ones.
    read_part: usize,
    /// Pull: the client read lent to a slot's request, if any ([`lend`]).
    lent: Option<lend::Loan>,
    /// Pull: the output's last read waiting was lent — no reading ahead into the ring meanwhile.
    lending: bool,
}

/// Pull: ending the filter's input after the sink ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InputEnd {
    /// The sink has not ended.
    Open,
    /// It ended: the input ends once every slot is free.
    Pending,
    /// The input was ended.
    Ended,
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
    /// Pull: the lent read's cancel routine ran and is done with it ([`lend`]).
    lent_cancelled: AtomicBool,
    /// Pull: the output whose read is lent stops, resets or closes: ask it back ([`lend`]).
    recall: AtomicBool,
    work: Exclusive<Work>,
    slots: [Slot; SLOTS],
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
        // Its requests' MDLs, sized for the ring its filter will allocate (`RequestMdls`).
        let region = filter.get().capacity() as usize;
        let slot = |i| {
            // A source's requests name its ring's storage: its slots need no buffer.
            let io = SlotIo {
                buffers: StreamBuffers::new(),
                holds: slot::Holds::default(),
                reserved: slot::Reserved::default(),
                hop_count: 0,
            };
            Some(Slot {
                request: Outbound::new(stack_size, i, RequestMdls::new(ids::TAG_SOURCE, region, HEADERS)?)?,
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
            lent_cancelled: AtomicBool::new(false),
            recall: AtomicBool::new(false),
            work: Exclusive::new(Work {
                filter: Some(filter),
                lease,
                next_seq: 0,
                next_done: 0,
                blocked: false,
                eos_sent: false,
                input_end: InputEnd::Open,
                read_part: 0,
                lent: None,
                lending: false,
            }),
            slots,
        };
        Shared::new(ids::TAG_SOURCE, source)
    }

    /// Whether any request of its is out (sent, or about to be: counted before it is sent, and
    /// until its completion routine ran).
    pub fn has_in_flight(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0
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
        let lent = work.lent.as_ref().map(|l| l.slot);
        for (i, slot) in self.slots.iter().enumerate() {
            if Some(i) == lent {
                continue; // given back by `service_lent`, never dropped
            }
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
        match self.kind {
            Kind::Push => {
                if self.release_holds(f) {
                    crate::stream::pump(f); // room in the ring
                }
            }
            Kind::Pull => {
                // Every held read was dropped: its space, and that of reads that brought nothing,
                // is given up (in order; a read still in flight gives up its own when it is back).
                self.settle_reservations(f);
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
        let Some(mut io) = slot.io.claim() else { return };
        let mut frames = 0;
        let mut bytes = 0;
        for i in 0..io.buffers.count() {
            frames += 1;
            // What the header holds, never more than its extent (a target's `DataUsed` may say
            // more); a push header's bytes are what is left to send: its length.
            let held = if kind == Kind::Pull { io.buffers.used(i) } else { io.buffers.len(i) };
            bytes += held as u64;
        }
        // The ring space of what is dropped is given back (in order, with the rest): push, the
        // holds; pull, the reservations ([`Source::settle_reservations`] gives up the space of
        // a free slot's, and forgets its headers).
        io.holds.done = io.holds.taken;
        Counters::add(&c.discarded_frames, frames);
        Counters::add(&c.discarded_bytes, bytes);
        slot.state.store(SlotState::Free);
    }

    /// One pass of the work routine.
    fn run(this: &Shared<Self>) {
        // One pass at a time (the worker), so the claim succeeds (the cleanup claims the state
        // only once no pass runs).
        let Some(mut work) = this.work.claim() else { return };
        let work = &mut *work;
        let Some(filter) = work.filter.take() else { return }; // let go by the cleanup
        if this.shutting_down.load(Ordering::SeqCst) {
            // The cleanup settles what is left once nothing runs — except a lent read, which it
            // waits for: given back here once its request is.
            this.service_lent(filter.get(), work);
        } else {
            Self::pass(this, filter.get(), work);
        }
        work.filter = Some(filter);
    }

    /// [`Source::run`] with the work routine's state and the filter taken out of it.
    fn pass(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        this.service_lent(f, work);
        if this.stopping.load(Ordering::SeqCst) {
            // The pin went to STOP: nothing more moves (its filter's ring was just emptied); what
            // is held, or comes back, is dropped until nothing is in flight. "Nothing in flight"
            // is read before the drop: a request marks itself done before it leaves the count, so
            // then the drop sees every one. (Read after, a request completing during the drop was
            // left done but not dropped, and the next pass took it for a refusal to send again —
            // its frames held, never counted, while the pin stayed in STOP.)
            let idle = this.in_flight.load(Ordering::SeqCst) == 0;
            this.drop_held(f, work);
            if idle {
                this.stopping.store(false, Ordering::SeqCst);
            }
        }
        // The STOP is over: this pass goes on with the ordinary work — the pin may run again
        // already, and the kicks that said so were merged into this pass (`Worker::schedule`):
        // none comes after it. (Before, a pass that ended a STOP only dropped, and a pull source
        // run again meanwhile never read again.) In STOP still, `push`/`pull` send nothing.
        if !this.stopping.load(Ordering::SeqCst) {
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
        } else if work.input_end == InputEnd::Open {
            work.input_end = InputEnd::Pending;
        }
        if work.input_end == InputEnd::Pending
            && !this.slots.iter().any(|s| s.state.load() != SlotState::Free)
        {
            // Everything the sink gave us is in the ring: the input ends behind it. Once: ending it
            // pumps the filter, which kicks its sources, this one too — ended on every pass, the
            // source kicked itself for ever and its work routine never returned (on a uniprocessor
            // its queue ran nothing else: the ReactOS lab's hang).
            work.input_end = InputEnd::Ended;
            f.end_input();
        }
        if let Some(claim) = this.target.claim() {
            // Nothing of ours is in flight to the target. Letting go may close the sink (inline,
            // at PASSIVE_LEVEL): no lock is held here.
            claim.let_go(&mut work.lease);
        }
    }

    /// A STOP or the cleanup began: a pass sending requests stops (a request sent after it would
    /// be dropped with what it brought, or carry frames a STOP should have kept).
    fn winding_down(&self) -> bool {
        self.stopping.load(Ordering::SeqCst) || self.shutting_down.load(Ordering::SeqCst)
    }

    /// Slots in the order they were sent.
    fn by_seq(&self) -> [usize; SLOTS] {
        let mut order = [0, 1, 2, 3];
        order.sort_unstable_by_key(|&i| self.slots[i].seq.load(Ordering::SeqCst));
        order
    }

    /// A kick since the sink refused (it runs again): try again. Taken only once every request
    /// back is settled — a refusal settled after the kick that followed it must not block the
    /// source until a kick that may never come: not while one that came back after this pass
    /// settled its requests is still unsettled (its completion scheduled the pass that settles
    /// it, and takes the kick then).
    fn take_unblock(&self, work: &mut Work) {
        if self.slots.iter().any(|s| s.state.load() == SlotState::Done) {
            return;
        }
        if self.unblock.swap(false, Ordering::SeqCst) {
            work.blocked = false;
        }
    }

    /// Sends slot `i`'s request with its buffers `io`.
    fn send(
        this: &Shared<Self>,
        lease: &Lease,
        i: usize,
        io: ExclusiveGuard<'_, PoolBox<SlotIo>>,
        direction: Direction,
    ) {
        let slot = &this.slots[i];
        slot.state.store(SlotState::InFlight);
        this.in_flight.fetch_add(1, Ordering::SeqCst);
        slot.request.send(this, &this.target, lease, direction, io);
        // A STOP or shutdown that looked for requests in flight before this one was marked would
        // have missed it (both sides store, then load, sequentially consistent): cancel it here.
        let cancelling = this.stopping.load(Ordering::SeqCst) || this.shutting_down.load(Ordering::SeqCst);
        if cancelling && slot.state.load() == SlotState::InFlight {
            slot.request.cancel();
        }
    }
}
