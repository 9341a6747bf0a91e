//! The ring's memory: one non-paged pool block per filter, allocated when the first pin leaves
//! STOP and freed when the last one returns to it (or closes). It counts against the driver's cap
//! on ring memory ([`Limits`]) and is charged to the pool quota of the process whose state
//! request allocates it (`POOL_FLAG_USE_QUOTA`: the property request runs in its context).
//!
//! The block is `[RingCore, padded to a page][storage: capacity bytes]`. A block of a page or more
//! is page-aligned (`ExAllocatePool2` guarantees it), which satisfies the `RingCore`'s 128-byte
//! cache-line alignment and the storage's 8-byte record alignment.

use core::mem::MaybeUninit;
use core::ptr::NonNull;

use framering::{Consumer, Producer, RingCore};
use ksabi::{NTSTATUS, PAGE_SIZE, POOL_FLAG_NON_PAGED, POOL_FLAG_USE_QUOTA, STATUS_INSUFFICIENT_RESOURCES};

use super::pool::Shared;
use crate::limits::Limits;
use crate::{ids, sys};

const _: () = assert!(size_of::<RingCore>() <= PAGE_SIZE && align_of::<RingCore>() <= PAGE_SIZE);

/// A ring's pool block. The halves handed out by [`RingMemory::allocate`] borrow it (as
/// `'static`: they live beside it, under the filter's locks); [`RingMemory::free`] takes them back
/// and lets the block go only if they are its own — so no half outlives its memory. (A half lends
/// out nothing that lives longer than itself: `core()` and its grants borrow the half.)
///
/// The block itself is counted ([`Shared`]): a request of an IRP source that names bytes of the
/// ring's storage ([`RingRef`]) keeps it allocated until the request completes, even when the
/// filter has let the ring go meanwhile (a STOP while cancelled requests still complete).
pub struct RingMemory {
    block: Shared<RingBlock>,
}

/// The pool block and what it was reserved against; freed when the last reference goes.
struct RingBlock {
    base: NonNull<u8>,
    capacity: u32,
    /// The driver's cap the capacity is reserved against, until the block is freed.
    limits: &'static Limits,
}

// SAFETY: non-paged pool is reachable from any thread at any IRQL; the block is freed once, by the
// last reference (`Drop`).
unsafe impl Send for RingBlock {}
// SAFETY: as above; shared references only read the address and capacity.
unsafe impl Sync for RingBlock {}

impl Drop for RingBlock {
    fn drop(&mut self) {
        // SAFETY: allocated with this tag in `allocate`, freed once (the last reference); no half
        // borrows it any more (`free` took them back first) and no request names it (each held a
        // reference until it completed).
        unsafe { sys::ExFreePoolWithTag(self.base.as_ptr().cast(), ids::TAG_RING) };
        self.limits.release(self.capacity);
    }
}

/// A reference on a ring's block that lends out its storage: where the bytes of frames an IRP
/// source sends in place lie, alive while the reference is.
#[derive(Clone)]
pub struct RingRef {
    block: Shared<RingBlock>,
}

impl RingRef {
    /// The storage's first byte and length (the frames' offsets are from there).
    pub fn storage(&self) -> (*mut u8, usize) {
        (self.block.base.as_ptr().wrapping_add(PAGE_SIZE), self.block.capacity as usize)
    }

    /// Whether `core` is this block's control block (a half's `core()`): the half is of this ring.
    pub fn holds(&self, core: &RingCore) -> bool {
        core::ptr::eq(self.block.base.as_ptr().cast_const(), core::ptr::from_ref(core).cast::<u8>())
    }

    /// Whether two references are on the same block.
    pub fn same(&self, other: &Self) -> bool {
        Shared::ptr_eq(&self.block, &other.block)
    }
}

/// A new ring: its memory and its two halves.
pub struct NewRing {
    /// The memory.
    pub memory: RingMemory,
    /// The producer half (the input pin's end).
    pub producer: Producer<'static>,
    /// The consumer half (the output pin's end).
    pub consumer: Consumer<'static>,
}

