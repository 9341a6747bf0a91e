//! IRQL per thread, spin locks, and the cancel spin lock.
//!
//! Each OS thread has its own IRQL (a kernel thread's IRQL is per processor while it runs there;
//! per thread is the user-mode equivalent). Spin locks really spin on the `KSPIN_LOCK` word, and
//! record the owning thread so that releases by another thread are caught.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use ksabi::{DISPATCH_LEVEL, KIRQL, KSPIN_LOCK, PASSIVE_LEVEL};

use crate::verifier::Rule;

thread_local! {
    static IRQL: Cell<KIRQL> = const { Cell::new(PASSIVE_LEVEL) };
    static THREAD_TAG: usize = next_thread_tag();
}

fn next_thread_tag() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    // Odd and non-zero, so a held lock word is never 0.
    NEXT.fetch_add(2, Ordering::Relaxed)
}

/// The current thread's IRQL.
#[must_use]
pub fn current() -> KIRQL {
    IRQL.with(Cell::get)
}

pub(crate) fn set(irql: KIRQL) {
    IRQL.with(|c| c.set(irql));
}

/// Runs `f` at `APC_LEVEL` (back at the IRQL it found after): the I/O manager cancels a thread's
/// requests so (WRK `IoCancelThreadIo` and `NtCancelIoFile` raise to `APC_LEVEL` around their
/// `IoCancelIrp` calls), so a cancel routine finds `CancelIrql == APC_LEVEL`.
pub(crate) fn at_apc_level<T>(f: impl FnOnce() -> T) -> T {
    let old = current();
    set(old.max(ksabi::APC_LEVEL));
    let out = f();
    set(old);
    out
}

/// A non-zero number naming the current thread in lock words.
pub(crate) fn thread_tag() -> usize {
    THREAD_TAG.with(|t| *t)
}

/// Records [`Rule::IrqlTooHigh`] if the current IRQL exceeds `max` for `routine`. Returns whether
/// the call may proceed.
pub(crate) fn require_at_most(max: KIRQL, routine: &str) -> bool {
    let now = current();
    if now > max {
        crate::machine::violation(
            Rule::IrqlTooHigh,
            format!("{routine} called at IRQL {now}, allowed at most {max}"),
        );
        false
    } else {
        true
    }
}

/// Views a `KSPIN_LOCK` as the atomic word it is.
///
/// # Safety
/// `lock` points to a live, aligned `KSPIN_LOCK`.
unsafe fn word<'a>(lock: *mut KSPIN_LOCK) -> &'a AtomicUsize {
    // SAFETY: KSPIN_LOCK is a usize; AtomicUsize has the same size and alignment.
    unsafe { AtomicUsize::from_ptr(lock) }
}

/// Acquires `lock`, raising to `DISPATCH_LEVEL`; returns the previous IRQL.
///
/// # Safety
/// `lock` points to a live `KSPIN_LOCK`.
pub(crate) unsafe fn acquire(lock: *mut KSPIN_LOCK, routine: &str) -> KIRQL {
    require_at_most(DISPATCH_LEVEL, routine);
    let old = current();
    set(DISPATCH_LEVEL);
    let me = thread_tag();
    // SAFETY: the caller passes a live lock.
    let word = unsafe { word(lock) };
    if word.load(Ordering::Relaxed) == me {
        // Spinning would hang the test for ever, as the processor would hang: stop, as Driver
        // Verifier's deadlock detection stops the machine.
        let v = crate::verifier::Violation {
            rule: Rule::SpinLockAlreadyOwned,
            detail: format!(
                "{routine}: lock {lock:p} acquired by the thread that already holds it — a deadlock on \
                 Windows (Driver Verifier deadlock detection: bug check 0xC4)"
            ),
        };
        eprintln!("\n{v}\n{}", std::backtrace::Backtrace::force_capture());
        std::process::abort();
    }
    let mut spins = 0u32;
    while word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
        spins += 1;
        if spins.is_multiple_of(64) {
            // A user-mode stand-in for another processor: the holder may be descheduled.
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    crate::lockstats::acquired(lock as usize);
    old
}

/// Releases `lock` and returns to `new_irql`.
///
/// # Safety
/// `lock` points to a live `KSPIN_LOCK`.
pub(crate) unsafe fn release(lock: *mut KSPIN_LOCK, new_irql: KIRQL, routine: &str) {
    let now = current();
    if now != DISPATCH_LEVEL || new_irql > DISPATCH_LEVEL {
        crate::machine::violation(
            Rule::SpinLockIrqlMismatch,
            format!("{routine}: lock {lock:p} released at IRQL {now} back to {new_irql}"),
        );
    }
    // SAFETY: the caller passes a live lock.
    let word = unsafe { word(lock) };
    let me = thread_tag();
    let held = word.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed).is_ok();
    // Recorded once the lock is free: recording inside the hold lengthened every hold by kshost's
    // own bookkeeping, and made other processors spin for it.
    let copied = crate::lockstats::released(lock as usize);
    if !held {
        crate::machine::violation(
            Rule::SpinLockNotHeld,
            format!("{routine}: lock {lock:p} is not held by this thread"),
        );
    }
    set(new_irql.min(DISPATCH_LEVEL));
    // Back below DISPATCH_LEVEL with no lock held, the thread may be preempted here.
    if let Some(copied) = copied
        && new_irql < DISPATCH_LEVEL
        && !crate::lockstats::holds_any()
    {
        crate::machine::with_current(|m| m.preempt.after_release(copied));
    }
}

/// The machine-wide cancel spin lock.
pub(crate) struct CancelLock {
    word: AtomicUsize,
}

impl CancelLock {
    pub(crate) const fn new() -> Self {
        Self { word: AtomicUsize::new(0) }
    }

    pub(crate) fn acquire(&self) -> KIRQL {
        require_at_most(DISPATCH_LEVEL, "IoAcquireCancelSpinLock");
        let old = current();
        set(DISPATCH_LEVEL);
        let me = thread_tag();
        let mut spins = 0u32;
        while self.word.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        crate::lockstats::acquired(std::ptr::from_ref(self) as usize);
        old
    }

    pub(crate) fn release(&self, irql: KIRQL) {
        let held = self.word.compare_exchange(thread_tag(), 0, Ordering::Release, Ordering::Relaxed).is_ok();
        let _ = crate::lockstats::released(std::ptr::from_ref(self) as usize);
        if !held {
            crate::machine::violation(
                Rule::CancelSpinLockNotHeld,
                "IoReleaseCancelSpinLock by a thread that does not hold it".into(),
            );
            return;
        }
        if current() != DISPATCH_LEVEL {
            crate::machine::violation(
                Rule::SpinLockIrqlMismatch,
                format!("IoReleaseCancelSpinLock at IRQL {} (expected {DISPATCH_LEVEL})", current()),
            );
        }
        set(irql.min(DISPATCH_LEVEL));
    }

    pub(crate) fn held_by_me(&self) -> bool {
        self.word.load(Ordering::Relaxed) == thread_tag()
    }
}

/// Runs driver code entered at the current IRQL and checks it returns at the same IRQL.
pub(crate) fn check_restored(entered: KIRQL, what: &str) {
    let now = current();
    if now != entered {
        crate::machine::violation(
            Rule::IrqlNotRestored,
            format!("{what} returned at IRQL {now}, entered at {entered}"),
        );
        set(entered);
    }
}
