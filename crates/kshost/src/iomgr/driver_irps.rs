//! The driver's own IRPs and MDLs: `IoAllocateIrp`, `IoFreeIrp`, `IoReuseIrp`, `IoFreeMdl` and
//! `MmUnlockPages`, with the checks that such an IRP is back in the driver's hands.

use std::sync::atomic::Ordering;

use ksabi::{IRP, NTSTATUS};

use super::requests::{location_index, release_irp};
use crate::machine::{MachineInner, violation};
use crate::objects::{IrpBox, Origin};
use crate::sync::Locked;
use crate::verifier::Rule;

/// `IoAllocateIrp`: an IRP with `stack_size` locations, none current, owned by the driver.
pub(crate) fn allocate_irp(m: &MachineInner, stack_size: i8) -> *mut IRP {
    if stack_size < 1 || usize::try_from(stack_size).unwrap_or(usize::MAX) > crate::objects::MAX_STACK {
        violation(
            Rule::Unsupported,
            format!("IoAllocateIrp({stack_size}): kshost IRPs have 1..=8 locations"),
        );
        return std::ptr::null_mut();
    }
    let b = IrpBox::new(stack_size, Origin::Driver, std::ptr::null_mut());
    let irp: *mut IRP = Box::into_raw(b).cast();
    let mut o = m.objects.locked();
    o.irps.insert(irp as usize);
    o.driver_irps.insert(irp as usize);
    irp
}

/// Whether `irp` is one of the driver's own IRPs, back in its hands; reports `what` otherwise.
///
/// # Safety
/// If `irp` is one of the driver's own IRPs (in the registry), the caller is the driver that owns
/// it, and nothing frees, reuses or sends it during the call. (Any other pointer is only looked
/// up, never read.)
unsafe fn driver_irp_in_hand(m: &MachineInner, irp: *mut IRP, what: &str) -> bool {
    if !m.objects.locked().driver_irps.contains(&(irp as usize)) {
        violation(Rule::DriverIrpMisuse, format!("{what}({irp:p}): not an IRP from IoAllocateIrp"));
        return false;
    }
    // SAFETY: a registered driver IRP (checked just above) that no one frees meanwhile (the
    // caller's contract); the driver may have it in flight, so only the record is referenced.
    if !unsafe { IrpBox::meta_of(irp) }.driver_owned.load(Ordering::Acquire) {
        violation(Rule::DriverIrpMisuse, format!("{what}({irp:p}) while the IRP is in flight"));
        return false;
    }
    // SAFETY: a registered driver IRP back in the driver's hands (checked above), and the driver
    // is the caller: no one else touches it; one field is read through the raw pointer.
    if !unsafe { (*irp).MdlAddress }.is_null() {
        violation(Rule::DriverIrpMisuse, format!("{what}({irp:p}) with MDLs still chained at MdlAddress"));
    }
    true
}

/// `IoFreeIrp`.
///
/// # Safety
/// As `IoFreeIrp`'s contract: `irp` is an IRP the caller allocated (`IoAllocateIrp`), back in its
/// hands, and no one uses it after the call. (kshost reports any other pointer without reading it.)
pub(crate) unsafe fn free_irp(m: &MachineInner, irp: *mut IRP) {
    // SAFETY: the caller's contract: if it is a driver IRP, the caller owns it.
    if !unsafe { driver_irp_in_hand(m, irp, "IoFreeIrp") } {
        return;
    }
    m.objects.locked().driver_irps.remove(&(irp as usize));
    // SAFETY: an IRP from `IoAllocateIrp` back in its owner's hands holds the one reference its
    // allocation made, which the owner gives up here (the caller's contract).
    unsafe { release_irp(m, irp) };
}

