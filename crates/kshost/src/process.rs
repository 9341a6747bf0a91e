//! The emulated client process: which threads run in its context. A client call (`CreateFile`,
//! `DeviceIoControl`, `CloseHandle`...) runs the driver's dispatch routine on the calling thread,
//! in the context of the process that made the request — which is where `POOL_FLAG_USE_QUOTA`
//! charges. Worker threads (work items, deferred closes) and `DriverEntry` run in the System
//! process, which is never charged. `Machine::exit_process` starts a new process.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use crate::machine::MachineInner;

thread_local! {
    /// The process whose context this thread runs in, if a client one.
    static PROCESS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Marks the current thread as running in the client process's context until dropped.
pub(crate) struct ProcessThread(Option<u64>);

impl ProcessThread {
    pub(crate) fn enter(m: &MachineInner) -> Self {
        Self(PROCESS.with(|p| p.replace(Some(m.process_id.load(Ordering::SeqCst)))))
    }
}

impl Drop for ProcessThread {
    fn drop(&mut self) {
        PROCESS.with(|p| p.set(self.0));
    }
}

/// The client process the current thread runs in, or `None` for the System process.
pub(crate) fn current() -> Option<u64> {
    PROCESS.with(Cell::get)
}
