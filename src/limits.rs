//! How much non-paged pool ksring's rings may take: in all (every filter of the driver) and per
//! filter. Read once at `DriverEntry` from the service key's `Parameters` (`MaxRingMiB`,
//! `MaxFilterRingMiB`, `REG_DWORD`s the INF writes), kept in a driver object extension so that every
//! device and filter of the driver shares one count, and enforced when a ring is allocated.
//!
//! Without the caps, any caller allowed to open a filter could take 64 MiB of non-paged pool per
//! filter, as many filters as it likes (WINDOWS-AUDIT F9).

use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU64, Ordering};

use ksabi::{
    DRIVER_OBJECT, HANDLE, KEY_READ, KEY_VALUE_PARTIAL_INFORMATION, KeyValuePartialInformation, NTSTATUS,
    OBJ_CASE_INSENSITIVE, OBJ_KERNEL_HANDLE, OBJECT_ATTRIBUTES, REG_DWORD, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_QUOTA_EXCEEDED, STATUS_SUCCESS, UNICODE_STRING, nt_success,
};
use ksring_api::{MAX_CAPACITY, MIN_CAPACITY};

use crate::kernel::nt::{static_unicode, utf16};
use crate::sys;

/// Default `MaxRingMiB`: all rings of the driver together.
pub const DEFAULT_ALL_RINGS_MIB: u32 = 256;
/// Default `MaxFilterRingMiB`: one filter's ring (the largest capacity the driver accepts).
pub const DEFAULT_FILTER_RING_MIB: u32 = MAX_CAPACITY >> 20;

/// The driver's caps and what its rings hold now.
pub struct Limits {
    /// Bytes all rings may hold together.
    pub all_rings: u64,
    /// Bytes one filter's ring may hold.
    pub per_filter: u32,
    /// Bytes the rings hold now (reserved before each allocation, returned after each free).
    in_use: AtomicU64,
}

/// `size_of::<Limits>()` as the extension size (small: checked at compile time).
#[allow(clippy::cast_possible_truncation)]
const LIMITS_SIZE: u32 = size_of::<Limits>() as u32;
const _: () = assert!(size_of::<Limits>() < 256);

/// `sizeof(OBJECT_ATTRIBUTES)` (48 on x64).
#[allow(clippy::cast_possible_truncation)]
const OBJECT_ATTRIBUTES_SIZE: u32 = size_of::<OBJECT_ATTRIBUTES>() as u32;
/// A value query's buffer: the information header and a DWORD.
#[allow(clippy::cast_possible_truncation)]
const VALUE_BUFFER_SIZE: u32 = (size_of::<KEY_VALUE_PARTIAL_INFORMATION>() + 4) as u32;

/// The extension's client id (any unique address-sized value).
const CLIENT_ID: *mut c_void = core::ptr::without_provenance_mut(0x4B53_5252); // "KSRR"

static PARAMETERS: [u16; 10] = utf16("Parameters");
static MAX_RING_MIB: [u16; 10] = utf16("MaxRingMiB");
static MAX_FILTER_RING_MIB: [u16; 16] = utf16("MaxFilterRingMiB");

impl Limits {
    /// Reserves `bytes` for a new ring: `STATUS_QUOTA_EXCEEDED` if it would take the rings over
    /// the driver's cap (nothing reserved then).
    pub fn reserve(&self, bytes: u32) -> NTSTATUS {
        let bytes = u64::from(bytes);
        let fits = self.in_use.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            used.checked_add(bytes).filter(|&total| total <= self.all_rings)
        });
        if fits.is_ok() { STATUS_SUCCESS } else { STATUS_QUOTA_EXCEEDED }
    }

    /// Returns a reservation.
    pub fn release(&self, bytes: u32) {
        self.in_use.fetch_sub(u64::from(bytes), Ordering::SeqCst);
    }
}

/// At `DriverEntry`: allocates the driver's `Limits` and reads the caps from
/// `<registry_path>\Parameters` (defaults where a value is missing or not a DWORD).
///
/// # Safety
/// `driver` and `registry_path` are `DriverEntry`'s, at `PASSIVE_LEVEL`.
pub unsafe fn load(driver: *mut DRIVER_OBJECT, registry_path: *mut UNICODE_STRING) -> NTSTATUS {
    let mut extension: *mut c_void = null_mut();
    // SAFETY: DriverEntry's driver object; the extension lives as long as it.
    let status =
        unsafe { sys::IoAllocateDriverObjectExtension(driver, CLIENT_ID, LIMITS_SIZE, &raw mut extension) };
    if !nt_success(status) || extension.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    // SAFETY: the caller's registry path (the service key), at PASSIVE_LEVEL.
    let (all_mib, filter_mib) = unsafe { read_caps(registry_path) };
    let per_filter = filter_mib.saturating_mul(1 << 20).clamp(MIN_CAPACITY, MAX_CAPACITY);
    let all_rings = (u64::from(all_mib) << 20).max(u64::from(per_filter));
    let limits = Limits { all_rings, per_filter, in_use: AtomicU64::new(0) };
    // SAFETY: a fresh, 16-byte aligned block of `size_of::<Limits>()` bytes.
    unsafe { extension.cast::<Limits>().write(limits) };
    STATUS_SUCCESS
}

