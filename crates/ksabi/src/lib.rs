//! # ksabi — the NT and Kernel Streaming ABI that ksring touches
//!
//! `#[repr(C)]` mirrors of the WDM and KS structures, the function-pointer types (`extern "system"`,
//! the WDK's ABI), constants, GUIDs, IOCTL codes and `NTSTATUS` values a pure-KS minidriver uses.
//! Names are the C names, so code reads like the WDK documentation.
//!
//! One type universe for every build: the Windows/WDK build, the cross-built `ksring.sys`, and the
//! host build under `kshost`. Layouts are x64 and are checked by this crate's tests against two
//! independent oracles: `windows-sys` (generated from Microsoft's metadata) and the mingw-w64
//! headers (compiled on the fly with `x86_64-w64-mingw32-gcc -S`); on a Windows build with the WDK
//! they are also asserted at compile time against `wdk-sys`.
#![no_std]
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]

mod basic;
mod flags;
pub mod guids;
mod ioctl;
mod ks;
mod nt;
pub mod status;

#[cfg(all(windows, not(ksring_cross), feature = "wdk-layout"))]
mod wdk_layout;

pub use basic::*;
pub use flags::*;
pub use guids::*;
pub use ioctl::*;
pub use ks::*;
pub use nt::*;
pub use status::*;
