//! Helpers the ring's integration tests share: 8-aligned storage, frame metadata and payload
//! patterns derived from a seed, record sizes, the ring's fill.
#![allow(dead_code)] // each test file uses some of them
#![allow(clippy::cast_possible_truncation)] // patterns truncate counters to bytes on purpose

use framering::{Consumer, FrameMeta, HEADER_SIZE, Producer, RECORD_ALIGN};

/// Storage with a known 8-byte alignment (a `Vec<u64>` viewed as bytes).
pub struct Aligned(Vec<u64>);

impl Aligned {
    pub fn new(bytes: usize) -> Self {
        Self(vec![0; bytes.div_ceil(8)])
    }

    /// All of it.
    pub fn all(&mut self) -> &mut [u8] {
        let len = std::mem::size_of_val(&self.0[..]);
        // SAFETY: u64 has no padding and any byte pattern is a valid u8.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), len) }
    }

    /// Its first `len` bytes.
    pub fn bytes(&mut self, len: usize) -> &mut [u8] {
        &mut self.all()[..len]
    }
}

/// Metadata that differs in every field from one `n` to the next.
pub fn meta(n: u32) -> FrameMeta {
    FrameMeta {
        options_flags: n,
        type_specific_flags: !n,
        presentation_time: i64::from(n) * 1000,
        numerator: 1,
        denominator: 10_000_000,
        duration: 333_667,
    }
}

/// `len` payload bytes from `seed` (not periodic within 256 bytes).
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed as usize * 31 + i * 7 + (i >> 8)) as u8).collect()
}

/// Record bytes a frame of `len` payload bytes takes.
pub fn record(len: usize) -> usize {
    (HEADER_SIZE + len).next_multiple_of(RECORD_ALIGN)
}

/// Bytes of the ring in use (frames, headers, padding, gaps).
pub fn used(tx: &Producer<'_>) -> u64 {
    tx.core().stats().used
}

/// Reads the oldest frame whole, checks its payload and metadata, and releases it.
pub fn read_one(rx: &mut Consumer<'_>, payload: &[u8], meta: FrameMeta) {
    let f = rx.read().expect("a frame");
    assert_eq!((f.payload(), f.meta()), (payload, meta));
    f.release();
}
