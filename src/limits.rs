//! How much non-paged pool ksring's rings may take: in all (every filter of the driver) and per
//! filter. Read once at `DriverEntry` from the service key's `Parameters` (`MaxRingMiB`,
//! `MaxFilterRingMiB`, `REG_DWORD`s the INF writes), kept in a driver object extension so that every
//! device and filter of the driver shares one count, and enforced when a ring is allocated.
//!
//! Without the caps, any caller allowed to open a filter could take 64 MiB of non-paged pool per
//! filter, as many filters as it likes (WINDOWS-AUDIT F9).

use core::sync::atomic::{AtomicU64, Ordering};

use ksabi::{NTSTATUS, STATUS_INSUFFICIENT_RESOURCES, STATUS_QUOTA_EXCEEDED, STATUS_SUCCESS};
use ksring_api::{MAX_CAPACITY, MIN_CAPACITY};

use crate::kernel::driver::{Driver, Key};
use crate::kernel::nt::utf16;

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

static PARAMETERS: [u16; 10] = utf16("Parameters");
static MAX_RING_MIB: [u16; 10] = utf16("MaxRingMiB");
static MAX_FILTER_RING_MIB: [u16; 16] = utf16("MaxFilterRingMiB");

/// The caps of a driver whose `Limits` are missing (never, once `DriverEntry` succeeded): no ring
/// at all.
pub static NO_LIMITS: Limits = Limits { all_rings: 0, per_filter: MIN_CAPACITY, in_use: AtomicU64::new(0) };

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

/// At `DriverEntry`: reads the caps from the service key's `Parameters` (`service`; defaults
/// where a value is missing or not a DWORD) and keeps the driver's `Limits` in its driver object.
/// `STATUS_INSUFFICIENT_RESOURCES` if they cannot be kept.
pub fn load(driver: Driver, service: Option<&Key>) -> NTSTATUS {
    let (all_mib, filter_mib) = read_caps(service);
    let per_filter = filter_mib.saturating_mul(1 << 20).clamp(MIN_CAPACITY, MAX_CAPACITY);
    let all_rings = (u64::from(all_mib) << 20).max(u64::from(per_filter));
    let limits = Limits { all_rings, per_filter, in_use: AtomicU64::new(0) };
    if driver.keep(limits).is_some() { STATUS_SUCCESS } else { STATUS_INSUFFICIENT_RESOURCES }
}

/// `(MaxRingMiB, MaxFilterRingMiB)`, defaults for what is not there.
fn read_caps(service: Option<&Key>) -> (u32, u32) {
    let mut caps = (DEFAULT_ALL_RINGS_MIB, DEFAULT_FILTER_RING_MIB);
    if let Some(parameters) = service.and_then(|key| key.subkey(&PARAMETERS)) {
        if let Some(v) = parameters.dword(&MAX_RING_MIB) {
            caps.0 = v;
        }
        if let Some(v) = parameters.dword(&MAX_FILTER_RING_MIB) {
            caps.1 = v;
        }
    }
    caps
}
