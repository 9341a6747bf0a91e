//! What an IRP source needs to move data itself, as types: the pin it points at ([`Target`]), a
//! request of its own sent again and again ([`Outbound`]), a work item that runs its routine one
//! pass at a time ([`Worker`]), and a count of what is still running for it ([`Activity`]).
//!
//! Memory safety rests on [`Shared`]: whatever the kernel will call back with a pointer to the
//! owner (a queued work item, a request in flight) holds a reference of its own until then.
//! [`Activity`] is about meaning, not memory: the owner's cleanup waits until nothing it started
//! is still running before it counts what is left and lets go of its target.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use ksabi::{
    DEVICE_OBJECT, DelayedWorkQueue, FILE_OBJECT, HANDLE, IO_PARAMETERS_DEVICE_IO_CONTROL,
    IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, IRP, IRP_MJ_DEVICE_CONTROL, KernelMode, MDL,
    MDL_PAGES_LOCKED, NTSTATUS, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_NOT_SUPPORTED, nt_success,
};

use super::irp::{Device, Irp};
use super::nt;
use super::object::{File, Object};
use super::pool::Shared;
use super::stream::Direction;
use super::sync::{Event, Exclusive, ExclusiveGuard};

mod buffers;
mod mdls;
use crate::sys;
pub use buffers::{EMPTY as EMPTY_HEADER, StreamBuffers};
pub use mdls::RequestMdls;

/// A count of the owner itself and of what runs for it (work routine passes, requests in flight),
/// with an event set when it drops to zero. It lives in a block of its own, so that what runs
/// for the owner lets go of the owner first and then leaves — the owner's cleanup, woken by the
/// last to leave, then holds the owner's last reference (and frees it right there).
#[derive(Clone)]
pub struct Activity {
    inner: Shared<ActivityInner>,
}

struct ActivityInner {
    count: AtomicU32,
    idle: Event,
}

impl Activity {
    /// The owner alone counted; `None` if the pool has no room.
    pub fn new(tag: u32) -> Option<Self> {
        let inner = Shared::new(tag, ActivityInner { count: AtomicU32::new(1), idle: Event::new() })?;
        // SAFETY: a field of a pool block, which never moves (`Shared`) until it is freed.
        unsafe { Pin::new_unchecked(&inner.idle) }.init();
        Some(Self { inner })
    }

    /// Counts one more thing running for the owner (a lent client read, until it is given back).
    pub fn enter(&self) {
        self.inner.count.fetch_add(1, Ordering::SeqCst);
    }

    /// The end of what [`Activity::enter`] counted.
    pub fn leave(&self) {
        if self.inner.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.set();
        }
    }

    /// The owner's cleanup: drops the owner's count and waits, at `PASSIVE_LEVEL`, until no work
    /// routine pass and no request started for it is left. Call once.
    pub fn finish(&self) {
        self.leave();
        self.inner.idle.wait();
    }
}

/// Whether `part` lies inside `owner`'s value: what the kernel calls back with a pointer to (a
/// work item, a request and the buffers lent to it) must live in the owner it holds a reference
/// on, or that reference would not keep it alive.
fn inside<T, P>(owner: &Shared<T>, part: &P) -> bool {
    let start = core::ptr::from_ref::<T>(owner).addr();
    contains(start, size_of::<T>(), core::ptr::from_ref(part).addr(), size_of::<P>())
}

/// Whether `[at, at + size)` lies inside `[start, start + len)`.
fn contains(start: usize, len: usize, at: usize, size: usize) -> bool {
    at >= start && at.saturating_add(size) <= start.saturating_add(len)
}

/// What a [`Worker`] runs and an [`Outbound`] request reports to.
pub trait Owner: Sized + Send + Sync + 'static {
    /// The count that the runs and requests join.
    fn activity(&self) -> &Activity;
    /// Its work item.
    fn worker(&self) -> &Worker;
    /// One pass of its work routine (at `PASSIVE_LEVEL`, one at a time).
    fn run(this: &Shared<Self>);
    /// Request `slot` (see [`Outbound::send`]) completed with `status` and `information`.
    fn completed(this: &Shared<Self>, slot: usize, status: NTSTATUS, information: usize);
}

