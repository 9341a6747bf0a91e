//! Kernel events (`KeInitializeEvent`, `KeSetEvent`, `KeClearEvent`, `KeWaitForSingleObject`),
//! kept in the `KEVENT`'s own `SignalState`, which kshost accesses atomically. A waiter blocks on a
//! condition variable (one of a fixed table, chosen by the event's address) and `KeSetEvent` wakes
//! the waiters of that slot — a real wake-up, as the dispatcher readies a waiting thread, not a
//! poll. A wait gives up after the machine's hang timeout, reporting `WAIT_NEVER_SATISFIED`.
//! Synchronization events reset as a wait is satisfied (one waiter wins the exchange; the others
//! wait again).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering, fence};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use std::mem::offset_of;

use ksabi::{
    APC_LEVEL, DISPATCHER_HEADER, KEVENT, NTSTATUS, STATUS_SUCCESS, STATUS_TIMEOUT, SynchronizationEvent,
};

use crate::machine::{current, violation};
use crate::verifier::Rule;

fn field(event: *mut KEVENT, offset: usize) -> *mut i32 {
    event.cast::<u8>().wrapping_add(offset).cast()
}

/// The event's `SignalState`, as the atomic every kshost access to it goes through.
///
/// # Safety
/// `event` points to a `KEVENT` that stays allocated for `'a` (the driver's, in pool or its
/// extension, or on the stack of a thread that waits on it), and every access to its
/// `SignalState` during `'a` is atomic (the driver uses only the `Ke*Event` routines on it).
unsafe fn state<'a>(event: *mut KEVENT) -> &'a AtomicI32 {
    let slot = field(event, offset_of!(KEVENT, Header) + offset_of!(DISPATCHER_HEADER, SignalState));
    // SAFETY: the caller's contract: a live KEVENT whose SignalState (an aligned i32) is accessed
    // only atomically meanwhile.
    unsafe { AtomicI32::from_ptr(slot) }
}

/// The event's type, as `KeInitializeEvent` recorded it.
///
/// # Safety
/// `event` points to a live `KEVENT` initialised by [`initialize`] (its type is then written no
/// more).
unsafe fn kind(event: *mut KEVENT) -> i32 {
    let lock = field(event, offset_of!(KEVENT, Header) + offset_of!(DISPATCHER_HEADER, Lock));
    // SAFETY: the caller's contract: written by KeInitializeEvent before the event is shared;
    // read-only afterwards.
    let raw = unsafe { lock.read() };
    raw & 0xFF
}

/// `KeInitializeEvent`.
///
/// # Safety
/// `event` points to a writable `KEVENT` that no other thread uses during the call (not yet
/// shared, as `KeInitializeEvent` requires).
pub(crate) unsafe fn initialize(event: *mut KEVENT, event_type: i32, signalled: bool) {
    let lock = field(event, offset_of!(KEVENT, Header) + offset_of!(DISPATCHER_HEADER, Lock));
    // SAFETY: the caller's contract: the caller's event, not yet shared.
    unsafe { lock.write(event_type & 0xFF) };
    // SAFETY: the caller's contract: a live event no one else uses yet.
    unsafe { state(event) }.store(i32::from(signalled), Ordering::Release);
}

/// Where waiters on an event sleep: a slot of a fixed table, by the event's address (events that
/// share a slot only cost each other a spurious wake-up).
struct Parking {
    lock: Mutex<()>,
    cv: Condvar,
    /// Threads between registering under `lock` and leaving the wait.
    waiters: AtomicUsize,
}

const PARKING_SLOTS: usize = 64;

static PARKING: [Parking; PARKING_SLOTS] =
    [const { Parking { lock: Mutex::new(()), cv: Condvar::new(), waiters: AtomicUsize::new(0) } };
        PARKING_SLOTS];

fn parking(event: *mut KEVENT) -> &'static Parking {
    &PARKING[(event as usize >> 4) % PARKING_SLOTS]
}

/// `KeSetEvent`: returns the previous state, and wakes the event's waiters.
///
/// # Safety
/// `event` points to a `KEVENT` initialised by [`initialize`] that stays allocated for the call,
/// and whose `SignalState` is accessed only atomically (as for [`state`]).
pub(crate) unsafe fn set(event: *mut KEVENT) -> i32 {
    // SAFETY: the caller's contract is `state`'s.
    let previous = unsafe { state(event) }.swap(1, Ordering::SeqCst);
    let p = parking(event);
    // Pairs with the waiter's fence: either it sees the state set, or this sees it registered —
    // and then the waiter is inside `cv.wait` (or before its check) once `lock` is ours.
    fence(Ordering::SeqCst);
    if p.waiters.load(Ordering::SeqCst) > 0 {
        let _guard = p.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        p.cv.notify_all();
    }
    previous
}

/// `KeClearEvent`.
///
/// # Safety
/// As for [`set`].
pub(crate) unsafe fn clear(event: *mut KEVENT) {
    // SAFETY: the caller's contract is `state`'s.
    unsafe { state(event) }.store(0, Ordering::Release);
}

/// `KeWaitForSingleObject` on an event, with an optional relative timeout (100 ns units, negative).
///
/// # Safety
/// As for [`set`], for the whole wait.
pub(crate) unsafe fn wait(event: *mut KEVENT, timeout: Option<i64>) -> NTSTATUS {
    let m = current();
    let zero_wait = timeout == Some(0);
    if !zero_wait && !crate::irql::require_at_most(APC_LEVEL, "KeWaitForSingleObject") {
        return STATUS_TIMEOUT;
    }
    let limit = match timeout {
        Some(t) => Duration::from_nanos(t.unsigned_abs().saturating_mul(100)),
        None => m.settings.hang_timeout,
    };
    let start = Instant::now();
    // SAFETY: the caller's contract is `state`'s, for the whole wait.
    let s = unsafe { state(event) };
    let satisfied = || {
        // SAFETY: the caller's contract: an initialised event, alive for the whole wait.
        if unsafe { kind(event) } == SynchronizationEvent {
            s.compare_exchange(1, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        } else {
            s.load(Ordering::SeqCst) != 0
        }
    };
    if satisfied() {
        return STATUS_SUCCESS;
    }
    let p = parking(event);
    // A worker thread that waits lets another item of its queue run meanwhile.
    let status = crate::worker::waiting(|| {
        let mut guard = p.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        p.waiters.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let status = loop {
            if satisfied() {
                break STATUS_SUCCESS;
            }
            let elapsed = start.elapsed();
            if elapsed >= limit {
                break STATUS_TIMEOUT;
            }
            guard =
                p.cv.wait_timeout(guard, limit.saturating_sub(elapsed))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
        };
        p.waiters.fetch_sub(1, Ordering::SeqCst);
        status
    });
    if status == STATUS_TIMEOUT && timeout.is_none() {
        violation(
            Rule::WaitNeverSatisfied,
            format!("KeWaitForSingleObject({event:p}) still waiting after {limit:?}"),
        );
    }
    status
}
