//! A preemption point for tests: one driver thread stops right after it let go of its last spin
//! lock, until the test lets it go on. At `PASSIVE_LEVEL` (or `APC_LEVEL`) Windows may preempt a
//! thread at any instruction and run any other thread meanwhile — on this processor or another —
//! so whatever a test does while the thread is stopped there is an interleaving Windows can
//! produce (sources in `FIDELITY.md`). The point is armed once, for one of:
//! - a hold that copied at least a given number of bytes: the driver's budget-bounded pumps let
//!   go of a ring lock between two pieces of one request, and this stops a pump exactly there,
//!   with the request in progress — on any thread, or on a system worker thread only (an IRP
//!   source's work routine between two steps of its pass);
//! - the driver's next (or nth) call of a given kernel routine, before it runs (at
//!   `PASSIVE_LEVEL` only): e.g. a dispatch routine about to queue a request it has checked, or an
//!   IRP source's work routine about to send its next request; or right after it returned (a
//!   dispatch routine that has just queued a request; a driver's own cancel routine that has just
//!   let go of the cancel spin lock, `IoReleaseCancelSpinLock`, and not yet completed its IRP).
//!
//! A stopped thread can be let on to the next point in one step (`Preemption::then_before`,
//! `Preemption::then_after`): from an IRP source's send into the sink's dispatch routine.
//!
//! Unarmed, the check on each release is one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::lockstats::Copied;
use crate::machine::{Machine, MachineInner};
use crate::sync::Locked;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Off,
    /// The next release after a hold that copied at least this many bytes stops its thread — on
    /// any thread, or (`true`) only on a system worker thread running a work item.
    Armed(u64, bool),
    /// The driver's call of this routine (below `DISPATCH_LEVEL`) after this many more stops its
    /// thread.
    Before(&'static str, u32),
    /// The driver's next call of this routine stops its thread once the routine has returned.
    After(&'static str),
    /// A thread is stopped at the point.
    Paused,
    /// The test let it go on.
    Resumed,
}

/// One machine's preemption point.
pub(crate) struct PreemptPoint {
    armed: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
}

impl Default for PreemptPoint {
    fn default() -> Self {
        Self { armed: AtomicBool::new(false), state: Mutex::new(State::Off), changed: Condvar::new() }
    }
}

impl PreemptPoint {
    /// A thread let go of its last spin lock after a hold that copied `copied`, back below
    /// `DISPATCH_LEVEL`: if the point is armed for such a hold, the thread stops here until resumed.
    pub(crate) fn after_release(&self, copied: Copied) {
        if !self.armed.load(Ordering::Acquire) {
            return;
        }
        let state = self.state.locked();
        let State::Armed(min_bytes, worker_only) = *state else { return };
        if copied.bytes < min_bytes || (worker_only && !crate::worker::in_work_item()) {
            return;
        }
        self.pause(state);
    }

    /// The driver is about to run kernel routine `routine`: if the point is armed for it and the
    /// thread is below `DISPATCH_LEVEL`, the thread stops here until resumed.
    pub(crate) fn before(&self, routine: &'static str) {
        if !self.armed.load(Ordering::Acquire) || crate::irql::current() >= ksabi::DISPATCH_LEVEL {
            return;
        }
        let mut state = self.state.locked();
        match *state {
            State::Before(r, 0) if r == routine => self.pause(state),
            State::Before(r, more) if r == routine => *state = State::Before(r, more - 1),
            _ => {}
        }
    }

    /// The driver's call of kernel routine `routine` has returned: if the point is armed for
    /// that and the thread is below `DISPATCH_LEVEL`, the thread stops here until resumed.
    pub(crate) fn after(&self, routine: &'static str) {
        if !self.armed.load(Ordering::Acquire)
            || crate::irql::current() >= ksabi::DISPATCH_LEVEL
            || crate::lockstats::holds_any()
        {
            return;
        }
        let state = self.state.locked();
        if *state == State::After(routine) {
            self.pause(state);
        }
    }

    /// Stops this thread at the point until the test resumes it.
    fn pause(&self, mut state: std::sync::MutexGuard<'_, State>) {
        self.armed.store(false, Ordering::Release);
        *state = State::Paused;
        self.changed.notify_all();
        while *state == State::Paused {
            state = self.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        if *state == State::Resumed {
            *state = State::Off;
        } // else armed again for this thread's way on (`Preemption::then_before`)
    }

    fn arm(&self, state: State) {
        *self.state.locked() = state;
        self.armed.store(true, Ordering::Release);
    }

    fn wait_paused(&self, timeout: Duration) -> bool {
        let state = self.state.locked();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| *s != State::Paused)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *state == State::Paused
    }

    /// Lets a stopped thread go on with the point armed for `state`, in one step: the next stop
    /// is the same thread's (no other driver thread runs meanwhile in a test that waits). `false`
    /// if no thread was stopped.
    fn rearm_paused(&self, next: State) -> bool {
        let mut state = self.state.locked();
        if *state != State::Paused {
            return false;
        }
        *state = next;
        self.armed.store(true, Ordering::Release);
        self.changed.notify_all();
        true
    }

    /// Lets a stopped thread go on, or disarms the point if none stopped.
    fn release(&self) {
        self.armed.store(false, Ordering::Release);
        let mut state = self.state.locked();
        *state = if *state == State::Paused { State::Resumed } else { State::Off };
        self.changed.notify_all();
    }
}

/// An armed preemption point; dropping it lets a stopped thread go on.
pub struct Preemption {
    /// `None` once handed on to the next point ([`Preemption::then_before`]).
    machine: Option<Arc<MachineInner>>,
}

impl Machine {
    /// Arms the preemption point: the next driver thread that lets go of its last spin lock after
    /// a hold that copied at least `min_bytes` bytes stops right there, at `PASSIVE_LEVEL`, until
    /// the returned [`Preemption`] resumes it (or is dropped).
    #[must_use]
    pub fn preempt_after_hold(&self, min_bytes: u64) -> Preemption {
        self.inner.preempt.arm(State::Armed(min_bytes, false));
        Preemption { machine: Some(Arc::clone(&self.inner)) }
    }

    /// As [`Machine::preempt_after_hold`], on a system worker thread only: e.g. an IRP source's
    /// work routine that lets go of a ring lock, while the test's own threads take and let go of
    /// spin locks in the driver too.
    #[must_use]
    pub fn preempt_after_hold_in_work_item(&self, min_bytes: u64) -> Preemption {
        self.inner.preempt.arm(State::Armed(min_bytes, true));
        Preemption { machine: Some(Arc::clone(&self.inner)) }
    }

    /// Arms the preemption point for the driver's next call of kernel routine `routine`
    /// (`KsAddIrpToCancelableQueue`, `IofCallDriver`, `IoCancelIrp`, `IoReuseIrp` or
    /// `KeAcquireSpinLockRaiseToDpc`) below `DISPATCH_LEVEL`: the thread stops before the routine
    /// runs.
    #[must_use]
    pub fn preempt_before(&self, routine: &'static str) -> Preemption {
        self.preempt_before_nth(routine, 0)
    }

    /// Arms the preemption point for the return of the driver's next call of kernel routine
    /// `routine` (`KsAddIrpToCancelableQueue`, or `IoReleaseCancelSpinLock`: in a driver's own
    /// cancel routine, its IRP's cancel routine already taken, before it completes the IRP), on
    /// any driver thread that is then below `DISPATCH_LEVEL` and holds no spin lock: the thread
    /// stops once the routine has returned. (KS' own cancel routine, `KsCancelRoutine`, is
    /// kshost's and does not stop.)
    #[must_use]
    pub fn preempt_after(&self, routine: &'static str) -> Preemption {
        self.inner.preempt.arm(State::After(routine));
        Preemption { machine: Some(Arc::clone(&self.inner)) }
    }

    /// As [`Machine::preempt_before`], letting `skip` calls of `routine` through first: e.g. a
    /// work routine's second `IofCallDriver`, between two requests it sends in one pass.
    #[must_use]
    pub fn preempt_before_nth(&self, routine: &'static str, skip: u32) -> Preemption {
        self.inner.preempt.arm(State::Before(routine, skip));
        Preemption { machine: Some(Arc::clone(&self.inner)) }
    }
}

impl Preemption {
    /// Waits up to `timeout` for a thread to stop at the point; `true` once one has.
    #[must_use]
    pub fn wait_paused(&self, timeout: Duration) -> bool {
        self.machine.as_ref().is_some_and(|m| m.preempt.wait_paused(timeout))
    }

    /// Lets the stopped thread go on.
    pub fn resume(self) {
        drop(self);
    }

    /// Lets the stopped thread go on as far as its next call of kernel routine `routine` (at
    /// `PASSIVE_LEVEL`), where it stops again: e.g. from a work routine about to send a request
    /// into the dispatch routine that queues it. Any driver thread's call counts, so the test
    /// keeps others out of the driver meanwhile.
    ///
    /// # Panics
    /// If no thread is stopped at the point.
    #[must_use]
    pub fn then_before(self, routine: &'static str) -> Preemption {
        self.then(State::Before(routine, 0))
    }

    /// As [`Preemption::then_before`], stopping again once its next call of `routine` (one with a
    /// preemption point after it: `KsAddIrpToCancelableQueue`) has returned: e.g. a dispatch
    /// routine that has just queued a request and not yet looked again.
    ///
    /// # Panics
    /// If no thread is stopped at the point.
    #[must_use]
    pub fn then_after(self, routine: &'static str) -> Preemption {
        self.then(State::After(routine))
    }

    fn then(mut self, next: State) -> Preemption {
        // Taken out: dropping `self` then releases nothing, and the point stays armed.
        let machine = self.machine.take();
        let rearmed = machine.as_ref().is_some_and(|m| m.preempt.rearm_paused(next));
        assert!(rearmed, "no thread is stopped at the preemption point");
        Preemption { machine }
    }
}

impl Drop for Preemption {
    fn drop(&mut self) {
        if let Some(m) = &self.machine {
            m.preempt.release();
        }
    }
}
