//! Pool: `ExAllocatePool2` / `ExFreePoolWithTag` with tags, leak and double-free detection.
//!
//! Alignment is what Windows gives: blocks of a page or more start on a page boundary, smaller
//! blocks on 16 bytes. Memory is zeroed unless `POOL_FLAG_UNINITIALIZED`, in which case it is
//! filled with 0xBD so reads of uninitialised pool stand out. With special pool on (the default,
//! [`crate::Settings::special_pool`]) each block lives on pages of its own against a guard page
//! and is made inaccessible when freed ([`crate::special_pool`]).

use std::alloc::Layout;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use ksabi::{
    DISPATCH_LEVEL, PAGE_SIZE, POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED, POOL_FLAG_UNINITIALIZED,
    POOL_FLAG_USE_QUOTA, POOL_FLAGS,
};

use crate::special_pool;
use crate::sync::Locked;
use crate::verifier::Rule;

/// `POOL_FLAG_NON_PAGED_EXECUTE`.
const POOL_FLAG_NON_PAGED_EXECUTE: u64 = 0x80;

/// One live allocation.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// Bytes requested.
    pub size: usize,
    /// Pool tag.
    pub tag: u32,
    backing: Backing,
    /// The client process charged for it (`POOL_FLAG_USE_QUOTA` in its context).
    charged: Option<u64>,
    /// Paged pool (`POOL_FLAG_PAGED`).
    paged: bool,
}

/// Where a block's memory comes from.
#[derive(Clone, Copy, Debug)]
enum Backing {
    /// The process heap (special pool off).
    Heap(Layout),
    /// Pages of its own with a guard page ([`crate::special_pool`]).
    Special(special_pool::Special),
}

/// A machine's pool.
pub(crate) struct Pool {
    /// Blocks go on special pool.
    special: bool,
    /// Quota a client process may be charged, in bytes.
    quota: Option<usize>,
    /// Bytes the whole pool may hold.
    limit: Option<usize>,
    /// Bytes charged to each client process.
    charges: Mutex<HashMap<u64, usize>>,
    /// By address: a kernel-mode buffer's block is found in `O(log n)` ([`Pool::covers`], asked
    /// for every buffer a kernel-mode request names).
    blocks: Mutex<BTreeMap<usize, Block>>,
    /// Fault injection: the number of further allocations that succeed before one fails.
    fail_after: Mutex<Option<u64>>,
    allocations: Mutex<u64>,
}

/// The printable form of a pool tag, as `!poolused` shows it.
#[must_use]
pub fn tag_text(tag: u32) -> String {
    tag.to_le_bytes().iter().map(|&b| if b.is_ascii_graphic() { b as char } else { '.' }).collect()
}

impl Pool {
    /// An empty pool; `special` puts every block on special pool; `quota` limits what a client
    /// process may be charged, `limit` what the pool holds.
    pub(crate) fn new(special: bool, quota: Option<usize>, limit: Option<usize>) -> Self {
        Self {
            special,
            quota,
            limit,
            charges: Mutex::default(),
            blocks: Mutex::default(),
            fail_after: Mutex::default(),
            allocations: Mutex::default(),
        }
    }

    /// Charges `size` bytes to the current client process if the allocation asks for quota:
    /// `Err(())` if its quota does not cover them. The System process is never charged.
    fn charge(&self, flags: POOL_FLAGS, size: usize) -> Result<Option<u64>, ()> {
        let Some(process) = crate::process::current().filter(|_| flags & POOL_FLAG_USE_QUOTA != 0) else {
            return Ok(None);
        };
        let mut charges = self.charges.locked();
        let used = charges.entry(process).or_insert(0);
        if self.quota.is_some_and(|q| used.saturating_add(size) > q) {
            return Err(());
        }
        *used += size;
        Ok(Some(process))
    }

    /// Bytes charged to client process `process` now.
    pub(crate) fn charged(&self, process: u64) -> usize {
        self.charges.locked().get(&process).copied().unwrap_or(0)
    }

