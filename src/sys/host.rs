//! The host build: the driver runs in a user-mode process under kshost, which implements every
//! routine of [`super::imports`] with the same signature (checked at compile time by `imports!`).

use core::ffi::CStr;

/// Where the emulated routines come from.
pub use kshost::exports;

/// Debug output: recorded by the machine the calling thread runs in (and echoed with
/// `KSHOST_DEBUG=1`).
pub fn debug_print(level: u32, message: &CStr) {
    kshost::exports::dbg_print(level, message);
}

/// `*IoFileObjectType`, for `ObReferenceObjectByHandle`.
#[must_use]
pub fn file_object_type() -> *mut core::ffi::c_void {
    kshost::exports::file_object_type()
}

/// `ExAllocatePool2`: kshost's pool (the kernel target looks it up at `DriverEntry` instead).
pub use kshost::exports::ExAllocatePool2;

/// Nothing to look up: kshost exports every routine.
pub fn resolve_imports() {}

/// Copies `n` bytes (`RtlCopyMemory`): through kshost, which counts them against the spin locks
/// held (the kernel build copies directly).
///
/// # Safety
/// As `memcpy`: `n` bytes valid at both, not overlapping.
pub unsafe fn copy_memory(destination: *mut u8, source: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { kshost::exports::copy_memory(destination, source, n) };
}

/// Moves `n` bytes (`RtlMoveMemory`: the ranges may overlap), counted by kshost as copies are.
///
/// # Safety
/// As `memmove`: `n` bytes valid at both.
pub unsafe fn move_memory(destination: *mut u8, source: *const u8, n: usize) {
    // SAFETY: the caller's contract.
    unsafe { kshost::exports::move_memory(destination, source, n) };
}
