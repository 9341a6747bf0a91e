//! `KsProbeStreamIrp` and `KsAcquireResetValue` (KS-REFERENCE §1.10, §1.12).
//!
//! `KsProbeStreamIrp` follows the Windows 10/11 ks.sys (a public decompiled listing; FIDELITY.md):
//! - the headers are the *output* buffer (`Irp->UserBuffer`, `OutputBufferLength`);
//! - a user-mode array is probed and copied into a system buffer (`IRP_BUFFERED_IO |
//!   IRP_DEALLOCATE_BUFFER`, plus `IRP_INPUT_OPERATION` for reads so the updated headers go back);
//!   a kernel-mode array is used in place; a second call on the same IRP does nothing;
//! - each header: with `HeaderSize != 0`, `Size == HeaderSize` (or a `TYPECHANGED` header) and at
//!   least a `KSSTREAM_HEADER`; with `HeaderSize == 0`, `Size >= sizeof(KSSTREAM_HEADER)` and a
//!   multiple of 8; `Size` within what is left — else `STATUS_INVALID_BUFFER_SIZE`. Writes:
//!   `DataUsed <= FrameExtent` (`STATUS_INVALID_BUFFER_SIZE`); `TYPECHANGED` only in a lone
//!   56-byte header (`STATUS_INVALID_BUFFER_SIZE`) and only with `KSPROBE_ALLOWFORMATCHANGE`
//!   (`STATUS_INVALID_PARAMETER`); write flags are otherwise not checked. Reads: `DataUsed == 0`
//!   (`STATUS_INVALID_BUFFER_SIZE`) and no `OptionsFlags` outside what ks.sys allows
//!   (`STATUS_INVALID_PARAMETER`). An empty array: `STATUS_INVALID_BUFFER_SIZE` from user mode;
//!   from kernel mode it passes, with no header and no MDL.
//! - with `KSPROBE_ALLOCATEMDL`, MDLs chained at `Irp->MdlAddress` in header order: one per header
//!   with `FrameExtent > 0`; for `PERSIST_SAMPLE | SAMPLE_PERSISTED` a placeholder MDL
//!   (`IoAllocateMdl(NULL, PAGE_SIZE)`) instead; for `METADATA` a second MDL for the metadata
//!   buffer the header names (header `Size >= 0xA0`, buffer and length non-zero). With
//!   `KSPROBE_PROBEANDLOCK` each MDL is probed and locked (unmapped user memory:
//!   `STATUS_ACCESS_VIOLATION`), with `KSPROBE_SYSTEMADDRESS` mapped — but when the *first*
//!   header says `SAMPLE_PERSISTED`, placeholders are left **unlocked and unmapped**, and the
//!   probe succeeds. A driver must not map such an MDL (the verifier reports `MDL_NOT_LOCKED`)
//!   nor leave it on an IRP it completes (the I/O manager unlocks every MDL of the chain).
//! - In the captured copy each header's `Data` stays a (tagged) user address: the driver must use
//!   the MDL. The I/O manager copies the headers back as they are.
//! - a request that arrives with MDLs (`Irp->MdlAddress` set: a kernel sender's own) gets no
//!   header checked and no MDL built; the chain is only mapped or probed as its first MDL says
//!   ([`probe_preset`]; Windows and ReactOS alike).

// Capture buffers are allocated 16-aligned and every offset into them is a multiple of 8 (the
// value area is rounded up to 8); data a client laid out is read with `read_unaligned`.
#![allow(clippy::cast_ptr_alignment)]
use ksabi::{
    IRP, IrpFlags, KSRESET, KSSTREAM_HEADER, KsProbe, KsStreamOptions, MDL, MDL_MAPPED_TO_SYSTEM_VA,
    MDL_MAPPING_CAN_FAIL, MDL_PAGES_LOCKED, MDL_SOURCE_IS_NONPAGED_POOL, NTSTATUS, STATUS_ACCESS_VIOLATION,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS, UserMode, nt_success,
};

use crate::machine::{MachineInner, current, violation};
use crate::objects::IrpBox;
use crate::sync::Locked;
use crate::verifier::Rule;

const HEADER: usize = size_of::<KSSTREAM_HEADER>();

