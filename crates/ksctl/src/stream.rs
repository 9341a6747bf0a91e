//! `ksctl stream`: the main job — a verified stream through a filter, with a progress bar and a
//! summary (throughput, write→read latency percentiles, what the driver counted).

use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ksabi::{KSSTATE_RUN, StatusText};
use ksclient::Properties;
use ksclient::stream::{self, Config, Progress, Report};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};
use serde::Serialize;

use crate::args::StreamArgs;
use crate::info::{describe_format, open_filter};
use crate::session::Session;
use ksring_api::KsRingStatistics;

/// The driver's spin-lock holds during the stream (emulated only).
#[derive(Serialize)]
pub struct SpinLocks {
    pub max_us: f64,
    pub p999_us: f64,
    pub max_bytes: u64,
}

/// What `stream` prints.
#[derive(Serialize)]
pub struct Summary {
    pub format: String,
    pub bytes: u64,
    pub frames: u64,
    pub parts: u64,
    pub write_requests: u64,
    pub read_requests: u64,
    pub seconds: f64,
    pub gb_per_s: f64,
    pub latency_us: Latency,
    pub verified_bytes: bool,
    /// Bytes the driver copied per byte delivered (from its statistics).
    pub copies_per_byte: Option<f64>,
    /// With `--compare`: the same stream unverified, first, in this run.
    pub unverified: Option<Unverified>,
    pub driver: Option<KsRingStatistics>,
    /// Spin-lock holds, as kshost measured them (emulated only).
    pub spin_locks: Option<SpinLocks>,
}

#[derive(Serialize)]
pub struct Unverified {
    pub gb_per_s: f64,
    pub seconds: f64,
    /// Verified rate / unverified rate.
    pub ratio: f64,
}

/// Bytes the filters in `stats` copied (in and out) per byte delivered.
#[must_use]
#[allow(clippy::cast_precision_loss)] // a ratio for display
pub fn copies_per_byte(stats: &[KsRingStatistics], delivered: u64) -> f64 {
    let copied: u64 = stats.iter().map(|s| s.copied_in + s.copied_out).sum();
    copied as f64 / delivered.max(1) as f64
}

#[derive(Serialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub samples: usize,
}

fn micros(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1e6)
}

fn usize_of(v: u64, what: &str) -> Result<usize, String> {
    usize::try_from(v).map_err(|_| format!("{what} {v} is too large"))
}

/// A stream of `bytes` with `--frames` and `--reads` ranges (checked) and `seed`; the rest default.
pub fn sized_config(bytes: u64, frames: (u64, u64), reads: (u64, u64), seed: u64) -> Result<Config, String> {
    if reads.0 == 0 {
        return Err("--reads: read buffers need at least 1 byte".into());
    }
    Ok(Config {
        bytes,
        frame_min: usize_of(frames.0, "frame size")?,
        frame_max: usize_of(frames.1, "frame size")?,
        extent_min: usize_of(reads.0, "read size")?,
        extent_max: usize_of(reads.1, "read size")?,
        seed,
        ..Config::default()
    })
}

/// Opens the filter, connects both pins with `format`, sets RUN and streams `cfg`, showing
/// progress on standard error when `progress` is set. Returns the report and the driver's count.
pub fn stream_once(
    session: &Session,
    common: &crate::args::Common,
    format: &[u8],
    capacity: Option<u64>,
    cfg: &Config,
    progress: bool,
) -> Result<(Report, Option<KsRingStatistics>), String> {
    let b = session.backend();
    let filter = open_filter(session, common)?;
    if let Some(c) = capacity {
        let c = u32::try_from(c).map_err(|_| format!("capacity {c} is too large"))?;
        let io = filter.set_capacity(c);
        if !io.ok() {
            return Err(format!("setting the capacity to {c}: {}", StatusText(io.status)));
        }
    }
    let input = filter.connect(PIN_INPUT, format).map_err(|e| format!("connecting the input pin: {e}"))?;
    let output = filter.connect(PIN_OUTPUT, format).map_err(|e| format!("connecting the output pin: {e}"))?;
    for (pin, name) in [(&input, "input"), (&output, "output")] {
        let io = pin.set_state(KSSTATE_RUN);
        if !io.ok() {
            return Err(format!("setting the {name} pin to RUN: {}", StatusText(io.status)));
        }
    }
    let counters = Progress::default();
    let bar = if progress { ProgressBar::new(cfg.bytes) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
        )
        .map_err(|e| e.to_string())?,
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        let ticker = s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                bar.set_position(counters.bytes.load(Ordering::Relaxed));
                bar.set_message(format!("{} frames", counters.frames.load(Ordering::Relaxed)));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let r = stream::run(b, input, &output, cfg, &counters);
        done.store(true, Ordering::Relaxed);
        let _ = ticker.join();
        r
    });
    bar.finish_and_clear();
    let report = report.map_err(|e| format!("stream failed: {e}"))?;
    let driver = filter.statistics().ok();
    if let Some(d) = driver
        && (d.bytes_in != report.bytes || d.bytes_out != report.bytes || d.frames_out != report.frames)
    {
        return Err(format!(
            "the driver's statistics disagree with what was verified: driver in {} / out {} bytes, {} frames; client {} bytes, {} frames",
            d.bytes_in, d.bytes_out, d.frames_out, report.bytes, report.frames
        ));
    }
    Ok((report, driver))
}

