//! The object manager, as far as a KS driver uses it: a user-mode handle becomes a referenced
//! file object (`ObReferenceObjectByHandle`), an object already held gets one more reference
//! (`ObfReferenceObject`), and a reference is dropped again (`ObfDereferenceObject`), the last one
//! closing the file. References still held at unload are
//! reported (`OBJECT_REFERENCE_LEAK`).
//!
//! Fidelity: the object type may be `*IoFileObjectType` or NULL; for `UserMode` the access check compares the
//! desired access with what the handle was opened for (read: `FILE_READ_DATA` or `GENERIC_READ`;
//! write: `FILE_WRITE_DATA` or `GENERIC_WRITE`); only user-mode handles of the emulated process
//! exist. Statuses are Windows': `STATUS_INVALID_HANDLE`, `STATUS_OBJECT_TYPE_MISMATCH`,
//! `STATUS_ACCESS_DENIED`.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ksabi::{
    FILE_OBJECT, GENERIC_READ, GENERIC_WRITE, HANDLE, KPROCESSOR_MODE, NTSTATUS, PASSIVE_LEVEL,
    STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_OBJECT_TYPE_MISMATCH,
    STATUS_SUCCESS,
};

use crate::client::HandleObject;
use crate::machine::{MachineInner, current, violation};
use crate::objects::FileBox;
use crate::sync::Locked;
use crate::verifier::Rule;

/// What `*IoFileObjectType` points at: an object type kshost only compares by address.
pub(crate) static FILE_OBJECT_TYPE: u64 = 0x4669_6C65; // "File"

/// The value of `*IoFileObjectType`.
#[must_use]
pub(crate) fn file_object_type() -> *mut c_void {
    std::ptr::from_ref(&FILE_OBJECT_TYPE).cast_mut().cast()
}

const FILE_READ_DATA: u32 = 0x1;
const FILE_WRITE_DATA: u32 = 0x2;

/// `ObReferenceObjectByHandle`.
///
/// # Safety
/// `object` is null or valid for writing a pointer (the routine's out parameter).
pub(crate) unsafe fn reference_by_handle(
    handle: HANDLE,
    access: u32,
    object_type: *mut c_void,
    mode: KPROCESSOR_MODE,
    object: *mut *mut c_void,
) -> NTSTATUS {
    if !crate::irql::require_at_most(PASSIVE_LEVEL, "ObReferenceObjectByHandle") {
        return STATUS_INVALID_PARAMETER;
    }
    if object.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if !object_type.is_null() && object_type != file_object_type() {
        violation(Rule::Unsupported, "ObReferenceObjectByHandle: kshost knows only IoFileObjectType".into());
        return STATUS_OBJECT_TYPE_MISMATCH;
    }
    let m = current();
    let file = {
        let handles = m.handles.locked();
        match handles.resolve(handle as u64) {
            None => return STATUS_INVALID_HANDLE,
            Some(HandleObject::Event) => return STATUS_OBJECT_TYPE_MISMATCH,
            Some(HandleObject::File(f)) => {
                // Referenced while the table is locked: a concurrent close cannot free it now.
                // SAFETY: the handle table is locked and names a live file object: a close removes the
                // handle under this lock before it drops the handle's reference. Only the record is
                // referenced.
                unsafe { FileBox::meta_of(f) }.refs.fetch_add(1, Ordering::AcqRel);
                f
            }
        }
    };
    if mode == ksabi::KernelMode {
        // Every handle here is a user-mode handle of the client process: "Drivers should always
        // specify UserMode for handles they receive from user address space", and Driver
        // Verifier stops a KernelMode reference of one (bug check 0xC4/0xF6).
        violation(
            Rule::Unsupported,
            format!(
                "ObReferenceObjectByHandle({handle:p}, KernelMode): a user-mode handle referenced as KernelMode skips the access check (Driver Verifier: 0xC4/0xF6)"
            ),
        );
    }
    // SAFETY: the reference taken above keeps the file object alive; only the record is referenced.
    let granted = unsafe { FileBox::meta_of(file) }.granted;
    let wants_read = access & (FILE_READ_DATA | GENERIC_READ) != 0;
    let wants_write = access & (FILE_WRITE_DATA | GENERIC_WRITE) != 0;
    let denied = (wants_read && granted & GENERIC_READ == 0) || (wants_write && granted & GENERIC_WRITE == 0);
    if mode != ksabi::KernelMode && denied {
        // SAFETY: gives up the reference taken above; `file` is not used after.
        unsafe { crate::iomgr::release_file(&m, file, true) };
        return STATUS_ACCESS_DENIED;
    }
    *m.ob_refs.locked().entry(file as usize).or_insert(0) += 1;
    // SAFETY: the caller's out pointer.
    unsafe { *object = file.cast() };
    STATUS_SUCCESS
}