/// `KsProbeStreamIrp`.
///
/// # Safety
/// As the routine's contract: `irp` is a live kshost stream IRP the caller is dispatching and owns
/// (as for [`IrpBox::of`]); for a kernel-mode IRP, `UserBuffer` holds its `OutputBufferLength`
/// bytes of headers (kshost checks they are pool), which no one writes during the call.
pub(crate) unsafe fn probe_stream_irp(irp: *mut IRP, flags: u32, header_size: u32) -> NTSTATUS {
    if !crate::irql::require_at_most(ksabi::APC_LEVEL, "KsProbeStreamIrp") {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    let m = current();
    let flags = KsProbe::from_bits_retain(flags);
    // SAFETY: the driver passes the stream IRP it is dispatching, which it owns (the export's
    // contract); no other reference to it is live.
    let mut b = unsafe { IrpBox::of(irp) };
    let len = b.ioctl().OutputBufferLength as usize;
    let (irp_flags, mode, user) =
        (IrpFlags::from_bits_retain(b.irp.Flags), b.irp.RequestorMode, b.irp.UserBuffer as usize);
    if irp_flags.contains(IrpFlags::BUFFERED_IO) {
        return STATUS_SUCCESS; // already probed
    }
    let user_mode = mode == UserMode;
    // A kernel-mode request that comes with MDLs is not looked at (Windows checks no length either).
    let preset = !user_mode && flags.contains(KsProbe::ALLOCATEMDL) && !b.irp.MdlAddress.is_null();
    // A user-mode array must hold a header; a kernel-mode one is not measured before its header
    // walk, which an empty one passes with no header checked and no MDL built (Windows 10/11).
    let refused = if user_mode { len < HEADER } else { !preset && len > 0 && len < HEADER };
    if refused {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    let headers: *mut u8 = if user_mode {
        let Some(src) = m.user.probe(user, len) else {
            return STATUS_ACCESS_VIOLATION;
        };
        let sb = crate::iomgr::alloc_system_buffer(&m, len);
        if sb.is_null() {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        // SAFETY: `len` readable bytes at `src` (probed); the buffer holds `len`.
        unsafe { std::ptr::copy_nonoverlapping(src, sb, len) };
        sb
    } else {
        if len > 0 && !m.pool.covers(user, len) {
            // A kernel caller's buffer must be system memory; anything else is a bug check on Windows.
            violation(
                Rule::UnknownObject,
                format!("KsProbeStreamIrp: kernel-mode header array {user:#x} is not pool"),
            );
            return STATUS_ACCESS_VIOLATION;
        }
        std::ptr::with_exposed_provenance_mut(user)
    };
    if preset {
        // The sender chained MDLs of its own: Windows' and ReactOS' ks.sys then check no header
        // and build no MDL; they only lock or map the chain as it is.
        let status = probe_preset(&m, b.irp.MdlAddress, flags);
        if nt_success(status) {
            // SAFETY: the IRP the caller owns; no MDL is added.
            unsafe { install(irp, headers, &[], irp_flags, user_mode, flags.contains(KsProbe::STREAMWRITE)) };
        }
        return status;
    }
    let result = {
        // SAFETY: `len` bytes at `headers`: the capture just made (user mode), or the kernel
        // caller's pool block that covers them (checked above); no one writes them while the
        // slice lives (the routine's contract for a kernel caller; a capture is this call's own).
        let array = unsafe { std::slice::from_raw_parts(headers, len) };
        validate(array, flags, header_size).and_then(|(offsets, buffers)| {
            let first_options = if array.is_empty() { 0 } else { header_at(array, 0).OptionsFlags };
            let mdls = build_mdls(&m, first_options, &buffers, flags, user_mode)?;
            Ok((offsets, mdls))
        })
    };
    let (offsets, mdls) = match result {
        Ok(r) => r,
        Err(status) => {
            if user_mode {
                // SAFETY: the capture made just above for this call, not yet on the IRP: no one
                // else has it.
                unsafe { crate::iomgr::free_system_buffer(&m, headers) };
            }
            return status;
        }
    };
    if !user_mode {
        m.kernel_mdls_built_by_probe.fetch_add(mdls.len() as u64, std::sync::atomic::Ordering::SeqCst);
    }
    if user_mode {
        // SAFETY: the IRP the caller owns; `headers` is this call's capture of `len` bytes, and
        // `offsets` were validated inside it.
        unsafe { tag_data(irp, headers, &offsets) };
    }
    // SAFETY: the IRP the caller owns; the MDLs were just built for it and are not yet shared.
    unsafe { install(irp, headers, &mdls, irp_flags, user_mode, flags.contains(KsProbe::STREAMWRITE)) };
    STATUS_SUCCESS
}

/// `KSPROBE_PROBEANDLOCK` on a chain the sender built (Windows 10/11 ks.sys and ReactOS alike):
/// if the *first* MDL is locked or describes nonpaged pool, every MDL is only mapped (with
/// `KSPROBE_SYSTEMADDRESS`; `MDL_MAPPING_CAN_FAIL` set; `MappedSystemVa` used where the MDL is
/// mapped or nonpaged, else `MmMapLockedPagesSpecifyCache`, which needs it locked:
/// `MDL_NOT_LOCKED`); otherwise every MDL is probed and locked — one built by
/// `MmBuildMdlForNonPagedPool` among them is `MDL_MISUSE`. kshost reads only MDLs in its pool
/// or of its own making; any other pointer is `UNKNOWN_OBJECT`.
fn probe_preset(m: &MachineInner, first: *mut MDL, flags: KsProbe) -> NTSTATUS {
    if !flags.contains(KsProbe::PROBEANDLOCK) {
        return STATUS_SUCCESS;
    }
    let map = flags.contains(KsProbe::SYSTEMADDRESS);
    let readable = |mdl: *mut MDL| {
        m.pool.covers(mdl as usize, size_of::<MDL>()) || m.objects.locked().mdls.contains(&(mdl as usize))
    };
    let mut mdl = first;
    let mut only_map = None;
    while !mdl.is_null() {
        if !readable(mdl) {
            violation(Rule::UnknownObject, format!("KsProbeStreamIrp: MDL {mdl:p} on the IRP is not pool"));
            return STATUS_ACCESS_VIOLATION;
        }
        // SAFETY: an MDL in pool or of kshost's making (checked above), on the IRP the caller owns:
        // no one else uses it during the probe.
        let d = unsafe { &mut *mdl };
        let va = (d.StartVa as usize).wrapping_add(d.ByteOffset as usize);
        let only_map =
            *only_map.get_or_insert(d.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL) != 0);
        if !only_map {
            if d.MdlFlags & (MDL_SOURCE_IS_NONPAGED_POOL | MDL_PAGES_LOCKED) != 0 {
                violation(
                    Rule::MdlMisuse,
                    format!(
                        "KsProbeStreamIrp: MmProbeAndLockPages of MDL {mdl:p} (flags {:#x}): the chain's first MDL is neither locked nor nonpaged, so ks.sys probes and locks every one",
                        d.MdlFlags
                    ),
                );
                return STATUS_ACCESS_VIOLATION;
            }
            if !m.pool.covers(va, d.ByteCount as usize) {
                return STATUS_ACCESS_VIOLATION; // a kernel-mode probe of memory that is not there
            }
            d.MdlFlags |= MDL_PAGES_LOCKED;
        }
        if map {
            d.MdlFlags |= MDL_MAPPING_CAN_FAIL;
            if d.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
                if d.MdlFlags & MDL_PAGES_LOCKED == 0 {
                    violation(
                        Rule::MdlNotLocked,
                        format!(
                            "KsProbeStreamIrp: MmMapLockedPagesSpecifyCache of MDL {mdl:p}, whose pages are not locked"
                        ),
                    );
                    return STATUS_INSUFFICIENT_RESOURCES;
                }
                d.MappedSystemVa = std::ptr::with_exposed_provenance_mut(va);
                d.MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
            }
        }
        mdl = d.Next;
    }
    STATUS_SUCCESS
}

/// The header at `offset` of the array (read unaligned: a kernel caller's array need not be
/// 8-aligned).
///
/// # Panics
/// If fewer than a header's bytes are left at `offset` (callers check first).
fn header_at(headers: &[u8], offset: usize) -> KSSTREAM_HEADER {
    let bytes = &headers[offset..offset + HEADER];
    // SAFETY: `bytes` holds a header's bytes (the slice is bounds-checked), and any bit pattern is
    // a valid KSSTREAM_HEADER (integers and a raw pointer).
    unsafe { bytes.as_ptr().cast::<KSSTREAM_HEADER>().read_unaligned() }
}

/// `OptionsFlags` bits a read header may not carry when ks.sys builds MDLs (its mask
/// `0xFFFA23FF`: what is left is `BUFFEREDTRANSFER`, `VRAM_DATA_TRANSFER`, `METADATA`, `FRAMEINFO`,
/// `PERSIST_SAMPLE`, `SAMPLE_PERSISTED` and `SECUREBUFFERTRANSFER`).
const READ_FORBIDDEN_WITH_MDLS: u32 = 0xFFFA_23FF;
/// The same check on the capture-only path (no `KSPROBE_ALLOCATEMDL`).
const READ_FORBIDDEN: u32 = 0xFFFB_F3FF;
/// `KSSTREAM_HEADER_OPTIONSF_PERSIST_SAMPLE | KSSTREAM_HEADER_OPTIONSF_SAMPLE_PERSISTED`.
const PERSISTED: u32 = 0x0001_8000;
/// A header with `KSSTREAM_HEADER_OPTIONSF_METADATA` is at least this long...
const METADATA_HEADER: usize = 0xA0;
/// ... and names its metadata buffer: length (ULONG) here, address (pointer) at the next offset.
const METADATA_LENGTH_AT: usize = 0x80;
const METADATA_ADDRESS_AT: usize = 0x88;

/// A buffer an MDL will describe.
#[derive(Clone, Copy)]
enum Buffer {
    /// `len` bytes at (user or kernel) address `at`.
    Data { at: usize, len: u32 },
    /// `IoAllocateMdl(NULL, PAGE_SIZE)`: what ks.sys builds for a `PERSIST_SAMPLE|SAMPLE_PERSISTED`
    /// header; never probed, locked or mapped when the first header says `SAMPLE_PERSISTED`.
    Placeholder,
}

/// The `u32` at `at` (callers pass offsets inside the array, checked against the header's Size).
fn read_u32(headers: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(headers[at..at + 4].try_into().unwrap_or_default())
}

/// The `usize` at `at` (as [`read_u32`]).
fn read_usize(headers: &[u8], at: usize) -> usize {
    usize::from_ne_bytes(headers[at..at + size_of::<usize>()].try_into().unwrap_or_default())
}

/// Checks every header as the Windows 10/11 ks.sys does; returns the header offsets and, with
/// `KSPROBE_ALLOCATEMDL`, the buffers to build MDLs for, in order.
fn validate(headers: &[u8], flags: KsProbe, header_size: u32) -> Result<(Vec<usize>, Vec<Buffer>), NTSTATUS> {
    let len = headers.len();
    let write = flags.contains(KsProbe::STREAMWRITE);
    let mdls = flags.contains(KsProbe::ALLOCATEMDL);
    let forbidden = if mdls { READ_FORBIDDEN_WITH_MDLS } else { READ_FORBIDDEN };
    let mut offsets = Vec::new();
    let mut buffers = Vec::new();
    let mut at = 0;
    while at < len {
        let left = len - at;
        if left < HEADER {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        let h = header_at(headers, at);
        let size = h.Size as usize;
        let options = KsStreamOptions::from_bits_retain(h.OptionsFlags);
        let typechanged = options.contains(KsStreamOptions::TYPECHANGED);
        let size_ok = if header_size != 0 {
            (size == header_size as usize || typechanged) && size >= HEADER
        } else {
            size >= HEADER && size.is_multiple_of(8)
        };
        if !size_ok || size > left {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        offsets.push(at);
        if write {
            if h.DataUsed > h.FrameExtent {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            if typechanged {
                if left != HEADER || at != 0 {
                    return Err(STATUS_INVALID_BUFFER_SIZE);
                }
                if !flags.contains(KsProbe::ALLOWFORMATCHANGE) {
                    return Err(STATUS_INVALID_PARAMETER);
                }
                if h.FrameExtent > 0 {
                    buffers.push(Buffer::Data { at: h.Data as usize, len: h.FrameExtent });
                    if options.contains(KsStreamOptions::METADATA) {
                        return Err(STATUS_INVALID_BUFFER_SIZE);
                    }
                }
                break;
            }
        } else {
            if h.DataUsed != 0 {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            if h.OptionsFlags & forbidden != 0 {
                return Err(STATUS_INVALID_PARAMETER);
            }
        }
        if mdls {
            if h.FrameExtent > 0 {
                if h.OptionsFlags & PERSISTED != 0 && h.Data.is_null() {
                    return Err(STATUS_INVALID_PARAMETER);
                }
                buffers.push(if h.OptionsFlags & PERSISTED == PERSISTED {
                    Buffer::Placeholder
                } else {
                    Buffer::Data { at: h.Data as usize, len: h.FrameExtent }
                });
                if options.contains(KsStreamOptions::METADATA) {
                    if left < METADATA_HEADER || size < METADATA_HEADER {
                        return Err(STATUS_INVALID_BUFFER_SIZE);
                    }
                    let meta_at = read_usize(headers, at + METADATA_ADDRESS_AT);
                    let meta_len = read_u32(headers, at + METADATA_LENGTH_AT);
                    if meta_at == 0 || meta_len == 0 {
                        return Err(STATUS_INVALID_PARAMETER);
                    }
                    buffers.push(Buffer::Data { at: meta_at, len: meta_len });
                }
            } else if options.contains(KsStreamOptions::METADATA) {
                return Err(STATUS_INVALID_PARAMETER);
            }
        }
        at += size;
    }
    Ok((offsets, buffers))
}

/// Frees the MDLs [`build_mdls`] made, when a later one fails.
///
/// # Safety
/// `built` are MDLs `build_mdls` just allocated for this call, not yet on any IRP: no one else
/// has them.
unsafe fn free_built(m: &MachineInner, built: Vec<*mut MDL>) {
    for mdl in built {
        m.objects.locked().mdls.remove(&(mdl as usize));
        // SAFETY: allocated by build_mdls with Box::into_raw, not yet shared.
        drop(unsafe { Box::from_raw(mdl) });
    }
}

/// One MDL per buffer, in order (not yet chained to the IRP). With `KSPROBE_PROBEANDLOCK` each is
/// probed and locked, and mapped with `KSPROBE_SYSTEMADDRESS` — except a placeholder when the
/// first header says `SAMPLE_PERSISTED`, which ks.sys leaves unlocked and unmapped. A placeholder
/// it does probe (the first header lacks the flag) fails as a probe of address 0 does.
fn build_mdls(
    m: &MachineInner,
    first_options: u32,
    buffers: &[Buffer],
    flags: KsProbe,
    user_mode: bool,
) -> Result<Vec<*mut MDL>, NTSTATUS> {
    let lock = flags.contains(KsProbe::PROBEANDLOCK);
    let map = lock && flags.contains(KsProbe::SYSTEMADDRESS);
    let skip_placeholders = first_options & KsStreamOptions::SAMPLE_PERSISTED.bits() != 0;
    let mut built: Vec<*mut MDL> = Vec::new();
    for &buffer in buffers {
        let (start, byte_count, data, mdl_flags) = match buffer {
            Buffer::Placeholder if skip_placeholders || !lock => {
                (std::ptr::null_mut(), 0x1000, std::ptr::null_mut::<u8>(), 0)
            }
            Buffer::Placeholder => {
                // SAFETY: the MDLs made so far by this loop, on no IRP yet.
                unsafe { free_built(m, built) };
                return Err(STATUS_ACCESS_VIOLATION);
            }
            Buffer::Data { at, len } => {
                let extent = len as usize;
                let data = if user_mode {
                    m.user.probe(crate::usermem::to_user(std::ptr::without_provenance(at)), extent)
                } else if m.pool.covers(at, extent) {
                    Some(std::ptr::with_exposed_provenance_mut::<u8>(at))
                } else {
                    violation(
                        Rule::UnknownObject,
                        format!("KsProbeStreamIrp: kernel-mode frame buffer {at:#x} is not pool"),
                    );
                    None
                };
                let Some(data) = data.filter(|d| !d.is_null()) else {
                    // SAFETY: the MDLs made so far by this loop, on no IRP yet.
                    unsafe { free_built(m, built) };
                    return Err(STATUS_ACCESS_VIOLATION);
                };
                let mdl_flags = match (lock, map) {
                    (true, true) => MDL_MAPPED_TO_SYSTEM_VA | MDL_PAGES_LOCKED,
                    (true, false) => MDL_PAGES_LOCKED,
                    _ => 0,
                };
                (std::ptr::without_provenance_mut(at), len, data, mdl_flags)
            }
        };
        if m.pool.injected_failure() {
            // `IoAllocateMdl` found no memory: ReactOS' KsProbeStreamIrp raises (and returns)
            // STATUS_INSUFFICIENT_RESOURCES.
            // SAFETY: the MDLs made so far by this loop, on no IRP yet.
            unsafe { free_built(m, built) };
            return Err(ksabi::STATUS_INSUFFICIENT_RESOURCES);
        }
        let mdl = Box::into_raw(Box::new(MDL {
            Next: std::ptr::null_mut(),
            Size: i16::try_from(size_of::<MDL>()).unwrap_or(i16::MAX),
            MdlFlags: mdl_flags,
            Process: std::ptr::null_mut(),
            MappedSystemVa: data.cast(),
            StartVa: start,
            ByteCount: byte_count,
            ByteOffset: 0,
        }));
        m.objects.locked().mdls.insert(mdl as usize);
        if let Some(&last) = built.last() {
            // SAFETY: the previous MDL, allocated above and not yet shared.
            unsafe { (*last).Next = mdl };
        }
        built.push(mdl);
    }
    Ok(built)
}

/// In the captured copy, each header's `Data` becomes the (tagged) user address it is; the caller
/// gets its own value back at completion.
///
/// # Safety
/// `irp` is a live kshost IRP the caller owns; `headers` is a capture only this call uses, with a
/// whole header at each of `offsets`.
unsafe fn tag_data(irp: *mut IRP, headers: *mut u8, offsets: &[usize]) {
    // SAFETY: the stream IRP being probed, which the driver owns (`KsProbeStreamIrp`); only the record's
    // `restore` lock is used.
    let mut restore = unsafe { IrpBox::meta_of(irp) }.restore.locked();
    for &off in offsets {
        let at = off + core::mem::offset_of!(KSSTREAM_HEADER, Data);
        let slot = headers.wrapping_add(at);
        let mut bytes = [0u8; size_of::<usize>()];
        // SAFETY: a pointer-sized field inside the captured array.
        unsafe { std::ptr::copy_nonoverlapping(slot, bytes.as_mut_ptr(), bytes.len()) };
        let original = usize::from_ne_bytes(bytes);
        let tagged = crate::usermem::to_user(std::ptr::without_provenance(original)).to_ne_bytes();
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(tagged.as_ptr(), slot, tagged.len()) };
        restore.push((at, original));
    }
}

/// Puts the captured headers and the MDL chain on the IRP.
///
/// # Safety
/// `irp` is a live kshost IRP the caller owns (as for [`IrpBox::of`]); `mdls` are MDLs built for
/// it, on no IRP yet, that no one else uses; `headers` is the system buffer it gets.
unsafe fn install(
    irp: *mut IRP,
    headers: *mut u8,
    mdls: &[*mut MDL],
    irp_flags: IrpFlags,
    user_mode: bool,
    write: bool,
) {
    let mut new_flags = irp_flags | IrpFlags::BUFFERED_IO;
    if user_mode {
        new_flags |= IrpFlags::DEALLOCATE_BUFFER;
        if !write {
            new_flags |= IrpFlags::INPUT_OPERATION;
        }
    }
    // SAFETY: the driver passes the stream IRP it is dispatching, which it owns (the export's
    // contract); no other reference to it is live.
    let b = unsafe { IrpBox::of(irp) };
    b.irp.AssociatedIrp.SystemBuffer = headers.cast();
    b.irp.Flags = new_flags.bits();
    if let (Some(&first), Some(&last)) = (mdls.first(), mdls.last()) {
        // SAFETY: the last MDL built for this IRP, not yet shared.
        unsafe { (*last).Next = b.irp.MdlAddress };
        b.irp.MdlAddress = first;
    }
}

/// `KsAcquireResetValue`: the `KSRESET` in the input buffer (probed for user requests).
///
/// # Safety
/// As the routine's contract: `irp` is a live kshost reset IRP the caller is dispatching and owns
/// (as for [`IrpBox::of`]); for a kernel-mode IRP, `Type3InputBuffer` is readable for
/// `InputBufferLength` bytes; `value` is null or valid for writing a `KSRESET`.
pub(crate) unsafe fn acquire_reset_value(irp: *mut IRP, value: *mut KSRESET) -> NTSTATUS {
    let m = current();
    if value.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the driver passes the stream IRP it is dispatching, which it owns (the export's
    // contract); no other reference to it is live.
    let mut b = unsafe { IrpBox::of(irp) };
    let p = b.ioctl();
    if (p.InputBufferLength as usize) < size_of::<KSRESET>() {
        return STATUS_INVALID_PARAMETER;
    }
    let addr = p.Type3InputBuffer as usize;
    let src = if b.irp.RequestorMode == UserMode {
        m.user.probe(addr, size_of::<KSRESET>())
    } else {
        Some(std::ptr::with_exposed_provenance_mut(addr))
    };
    let Some(src) = src.filter(|s| !s.is_null()) else {
        return STATUS_ACCESS_VIOLATION;
    };
    let mut bytes = [0u8; size_of::<KSRESET>()];
    // SAFETY: 4 readable bytes (probed or kernel).
    unsafe { std::ptr::copy_nonoverlapping(src, bytes.as_mut_ptr(), bytes.len()) };
    // SAFETY: the caller's out pointer.
    unsafe { value.write_unaligned(KSRESET::from_ne_bytes(bytes)) };
    STATUS_SUCCESS
}
