//! # framering — a lock-free ring of frames
//!
//! A single-producer, single-consumer ring of variable-size **frames** (a payload plus
//! [`FrameMeta`]: the options flags, type-specific flags, presentation time and duration of a KS
//! stream header), over storage the caller supplies. It is the core of ksring's stream path: the
//! input pin produces, the output pin consumes.
//!
//! - `no_std`, no allocation, no locks. The storage is any 8-byte-aligned region
//!   ([`RECORD_ALIGN`]) of [`MIN_CAPACITY`]..=[`MAX_CAPACITY`] bytes, a multiple of 8 — a `Vec` in a
//!   test, non-paged pool in the driver. Capacities need not be powers of two.
//! - A frame is written into one contiguous region ([`Producer::reserve`], fill, [`WriteGrant::commit`])
//!   and read as one contiguous slice ([`Consumer::read`]); it never wraps. A reader may take a
//!   prefix ([`ReadGrant::consume`]); the rest stays, marked as a continuation.
//! - A frame larger than the ring can ever hold fails at reserve time ([`ReserveError::TooLarge`]),
//!   never hangs. Zero-length frames are legal.
//! - Each half caches the other's index and reloads it only when the cache says full or empty;
//!   the producer's and consumer's shared state sit on separate cache lines; the orderings are
//!   explicit Acquire/Release, with the invariant written beside each atomic ([`RingCore`]).
//! - Always-on statistics ([`RingStats`]) and [`reset`] for the owner of both halves.
//!
//! ```
//! use framering::{FrameMeta, RingCore};
//! let mut core = RingCore::new();
//! let mut storage = vec![0u8; 4096];
//! let (mut tx, mut rx) = core.split(&mut storage).unwrap();
//! tx.push(b"hello", &FrameMeta { options_flags: 0x200, ..FrameMeta::default() }).unwrap();
//! let frame = rx.read().unwrap();
//! assert_eq!(frame.payload(), b"hello");
//! assert_eq!(frame.meta().options_flags, 0x200);
//! assert!(frame.consume(5));
//! ```
#![cfg_attr(not(loom), no_std)]

mod consumer;
mod producer;
mod record;
mod ring;
mod storage;
mod sync;

pub use consumer::{Consumer, Hold, ReadGrant, ReleaseError, Taken};
pub use producer::{CommitError, Producer, Reservation, ReserveError, WriteGrant};
pub use record::{FrameMeta, HEADER_SIZE, RECORD_ALIGN};
pub use ring::{Discarded, MAX_CAPACITY, MIN_CAPACITY, NotSameRing, RingCore, RingError, RingStats, reset};
