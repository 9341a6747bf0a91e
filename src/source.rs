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

use core::ffi::c_void;
use core::ptr::{self, null_mut};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use core::cell::UnsafeCell;

use framering::{FrameMeta, ReserveError};
use ksabi::{
    DEVICE_OBJECT, DelayedWorkQueue, Executive, FILE_OBJECT, FILE_READ_DATA, FILE_WRITE_DATA,
    IO_PARAMETERS_DEVICE_IO_CONTROL, IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, IRP, IRP_MJ_DEVICE_CONTROL,
    KEVENT, KSSTREAM_HEADER, KSTIME, KernelMode, KsStreamOptions, MDL_PAGES_LOCKED, NTSTATUS,
    NotificationEvent, POOL_FLAG_NON_PAGED, STATUS_CANCELLED, STATUS_DEVICE_NOT_READY,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_NO_MATCH, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, nt_success,
};
use ksring_api::{KSRING_OPTIONSF_CONTINUES, PIN_INPUT, PIN_OUTPUT};

use crate::filter::{Counters, Filter};
use crate::format::Format;
use crate::kernel::nt;
use crate::kernel::object::{self, Object};
use crate::pin::Pin;
use crate::stream::{self, HOLD_BUDGET, RECORD_COST, part_flags, piece_limit};
use crate::{ids, sys};

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

// Slot states.
const FREE: u32 = 0;
const IN_FLIGHT: u32 = 1;
const DONE: u32 = 2;
const HELD: u32 = 3;

// Work item states.
const IDLE: u32 = 0;
const QUEUED: u32 = 1;
const RUNNING: u32 = 2;
const RERUN: u32 = 3;

/// What only the work routine touches (one instance runs at a time) — and cleanup, once nothing
/// else can run.
struct SlotWork {
    /// Order of sending (and, for pulls, of handing data to the ring).
    seq: u64,
    /// Headers in use.
    count: usize,
    /// Pull: the first header not yet in the ring, and how much of it is.
    next: usize,
    offset: usize,
}

/// One request: its IRP, headers and buffer.
struct Slot {
    source: *const Source,
    irp: *mut IRP,
    data: *mut u8,
    state: AtomicU32,
    status: AtomicI32,
    information: AtomicUsize,
    headers: UnsafeCell<[KSSTREAM_HEADER; HEADERS]>,
    work: UnsafeCell<SlotWork>,
}

impl Slot {
    /// The slot's bookkeeping and header array.
    ///
    /// # Safety
    /// The caller holds the slot: it is not in flight, and only the single running work routine
    /// (or cleanup, once nothing else runs) touches it; no other reference to them is alive.
    #[allow(clippy::mut_from_ref)] // exclusive by the slot protocol above, not by the borrow
    unsafe fn held(&self) -> (&mut SlotWork, &mut [KSSTREAM_HEADER; HEADERS]) {
        // SAFETY: the caller's promise.
        let work = unsafe { &mut *self.work.get() };
        // SAFETY: as above.
        let headers = unsafe { &mut *self.headers.get() };
        (work, headers)
    }
}

/// The work routine's own state.
struct Work {
    next_seq: u64,
    next_done: u64,
    /// The sink refused: wait for it to say it runs again.
    blocked: bool,
    eos_sent: bool,
    /// Pull: the sink ended; end the filter's input once everything held is in the ring.
    end_input_pending: bool,
}

// Who drops the reference to the target: whoever moves it out of ATTACHED first.
const ATTACHED: u32 = 0;
const RELEASED: u32 = 1;

/// An IRP-source pin's connection.
pub struct Source {
    kind: Kind,
    filter: *const Filter,
    target: *mut FILE_OBJECT,
    target_device: *mut DEVICE_OBJECT,
    work_item: *mut c_void,
    work_state: AtomicU32,
    target_state: AtomicU32,
    /// The source itself (1 until cleanup), queued work, and requests in flight.
    busy: AtomicU32,
    in_flight: AtomicU32,
    idle: UnsafeCell<KEVENT>,
    /// The sink's last handle closed.
    ended: AtomicBool,
    shutting_down: AtomicBool,
    /// The pin went to STOP: drop what is held.
    stopping: AtomicBool,
    /// A kick since the last run (the sink or the filter moved): retry refused requests.
    unblock: AtomicBool,
    work: UnsafeCell<Work>,
    slots: [Slot; SLOTS],
}

// SAFETY: shared fields are atomics; `work`, the slots' `work` and `headers` are touched only by
// the single running work routine, by the completion of a slot the routine sent (which it does not
// touch while in flight), and by cleanup after everything else has finished.
unsafe impl Sync for Source {}
// SAFETY: as above; the raw pointers are to pool memory, the filter and kernel objects.
unsafe impl Send for Source {}

const _: () = assert!(align_of::<Source>() <= 16, "pool blocks are 16-byte aligned");

