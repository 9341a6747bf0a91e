//! Special pool, as Driver Verifier's: every block on pages of its own, its end against an
//! inaccessible guard page, and its pages made inaccessible when it is freed. A driver that reads
//! or writes past the end of a block, or touches a block after freeing it, faults at that
//! instruction; the fault reporter ([`crate::usermem::install_fault_reporter`]) names the pool
//! tag and the bug check Windows would raise, and the process dies — as the machine would.
//!
//! Windows (Driver Verifier, "Special Pool"): an allocation is placed at the end of a page
//! followed by a no-access page, so an overrun faults at once (bug check 0xD6
//! `DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION`); freed special pool is made no-access and kept
//! out of reuse for a while, so a use after free faults (0xD5
//! `DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL`). Sources in `FIDELITY.md`.
//!
//! Here: blocks smaller than a page end on the page's last 16-byte boundary (kshost promises
//! 16-byte alignment), so an overrun of more than the alignment slack faults; blocks of a page or
//! more start on a page (`ExAllocatePool2` promises page alignment) and the guard follows the
//! last page. Freed blocks stay mapped no-access in a process-wide quarantine of
//! [`QUARANTINE`] blocks before their address space is returned.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::Locked;

/// The page size special pool works in (x64).
const PAGE: usize = 4096;
/// Freed blocks kept no-access before their address space is unmapped (bounds the process's
/// mappings: Linux allows about 65 000).
const QUARANTINE: usize = 4096;
/// Blocks the fault reporter can describe (live and quarantined). A block that finds no slot is
/// still guarded; its fault is reported without a tag.
const SLOTS: usize = 16_384;

/// A block on special pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Special {
    /// The mapping: data pages and the guard page.
    base: usize,
    map_len: usize,
    /// The slot describing the block to the fault reporter, if one was free.
    slot: Option<usize>,
}

/// Slot states.
const FREE: usize = 0;
const LIVE: usize = 1;
const FREED: usize = 2;

/// What the fault reporter knows of one block; written before the block is handed out, read only
/// by the reporter (atomics: the reporter runs in a signal handler and may race a writer, which
/// at worst makes it describe a fault less precisely).
struct Slot {
    state: AtomicUsize,
    base: AtomicUsize,
    map_len: AtomicUsize,
    start: AtomicUsize,
    size: AtomicUsize,
    tag: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array below
const EMPTY: Slot = Slot {
    state: AtomicUsize::new(FREE),
    base: AtomicUsize::new(0),
    map_len: AtomicUsize::new(0),
    start: AtomicUsize::new(0),
    size: AtomicUsize::new(0),
    tag: AtomicUsize::new(0),
};
static SLOT_TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
/// Where the next slot search starts.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);
/// Freed blocks still mapped no-access, oldest first.
static QUARANTINED: Mutex<VecDeque<Special>> = Mutex::new(VecDeque::new());

fn take_slot() -> Option<usize> {
    let start = NEXT_SLOT.fetch_add(1, Ordering::Relaxed);
    (0..SLOTS).map(|i| (start + i) % SLOTS).find(|&i| {
        SLOT_TABLE[i].state.compare_exchange(FREE, LIVE, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    })
}

/// Maps a special-pool block of `size` bytes; returns its address and record, or `None` when the
/// system has no address space left.
pub(crate) fn allocate(size: usize, tag: u32) -> Option<(*mut u8, Special)> {
    let data_pages = size.max(1).div_ceil(PAGE);
    let map_len = (data_pages + 1) * PAGE;
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let data_len = data_pages * PAGE;
    // SAFETY: the first `data_len` bytes of the mapping just made; the last page stays the guard.
    let rc = unsafe { libc::mprotect(base, data_len, libc::PROT_READ | libc::PROT_WRITE) };
    if rc != 0 {
        // SAFETY: the mapping made above, not handed out.
        unsafe { libc::munmap(base, map_len) };
        return None;
    }
    let base = base as usize;
    let start = if size >= PAGE { base } else { (base + data_len - size.max(1)) & !15 };
    let slot = take_slot();
    if let Some(i) = slot {
        let s = &SLOT_TABLE[i];
        s.base.store(base, Ordering::Relaxed);
        s.map_len.store(map_len, Ordering::Relaxed);
        s.start.store(start, Ordering::Relaxed);
        s.size.store(size, Ordering::Relaxed);
        s.tag.store(tag as usize, Ordering::Release);
    }
    Some((std::ptr::with_exposed_provenance_mut(start), Special { base, map_len, slot }))
}

/// Frees a block: its pages lose their contents and all access, and it joins the quarantine; the
/// oldest quarantined block beyond [`QUARANTINE`] is unmapped.
pub(crate) fn free(block: Special) {
    let base = std::ptr::with_exposed_provenance_mut::<libc::c_void>(block.base);
    // SAFETY: the block's own mapping; its contents are dead (the driver freed it).
    unsafe { libc::madvise(base, block.map_len, libc::MADV_DONTNEED) };
    // SAFETY: as above.
    unsafe { libc::mprotect(base, block.map_len, libc::PROT_NONE) };
    if let Some(i) = block.slot {
        SLOT_TABLE[i].state.store(FREED, Ordering::Release);
    }
    let evicted = {
        let mut q = QUARANTINED.locked();
        q.push_back(block);
        if q.len() > QUARANTINE { q.pop_front() } else { None }
    };
    if let Some(old) = evicted {
        release(old);
    }
}

/// Returns a block's address space to the system (the pool dropped it, or it left quarantine).
fn release(block: Special) {
    if let Some(i) = block.slot {
        SLOT_TABLE[i].state.store(FREE, Ordering::Release);
    }
    // SAFETY: the block's own mapping; nothing may use it any more.
    unsafe { libc::munmap(std::ptr::with_exposed_provenance_mut(block.base), block.map_len) };
}

/// Unmaps a live block without quarantine (the machine is going away with the block leaked).
pub(crate) fn discard(block: Special) {
    release(block);
}

/// What the reporter found at a fault address.
pub(crate) struct FaultInfo {
    /// 0xD5 or 0xD6.
    pub bug_check: u32,
    pub name: &'static str,
    pub tag: u32,
    pub start: usize,
    pub size: usize,
}

/// Describes a fault at `addr` if it lies in a special-pool block (async-signal-safe: atomics
/// only).
pub(crate) fn describe_fault(addr: usize) -> Option<FaultInfo> {
    SLOT_TABLE.iter().find_map(|s| {
        let state = s.state.load(Ordering::Acquire);
        let base = s.base.load(Ordering::Relaxed);
        let len = s.map_len.load(Ordering::Relaxed);
        if state == FREE || addr < base || addr >= base + len {
            return None;
        }
        let (bug_check, name) = if state == FREED {
            (0xD5, "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL")
        } else {
            (0xD6, "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION")
        };
        Some(FaultInfo {
            bug_check,
            name,
            tag: u32::try_from(s.tag.load(Ordering::Relaxed)).unwrap_or(0),
            start: s.start.load(Ordering::Relaxed),
            size: s.size.load(Ordering::Relaxed),
        })
    })
}
