//! The verified stream's pattern and its checker, shared by ksclient's stream (threads, any
//! backend) and the native client's (one thread, overlapped requests).
//!
//! Frame `k` is fully determined by the seed: its length, its bytes (a scrambled arithmetic
//! sequence of 64-bit words, every word of a frame different, see [`Plan::fill`]), its options
//! flags, type-specific flags, time and duration. Nothing is stored per frame, so a run can stream
//! any amount of data. [`FrameCheck`] reassembles split frames from read headers and checks every
//! byte and every header field against the [`Plan`] — in place, in the request's own buffer, with
//! no allocation or copy per frame: generating and comparing take an add, two shifts and two xors
//! per word, which the compiler turns into vector code, so the check keeps up with the ring.

use alloc::format;
use alloc::string::String;

use ksabi::KsStreamOptions;
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use crate::Header;

/// `SplitMix64`: a fast, well-mixed hash of a 64-bit value.
#[must_use]
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A bijection of 64-bit words that spreads an arithmetic sequence's low bits upward (so that
/// consecutive words differ in every byte, not only the lowest).
#[inline]
fn scramble(x: u64) -> u64 {
    let y = x ^ (x >> 29);
    y ^ (y << 23)
}

/// The word generator of one frame.
#[derive(Clone, Copy)]
struct Words {
    base: u64,
    step: u64,
}

impl Words {
    /// The generator's state for word `i`.
    #[allow(clippy::cast_possible_truncation)] // word indexes of a frame fit a u64
    fn at(self, i: usize) -> u64 {
        self.base.wrapping_add((i as u64).wrapping_mul(self.step))
    }
}

/// Bytes generated or compared as one block.
const BLOCK: usize = 256;

/// Word `j` of a block is generated from `x + offsets[j]` (`j * step`): independent lanes with no
/// carried chain, which the compiler vectorises; the next block starts at `x + stride`.
struct Lanes {
    offsets: [u64; BLOCK / 8],
    stride: u64,
}

impl Lanes {
    fn new(step: u64) -> Self {
        let mut offsets = [0u64; BLOCK / 8];
        let mut o = 0u64;
        for slot in &mut offsets {
            *slot = o;
            o = o.wrapping_add(step);
        }
        Self { offsets, stride: o }
    }
}

/// The options flags frames are written with (never `ENDOFSTREAM`, which ends a stream, nor
/// `CONTINUES`, which the driver sets on parts).
const FRAME_FLAGS: [u32; 5] = [
    0,
    KsStreamOptions::SPLICEPOINT.bits(),
    KsStreamOptions::DATADISCONTINUITY.bits(),
    KsStreamOptions::TIMEVALID.bits() | KsStreamOptions::DURATIONVALID.bits(),
    KsStreamOptions::PREROLL.bits(),
];

/// The frames of a run, frame by frame.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    seed: u64,
    min: usize,
    max: usize,
}

impl Plan {
    /// The plan of frames between `min` and `max` bytes.
    #[must_use]
    pub fn new(seed: u64, min: usize, max: usize) -> Self {
        Self { seed, min, max: max.max(min) }
    }

    /// Frame `k`'s length.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // the modulus is a usize
    pub fn len(&self, k: u64) -> usize {
        let span = (self.max - self.min) as u64 + 1;
        self.min + (mix(self.seed ^ k.wrapping_mul(3)) % span) as usize
    }

    /// Frame `k`'s header fields (without the buffer).
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    pub fn header(&self, k: u64) -> Header {
        let h = mix(self.seed.rotate_left(17) ^ k);
        let len = self.len(k) as u32;
        Header {
            data: 0,
            frame_extent: len,
            data_used: len,
            options_flags: FRAME_FLAGS[(h % FRAME_FLAGS.len() as u64) as usize],
            type_specific_flags: (h >> 8) as u32,
            time: k as i64 * 10_000,
            numerator: 1,
            denominator: 10_000_000,
            duration: i64::from(len),
        }
    }

