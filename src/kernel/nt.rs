//! The WDK's inline IRP and MDL helpers (`IoGetCurrentIrpStackLocation`, `IoMarkIrpPending`,
//! `IoCompleteRequest`, `MmGetSystemAddressForMdlSafe`, `InitializeListHead`...), which are
//! macros or inline functions in C and not provided by any crate, and small string helpers.

use core::mem::offset_of;
use core::ptr::null_mut;

use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use ksabi::{
    FILE_OBJECT, IO_NO_INCREMENT, IO_PARAMETERS_DEVICE_IO_CONTROL, IO_STACK_LOCATION, IO_STATUS_BLOCK, IRP,
    IRP_TAIL_OVERLAY, LIST_ENTRY, MDL, MDL_MAPPED_TO_SYSTEM_VA, MDL_PAGES_LOCKED,
    MDL_SOURCE_IS_NONPAGED_POOL, NTSTATUS, PIO_COMPLETION_ROUTINE, SL_INVOKE_ON_CANCEL, SL_INVOKE_ON_ERROR,
    SL_INVOKE_ON_SUCCESS, SL_PENDING_RETURNED, UNICODE_STRING,
};

use crate::sys;

/// `&Irp->Tail.Overlay`, computed without reading the union (`Overlay` is its first member).
#[must_use]
pub fn tail_overlay(irp: *mut IRP) -> *mut IRP_TAIL_OVERLAY {
    irp.cast::<u8>().wrapping_add(offset_of!(IRP, Tail)).cast()
}

/// `&Irp->Tail.Overlay.DriverContext[i]` (`i < 4`), computed without reading anything.
#[must_use]
pub fn driver_context(irp: *mut IRP, i: usize) -> *mut *mut c_void {
    let first = offset_of!(IRP, Tail) + offset_of!(IRP_TAIL_OVERLAY, DriverContext);
    irp.cast::<u8>().wrapping_add(first + i.min(3) * size_of::<*mut c_void>()).cast()
}

/// The slots of `Tail.Overlay.DriverContext` the driver keeps state in while it owns a request
/// (KS' cancelable-queue helpers use `[1]`).
#[derive(Clone, Copy)]
pub enum ContextSlot {
    /// A stream request's position (`kernel::stream::Cursor`).
    Position = 0,
    /// A stream request's current MDL.
    Mdl = 2,
    /// The completion list's link, and the pump/cancel-routine marker while a pump releases it.
    Link = 3,
}

/// An IRP its holder owns — a dispatch routine's, a stream request acquired from its queue or
/// taken by its cancel routine — reached field by field: the WDK's inline helpers
/// (`IoGetCurrentIrpStackLocation`, `IoMarkIrpPending`, `IoCompleteRequest`...) as methods.
///
/// While an IRP is the holder's, its current stack location, its `IoStatus`, its system buffer
/// and its MDL chain are the holder's alone; the rest of the IRP is reached only by raw
/// pointer (the I/O manager sets `Cancel` from any thread, KS links `Tail.Overlay.ListEntry`),
/// never through a reference to the whole.
pub struct OwnedIrp(NonNull<IRP>);

impl OwnedIrp {
    /// The holder's IRP.
    ///
    /// # Safety
    /// `raw` is a valid IRP sent to one of this driver's devices, which the caller owns for as
    /// long as the value lives (or until [`OwnedIrp::complete`] or it is handed on).
    pub unsafe fn new(raw: NonNull<IRP>) -> Self {
        Self(raw)
    }

    /// The raw IRP, still owned (for the routines that take one and give it back).
    pub fn as_ptr(&self) -> *mut IRP {
        self.0.as_ptr()
    }

    /// Gives up ownership (to a queue, a completion list, ks.sys).
    pub fn into_non_null(self) -> NonNull<IRP> {
        self.0
    }

    /// `IoGetCurrentIrpStackLocation`.
    fn current_stack(&self) -> *mut IO_STACK_LOCATION {
        // SAFETY: the holder's IRP; while a driver owns it, `Tail.Overlay` is the live member and
        // nothing else writes `CurrentStackLocation`.
        unsafe { (*tail_overlay(self.as_ptr())).CurrentStackLocation }
    }

    /// The current stack location.
    pub fn stack(&self) -> &IO_STACK_LOCATION {
        // SAFETY: the holder's location of its IRP, valid and written by nobody else while owned.
        unsafe { &*self.current_stack() }
    }

    /// The location the driver below will see (`IoGetNextIrpStackLocation`), if the IRP has one
    /// (`CurrentLocation > 1`: a request this driver sends on down its stack).
    pub fn next_stack(&mut self) -> Option<&mut IO_STACK_LOCATION> {
        // SAFETY: the holder's IRP; one field read through the raw pointer.
        let location = unsafe { (*self.as_ptr()).CurrentLocation };
        if location <= 1 {
            return None; // below the current location is the IRP itself
        }
        // SAFETY: the location below the current one, the holder's to set up before sending the
        // IRP on; distinct from the current one, which `&mut self` keeps unborrowed.
        Some(unsafe { &mut *self.current_stack().wrapping_sub(1) })
    }

