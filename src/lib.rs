//! # ksring — a pure Kernel Streaming minidriver whose pins are the two ends of a lock-free ring
//!
//! One KS filter, "KsRing". Frames a client writes to the input pin as `KSSTREAM_HEADER`s come
//! out of the output pin in order, with their metadata, nothing lost (DESIGN.md §3).
//!
//! One source, three builds (DESIGN.md §2): the Windows/WDK build, a real `ksring.sys`
//! cross-built on Linux, and the host build that runs the same code under `kshost`. Only
//! [`sys`] knows which; nothing else in the driver has a `cfg`.
//!
//! Modules, from the device down: [`device`] (what `DriverEntry` sets up, PnP, cleanup), `filter`
//! (instances, the state machine, the ring's ownership), `pin` (creation rules, dispatch),
//! `pin_id` (the two pin factories as a type), `props` (property sets), `stream` (the
//! read/write path), `source` (IRP-source pins), [`format`] (formats and their intersection,
//! pure), `descriptors` (the static KS tables), and `kernel` — the safe layer between that logic
//! and the NT/KS ABI (owned IRPs, typed `FsContext` objects, property and stream requests, queues,
//! pool, an IRP source's requests and work item, ring memory, the WDK's inline helpers): with
//! [`sys`] the only place with `unsafe`.
#![no_std]

pub mod sys;

mod descriptors;
pub mod device;
mod filter;
pub mod format;
pub mod ids;
mod kernel;
mod limits;
mod log;
mod pin;
mod pin_id;
mod props;
mod source;
mod stream;

pub use kernel::device::driver_entry;
pub use stream::{HOLD_BUDGET, RECORD_COST};