    /// Frame `k`'s bytes from `offset` on, into `out`.
    ///
    /// Word `i` (bytes `8i..8i+8`, little-endian) of frame `k` is `scramble(base + i * step)`, with
    /// `base` and an odd `step` hashed from the seed and `k`: within a frame every word differs
    /// (an odd step never repeats before 2^64 words and `scramble` is a bijection), and frames
    /// differ by their `base`. One add, a shift and a xor per word: the compiler generates and
    /// compares it a vector at a time.
    pub fn fill(&self, k: u64, offset: usize, out: &mut [u8]) {
        let g = self.words(k);
        let skip = offset % 8;
        let mut x = g.at(offset / 8);
        let head = if skip == 0 { 0 } else { (8 - skip).min(out.len()) };
        let (first, rest) = out.split_at_mut(head);
        if head > 0 {
            first.copy_from_slice(&scramble(x).to_le_bytes()[skip..skip + head]);
            x = x.wrapping_add(g.step);
        }
        let lanes = Lanes::new(g.step);
        let mut blocks = rest.chunks_exact_mut(BLOCK);
        for block in &mut blocks {
            for (chunk, o) in block.chunks_exact_mut(8).zip(&lanes.offsets) {
                chunk.copy_from_slice(&scramble(x.wrapping_add(*o)).to_le_bytes());
            }
            x = x.wrapping_add(lanes.stride);
        }
        let mut chunks = blocks.into_remainder().chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&scramble(x).to_le_bytes());
            x = x.wrapping_add(g.step);
        }
        let tail = chunks.into_remainder();
        let n = tail.len();
        tail.copy_from_slice(&scramble(x).to_le_bytes()[..n]);
    }

    fn words(&self, k: u64) -> Words {
        let base = mix(self.seed ^ k.rotate_left(32) ^ 0xD6E8_FEB8_6659_FD93);
        Words { base, step: mix(base) | 1 }
    }

    /// The first offset where `got` (frame `k`'s bytes from `offset`) differs from the pattern.
    /// Compared in place, a block of words at a time; only a block that differs is searched.
    #[must_use]
    pub fn first_difference(&self, k: u64, offset: usize, got: &[u8]) -> Option<usize> {
        let words = self.words(k);
        let skip = offset % 8;
        let mut x = words.at(offset / 8);
        let head = if skip == 0 { 0 } else { (8 - skip).min(got.len()) };
        let (first, rest) = got.split_at(head);
        if head > 0 {
            let want = &scramble(x).to_le_bytes()[skip..skip + head];
            if let Some(i) = first.iter().zip(want).position(|(a, b)| a != b) {
                return Some(offset + i);
            }
            x = x.wrapping_add(words.step);
        }
        let mut at = offset + head;
        let mut blocks = rest.chunks_exact(BLOCK);
        let mut want = [0u64; BLOCK / 8];
        let mut got_words = [0u64; BLOCK / 8];
        let lanes = Lanes::new(words.step);
        for block in &mut blocks {
            // Generate the block's words, then compare: two loops the compiler vectorises.
            for (w, o) in want.iter_mut().zip(&lanes.offsets) {
                *w = scramble(x.wrapping_add(*o));
            }
            let y = x.wrapping_add(lanes.stride);
            for (word, chunk) in got_words.iter_mut().zip(block.chunks_exact(8)) {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                *word = u64::from_le_bytes(w);
            }
            let diff = got_words.iter().zip(&want).fold(0u64, |d, (a, b)| d | (a ^ b));
            if diff != 0 {
                return Self::locate(block, x, words.step, at);
            }
            x = y;
            at += BLOCK;
        }
        Self::locate(blocks.remainder(), x, words.step, at)
    }

    /// The first byte of `got` (bytes from word-aligned `at`, whose first word is generated from
    /// `x`) that differs, as a frame offset.
    fn locate(got: &[u8], mut x: u64, step: u64, at: usize) -> Option<usize> {
        for (n, chunk) in got.chunks(8).enumerate() {
            let want = scramble(x).to_le_bytes();
            if let Some(i) = chunk.iter().zip(&want).position(|(a, b)| a != b) {
                return Some(at + n * 8 + i);
            }
            x = x.wrapping_add(step);
        }
        None
    }

    /// How many frames carry at least `bytes` of payload.
    #[must_use]
    pub fn frames_for(&self, bytes: u64) -> u64 {
        let mut total = 0u64;
        let mut k = 0;
        while total < bytes {
            total += self.len(k) as u64;
            k += 1;
        }
        k
    }
}

