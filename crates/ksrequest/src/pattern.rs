//! The verified stream's pattern and its checker, shared by ksclient's stream (threads, any
//! backend) and the native client's (one thread, overlapped requests).
//!
//! Frame `k` is fully determined by the seed: its length, its bytes (an xorshift stream), its
//! options flags, type-specific flags, time and duration. Nothing is stored per frame, so a run
//! can stream any amount of data. [`FrameCheck`] reassembles split frames from read headers and
//! checks every byte and every header field against the [`Plan`].

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
    pub fn fill(&self, k: u64, offset: usize, out: &mut [u8]) {
        let mut word = offset / 8;
        let mut at = 0;
        let skip = offset % 8;
        while at < out.len() {
            let bytes = self.word(k, word).to_le_bytes();
            let from = if at == 0 { skip } else { 0 };
            let n = (8 - from).min(out.len() - at);
            out[at..at + n].copy_from_slice(&bytes[from..from + n]);
            at += n;
            word += 1;
        }
    }

    fn word(&self, k: u64, i: usize) -> u64 {
        mix(self.seed ^ k.rotate_left(32) ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }

    /// The first offset where `got` (frame `k`'s bytes from `offset`) differs from the pattern.
    #[must_use]
    pub fn first_difference(&self, k: u64, offset: usize, got: &[u8]) -> Option<usize> {
        let mut expected = [0u8; 4096];
        let mut at = 0;
        while at < got.len() {
            let n = (got.len() - at).min(expected.len());
            self.fill(k, offset + at, &mut expected[..n]);
            if let Some(i) = got[at..at + n].iter().zip(&expected[..n]).position(|(a, b)| a != b) {
                return Some(offset + at + i);
            }
            at += n;
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
