//! The KS cancel-safe queue of a pin's stream requests (`KsAddIrpToCancelableQueue` and
//! friends), with a count of the requests on it.

use core::cell::UnsafeCell;
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use ksabi::{KSLIST_ENTRY_LOCATION, KSPIN_LOCK, KsAcquireOnly, KsListEntryHead, KsListEntryTail, LIST_ENTRY};

use super::{Acquired, Probed, StreamIrp, cancel, completions};
use crate::kernel::nt::{self, OwnedIrp};
use crate::sys;

/// A pin's queue of pending stream requests, with its own spin lock and a count.
///
/// The count lets one side of the stream ask "is anyone waiting on the other side?" without
/// taking the other side's locks. It is raised before a request goes on the queue and lowered
/// after it comes off (finished or cancelled), so it never undercounts one that is on the queue.
/// Must be initialised in place ([`StreamQueue::init`]): the list head points at itself.
pub struct StreamQueue {
    head: UnsafeCell<LIST_ENTRY>,
    lock: UnsafeCell<KSPIN_LOCK>,
    count: AtomicU32,
    /// Pairs the queue with its [`PumpKey`].
    id: usize,
}

/// Tells queues (and their keys) apart.
static NEXT_QUEUE: AtomicUsize = AtomicUsize::new(1);

// SAFETY: the list and the lock word are only touched by ks.sys' queue routines, which take the lock.
unsafe impl Sync for StreamQueue {}
// SAFETY: see `Sync`; an initialised queue is never moved (it lives in pool memory).
unsafe impl Send for StreamQueue {}

/// The right to take requests off a queue: one per queue, kept beside the state its pumps guard
/// (inside the spin lock they take), so only a pump holding that lock can acquire or give back a
/// request. That is what keeps two pumps from holding one request at once, and a pump's release
/// from racing another's acquire of the same request.
pub struct PumpKey {
    id: usize,
}

impl PumpKey {
    /// Whether it is the key of queue `id`.
    pub(super) fn is(&self, id: usize) -> bool {
        self.id == id
    }
}

impl StreamQueue {
    /// An empty queue, to be initialised in place before use, and the key of its pumps.
    pub fn new() -> (Self, PumpKey) {
        let id = NEXT_QUEUE.fetch_add(1, Ordering::Relaxed);
        let queue = Self {
            head: UnsafeCell::new(LIST_ENTRY { Flink: null_mut(), Blink: null_mut() }),
            lock: UnsafeCell::new(0),
            count: AtomicU32::new(0),
            id,
        };
        (queue, PumpKey { id })
    }

    /// `InitializeListHead` at the queue's final address.
    ///
    /// # Safety
    /// `self` must not move afterwards, and nothing else may use the queue yet.
    pub unsafe fn init(&self) {
        // SAFETY: the list head, at its final address, not yet shared.
        unsafe { nt::init_list_head(self.head.get()) };
    }

    /// Requests on the queue (including ones a pump holds acquired).
    pub fn len(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }

    /// Marks the request pending (its `Information` 0: bytes accepted so far) and puts it at the
    /// tail, cancelable. The dispatch routine then returns `STATUS_PENDING`.
    pub fn push(&self, irp: StreamIrp) {
        self.insert(irp, KsListEntryTail);
    }

    /// Puts a request back at the head, cancelable: one a source had lent ([`super::LentRead`]),
    /// older than every request still queued. A cancel that came while it was lent completes it
    /// right away (KS runs the cancel routine of a request queued with `Cancel` set).
    pub fn push_front(&self, irp: StreamIrp) {
        self.insert(irp, KsListEntryHead);
    }

    fn insert(&self, irp: StreamIrp, location: KSLIST_ENTRY_LOCATION) {
        let mut irp = irp.into_owned();
        irp.io_status_mut().Information = 0;
        irp.mark_pending();
        completions::clear(&irp);
        let raw = irp.into_non_null().as_ptr();
        self.count.fetch_add(1, Ordering::SeqCst);
        // SAFETY: an initialised queue and its lock; the request is ours and pending; `cancel`
        // handles stream requests. From here on it is the queue's.
        unsafe {
            sys::KsAddIrpToCancelableQueue(self.head.get(), self.lock.get(), raw, location, Some(cancel));
        };
    }

    /// Acquires the request at the head without unlinking it: its cancel routine is cleared, so it
    /// stays the caller's until [`Acquired::release`] or [`Acquired::finish`].
    pub fn acquire_first(&self, key: &mut PumpKey) -> Option<Acquired> {
        if !key.is(self.id) {
            return None; // another queue's key: its holder's lock does not guard this queue
        }
        // SAFETY: an initialised queue and its lock.
        let irp = unsafe {
            sys::KsRemoveIrpFromCancelableQueue(
                self.head.get(),
                self.lock.get(),
                KsListEntryHead,
                KsAcquireOnly,
            )
        };
        let raw = NonNull::new(irp)?;
        // SAFETY: KS hands out a request of this queue acquired: the caller's until released or
        // finished (its cancel routine is cleared).
        Some(Acquired { raw: Probed(unsafe { OwnedIrp::new(raw) }), queue: self.id })
    }

    /// Unlinks an acquired request: the caller owns it outright.
    pub(super) fn remove(&self, irp: &OwnedIrp) {
        // SAFETY: an acquired request of this queue.
        unsafe { sys::KsRemoveSpecificIrpFromCancelableQueue(irp.as_ptr()) };
        self.count.fetch_sub(1, Ordering::SeqCst);
    }

    /// Called for a request the cancel routine took off the queue.
    pub fn cancelled(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }

    /// `KsCancelIo`: cancels every request on the queue (acquired ones when they are given back).
    pub fn cancel_all(&self) {
        // SAFETY: an initialised queue and its lock.
        unsafe { sys::KsCancelIo(self.head.get(), self.lock.get()) };
    }
}

#[cfg(test)]
mod tests {
    use super::StreamQueue;

    /// A key opens only its own queue: with another queue's key nothing is acquired (and KS is
    /// not even called — the key stands for the lock of the pumps of its own queue).
    #[test]
    fn another_queues_key_acquires_nothing() {
        let (writes, _write_key) = StreamQueue::new();
        let (_reads, mut read_key) = StreamQueue::new();
        assert!(writes.acquire_first(&mut read_key).is_none());
    }
}