// The work item's states.
const IDLE: u32 = 0;
const QUEUED: u32 = 1;
const RUNNING: u32 = 2;
const RERUN: u32 = 3;

/// A work item (`IoAllocateWorkItem`) that runs its owner's routine one pass at a time: asked
/// while a pass runs, it runs another after it.
pub struct Worker {
    item: NonNull<c_void>,
    state: AtomicU32,
}

// SAFETY: a kernel object; the state is atomic.
unsafe impl Send for Worker {}
// SAFETY: as above.
unsafe impl Sync for Worker {}

impl Worker {
    /// A work item of `device`; `None` if none could be allocated.
    pub fn new(device: Device) -> Option<Self> {
        // SAFETY: our device object.
        let item = NonNull::new(unsafe { sys::IoAllocateWorkItem(device.as_raw()) })?;
        Some(Self { item, state: AtomicU32::new(IDLE) })
    }

    /// Runs [`Owner::run`] soon, on a system thread at `PASSIVE_LEVEL` — if the owner's worker
    /// lives in the owner (else nothing runs: it could be freed while queued).
    pub fn schedule<T: Owner>(this: &Shared<T>) {
        let worker = this.worker();
        if !inside(this, worker) {
            return;
        }
        loop {
            match worker.state.load(Ordering::SeqCst) {
                IDLE => {
                    if worker.state.compare_exchange(IDLE, QUEUED, Ordering::SeqCst, Ordering::SeqCst).is_ok()
                    {
                        this.activity().enter();
                        let context = Shared::into_raw(this.clone()).cast_mut().cast::<c_void>();
                        // SAFETY: our work item, not queued (the state says so); the routine gets
                        // a reference on the owner (and with it on this work item) of its own.
                        unsafe {
                            sys::IoQueueWorkItem(
                                worker.item.as_ptr(),
                                Some(work_routine::<T>),
                                DelayedWorkQueue,
                                context,
                            );
                        };
                        return;
                    }
                }
                RUNNING => {
                    if worker
                        .state
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
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`; not queued: a queued item holds a reference on its owner,
        // which owns this worker.
        unsafe { sys::IoFreeWorkItem(self.item.as_ptr()) };
    }
}

/// The work item's routine: the owner's passes, then its reference let go.
unsafe extern "system" fn work_routine<T: Owner>(_device: *mut DEVICE_OBJECT, context: *mut c_void) {
    // SAFETY: the reference `schedule` gave up for this run.
    let this = unsafe { Shared::<T>::from_raw(context.cast::<T>().cast_const()) };
    let worker = this.worker();
    worker.state.store(RUNNING, Ordering::SeqCst);
    loop {
        T::run(&this);
        if worker.state.compare_exchange(RUNNING, IDLE, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            break;
        }
        worker.state.store(RUNNING, Ordering::SeqCst); // scheduled again while running
    }
    // The owner first, then the count: a cleanup waiting for the count then holds the last
    // reference on the owner.
    let activity = this.activity().clone();
    drop(this);
    activity.leave();
}

/// A referenced file object another request named by handle (an IRP source's sink), with the
/// device its requests go to. Its reference goes once: by [`Claim::let_go`], or when it is
/// dropped.
///
/// Two rules keep every use of the file object before that: reading it takes a [`Claim`] (one at
/// a time; only a claim lets go) or its [`Lease`], and sending to it takes the lease (one per
/// target, which letting go needs mutably) — so none can overlap the dereference.
pub struct Target {
    file: NonNull<FILE_OBJECT>,
    device: NonNull<DEVICE_OBJECT>,
    state: AtomicU32,
    id: usize,
    /// Requests sent to it and not yet completed: it is not let go while any is.
    in_flight: AtomicU32,
}

/// The right to send to a [`Target`] (shared) or to let it go (exclusive): made with it, one per
/// target.
pub struct Lease {
    id: usize,
}

// SAFETY: a referenced kernel object; the state is atomic.
unsafe impl Send for Target {}
// SAFETY: as above.
unsafe impl Sync for Target {}

// Target states: referenced; claimed (one reader, who may let go); let go.
const HELD: u32 = 0;
const CLAIMED: u32 = 1;
const GONE: u32 = 2;

/// Tells targets (and their leases) apart.
static NEXT_TARGET: AtomicUsize = AtomicUsize::new(1);

impl Irp {
    /// `ObReferenceObjectByHandle` of a file object, with `access`, as the create's requestor
    /// (user-mode handles are checked for that access), and the device its requests go to (the
    /// top of the stack it was opened on: `IoGetRelatedDeviceObject`).
    ///
    /// # Errors
    /// What the object manager refused the handle with.
    pub fn reference_handle(&self, handle: HANDLE, access: u32) -> Result<(Target, Lease), NTSTATUS> {
        let mode = self.owned().requestor_mode();
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
        let Some(file) = NonNull::new(object.cast::<FILE_OBJECT>()) else {
            return Err(ksabi::STATUS_INVALID_HANDLE);
        };
        // SAFETY: a referenced file object.
        let device = unsafe { sys::IoGetRelatedDeviceObject(file.as_ptr()) };
        let Some(device) = NonNull::new(device) else {
            // SAFETY: the reference taken above, dropped once.
            unsafe { sys::ObfDereferenceObject(file.as_ptr().cast()) };
            return Err(ksabi::STATUS_INVALID_PARAMETER);
        };
        let id = NEXT_TARGET.fetch_add(1, Ordering::Relaxed);
        Ok((
            Target { file, device, state: AtomicU32::new(HELD), id, in_flight: AtomicU32::new(0) },
            Lease { id },
        ))
    }
}

impl Target {
    /// The only reader of the file object until the claim is dropped (or lets go); `None` if
    /// another claim is out or it is let go.
    pub fn claim(&self) -> Option<Claim<'_>> {
        let claimed = self.state.compare_exchange(HELD, CLAIMED, Ordering::SeqCst, Ordering::SeqCst).is_ok();
        // (`then`, not `then_some`: a claim made and dropped on failure would un-claim the holder.)
        claimed.then(|| Claim { target: self })
    }

    /// The driver's pin (or filter) behind the target, to its sender during a send's pass: the
    /// lease keeps it referenced (letting go needs the lease mutably). `None` once let go, or if
    /// it is not the driver's (as [`Claim::object`]).
    pub fn object_while_leased<'a>(&'a self, lease: &'a Lease, ours: Device) -> Option<Object<'a>> {
        if lease.id != self.id || self.state.load(Ordering::SeqCst) == GONE {
            return None;
        }
        self.object_of(ours)
    }

    /// [`Claim::object`] and [`Target::object_while_leased`]: the caller keeps the file object
    /// referenced while `self` is borrowed.
    fn object_of(&self, ours: Device) -> Option<Object<'_>> {
        let driver = ours.driver_object();
        // SAFETY: a referenced file object (the caller's claim or lease keeps it so).
        let mut d = unsafe { (*self.file.as_ptr()).DeviceObject };
        while let Some(device) = NonNull::new(d) {
            // SAFETY: a device of the stack the open file object holds in place.
            let device = unsafe { device.as_ref() };
            if device.DriverObject == driver {
                // SAFETY: a file object of the driver's device (its FsContext is the driver's),
                // referenced for as long as `self` is borrowed.
                return unsafe { File::new(self.file) }.object();
            }
            d = device.AttachedDevice;
        }
        None
    }

    /// The stack size its requests need (0 once let go).
    pub fn stack_size(&self, lease: &Lease) -> i8 {
        if lease.id != self.id || self.state.load(Ordering::SeqCst) == GONE {
            return 0;
        }
        // SAFETY: the file object is referenced (not let go: that needs the lease mutably, and
        // we borrow it), and so is the device its stack starts at.
        unsafe { (*self.device.as_ptr()).StackSize }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if *self.state.get_mut() != GONE {
            // SAFETY: the reference taken in `reference_handle`, not dropped yet.
            unsafe { sys::ObfDereferenceObject(self.file.as_ptr().cast()) };
        }
    }
}

/// A [`Target`] claimed: nobody else reads it or lets it go meanwhile.
pub struct Claim<'a> {
    target: &'a Target,
}

impl Claim<'_> {
    /// The driver's pin (or filter) behind the target — if it was opened on a device stack one
    /// of `ours`' driver's devices is part of (only then is its `FsContext` the driver's). Its
    /// `DeviceObject` (the PDO the path named) or a device attached above it must belong to the
    /// driver: on 64-bit Windows the Media class's upper filter (ksthunk) sits above every KS
    /// device, so the top of the stack is not ours.
    pub fn object(&self, ours: Device) -> Option<Object<'_>> {
        // Referenced: only this claim could let it go.
        self.target.object_of(ours)
    }

    /// Drops the target's reference; at `PASSIVE_LEVEL`, holding no lock: the last reference
    /// sends the file object's close inline. `lease` must be the target's, and no request sent to
    /// it may be in flight (else nothing happens: the reference then goes with the target).
    pub fn let_go(self, lease: &mut Lease) {
        if lease.id != self.target.id || self.target.in_flight.load(Ordering::SeqCst) != 0 {
            return; // dropping the claim un-claims
        }
        self.target.state.store(GONE, Ordering::SeqCst);
        // SAFETY: the reference taken in `reference_handle`, dropped once: the state is GONE now,
        // and the claim (the only one) is consumed without un-claiming.
        unsafe { sys::ObfDereferenceObject(self.target.file.as_ptr().cast()) };
        core::mem::forget(self);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let _ = self.target.state.compare_exchange(CLAIMED, HELD, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// A device-control request of the driver's own (`IoAllocateIrp`), reused for each send.
pub struct Outbound<B> {
    irp: NonNull<IRP>,
    /// While in flight: the owner's reference the completion gives back, and the buffers lent.
    owner: AtomicPtr<c_void>,
    lent: AtomicPtr<Exclusive<B>>,
    target: AtomicPtr<Target>,
    slot: usize,
    /// The MDLs it carries over the region its headers name (see [`RequestMdls`]).
    mdls: RequestMdls,
    /// While in flight: the chain it borrowed ([`Outbound::send_borrowed`]), if any.
    borrowed: AtomicPtr<MDL>,
    buffers: PhantomData<B>,
}

// SAFETY: a kernel object used by one sender at a time (the owner's work routine) and its
// completion; the in-flight fields are atomic.
unsafe impl<B: Send> Send for Outbound<B> {}
// SAFETY: as above.
unsafe impl<B: Send> Sync for Outbound<B> {}

/// What holds an [`Outbound`] request's buffers (the owner's slot, lent to the request while it
/// is in flight).
pub trait Lend<const N: usize> {
    /// The buffers.
    fn stream_buffers(&mut self) -> &mut StreamBuffers<N>;
}

impl<B> Outbound<B> {
    /// A request for a stack of `stack_size` locations ([`Target::stack_size`]), slot `slot` of
    /// its owner, building its MDLs in `mdls`; `None` if none could be made.
    pub fn new(stack_size: i8, slot: usize, mdls: RequestMdls) -> Option<Self> {
        if stack_size < 1 {
            return None;
        }
        // SAFETY: a plain IRP with the target device's stack locations.
        let irp = NonNull::new(unsafe { sys::IoAllocateIrp(stack_size, 0) })?;
        Some(Self {
            irp,
            owner: AtomicPtr::new(null_mut()),
            lent: AtomicPtr::new(null_mut()),
            target: AtomicPtr::new(null_mut()),
            slot,
            mdls,
            borrowed: AtomicPtr::new(null_mut()),
            buffers: PhantomData,
        })
    }

    /// Sends a stream request in `direction` to `target` (whose `lease` the caller holds) as a
    /// kernel-mode request whose output buffer is the header array of `buffers` (each header in
    /// use rewritten to lie in the region it names: [`StreamBuffers`]), lent to the request
    /// (claimed) until it completes; then [`Owner::completed`] runs with this slot — right away
    /// with `STATUS_FILE_CLOSED` if the target is let go. The request holds a reference on `owner`
    /// (and counts in its [`Activity`]) until then.
    pub fn send<T: Owner, const N: usize>(
        &self,
        owner: &Shared<T>,
        target: &Target,
        lease: &Lease,
        direction: Direction,
        buffers: ExclusiveGuard<'_, B>,
    ) where
        B: Lend<N>,
    {
        let Some((lender, buffers)) = self.lend_buffers(owner, target, lease, buffers) else { return };
        // SAFETY: our IRP; the buffers are lent to it until its completion.
        let stream_buffers = unsafe { (*buffers).stream_buffers() };
        let (headers, length) = stream_buffers.prepare(direction);
        let with_bytes = {
            let b = &*stream_buffers;
            (0..b.count()).filter_map(move |i| b.header(i)).filter(|h| h.FrameExtent > 0)
        };
        // SAFETY: each header with bytes names them in the region lent to the buffers (rewritten by
        // `prepare`): a ring's storage, nonpaged pool, kept allocated by the loan until the
        // completion; the request is not in flight, so none of its MDLs is in use.
        let mdls =
            unsafe { self.mdls.build(with_bytes.map(|h| (h.Data.cast::<u8>(), h.FrameExtent as usize))) };
        self.borrowed.store(null_mut(), Ordering::SeqCst);
        self.call(owner, target, lender, direction, headers, length, mdls);
    }

    /// Sends a stream request as [`Outbound::send`] does, but over buffers that are not the
    /// owner's: its headers are the `count` headers `headers` returns from the lent `buffers`,
    /// and its MDL chain is `mdls` — borrowed (a lent client read's, [`super::stream::LentRead`]),
    /// taken off the request at its completion and never freed here.
    ///
    /// # Safety
    /// The headers name exactly the buffers of `mdls`' chain, one MDL per header in order, locked
    /// and mapped; the chain stays so, untouched by anyone else, until the completion has run.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn send_borrowed<T: Owner>(
        &self,
        owner: &Shared<T>,
        target: &Target,
        lease: &Lease,
        direction: Direction,
        buffers: ExclusiveGuard<'_, B>,
        mdls: *mut MDL,
        headers: impl FnOnce(&mut B) -> (*mut c_void, u32),
    ) {
        let Some((lender, buffers)) = self.lend_buffers(owner, target, lease, buffers) else { return };
        // SAFETY: our IRP; the buffers are lent to it until its completion.
        let (headers, length) = headers(unsafe { &mut *buffers });
        self.borrowed.store(mdls, Ordering::SeqCst);
        self.call(owner, target, lender, direction, headers, length, mdls);
    }

    /// The checks before a send: the request and its buffers inside the owner (else the reference
    /// the request holds would not keep them alive) and the target not let go — or the owner is
    /// told at once, as if the target had closed. Then the buffers are lent.
    fn lend_buffers<'g, T: Owner>(
        &self,
        owner: &Shared<T>,
        target: &Target,
        lease: &Lease,
        buffers: ExclusiveGuard<'g, B>,
    ) -> Option<(&'g Exclusive<B>, *mut B)> {
        if !inside(owner, self) || !inside(owner, buffers.cell()) {
            drop(buffers);
            T::completed(owner, self.slot, ksabi::STATUS_INVALID_PARAMETER, 0);
            return None;
        }
        if lease.id != target.id || target.state.load(Ordering::SeqCst) == GONE {
            drop(buffers);
            T::completed(owner, self.slot, ksabi::STATUS_FILE_CLOSED, 0);
            return None;
        }
        Some(buffers.lend())
    }

    /// Sets the request up — a kernel-mode stream request of `length` bytes of `headers`, with
    /// `mdls` — and sends it.
    #[allow(clippy::too_many_arguments)]
    fn call<T: Owner>(
        &self,
        owner: &Shared<T>,
        target: &Target,
        lender: &Exclusive<B>,
        direction: Direction,
        headers: *mut c_void,
        length: u32,
        mdls: *mut MDL,
    ) {
        let irp = self.irp.as_ptr();
        // SAFETY: our IRP, not in flight (its buffers were claimable: the last completion ended
        // their loan), with the stack locations it was allocated with.
        unsafe { sys::IoReuseIrp(irp, STATUS_NOT_SUPPORTED) };
        // SAFETY: our IRP, not in flight: `Tail.Overlay` is live, and its current location is the
        // past-the-end one `IoReuseIrp` set.
        let current = unsafe { (*nt::tail_overlay(irp)).CurrentStackLocation };
        // SAFETY: the location below it, the target's (the IRP has the target's stack size), ours
        // to set up while the IRP is not in flight.
        let next = unsafe { &mut *current.wrapping_sub(1) };
        next.MajorFunction = IRP_MJ_DEVICE_CONTROL;
        next.MinorFunction = 0;
        let code = match direction {
            Direction::Write => IOCTL_KS_WRITE_STREAM,
            Direction::Read => IOCTL_KS_READ_STREAM,
        };
        next.Parameters.DeviceIoControl = IO_PARAMETERS_DEVICE_IO_CONTROL {
            OutputBufferLength: length,
            Pad0: 0,
            InputBufferLength: 0,
            Pad1: 0,
            IoControlCode: code,
            Pad2: 0,
            Type3InputBuffer: null_mut(),
        };
        next.FileObject = target.file.as_ptr();
        // SAFETY: our IRP, not in flight; one field written through the raw pointer (a `STOP` on
        // another processor may already `IoCancelIrp` it, which writes `Cancel`).
        unsafe { (*irp).UserBuffer = headers };
        // SAFETY: as above.
        unsafe { (*irp).RequestorMode = KernelMode };
        // SAFETY: as above (null: ks.sys builds the MDLs).
        unsafe { (*irp).MdlAddress = mdls };
        self.lent.store(core::ptr::from_ref(lender).cast_mut(), Ordering::SeqCst);
        target.in_flight.fetch_add(1, Ordering::SeqCst);
        self.target.store(core::ptr::from_ref(target).cast_mut(), Ordering::SeqCst);
        owner.activity().enter();
        self.owner.store(Shared::into_raw(owner.clone()).cast_mut().cast(), Ordering::SeqCst);
        // Called however the request ends, with this request, alive while the owner is (a reference
        // on it goes with the request).
        next.CompletionRoutine = Some(completed::<T, B>);
        next.Context = core::ptr::from_ref(self).cast_mut().cast::<c_void>();
        next.Control = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
        // SAFETY: the target's device (referenced: letting it go needs the lease, which we
        // borrow) and our IRP with its next location set up.
        unsafe { sys::IofCallDriver(target.device.as_ptr(), irp) };
    }

    /// `IoCancelIrp`: cancels the request if it is in flight (on one that has just completed it
    /// only sets the `Cancel` flag, which the next send's `IoReuseIrp` clears).
    pub fn cancel(&self) {
        // SAFETY: our IRP, allocated until `self` is dropped.
        unsafe { sys::IoCancelIrp(self.irp.as_ptr()) };
    }
}

impl<B> Drop for Outbound<B> {
    fn drop(&mut self) {
        // SAFETY: our IRP, not in flight: a request in flight holds a reference on the owner,
        // which owns this request.
        unsafe { sys::IoFreeIrp(self.irp.as_ptr()) };
    }
}

/// Completion of an [`Outbound`] request: frees the MDLs the target's probe built, ends the loan
/// of the buffers, reports to the owner, and keeps the IRP (it is ours).
unsafe extern "system" fn completed<T: Owner, B>(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the request `send` set this routine for; alive while its owner reference is held.
    let request = unsafe { &*context.cast::<Outbound<B>>() };
    // SAFETY: our IRP, back in our hands.
    let io = unsafe { (*irp).IoStatus };
    let borrowed = request.borrowed.swap(null_mut(), Ordering::SeqCst);
    // SAFETY: as above.
    unsafe { free_mdls(irp, &request.mdls, borrowed) };
    let owner = request.owner.swap(null_mut(), Ordering::SeqCst);
    if owner.is_null() {
        // Completed a second time by a misbehaving driver below: nothing of ours is left to give.
        return STATUS_MORE_PROCESSING_REQUIRED;
    }
    let lent = request.lent.swap(null_mut(), Ordering::SeqCst);
    // SAFETY: the owner reference `send` gave up for this request.
    let owner = unsafe { Shared::<T>::from_raw(owner.cast::<T>()) };
    if let Some(target) = NonNull::new(request.target.swap(null_mut(), Ordering::SeqCst)) {
        // SAFETY: the target `send` sent to, a field of the owner, on which this request holds a
        // reference (given back below).
        unsafe { target.as_ref() }.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
    if let Some(lent) = NonNull::new(lent) {
        // SAFETY: the cell `send` lent, inside the owner (alive: we hold a reference on it).
        let cell = unsafe { lent.as_ref() };
        // SAFETY: lent by `send` to this request, which is done with it.
        unsafe { cell.end_loan() };
    }
    T::completed(&owner, request.slot, io.Status, io.Information);
    // The owner first, then the count (as in `work_routine`).
    let activity = owner.activity().clone();
    drop(owner);
    activity.leave();
    STATUS_MORE_PROCESSING_REQUIRED
}

/// Takes the MDLs off a completed request of ours: those of `own` stay where they are (its block),
/// a `borrowed` chain goes back to its owner untouched, the others (built by the target's probe)
/// are unlocked and freed.
///
/// # Safety
/// `irp` is an IRP of ours whose completion routine is running.
unsafe fn free_mdls(irp: *mut IRP, own: &RequestMdls, borrowed: *mut MDL) {
    // SAFETY: the caller's IRP; only its MDL field is borrowed (`IoCancelIrp` may still write
    // `Cancel` on another processor).
    let head = unsafe { &mut (*irp).MdlAddress };
    let mut mdl: *mut MDL = core::mem::replace(head, null_mut());
    if !borrowed.is_null() {
        // A preset chain: the target's probe built none and took ours as it was.
        debug_assert_eq!(mdl, borrowed, "a borrowed chain comes back as it went");
        if mdl == borrowed {
            return;
        }
    }
    while let Some(m) = NonNull::new(mdl) {
        let (next, flags) = {
            // SAFETY: an MDL of the chain the target's KsProbeStreamIrp built for this request.
            let m = unsafe { m.as_ref() };
            (m.Next, m.MdlFlags)
        };
        mdl = next;
        if own.owns(m.as_ptr()) {
            continue;
        }
        if flags & MDL_PAGES_LOCKED != 0 {
            // SAFETY: locked by the probe, unlocked once.
            unsafe { sys::MmUnlockPages(m.as_ptr()) };
        }
        // SAFETY: freed once.
        unsafe { sys::IoFreeMdl(m.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn a_part_is_inside_only_when_all_of_it_is() {
        assert!(contains(100, 50, 100, 50), "the whole");
        assert!(contains(100, 50, 110, 8), "a field");
        assert!(!contains(100, 50, 99, 8), "starts before");
        assert!(!contains(100, 50, 145, 8), "ends after");
        assert!(!contains(100, 50, 150, 1), "just past the end");
        assert!(!contains(100, 50, usize::MAX - 4, 8), "wraps");
    }
}
