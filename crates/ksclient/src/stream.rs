//! A verified stream through a KsRing filter: one thread writes patterned frames with metadata to
//! the input pin, another reads them back from the output pin, reassembles split frames and checks
//! every byte and every header field, with several requests in flight on each side. When the
//! writer is done it closes the input pin; the reader expects `ENDOFSTREAM` exactly after the last
//! frame.
//!
//! The frames and their checking are `ksrequest::pattern`'s (shared with the native client): frame
//! `k` is fully determined by the seed, so a run can stream any amount of data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ksabi::{IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, STATUS_CANCELLED, STATUS_SUCCESS};

use crate::backend::{Backend, Io, IoMemory, Pending};
use crate::filter::{Pin, Properties as _};
use crate::request::pattern::{CheckError, FrameCheck};
use crate::request::{HEADER_SIZE, Header};

/// What to stream.
#[derive(Clone, Debug)]
pub struct Config {
    /// Payload bytes to stream (the last frame may go past it).
    pub bytes: u64,
    /// Smallest frame (0 allowed: zero-length frames are legal).
    pub frame_min: usize,
    /// Largest frame.
    pub frame_max: usize,
    /// Smallest read buffer per header (at least 1).
    pub extent_min: usize,
    /// Largest read buffer per header.
    pub extent_max: usize,
    /// Frames per write request.
    pub frames_per_write: usize,
    /// Headers per read request.
    pub headers_per_read: usize,
    /// Write requests in flight.
    pub writes_in_flight: usize,
    /// Read requests in flight.
    pub reads_in_flight: usize,
    /// Seed of the frame pattern and the read sizes.
    pub seed: u64,
    /// Fill and check every payload byte. Off (for benchmarks), frames still carry their lengths
    /// and metadata, which are still checked, but their bytes are whatever the buffers held.
    pub verify_bytes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bytes: 256 << 20,
            frame_min: 0,
            frame_max: 64 << 10,
            extent_min: 1 << 10,
            extent_max: 64 << 10,
            frames_per_write: 8,
            headers_per_read: 8,
            writes_in_flight: 4,
            reads_in_flight: 4,
            seed: 0x5EED_CAFE,
            verify_bytes: true,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Payload bytes read and verified.
    pub bytes: u64,
    /// Frames read and verified.
    pub frames: u64,
    /// Read headers that carried part of a frame (`KSRING_OPTIONSF_CONTINUES`).
    pub parts: u64,
    /// Write requests completed.
    pub writes: u64,
    /// Read requests completed.
    pub reads: u64,
    /// From the first write to the end of stream.
    pub elapsed: Duration,
    /// Write-submitted → read-completed latencies of sampled frames, sorted, in nanoseconds.
    pub latencies_ns: Vec<u64>,
}

impl Report {
    /// Verified payload throughput in GB/s (10^9 bytes per second).
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // a rate for display
    pub fn gb_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e9
    }

    /// The `p`-th percentile latency (0..=100), if any frame was sampled.
    #[must_use]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    pub fn latency(&self, p: f64) -> Option<Duration> {
        let n = self.latencies_ns.len();
        if n == 0 {
            return None;
        }
        let i = ((p / 100.0) * (n - 1) as f64).round() as usize;
        Some(Duration::from_nanos(self.latencies_ns[i.min(n - 1)]))
    }
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamError {
    /// A write request failed or accepted fewer bytes than it carried.
    Write {
        /// The request's result.
        io: Io,
        /// Bytes it carried.
        expected: usize,
    },
    /// A read request failed.
    Read(Io),
    /// A frame's bytes or metadata differ from what was written.
    Mismatch(String),
    /// The stream ended early, late, or not at all.
    EndOfStream(String),
    /// The configuration cannot run.
    Config(String),
}

