//! # kshost — a user-mode Windows for a KS driver
//!
//! ksring cannot run on Windows here, so its host build runs the real driver code against kshost:
//! the ntoskrnl.exe and ks.sys routines the driver imports ([`exports`]), an I/O manager that
//! builds IRPs with stack locations and completes them the way Windows does, a pool and IRQL
//! verifier that fails the test on what Driver Verifier would catch ([`Rule`]), an installer that
//! reads the driver's INF ([`inf`]), and a Win32-shaped client API ([`Machine::create_file`],
//! [`Machine::ks_create_pin`], [`Machine::device_io_control`], [`Machine::cancel_io`],
//! [`Machine::close_handle`]).
//!
//! Fidelity is documented where it matters, routine by routine (`ks`, `iomgr`): *exact per the
//! docs*, *follows ReactOS*, or *a stated choice* where Windows' behaviour is unverified. Where
//! kshost is looser than Windows, tests pass that would fail on a real machine — so it errs on the
//! strict side: user buffers the driver touches without capture fault, lengths are checked,
//! statuses are the documented ones.
//!
//! ```no_run
//! # unsafe extern "system" fn driver_entry(_: *mut ksabi::DRIVER_OBJECT, _: *mut ksabi::UNICODE_STRING) -> i32 { 0 }
//! let machine = kshost::Machine::new();
//! machine.install(&std::fs::read_to_string("inf/ksring.inx").unwrap(), driver_entry).unwrap();
//! let path = machine.interfaces(&ksabi::GUID::from_u128(0)).first().map(|i| i.path.clone());
//! let report = machine.shutdown();
//! report.assert_clean();
//! ```

mod class_filter;
mod client;
mod event;
pub mod exports;
pub mod inf;
mod iomgr;
mod irql;
mod kernel_client;
mod kernel_request;
mod ks;
mod lockstats;
mod machine;
mod ob;
mod objects;
mod pool;
mod preempt;
mod process;
mod registry;
mod security;
mod special_pool;
pub mod status_map;
mod sync;
mod usermem;
mod verifier;
mod worker;
mod workitem;

pub use client::{Handle, Overlapped, UserBuffer};
pub use kernel_client::KernelReader;
pub use kernel_request::{KernelHeader, KernelRequestResult, PresetMdls};
pub use lockstats::HoldSummary;
pub use machine::{DriverEntry, InstallError, InterfaceInfo, Machine, Report, Settings};
pub use objects::IoStatus;
pub use preempt::Preemption;
pub use security::Caller;
pub use verifier::{Rule, Violation};

/// The current thread's IRQL (for tests of drivers' locking).
#[must_use]
pub fn current_irql() -> ksabi::KIRQL {
    irql::current()
}
