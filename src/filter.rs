//! Filter instances: one per `CreateFile` on the device interface. A filter owns one ring; its
//! input pin is the ring's producer end and its output pin the consumer end.
//!
//! # Locks, in the only order they are taken
//! 1. `control` — pin slots and formats, the ring's memory and who holds it, the capacity;
//! 2. `producer` — the ring's producer half (only the holder writes frames);
//! 3. `consumer` — the ring's consumer half;
//! 4. the KS queue locks (inside ks.sys' queue routines), then the cancel spin lock.
//!
//! Pin states, reset flags and the input-closed flag are atomics so the stream path reads them
//! without `control`. Transitions store the new state *before* cancelling a queue, and the stream
//! path queues an IRP *before* re-reading the state, so an IRP is either cancelled by the
//! transition or sees the new state (`stream::dispatch`).

use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use framering::{Consumer, Producer};
use ksabi::{
    IOCTL_KS_PROPERTY, KSDISPATCH_TABLE, KSOBJECT_CREATE_ITEM, KSRESET, KSRESET_BEGIN, KSRESET_END, KSSTATE,
    KSSTATE_ACQUIRE, KSSTATE_RUN, KSSTATE_STOP, NTSTATUS, STATUS_DEVICE_BUSY, STATUS_FILE_CLOSED,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, STATUS_QUOTA_EXCEEDED,
    STATUS_SUCCESS, nt_success,
};
use ksring_api::{DEFAULT_CAPACITY, KsRingStatistics, MAX_CAPACITY, MIN_CAPACITY};

use crate::pin_id::{PerPin, PinId};

use crate::device::DeviceCounters;
use crate::format::Format;
use crate::kernel::irp::{Device, Irp};
use crate::kernel::nt::static_unicode;
use crate::kernel::object::{self, CreateItems, KIND_FILTER, ObjectPrefix};
use crate::kernel::pool::Shared;
use crate::kernel::ring_memory::{NewRing, RingMemory, RingRef};
use crate::kernel::stream::StreamQueue;
use crate::kernel::sync::SpinLock;
use crate::limits::Limits;
use crate::source::Source;
use crate::stream::{Pumper, Side};
use crate::{kernel, pin, props, stream};

/// `KSSTRING_Pin`: the name of the pin factory create item, relative to a filter.
static PIN_ITEM_NAME: [u16; 38] = ksabi::KSSTRING_Pin;

/// What `control` guards.
struct Control {
    /// This filter's pins that are IRP sources.
    sources: PerPin<Option<Shared<Source>>>,
    /// Sources of other filters feeding this filter's pins (which are their sinks).
    feeders: PerPin<Option<Shared<Source>>>,
    /// The format of each connected pin (`None`: no pin of that factory).
    formats: PerPin<Option<Format>>,
    /// Which pins hold the ring (are out of STOP).
    holders: PerPin<bool>,
    /// The ring's memory while any pin holds it.
    ring: Option<RingMemory>,
    /// Storage bytes for the next allocation.
    capacity: u32,
    /// Highest fill of rings already freed.
    past_high_water: u64,
}

/// Counters of the stream path ([`KsRingStatistics`]), each written under the lock of its side.
#[derive(Default)]
pub struct Counters {
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub discarded_frames: AtomicU64,
    pub discarded_bytes: AtomicU64,
    pub split_parts: AtomicU64,
    pub direct_frames: AtomicU64,
    /// Payload bytes the driver copied into the ring.
    pub copied_in: AtomicU64,
    /// Payload bytes the driver copied into a reader's buffer.
    pub copied_out: AtomicU64,
}

