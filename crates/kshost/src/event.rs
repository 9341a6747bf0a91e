//! Kernel events (`KeInitializeEvent`, `KeSetEvent`, `KeClearEvent`, `KeWaitForSingleObject`),
//! kept in the `KEVENT`'s own `SignalState`, which kshost accesses atomically. A wait polls it
//! (briefly sleeping) and gives up after the machine's hang timeout, reporting
//! `WAIT_NEVER_SATISFIED`. Synchronization events reset as a wait is satisfied.

use std::sync::atomic::{AtomicI32, Ordering};
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

fn state<'a>(event: *mut KEVENT) -> &'a AtomicI32 {
    let slot = field(event, offset_of!(KEVENT, Header) + offset_of!(DISPATCHER_HEADER, SignalState));
    // SAFETY: an initialised KEVENT of the driver; every kshost access to SignalState is atomic.
    unsafe { AtomicI32::from_ptr(slot) }
}

fn kind(event: *mut KEVENT) -> i32 {
    let lock = field(event, offset_of!(KEVENT, Header) + offset_of!(DISPATCHER_HEADER, Lock));
    // SAFETY: written by KeInitializeEvent before the event is shared; read-only afterwards.
    let raw = unsafe { lock.read() };
    raw & 0xFF
}

/// `KeInitializeEvent`.
pub(crate) fn initialize(event: *mut KEVENT, event_type: i32, signalled: bool) {
    let lock = field(event, offset_of!(KEVENT, Header) + offset_of!(DISPATCHER_HEADER, Lock));
    // SAFETY: the caller's event, not yet shared.
    unsafe { lock.write(event_type & 0xFF) };
    state(event).store(i32::from(signalled), Ordering::Release);
}

/// `KeSetEvent`: returns the previous state.
pub(crate) fn set(event: *mut KEVENT) -> i32 {
    state(event).swap(1, Ordering::AcqRel)
}

/// `KeClearEvent`.
pub(crate) fn clear(event: *mut KEVENT) {
    state(event).store(0, Ordering::Release);
}

/// `KeWaitForSingleObject` on an event, with an optional relative timeout (100 ns units, negative).
pub(crate) fn wait(event: *mut KEVENT, timeout: Option<i64>) -> NTSTATUS {
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
    let s = state(event);
    loop {
        let satisfied = if kind(event) == SynchronizationEvent {
            s.compare_exchange(1, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
        } else {
            s.load(Ordering::Acquire) != 0
        };
        if satisfied {
            return STATUS_SUCCESS;
        }
        if start.elapsed() >= limit {
            if timeout.is_none() {
                violation(
                    Rule::WaitNeverSatisfied,
                    format!("KeWaitForSingleObject({event:p}) still waiting after {limit:?}"),
                );
            }
            return STATUS_TIMEOUT;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}
