//! A kernel-mode client of a driver's pin: another driver that reads a pin the way kernel KS
//! clients stream — its own IRP (`IoAllocateIrp`), a header array and buffers in non-paged pool,
//! and a completion routine that **resubmits the IRP from inside the completion**, at whatever
//! IRQL the completing driver completed it. Such a client re-enters the driver's dispatch routine
//! on the completing thread: a driver that completes (or lets a cancel routine complete) an IRP
//! while holding one of its spin locks deadlocks on itself there, which kshost's spin locks
//! report (`SPINLOCK_ALREADY_OWNED`). WINDOWS-AUDIT F5; sources in `FIDELITY.md`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ksabi::{
    DEVICE_OBJECT, FILE_OBJECT, IO_PARAMETERS_DEVICE_IO_CONTROL, IOCTL_KS_READ_STREAM, IRP,
    IRP_MJ_DEVICE_CONTROL, KSSTREAM_HEADER, KernelMode, NTSTATUS, POOL_FLAG_NON_PAGED, SL_INVOKE_ON_CANCEL,
    SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS, STATUS_INSUFFICIENT_RESOURCES, STATUS_MORE_PROCESSING_REQUIRED,
    STATUS_NOT_SUPPORTED, nt_success,
};

use crate::client::Handle;
use crate::machine::{Enter, Machine, MachineInner};
use crate::objects::IoStatus;
use crate::sync::Locked;

/// Pool tag of the client's buffers.
const TAG: u32 = u32::from_le_bytes(*b"KClt");
/// Bytes of one stream header.
const HEADER: usize = size_of::<KSSTREAM_HEADER>();

/// What the client's completion routine shares with the test.
struct State {
    machine: Arc<MachineInner>,
    irp: *mut IRP,
    file: *mut FILE_OBJECT,
    device: *mut DEVICE_OBJECT,
    headers: *mut KSSTREAM_HEADER,
    data: *mut u8,
    count: usize,
    extent: usize,
    /// Requests still to send after the one in flight.
    remaining: AtomicU32,
    /// Each completed request: its status and the data bytes its headers report.
    results: Mutex<Vec<(IoStatus, usize)>>,
    finished: Condvar,
}

// SAFETY: the raw pointers are the client's own IRP, pool blocks and referenced objects; the I/O
// protocol gives the IRP to one side at a time, and the results sit behind a mutex.
unsafe impl Send for State {}
// SAFETY: as above.
unsafe impl Sync for State {}

/// A kernel-mode reader of a pin, running until its requests are done.
pub struct KernelReader {
    state: Arc<State>,
    rounds: std::sync::atomic::AtomicUsize,
}

impl Machine {
    /// Starts a kernel-mode client reading `pin`: `rounds` read requests of `headers` buffers of
    /// `extent` bytes each, one in flight at a time, each sent again from the completion routine
    /// of the one before.
    ///
    /// # Errors
    /// The status of referencing the handle or of allocating the IRP and buffers.
    pub fn kernel_reader(
        &self,
        pin: Handle,
        headers: usize,
        extent: usize,
        rounds: u32,
    ) -> Result<KernelReader, NTSTATUS> {
        let reader = self.kernel_reader_unstarted(pin, headers, extent)?;
        reader.start(rounds);
        Ok(reader)
    }

    /// A kernel-mode reader of `pin` that holds the pin's file object (its own reference, as a
    /// driver keeps one) but sends nothing until [`KernelReader::start`]: the pin's handle can
    /// close in between, and the reader then sends on a file object whose cleanup has run.
    ///
    /// # Errors
    /// As [`Machine::kernel_reader`].
    pub fn kernel_reader_unstarted(
        &self,
        pin: Handle,
        headers: usize,
        extent: usize,
    ) -> Result<KernelReader, NTSTATUS> {
        let m = Arc::clone(&self.inner);
        let _enter = Enter::new(&m);
        let (file, device, stack_size) = reference_pin(pin, ksabi::FILE_READ_DATA)?;
        let irp = crate::iomgr::allocate_irp(&m, stack_size);
        // Pool blocks are at least 16-byte aligned: enough for stream headers.
        #[allow(clippy::cast_ptr_alignment)]
        let headers_block =
            m.pool.allocate(POOL_FLAG_NON_PAGED, headers * HEADER, TAG).cast::<KSSTREAM_HEADER>();
        let data = m.pool.allocate(POOL_FLAG_NON_PAGED, headers * extent, TAG);
        if irp.is_null() || headers_block.is_null() || data.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        let state = Arc::new(State {
            machine: Arc::clone(&m),
            irp,
            file,
            device,
            headers: headers_block,
            data,
            count: headers,
            extent,
            remaining: AtomicU32::new(0),
            results: Mutex::new(Vec::new()),
            finished: Condvar::new(),
        });
        Ok(KernelReader { state, rounds: std::sync::atomic::AtomicUsize::new(0) })
    }
}