impl Counters {
    /// Adds `n` (writers hold the lock of the counter's side: plain read-modify-write is enough).
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// A filter instance, at `FsContext` of its file object.
#[repr(C)]
pub struct Filter {
    pub(crate) prefix: ObjectPrefix,
    /// The pin factory, referenced (not copied) by the object header.
    pub(crate) create_items: CreateItems<1>,
    device: &'static DeviceCounters,
    /// The driver's caps on ring memory (in its driver object extension, which outlives every
    /// filter).
    limits: &'static Limits,
    control: SpinLock<Control>,
    /// The ring's producer half, while the ring exists, and the write in progress.
    pub producer: SpinLock<Side<Producer<'static>>>,
    /// The ring's consumer half, while the ring exists, and the read in progress.
    pub consumer: SpinLock<Side<Consumer<'static>>>,
    /// Who drains the writes now.
    pub write_pumper: Pumper,
    /// Who drains the reads now.
    pub read_pumper: Pumper,
    /// Pending writes of the input pin.
    pub writes: StreamQueue,
    /// Pending reads of the output pin.
    pub reads: StreamQueue,
    states: PerPin<AtomicI32>,
    resetting: PerPin<AtomicBool>,
    /// The pin's last handle has closed (its cleanup began); requests still sent to it by an IRP
    /// source holding a reference get `STATUS_FILE_CLOSED`.
    closing: PerPin<AtomicBool>,
    input_closed: AtomicBool,
    /// Which pins another filter's IRP source feeds: `Control::feeders` as the stream path reads
    /// it, without the control lock (set and cleared under it).
    fed: PerPin<AtomicBool>,
    /// The input's writes were cancelled (STOP, reset) while its push source had some out, and the
    /// source has not yet said it took them back ([`Filter::feed_acknowledged`]): until then new
    /// writes are refused and queued ones wait. A write the source sent before it saw the cancel
    /// would otherwise be taken ahead of what the cancel gave back to it — a reset begun and
    /// ended between the source's last look at its requests and a newer one's arrival.
    feed_cancelled: AtomicBool,
    /// A read of the output is lent to the pull source feeding the input
    /// ([`crate::kernel::stream::LentRead`]): later reads wait for it.
    read_lent: AtomicBool,
    /// How many times the output's requests were cancelled (STOP, reset, cleanup): a lent read
    /// taken before the latest one and given back with nothing is cancelled, whatever the state
    /// is by then (a STOP and a RUN may both come while it is lent).
    output_cancels: AtomicU32,
    /// Stream statistics.
    pub counters: Counters,
}

const _: () = assert!(align_of::<Filter>() <= 16, "pool blocks are 16-byte aligned");

/// The filter's dispatch table: device control and close are its own, the rest is refused.
static DISPATCH: KSDISPATCH_TABLE = object::dispatch_table(Some(device_control), Some(close));

/// The filter factory's create routine (the device header's create item): a filter with its
/// pin factory's create item, in STOP, with no ring yet.
fn create(device: Device, irp: Irp) -> NTSTATUS {
    let limits = device.limits();
    let (writes, write_key) = StreamQueue::new();
    let (reads, read_key) = StreamQueue::new();
    let filter = Filter {
        prefix: ObjectPrefix { header: null_mut(), kind: KIND_FILTER },
        create_items: CreateItems([KSOBJECT_CREATE_ITEM {
            Create: Some(pin::dispatch_create),
            Context: null_mut(),
            ObjectClass: static_unicode(&PIN_ITEM_NAME),
            SecurityDescriptor: null_mut(),
            Flags: 0,
        }]),
        device: device.counters(),
        limits,
        control: SpinLock::new(Control {
            sources: PerPin::new(None, None),
            feeders: PerPin::new(None, None),
            formats: PerPin::new(None, None),
            holders: PerPin::new(false, false),
            ring: None,
            capacity: DEFAULT_CAPACITY.min(limits.per_filter),
            past_high_water: 0,
        }),
        producer: SpinLock::new(Side::new(write_key)),
        consumer: SpinLock::new(Side::new(read_key)),
        write_pumper: Pumper::new(),
        read_pumper: Pumper::new(),
        writes,
        reads,
        states: PerPin::new(AtomicI32::new(KSSTATE_STOP), AtomicI32::new(KSSTATE_STOP)),
        resetting: PerPin::new(AtomicBool::new(false), AtomicBool::new(false)),
        closing: PerPin::new(AtomicBool::new(false), AtomicBool::new(false)),
        input_closed: AtomicBool::new(false),
        fed: PerPin::new(AtomicBool::new(false), AtomicBool::new(false)),
        feed_cancelled: AtomicBool::new(false),
        read_lent: AtomicBool::new(false),
        output_cancels: AtomicU32::new(0),
        counters: Counters::default(),
    };
    let status = match kernel::object::create(&irp, filter, &DISPATCH) {
        Ok(()) => STATUS_SUCCESS,
        Err(status) => status,
    };
    irp.complete(status, 0)
}

fn filter_close(_device: Device, irp: Irp) -> NTSTATUS {
    // Pins hold the ring, and they are closed: nothing is left but the filter itself.
    kernel::object::close(irp, Filter::release_ring_if_unheld)
}

kernel::irp::dispatch_routines! {
    /// The filter factory's create routine (the device header's create item).
    pub dispatch_create => create,
    /// `IRP_MJ_DEVICE_CONTROL` of a filter: properties; everything else as KS' default does it.
    device_control => filter_device_control,
    /// `IRP_MJ_CLOSE` of a filter: it arrives after every pin of the filter has closed.
    close => filter_close,
}

fn filter_device_control(device: Device, irp: Irp) -> NTSTATUS {
    if irp.ioctl_code() == IOCTL_KS_PROPERTY {
        return kernel::property::handle(irp, props::filter_sets());
    }
    irp.complete_by_default(device)
}

impl Filter {
    /// The state of pin `pin` (STOP when it does not exist).
    pub fn state(&self, pin: PinId) -> KSSTATE {
        self.states[pin].load(Ordering::SeqCst)
    }

