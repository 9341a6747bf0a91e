//! The MDLs an [`super::Outbound`] request carries over its own ring's memory: built in a pool
//! block of the request's (`MmInitializeMdl` + `MmBuildMdlForNonPagedPool`) each time it is sent,
//! one per header with bytes, in header order, and chained at `Irp->MdlAddress`.
//!
//! Why: a request that arrives with MDLs is taken as it is — ks.sys' `KsProbeStreamIrp` (Windows
//! 10/11 and ReactOS alike) then builds no MDL and, since the first one describes nonpaged pool,
//! neither probes nor locks any: it only takes each one's `MappedSystemVa`. Without them it would
//! `IoAllocateMdl`, `MmProbeAndLockPages`, and later `MmUnlockPages` and `IoFreeMdl` every header
//! of every request. The cost of the shortcut: the sink checks none of our headers (they are
//! right by construction: [`super::StreamBuffers`]), and *every* MDL of the chain must be built
//! this way — ks.sys looks at the first only, and maps an unlocked one (a bug check).
//!
//! The block is sized when the source connects, for its ring's capacity then; a request whose
//! MDLs do not fit (the ring was made larger since) goes without, and the sink's ks.sys builds
//! them as before.

use core::ffi::c_void;
use core::ptr::{NonNull, null_mut};

use ksabi::{MDL, PAGE_SIZE, POOL_FLAG_NON_PAGED};

use crate::sys;

/// Bytes of an MDL before its page array.
const HEADER: usize = size_of::<MDL>();
/// Bytes of a page array entry (`PFN_NUMBER`).
const PFN: usize = size_of::<usize>();

/// Pages `len` bytes at `va` touch (`ADDRESS_AND_SIZE_TO_SPAN_PAGES`).
fn pages_spanned(va: usize, len: usize) -> usize {
    ((va % PAGE_SIZE) + len).div_ceil(PAGE_SIZE)
}

/// Bytes of an MDL for `len` bytes at `va`, if its `Size` (a `CSHORT`) can say so.
fn mdl_size(va: usize, len: usize) -> Option<usize> {
    let size = pages_spanned(va, len).checked_mul(PFN)?.checked_add(HEADER)?;
    i16::try_from(size).is_ok().then_some(size)
}

/// A pool block a request's MDLs are built in, one send at a time.
pub struct RequestMdls {
    block: NonNull<u8>,
    len: usize,
    tag: u32,
}

// SAFETY: owns its pool block; written only by the request's sender while the request is not in
// flight (`Outbound::send`), read by the completion only as addresses.
unsafe impl Send for RequestMdls {}
// SAFETY: as above.
unsafe impl Sync for RequestMdls {}

impl RequestMdls {
    /// A block for up to `headers` MDLs over disjoint ranges of a region `region_len` bytes long;
    /// `None` if the pool has no room.
    pub fn new(tag: u32, region_len: usize, headers: usize) -> Option<Self> {
        // Each range adds at most one partial page at each end to its share of the region's pages.
        let pages = region_len.div_ceil(PAGE_SIZE).checked_add(headers.checked_mul(2)?)?;
        let len = pages.checked_mul(PFN)?.checked_add(headers.checked_mul(HEADER)?)?;
        // SAFETY: a plain non-paged allocation, checked below.
        let raw = unsafe { sys::ExAllocatePool2(POOL_FLAG_NON_PAGED, len, tag) };
        Some(Self { block: NonNull::new(raw.cast::<u8>())?, len, tag })
    }

    /// Whether `mdl` is one of this block's (built by [`RequestMdls::build`]).
    pub fn owns(&self, mdl: *const MDL) -> bool {
        let start = self.block.as_ptr().addr();
        (start..start + self.len).contains(&mdl.addr())
    }

    /// Builds one MDL per range, in order, chained, and returns the first — or null if there are
    /// none or they do not all fit (then the request goes without: none is half-built into a
    /// chain).
    ///
    /// # Safety
    /// Every range lies in nonpaged pool that stays allocated while the chain is in use; no MDL
    /// this block built before is still in use (the request is not in flight).
    pub unsafe fn build(&self, ranges: impl Iterator<Item = (*mut u8, usize)> + Clone) -> *mut MDL {
        let mut total = 0usize;
        for (at, len) in ranges.clone() {
            let Some(size) = mdl_size(at.addr(), len).filter(|_| len > 0) else { return null_mut() };
            total += size;
        }
        if total > self.len {
            return null_mut();
        }
        let mut first: *mut MDL = null_mut();
        let mut last: *mut MDL = null_mut();
        let mut offset = 0;
        for (at, len) in ranges {
            let size = mdl_size(at.addr(), len).unwrap_or(0); // checked above
            #[allow(clippy::cast_ptr_alignment)] // offsets are multiples of 8 in a 16-aligned block
            let mdl = self.block.as_ptr().wrapping_add(offset).cast::<MDL>();
            offset += size;
            // SAFETY: `size` bytes at `offset` lie in the block (the sum was checked), aligned for
            // an MDL, and no MDL of the block is in use (the caller's contract).
            unsafe { initialize(mdl, at, len, size) };
            // SAFETY: an MDL just initialized over nonpaged pool (the caller's contract), with room
            // for its page array.
            unsafe { sys::MmBuildMdlForNonPagedPool(mdl) };
            match NonNull::new(last) {
                // SAFETY: the previous MDL built just above, in the block.
                Some(previous) => unsafe { (*previous.as_ptr()).Next = mdl },
                None => first = mdl,
            }
            last = mdl;
        }
        first
    }
}

impl Drop for RequestMdls {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this tag; no MDL of it is in use (the request that
        // owns the block is not in flight when it is dropped).
        unsafe { sys::ExFreePoolWithTag(self.block.as_ptr().cast::<c_void>(), self.tag) };
    }
}

/// `MmInitializeMdl`: an MDL of `size` bytes for `len` bytes at `va`.
///
/// # Safety
/// `mdl` is valid for writing an MDL and aligned for it.
unsafe fn initialize(mdl: *mut MDL, va: *mut u8, len: usize, size: usize) {
    #[allow(clippy::cast_possible_truncation)] // `len` fits a u32 (a header's `FrameExtent`)
    let value = MDL {
        Next: null_mut(),
        Size: i16::try_from(size).unwrap_or(i16::MAX), // fits (`mdl_size`)
        MdlFlags: 0,
        Process: null_mut(),
        MappedSystemVa: null_mut(),
        StartVa: va.wrapping_sub(va.addr() % PAGE_SIZE).cast(),
        ByteCount: len as u32,
        ByteOffset: (va.addr() % PAGE_SIZE) as u32,
    };
    // SAFETY: the caller's contract.
    unsafe { mdl.write(value) };
}

#[cfg(test)]
mod tests {
    use super::{HEADER, PFN, mdl_size, pages_spanned};

    #[test]
    fn an_mdl_has_one_entry_per_page_its_range_touches() {
        assert_eq!(pages_spanned(0x1000, 0x1000), 1);
        assert_eq!(pages_spanned(0x1fff, 2), 2, "two bytes across a page boundary");
        assert_eq!(pages_spanned(0x1008, 0x2000), 3);
        assert_eq!(mdl_size(0x1000, 1), Some(HEADER + PFN));
        assert_eq!(mdl_size(0, 64 << 20), None, "16384 entries do not fit an MDL's Size");
    }
}