/// Why a connection was refused.
pub type Refusal = NTSTATUS;

/// Connects pin `pin` of `filter` (format `format`) as a source to the pin behind `handle`.
///
/// Checks, in order: the handle names a file object (`ObReferenceObjectByHandle`:
/// `STATUS_INVALID_HANDLE`, `STATUS_OBJECT_TYPE_MISMATCH`); it is a pin of another ksring filter
/// (`STATUS_INVALID_PARAMETER`); of the opposite data flow, an IRP sink itself, streaming the same
/// format (`STATUS_NO_MATCH`); not already fed by a source (`STATUS_DEVICE_BUSY`); then the
/// source's memory (`STATUS_INSUFFICIENT_RESOURCES`).
///
/// # Safety
/// `irp` is the pin's create IRP on `device`, at `PASSIVE_LEVEL` in the caller's context.
pub unsafe fn connect(
    device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    filter: &Filter,
    pin: u32,
    format: Format,
    handle: ksabi::HANDLE,
) -> Result<*const Source, Refusal> {
    // SAFETY: the create IRP.
    let mode = unsafe { (*irp).RequestorMode };
    // A push source writes to the pin it names, a pull source reads from it: a user-mode caller's
    // handle must grant that (the object manager checks it for UserMode), or the caller could make
    // ksring write through a handle it may only read.
    let access = if pin == PIN_OUTPUT { FILE_WRITE_DATA } else { FILE_READ_DATA };
    let mut object: *mut c_void = null_mut();
    // SAFETY: a handle of the caller's process, checked to be a file object.
    let status = unsafe {
        sys::ObReferenceObjectByHandle(
            handle,
            access,
            sys::file_object_type(),
            mode,
            &raw mut object,
            null_mut(),
        )
    };
    if !nt_success(status) {
        return Err(status);
    }
    let target = object.cast::<FILE_OBJECT>();
    // SAFETY: a referenced file object. Requests go to the top of the stack of the device it was
    // opened on (its `DeviceObject` is that device — for an interface, the PDO below our FDO).
    let target_device = unsafe { sys::IoGetRelatedDeviceObject(target) };
    // SAFETY: the file object is referenced (so is its pin, if it is one) until the reference goes.
    let checked = unsafe { check_target(device, target, filter, pin, format) };
    let refused = checked.and_then(|sink| {
        let kind = if pin == PIN_OUTPUT { Kind::Push } else { Kind::Pull };
        // SAFETY: our device, a referenced target file object.
        let source = unsafe { allocate(kind, filter, device, target, target_device) }
            .ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
        if let Err(status) = sink.filter().attach_feeder(sink.id, source) {
            // SAFETY: allocated above, never registered, nothing in flight.
            unsafe { free(source) };
            return Err(status);
        }
        filter.attach_source(pin, source);
        Ok(source)
    });
    if refused.is_err() {
        // SAFETY: the reference taken above.
        unsafe { sys::ObfDereferenceObject(object) };
    }
    refused
}

/// The pin behind `target` if a source pin `pin` of `filter` streaming `format` may feed it.
///
/// # Safety
/// `target` is a referenced file object; the pin returned lives while the reference is held.
unsafe fn check_target<'a>(
    device: *mut DEVICE_OBJECT,
    target: *mut FILE_OBJECT,
    filter: &Filter,
    pin: u32,
    format: Format,
) -> Result<&'a Pin, Refusal> {
    // SAFETY: a referenced file object; its device stack does not change while it is open.
    if !unsafe { on_our_stack(device, target) } {
        return Err(STATUS_INVALID_PARAMETER); // not one of our pins (only then is FsContext ours)
    }
    // SAFETY: a file object of our device: its FsContext is ours (or null).
    let Some(Object::Pin(sink)) = (unsafe { object::of_file(target) }) else {
        return Err(STATUS_INVALID_PARAMETER); // a filter, not a pin
    };
    if ptr::eq(sink.filter(), filter) {
        return Err(STATUS_INVALID_PARAMETER); // a filter's own pin: a loop
    }
    let opposite = if pin == PIN_OUTPUT { PIN_INPUT } else { PIN_OUTPUT };
    if sink.id != opposite
        || sink.filter().is_source(sink.id)
        || sink.filter().format(sink.id) != Some(format)
    {
        return Err(STATUS_NO_MATCH);
    }
    Ok(sink)
}