    /// Whether pin `pin` is between `KSRESET_BEGIN` and `KSRESET_END`.
    pub fn resetting(&self, pin: PinId) -> bool {
        self.resetting[pin].load(Ordering::SeqCst)
    }

    /// Whether data may move on pin `pin`'s side.
    pub fn flowing(&self, pin: PinId) -> bool {
        self.state(pin) == KSSTATE_RUN && !self.resetting(pin)
    }

    /// Whether the input pin has closed and none has been connected since: readers that find the
    /// ring empty get `ENDOFSTREAM`.
    pub fn input_closed(&self) -> bool {
        self.input_closed.load(Ordering::SeqCst)
    }

    /// Whether a read of the output is lent to the input's pull source.
    pub fn read_lent(&self) -> bool {
        self.read_lent.load(Ordering::SeqCst)
    }

    /// How many times the output's requests were cancelled so far.
    pub fn output_cancels(&self) -> u32 {
        self.output_cancels.load(Ordering::SeqCst)
    }

    /// Marks a read of the output lent (or given back).
    pub fn set_read_lent(&self, lent: bool) {
        self.read_lent.store(lent, Ordering::SeqCst);
    }

    /// Cancels pin `pin`'s stream requests: those on its queue now, and the one a pump holds in
    /// progress when it gives it back.
    pub fn cancel_requests(&self, pin: PinId) {
        if pin == PinId::Input {
            // Before the cancel: a write the source sends from now on is refused until it has
            // taken back what this cancels — if any of its writes is out (counted before it is
            // sent: with none out, nothing of it is queued here, and whatever it sends next is
            // its oldest).
            let c = self.control.lock();
            if c.feeders[pin].as_ref().is_some_and(|s| s.has_in_flight()) {
                self.feed_cancelled.store(true, Ordering::SeqCst);
            }
        } else {
            // After the state that stops the output was stored (the callers store it first), and
            // before the queue's cancel: a read taken to be lent that saw this count saw that state.
            self.output_cancels.fetch_add(1, Ordering::SeqCst);
        }
        self.queue(pin).cancel_all();
        stream::let_go(self, pin);
        if pin == PinId::Output {
            // A read lent to the input's pull source is on no queue: asked back, it returns to
            // this one and is cancelled there (`source::lend`). With none lent the recall is void.
            if let Some(s) = &self.control.lock().sources[PinId::Input] {
                Source::recall_lent(s);
            }
        }
    }

    /// Whether writes wait for the feeding push source to take back cancelled writes.
    pub fn feed_cancelled(&self) -> bool {
        self.feed_cancelled.load(Ordering::SeqCst)
    }

    /// The push source `source` feeding the input has nothing in flight and has accounted every
    /// write that came back: writes are taken again. (From another source — one that was
    /// detached — nothing changes.)
    pub fn feed_acknowledged(&self, source: &Shared<Source>) {
        if !self.feed_cancelled() {
            return;
        }
        let c = self.control.lock();
        if c.feeders[PinId::Input].as_ref().is_some_and(|f| Shared::ptr_eq(f, source)) {
            self.feed_cancelled.store(false, Ordering::SeqCst);
        }
    }

    /// The queue of pin `pin`'s stream requests.
    pub fn queue(&self, pin: PinId) -> &StreamQueue {
        if pin == PinId::Input { &self.writes } else { &self.reads }
    }

