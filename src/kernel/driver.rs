//! The driver object and the registry, as types: a [`Driver`] keeps driver-wide state in a
//! driver object extension (`IoAllocateDriverObjectExtension`), typed and found again by its
//! client id; a registry [`Key`] is closed when dropped, and reads a `REG_DWORD` into a `u32`.

use core::ffi::c_void;
use core::mem::MaybeUninit;
use core::ptr::{NonNull, null_mut};

use ksabi::{
    DRIVER_OBJECT, HANDLE, KEY_READ, KEY_VALUE_PARTIAL_INFORMATION, KeyValuePartialInformation,
    OBJ_CASE_INSENSITIVE, OBJ_KERNEL_HANDLE, OBJECT_ATTRIBUTES, REG_DWORD, UNICODE_STRING, nt_success,
};

use super::nt::static_unicode;
use crate::sys;

/// The driver object, from `DriverEntry` on.
#[derive(Clone, Copy)]
pub struct Driver {
    raw: NonNull<DRIVER_OBJECT>,
}

/// Driver-wide state kept in a driver object extension.
///
/// # Safety
/// `CLIENT_ID` is unique among the driver's extensions and used for `Self` only.
pub unsafe trait Extension: Sized + Sync + 'static {
    /// The extension's client id (any unique address-sized value).
    const CLIENT_ID: usize;
}

// SAFETY: "KSRR" is the driver's only extension client id, used for `Limits` alone (every
// extension the driver keeps is declared here, beside the trait).
unsafe impl Extension for crate::limits::Limits {
    const CLIENT_ID: usize = 0x4B53_5252; // "KSRR"
}

impl Driver {
    /// The driver's own driver object: the one `DriverEntry` was given
    /// ([`super::device::DriverSetup`]), or its device's (`Device::limits`).
    pub(in crate::kernel) fn from_non_null(raw: NonNull<DRIVER_OBJECT>) -> Self {
        Self { raw }
    }

    /// Keeps `value` in a new extension of the driver object, for as long as the driver is
    /// loaded; `None` if the extension could not be allocated (or exists already).
    pub fn keep<T: Extension>(self, value: T) -> Option<&'static T> {
        let mut extension: *mut c_void = null_mut();
        #[allow(clippy::cast_possible_truncation)] // an extension is small
        let size = size_of::<T>() as u32;
        // SAFETY: our driver object; the extension lives as long as it.
        let status = unsafe {
            sys::IoAllocateDriverObjectExtension(
                self.raw.as_ptr(),
                core::ptr::without_provenance_mut(T::CLIENT_ID),
                size,
                &raw mut extension,
            )
        };
        let block = NonNull::new(extension.cast::<MaybeUninit<T>>()).filter(|_| nt_success(status))?;
        // SAFETY: a fresh block of `size_of::<T>()` bytes, 16-byte aligned (pool), ours alone;
        // freed only with the driver object. Written here, shared only from here on.
        Some(unsafe { &mut *block.as_ptr() }.write(value))
    }

    /// The extension [`Driver::keep`] made for `T`, if it did.
    pub fn get<T: Extension>(self) -> Option<&'static T> {
        // SAFETY: our driver object.
        let extension = unsafe {
            sys::IoGetDriverObjectExtension(
                self.raw.as_ptr(),
                core::ptr::without_provenance_mut(T::CLIENT_ID),
            )
        };
        // SAFETY: made by `keep` for this client id, which only `T` uses (`Extension`); it lives as
        // long as the driver.
        NonNull::new(extension.cast::<T>()).map(|block| unsafe { block.as_ref() })
    }
}

/// An open registry key (a kernel handle), closed when dropped.
pub struct Key {
    handle: HANDLE,
}

impl Key {
    /// The driver's service key (`DriverEntry`'s registry path), for reading.
    ///
    /// # Safety
    /// `registry_path` is the string `DriverEntry` was given, at `PASSIVE_LEVEL`.
    pub unsafe fn service(registry_path: *mut UNICODE_STRING) -> Option<Self> {
        // SAFETY: the caller's valid string; no root.
        unsafe { open(null_mut(), registry_path) }
    }

    /// The subkey `name`, for reading.
    pub fn subkey(&self, name: &'static [u16]) -> Option<Self> {
        let mut name = static_unicode(name);
        // SAFETY: our open key and a string on this stack.
        unsafe { open(self.handle, &raw mut name) }
    }

    /// A `REG_DWORD` value of the key, if it has one of that name and type.
    pub fn dword(&self, name: &'static [u16]) -> Option<u32> {
        /// The information header and four bytes of data, aligned for the header.
        #[repr(C, align(8))]
        struct Buffer([u8; BUFFER]);
        const BUFFER: usize = size_of::<KEY_VALUE_PARTIAL_INFORMATION>() + 4;
        let mut buffer = Buffer([0; BUFFER]);
        let mut length = 0u32;
        let mut name = static_unicode(name);
        #[allow(clippy::cast_possible_truncation)] // a few bytes
        let size = BUFFER as u32;
        // SAFETY: our open key, a string and a buffer of the size passed, on this stack.
        let status = unsafe {
            sys::ZwQueryValueKey(
                self.handle,
                &raw mut name,
                KeyValuePartialInformation,
                buffer.0.as_mut_ptr().cast(),
                size,
                &raw mut length,
            )
        };
        if !nt_success(status) {
            return None;
        }
        let at = |offset: usize| u32::from_le_bytes([0, 1, 2, 3].map(|i| buffer.0[offset + i]));
        let kind = at(core::mem::offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Type));
        let length = at(core::mem::offset_of!(KEY_VALUE_PARTIAL_INFORMATION, DataLength));
        (kind == REG_DWORD && length == 4)
            .then(|| at(core::mem::offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Data)))
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once.
        unsafe { sys::ZwClose(self.handle) };
    }
}

/// `ZwOpenKey` of `name` (relative to `root`, or absolute when it is null), for reading, as a
/// kernel handle.
///
/// # Safety
/// `root` is null or an open key handle; `name` a valid string.
unsafe fn open(root: HANDLE, name: *mut UNICODE_STRING) -> Option<Key> {
    #[allow(clippy::cast_possible_truncation)] // 48 bytes
    let attributes = OBJECT_ATTRIBUTES {
        Length: size_of::<OBJECT_ATTRIBUTES>() as u32,
        RootDirectory: root,
        ObjectName: name,
        Attributes: OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
        SecurityDescriptor: null_mut(),
        SecurityQualityOfService: null_mut(),
    };
    let mut handle: HANDLE = null_mut();
    // SAFETY: valid attributes and out pointer on this stack.
    let status = unsafe { sys::ZwOpenKey(&raw mut handle, KEY_READ, &raw const attributes) };
    // (`then`, not `then_some`: a `Key` made from a failed open would close its handle when dropped.)
    nt_success(status).then(|| Key { handle })
}
