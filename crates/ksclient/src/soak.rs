//! A soak: streaming while a third party keeps disturbing it — cancels on both pins, resets,
//! STOP/RUN cycles — with exact accounting at the end.
//!
//! Data may be lost to a STOP or a reset (the driver counts it as discarded), but never reordered,
//! duplicated or invented, and every byte is accounted for. To check that without knowing which
//! bytes a disturbance dropped, every 8-byte word written carries its own serial number: the
//! reader sees serials strictly increasing, with gaps only where data was discarded. Frame sizes
//! and read buffers are multiples of 8, so no word is ever split.
//!
//! At the end the input pin closes, the reader drains to `ENDOFSTREAM`, and the driver's counters
//! must equal the client's: bytes accepted (the writes' `Information`, success or cancelled), bytes
//! delivered (the reads' `DataUsed`), and accepted = delivered + discarded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ksabi::{
    KSRESET_BEGIN, KSRESET_END, KSSTATE_RUN, KSSTATE_STOP, KsStreamOptions, STATUS_CANCELLED,
    STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS, StatusText,
};

use crate::backend::Backend;
use crate::filter::{Filter, Pin, Properties};
use crate::io::InFlight;
use crate::request::Header;
use crate::stream::mix;

/// How to soak.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long to stream.
    pub duration: Duration,
    /// Largest frame (rounded down to 8).
    pub frame_max: usize,
    /// Largest read buffer (rounded down to 8, at least 8).
    pub extent_max: usize,
    /// Mean pause between disturbances.
    pub disturb_every: Duration,
    /// Seed of sizes and disturbances.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(5),
            frame_max: 16 << 10,
            extent_max: 16 << 10,
            disturb_every: Duration::from_millis(5),
            seed: 0x50A4,
        }
    }
}

/// What a soak did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes the driver accepted, by the writes' own count.
    pub accepted: u64,
    /// Bytes the reads delivered.
    pub delivered: u64,
    /// Bytes the driver says it discarded.
    pub discarded: u64,
    /// Write requests completed.
    pub writes: u64,
    /// Read requests completed.
    pub reads: u64,
    /// Cancels, resets and STOP/RUN cycles issued.
    pub disturbances: u64,
}

const MASK: u64 = 0xA5A5_5A5A_F00D_BEEF;

fn round8(n: usize) -> usize {
    (n / 8).max(1) * 8
}

/// Runs the soak on `filter`'s two pins (both in RUN, connected as byte streams). Consumes the
/// input pin: closing it ends the stream.
///
/// # Errors
/// The first invariant that broke, or a request that failed in a way no disturbance explains.
pub fn run(
    backend: &dyn Backend,
    filter: &Filter<'_>,
    input: Pin<'_>,
    output: &Pin<'_>,
    cfg: &Config,
) -> Result<Report, String> {
    let stop = AtomicBool::new(false);
    let disturbances = AtomicU64::new(0);
    let (written, read) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let r = write_until(backend, &input, cfg, &stop);
            drop(input); // ends the stream: the reader drains, then sees ENDOFSTREAM
            r
        });
        let reader = s.spawn(|| read_to_end(backend, output, cfg));
        disturb(output, cfg, &disturbances);
        stop.store(true, Ordering::SeqCst);
        (
            writer.join().unwrap_or_else(|_| Err("writer panicked".into())),
            reader.join().unwrap_or_else(|_| Err("reader panicked".into())),
        )
    });
    let (accepted, writes) = written?;
    let (delivered, reads) = read?;
    let s = filter.statistics().map_err(|io| format!("statistics: {}", StatusText(io.status)))?;
    let report = Report {
        accepted,
        delivered,
        discarded: s.discarded_bytes,
        writes,
        reads,
        disturbances: disturbances.load(Ordering::SeqCst),
    };
    if s.bytes_in != accepted || s.bytes_out != delivered {
        return Err(format!(
            "the driver counted {} in / {} out, the client {accepted} / {delivered}",
            s.bytes_in, s.bytes_out
        ));
    }
    if s.bytes_in != s.bytes_out + s.discarded_bytes {
        return Err(format!(
            "{} accepted != {} delivered + {} discarded",
            s.bytes_in, s.bytes_out, s.discarded_bytes
        ));
    }
    Ok(report)
}