    /// `Irp->IoStatus`.
    pub fn io_status(&self) -> &IO_STATUS_BLOCK {
        // SAFETY: the holder's IRP; only its owner writes `IoStatus`.
        unsafe { &(*self.as_ptr()).IoStatus }
    }

    /// `Irp->IoStatus`, to set.
    pub fn io_status_mut(&mut self) -> &mut IO_STATUS_BLOCK {
        // SAFETY: the holder's IRP; only its owner writes `IoStatus`.
        unsafe { &mut (*self.as_ptr()).IoStatus }
    }

    /// The device-control parameters of the current stack location.
    pub fn ioctl(&self) -> IO_PARAMETERS_DEVICE_IO_CONTROL {
        // SAFETY: for a device-control IRP `DeviceIoControl` is the member in use; for any other
        // major the union holds plain integers and pointers, read here only as values.
        unsafe { self.stack().Parameters.DeviceIoControl }
    }

    /// `Irp->AssociatedIrp.SystemBuffer` (the captured buffer of a probed or buffered request).
    pub fn system_buffer(&self) -> *mut u8 {
        // SAFETY: the holder's IRP.
        let associated = unsafe { &(*self.as_ptr()).AssociatedIrp };
        // SAFETY: a pointer-sized union member, read as a value (any bits are a pointer).
        unsafe { associated.SystemBuffer }.cast()
    }

    /// `Irp->MdlAddress`: the head of its MDL chain.
    pub fn mdl_address(&self) -> *mut MDL {
        // SAFETY: the holder's IRP.
        unsafe { (*self.as_ptr()).MdlAddress }
    }

    /// `Irp->RequestorMode`.
    pub fn requestor_mode(&self) -> i8 {
        // SAFETY: the holder's IRP; set by whoever built the request, read-only after.
        unsafe { (*self.as_ptr()).RequestorMode }
    }

    /// Whether a cancel came (`Irp->Cancel`, which `IoCancelIrp` and `KsCancelIo` may set on
    /// another processor).
    pub fn cancel_requested(&self) -> bool {
        let flag = self.as_ptr().cast::<u8>().wrapping_add(offset_of!(IRP, Cancel));
        // SAFETY: the holder's IRP, alive; a byte others store to concurrently, so every read of
        // it here is atomic (the kernel's plain byte stores are atomic on every target).
        unsafe { AtomicU8::from_ptr(flag) }.load(Ordering::Acquire) != 0
    }

    /// The file object of the current stack location.
    pub fn file_object(&self) -> *mut FILE_OBJECT {
        self.stack().FileObject
    }

    /// One of the driver's `DriverContext` slots, as the atomic every access to it goes through
    /// (a cancel routine on another processor may read the link slot while a pump writes it).
    pub fn context(&self, slot: ContextSlot) -> &AtomicPtr<c_void> {
        let field = driver_context(self.as_ptr(), slot as usize);
        // SAFETY: an aligned pointer-sized field of the holder's IRP, alive while it is owned; the
        // driver reaches its slots only through this view. KS' property and create helpers use
        // `[0]`, `[2]`, `[3]` during their own calls on the dispatching thread (KS-REFERENCE
        // §9.12), never on a stream request, which is the only kind that keeps state here.
        unsafe { AtomicPtr::from_ptr(field) }
    }

    /// `IoMarkIrpPending`: the driver will return `STATUS_PENDING` and complete the IRP later.
    pub fn mark_pending(&mut self) {
        // SAFETY: the holder's current location, reached mutably only here.
        unsafe { (*self.current_stack()).Control |= SL_PENDING_RETURNED };
    }

    /// `IoCopyCurrentIrpStackLocationToNext`, then `IoSetCompletionRoutine(irp, routine, context,
    /// TRUE, TRUE, TRUE)`: the next location gets the current one's request and `routine`, called
    /// however the request ends. `false` (nothing changed) if the IRP has no next location.
    #[must_use]
    pub fn forward_with_completion(&mut self, routine: PIO_COMPLETION_ROUTINE, context: *mut c_void) -> bool {
        let current = *self.stack();
        let Some(next) = self.next_stack() else { return false };
        *next = IO_STACK_LOCATION {
            Control: SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL,
            CompletionRoutine: routine,
            Context: context,
            ..current
        };
        true
    }

    /// `IoCompleteRequest` with `status` and `information`; returns `status` for a dispatch
    /// routine.
    pub fn complete(mut self, status: NTSTATUS, information: usize) -> NTSTATUS {
        let io = self.io_status_mut();
        io.Status = status;
        io.Information = information;
        self.complete_as_set()
    }