    pub(crate) fn allocate(&self, flags: POOL_FLAGS, size: usize, tag: u32) -> *mut u8 {
        let types = flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED | POOL_FLAG_NON_PAGED_EXECUTE);
        if types.count_ones() != 1 {
            crate::machine::violation(
                Rule::PoolBadRequest,
                format!("ExAllocatePool2 flags {flags:#x} name no single pool type"),
            );
            return std::ptr::null_mut();
        }
        let paged = types == POOL_FLAG_PAGED;
        if paged && !crate::irql::require_at_most(ksabi::APC_LEVEL, "ExAllocatePool2(POOL_FLAG_PAGED)") {
            return std::ptr::null_mut();
        }
        if !crate::irql::require_at_most(DISPATCH_LEVEL, "ExAllocatePool2") {
            return std::ptr::null_mut();
        }
        *self.allocations.locked() += 1;
        if self.injected_failure() {
            return std::ptr::null_mut();
        }
        let in_use: usize = self.blocks.locked().values().map(|b| b.size).sum();
        if self.limit.is_some_and(|l| in_use.saturating_add(size) > l) {
            return std::ptr::null_mut();
        }
        let Ok(charged) = self.charge(flags, size) else {
            return std::ptr::null_mut();
        };
        let (ptr, backing) = if self.special {
            let Some((ptr, block)) = special_pool::allocate(size, tag) else {
                self.uncharge(charged, size);
                return std::ptr::null_mut();
            };
            (ptr, Backing::Special(block))
        } else {
            let align = if size >= PAGE_SIZE { PAGE_SIZE } else { 16 };
            let Ok(layout) = Layout::from_size_align(size.max(1), align) else {
                return std::ptr::null_mut();
            };
            // SAFETY: the layout has a non-zero size.
            let ptr = unsafe { std::alloc::alloc(layout) };
            if ptr.is_null() {
                self.uncharge(charged, size);
                return ptr;
            }
            (ptr, Backing::Heap(layout))
        };
        let fill = if flags & POOL_FLAG_UNINITIALIZED != 0 { 0xBD } else { 0 };
        // SAFETY: freshly allocated, at least `size` bytes.
        unsafe { ptr.write_bytes(fill, size) };
        self.blocks.locked().insert(ptr as usize, Block { size, tag, backing, charged, paged });
        ptr
    }

    /// `ExFreePoolWithTag` (`tag` `None`: `ExFreePool`): frees a block of the table; any other
    /// pointer is reported, never read.
    ///
    /// # Safety
    /// As the routine's contract: no one uses the block during or after the call. The table makes
    /// the free itself sound (a block is taken out of it once, under its lock); the contract keeps
    /// others from touching freed memory.
    pub(crate) unsafe fn free(&self, ptr: *mut u8, tag: Option<u32>) {
        if !crate::irql::require_at_most(DISPATCH_LEVEL, "ExFreePoolWithTag") {
            return;
        }
        let Some(block) = self.blocks.locked().remove(&(ptr as usize)) else {
            crate::machine::violation(
                Rule::PoolBadFree,
                format!("ExFreePoolWithTag({ptr:p}): not an allocated block (double free?)"),
            );
            return;
        };
        if let Some(tag) = tag.filter(|&t| t != block.tag) {
            crate::machine::violation(
                Rule::PoolTagMismatch,
                format!(
                    "ExFreePoolWithTag({ptr:p}, '{}') of a block allocated with '{}'",
                    tag_text(tag),
                    tag_text(block.tag)
                ),
            );
        }
        self.uncharge(block.charged, block.size);
        // SAFETY: the block was allocated at `ptr` with this backing and has just been taken out of
        // the table, so it is released once.
        unsafe { release(ptr, block.backing, true) };
    }

    /// Returns quota to the process a block was charged to, whichever context frees it.
    fn uncharge(&self, charged: Option<u64>, size: usize) {
        if let Some(p) = charged
            && let Some(used) = self.charges.locked().get_mut(&p)
        {
            *used = used.saturating_sub(size);
        }
    }

    /// The blocks still allocated.
    pub(crate) fn live(&self) -> Vec<(usize, Block)> {
        let mut v: Vec<_> = self.blocks.locked().iter().map(|(&a, &b)| (a, b)).collect();
        v.sort_by_key(|&(a, _)| a);
        v
    }

    /// Whether `len` bytes at `addr` lie inside one live block (what a kernel-mode buffer must be).
    pub(crate) fn covers(&self, addr: usize, len: usize) -> bool {
        let blocks = self.blocks.locked();
        blocks.range(..=addr).next_back().is_some_and(|(&a, b)| addr.saturating_add(len) <= a + b.size)
    }

    /// Whether `len` bytes at `addr` lie inside one live block of non-paged pool (what
    /// `MmBuildMdlForNonPagedPool` may describe).
    pub(crate) fn covers_nonpaged(&self, addr: usize, len: usize) -> bool {
        let blocks = self.blocks.locked();
        blocks
            .range(..=addr)
            .next_back()
            .is_some_and(|(&a, b)| !b.paged && addr.saturating_add(len) <= a + b.size)
    }

    /// Whether `addr` is the start of a live block.
    pub(crate) fn owns(&self, addr: usize) -> bool {
        self.blocks.locked().contains_key(&addr)
    }

    /// The low-resources simulation's turn for one allocation: `true` if this one fails. Also
    /// asked by the routines that allocate pool on the driver's behalf on Windows (a KS object or
    /// device header, a device object, an interface's link: see FIDELITY.md), which then fail with
    /// `STATUS_INSUFFICIENT_RESOURCES`.
    pub(crate) fn injected_failure(&self) -> bool {
        let mut fail = self.fail_after.locked();
        match fail.as_mut() {
            Some(0) => {
                *fail = None;
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }

    /// Lets the next `n` allocations succeed and the one after fail (low-resources simulation).
    pub(crate) fn fail_after(&self, n: Option<u64>) {
        *self.fail_after.locked() = n;
    }

    pub(crate) fn allocation_count(&self) -> u64 {
        *self.allocations.locked()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Leaks were reported by the verifier; give the memory back to the test process.
        for (addr, block) in std::mem::take(self.blocks.get_mut().unwrap()) {
            // SAFETY: each block of the table, allocated at `addr` with its backing, drained (so
            // released) once; the machine is gone, so no driver uses it any more.
            unsafe { release(std::ptr::with_exposed_provenance_mut(addr), block.backing, false) };
        }
    }
}

/// Gives a block's memory back: to the heap, or to special pool's quarantine (`quarantine`: a
/// driver's free, which later accesses must fault on) or straight to the system (a leaked block
/// at the machine's end).
///
/// # Safety
/// `ptr` is a block allocated with `backing`, just taken out of the table (so released once), and
/// no one uses it after.
unsafe fn release(ptr: *mut u8, backing: Backing, quarantine: bool) {
    match backing {
        // SAFETY: the caller's contract: allocated with this layout, released once.
        Backing::Heap(layout) => unsafe { std::alloc::dealloc(ptr, layout) },
        Backing::Special(block) if quarantine => special_pool::free(block),
        Backing::Special(block) => special_pool::discard(block),
    }
}