/// Whether `target` was opened on a device stack one of this driver's devices is part of: its
/// `DeviceObject` (the PDO the path named) or a device attached above it belongs to the driver
/// that owns `device`. Comparing `IoGetRelatedDeviceObject(target)` with our FDO is not enough:
/// on 64-bit Windows the Media class's upper filter (ksthunk) sits above every KS device, and
/// other filters may too; requests still go to the top of the stack.
///
/// # Safety
/// `device` is ours; `target` is a referenced file object.
unsafe fn on_our_stack(device: *mut DEVICE_OBJECT, target: *mut FILE_OBJECT) -> bool {
    // SAFETY: our own device object.
    let ours = unsafe { (*device).DriverObject };
    // SAFETY: a referenced file object.
    let mut d = unsafe { (*target).DeviceObject };
    while !d.is_null() {
        // SAFETY: a device of the stack the open file object holds in place.
        if unsafe { (*d).DriverObject } == ours {
            return true;
        }
        // SAFETY: as above.
        d = unsafe { (*d).AttachedDevice };
    }
    false
}

/// Allocates a source with its IRPs, buffers and work item.
///
/// # Safety
/// `device` is ours; `target` a referenced file object on `target_device`.
unsafe fn allocate(
    kind: Kind,
    filter: &Filter,
    device: *mut DEVICE_OBJECT,
    target: *mut FILE_OBJECT,
    target_device: *mut DEVICE_OBJECT,
) -> Option<*const Source> {
    // SAFETY: a plain non-paged allocation of a Source.
    let raw = unsafe { sys::ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<Source>(), ids::TAG_SOURCE) }
        .cast::<Source>();
    if raw.is_null() {
        return None;
    }
    // SAFETY: the target's device.
    let stack = unsafe { (*target_device).StackSize };
    let slot = || Slot {
        source: raw,
        irp: null_mut(),
        data: null_mut(),
        state: AtomicU32::new(FREE),
        status: AtomicI32::new(0),
        information: AtomicUsize::new(0),
        // SAFETY: all-zero headers are valid plain data.
        headers: UnsafeCell::new(unsafe { core::mem::zeroed() }),
        work: UnsafeCell::new(SlotWork { seq: 0, count: 0, next: 0, offset: 0 }),
    };
    let initial = Source {
        kind,
        filter,
        target,
        target_device,
        work_item: null_mut(),
        work_state: AtomicU32::new(IDLE),
        target_state: AtomicU32::new(ATTACHED),
        busy: AtomicU32::new(1),
        in_flight: AtomicU32::new(0),
        // SAFETY: initialised by KeInitializeEvent below before any use.
        idle: UnsafeCell::new(unsafe { core::mem::zeroed() }),
        ended: AtomicBool::new(false),
        shutting_down: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        unblock: AtomicBool::new(false),
        work: UnsafeCell::new(Work {
            next_seq: 0,
            next_done: 0,
            blocked: false,
            eos_sent: false,
            end_input_pending: false,
        }),
        slots: [slot(), slot(), slot(), slot()],
    };
    // SAFETY: a fresh block sized and aligned for a Source.
    unsafe { raw.write(initial) };
    // SAFETY: initialised above, not shared yet.
    let s = unsafe { &mut *raw };
    // SAFETY: the event lives in the source until it is freed.
    unsafe { sys::KeInitializeEvent(s.idle.get(), NotificationEvent, 0) };
    // SAFETY: our device object.
    s.work_item = unsafe { sys::IoAllocateWorkItem(device) };
    let mut ok = !s.work_item.is_null();
    for slot in &mut s.slots {
        // SAFETY: plain allocations; checked below.
        slot.data = unsafe { sys::ExAllocatePool2(POOL_FLAG_NON_PAGED, SLOT_BYTES, ids::TAG_SOURCE) }.cast();
        // SAFETY: an IRP with the target device's stack locations.
        slot.irp = unsafe { sys::IoAllocateIrp(stack, 0) };
        ok &= !slot.data.is_null() && !slot.irp.is_null();
    }
    if !ok {
        // SAFETY: nothing of it is registered or in flight.
        unsafe { free(raw) };
        return None;
    }
    Some(raw)
}

/// Frees a source and what it allocated.
///
/// # Safety
/// Nothing may use it any more: unregistered, no request in flight, no work queued.
unsafe fn free(source: *const Source) {
    // SAFETY: the caller's source.
    let s = unsafe { &*source };
    for slot in &s.slots {
        if !slot.irp.is_null() {
            // SAFETY: our IRP, not in flight.
            unsafe { sys::IoFreeIrp(slot.irp) };
        }
        if !slot.data.is_null() {
            // SAFETY: allocated with this tag in `allocate`.
            unsafe { sys::ExFreePoolWithTag(slot.data.cast(), ids::TAG_SOURCE) };
        }
    }
    if !s.work_item.is_null() {
        // SAFETY: allocated in `allocate`; not queued.
        unsafe { sys::IoFreeWorkItem(s.work_item) };
    }
    // SAFETY: allocated with this tag in `allocate`; nothing refers to it.
    unsafe { sys::ExFreePoolWithTag(source.cast_mut().cast(), ids::TAG_SOURCE) };
}

