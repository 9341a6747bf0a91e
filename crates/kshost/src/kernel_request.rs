//! One kernel-mode stream request, as another driver would send it: its own IRP, headers and
//! data in non-paged pool — and, if the test asks, MDLs of its own chained at `Irp->MdlAddress`
//! (what ksring's IRP sources do). ks.sys takes such a chain as it is: it checks no header and
//! builds no MDL, and only maps (first MDL locked or nonpaged) or probes and locks (otherwise)
//! what it finds (FIDELITY.md, `KsProbeStreamIrp`). So a driver that serves kernel senders must
//! check headers itself; and a sender's chain must be all nonpaged-built, which kshost reports
//! when it is not.

use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ksabi::{
    DEVICE_OBJECT, FILE_OBJECT, IO_PARAMETERS_DEVICE_IO_CONTROL, IOCTL_KS_WRITE_STREAM, IRP,
    IRP_MJ_DEVICE_CONTROL, KSSTREAM_HEADER, KernelMode, MDL, NTSTATUS, PAGE_SIZE, POOL_FLAG_NON_PAGED,
    SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_IO_TIMEOUT, STATUS_MORE_PROCESSING_REQUIRED,
};

use crate::client::Handle;
use crate::machine::{Enter, Machine, MachineInner};
use crate::objects::IoStatus;
use crate::sync::Locked;

/// Pool tag of the request's blocks.
const TAG: u32 = u32::from_le_bytes(*b"KReq");

/// The MDLs a kernel request carries when it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresetMdls {
    /// None: the target's `KsProbeStreamIrp` builds them.
    None,
    /// One per header with bytes, each built with `MmBuildMdlForNonPagedPool` (ksring's way).
    NonPaged,
    /// As `NonPaged`, but the first only initialized (`MmInitializeMdl`), not built: ks.sys then
    /// probes and locks every MDL, the built ones too.
    FirstUnbuilt,
    /// As `NonPaged`, but every MDL after the first only initialized: ks.sys maps them as if built.
    LaterUnbuilt,
}

/// A header of a kernel request: headers lie 56 bytes apart in the array (whatever their `Size`
/// says; `0xA0` for one with `metadata`), their bytes one after another in the request's data
/// block.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelHeader {
    /// `Size` (56 for a plain header; anything else is bad input).
    pub size: u32,
    /// `FrameExtent`: the bytes it names.
    pub extent: u32,
    /// `DataUsed`.
    pub used: u32,
    /// `OptionsFlags`.
    pub options: u32,
    /// A `METADATA` header's extension (the header then takes `0xA0` bytes of the array): the
    /// metadata buffer's length (at `+0x80`) and whether its address (at `+0x88`) is set (the
    /// start of the data block) or 0.
    pub metadata: Option<(u32, bool)>,
    /// `Data` is NULL (the bytes are still in the data block, and a preset MDL describes them).
    pub no_data: bool,
}

impl KernelHeader {
    /// Bytes it takes in the array.
    fn stride(&self) -> usize {
        if self.metadata.is_some() { 0xA0 } else { size_of::<KSSTREAM_HEADER>() }
    }
}

/// How a kernel request ended: its status, its headers and data as the target left them.
#[derive(Clone, Debug)]
pub struct KernelRequestResult {
    /// `IoStatus`.
    pub io: IoStatus,
    /// The header array after completion.
    pub headers: Vec<KSSTREAM_HEADER>,
    /// The data block after completion (each header's extent, in order).
    pub data: Vec<u8>,
}

/// What the completion routine hands back.
struct Done {
    io: Mutex<Option<IoStatus>>,
    signal: Condvar,
}

