//! End-to-end throughput of the driver under kshost, against its own core and a memcpy, in one
//! run: the cost of the whole request path (IRPs, `KsProbeStreamIrp` capture and MDLs, KS queues,
//! completion) over the bare ring.
//!
//! - **driver**: write IRPs on one thread, read IRPs on another, through the real ksring code in
//!   kshost (4 requests in flight each side, about 256 KiB per request, a 4 MiB ring); frame
//!   lengths and metadata are checked, payload bytes are not (they are in the tests).
//! - **chain**: the same frames and requests through three filters joined by IRP-source pins
//!   (`ksclient::graph`: client → F1, F1 ⇒ F2 push, F2 ⇐ F3 pull, F3 → client), unverified; with
//!   the bytes the three filters copied per byte delivered (`KsRingStatistics::copied_*`).
//! - **framering**: the same frames through a bare 4 MiB `framering` ring between two threads,
//!   copied in and out (what the driver does per frame, minus everything else).
//! - **memcpy**: the same bytes copied once on one thread.
//!
//! ```text
//! cargo bench -p ksring-e2e --bench e2e                          # 1 GiB per cell
//! KSRING_BENCH_QUICK=1 cargo bench -p ksring-e2e --bench e2e     # 64 MiB per cell
//! KSRING_BENCH_FRAMES=65536 cargo bench -p ksring-e2e --bench e2e # one frame size only
//! ```
//! Each cell is the best of five runs. The driver's and the chain's runs alternate, so that
//! their ratio compares runs made under the same load of the host (a noisy neighbour slows both,
//! not one of them).

use std::hint::black_box;
use std::time::{Duration, Instant};

use framering::{FrameMeta, RingCore};
use ksabi::{KSSTATE_RUN, STATUS_SUCCESS};
use ksclient::emulated::Emulated;
use ksclient::graph::{self, Chain};
use ksclient::stream::{self, Config, Progress};
use ksclient::{Filter, request};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

const SIZES: [usize; 3] = [1 << 10, 64 << 10, 1 << 20];
const RING: usize = 4 << 20;
const RUNS: usize = 5;

/// The requests of a cell: about 256 KiB each, 4 in flight per side, bytes unchecked.
fn config(size: usize, bytes: u64) -> Config {
    let per_request = (256 << 10) / size;
    let per_request = per_request.clamp(1, 64);
    Config {
        bytes,
        frame_min: size,
        frame_max: size,
        extent_min: size,
        extent_max: size,
        frames_per_write: per_request,
        headers_per_read: per_request,
        writes_in_flight: 4,
        reads_in_flight: 4,
        seed: 1,
        verify_bytes: false,
    }
}

fn driver_run(backend: &Emulated, size: usize, bytes: u64) -> Duration {
    let filter = Filter::open_first(backend).expect("filter");
    let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
    let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
    assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    let report =
        stream::run(backend, input, &output, &config(size, bytes), &Progress::default()).expect("stream");
    assert!(report.bytes >= bytes);
    report.elapsed
}

/// The same stream through three chained filters; returns the time and the copies per byte.
#[allow(clippy::cast_precision_loss)] // a ratio for display
fn chain_run(backend: &Emulated, size: usize, bytes: u64) -> (Duration, f64) {
    let chain = Chain::open(backend, &request::stream_format()).expect("chain");
    let r = graph::run(backend, chain, &config(size, bytes), &Progress::default()).expect("chain stream");
    assert!(r.stream.bytes >= bytes);
    let copied: u64 = r.statistics.iter().map(|s| s.copied_in + s.copied_out).sum();
    (r.stream.elapsed, copied as f64 / r.stream.bytes as f64)
}

fn framering_run(size: usize, bytes: u64) -> Duration {
    let frames = bytes.div_ceil(size as u64);
    let source = vec![0x5Au8; size];
    let mut core = RingCore::new();
    let mut words = vec![0u64; RING / 8];
    // SAFETY: a u64 buffer seen as bytes: 8-aligned, initialised, borrowed for the run.
    let storage = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), RING) };
    let (mut tx, mut rx) = core.split(storage).expect("ring");
    let mut sink = vec![0u8; size];
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut sent = 0;
            while sent < frames {
                if tx.push(&source, &FrameMeta { duration: 1, ..FrameMeta::default() }).is_ok() {
                    sent += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
        });
        let mut received = 0;
        while received < frames {
            match rx.read() {
                Some(frame) => {
                    sink.copy_from_slice(frame.payload());
                    assert_eq!(frame.meta().duration, 1);
                    frame.release();
                    received += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
    });
    black_box(&sink);
    start.elapsed()
}

fn memcpy_run(size: usize, bytes: u64) -> Duration {
    let frames = bytes.div_ceil(size as u64);
    let source = vec![0x5Au8; RING];
    let mut target = vec![0u8; RING];
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..frames {
        if at + size > RING {
            at = 0;
        }
        target[at..at + size].copy_from_slice(black_box(&source[at..at + size]));
        at += size;
    }
    black_box(&target);
    start.elapsed()
}

/// The best of [`RUNS`] driver runs and of as many chain runs, alternating; with the chain's copies
/// per byte.
fn driver_and_chain(backend: &Emulated, size: usize, bytes: u64) -> (Duration, Duration, f64) {
    let (mut driver, mut chain, mut copies) = (Duration::MAX, Duration::MAX, 0.0);
    for _ in 0..RUNS {
        driver = driver.min(driver_run(backend, size, bytes));
        let (t, n) = chain_run(backend, size, bytes);
        chain = chain.min(t);
        copies = n;
    }
    (driver, chain, copies)
}

fn best(mut f: impl FnMut() -> Duration) -> Duration {
    (0..RUNS).map(|_| f()).min().unwrap_or_default()
}

#[allow(clippy::cast_precision_loss)] // rates for display
fn gbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

fn main() {
    let quick = std::env::var_os("KSRING_BENCH_QUICK").is_some() || std::env::args().any(|a| a == "--quick");
    let bytes: u64 = if quick { 64 << 20 } else { 1 << 30 };
    let backend = Emulated::boot().expect("ksring installs");
    println!("ksring end to end: {} MiB per cell, best of {RUNS}, GB/s (10^9 B/s)", bytes >> 20);
    println!(
        "{:>9} {:>9} {:>9} {:>10} {:>8} {:>13} {:>17} {:>14} {:>14}",
        "frame",
        "driver",
        "chain",
        "framering",
        "memcpy",
        "chain/driver",
        "driver/framering",
        "driver/memcpy",
        "chain copies/B"
    );
    let only: Option<usize> = std::env::var("KSRING_BENCH_FRAMES").ok().and_then(|v| v.parse().ok());
    for size in SIZES.into_iter().filter(|s| only.is_none_or(|o| o == *s)) {
        let (d, c, copies) = driver_and_chain(&backend, size, bytes);
        let (d, c) = (gbps(bytes, d), gbps(bytes, c));
        let f = gbps(bytes, best(|| framering_run(size, bytes)));
        let m = gbps(bytes, best(|| memcpy_run(size, bytes)));
        println!(
            "{:>8}K {d:>9.2} {c:>9.2} {f:>10.2} {m:>8.2} {:>13.2} {:>17.2} {:>14.2} {copies:>14.2}",
            size >> 10,
            c / d,
            d / f,
            d / m
        );
    }
    backend.shutdown().assert_clean();
}