/// `ObfReferenceObject`: one more reference to an object the caller already holds (a file
/// object of this machine, e.g. a pin's `RelatedFileObject` during its create). Returns the
/// references the driver now holds on it.
///
/// # Safety
/// As `ObfReferenceObject`'s contract: `object` is an object the caller holds a reference to. The
/// check below only keeps the count's memory access sound; taking a reference to a file object
/// whose last reference is gone would revive one that its close is already freeing.
pub(crate) unsafe fn reference(object: *mut c_void) -> isize {
    let m = current();
    let file = object.cast::<FILE_OBJECT>();
    {
        // Checked and referenced under the registry lock: the object cannot be freed meanwhile.
        let files = m.objects.locked();
        if !files.files.contains(&(file as usize)) {
            drop(files);
            violation(Rule::UnknownObject, format!("ObfReferenceObject({object:p}): not a live file object"));
            return 0;
        }
        // SAFETY: the file object is in the registry, which is locked here, so it cannot be freed
        // meanwhile; only the record is referenced.
        unsafe { FileBox::meta_of(file) }.refs.fetch_add(1, Ordering::AcqRel);
    }
    let mut refs = m.ob_refs.locked();
    let n = refs.entry(file as usize).or_insert(0);
    *n += 1;
    isize::try_from(*n).unwrap_or(isize::MAX)
}

/// `ObfDereferenceObject`: returns the references the driver still holds on the object.
///
/// # Safety
/// As `ObfDereferenceObject`'s contract: `object` is a file object the caller referenced
/// (`ObReferenceObjectByHandle`, `ObfReferenceObject`) and still holds that reference, given up
/// here. (kshost counts the driver's references and refuses one it does not hold, but cannot tell
/// whose reference the driver gives up.)
pub(crate) unsafe fn dereference(object: *mut c_void) -> isize {
    let m = current();
    let file = object.cast::<FILE_OBJECT>();
    let left = {
        let mut refs = m.ob_refs.locked();
        match refs.get_mut(&(file as usize)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                let left = *n;
                if left == 0 {
                    refs.remove(&(file as usize));
                }
                left
            }
            _ => {
                violation(
                    Rule::ObjectReferenceLeak,
                    format!("ObfDereferenceObject({object:p}): the driver holds no reference"),
                );
                return 0;
            }
        }
    };
    // SAFETY: the driver held a reference (counted just above and the caller's contract), given up
    // here.
    unsafe { release(&m, file) };
    isize::try_from(left).unwrap_or(isize::MAX)
}

/// Drops a driver's reference: inline at `PASSIVE_LEVEL`, else the close goes to a worker.
///
/// # Safety
/// As for [`crate::iomgr::release_file`].
unsafe fn release(m: &Arc<MachineInner>, file: *mut FILE_OBJECT) {
    // SAFETY: this function's contract is `release_file`'s.
    unsafe { crate::iomgr::release_file(m, file, crate::irql::current() == PASSIVE_LEVEL) };
}

/// At unload: every reference the driver still holds is a leak.
pub(crate) fn check_leaks(m: &MachineInner) {
    for (&file, &n) in m.ob_refs.locked().iter() {
        violation(
            Rule::ObjectReferenceLeak,
            format!("{n} reference(s) to file object {file:#x} still held at unload"),
        );
    }
}