pub fn run(session: &Session, args: &StreamArgs) -> Result<(), String> {
    let format = &args.format.0;
    let batch = args.batch as usize;
    let in_flight = args.in_flight as usize;
    let cfg = Config {
        frames_per_write: batch,
        headers_per_read: batch,
        writes_in_flight: in_flight,
        reads_in_flight: in_flight,
        verify_bytes: !args.no_verify,
        ..sized_config(args.bytes, args.frames, args.reads, args.seed)?
    };
    let unverified = if args.compare {
        let quiet = Config { verify_bytes: false, ..cfg.clone() };
        let (r, _) = stream_once(session, &args.common, format, args.capacity, &quiet, false)?;
        Some(r)
    } else {
        None
    };
    session.reset_spin_lock_holds();
    let (report, driver) =
        stream_once(session, &args.common, format, args.capacity, &cfg, !args.common.json)?;
    let holds = session.spin_lock_holds();
    let summary = Summary {
        format: describe_format(format),
        bytes: report.bytes,
        frames: report.frames,
        parts: report.parts,
        write_requests: report.writes,
        read_requests: report.reads,
        seconds: report.elapsed.as_secs_f64(),
        gb_per_s: report.gb_per_s(),
        latency_us: Latency {
            p50: micros(report.latency(50.0)),
            p90: micros(report.latency(90.0)),
            p99: micros(report.latency(99.0)),
            max: micros(report.latency(100.0)),
            samples: report.latencies_ns.len(),
        },
        verified_bytes: cfg.verify_bytes,
        copies_per_byte: driver.map(|d| copies_per_byte(&[d], report.bytes)),
        unverified: unverified.map(|u| Unverified {
            gb_per_s: u.gb_per_s(),
            seconds: u.elapsed.as_secs_f64(),
            ratio: report.gb_per_s() / u.gb_per_s().max(1e-12),
        }),
        driver,
        spin_locks: holds.map(|h| SpinLocks {
            max_us: h.max.as_secs_f64() * 1e6,
            p999_us: h.p999.as_secs_f64() * 1e6,
            max_bytes: h.max_bytes,
        }),
    };
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?);
        return Ok(());
    }
    print_summary(session, &summary);
    Ok(())
}

/// The human-readable form of a stream's summary.
fn print_summary(session: &Session, summary: &Summary) {
    let us = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} µs"));
    println!(
        "streamed {} bytes in {} frames ({} split parts) through {} ({}), {}",
        summary.bytes,
        summary.frames,
        summary.parts,
        session.backend().name(),
        summary.format,
        if summary.verified_bytes {
            "every byte and header verified"
        } else {
            "headers verified, bytes not checked"
        }
    );
    println!(
        "  {:.2} GB/s over {:.2} s, {} write and {} read requests",
        summary.gb_per_s, summary.seconds, summary.write_requests, summary.read_requests
    );
    if let Some(u) = &summary.unverified {
        println!(
            "  unverified, same stream, same run: {:.2} GB/s over {:.2} s; verified/unverified {:.2}",
            u.gb_per_s, u.seconds, u.ratio
        );
    }
    println!(
        "  write→read latency: p50 {}  p90 {}  p99 {}  max {}  ({} samples)",
        us(summary.latency_us.p50),
        us(summary.latency_us.p90),
        us(summary.latency_us.p99),
        us(summary.latency_us.max),
        summary.latency_us.samples
    );
    if let Some(d) = summary.driver {
        println!(
            "  driver: {} frames in, {} out, {} copied straight to a waiting read, ring high water {} of {} bytes",
            d.frames_in, d.frames_out, d.direct_frames, d.high_water, d.capacity
        );
        println!(
            "  driver copied {} bytes in and {} out: {:.2} copies per byte delivered",
            d.copied_in,
            d.copied_out,
            summary.copies_per_byte.unwrap_or_default()
        );
    }
    if let Some(h) = &summary.spin_locks {
        println!(
            "  spin locks (DISPATCH_LEVEL): longest hold {:.1} µs, p99.9 {:.1} µs, at most {} bytes copied under one",
            h.max_us, h.p999_us, h.max_bytes
        );
    }
}