/// `IoReuseIrp`: as freshly allocated, with `status`.
///
/// # Safety
/// As `IoReuseIrp`'s contract: `irp` is an IRP the caller allocated (`IoAllocateIrp`), back in its
/// hands, which no one else uses during the call. (kshost reports any other pointer without
/// reading it.)
pub(crate) unsafe fn reuse_irp(m: &MachineInner, irp: *mut IRP, status: NTSTATUS) {
    // SAFETY: the caller's contract: if it is a driver IRP, the caller owns it.
    if !unsafe { driver_irp_in_hand(m, irp, "IoReuseIrp") } {
        return;
    }
    // SAFETY: a registered driver IRP back in the driver's hands (checked above), and the driver
    // is the caller: no one else touches it.
    let b = unsafe { IrpBox::of(irp) };
    let count = b.irp.StackCount;
    let fresh = IrpBox::new(count, Origin::Driver, std::ptr::null_mut());
    *b.stack = fresh.stack;
    b.irp.Flags = 0;
    b.irp.MdlAddress = std::ptr::null_mut();
    b.irp.AssociatedIrp.SystemBuffer = std::ptr::null_mut();
    b.irp.IoStatus.Status = status;
    b.irp.IoStatus.Information = 0;
    b.irp.PendingReturned = 0;
    b.irp.Cancel = 0;
    b.irp.CancelRoutine = None;
    b.irp.UserBuffer = std::ptr::null_mut();
    b.irp.CurrentLocation = count + 1;
    let past_end = b.stack.as_mut_ptr().wrapping_add(location_index(count) + 1);
    b.irp.Tail.Overlay.CurrentStackLocation = past_end;
    b.meta.completed.store(false, Ordering::Release);
    b.meta.restore.locked().clear();
}

/// `IoFreeMdl` (after `MmUnlockPages`): an MDL `KsProbeStreamIrp` built for a driver's own IRP.
///
/// # Safety
/// As `IoFreeMdl`'s contract: no one uses `mdl` during or after the call (it is off every IRP's
/// chain). The registry makes the free itself sound; the contract keeps others from reading a
/// freed MDL.
pub(crate) unsafe fn free_mdl(m: &MachineInner, mdl: *mut ksabi::MDL) {
    if m.objects.locked().mdls.remove(&(mdl as usize)) {
        // SAFETY: allocated by kshost with Box::into_raw; removed from the registry once.
        drop(unsafe { Box::from_raw(mdl) });
    } else {
        violation(Rule::UnknownObject, format!("IoFreeMdl({mdl:p}): not an MDL kshost built"));
    }
}

/// `MmUnlockPages`.
///
/// # Safety
/// If `mdl` is an MDL kshost built, no one else reads, writes or frees it during the call (the
/// caller owns the IRP it was built for, or has taken it off that IRP). Any other pointer is only
/// looked up, never read.
pub(crate) unsafe fn unlock_pages(m: &MachineInner, mdl: *mut ksabi::MDL) {
    if !m.objects.locked().mdls.contains(&(mdl as usize)) {
        violation(Rule::UnknownObject, format!("MmUnlockPages({mdl:p}): not an MDL kshost built"));
        return;
    }
    // SAFETY: a live kshost MDL (checked above) that no one else touches meanwhile (the caller's
    // contract); only the flags are referenced.
    let flags = unsafe { &mut (*mdl).MdlFlags };
    if *flags & ksabi::MDL_PAGES_LOCKED == 0 {
        violation(Rule::Unsupported, format!("MmUnlockPages({mdl:p}): pages not locked"));
    }
    *flags &= !(ksabi::MDL_PAGES_LOCKED | ksabi::MDL_MAPPED_TO_SYSTEM_VA);
}

/// Pages `len` bytes at `va` touch (`ADDRESS_AND_SIZE_TO_SPAN_PAGES`).
pub(crate) fn pages_spanned(va: usize, len: usize) -> usize {
    ((va % ksabi::PAGE_SIZE) + len).div_ceil(ksabi::PAGE_SIZE)
}