impl Source {
    fn filter(&self) -> &Filter {
        // SAFETY: a filter closes after its pins, and a source goes at its pin's cleanup.
        unsafe { &*self.filter }
    }

    fn busy_inc(&self) {
        self.busy.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops one busy count; the last one signals `idle` — after which the source may be freed, so
    /// this must be the caller's last use of it.
    fn busy_dec(&self) {
        if self.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            // SAFETY: the source's initialised event.
            unsafe { sys::KeSetEvent(self.idle.get(), 0, 0) };
        }
    }

    /// Runs the work routine soon (at `PASSIVE_LEVEL`, on a system thread).
    pub fn schedule(&self) {
        loop {
            match self.work_state.load(Ordering::SeqCst) {
                IDLE => {
                    if self
                        .work_state
                        .compare_exchange(IDLE, QUEUED, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        self.busy_inc();
                        let context = ptr::from_ref(self).cast_mut().cast();
                        // SAFETY: our work item, not queued (the state says so); the source outlives
                        // the routine (cleanup waits for `busy`).
                        unsafe {
                            sys::IoQueueWorkItem(
                                self.work_item,
                                Some(work_routine),
                                DelayedWorkQueue,
                                context,
                            );
                        };
                        return;
                    }
                }
                RUNNING => {
                    if self
                        .work_state
                        .compare_exchange(RUNNING, RERUN, Ordering::SeqCst, Ordering::SeqCst)
                        .is_ok()
                    {
                        return;
                    }
                }
                _ => return, // QUEUED or RERUN: it will run
            }
        }
    }

    /// Something changed that may let refused requests through (the sink runs again, the filter
    /// moved data, the pin's state changed).
    pub fn kick(&self) {
        self.unblock.store(true, Ordering::SeqCst);
        self.schedule();
    }

    /// The sink's last handle closed: finish what is in flight, then let it go.
    pub fn sink_ended(&self) {
        self.ended.store(true, Ordering::SeqCst);
        self.schedule();
    }