impl Machine {
    /// Sends one kernel-mode `ioctl` (`IOCTL_KS_READ_STREAM` or `IOCTL_KS_WRITE_STREAM`) to `pin`
    /// with `headers` (a write's data is `pattern`, repeated),
    /// carrying `mdls`, and waits up to `timeout` for it to complete. Everything it allocated is
    /// freed, except when it did not complete (the verifier then reports the IRP).
    ///
    /// # Errors
    /// Referencing the handle, allocating, or `STATUS_IO_TIMEOUT` when it did not complete.
    pub fn kernel_request(
        &self,
        pin: Handle,
        ioctl: u32,
        headers: &[KernelHeader],
        pattern: &[u8],
        mdls: PresetMdls,
        timeout: Duration,
    ) -> Result<KernelRequestResult, NTSTATUS> {
        let m = Arc::clone(&self.inner);
        let _enter = Enter::new(&m);
        let access =
            if ioctl == IOCTL_KS_WRITE_STREAM { ksabi::FILE_WRITE_DATA } else { ksabi::FILE_READ_DATA };
        let (file, device, stack_size) = crate::kernel_client::reference_pin(pin, access)?;
        // (An empty list is an empty array: `OutputBufferLength` 0.)
        let array_len = headers.iter().map(KernelHeader::stride).sum::<usize>();
        let data_len: usize = headers.iter().map(|h| h.extent as usize).sum::<usize>().max(1);
        let mdl_len =
            headers.len() * size_of::<MDL>() + (data_len.div_ceil(PAGE_SIZE) + 2 * headers.len()) * 8;
        let irp = crate::iomgr::allocate_irp(&m, stack_size);
        let array = m.pool.allocate(POOL_FLAG_NON_PAGED, array_len.max(1), TAG);
        let data = m.pool.allocate(POOL_FLAG_NON_PAGED, data_len, TAG);
        let mdl_block = m.pool.allocate(POOL_FLAG_NON_PAGED, mdl_len.max(1), TAG);
        if irp.is_null() || array.is_null() || data.is_null() || mdl_block.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        }
        for i in 0..data_len {
            let byte = pattern.get(i % pattern.len().max(1)).copied().unwrap_or(0);
            // SAFETY: inside the data block just allocated, which only this call uses.
            unsafe { data.wrapping_add(i).write(byte) };
        }
        let chain = lay_out(&m, array, data, mdl_block, headers, mdls);
        let done = Arc::new(Done { io: Mutex::new(None), signal: Condvar::new() });
        // The completion routine gets a reference of its own: it may still run after a timeout.
        let context = Arc::into_raw(Arc::clone(&done));
        // SAFETY: the IRP just allocated, not in flight; `array` holds the headers.
        unsafe { set_up(irp, file, ioctl, array, array_len, chain, context) };
        // SAFETY: `device` is the top of the referenced pin's stack; the IRP is set up above and
        // not touched until its completion routine runs.
        unsafe { crate::iomgr::call_driver(device, irp) };
        let io = {
            let guard = done.io.locked();
            let (guard, _) = done
                .signal
                .wait_timeout_while(guard, timeout, |io| io.is_none())
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *guard
        };
        let Some(io) = io else {
            return Err(STATUS_IO_TIMEOUT); // the IRP is still out: left for the verifier to report
        };
        // SAFETY: the header array and data block, which the completed request no longer uses.
        let headers_after = unsafe { std::slice::from_raw_parts(array.cast_const(), array_len) };
        let headers_after = headers_after
            .chunks_exact(size_of::<KSSTREAM_HEADER>())
            // SAFETY: a header's bytes; any bit pattern is a valid header.
            .map(|b| unsafe { b.as_ptr().cast::<KSSTREAM_HEADER>().read_unaligned() })
            .collect();
        // SAFETY: as above.
        let data_after = unsafe { std::slice::from_raw_parts(data.cast_const(), data_len) }.to_vec();
        // SAFETY: the request completed: the IRP is back (its routine kept it) with no MDL left on it,
        // and nothing uses the blocks or the file object's reference any more.
        unsafe {
            crate::iomgr::free_irp(&m, irp);
        }
        for block in [array, data, mdl_block] {
            // SAFETY: blocks allocated above, unused now.
            unsafe { m.pool.free(block, Some(TAG)) };
        }
        // SAFETY: the reference `reference_pin` took, given up once.
        unsafe { crate::ob::dereference(file.cast()) };
        Ok(KernelRequestResult { io, headers: headers_after, data: data_after })
    }
}