/// References `pin`'s file object (a user-mode handle of the test process, checked for `access`)
/// as a kernel client keeps one; returns it, the top of its stack, and the stack size an IRP of
/// the client's needs (one location more, its own).
pub(crate) fn reference_pin(
    pin: Handle,
    access: u32,
) -> Result<(*mut FILE_OBJECT, *mut DEVICE_OBJECT, i8), NTSTATUS> {
    let mut object: *mut c_void = std::ptr::null_mut();
    // SAFETY: `object` is a local the out pointer may write.
    let status = unsafe {
        crate::ob::reference_by_handle(
            std::ptr::without_provenance_mut(usize::try_from(pin.raw()).unwrap_or(usize::MAX)),
            access,
            std::ptr::null_mut(),
            ksabi::UserMode,
            &raw mut object,
        )
    };
    if !nt_success(status) {
        return Err(status);
    }
    let file = object.cast::<FILE_OBJECT>();
    // SAFETY: the file object was just referenced by `ObReferenceObjectByHandle`.
    let related = unsafe { crate::iomgr::related_device(file) };
    // SAFETY: `related` is a device of this live machine; the stack is not changing while a
    // handle to it is open.
    let device = unsafe { crate::iomgr::top_of_stack(related) };
    // SAFETY: the device is live while the file object is referenced.
    let stack_size = unsafe { (*device).StackSize } + 1;
    Ok((file, device, stack_size))
}

impl KernelReader {
    /// Sends the first of `rounds` read requests (each next one from the completion routine of the
    /// one before). Once per reader.
    ///
    /// # Panics
    /// If the reader has already started.
    pub fn start(&self, rounds: u32) {
        if rounds == 0 {
            return;
        }
        let started = self.rounds.compare_exchange(0, rounds as usize, Ordering::SeqCst, Ordering::SeqCst);
        assert!(started.is_ok(), "a kernel reader starts once");
        self.state.remaining.store(rounds - 1, Ordering::SeqCst);
        let _enter = Enter::new(&self.state.machine);
        send(&self.state);
    }

    /// The requests completed so far: status and data bytes, in order.
    #[must_use]
    pub fn completed(&self) -> Vec<(IoStatus, usize)> {
        self.state.results.locked().clone()
    }

    /// Waits up to `timeout` for every request to complete, frees the client's IRP and buffers and
    /// drops its reference; returns each request's status and data bytes, in order.
    #[must_use]
    pub fn finish(self, timeout: Duration) -> Vec<(IoStatus, usize)> {
        let s = &self.state;
        let rounds = self.rounds.load(Ordering::SeqCst);
        let results = {
            let guard = s.results.locked();
            let (guard, _) = s
                .finished
                .wait_timeout_while(guard, timeout, |r| r.len() < rounds)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            guard.clone()
        };
        let m = &s.machine;
        let _enter = Enter::new(m);
        if results.len() == rounds {
            // SAFETY: every request has completed, so the client's IRP is back in its hands (its
            // completion routine kept it), and `finish` consumes the reader: no one uses it after.
            unsafe { crate::iomgr::free_irp(m, s.irp) };
            // SAFETY: the client's header block: every request has completed and the IRP is freed,
            // so nothing uses it any more.
            unsafe { m.pool.free(s.headers.cast(), Some(TAG)) };
            // SAFETY: the client's data block, likewise unused now.
            unsafe { m.pool.free(s.data, Some(TAG)) };
            // SAFETY: the reference `kernel_reader_unstarted` took, given up once: `finish` consumes
            // the reader, and its IRP, the only other user of the file object, is back and freed.
            unsafe { crate::ob::dereference(s.file.cast()) };
        }
        // Otherwise the IRP is still in the driver: leave it (the verifier reports it).
        results
    }
}