/// Disturbs the output pin for the soak's duration: cancels, resets, STOP/RUN cycles. (The writer
/// disturbs its own pin the same way.)
fn disturb(output: &Pin<'_>, cfg: &Config, count: &AtomicU64) {
    let start = Instant::now();
    let mut rng = mix(cfg.seed ^ 0xD157);
    while start.elapsed() < cfg.duration {
        rng = mix(rng);
        let pause = u64::try_from(cfg.disturb_every.as_micros()).unwrap_or(u64::MAX).max(1);
        std::thread::sleep(Duration::from_micros(rng % (2 * pause)));
        match rng >> 60 {
            0..=5 => {
                let _ = output.cancel();
            }
            6..=9 => {
                let _ = output.reset(KSRESET_BEGIN);
                let _ = output.reset(KSRESET_END);
            }
            _ => {
                let _ = output.set_state(KSSTATE_STOP);
                let _ = output.set_state(KSSTATE_RUN);
            }
        }
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes frames of serial-numbered words until the soak's time is up; the writer also disturbs
/// its own pin (cancel, reset, STOP/RUN). Returns (bytes accepted, writes completed).
fn write_until(
    backend: &dyn Backend,
    input: &Pin<'_>,
    cfg: &Config,
    stop: &AtomicBool,
) -> Result<(u64, u64), String> {
    let mut rng = mix(cfg.seed);
    let mut serial = 0u64;
    let mut accepted = 0u64;
    let mut writes = 0u64;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < cfg.duration && !stop.load(Ordering::SeqCst) {
        let frames: Vec<Vec<u8>> = (0..=rng % 4)
            .map(|_| {
                rng = mix(rng);
                let words = round8(usize::try_from(rng % cfg.frame_max as u64).unwrap_or(8)) / 8;
                let mut f = Vec::with_capacity(words * 8);
                for _ in 0..words {
                    f.extend_from_slice(&(serial ^ MASK).to_le_bytes());
                    serial += 1;
                }
                f
            })
            .collect();
        let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), Header::default())).collect();
        in_flight.push(InFlight::write(backend, input.handle(), &list));
        rng = mix(rng);
        match rng % 64 {
            0 => {
                let _ = input.cancel();
            }
            1 => {
                let _ = input.reset(KSRESET_BEGIN);
                let _ = input.reset(KSRESET_END);
            }
            2 => {
                let _ = input.set_state(KSSTATE_STOP);
                let _ = input.set_state(KSSTATE_RUN);
            }
            _ => {}
        }
        while in_flight.len() > 2 {
            let (a, w) = finish_write(in_flight.remove(0))?;
            accepted += a;
            writes += w;
        }
    }
    let _ = input.cancel();
    for r in in_flight {
        let (a, w) = finish_write(r)?;
        accepted += a;
        writes += w;
    }
    Ok((accepted, writes))
}

fn finish_write(mut r: InFlight) -> Result<(u64, u64), String> {
    let io = r.wait();
    match io.status {
        STATUS_SUCCESS | STATUS_CANCELLED => Ok((io.information as u64, 1)),
        // Refused outright while stopped or resetting: nothing accepted.
        STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE if io.information == 0 => Ok((0, 1)),
        s => Err(format!("write failed: {} with {} bytes accepted", StatusText(s), io.information)),
    }
}

/// Reads until `ENDOFSTREAM`, checking that word serials only increase. Returns (bytes delivered,
/// reads completed).
fn read_to_end(backend: &dyn Backend, output: &Pin<'_>, cfg: &Config) -> Result<(u64, u64), String> {
    let mut rng = mix(cfg.seed ^ 0x4EAD);
    let mut last: Option<u64> = None;
    let mut delivered = 0u64;
    let mut reads = 0u64;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let eos = KsStreamOptions::ENDOFSTREAM.bits();
    // A stall here would mean a lost wake-up or a request never completed; give up loudly.
    let deadline = Instant::now() + cfg.duration + Duration::from_mins(1);
    loop {
        while in_flight.len() < 3 {
            let extents: Vec<usize> = (0..=rng % 3)
                .map(|_| {
                    rng = mix(rng);
                    round8(usize::try_from(rng % cfg.extent_max as u64).unwrap_or(8))
                })
                .collect();
            in_flight.push(InFlight::read(backend, output.handle(), &extents));
        }
        let mut r = in_flight.remove(0);
        let io = r.wait();
        reads += 1;
        match io.status {
            STATUS_SUCCESS => {}
            STATUS_CANCELLED | STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE => {
                if io.information != 0 {
                    return Err(format!("a refused read reports {} bytes", io.information));
                }
                // Refused while stopped or resetting: try again shortly.
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            s => return Err(format!("read failed: {}", StatusText(s))),
        }
        let mut ended = false;
        for f in r.frames() {
            if f.header.options_flags & eos != 0 && f.header.data_used == 0 {
                ended = true;
                continue;
            }
            if ended || f.data.len() % 8 != 0 {
                return Err(format!(
                    "a {}-byte part{}",
                    f.data.len(),
                    if ended { " after ENDOFSTREAM" } else { "" }
                ));
            }
            for w in f.data.chunks_exact(8) {
                let serial = u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ MASK;
                if last.is_some_and(|l| serial <= l) {
                    return Err(format!("word {serial} after {last:?}: data reordered or repeated"));
                }
                last = Some(serial);
            }
            delivered += f.data.len() as u64;
        }
        if ended {
            let _ = output.cancel();
            for mut r in in_flight {
                let io = r.wait();
                reads += 1;
                if io.status == STATUS_SUCCESS && r.frames().iter().any(|f| f.header.data_used != 0) {
                    return Err("data after ENDOFSTREAM".into());
                }
            }
            return Ok((delivered, reads));
        }
        if Instant::now() > deadline {
            return Err("no ENDOFSTREAM within a minute of the end".into());
        }
    }
}
