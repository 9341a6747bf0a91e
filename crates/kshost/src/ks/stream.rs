//! `KsProbeStreamIrp` and `KsAcquireResetValue` (KS-REFERENCE §1.10, §1.12).
//!
//! `KsProbeStreamIrp` follows ReactOS' checks, which are the precise public model:
//! - the headers are the *output* buffer (`Irp->UserBuffer`, `OutputBufferLength`);
//! - a user-mode array is probed and copied into a system buffer (`IRP_BUFFERED_IO |
//!   IRP_DEALLOCATE_BUFFER`, plus `IRP_INPUT_OPERATION` for reads so the updated headers go back);
//!   a kernel-mode array is used in place; a second call on the same IRP does nothing;
//! - each header: with `HeaderSize != 0`, `Size == HeaderSize` (unless a lone `TYPECHANGED` header);
//!   with `HeaderSize == 0`, `Size >= sizeof(KSSTREAM_HEADER)` and a multiple of 8; `Size` within
//!   what is left; writes: `DataUsed <= FrameExtent`, `TYPECHANGED` only as the only header and only
//!   with `KSPROBE_ALLOWFORMATCHANGE` (else `STATUS_INVALID_PARAMETER`); reads: `DataUsed == 0` and
//!   `OptionsFlags == 0`. Any other violation: `STATUS_INVALID_BUFFER_SIZE`. An empty array:
//!   `STATUS_INVALID_BUFFER_SIZE`.
//! - with `KSPROBE_ALLOCATEMDL`, one MDL per header whose `FrameExtent > 0`, chained at
//!   `Irp->MdlAddress` in header order; the data must be mapped user memory of `FrameExtent` bytes
//!   (else `STATUS_ACCESS_VIOLATION`, what `MmProbeAndLockPages` raises). kshost's MDLs are locked
//!   and mapped (`MappedSystemVa` is a real address) when `KSPROBE_PROBEANDLOCK |
//!   KSPROBE_SYSTEMADDRESS` are given.
//! - In the captured copy each header's `Data` stays a (tagged) user address: the driver must use
//!   the MDL. The I/O manager copies the headers back as they are.

// Capture buffers are allocated 16-aligned and every offset into them is a multiple of 8 (the
// value area is rounded up to 8); data a client laid out is read with `read_unaligned`.
#![allow(clippy::cast_ptr_alignment)]
use ksabi::{
    IRP, IrpFlags, KSRESET, KSSTREAM_HEADER, KsProbe, KsStreamOptions, MDL, MDL_MAPPED_TO_SYSTEM_VA,
    MDL_PAGES_LOCKED, NTSTATUS, STATUS_ACCESS_VIOLATION, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
    UserMode,
};

use crate::machine::{MachineInner, current, violation};
use crate::objects::IrpBox;
use crate::sync::Locked;
use crate::verifier::Rule;

const HEADER: usize = size_of::<KSSTREAM_HEADER>();

