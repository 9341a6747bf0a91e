//! The I/O manager: driver and device objects, the root bus the driver's device sits on, issuing
//! IRPs, `IofCallDriver`, `IofCompleteRequest` (the stack walk, completion routines, then the
//! I/O manager's own completion: copy-back, buffer and MDL release, signalling the issuer),
//! `IoCancelIrp`, file-object references and the close that follows the last one.
//!
//! One file per part: [`devices`] (driver and device objects, the root bus), [`requests`]
//! (issuing, calling and completing IRPs), [`cancel`] (`IoCancelIrp` and the cancel-routine
//! slot), [`files`] (file-object references, cleanup and close), [`driver_irps`] (the IRPs and
//! MDLs a driver allocates itself). This module re-exports what the rest of kshost uses.

use ksabi::UNICODE_STRING;

mod cancel;
mod devices;
mod driver_irps;
mod files;
mod requests;

pub(crate) use cancel::{
    call_cancel_routine, cancel_file_irps, cancel_irp, run_down_thread_io, swap_cancel_routine,
};
pub(crate) use devices::{
    allocate_driver_extension, attach_device, create_device, create_driver_object, create_root_pdo,
    delete_device, detach, driver_extension, related_device, top_of_stack,
};
pub(crate) use driver_irps::{
    allocate_irp, build_mdl_for_nonpaged_pool, free_irp, free_mdl, pages_spanned, reuse_irp, unlock_pages,
};
pub(crate) use files::{cleanup_file, close_file, release_file};
pub(crate) use requests::{
    IrpSpec, RefCount, Request, alloc_system_buffer, call_driver, complete_request, free_system_buffer,
    issue, location_index, send_pnp, wait_or_report,
};

/// A `UNICODE_STRING` with its own storage.
pub(crate) struct OwnedUnicode(pub UNICODE_STRING, #[allow(dead_code)] pub Vec<u16>);

pub(crate) fn unicode_owned(text: &str) -> OwnedUnicode {
    let mut chars: Vec<u16> = text.encode_utf16().collect();
    let bytes = u16::try_from(chars.len() * 2).unwrap_or(u16::MAX - 1);
    chars.push(0);
    let s = UNICODE_STRING { Length: bytes, MaximumLength: bytes + 2, Buffer: chars.as_mut_ptr() };
    OwnedUnicode(s, chars)
}

/// Runs driver code entered at `PASSIVE_LEVEL` and checks it comes back at `PASSIVE_LEVEL`.
pub(crate) fn call_guarded<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let entered = crate::irql::current();
    let r = f();
    crate::irql::check_restored(entered, what);
    r
}
