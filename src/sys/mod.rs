//! Where the NT and KS functions come from — the only module of the driver that knows.
//!
//! Every routine the driver imports is declared once, in [`imports`], with its C signature. That
//! list becomes:
//! - on the Windows target (the WDK build and the Linux cross build): `raw-dylib` imports of
//!   `ntoskrnl.exe` and `ks.sys` (`kernel`);
//! - on the host build: re-exports of `kshost`'s implementations, each checked at compile time to
//!   have exactly the declared signature (`host`).
//!
//! The rest of the driver calls `sys::IoCreateDevice(...)` and cannot tell which build it is in.

#![allow(non_snake_case)] // the imported routines keep their C names

#[cfg(any(not(windows), feature = "emulated"))]
mod host;
#[cfg(all(windows, not(feature = "emulated")))]
mod kernel;

/// Declares the imported routines for whichever backend is compiled in.
macro_rules! imports {
    ($( $module:literal { $( fn $name:ident( $($arg:ident: $ty:ty),* $(,)? ) $(-> $ret:ty)?; )* } )*) => {
        $(
            #[cfg(all(windows, not(feature = "emulated")))]
            #[link(name = $module, kind = "raw-dylib", modifiers = "+verbatim")]
            unsafe extern "system" {
                $( #[doc = concat!("`", stringify!($name), "`, imported from ", $module, ".")]
                   pub fn $name($($arg: $ty),*) $(-> $ret)?; )*
            }
        )*

        $( $(
            #[cfg(any(not(windows), feature = "emulated"))]
            #[doc = concat!("`", stringify!($name), "`, emulated by kshost.")]
            pub use crate::sys::host::exports::$name;
            #[cfg(any(not(windows), feature = "emulated"))]
            const _: unsafe extern "system" fn($($ty),*) $(-> $ret)? = crate::sys::host::exports::$name;
        )* )*

        /// The import list as `(module, routine)` pairs, so tests and tools see what the image needs.
        pub const IMPORTS: &[(&str, &str)] = &[ $( $( ($module, stringify!($name)), )* )* ];
    };
}

pub mod imports;
pub use imports::*;

#[cfg(any(not(windows), feature = "emulated"))]
pub use host::{ExAllocatePool2, copy_memory, debug_print, file_object_type, move_memory, resolve_imports};
#[cfg(all(windows, not(feature = "emulated")))]
pub use kernel::{ExAllocatePool2, copy_memory, debug_print, file_object_type, move_memory, resolve_imports};