impl RingMemory {
    /// Allocates and splits a ring of `capacity` bytes: `STATUS_QUOTA_EXCEEDED` if the driver's
    /// rings would exceed its cap, `STATUS_INSUFFICIENT_RESOURCES` if pool (or the caller's pool
    /// quota) is short or the capacity is not one framering accepts. Nothing is held on failure.
    pub fn allocate(capacity: u32, limits: &'static Limits) -> Result<NewRing, NTSTATUS> {
        let storage_len = usize::try_from(capacity).map_err(|_| STATUS_INSUFFICIENT_RESOURCES)?;
        let bytes = PAGE_SIZE.checked_add(storage_len).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
        let reserved = limits.reserve(capacity);
        if !ksabi::nt_success(reserved) {
            return Err(reserved);
        }
        // SAFETY: a plain non-paged allocation, zeroed (no POOL_FLAG_UNINITIALIZED), charged to the
        // current process.
        let block =
            unsafe { sys::ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_USE_QUOTA, bytes, ids::TAG_RING) };
        let Some(base) = NonNull::new(block) else {
            limits.release(capacity);
            return Err(STATUS_INSUFFICIENT_RESOURCES);
        };
        let base = base.cast::<u8>();
        // From here on the block is freed (and the capacity released) when its last reference goes.
        let Some(block) = Shared::new(ids::TAG_RING_COUNT, RingBlock { base, capacity, limits }) else {
            return Err(STATUS_INSUFFICIENT_RESOURCES); // (the `RingBlock` dropped: freed)
        };
        let core = base.cast::<MaybeUninit<RingCore>>();
        // SAFETY: the block starts page-aligned and holds a RingCore in its first page, ours alone;
        // it lives until its last reference goes, and the halves are dropped before the filter's
        // (the `'static` stands for "until `free`", which the owner upholds).
        let core_ref: &'static mut RingCore = unsafe { &mut *core.as_ptr() }.write(RingCore::new());
        // The storage follows the first page, inside the block (not null: past a non-null base).
        let storage = NonNull::new(base.as_ptr().wrapping_add(PAGE_SIZE)).unwrap_or(base);
        // SAFETY: `storage_len` zeroed bytes owned by this block, used by nothing else.
        let split = unsafe { core_ref.split_raw(storage, storage_len) };
        let memory = Self { block };
        if let Ok((producer, consumer)) = split {
            Ok(NewRing { memory, producer, consumer })
        } else {
            // Nothing borrows the block: the split failed.
            drop(memory);
            Err(STATUS_INSUFFICIENT_RESOURCES)
        }
    }

    /// The control block, for statistics.
    pub fn core(&self) -> &RingCore {
        // SAFETY: written in `allocate`, valid while the block is, only read through shared
        // references (the halves use atomics).
        unsafe { self.block.base.cast::<RingCore>().as_ref() }
    }

    /// Storage bytes.
    pub fn capacity(&self) -> u32 {
        self.block.capacity
    }

    /// A reference on the block that lends its storage (to an IRP source's requests).
    pub fn share(&self) -> RingRef {
        RingRef { block: self.block.clone() }
    }

    /// Lets the ring go, given back its two halves (dropped here, first): the block is freed now,
    /// or when the last [`RingRef`] goes. Halves of another ring free nothing: the block is then
    /// kept (leaked, and said so), as a half of it may still be out there.
    pub fn free(self, producer: Producer<'static>, consumer: Consumer<'static>) {
        // The halves end with this block, before the memory is freed.
        let own = {
            let (producer, consumer) = (producer, consumer);
            core::ptr::eq(producer.core(), self.core()) && core::ptr::eq(consumer.core(), self.core())
        };
        if !own {
            crate::log::kdprint!(crate::log::LEVEL_ERROR, "a ring freed with another ring's halves: kept");
            core::mem::forget(self);
        }
    }
}