    /// The source pin went to STOP: cancel what is in flight and drop what is held.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.cancel_in_flight();
        self.schedule();
    }

    fn cancel_in_flight(&self) {
        for slot in &self.slots {
            if slot.state.load(Ordering::SeqCst) == IN_FLIGHT {
                // SAFETY: our IRP (allocated until the source is freed); cancelling one that has just
                // completed only sets its Cancel flag, which `IoReuseIrp` clears.
                unsafe { sys::IoCancelIrp(slot.irp) };
            }
        }
    }

    /// Cleanup of the source pin: no more notifications, cancel, wait, release the target, free.
    ///
    /// # Safety
    /// At `PASSIVE_LEVEL`; the source is already detached from its own filter (so the filter no
    /// longer kicks it), and the caller does not use it afterwards.
    pub unsafe fn shut_down(source: *const Source) {
        // SAFETY: the caller's live source.
        let s = unsafe { &*source };
        // If the reference is still ours, the sink is alive: stop its notifications.
        let ours =
            s.target_state.compare_exchange(ATTACHED, RELEASED, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        if ours {
            // SAFETY: the target is referenced (we still hold the reference): a pin of our device.
            if let Some(Object::Pin(sink)) = unsafe { object::of_file(s.target) } {
                sink.filter().detach_feeder(sink.id, source);
            }
        }
        s.shutting_down.store(true, Ordering::SeqCst);
        s.cancel_in_flight();
        s.busy_dec(); // the source's own count
        // SAFETY: the source's event; satisfied once the last request and work item are done.
        unsafe { sys::KeWaitForSingleObject(s.idle.get().cast(), Executive, KernelMode, 0, null_mut()) };
        // Nothing runs any more: the work state is ours.
        // SAFETY: as above.
        let work = unsafe { &mut *s.work.get() };
        s.drop_held(work);
        if ours {
            // SAFETY: the reference taken at connection, dropped once.
            unsafe { sys::ObfDereferenceObject(s.target.cast()) };
        }
        // SAFETY: nothing uses the source now.
        unsafe { free(source) };
    }

    /// Settles completed requests, then counts what held slots carry as discarded and frees them.
    fn drop_held(&self, work: &mut Work) {
        for slot in &self.slots {
            if slot.state.load(Ordering::SeqCst) == DONE {
                match self.kind {
                    Kind::Push => self.write_done(slot, work),
                    Kind::Pull => {
                        self.read_done(slot, work);
                    }
                }
            }
        }
        for slot in &self.slots {
            if slot.state.load(Ordering::SeqCst) == HELD {
                Self::drop_slot(slot, self.kind, &self.filter().counters);
            }
        }
        // Pull: what is still in flight comes back later and is handed over (or dropped) in order.
        work.next_done = self
            .slots
            .iter()
            .filter(|s| s.state.load(Ordering::SeqCst) == IN_FLIGHT)
            // SAFETY: seq is written before sending and only read while in flight.
            .map(|s| unsafe { (*s.work.get()).seq })
            .min()
            .unwrap_or(work.next_seq);
    }

    /// Counts a held slot's remaining frames and bytes as discarded and frees it.
    fn drop_slot(slot: &Slot, kind: Kind, c: &Counters) {
        // SAFETY: held: not in flight, the work routine's (or cleanup's) to touch.
        let (sw, headers) = unsafe { slot.held() };
        let first = if kind == Kind::Pull { sw.next } else { 0 };
        let mut frames = 0;
        let mut bytes = 0;
        for (i, h) in headers[..sw.count].iter().enumerate().skip(first) {
            let skip = if kind == Kind::Pull && i == sw.next { sw.offset } else { 0 };
            frames += 1;
            bytes += (h.DataUsed as usize).saturating_sub(skip) as u64;
        }
        Counters::add(&c.discarded_frames, frames);
        Counters::add(&c.discarded_bytes, bytes);
        slot.state.store(FREE, Ordering::SeqCst);
    }

    /// One pass of the work routine.
    fn run(&self) {
        // SAFETY: only one instance of the work routine runs at a time (the work state machine).
        let work = unsafe { &mut *self.work.get() };
        if self.stopping.load(Ordering::SeqCst) {
            // The pin went to STOP: nothing more moves (its filter's ring was just emptied); what
            // is held, or comes back, is dropped until nothing is in flight.
            self.drop_held(work);
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                self.stopping.store(false, Ordering::SeqCst);
            }
        } else {
            match self.kind {
                Kind::Push => self.push(work),
                Kind::Pull => self.pull(work),
            }
        }
        let quiet = self.in_flight.load(Ordering::SeqCst) == 0;
        if !self.ended.load(Ordering::SeqCst) || !quiet || self.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        if self.kind == Kind::Push {
            self.drop_held(work); // the sink is gone: nowhere to send it
        } else if !work.end_input_pending {
            work.end_input_pending = true;
        }
        if work.end_input_pending && !self.slots.iter().any(|s| s.state.load(Ordering::SeqCst) != FREE) {
            // Everything the sink gave us is in the ring: the input ends behind it.
            work.end_input_pending = false;
            self.filter().end_input();
        }
        if self.target_state.compare_exchange(ATTACHED, RELEASED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        {
            // SAFETY: the reference taken at connection; nothing of ours is in flight to the target.
            // Dropping it may close the sink (inline, at PASSIVE_LEVEL): no lock is held here.
            unsafe { sys::ObfDereferenceObject(self.target.cast()) };
        }
    }

    /// Slots in the order they were sent.
    fn by_seq(&self) -> [usize; SLOTS] {
        let mut order = [0, 1, 2, 3];
        // SAFETY: seq is the work routine's (the caller).
        order.sort_unstable_by_key(|&i| unsafe { (*self.slots[i].work.get()).seq });
        order
    }

    fn push(&self, work: &mut Work) {
        let f = self.filter();
        for i in self.by_seq() {
            let slot = &self.slots[i];
            if slot.state.load(Ordering::SeqCst) == DONE {
                self.write_done(slot, work);
            }
        }
        Self::take_unblock(&self.unblock, work);
        let held = self.slots.iter().any(|s| s.state.load(Ordering::SeqCst) == HELD);
        let idle = self.in_flight.load(Ordering::SeqCst) == 0;
        if !f.flowing(PIN_OUTPUT)
            || self.ended.load(Ordering::SeqCst)
            || self.stopping.load(Ordering::SeqCst)
            || self.shutting_down.load(Ordering::SeqCst)
        {
            return;
        }
        if held {
            // What the sink did not take goes again first, in order, once nothing else is out.
            if idle && !work.blocked {
                for i in self.by_seq() {
                    let slot = &self.slots[i];
                    if slot.state.load(Ordering::SeqCst) == HELD {
                        // SAFETY: held: ours.
                        let count = unsafe { (*slot.work.get()).count };
                        self.send(slot, IOCTL_KS_WRITE_STREAM, count);
                    }
                }
            }
            return;
        }
        let mut moved = false;
        for slot in &self.slots {
            if slot.state.load(Ordering::SeqCst) != FREE {
                continue;
            }
            let mut count = self.fill_from_ring(slot);
            moved |= count > 0;
            // The end goes last: after every write has completed *and* been accounted (a write
            // that completed inline while this loop ran is DONE until the next pass counts it;
            // the end must not overtake its statistics down the chain).
            let settled = self.slots.iter().all(|s| s.state.load(Ordering::SeqCst) == FREE);
            if count == 0 && f.input_closed() && settled && !work.eos_sent {
                count = end_of_stream(slot);
                work.eos_sent = true;
            }
            if count == 0 {
                break;
            }
            // SAFETY: free: ours.
            let sw = unsafe { &mut *slot.work.get() };
            sw.seq = work.next_seq;
            sw.count = count;
            work.next_seq += 1;
            self.send(slot, IOCTL_KS_WRITE_STREAM, count);
        }
        if moved {
            stream::pump(f); // room in the ring: writes waiting for it go on
        }
    }

    /// Takes frames out of the ring into a free slot; returns the headers filled. The consumer
    /// lock is held for at most [`HOLD_BUDGET`] of copying at a time (this source is the ring's
    /// only consumer, so nothing else takes frames between holds).
    fn fill_from_ring(&self, slot: &Slot) -> usize {
        let f = self.filter();
        // SAFETY: a free slot: ours.
        let headers = unsafe { &mut *slot.headers.get() };
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
                let at = slot.data.wrapping_add(used);
                // SAFETY: the slot's buffer has SLOT_BYTES - used >= n bytes left; the ring's
                // payload has n; they do not overlap.
                unsafe { crate::sys::copy_memory(at, payload.as_ptr(), n) };
                Counters::add(&f.counters.copied_out, n as u64);
                let meta = grant.meta();
                let record_done = n == payload.len();
                headers[count] = header(at, n, part_flags(meta.options_flags, record_done), &meta);
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
    fn write_done(&self, slot: &Slot, work: &mut Work) {
        let c = &self.filter().counters;
        let status = slot.status.load(Ordering::SeqCst);
        let all = status == STATUS_SUCCESS;
        let mut accepted = slot.information.load(Ordering::SeqCst);
        // SAFETY: done: ours.
        let (sw, headers) = unsafe { slot.held() };
        let mut first = 0;
        while first < sw.count {
            let used = headers[first].DataUsed as usize;
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
            let made_up = used == 0 && headers[first].Data.is_null();
            if headers[first].OptionsFlags & KSRING_OPTIONSF_CONTINUES == 0 && !made_up {
                Counters::add(&c.frames_out, 1);
            }
            first += 1;
        }
        if first < sw.count && accepted > 0 {
            // The sink took the start of this frame: the rest goes again as its continuation.
            let h = &mut headers[first];
            Counters::add(&c.bytes_out, accepted as u64);
            h.Data = h.Data.cast::<u8>().wrapping_add(accepted).cast();
            h.DataUsed -= u32::try_from(accepted).unwrap_or(h.DataUsed);
            h.FrameExtent = h.DataUsed;
        }
        headers.copy_within(first..sw.count, 0);
        sw.count -= first;
        if sw.count == 0 {
            slot.state.store(FREE, Ordering::SeqCst);
            return;
        }
        slot.state.store(HELD, Ordering::SeqCst);
        if matches!(status, STATUS_CANCELLED | STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE) {
            work.blocked = true; // the sink stopped or is resetting: it kicks us when it runs again
        } else {
            Self::drop_slot(slot, self.kind, &self.filter().counters); // failed for good: counted
        }
    }

    fn pull(&self, work: &mut Work) {
        let f = self.filter();
        // Hand what came back to the ring, strictly in the order it was asked for.
        let mut moved = false;
        let mut ended = false;
        let mut all_handed = true;
        for slot in &self.slots {
            // SAFETY: seq is the work routine's.
            let stale = unsafe { (*slot.work.get()).seq } < work.next_done;
            if stale && slot.state.load(Ordering::SeqCst) == DONE && self.read_done(slot, work) {
                // Came back after a STOP dropped what was held: drop it too, counted.
                Self::drop_slot(slot, self.kind, &self.filter().counters);
            }
        }
        let next_back = |next_done: u64| {
            self.slots.iter().find(|s| {
                // SAFETY: seq is the work routine's.
                let seq = unsafe { (*s.work.get()).seq };
                seq == next_done && matches!(s.state.load(Ordering::SeqCst), DONE | HELD)
            })
        };
        while let Some(slot) = next_back(work.next_done) {
            if slot.state.load(Ordering::SeqCst) == DONE && !self.read_done(slot, work) {
                work.next_done += 1;
                continue;
            }
            if !self.to_ring(slot, &mut moved, &mut ended) {
                all_handed = false;
                break; // the ring is full: our readers will kick us
            }
            slot.state.store(FREE, Ordering::SeqCst);
            work.next_done += 1;
        }
        if ended {
            f.end_input(); // pumps too
        } else if moved {
            stream::pump(f); // data in the ring: reads waiting for it go on
        }
        Self::take_unblock(&self.unblock, work);
        if !all_handed {
            return;
        }
        if !f.flowing(PIN_INPUT)
            || self.ended.load(Ordering::SeqCst)
            || self.stopping.load(Ordering::SeqCst)
            || self.shutting_down.load(Ordering::SeqCst)
            || f.input_closed()
            || work.blocked
        {
            return;
        }
        for slot in &self.slots {
            if slot.state.load(Ordering::SeqCst) != FREE {
                continue;
            }
            // SAFETY: free: ours.
            let (sw, headers) = unsafe { slot.held() };
            for (i, h) in headers.iter_mut().enumerate() {
                let meta = FrameMeta::default();
                *h = header(slot.data.wrapping_add(i * PART), 0, 0, &meta);
                #[allow(clippy::cast_possible_truncation)] // 16 KiB
                let part = PART as u32;
                h.FrameExtent = part;
            }
            *sw = SlotWork { seq: work.next_seq, count: HEADERS, next: 0, offset: 0 };
            work.next_seq += 1;
            self.send(slot, IOCTL_KS_READ_STREAM, HEADERS);
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
    fn read_done(&self, slot: &Slot, work: &mut Work) -> bool {
        let c = &self.filter().counters;
        let status = slot.status.load(Ordering::SeqCst);
        // SAFETY: done: ours.
        let (sw, headers) = unsafe { slot.held() };
        let filled =
            if status == STATUS_SUCCESS { slot.information.load(Ordering::SeqCst) / HEADER } else { 0 };
        if filled == 0 {
            if matches!(status, STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE) {
                work.blocked = true;
            }
            slot.state.store(FREE, Ordering::SeqCst);
            return false;
        }
        sw.count = filled.min(HEADERS);
        sw.next = 0;
        sw.offset = 0;
        for h in &headers[..sw.count] {
            Counters::add(&c.bytes_in, u64::from(h.DataUsed));
        }
        slot.state.store(HELD, Ordering::SeqCst);
        true
    }

    /// Puts a held read's frames into the ring; `false` if the ring filled first. The producer
    /// lock is held for at most [`HOLD_BUDGET`] of copying at a time.
    fn to_ring(&self, slot: &Slot, moved: &mut bool, ended: &mut bool) -> bool {
        loop {
            // `None`: the budget is spent; the lock is let go before the next hold.
            if let Some(all) = self.to_ring_once(slot, moved, ended) {
                return all;
            }
        }
    }

    /// One hold of the producer lock for [`Source::to_ring`]: `Some(all in)`, or `None` if the
    /// budget ran out first.
    fn to_ring_once(&self, slot: &Slot, moved: &mut bool, ended: &mut bool) -> Option<bool> {
        let f = self.filter();
        let c = &f.counters;
        let mut producer = f.producer.lock();
        // Data moves into the ring only while the input runs: a STOP (whose discard takes this
        // lock after the state changed) must not find frames put in behind it.
        if !f.flowing(PIN_INPUT) {
            return Some(false);
        }
        let Some(p) = producer.ring.as_mut() else { return Some(false) };
        let limit = piece_limit(p.max_frame()).min(HOLD_BUDGET);
        let mut budget = HOLD_BUDGET;
        // SAFETY: held: ours.
        let (sw, headers) = unsafe { slot.held() };
        while sw.next < sw.count {
            let h = &headers[sw.next];
            let used = h.DataUsed as usize;
            if used == 0 && h.OptionsFlags & KsStreamOptions::ENDOFSTREAM.bits() != 0 {
                // The upstream filter's input ended: so does ours (after what is in the ring), once
                // the caller has let go of the producer.
                *ended = true;
                sw.next += 1;
                continue;
            }
            let meta = stream::meta_of(h);
            loop {
                if budget == 0 {
                    return None;
                }
                let take = (used - sw.offset).min(limit).min(budget);
                match p.reserve(take) {
                    Ok(mut grant) => {
                        let from = h.Data.cast::<u8>().wrapping_add(sw.offset);
                        let payload = grant.payload();
                        // SAFETY: the slot's buffer holds `used` bytes of this header at Data; the
                        // grant has `take`; they do not overlap.
                        unsafe { crate::sys::copy_memory(payload.as_mut_ptr(), from, take) };
                        budget = budget.saturating_sub(take.max(RECORD_COST));
                        Counters::add(&c.copied_in, take as u64);
                        let last = sw.offset + take == used;
                        grant.commit(&FrameMeta {
                            options_flags: part_flags(meta.options_flags, last),
                            ..meta
                        });
                        *moved = true;
                        sw.offset += take;
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
            sw.next += 1;
            sw.offset = 0;
        }
        Some(true)
    }

    /// Builds and sends the slot's request.
    fn send(&self, slot: &Slot, code: u32, count: usize) {
        let irp = slot.irp;
        // SAFETY: our IRP, not in flight.
        unsafe { sys::IoReuseIrp(irp, STATUS_NOT_SUPPORTED) };
        // SAFETY: a fresh IRP: the location below the (past-the-end) current one is the target's.
        let next = unsafe { nt::next_stack(irp) };
        // SAFETY: a location of our IRP, not in flight.
        let next = unsafe { &mut *next };
        next.MajorFunction = IRP_MJ_DEVICE_CONTROL;
        next.MinorFunction = 0;
        #[allow(clippy::cast_possible_truncation)] // 16 headers
        let length = (count * HEADER) as u32;
        next.Parameters.DeviceIoControl = IO_PARAMETERS_DEVICE_IO_CONTROL {
            OutputBufferLength: length,
            Pad0: 0,
            InputBufferLength: 0,
            Pad1: 0,
            IoControlCode: code,
            Pad2: 0,
            Type3InputBuffer: null_mut(),
        };
        next.FileObject = self.target;
        // SAFETY: our IRP; kernel-mode request whose header array is the slot's.
        unsafe {
            (*irp).UserBuffer = slot.headers.get().cast();
        }
        // SAFETY: as above.
        unsafe {
            (*irp).RequestorMode = KernelMode;
        }
        // SAFETY: as above; the slot outlives the request.
        unsafe { nt::set_completion_routine(irp, Some(completed), ptr::from_ref(slot).cast_mut().cast()) };
        slot.state.store(IN_FLIGHT, Ordering::SeqCst);
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.busy_inc();
        // SAFETY: a referenced target's device, our IRP with its next location set up.
        unsafe { sys::IofCallDriver(self.target_device, irp) };
        // A STOP or shutdown that looked for requests in flight before this one was marked would
        // have missed it (both sides store, then load, sequentially consistent): cancel it here.
        let cancelling = self.stopping.load(Ordering::SeqCst) || self.shutting_down.load(Ordering::SeqCst);
        if cancelling && slot.state.load(Ordering::SeqCst) == IN_FLIGHT {
            // SAFETY: our IRP (only this routine reuses it); if it has just completed, this only
            // sets its Cancel flag, which the next `IoReuseIrp` clears.
            unsafe { sys::IoCancelIrp(irp) };
        }
    }
}

/// A stream header over `n` bytes at `data` with `flags` and the frame's metadata.
fn header(data: *mut u8, n: usize, flags: u32, meta: &FrameMeta) -> KSSTREAM_HEADER {
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
        Data: data.cast(),
        OptionsFlags: flags,
        Reserved: 0,
    }
}

/// Fills a free slot with the end-of-stream frame: no data, `ENDOFSTREAM`.
fn end_of_stream(slot: &Slot) -> usize {
    // SAFETY: a free slot: ours.
    let headers = unsafe { &mut *slot.headers.get() };
    headers[0] = header(null_mut(), 0, KsStreamOptions::ENDOFSTREAM.bits(), &FrameMeta::default());
    1
}

/// The work item's routine.
unsafe extern "system" fn work_routine(_device: *mut DEVICE_OBJECT, context: *mut c_void) {
    // SAFETY: the source that queued the item; alive while `busy` counts this run.
    let s = unsafe { &*context.cast::<Source>() };
    s.work_state.store(RUNNING, Ordering::SeqCst);
    loop {
        s.run();
        if s.work_state.compare_exchange(RUNNING, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            break;
        }
        s.work_state.store(RUNNING, Ordering::SeqCst); // scheduled again while running
    }
    s.busy_dec(); // last use of the source
}

/// Completion of a source's request: record it, free the MDLs the sink's probe built, schedule the
/// work routine, and keep the IRP (it is ours).
unsafe extern "system" fn completed(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the slot this IRP belongs to (set by `send`).
    let slot = unsafe { &*context.cast::<Slot>() };
    // SAFETY: our IRP, back in our hands.
    let mut mdl = unsafe { (*irp).MdlAddress };
    while !mdl.is_null() {
        // SAFETY: an MDL of the chain KsProbeStreamIrp built for this request.
        let next = unsafe { (*mdl).Next };
        // SAFETY: as above.
        let locked = unsafe { (*mdl).MdlFlags } & MDL_PAGES_LOCKED != 0;
        if locked {
            // SAFETY: as above: locked by the probe, unlocked once.
            unsafe { sys::MmUnlockPages(mdl) };
        }
        // SAFETY: as above: freed once.
        unsafe { sys::IoFreeMdl(mdl) };
        mdl = next;
    }
    // SAFETY: as above.
    unsafe {
        (*irp).MdlAddress = null_mut();
    }
    // SAFETY: as above.
    let io = unsafe { (*irp).IoStatus };
    slot.status.store(io.Status, Ordering::SeqCst);
    slot.information.store(io.Information, Ordering::SeqCst);
    slot.state.store(DONE, Ordering::SeqCst);
    // SAFETY: the slot's source, alive while this request counts in `busy`.
    let s = unsafe { &*slot.source };
    // Out of flight before the work routine is scheduled, so that the run it triggers sees it.
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    s.schedule();
    s.busy_dec(); // last use of the source
    STATUS_MORE_PROCESSING_REQUIRED
}