/// Why a read header does not fit the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckError {
    /// A frame's bytes or metadata differ from what was written.
    Mismatch(String),
    /// The stream ended early, or went on after its end.
    EndOfStream(String),
}

/// Reassembles frames from read headers, in order, and checks them against a plan of `total`
/// frames that ends with one `ENDOFSTREAM` header.
#[derive(Clone, Debug)]
pub struct FrameCheck {
    plan: Plan,
    verify_bytes: bool,
    total: u64,
    /// The next whole frame expected.
    pub k: u64,
    /// Bytes of frame `k` already seen in parts.
    partial: usize,
    /// Whole frames checked.
    pub frames: u64,
    /// Payload bytes of whole frames checked.
    pub bytes: u64,
    /// Headers that carried part of a frame (`KSRING_OPTIONSF_CONTINUES`).
    pub parts: u64,
    /// `ENDOFSTREAM` seen after the last frame.
    pub ended: bool,
}

impl FrameCheck {
    /// A checker for `total` frames of `plan`; `verify_bytes` off checks lengths and metadata only.
    #[must_use]
    pub fn new(plan: Plan, total: u64, verify_bytes: bool) -> Self {
        Self { plan, verify_bytes, total, k: 0, partial: 0, frames: 0, bytes: 0, parts: 0, ended: false }
    }

    /// Checks the next read header `h`, whose payload is `data` (`DataUsed` bytes).
    ///
    /// # Errors
    /// What differs from the plan.
    pub fn header(&mut self, h: &Header, data: &[u8]) -> Result<(), CheckError> {
        let continues = h.options_flags & KSRING_OPTIONSF_CONTINUES != 0;
        let eos = h.options_flags & KsStreamOptions::ENDOFSTREAM.bits() != 0;
        if self.ended {
            return if eos && h.data_used == 0 {
                Ok(())
            } else {
                Err(CheckError::EndOfStream("data after ENDOFSTREAM".into()))
            };
        }
        if eos && h.data_used == 0 && !continues {
            if self.k == self.total && self.partial == 0 {
                self.ended = true;
                return Ok(());
            }
            return Err(CheckError::EndOfStream(format!(
                "ENDOFSTREAM after {} of {} frames ({} bytes of a partial frame)",
                self.k, self.total, self.partial
            )));
        }
        if self.k >= self.total {
            return Err(CheckError::EndOfStream(format!("frame beyond the {} written", self.total)));
        }
        let want = self.plan.header(self.k);
        let flags = h.options_flags & !KSRING_OPTIONSF_CONTINUES;
        if flags != want.options_flags
            || h.type_specific_flags != want.type_specific_flags
            || (h.time, h.numerator, h.denominator, h.duration)
                != (want.time, want.numerator, want.denominator, want.duration)
        {
            return Err(CheckError::Mismatch(format!("frame {}: header {h:?}, expected {want:?}", self.k)));
        }
        let offset = self.partial;
        if self.verify_bytes
            && let Some(at) = self.plan.first_difference(self.k, offset, data)
        {
            return Err(CheckError::Mismatch(format!("frame {}: byte {at} differs", self.k)));
        }
        let have = offset + data.len();
        if continues {
            self.parts += 1;
            self.partial = have;
            if have >= want.data_used as usize {
                return Err(CheckError::Mismatch(format!(
                    "frame {}: a part says more follows at its end",
                    self.k
                )));
            }
            return Ok(());
        }
        if have != want.data_used as usize {
            return Err(CheckError::Mismatch(format!(
                "frame {}: {have} bytes, expected {}",
                self.k, want.data_used
            )));
        }
        self.partial = 0;
        self.frames += 1;
        self.bytes += have as u64;
        self.k += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(plan: &Plan, k: u64) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec![0; plan.len(k)];
        plan.fill(k, 0, &mut v);
        v
    }