    fn device(&self) -> &DeviceCounters {
        self.device
    }

    /// The format of pin `pin`, if connected.
    pub fn format(&self, pin: PinId) -> Option<Format> {
        self.control.lock().formats[pin]
    }

    /// `KSPROPERTY_PIN_CINSTANCES`: `(possible, current)` in this filter.
    pub fn instances(&self, pin: PinId) -> (u32, u32) {
        (1, u32::from(self.format(pin).is_some()))
    }

    /// `KSPROPERTY_PIN_GLOBALCINSTANCES`: pins of factory `pin` in every filter of the device.
    pub fn global_instances(&self, pin: PinId) -> u32 {
        self.device().pins[pin].load(Ordering::SeqCst)
    }

    /// Whether a pin of factory `pin` could stream `format` now: the other pin, if connected,
    /// streams the same format (`STATUS_NO_MATCH` otherwise).
    pub fn check_peer(&self, pin: PinId, format: Format) -> NTSTATUS {
        match self.control.lock().formats[pin.peer()] {
            Some(other) if other != format => STATUS_NO_MATCH,
            _ => STATUS_SUCCESS,
        }
    }

    /// The format a new pin of factory `pin` would be offered: the other pin's, or a byte stream.
    pub fn proposed_format(&self, pin: PinId) -> Format {
        self.format(pin.peer()).unwrap_or(Format::Stream)
    }

    /// Connects a new pin of factory `pin` with `format`: one instance per factory
    /// (`STATUS_DEVICE_BUSY`), the other pin's format (`STATUS_NO_MATCH`).
    pub fn connect(&self, pin: PinId, format: Format) -> NTSTATUS {
        let mut c = self.control.lock();
        if c.formats[pin].is_some() {
            return STATUS_DEVICE_BUSY;
        }
        if c.formats[pin.peer()].is_some_and(|other| other != format) {
            return STATUS_NO_MATCH;
        }
        c.formats[pin] = Some(format);
        self.states[pin].store(KSSTATE_STOP, Ordering::SeqCst);
        self.resetting[pin].store(false, Ordering::SeqCst);
        self.device().pins[pin].fetch_add(1, Ordering::SeqCst);
        STATUS_SUCCESS
    }

    /// The pin [`Filter::connect`]ed is created: a new input ends a previous end of stream.
    pub fn connected(&self, pin: PinId) {
        self.closing[pin].store(false, Ordering::SeqCst);
        if pin == PinId::Input {
            self.input_closed.store(false, Ordering::SeqCst);
        }
    }

    /// Undoes [`Filter::connect`] for a pin whose creation failed after it.
    pub fn abandon(&self, pin: PinId) {
        self.control.lock().formats[pin] = None;
        self.device().pins[pin].fetch_sub(1, Ordering::SeqCst);
    }

    /// `KSPROPERTY_CONNECTION_DATAFORMAT` set: only in STOP (`STATUS_INVALID_DEVICE_STATE`), and
    /// only to the other pin's format if it is connected (`STATUS_NO_MATCH`).
    pub fn change_format(&self, pin: PinId, format: Format) -> NTSTATUS {
        if self.state(pin) != KSSTATE_STOP {
            return STATUS_INVALID_DEVICE_STATE;
        }
        let mut c = self.control.lock();
        if c.formats[pin.peer()].is_some_and(|other| other != format) {
            return STATUS_NO_MATCH;
        }
        c.formats[pin] = Some(format);
        STATUS_SUCCESS
    }

    /// The pin of factory `pin` closed (its requests were cancelled at cleanup). Closing the input
    /// leaves the ring to the readers, who drain it and then see `ENDOFSTREAM`.
    pub fn disconnect(&self, pin: PinId) {
        self.states[pin].store(KSSTATE_STOP, Ordering::SeqCst);
        self.cancel_requests(pin);
        if pin == PinId::Input {
            self.input_closed.store(true, Ordering::SeqCst);
        }
        {
            let mut c = self.control.lock();
            c.formats[pin] = None;
            c.holders[pin] = false;
        }
        self.release_ring_if_unheld();
        self.device().pins[pin].fetch_sub(1, Ordering::SeqCst);
        stream::pump(self);
    }