impl core::fmt::Display for StreamError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Write { io, expected } => write!(
                f,
                "write failed: {} with {} of {expected} bytes accepted",
                ksabi::StatusText(io.status),
                io.information
            ),
            Self::Read(io) => write!(f, "read failed: {}", ksabi::StatusText(io.status)),
            Self::Mismatch(m) => write!(f, "data mismatch: {m}"),
            Self::EndOfStream(m) => write!(f, "end of stream: {m}"),
            Self::Config(m) => write!(f, "bad configuration: {m}"),
        }
    }
}

impl std::error::Error for StreamError {}

/// Live counters for a progress display.
#[derive(Default)]
pub struct Progress {
    /// Payload bytes verified so far.
    pub bytes: AtomicU64,
    /// Frames verified so far.
    pub frames: AtomicU64,
}

pub use crate::request::pattern::{Plan, mix};

/// Frames sampled for latency: one in this many.
const LATENCY_SAMPLE: u64 = 64;

/// Streams `cfg.bytes` through the filter: writes to `input` (closed at the end, which ends the
/// stream) and reads from `output`, verifying everything.
///
/// # Errors
/// The first failure either side saw.
pub fn run(
    backend: &dyn Backend,
    input: Pin<'_>,
    output: &Pin<'_>,
    cfg: &Config,
    progress: &Progress,
) -> Result<Report, StreamError> {
    if cfg.extent_min == 0 || cfg.extent_max < cfg.extent_min || cfg.frame_max < cfg.frame_min {
        return Err(StreamError::Config("read extents must be >= 1 and ranges ordered".into()));
    }
    if cfg.frames_per_write == 0
        || cfg.headers_per_read == 0
        || cfg.writes_in_flight == 0
        || cfg.reads_in_flight == 0
    {
        return Err(StreamError::Config("counts must be >= 1".into()));
    }
    let plan = Plan::new(cfg.seed, cfg.frame_min, cfg.frame_max);
    let total = plan.frames_for(cfg.bytes);
    let submitted: Mutex<HashMap<u64, Instant>> = Mutex::new(HashMap::new());
    let abort = AtomicBool::new(false);
    let writer_first = AtomicBool::new(false);
    let start = Instant::now();
    let (written, read) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let r = write_all(backend, &input, &plan, total, cfg, &submitted, &abort);
            if r.is_err() {
                writer_first.store(!abort.swap(true, Ordering::SeqCst), Ordering::SeqCst);
                let _ = output.cancel();
            }
            // Closing the input ends the stream: the reader drains the ring, then sees ENDOFSTREAM.
            drop(input);
            r
        });
        let r = read_all(backend, output, &plan, total, cfg, &submitted, &abort, progress);
        if r.is_err() {
            abort.store(true, Ordering::SeqCst);
        }
        (writer.join().unwrap_or_else(|_| Err(StreamError::Config("writer panicked".into()))), r)
    });
    // When both sides failed, the first failure is the cause (the other side only stalled or was
    // cancelled because of it).
    if let (Err(w), Err(r)) = (&written, &read) {
        return Err(if writer_first.load(Ordering::SeqCst) { w.clone() } else { r.clone() });
    }
    let writes = written?;
    let mut report = read?;
    report.writes = writes;
    report.elapsed = start.elapsed();
    report.latencies_ns.sort_unstable();
    Ok(report)
}

struct WriteSlot {
    memory: Box<dyn IoMemory>,
    pending: Option<(Box<dyn Pending>, usize)>,
}

fn finish_write(slot: &mut WriteSlot, abort: &AtomicBool) -> Result<(), StreamError> {
    if let Some((mut p, expected)) = slot.pending.take() {
        let io = p.wait();
        let cancelled = io.status == STATUS_CANCELLED && abort.load(Ordering::SeqCst);
        if !cancelled && (io.status != STATUS_SUCCESS || io.information != expected) {
            return Err(StreamError::Write { io, expected });
        }
    }
    Ok(())
}