pub(crate) fn probe_stream_irp(irp: *mut IRP, flags: u32, header_size: u32) -> NTSTATUS {
    if !crate::irql::require_at_most(ksabi::APC_LEVEL, "KsProbeStreamIrp") {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    let m = current();
    let flags = KsProbe::from_bits_retain(flags);
    let b = IrpBox::of(irp);
    let len = b.ioctl().OutputBufferLength as usize;
    let (irp_flags, mode, user) =
        (IrpFlags::from_bits_retain(b.irp.Flags), b.irp.RequestorMode, b.irp.UserBuffer as usize);
    if irp_flags.contains(IrpFlags::BUFFERED_IO) {
        return STATUS_SUCCESS; // already probed
    }
    if len < HEADER {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    let user_mode = mode == UserMode;
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
        if !m.pool.covers(user, len) {
            // A kernel caller's buffer must be system memory; anything else is a bug check on Windows.
            violation(
                Rule::UnknownObject,
                format!("KsProbeStreamIrp: kernel-mode header array {user:#x} is not pool"),
            );
            return STATUS_ACCESS_VIOLATION;
        }
        std::ptr::with_exposed_provenance_mut(user)
    };
    let result = validate(headers, len, flags, header_size).and_then(|offsets| {
        let mdls = if flags.contains(KsProbe::ALLOCATEMDL) {
            build_mdls(&m, headers, &offsets, flags, user_mode)?
        } else {
            Vec::new()
        };
        Ok((offsets, mdls))
    });
    let (offsets, mdls) = match result {
        Ok(r) => r,
        Err(status) => {
            if user_mode {
                crate::iomgr::free_system_buffer(&m, headers);
            }
            return status;
        }
    };
    if user_mode {
        tag_data(irp, headers, &offsets);
    }
    install(irp, headers, &mdls, irp_flags, user_mode, flags.contains(KsProbe::STREAMWRITE));
    STATUS_SUCCESS
}

/// A header of the array (read unaligned: a kernel caller's array need not be 8-aligned).
fn header_at(headers: *mut u8, offset: usize) -> KSSTREAM_HEADER {
    let at = headers.wrapping_add(offset).cast::<KSSTREAM_HEADER>();
    // SAFETY: callers pass offsets with HEADER bytes left in the array.
    unsafe { at.read_unaligned() }
}

/// Checks every header; returns their offsets.
fn validate(headers: *mut u8, len: usize, flags: KsProbe, header_size: u32) -> Result<Vec<usize>, NTSTATUS> {
    let write = flags.contains(KsProbe::STREAMWRITE);
    let mut offsets = Vec::new();
    let mut at = 0;
    while at < len {
        let left = len - at;
        if left < HEADER {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        let h = header_at(headers, at);
        let size = h.Size as usize;
        if write && KsStreamOptions::from_bits_retain(h.OptionsFlags).contains(KsStreamOptions::TYPECHANGED) {
            if !flags.contains(KsProbe::ALLOWFORMATCHANGE) || at != 0 || size != len {
                return Err(STATUS_INVALID_PARAMETER);
            }
        } else if header_size != 0 {
            if size != header_size as usize {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
        } else if size < HEADER || !size.is_multiple_of(8) {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        if size == 0 || size > left {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        let bad = if write { h.DataUsed > h.FrameExtent } else { h.DataUsed != 0 || h.OptionsFlags != 0 };
        if bad {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        offsets.push(at);
        at += size;
    }
    Ok(offsets)
}

/// One MDL per header with a buffer, in header order (not yet chained to the IRP).
fn build_mdls(
    m: &MachineInner,
    headers: *mut u8,
    offsets: &[usize],
    flags: KsProbe,
    user_mode: bool,
) -> Result<Vec<*mut MDL>, NTSTATUS> {
    let mapped = flags.contains(KsProbe::PROBEANDLOCK | KsProbe::SYSTEMADDRESS);
    let mut built: Vec<*mut MDL> = Vec::new();
    for &off in offsets {
        let h = header_at(headers, off);
        if h.FrameExtent == 0 {
            continue;
        }
        let extent = h.FrameExtent as usize;
        let data = if user_mode {
            m.user.probe(crate::usermem::to_user(h.Data.cast()), extent)
        } else if m.pool.covers(h.Data as usize, extent) {
            Some(h.Data.cast::<u8>())
        } else {
            violation(
                Rule::UnknownObject,
                format!("KsProbeStreamIrp: kernel-mode frame buffer {:p} is not pool", h.Data),
            );
            None
        };
        let Some(data) = data.filter(|d| !d.is_null()) else {
            for mdl in built {
                m.objects.locked().mdls.remove(&(mdl as usize));
                // SAFETY: allocated just above with Box::into_raw, not yet shared.
                drop(unsafe { Box::from_raw(mdl) });
            }
            return Err(STATUS_ACCESS_VIOLATION);
        };
        let mdl = Box::into_raw(Box::new(MDL {
            Next: std::ptr::null_mut(),
            Size: i16::try_from(size_of::<MDL>()).unwrap_or(i16::MAX),
            MdlFlags: if mapped { MDL_MAPPED_TO_SYSTEM_VA | MDL_PAGES_LOCKED } else { MDL_PAGES_LOCKED },
            Process: std::ptr::null_mut(),
            MappedSystemVa: data.cast(),
            StartVa: h.Data,
            ByteCount: h.FrameExtent,
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
fn tag_data(irp: *mut IRP, headers: *mut u8, offsets: &[usize]) {
    let mut restore = IrpBox::of(irp).meta.restore.locked();
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
fn install(
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
    let b = IrpBox::of(irp);
    b.irp.AssociatedIrp.SystemBuffer = headers.cast();
    b.irp.Flags = new_flags.bits();
    if let (Some(&first), Some(&last)) = (mdls.first(), mdls.last()) {
        // SAFETY: the last MDL built for this IRP, not yet shared.
        unsafe { (*last).Next = b.irp.MdlAddress };
        b.irp.MdlAddress = first;
    }
}

/// `KsAcquireResetValue`: the `KSRESET` in the input buffer (probed for user requests).
pub(crate) fn acquire_reset_value(irp: *mut IRP, value: *mut KSRESET) -> NTSTATUS {
    let m = current();
    if value.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let b = IrpBox::of(irp);
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
