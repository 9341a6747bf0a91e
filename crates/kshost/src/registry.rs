//! The registry as a driver reads it: the keys an INF installs (the service key and its
//! `Parameters`), opened with `ZwOpenKey`, read with `ZwQueryValueKey`
//! (`KeyValuePartialInformation`), closed with `ZwClose`. Kernel handles not closed by unload are
//! reported. Sources in `FIDELITY.md`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use ksabi::{
    HANDLE, KEY_VALUE_PARTIAL_INFORMATION, KeyValuePartialInformation, NTSTATUS, OBJECT_ATTRIBUTES,
    PASSIVE_LEVEL, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS,
};

use crate::machine::{current, violation};
use crate::sync::Locked;
use crate::verifier::Rule;

/// Keys by lower-case path (`\registry\machine\...`), each with its values by lower-case name.
#[derive(Default)]
pub(crate) struct Registry {
    keys: HashMap<String, HashMap<String, (u32, Vec<u8>)>>,
    /// Open kernel handles → key path.
    handles: HashMap<usize, String>,
}

/// Kernel handles have the top bit set; kshost numbers them from here.
const KERNEL_HANDLE_BASE: usize = 0xFFFF_FFFF_8000_0000;
static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(1);

/// The path of a driver's service key.
pub(crate) fn service_key(service: &str) -> String {
    format!("\\registry\\machine\\system\\currentcontrolset\\services\\{service}").to_ascii_lowercase()
}

impl Registry {
    /// Creates `path` (and nothing else) with `values` (name, `REG_*` type, data) added to it.
    pub(crate) fn set_values(&mut self, path: &str, values: &[(String, u32, Vec<u8>)]) {
        let key = self.keys.entry(path.to_ascii_lowercase()).or_default();
        for (name, kind, data) in values {
            key.insert(name.to_ascii_lowercase(), (*kind, data.clone()));
        }
    }

    /// Kernel handles still open (at unload).
    pub(crate) fn open_handles(&self) -> Vec<(usize, String)> {
        self.handles.iter().map(|(&h, p)| (h, p.clone())).collect()
    }
}

/// The text of a counted string.
///
/// # Safety
/// `s` is null or a valid `UNICODE_STRING`.
unsafe fn text(s: *const ksabi::UNICODE_STRING) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: the caller's valid string.
    let s = unsafe { &*s };
    if s.Buffer.is_null() {
        return Some(String::new());
    }
    // SAFETY: `Length` bytes of UTF-16 at `Buffer`.
    let units = unsafe { std::slice::from_raw_parts(s.Buffer, usize::from(s.Length) / 2) };
    Some(String::from_utf16_lossy(units))
}

/// `ZwOpenKey`.
///
/// # Safety
/// Pointers as the routine's contract.
pub(crate) unsafe fn open_key(
    out: *mut HANDLE,
    _access: u32,
    attributes: *const OBJECT_ATTRIBUTES,
) -> NTSTATUS {
    if !crate::irql::require_at_most(PASSIVE_LEVEL, "ZwOpenKey") || out.is_null() || attributes.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller's attributes.
    let a = unsafe { &*attributes };
    if a.Length as usize != size_of::<OBJECT_ATTRIBUTES>() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: as above.
    let Some(name) = (unsafe { text(a.ObjectName) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let m = current();
    let mut reg = m.registry.locked();
    let path = if a.RootDirectory.is_null() {
        name.to_ascii_lowercase()
    } else {
        let Some(root) = reg.handles.get(&(a.RootDirectory as usize)) else {
            return STATUS_INVALID_HANDLE;
        };
        format!("{root}\\{}", name.trim_start_matches('\\').to_ascii_lowercase())
    };
    if !reg.keys.contains_key(&path) {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    }
    let handle = KERNEL_HANDLE_BASE | (NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) << 2);
    reg.handles.insert(handle, path);
    // SAFETY: the caller's out pointer.
    unsafe { *out = std::ptr::without_provenance_mut(handle) };
    STATUS_SUCCESS
}

/// `ZwQueryValueKey` for `KeyValuePartialInformation`: the header and as much data as fits;
/// `STATUS_BUFFER_TOO_SMALL` (nothing written) below the header, `STATUS_BUFFER_OVERFLOW` (header
/// written) below the data.
///
/// # Safety
/// Pointers as the routine's contract.
pub(crate) unsafe fn query_value(
    key: HANDLE,
    name: *const ksabi::UNICODE_STRING,
    class: i32,
    buffer: *mut core::ffi::c_void,
    length: u32,
    result_length: *mut u32,
) -> NTSTATUS {
    if !crate::irql::require_at_most(PASSIVE_LEVEL, "ZwQueryValueKey") || result_length.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    if class != KeyValuePartialInformation {
        violation(Rule::Unsupported, format!("ZwQueryValueKey: information class {class}"));
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: as the contract.
    let Some(name) = (unsafe { text(name) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let m = current();
    let reg = m.registry.locked();
    let Some(path) = reg.handles.get(&(key as usize)) else {
        return STATUS_INVALID_HANDLE;
    };
    let Some((kind, data)) = reg.keys.get(path).and_then(|k| k.get(&name.to_ascii_lowercase())) else {
        return STATUS_OBJECT_NAME_NOT_FOUND;
    };
    let header = std::mem::offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Data);
    let needed = u32::try_from(header + data.len()).unwrap_or(u32::MAX);
    // SAFETY: the caller's out pointer.
    unsafe { *result_length = needed };
    if (length as usize) < header || buffer.is_null() {
        return STATUS_BUFFER_TOO_SMALL;
    }
    let info = buffer.cast::<u8>();
    let fixed =
        [0u32.to_le_bytes(), kind.to_le_bytes(), u32::try_from(data.len()).unwrap_or(0).to_le_bytes()]
            .concat();
    // SAFETY: `length >= header` bytes at `buffer`.
    unsafe { std::ptr::copy_nonoverlapping(fixed.as_ptr(), info, header) };
    if length < needed {
        return STATUS_BUFFER_OVERFLOW;
    }
    let dest = info.wrapping_add(header);
    // SAFETY: `length >= needed` bytes at `buffer`: the data fits after the header.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dest, data.len()) };
    STATUS_SUCCESS
}

/// `ZwClose` of a key handle.
pub(crate) fn close(handle: HANDLE) -> NTSTATUS {
    let m = current();
    if m.registry.locked().handles.remove(&(handle as usize)).is_some() {
        STATUS_SUCCESS
    } else {
        // Kernel code closing what is not an open handle: Windows bug-checks (0x93
        // INVALID_KERNEL_HANDLE, "an invalid handle was closed or referenced") when handle checking
        // is on, as Driver Verifier turns it on; without it ZwClose returns STATUS_INVALID_HANDLE.
        violation(
            Rule::InvalidKernelHandle,
            format!("ZwClose({handle:p}): not an open kernel handle (bug check 0x93 under Driver Verifier)"),
        );
        STATUS_INVALID_HANDLE
    }
}