fn write_all(
    backend: &dyn Backend,
    input: &Pin<'_>,
    plan: &Plan,
    total: u64,
    cfg: &Config,
    submitted: &Mutex<HashMap<u64, Instant>>,
    abort: &AtomicBool,
) -> Result<u64, StreamError> {
    let headers_len = cfg.frames_per_write * HEADER_SIZE;
    let mut slots: Vec<WriteSlot> = (0..cfg.writes_in_flight)
        .map(|_| WriteSlot {
            memory: backend.alloc(headers_len + cfg.frames_per_write * cfg.frame_max),
            pending: None,
        })
        .collect();
    let mut k = 0u64;
    let mut requests = 0u64;
    let mut result = Ok(());
    'outer: while k < total && !abort.load(Ordering::SeqCst) {
        let slot = &mut slots[usize::try_from(requests).unwrap_or(0) % cfg.writes_in_flight];
        if let Err(e) = finish_write(slot, abort) {
            result = Err(e);
            break 'outer;
        }
        let base = slot.memory.as_ptr() as u64;
        let bytes = slot.memory.bytes_mut();
        let (headers, data) = bytes.split_at_mut(headers_len);
        let mut n = 0;
        let mut at = 0;
        let mut payload = 0;
        while n < cfg.frames_per_write && k < total {
            let mut h = plan.header(k);
            let len = h.data_used as usize;
            if cfg.verify_bytes {
                plan.fill(k, 0, &mut data[at..at + len]);
            }
            h.data = base + (headers_len + at) as u64;
            #[allow(clippy::cast_possible_truncation)]
            h.write(headers, n * HEADER_SIZE, HEADER_SIZE as u32);
            if k.is_multiple_of(LATENCY_SAMPLE) {
                submitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(k, Instant::now());
            }
            at += len;
            payload += len;
            n += 1;
            k += 1;
        }
        let ptr = slot.memory.as_ptr();
        // SAFETY: the slot's memory stays allocated and untouched until `finish_write` waits for
        // the request; the headers point into the same memory.
        let pending = unsafe {
            backend.submit(input.handle(), IOCTL_KS_WRITE_STREAM, core::ptr::null(), 0, ptr, n * HEADER_SIZE)
        };
        slot.pending = Some((pending, payload));
        requests += 1;
    }
    for slot in &mut slots {
        let r = finish_write(slot, abort);
        if result.is_ok() {
            result = r;
        }
    }
    result.map(|()| requests)
}

struct ReadSlot {
    memory: Box<dyn IoMemory>,
    pending: Option<Box<dyn Pending>>,
}

/// Reassembles frames from read headers and checks them against the plan (`FrameCheck`), and
/// keeps the report.
struct Checker {
    check: FrameCheck,
    report: Report,
}

impl Checker {
    fn header(&mut self, h: &Header, data: &[u8]) -> Result<(), StreamError> {
        let r = self.check.header(h, data).map_err(|e| match e {
            CheckError::Mismatch(m) => StreamError::Mismatch(m),
            CheckError::EndOfStream(m) => StreamError::EndOfStream(m),
        });
        (self.report.frames, self.report.bytes, self.report.parts) =
            (self.check.frames, self.check.bytes, self.check.parts);
        r
    }
}

/// The headers a completed read returned, checked in order.
fn check_read(
    checker: &mut Checker,
    memory: &dyn IoMemory,
    io: Io,
    submitted: &Mutex<HashMap<u64, Instant>>,
    progress: &Progress,
) -> Result<(), StreamError> {
    let bytes = memory.bytes();
    let base = memory.as_ptr() as u64;
    let mut at = 0;
    while at < io.information {
        let (h, size) = Header::read(bytes, at).ok_or(StreamError::Read(io))?;
        let from = usize::try_from(h.data.wrapping_sub(base)).unwrap_or(usize::MAX);
        let data = bytes
            .get(from..from.saturating_add(h.data_used as usize))
            .ok_or_else(|| StreamError::Mismatch(format!("header Data moved: {h:?}")))?;
        let before = checker.check.k;
        checker.header(&h, data)?;
        if checker.check.k != before {
            if before.is_multiple_of(LATENCY_SAMPLE)
                && let Some(t) =
                    submitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&before)
            {
                checker.report.latencies_ns.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
            }
            progress.frames.store(checker.report.frames, Ordering::Relaxed);
            progress.bytes.store(checker.report.bytes, Ordering::Relaxed);
        }
        at += (size as usize).max(HEADER_SIZE);
    }
    Ok(())
}

