//! The WDK's inline IRP and MDL helpers (`IoGetCurrentIrpStackLocation`, `IoMarkIrpPending`,
//! `IoCompleteRequest`, `MmGetSystemAddressForMdlSafe`, `InitializeListHead`...), which are
//! macros or inline functions in C and not provided by any crate, and small string helpers.

use core::mem::offset_of;
use core::ptr::null_mut;

use ksabi::{
    FILE_OBJECT, IO_NO_INCREMENT, IO_PARAMETERS_DEVICE_IO_CONTROL, IO_STACK_LOCATION, IRP, IRP_TAIL_OVERLAY,
    LIST_ENTRY, MDL, MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED, MDL_SOURCE_IS_NONPAGED_POOL, NTSTATUS,
    PIO_COMPLETION_ROUTINE, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR, SL_INVOKE_ON_SUCCESS,
    SL_PENDING_RETURNED, UNICODE_STRING,
};

use crate::sys;

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

/// The file object of the IRP's current stack location.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller.
pub unsafe fn file_object(irp: *mut IRP) -> *mut FILE_OBJECT {
    // SAFETY: the caller owns a valid IRP with a current stack location.
    let stack = unsafe { current_stack(irp) };
    // SAFETY: as above.
    unsafe { (*stack).FileObject }
}

/// The device-control parameters of the current stack location.
///
/// # Safety
/// `irp` must be a valid `IRP_MJ_DEVICE_CONTROL` IRP owned by the caller.
pub unsafe fn ioctl_parameters(irp: *mut IRP) -> IO_PARAMETERS_DEVICE_IO_CONTROL {
    // SAFETY: the caller owns a valid IRP with a current stack location.
    let stack = unsafe { current_stack(irp) };
    // SAFETY: the current stack location of the caller's IRP.
    let parameters = unsafe { &(*stack).Parameters };
    // SAFETY: for a device-control IRP, `DeviceIoControl` is the union member in use.
    unsafe { parameters.DeviceIoControl }
}

/// `Irp->IoStatus.Information`.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller.
pub unsafe fn information(irp: *mut IRP) -> usize {
    // SAFETY: the caller's IRP.
    unsafe { (*irp).IoStatus.Information }
}

/// `Irp->AssociatedIrp.SystemBuffer`.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller, whose `AssociatedIrp` holds a system buffer.
pub unsafe fn system_buffer(irp: *mut IRP) -> *mut u8 {
    // SAFETY: the caller's IRP.
    let associated = unsafe { &(*irp).AssociatedIrp };
    // SAFETY: the caller says the system-buffer member is the one in use.
    unsafe { associated.SystemBuffer }.cast()
}

/// Sets `FsContext` of the IRP's file object (where KS and the driver find the object).
///
/// # Safety
/// `irp` must be a create or close IRP owned by the caller, for a file object of this driver.
pub unsafe fn set_fs_context(irp: *mut IRP, context: *mut core::ffi::c_void) {
    // SAFETY: the caller's IRP.
    let file = unsafe { file_object(irp) };
    // SAFETY: the driver owns FsContext of its file objects.
    unsafe { (*file).FsContext = context };
}

/// The parent of the IRP's file object (a pin's filter).
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller, with a file object.
pub unsafe fn related_file_object(irp: *mut IRP) -> *mut FILE_OBJECT {
    // SAFETY: the caller's IRP.
    let file = unsafe { file_object(irp) };
    // SAFETY: a valid file object.
    unsafe { (*file).RelatedFileObject }
}

/// The length in bytes of a create's parameter as KS computes it (`KsiCopyCreateParameter`): the
/// file name, less an optional leading `\`, less the create item's name of `class_units`
/// characters and the `\` after it. (0 when the name is shorter.)
///
/// # Safety
/// `irp` must be a valid `IRP_MJ_CREATE` IRP owned by the caller, with a file object.
pub unsafe fn create_parameter_len(irp: *mut IRP, class_units: usize) -> usize {
    // SAFETY: the caller's create IRP.
    let file = unsafe { file_object(irp) };
    // SAFETY: a valid file object; its name is a counted string of `Length` bytes.
    let name = unsafe { &(*file).FileName };
    let mut len = usize::from(name.Length);
    if len >= 2 && !name.Buffer.is_null() {
        // SAFETY: at least one character is there.
        if unsafe { *name.Buffer } == u16::from(b'\\') {
            len -= 2;
        }
    }
    len.saturating_sub(class_units * 2 + 2)
}

/// `IoMarkIrpPending`: the driver will return `STATUS_PENDING` and complete the IRP later.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller.
pub unsafe fn mark_pending(irp: *mut IRP) {
    // SAFETY: the caller owns a valid IRP with a current stack location.
    let stack = unsafe { current_stack(irp) };
    // SAFETY: as above; the driver owns its stack location's Control byte.
    unsafe { (*stack).Control |= SL_PENDING_RETURNED };
}