    #[test]
    fn whole_and_split_frames_then_end() {
        let plan = Plan::new(7, 1, 300);
        let mut c = FrameCheck::new(plan, 2, true);
        let f0 = bytes_of(&plan, 0);
        c.header(&plan.header(0), &f0).unwrap();
        let f1 = bytes_of(&plan, 1);
        let cut = f1.len() / 2;
        let mut first = plan.header(1);
        first.options_flags |= KSRING_OPTIONSF_CONTINUES;
        c.header(&first, &f1[..cut]).unwrap();
        c.header(&plan.header(1), &f1[cut..]).unwrap();
        let eos = Header { options_flags: KsStreamOptions::ENDOFSTREAM.bits(), ..Header::default() };
        c.header(&eos, &[]).unwrap();
        assert!(c.ended);
        assert_eq!((c.frames, c.parts, c.bytes), (2, 1, (f0.len() + f1.len()) as u64));
    }

    /// Frames 0..n laid end to end, with their offsets.
    fn stream_of(plan: &Plan, n: u64) -> (alloc::vec::Vec<u8>, alloc::vec::Vec<usize>) {
        let mut all = alloc::vec::Vec::new();
        let mut starts = alloc::vec::Vec::new();
        for k in 0..n {
            starts.push(all.len());
            all.extend_from_slice(&bytes_of(plan, k));
        }
        (all, starts)
    }

    /// Checks `data` as frames 0.. read whole, one header per frame of the plan's lengths.
    fn check_stream(plan: &Plan, n: u64, data: &[u8]) -> Result<(), CheckError> {
        let mut c = FrameCheck::new(*plan, n, true);
        let mut at = 0;
        for k in 0..n {
            let len = plan.len(k);
            let got = data.get(at..at + len).ok_or(CheckError::EndOfStream("short".into()))?;
            c.header(&plan.header(k), got)?;
            at += len;
        }
        if at == data.len() {
            Ok(())
        } else {
            Err(CheckError::EndOfStream("data after the last frame".into()))
        }
    }

    #[test]
    fn fill_and_check_agree_at_every_offset_and_length() {
        let plan = Plan::new(0x1234, 0, 700);
        for k in 0..8 {
            let whole = bytes_of(&plan, k);
            for offset in 0..whole.len().min(40) {
                for len in [0, 1, 7, 8, 9, 63, 300] {
                    let end = (offset + len).min(whole.len());
                    let mut part = alloc::vec![0u8; end - offset];
                    plan.fill(k, offset, &mut part);
                    assert_eq!(part, whole[offset..end], "frame {k} offset {offset} len {len}");
                    assert_eq!(plan.first_difference(k, offset, &whole[offset..end]), None);
                }
            }
        }
    }

    #[test]
    fn every_changed_byte_is_found_where_it_is() {
        let plan = Plan::new(0xBEEF, 1000, 1000);
        let f = bytes_of(&plan, 3);
        for offset in [0, 1, 5, 8, 13] {
            for at in offset..f.len() {
                for bit in [0x01, 0x80] {
                    let mut g = f[offset..].to_vec();
                    g[at - offset] ^= bit;
                    assert_eq!(plan.first_difference(3, offset, &g), Some(at));
                }
            }
        }
    }