/// Puts a read request with random buffer sizes in flight on `slot`.
fn submit_read(backend: &dyn Backend, output: &Pin<'_>, cfg: &Config, rng: &mut u64, slot: &mut ReadSlot) {
    let headers_len = cfg.headers_per_read * HEADER_SIZE;
    let base = slot.memory.as_ptr() as u64;
    let bytes = slot.memory.bytes_mut();
    let mut at = headers_len;
    for i in 0..cfg.headers_per_read {
        *rng = mix(*rng);
        let span = (cfg.extent_max - cfg.extent_min + 1) as u64;
        let extent = cfg.extent_min + usize::try_from(*rng % span).unwrap_or(0);
        let h = Header {
            data: base + at as u64,
            frame_extent: u32::try_from(extent).unwrap_or(u32::MAX),
            ..Header::default()
        };
        #[allow(clippy::cast_possible_truncation)] // 56
        h.write(bytes, i * HEADER_SIZE, HEADER_SIZE as u32);
        at += extent;
    }
    let ptr = slot.memory.as_ptr();
    // SAFETY: the slot's memory stays allocated and untouched until the request is waited for.
    slot.pending = Some(unsafe {
        backend.submit(output.handle(), IOCTL_KS_READ_STREAM, core::ptr::null(), 0, ptr, headers_len)
    });
}

#[allow(clippy::too_many_arguments)]
fn read_all(
    backend: &dyn Backend,
    output: &Pin<'_>,
    plan: &Plan,
    total: u64,
    cfg: &Config,
    submitted: &Mutex<HashMap<u64, Instant>>,
    abort: &AtomicBool,
    progress: &Progress,
) -> Result<Report, StreamError> {
    let mut rng = mix(cfg.seed ^ 0xEAD);
    let mut slots: Vec<ReadSlot> = (0..cfg.reads_in_flight)
        .map(|_| ReadSlot {
            memory: backend.alloc(cfg.headers_per_read * (HEADER_SIZE + cfg.extent_max)),
            pending: None,
        })
        .collect();
    for slot in &mut slots {
        submit_read(backend, output, cfg, &mut rng, slot);
    }
    let mut checker =
        Checker { check: FrameCheck::new(*plan, total, cfg.verify_bytes), report: Report::default() };
    let mut result = Ok(());
    let mut i = 0usize;
    while !checker.check.ended && result.is_ok() {
        let slot = &mut slots[i % cfg.reads_in_flight];
        i += 1;
        let Some(mut pending) = slot.pending.take() else { break };
        let io = pending.wait();
        checker.report.reads += 1;
        result = if io.status == STATUS_SUCCESS {
            check_read(&mut checker, slot.memory.as_ref(), io, submitted, progress)
        } else if abort.load(Ordering::SeqCst) && io.status == STATUS_CANCELLED {
            Err(StreamError::Config("aborted".into()))
        } else {
            Err(StreamError::Read(io))
        };
        if result.is_err() {
            abort.store(true, Ordering::SeqCst);
            let _ = output.cancel();
        } else if !checker.check.ended {
            submit_read(backend, output, cfg, &mut rng, slot);
        }
    }
    // Every read still in flight completes: with ENDOFSTREAM after a clean end, cancelled otherwise.
    for slot in &mut slots {
        if let Some(mut p) = slot.pending.take() {
            let io = p.wait();
            checker.report.reads += 1;
            if result.is_ok() {
                result = if io.status == STATUS_SUCCESS {
                    check_read(&mut checker, slot.memory.as_ref(), io, submitted, progress)
                } else {
                    Err(StreamError::Read(io))
                };
            }
        }
    }
    if result.is_ok() && !checker.check.ended {
        result = Err(StreamError::EndOfStream("no ENDOFSTREAM".into()));
    }
    result.map(|()| checker.report)
}
