//! Names the driver shares with its INF and its clients (from `ksring-api`), and its pool tags.

pub use ksring_api::*;

/// Pool tag of filter instances: `"KsRF"` as `!poolused` shows it.
pub const TAG_FILTER: u32 = u32::from_le_bytes(*b"KsRF");
/// Pool tag of pin instances.
pub const TAG_PIN: u32 = u32::from_le_bytes(*b"KsRP");
/// Pool tag of ring storage.
pub const TAG_RING: u32 = u32::from_le_bytes(*b"KsRR");
/// Pool tag of a ring's reference count (the small block that frees the storage when the filter
/// and every request naming it in place have let it go).
pub const TAG_RING_COUNT: u32 = u32::from_le_bytes(*b"KsRC");
/// Pool tag of IRP-source connections and their buffers.
pub const TAG_SOURCE: u32 = u32::from_le_bytes(*b"KsRS");
