//! Non-paged pool as owning types: a [`PoolBox`] (one owner, freed when dropped) and a
//! [`Shared`] object (counted references; the last one frees it).
//! Their contents never move, so kernel objects that point at themselves may live in them.

use core::ffi::c_void;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use ksabi::POOL_FLAG_NON_PAGED;

use crate::sys;

/// A `T` in its own non-paged pool block.
pub struct PoolBox<T> {
    block: NonNull<T>,
    tag: u32,
}

// SAFETY: owns its `T` as a `Box` would.
unsafe impl<T: Send> Send for PoolBox<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for PoolBox<T> {}

impl<T> PoolBox<T> {
    /// `value` in a new block tagged `tag`; `None` if the pool has none.
    pub fn new(tag: u32, value: T) -> Option<Self> {
        const { assert!(align_of::<T>() <= 16, "pool blocks are 16-byte aligned") };
        // SAFETY: a plain non-paged allocation, checked below.
        let raw = unsafe { sys::ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<T>().max(1), tag) };
        let block = NonNull::new(raw.cast::<T>())?;
        // SAFETY: a fresh block sized and aligned for a `T`.
        unsafe { block.as_ptr().write(value) };
        Some(Self { block, tag })
    }

    /// Gives up the block (to a kernel object that keeps the pointer), to be taken back with
    /// [`PoolBox::from_raw`].
    pub fn into_raw(this: Self) -> NonNull<T> {
        let block = this.block;
        core::mem::forget(this);
        block
    }

    /// The box [`PoolBox::into_raw`] gave up.
    ///
    /// # Safety
    /// `block` came from `into_raw` of a `PoolBox<T>` made with `tag`, and is taken back once.
    pub unsafe fn from_raw(block: NonNull<T>, tag: u32) -> Self {
        Self { block, tag }
    }
}

impl<T> Deref for PoolBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: written in `new`, alive until `drop`.
        unsafe { self.block.as_ref() }
    }
}

impl<T> DerefMut for PoolBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above; `&mut self` is the only access.
        unsafe { self.block.as_mut() }
    }
}

impl<T> Drop for PoolBox<T> {
    fn drop(&mut self) {
        // SAFETY: the `T` written in `new`, dropped once.
        unsafe { self.block.as_ptr().drop_in_place() };
        // SAFETY: allocated in `new` with this tag; nothing refers to it any more.
        unsafe { sys::ExFreePoolWithTag(self.block.as_ptr().cast::<c_void>(), self.tag) };
    }
}

/// A `T` in pool with a count of its references: cloning adds one, dropping takes one away, the
/// last frees it. What the kernel calls back with a pointer to it (a work item, a request's
/// completion) holds a reference of its own until then, so it is alive whoever lets go first.
pub struct Shared<T> {
    inner: NonNull<SharedInner<T>>,
}

struct SharedInner<T> {
    count: AtomicUsize,
    tag: u32,
    value: T,
}

// SAFETY: shares a `T` across threads like `Arc<T>`: needs `T: Send + Sync`.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// `value` in a new block tagged `tag`, with one reference (the returned one).
    pub fn new(tag: u32, value: T) -> Option<Self> {
        let boxed = PoolBox::new(tag, SharedInner { count: AtomicUsize::new(1), tag, value })?;
        let inner = boxed.block;
        core::mem::forget(boxed); // freed by the last `Shared`, with the same tag
        Some(Self { inner })
    }

    /// Gives up this reference as a pointer for the kernel to hand back ([`Shared::from_raw`]).
    pub(in crate::kernel) fn into_raw(self) -> *const T {
        let value = &raw const self.inner().value;
        core::mem::forget(self);
        value
    }

    /// The reference [`Shared::into_raw`] gave up.
    ///
    /// # Safety
    /// `value` came from `into_raw` of a `Shared<T>` and is turned back once.
    pub(in crate::kernel) unsafe fn from_raw(value: *const T) -> Self {
        let offset = core::mem::offset_of!(SharedInner<T>, value);
        let inner = value.cast::<u8>().wrapping_sub(offset).cast::<SharedInner<T>>().cast_mut();
        // SAFETY: `value` points into a live `SharedInner` (the caller's promise): not null.
        Self { inner: unsafe { NonNull::new_unchecked(inner) } }
    }

    fn inner(&self) -> &SharedInner<T> {
        // SAFETY: alive while any reference is (this one).
        unsafe { self.inner.as_ref() }
    }

    /// Whether two references are to the same object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.inner == b.inner
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        self.inner().count.fetch_add(1, Ordering::Relaxed);
        Self { inner: self.inner }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if self.inner().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        core::sync::atomic::fence(Ordering::Acquire);
        // Rebuild the box `Shared::new` gave up: dropping it drops the value and frees the block.
        let tag = self.inner().tag;
        drop(PoolBox { block: self.inner, tag });
    }
}
