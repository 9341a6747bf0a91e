//! The atomics the ring uses: `core`'s normally, loom's under `--cfg loom` so that loom can explore
//! every interleaving and memory-ordering outcome of the same code.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(loom))]
pub use core::sync::atomic::{AtomicU64, Ordering};