/// Writes the headers into `array` over consecutive ranges of `data`, and builds the MDLs `mdls`
/// asks for in `block`; returns the chain's first MDL (or null).
fn lay_out(
    m: &MachineInner,
    array: *mut u8,
    data: *mut u8,
    block: *mut u8,
    headers: &[KernelHeader],
    mdls: PresetMdls,
) -> *mut MDL {
    let (mut at, mut offset, mut mdl_at) = (0usize, 0usize, 0usize);
    let (mut first, mut last): (*mut MDL, *mut MDL) = (std::ptr::null_mut(), std::ptr::null_mut());
    for h in headers {
        let bytes = data.wrapping_add(offset);
        let header = KSSTREAM_HEADER {
            Size: h.size,
            FrameExtent: h.extent,
            DataUsed: h.used,
            OptionsFlags: h.options,
            Data: if h.no_data { std::ptr::null_mut() } else { bytes.cast() },
            // SAFETY: all-zero is a valid stream header for the rest.
            ..unsafe { std::mem::zeroed() }
        };
        // SAFETY: inside the array (each header's stride, at least a header).
        unsafe { array.wrapping_add(at).cast::<KSSTREAM_HEADER>().write_unaligned(header) };
        if let Some((length, with_address)) = h.metadata {
            let address = if with_address { data.addr() as u64 } else { 0 };
            // SAFETY: `+0x80..+0x90` of a header whose stride is `0xA0`, inside the array.
            unsafe { array.wrapping_add(at + 0x80).cast::<u32>().write_unaligned(length) };
            // SAFETY: as above.
            unsafe { array.wrapping_add(at + 0x88).cast::<u64>().write_unaligned(address) };
        }
        at += h.stride();
        if mdls != PresetMdls::None && h.extent > 0 {
            let va = bytes.addr();
            let pages = crate::iomgr::pages_spanned(va, h.extent as usize);
            #[allow(clippy::cast_ptr_alignment)] // offsets are multiples of 8 in a 16-aligned block
            let mdl = block.wrapping_add(mdl_at).cast::<MDL>();
            mdl_at += size_of::<MDL>() + pages * 8;
            let value = MDL {
                Next: std::ptr::null_mut(),
                Size: i16::try_from(size_of::<MDL>() + pages * 8).unwrap_or(i16::MAX),
                MdlFlags: 0,
                Process: std::ptr::null_mut(),
                MappedSystemVa: std::ptr::null_mut(),
                StartVa: bytes.wrapping_sub(va % PAGE_SIZE).cast(),
                ByteCount: h.extent,
                ByteOffset: u32::try_from(va % PAGE_SIZE).unwrap_or(0),
            };
            // SAFETY: inside the MDL block (sized for every header's pages), 8-aligned.
            unsafe { mdl.write(value) };
            let unbuilt = match mdls {
                PresetMdls::FirstUnbuilt => first.is_null(),
                PresetMdls::LaterUnbuilt => !first.is_null(),
                _ => false,
            };
            if !unbuilt {
                // SAFETY: an MDL just initialized in pool over the pool data block, owned here.
                unsafe { crate::iomgr::build_mdl_for_nonpaged_pool(m, mdl) };
            }
            if last.is_null() {
                first = mdl;
            } else {
                // SAFETY: the MDL built before, in the block.
                unsafe { (*last).Next = mdl };
            }
            last = mdl;
        }
        offset += h.extent as usize;
    }
    first
}

/// Sets up the request's next location and fields.
///
/// # Safety
/// `irp` is a kshost driver IRP not in flight; `array` holds `len` bytes of headers; `done` is a
/// reference given up for the completion routine.
unsafe fn set_up(
    irp: *mut IRP,
    file: *mut FILE_OBJECT,
    ioctl: u32,
    array: *mut u8,
    len: usize,
    chain: *mut MDL,
    done: *const Done,
) {
    // SAFETY: the caller's IRP, not in flight: no one else uses it.
    let past_end = unsafe { crate::objects::IrpBox::of(irp) }.overlay().CurrentStackLocation;
    // SAFETY: its next location, below the past-the-end one.
    let next = unsafe { &mut *past_end.wrapping_sub(1) };
    next.MajorFunction = IRP_MJ_DEVICE_CONTROL;
    next.Parameters.DeviceIoControl = IO_PARAMETERS_DEVICE_IO_CONTROL {
        OutputBufferLength: u32::try_from(len).unwrap_or(u32::MAX),
        Pad0: 0,
        InputBufferLength: 0,
        Pad1: 0,
        IoControlCode: ioctl,
        Pad2: 0,
        Type3InputBuffer: std::ptr::null_mut(),
    };
    next.FileObject = file;
    next.CompletionRoutine = Some(completed);
    next.Context = done.cast_mut().cast();
    next.Control = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
    // SAFETY: as above.
    unsafe { (*irp).UserBuffer = array.cast() };
    // SAFETY: as above.
    unsafe { (*irp).RequestorMode = KernelMode };
    // SAFETY: as above.
    unsafe { (*irp).MdlAddress = chain };
}

/// The request's completion routine: frees the MDLs the target's probe built (its own stay in
/// their block), takes the chain off the IRP, and reports.
unsafe extern "system" fn completed(
    _device: *mut DEVICE_OBJECT,
    irp: *mut IRP,
    context: *mut c_void,
) -> NTSTATUS {
    // SAFETY: the reference `kernel_request` gave up for this routine, taken back once.
    let done = unsafe { Arc::from_raw(context.cast::<Done>()) };
    let m = crate::machine::current();
    // SAFETY: the request's IRP, back in its sender's hands.
    let mut mdl = unsafe { std::mem::replace(&mut (*irp).MdlAddress, std::ptr::null_mut()) };
    while !mdl.is_null() {
        // SAFETY: an MDL of the chain: the sender's own (in its block) or one the probe built.
        let next = unsafe { (*mdl).Next };
        if m.objects.locked().mdls.contains(&(mdl as usize)) {
            // SAFETY: an MDL the target's probe built, locked by it: unlocked and freed once.
            unsafe { crate::iomgr::unlock_pages(&m, mdl) };
            // SAFETY: as above.
            unsafe { crate::iomgr::free_mdl(&m, mdl) };
        }
        mdl = next;
    }
    // SAFETY: as above.
    let io = unsafe { (*irp).IoStatus };
    *done.io.locked() = Some(IoStatus { status: io.Status, information: io.Information });
    done.signal.notify_all();
    STATUS_MORE_PROCESSING_REQUIRED
}