    /// `KSPROPERTY_CONNECTION_STATE` set. KS lets a client jump states; the pin goes through each
    /// one in between (STOP → ACQUIRE → PAUSE → RUN and back), as AVStream does for its pins.
    pub fn set_state(&self, pin: PinId, target: KSSTATE) -> NTSTATUS {
        if !(KSSTATE_STOP..=KSSTATE_RUN).contains(&target) {
            return STATUS_INVALID_PARAMETER;
        }
        loop {
            let current = self.state(pin);
            if current == target {
                break;
            }
            let next = if target > current { current + 1 } else { current - 1 };
            let status = match (current, next) {
                (KSSTATE_STOP, KSSTATE_ACQUIRE) => self.acquire(pin),
                (KSSTATE_ACQUIRE, KSSTATE_STOP) => {
                    self.stop(pin);
                    STATUS_SUCCESS
                }
                _ => {
                    self.states[pin].store(next, Ordering::SeqCst);
                    STATUS_SUCCESS
                }
            };
            if !nt_success(status) {
                return status;
            }
        }
        stream::pump(self);
        STATUS_SUCCESS
    }

    /// STOP → ACQUIRE: the pin holds the ring, allocated now if no pin held it.
    fn acquire(&self, pin: PinId) -> NTSTATUS {
        loop {
            let wanted = {
                let mut c = self.control.lock();
                if c.ring.is_some() {
                    c.holders[pin] = true;
                    self.states[pin].store(KSSTATE_ACQUIRE, Ordering::SeqCst);
                    return STATUS_SUCCESS;
                }
                c.capacity
            };
            // Allocate (and zero) outside the lock: up to 64 MiB.
            let fresh = match RingMemory::allocate(wanted, self.limits) {
                Ok(fresh) => fresh,
                Err(status) => return status,
            };
            let mut c = self.control.lock();
            if c.ring.is_some() || c.capacity != wanted {
                drop(c);
                free_ring(fresh);
                continue; // another pin allocated meanwhile, or the capacity changed: look again
            }
            self.producer.lock().ring = Some(fresh.producer);
            self.consumer.lock().ring = Some(fresh.consumer);
            c.ring = Some(fresh.memory);
            c.holders[pin] = true;
            self.states[pin].store(KSSTATE_ACQUIRE, Ordering::SeqCst);
            return STATUS_SUCCESS;
        }
    }

    /// ACQUIRE → STOP: cancel the pin's requests, discard what the ring holds (counted), and free
    /// the ring if no pin holds it any more.
    fn stop(&self, pin: PinId) {
        self.states[pin].store(KSSTATE_STOP, Ordering::SeqCst);
        self.cancel_requests(pin);
        self.stop_source(pin);
        self.discard();
        self.control.lock().holders[pin] = false;
        self.release_ring_if_unheld();
    }

    /// `IOCTL_KS_RESET_STATE`: BEGIN cancels the pin's requests, discards the ring's contents and
    /// refuses stream requests with `STATUS_DEVICE_NOT_READY` until END.
    pub fn reset(&self, pin: PinId, value: KSRESET) -> NTSTATUS {
        match value {
            KSRESET_BEGIN => {
                self.resetting[pin].store(true, Ordering::SeqCst);
                self.cancel_requests(pin);
                self.discard();
            }
            KSRESET_END => {
                self.resetting[pin].store(false, Ordering::SeqCst);
                stream::pump(self);
            }
            _ => return STATUS_INVALID_PARAMETER,
        }
        STATUS_SUCCESS
    }

    /// Empties the ring, counting what it held as discarded. Space an IRP source's requests name
    /// in place is left alone — frames a push source sends, space a pull source reserved for its
    /// reads (either may still be completing): then only what is published and not taken is
    /// drained, and that space comes back as the source releases or gives it up. (A reset would
    /// hand space a request still names to new frames.)
    fn discard(&self) {
        let mut producer = self.producer.lock();
        let mut consumer = self.consumer.lock();
        let (Some(p), Some(c)) = (producer.ring.as_mut(), consumer.ring.as_mut()) else { return };
        let in_use = c.is_holding() || p.pending() > 0;
        let gone = if in_use { Some(c.drain()) } else { framering::reset(p, c).ok() };
        if let Some(gone) = gone {
            Counters::add(&self.counters.discarded_frames, gone.frames);
            Counters::add(&self.counters.discarded_bytes, gone.bytes);
        }
    }

