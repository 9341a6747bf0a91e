//! # ksring — a pure Kernel Streaming minidriver whose pins are the two ends of a lock-free ring
//!
//! One KS filter, "KsRing". Frames a client writes to the input pin as `KSSTREAM_HEADER`s come
//! out of the output pin in order, with their metadata, nothing lost (DESIGN.md §3).
//!
//! One source, three builds (DESIGN.md §2): the Windows/WDK build, a real `ksring.sys`
//! cross-built on Linux, and the host build that runs the same code under `kshost`. Only
//! [`sys`] knows which; nothing else in the driver has a `cfg`.
#![no_std]

pub mod sys;

pub mod device;
mod filter;
pub mod ids;
mod log;
mod nt;

pub use device::driver_entry;
