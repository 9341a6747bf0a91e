//! `ksctl bench`: throughput over frame sizes and ring capacities (bytes unchecked, lengths and
//! metadata checked), and — emulated — how long the driver held a spin lock (at `DISPATCH_LEVEL`)
//! and the most bytes it copied under one hold.

use ksclient::stream::Config;
use serde::Serialize;

use crate::args::BenchArgs;
use crate::session::Session;
use crate::stream::stream_once;

#[derive(Serialize)]
struct Cell {
    frame: u64,
    capacity: u64,
    gb_per_s: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    /// The longest spin-lock hold, µs (emulated).
    hold_max_us: Option<f64>,
    /// The 99.9th percentile hold, µs (emulated).
    hold_p999_us: Option<f64>,
    /// The most bytes copied under one hold (emulated).
    hold_max_bytes: Option<u64>,
}

pub fn run(session: &Session, args: &BenchArgs) -> Result<(), String> {
    let mut cells = Vec::new();
    if !args.common.json {
        println!(
            "{:>10} {:>10} {:>8} {:>10} {:>10} {:>12} {:>14} {:>16}",
            "frame", "capacity", "GB/s", "p50 µs", "p99 µs", "hold max µs", "hold p99.9 µs", "bytes/hold max"
        );
    }
    for &capacity in &args.capacities {
        for &frame in &args.sizes {
            let size = usize::try_from(frame).map_err(|_| "frame size too large".to_string())?;
            if size == 0 {
                return Err("--sizes: frames of 0 bytes carry no payload to measure".into());
            }
            let batch = ((256 << 10) / size).clamp(1, 64);
            let cfg = Config {
                bytes: args.bytes,
                frame_min: size,
                frame_max: size,
                extent_min: size,
                extent_max: size,
                frames_per_write: batch,
                headers_per_read: batch,
                writes_in_flight: 4,
                reads_in_flight: 4,
                seed: 1,
                verify_bytes: false,
            };
            session.reset_spin_lock_holds();
            let (report, _) = stream_once(
                session,
                &args.common,
                &ksclient::request::stream_format(),
                Some(capacity),
                &cfg,
                false,
            )?;
            let us = |p| report.latency(p).map(|d| d.as_secs_f64() * 1e6);
            let holds = session.spin_lock_holds();
            let cell = Cell {
                frame,
                capacity,
                gb_per_s: report.gb_per_s(),
                p50_us: us(50.0),
                p99_us: us(99.0),
                hold_max_us: holds.map(|h| h.max.as_secs_f64() * 1e6),
                hold_p999_us: holds.map(|h| h.p999.as_secs_f64() * 1e6),
                hold_max_bytes: holds.map(|h| h.max_bytes),
            };
            if !args.common.json {
                let show = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
                let show1 = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
                println!(
                    "{:>10} {:>10} {:>8.2} {:>10} {:>10} {:>12} {:>14} {:>16}",
                    frame,
                    capacity,
                    cell.gb_per_s,
                    show(cell.p50_us),
                    show(cell.p99_us),
                    show1(cell.hold_max_us),
                    show1(cell.hold_p999_us),
                    cell.hold_max_bytes.map_or("-".into(), |b| b.to_string())
                );
            }
            cells.push(cell);
        }
    }
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&cells).map_err(|e| e.to_string())?);
    }
    Ok(())
}