/// `MmBuildMdlForNonPagedPool`: the MDL (initialized by `MmInitializeMdl` in caller-allocated pool)
/// gets its page array filled (kshost has no physical pages: each entry is the page's virtual
/// page number), `MDL_SOURCE_IS_NONPAGED_POOL`, and its buffer's address as `MappedSystemVa`. What
/// the docs leave undefined is reported (`MDL_MISUSE`) and the MDL left as it was: an MDL not in
/// non-paged pool (`MmInitializeMdl`'s rule), flags already set (built, locked, partial), a page
/// array smaller than the buffer needs or outside the MDL's pool block, a buffer that is not
/// non-paged pool, an empty one.
///
/// # Safety
/// If `mdl` lies in a live pool block, the caller owns the MDL and no one else uses it during the
/// call. (Any other pointer is only looked up, never read.)
pub(crate) unsafe fn build_mdl_for_nonpaged_pool(m: &MachineInner, mdl: *mut ksabi::MDL) {
    if !crate::irql::require_at_most(ksabi::DISPATCH_LEVEL, "MmBuildMdlForNonPagedPool") {
        return;
    }
    let header = size_of::<ksabi::MDL>();
    if !m.pool.covers_nonpaged(mdl as usize, header) {
        violation(
            Rule::MdlMisuse,
            format!("MmBuildMdlForNonPagedPool({mdl:p}): the MDL is not in non-paged pool"),
        );
        return;
    }
    // SAFETY: a header's bytes inside a live pool block (checked above) that the caller owns and no
    // one else uses (the contract).
    let d = unsafe { &mut *mdl };
    let va = (d.StartVa as usize).wrapping_add(d.ByteOffset as usize);
    let count = d.ByteCount as usize;
    let pages = pages_spanned(va, count);
    let needed = header + pages * size_of::<u64>();
    let problem = if d.MdlFlags
        & (ksabi::MDL_PAGES_LOCKED
            | ksabi::MDL_SOURCE_IS_NONPAGED_POOL
            | ksabi::MDL_MAPPED_TO_SYSTEM_VA
            | ksabi::MDL_PARTIAL)
        != 0
    {
        Some(format!("flags {:#x} already set: not fresh from MmInitializeMdl", d.MdlFlags))
    } else if !(d.StartVa as usize).is_multiple_of(ksabi::PAGE_SIZE)
        || d.ByteOffset as usize >= ksabi::PAGE_SIZE
    {
        Some(format!("StartVa {:p} / ByteOffset {:#x} are not MmInitializeMdl's", d.StartVa, d.ByteOffset))
    } else if count == 0 {
        Some("an empty buffer".to_string())
    } else if usize::try_from(d.Size).unwrap_or(0) < needed || !m.pool.covers(mdl as usize, needed) {
        Some(format!("Size {} and the MDL's pool block leave no room for {pages} page entries", d.Size))
    } else if !m.pool.covers_nonpaged(va, count) {
        Some(format!("the buffer {va:#x} (+{count}) is not non-paged pool"))
    } else {
        None
    };
    if let Some(problem) = problem {
        violation(Rule::MdlMisuse, format!("MmBuildMdlForNonPagedPool({mdl:p}): {problem}"));
        return;
    }
    let array = mdl.wrapping_add(1).cast::<u64>();
    let first_page = va / ksabi::PAGE_SIZE;
    for i in 0..pages {
        // SAFETY: entry `i` of the page array, inside the MDL's pool block (checked above); the
        // array follows the 8-aligned header, and pool blocks are 16-aligned.
        unsafe { array.wrapping_add(i).write_unaligned((first_page + i) as u64) };
    }
    d.MappedSystemVa = std::ptr::with_exposed_provenance_mut(va);
    d.Process = std::ptr::null_mut(); // (ReactOS clears it too: system memory has no process)
    d.MdlFlags |= ksabi::MDL_SOURCE_IS_NONPAGED_POOL;
}