    /// A reference on the ring's memory (while it has one), which keeps it allocated: what a push
    /// source's requests name in place.
    pub fn ring_ref(&self) -> Option<RingRef> {
        self.control.lock().ring.as_ref().map(RingMemory::share)
    }

    /// Frees the ring when no pin holds it; what it still held is counted as discarded.
    fn release_ring_if_unheld(&self) {
        let mut c = self.control.lock();
        if c.holders.iter().any(|&h| h) {
            return;
        }
        let Some(memory) = c.ring.take() else {
            return;
        };
        self.discard();
        let stats = memory.core().stats();
        c.past_high_water = c.past_high_water.max(stats.high_water);
        // The halves borrow the block: they go back with it. (No request is in progress: every
        // pin's requests were cancelled and let go before the last pin stopped or closed.)
        let producer = self.producer.lock().take_ring();
        let consumer = self.consumer.lock().take_ring();
        if let (Some(producer), Some(consumer)) = (producer, consumer) {
            memory.free(producer, consumer);
        }
    }

    /// Whether pin `pin` is an IRP source (it moves data itself; clients do not stream to it).
    pub fn is_source(&self, pin: PinId) -> bool {
        self.control.lock().sources[pin].is_some()
    }

    /// Registers pin `pin` as an IRP source.
    pub fn attach_source(&self, pin: PinId, source: Shared<Source>) {
        let old = self.control.lock().sources[pin].replace(source);
        drop(old); // none (one instance per pin factory); outside the lock all the same
    }

    /// Unregisters pin `pin`'s source (its cleanup): the filter stops kicking it.
    pub fn detach_source(&self, pin: PinId) -> Option<Shared<Source>> {
        self.control.lock().sources[pin].take()
    }

    /// Registers `source` as feeding this filter's pin `pin`: `STATUS_DEVICE_BUSY` if one already
    /// does, `STATUS_FILE_CLOSED` if the pin's last handle has closed meanwhile (its cleanup would
    /// not tell the source).
    pub fn attach_feeder(&self, pin: PinId, source: Shared<Source>) -> Result<(), NTSTATUS> {
        let refused = {
            let mut c = self.control.lock();
            if self.closing(pin) {
                Some(STATUS_FILE_CLOSED)
            } else if c.feeders[pin].is_some() {
                Some(STATUS_DEVICE_BUSY)
            } else {
                // (`feed_cancelled` is clear: it is set only with a feeder, and cleared with it.)
                c.feeders[pin] = Some(source.clone());
                self.fed[pin].store(true, Ordering::SeqCst);
                None
            }
        };
        // Our reference goes after the lock (it is never the last: the caller holds one).
        drop(source);
        refused.map_or(Ok(()), Err)
    }

    /// Takes pin `pin`'s feeder out of `c` (the control lock held): the pin is fed no more, and
    /// nobody is left to acknowledge a cancel of its writes — other writers are not held back.
    fn take_feeder(&self, c: &mut Control, pin: PinId) -> Option<Shared<Source>> {
        self.fed[pin].store(false, Ordering::SeqCst);
        if pin == PinId::Input {
            self.feed_cancelled.store(false, Ordering::SeqCst);
        }
        c.feeders[pin].take()
    }

    /// Whether pin `pin`'s last handle has closed.
    pub fn closing(&self, pin: PinId) -> bool {
        self.closing[pin].load(Ordering::SeqCst)
    }

    /// Unregisters `source` from pin `pin` (the source's cleanup, while the sink is alive);
    /// returns the filter's reference to it, for the caller to drop after the lock.
    pub fn detach_feeder(&self, pin: PinId, source: &Shared<Source>) -> Option<Shared<Source>> {
        let detached = {
            let mut c = self.control.lock();
            if c.feeders[pin].as_ref().is_some_and(|f| Shared::ptr_eq(f, source)) {
                self.take_feeder(&mut c, pin)
            } else {
                None
            }
        };
        self.no_longer_passing_through(pin);
        detached
    }

    /// Pin `pin`'s last handle closed: no new requests (a source may still send some until it
    /// hears), and a source feeding it is told, and forgotten.
    pub fn sink_cleanup(&self, pin: PinId) {
        self.closing[pin].store(true, Ordering::SeqCst);
        let feeder = {
            let mut c = self.control.lock();
            self.take_feeder(&mut c, pin)
        };
        // Told after the lock is let go (its reference may be the source's last).
        if let Some(source) = feeder {
            Source::sink_ended(&source);
        }
        self.no_longer_passing_through(pin);
    }