/// Builds the read request in the client's IRP and sends it to the top of the pin's stack.
fn send(s: &State) {
    let m = &s.machine;
    // SAFETY: the client's own IRP, not in flight: `send` runs before the first request and from
    // the completion routine that took the last one back.
    unsafe { crate::iomgr::reuse_irp(m, s.irp, STATUS_NOT_SUPPORTED) };
    for i in 0..s.count {
        let header = KSSTREAM_HEADER {
            Size: u32::try_from(HEADER).unwrap_or(0),
            FrameExtent: u32::try_from(s.extent).unwrap_or(u32::MAX),
            Data: s.data.wrapping_add(i * s.extent).cast(),
            // SAFETY: all-zero is a valid stream header for the rest.
            ..unsafe { std::mem::zeroed() }
        };
        let slot = s.headers.wrapping_add(i);
        // SAFETY: `count` headers fit the client's header block.
        unsafe { slot.write(header) };
    }
    let irp = s.irp;
    // SAFETY: the kernel client's own IRP (`IoAllocateIrp`), not in flight: no one else uses it.
    let past_end = unsafe { crate::objects::IrpBox::of(irp) }.overlay().CurrentStackLocation;
    // SAFETY: the client's IRP, not in flight: its next location is below the past-the-end one.
    let next = unsafe { &mut *past_end.wrapping_sub(1) };
    next.MajorFunction = IRP_MJ_DEVICE_CONTROL;
    next.MinorFunction = 0;
    next.Parameters.DeviceIoControl = IO_PARAMETERS_DEVICE_IO_CONTROL {
        OutputBufferLength: u32::try_from(s.count * HEADER).unwrap_or(u32::MAX),
        Pad0: 0,
        InputBufferLength: 0,
        Pad1: 0,
        IoControlCode: IOCTL_KS_READ_STREAM,
        Pad2: 0,
        Type3InputBuffer: std::ptr::null_mut(),
    };
    next.FileObject = s.file;
    next.CompletionRoutine = Some(completed);
    next.Context = std::ptr::from_ref(s).cast_mut().cast();
    next.Control = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
    // SAFETY: as above.
    unsafe { (*irp).UserBuffer = s.headers.cast() };
    // SAFETY: as above.
    unsafe { (*irp).RequestorMode = KernelMode };
    // `IofCallDriver`: the referenced pin's device and the client's IRP with its next location set.
    // SAFETY: `s.device` is the top of the referenced pin's stack, a device of this machine; the
    // client's IRP, its next location set up above, is handed on and not touched until it comes
    // back to `completed`.
    unsafe { crate::iomgr::call_driver(s.device, irp) };
}

/// The client's completion routine: records the request, frees the MDLs the probe built, and —
/// the point of this client — sends the next request from right here.
unsafe extern "system" fn completed(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the state `send` passed; the reader keeps it alive until every request completed.
    let s = unsafe { &*context.cast::<State>() };
    // SAFETY: the client's IRP, back in its hands.
    let io = unsafe { (*irp).IoStatus };
    // SAFETY: as above.
    let mut mdl = unsafe { (*irp).MdlAddress };
    while !mdl.is_null() {
        // SAFETY: an MDL of the chain the driver's probe built for this request.
        let next = unsafe { (*mdl).Next };
        // SAFETY: an MDL of the client's own IRP, back in its hands: no one else uses it.
        unsafe { crate::iomgr::unlock_pages(&s.machine, mdl) };
        // SAFETY: as above; it is unhooked from the IRP below and not used after.
        unsafe { crate::iomgr::free_mdl(&s.machine, mdl) };
        mdl = next;
    }
    // SAFETY: as above.
    unsafe { (*irp).MdlAddress = std::ptr::null_mut() };
    let headers = io.Information / HEADER;
    // SAFETY: the driver filled `headers` headers of the client's block.
    let bytes =
        (0..headers.min(s.count)).map(|i| unsafe { (*s.headers.wrapping_add(i)).DataUsed } as usize).sum();
    let status = IoStatus { status: io.Status, information: io.Information };
    let resend = s.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    s.results.locked().push((status, bytes));
    if resend {
        send(s);
    } else {
        s.finished.notify_all();
    }
    STATUS_MORE_PROCESSING_REQUIRED
}