/// The driver's `Limits`.
///
/// # Safety
/// `driver` is this driver's object, after [`load`] succeeded.
pub unsafe fn of<'a>(driver: *mut DRIVER_OBJECT) -> &'a Limits {
    // SAFETY: this driver's object.
    let extension = unsafe { sys::IoGetDriverObjectExtension(driver, CLIENT_ID) };
    // SAFETY: allocated and written by `load` for this client id; it lives as long as the driver.
    unsafe { &*extension.cast::<Limits>() }
}

/// `(MaxRingMiB, MaxFilterRingMiB)`, defaults for what is not there.
///
/// # Safety
/// As [`load`].
unsafe fn read_caps(registry_path: *mut UNICODE_STRING) -> (u32, u32) {
    let mut caps = (DEFAULT_ALL_RINGS_MIB, DEFAULT_FILTER_RING_MIB);
    // SAFETY: the service key path the I/O manager passed; a key handle on success.
    let Some(service) = (unsafe { open(null_mut(), registry_path) }) else { return caps };
    let mut name = static_unicode(&PARAMETERS);
    // SAFETY: a key handle we opened and a static name.
    if let Some(parameters) = unsafe { open(service, &raw mut name) } {
        // SAFETY: an open key handle.
        if let Some(v) = unsafe { dword(parameters, &MAX_RING_MIB) } {
            caps.0 = v;
        }
        // SAFETY: as above.
        if let Some(v) = unsafe { dword(parameters, &MAX_FILTER_RING_MIB) } {
            caps.1 = v;
        }
        // SAFETY: opened above, closed once.
        unsafe { sys::ZwClose(parameters) };
    }
    // SAFETY: as above.
    unsafe { sys::ZwClose(service) };
    caps
}

/// `ZwOpenKey` of `name` (relative to `root`, or absolute when it is null), for reading, as a
/// kernel handle.
///
/// # Safety
/// `root` is null or an open key handle; `name` a valid string.
unsafe fn open(root: HANDLE, name: *mut UNICODE_STRING) -> Option<HANDLE> {
    let attributes = OBJECT_ATTRIBUTES {
        Length: OBJECT_ATTRIBUTES_SIZE,
        RootDirectory: root,
        ObjectName: name,
        Attributes: OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
        SecurityDescriptor: null_mut(),
        SecurityQualityOfService: null_mut(),
    };
    let mut key: HANDLE = null_mut();
    // SAFETY: valid attributes and out pointer on this stack.
    let status = unsafe { sys::ZwOpenKey(&raw mut key, KEY_READ, &raw const attributes) };
    nt_success(status).then_some(key)
}

/// A `REG_DWORD` value of `key`, if it has one of that name and type.
///
/// # Safety
/// `key` is an open key handle.
unsafe fn dword(key: HANDLE, name: &'static [u16]) -> Option<u32> {
    /// The information header and four bytes of data, aligned for the header.
    #[repr(C, align(8))]
    struct Buffer([u8; VALUE_BUFFER_SIZE as usize]);
    let mut buffer = Buffer([0; VALUE_BUFFER_SIZE as usize]);
    let mut length = 0u32;
    let mut name = static_unicode(name);
    // SAFETY: an open key, a static name, a buffer of the size passed on this stack.
    let status = unsafe {
        sys::ZwQueryValueKey(
            key,
            &raw mut name,
            KeyValuePartialInformation,
            buffer.0.as_mut_ptr().cast(),
            VALUE_BUFFER_SIZE,
            &raw mut length,
        )
    };
    if !nt_success(status) {
        return None;
    }
    // SAFETY: the call filled the header at the start of the buffer, which is 8-byte aligned.
    #[allow(clippy::cast_ptr_alignment)]
    let info = unsafe { &*buffer.0.as_ptr().cast::<KEY_VALUE_PARTIAL_INFORMATION>() };
    let data = core::mem::offset_of!(KEY_VALUE_PARTIAL_INFORMATION, Data);
    (info.Type == REG_DWORD && info.DataLength == 4).then(|| {
        u32::from_le_bytes([buffer.0[data], buffer.0[data + 1], buffer.0[data + 2], buffer.0[data + 3]])
    })
}
