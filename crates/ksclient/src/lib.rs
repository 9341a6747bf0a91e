//! # ksclient — a KS client for ksring
//!
//! The code that talks to a KsRing filter from user mode, shared by the test suite and `ksctl`:
//!
//! - [`request`]: the bytes of property requests, `KSPIN_CONNECT` blobs, formats, ranges, lists
//!   and stream headers, built field by field (pure, safe) — the `no_std` crate `ksrequest`,
//!   which the native test client shares;
//! - [`backend`]: the operating system as a trait — [`emulated`] (kshost running the real driver)
//!   or `win32` (the installed driver, through `windows-sys`);
//! - [`filter`]: typed filters and pins — every property, pin creation, states, reset;
//! - [`stream`]: a verified stream — patterned frames with metadata written from one thread and
//!   read back and checked on another, with requests in flight on both sides;
//! - [`graph`]: three filters chained by IRP-source pins (`PinToHandle`), streamed end to end;
//! - [`conformance`]: the scenario suite `ksctl conformance` runs on either backend, with the
//!   table of bad inputs and the status each gets.

pub mod backend;
pub mod conformance;
#[cfg(any(not(windows), feature = "emulated"))]
pub mod emulated;
pub mod filter;
pub mod graph;
pub mod io;
pub use ksrequest as request;
pub mod soak;
pub mod stream;
#[cfg(windows)]
pub mod win32;

pub use backend::{Backend, Fail, FilterPath, Handle, Io};
pub use filter::{Filter, Pin, Properties};