/// `IoCompleteRequest` with `status` and `information`; returns `status` for a dispatch routine.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller, which gives it up.
pub unsafe fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    // SAFETY: the caller owns the IRP until the completion below.
    unsafe {
        (*irp).IoStatus.Status = status;
    }
    // SAFETY: as above.
    unsafe {
        (*irp).IoStatus.Information = information;
    }
    // SAFETY: the IRP is ours to complete, exactly once.
    unsafe { sys::IofCompleteRequest(irp, IO_NO_INCREMENT) };
    status
}

/// `IoGetNextIrpStackLocation`: the location the driver below will see.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller, with a location below the current one.
pub unsafe fn next_stack(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller's IRP has a current (or past-the-end) location and one below it.
    unsafe { current_stack(irp) }.wrapping_sub(1)
}

/// `IoCopyCurrentIrpStackLocationToNext`: the next location gets the current one's request,
/// without its completion routine.
///
/// # Safety
/// As [`next_stack`].
pub unsafe fn copy_current_to_next(irp: *mut IRP) {
    // SAFETY: the caller's IRP.
    let current = unsafe { current_stack(irp) };
    // SAFETY: as above.
    let next = unsafe { next_stack(irp) };
    // SAFETY: two distinct locations of the caller's IRP; the copy stops before the completion
    // fields, as the WDK macro's does.
    unsafe {
        core::ptr::copy_nonoverlapping(
            current.cast::<u8>(),
            next.cast::<u8>(),
            offset_of!(IO_STACK_LOCATION, CompletionRoutine),
        );
    };
    // SAFETY: as above.
    unsafe { (*next).Control = 0 };
}

/// `IoSetCompletionRoutine(irp, routine, context, TRUE, TRUE, TRUE)`: call `routine` however the
/// request ends.
///
/// # Safety
/// As [`next_stack`].
pub unsafe fn set_completion_routine(
    irp: *mut IRP,
    routine: PIO_COMPLETION_ROUTINE,
    context: *mut core::ffi::c_void,
) {
    // SAFETY: the caller's IRP.
    let next = unsafe { next_stack(irp) };
    // SAFETY: a location of the caller's IRP, which it owns.
    let next = unsafe { &mut *next };
    next.CompletionRoutine = routine;
    next.Context = context;
    next.Control = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
}

/// The system-space address ks.sys mapped an MDL at (`KSPROBE_SYSTEMADDRESS`), or null if the
/// MDL's pages are not locked and mapped. ksring never maps an MDL itself: `KsProbeStreamIrp`
/// can hand over an MDL it left unlocked (a `PERSIST_SAMPLE|SAMPLE_PERSISTED` placeholder), and
/// mapping one bug-checks or maps stale pages.
///
/// # Safety
/// `mdl` must be a valid MDL.
pub unsafe fn mdl_system_address(mdl: *mut MDL) -> *mut u8 {
    // SAFETY: the caller's valid MDL.
    let m = unsafe { &*mdl };
    let locked = m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL) != 0;
    let mapped = m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0;
    if locked && mapped { m.MappedSystemVa.cast() } else { null_mut() }
}

/// Unlinks and frees (`IoFreeMdl`) every MDL on the IRP's chain whose pages are not locked, so
/// that completing the IRP does not make the I/O manager unlock them (`MmUnlockPages` on an
/// unlocked MDL bug-checks). For a stream IRP ksring refuses after `KsProbeStreamIrp`.
///
/// # Safety
/// `irp` must be a valid IRP owned by the caller, not yet completed.
pub unsafe fn free_unlocked_mdls(irp: *mut IRP) {
    // SAFETY: the caller owns the IRP and its MDL chain.
    let mut link: *mut *mut MDL = unsafe { &raw mut (*irp).MdlAddress };
    // SAFETY: `link` points at the chain's head or at a live MDL's `Next`.
    while let Some(mdl) = Some(unsafe { *link }).filter(|m| !m.is_null()) {
        // SAFETY: a live MDL of the chain.
        let m = unsafe { &*mdl };
        let (flags, next) = (m.MdlFlags, m.Next);
        if flags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
            // SAFETY: unlink it from the chain we own ...
            unsafe { *link = next };
            // SAFETY: ... and free it: nothing refers to it any more.
            unsafe { sys::IoFreeMdl(mdl) };
        } else {
            // SAFETY: a live MDL; its `Next` field is the next link.
            link = unsafe { &raw mut (*mdl).Next };
        }
    }
}

/// `InitializeListHead`.
///
/// # Safety
/// `head` must be valid for writes and not move afterwards.
pub unsafe fn init_list_head(head: *mut LIST_ENTRY) {
    // SAFETY: the caller's writable list head.
    unsafe { head.write(LIST_ENTRY { Flink: head, Blink: head }) };
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
