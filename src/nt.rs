//! The WDK's inline IRP helpers (`IoGetCurrentIrpStackLocation`, `IoMarkIrpPending`,
//! `IoCompleteRequest`...) and small string helpers, which wdk-sys does not provide either.

use core::mem::offset_of;

use ksabi::{IO_STACK_LOCATION, IRP, IRP_TAIL_OVERLAY, UNICODE_STRING};

/// `&Irp->Tail.Overlay`, computed without reading the union (`Overlay` is its first member).
#[must_use]
pub fn tail_overlay(irp: *mut IRP) -> *mut IRP_TAIL_OVERLAY {
    irp.cast::<u8>().wrapping_add(offset_of!(IRP, Tail)).cast()
}

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller.
pub unsafe fn current_stack(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller owns a valid IRP; while a driver owns it, `Tail.Overlay` is the live member.
    unsafe { (*tail_overlay(irp)).CurrentStackLocation }
}

/// Encodes ASCII text as UTF-16 at compile time (for create-item names and reference strings).
///
/// # Panics
/// At compile time, if `N` is not the text's length or the text is not ASCII.
#[must_use]
pub const fn utf16<const N: usize>(text: &str) -> [u16; N] {
    let bytes = text.as_bytes();
    assert!(bytes.len() == N, "length mismatch");
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        assert!(bytes[i].is_ascii(), "not ASCII");
        out[i] = bytes[i] as u16;
        i += 1;
    }
    out
}

/// A `UNICODE_STRING` over static UTF-16 text (no NUL). KS only reads such names.
#[must_use]
#[allow(clippy::cast_possible_truncation)] // names here are a few dozen characters
pub const fn static_unicode(text: &'static [u16]) -> UNICODE_STRING {
    let bytes = (text.len() * 2) as u16;
    UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: text.as_ptr().cast_mut() }
}