    /// `IoCompleteRequest` with the `IoStatus` already set; returns its status.
    pub fn complete_as_set(self) -> NTSTATUS {
        let status = self.io_status().Status;
        // SAFETY: the holder's IRP, given up here (`self` is consumed): completed once.
        unsafe { sys::IofCompleteRequest(self.as_ptr(), IO_NO_INCREMENT) };
        status
    }

    /// Unlinks and frees (`IoFreeMdl`) every MDL on the IRP's chain whose pages are not locked,
    /// so that completing the IRP does not make the I/O manager unlock them (`MmUnlockPages` on
    /// an unlocked MDL bug-checks). For a stream IRP ksring refuses after `KsProbeStreamIrp`.
    pub fn free_unlocked_mdls(&mut self) {
        let mut chain = core::mem::replace(self.mdls(), null_mut());
        let mut kept: *mut MDL = null_mut();
        let mut last: *mut MDL = null_mut();
        while let Some(mdl) = NonNull::new(chain) {
            // SAFETY: an MDL of the chain the holder owns (taken off the IRP above).
            let m = unsafe { &mut *mdl.as_ptr() };
            chain = m.Next;
            if m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL) == 0 {
                // SAFETY: off the chain now; nothing refers to it any more.
                unsafe { sys::IoFreeMdl(mdl.as_ptr()) };
                continue;
            }
            m.Next = null_mut();
            match NonNull::new(last) {
                // SAFETY: the last MDL kept, an MDL of the holder's chain.
                Some(l) => unsafe { (*l.as_ptr()).Next = mdl.as_ptr() },
                None => kept = mdl.as_ptr(),
            }
            last = mdl.as_ptr();
        }
        *self.mdls() = kept;
    }

    /// `Irp->MdlAddress`, to change.
    fn mdls(&mut self) -> &mut *mut MDL {
        // SAFETY: the holder's IRP; only its owner changes its MDL chain.
        unsafe { &mut (*self.as_ptr()).MdlAddress }
    }
}

/// The length in bytes of a create's parameter as KS computes it (`KsiCopyCreateParameter`): the
/// file name (`name_bytes` long, starting with `first`), less an optional leading `\`, less the
/// create item's name of `class_units` characters and the `\` after it. (0 when the name is
/// shorter.)
#[must_use]
pub fn create_parameter_len(name_bytes: usize, first: Option<u16>, class_units: usize) -> usize {
    let leading = if name_bytes >= 2 && first == Some(u16::from(b'\\')) { 2 } else { 0 };
    (name_bytes - leading).saturating_sub(class_units * 2 + 2)
}

/// The system-space address ks.sys mapped an MDL at (`KSPROBE_SYSTEMADDRESS`), or null if the
/// MDL's pages are not locked and mapped. ksring never maps an MDL itself: `KsProbeStreamIrp`
/// can hand over an MDL it left unlocked (a `PERSIST_SAMPLE|SAMPLE_PERSISTED` placeholder), and
/// mapping one bug-checks or maps stale pages.
#[must_use]
pub fn mdl_system_address(m: &MDL) -> *mut u8 {
    let locked = m.MdlFlags & (MDL_PAGES_LOCKED | MDL_SOURCE_IS_NONPAGED_POOL) != 0;
    let mapped = m.MdlFlags & (MDL_MAPPED_TO_SYSTEM_VA | MDL_SOURCE_IS_NONPAGED_POOL) != 0;
    if locked && mapped { m.MappedSystemVa.cast() } else { null_mut() }
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

#[cfg(test)]
mod tests {
    use super::create_parameter_len;

    const BACKSLASH: Option<u16> = Some(b'\\' as u16);

    /// `\<item>\<parameter>`: the parameter's bytes are what follows the item's name and its `\`,
    /// with or without the leading `\` — to the byte (ksring bounds a connect's format by it).
    #[test]
    fn a_create_parameter_is_what_follows_the_item_and_its_backslash() {
        // "\Pin\" + 10 parameter characters: 1 + 3 + 1 + 10 characters.
        assert_eq!(create_parameter_len(30, BACKSLASH, 3), 20);
        // "Pin\" + 10 characters: no leading backslash.
        assert_eq!(create_parameter_len(28, Some(u16::from(b'P')), 3), 20);
        // Only the item's name, or less: nothing.
        assert_eq!(create_parameter_len(10, BACKSLASH, 3), 0);
        assert_eq!(create_parameter_len(0, None, 3), 0);
        // A single byte that is not a whole backslash is not stripped.
        assert_eq!(create_parameter_len(1, BACKSLASH, 0), 0);
        assert_eq!(create_parameter_len(12, Some(u16::from(b'x')), 0), 10);
    }
}