    /// Whether frames may pass through this filter without stopping in its ring: its input is
    /// written by a push source and its output read by a pull source, both other filters' IRP
    /// sources (the stream path's pass-through: `stream::write`).
    pub fn passes_through(&self) -> bool {
        self.fed[PinId::Input].load(Ordering::SeqCst) && self.fed[PinId::Output].load(Ordering::SeqCst)
    }

    /// The pull source reading our output went: writes a pass-through kept waiting for its reads
    /// go into the ring now (nothing else would move them).
    fn no_longer_passing_through(&self, pin: PinId) {
        if pin == PinId::Output {
            stream::pump(self);
        }
    }

    /// The filter moved data or changed state: sources (own pins that push or pull) may go on,
    /// and so may sources feeding its pins (a sink that runs again accepts what it refused).
    pub fn kick_sources(&self) {
        let c = self.control.lock();
        for s in c.sources.iter().chain(c.feeders.iter()).flatten() {
            Source::kick(s);
        }
    }

    /// Pin `pin` went to STOP: if it is a source, it drops what it holds.
    fn stop_source(&self, pin: PinId) {
        if let Some(s) = &self.control.lock().sources[pin] {
            Source::stop(s);
        }
    }

    /// The input ended without an input pin closing: an IRP-source input read the end of stream.
    pub fn end_input(&self) {
        self.input_closed.store(true, Ordering::SeqCst);
        stream::pump(self);
    }

    /// `KSPROPERTY_KSRING_CAPACITY` get.
    pub fn capacity(&self) -> u32 {
        self.control.lock().capacity
    }

    /// `KSPROPERTY_KSRING_CAPACITY` set: a multiple of 8 within bounds (`STATUS_INVALID_PARAMETER`),
    /// while no pin holds the ring (`STATUS_INVALID_DEVICE_STATE`).
    pub fn set_capacity(&self, bytes: u32) -> NTSTATUS {
        if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&bytes) || !bytes.is_multiple_of(8) {
            return STATUS_INVALID_PARAMETER;
        }
        if bytes > self.limits.per_filter {
            return STATUS_QUOTA_EXCEEDED; // the driver's per-filter cap (MaxFilterRingMiB)
        }
        let mut c = self.control.lock();
        if c.ring.is_some() {
            return STATUS_INVALID_DEVICE_STATE;
        }
        c.capacity = bytes;
        STATUS_SUCCESS
    }

    /// The frame size that travels whole (`KSALLOCATOR_FRAMING.FrameSize`) for the current
    /// capacity: larger frames go through the ring in parts ([`stream::piece_limit`]).
    pub fn whole_frame_limit(&self) -> u32 {
        stream::piece_limit_for(self.capacity())
    }

    /// `KSPROPERTY_KSRING_STATISTICS`.
    ///
    /// The copy counters are counted where the copies happen: a writer's bytes into the ring
    /// (in); the ring's bytes, or a writer's straight to a waiting read, into a reader's buffer
    /// (out). IRP sources copy nothing: their requests name the ring.
    pub fn statistics(&self) -> KsRingStatistics {
        let (capacity, fill, high_water) = {
            let c = self.control.lock();
            match &c.ring {
                Some(m) => {
                    let s = m.core().stats();
                    (u64::from(m.capacity()), s.used, c.past_high_water.max(s.high_water))
                }
                None => (0, 0, c.past_high_water),
            }
        };
        let n = &self.counters;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let bytes_out = get(&n.bytes_out);
        KsRingStatistics {
            capacity,
            fill,
            high_water,
            frames_in: get(&n.frames_in),
            bytes_in: get(&n.bytes_in),
            frames_out: get(&n.frames_out),
            bytes_out,
            discarded_frames: get(&n.discarded_frames),
            discarded_bytes: get(&n.discarded_bytes),
            split_parts: get(&n.split_parts),
            direct_frames: get(&n.direct_frames),
            pending_writes: self.writes.len(),
            pending_reads: self.reads.len(),
            copied_in: get(&n.copied_in),
            copied_out: get(&n.copied_out),
        }
    }
}

/// Drops a ring that lost the race to be installed.
fn free_ring(ring: NewRing) {
    let NewRing { memory, producer, consumer } = ring;
    memory.free(producer, consumer);
}
