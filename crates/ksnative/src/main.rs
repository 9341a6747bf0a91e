//! `ksnative.exe`: see the library's documentation. With the `native` feature (the cross build for
//! `x86_64-pc-windows-msvc`, `scripts/reactos-lab.sh`) this is the NT native program; without it,
//! a stub that says how to build it, so ordinary host builds of the workspace stay std builds.

#![cfg_attr(feature = "native", no_std, no_main)]

#[cfg(feature = "native")]
extern crate alloc;

#[cfg(feature = "native")]
mod native;

#[cfg(not(feature = "native"))]
fn main() {
    println!(
        "ksnative is an NT native program (entry NtProcessStartup, ntdll only): scripts/reactos-lab.sh \
         cross-builds it with --features native and runs it in the ReactOS lab"
    );
}