    #[test]
    fn a_lost_duplicated_or_reordered_byte_is_found() {
        let plan = Plan::new(0x00C0_FFEE, 1, 2000);
        let (all, starts) = stream_of(&plan, 12);
        assert!(check_stream(&plan, 12, &all).is_ok());
        for at in [0, 1, 7, 8, 100, starts[5], starts[5] + 3, all.len() - 1] {
            let mut lost = all.clone();
            lost.remove(at);
            assert!(check_stream(&plan, 12, &lost).is_err(), "byte {at} lost");
            let mut duplicated = all.clone();
            duplicated.insert(at, all[at]);
            assert!(check_stream(&plan, 12, &duplicated).is_err(), "byte {at} duplicated");
            if at + 1 < all.len() && all[at] != all[at + 1] {
                let mut swapped = all.clone();
                swapped.swap(at, at + 1);
                assert!(check_stream(&plan, 12, &swapped).is_err(), "bytes {at} and {} swapped", at + 1);
            }
        }
    }

    #[test]
    fn swapped_words_and_frames_are_found() {
        let plan = Plan::new(77, 64, 64);
        let (all, _) = stream_of(&plan, 4);
        // Two words of one frame swapped.
        let mut words = all.clone();
        let (lo, hi) = words.split_at_mut(16);
        lo[8..16].swap_with_slice(&mut hi[..8]);
        assert!(check_stream(&plan, 4, &words).is_err());
        // Two whole frames swapped (same lengths): their bytes name them.
        let mut frames = all.clone();
        let (lo, hi) = frames.split_at_mut(128);
        lo[64..128].swap_with_slice(&mut hi[..64]);
        assert!(check_stream(&plan, 4, &frames).is_err());
        // A frame repeated in place of the next.
        let mut repeated = all.clone();
        repeated.copy_within(0..64, 64);
        assert!(check_stream(&plan, 4, &repeated).is_err());
        // Every word of a frame differs from every other word of the first frames.
        let mut seen = alloc::collections::BTreeSet::new();
        for chunk in all.chunks_exact(8) {
            assert!(seen.insert(chunk.to_vec()), "a word repeats");
        }
    }

    #[test]
    fn every_header_field_is_checked() {
        type Edit = fn(&mut Header);
        let plan = Plan::new(5, 10, 10);
        let f0 = bytes_of(&plan, 0);
        let edits: [(&str, Edit); 7] = [
            ("options", |h| h.options_flags ^= KsStreamOptions::SPLICEPOINT.bits()),
            ("type-specific", |h| h.type_specific_flags ^= 1),
            ("time", |h| h.time += 1),
            ("numerator", |h| h.numerator += 1),
            ("denominator", |h| h.denominator += 1),
            ("duration", |h| h.duration += 1),
            ("length", |h| h.data_used -= 1),
        ];
        for (what, edit) in edits {
            let mut c = FrameCheck::new(plan, 1, true);
            let mut h = plan.header(0);
            edit(&mut h);
            let data = &f0[..h.data_used as usize];
            assert!(c.header(&h, data).is_err(), "{what} not checked");
        }
    }

    #[test]
    fn a_wrong_byte_or_an_early_end_is_reported() {
        let plan = Plan::new(9, 10, 10);
        let mut c = FrameCheck::new(plan, 2, true);
        let mut f0 = bytes_of(&plan, 0);
        f0[3] ^= 1;
        assert_eq!(
            c.header(&plan.header(0), &f0),
            Err(CheckError::Mismatch("frame 0: byte 3 differs".into()))
        );
        let mut c = FrameCheck::new(plan, 2, true);
        let eos = Header { options_flags: KsStreamOptions::ENDOFSTREAM.bits(), ..Header::default() };
        assert!(matches!(c.header(&eos, &[]), Err(CheckError::EndOfStream(_))));
    }
}
