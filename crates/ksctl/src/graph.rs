//! `ksctl graph`: three filter instances chained by IRP-source pins (`ksclient::graph`), a
//! verified stream through all of them, and each filter's own count of what passed.

use ksabi::StatusText;
use ksclient::Properties as _;
use ksclient::graph::{self, Chain};
use ksclient::stream::Progress;
use ksring_api::KsRingStatistics;
use serde::Serialize;

use crate::args::GraphArgs;
use crate::info::describe_format;
use crate::session::Session;

#[derive(Serialize)]
struct Summary {
    format: String,
    bytes: u64,
    frames: u64,
    seconds: f64,
    gb_per_s: f64,
    verified_bytes: bool,
    /// Bytes the three filters copied, per byte delivered.
    copies_per_byte: f64,
    filters: [KsRingStatistics; 3],
}

pub fn run(session: &Session, args: &GraphArgs) -> Result<(), String> {
    let b = session.backend();
    let cfg = ksclient::stream::Config {
        verify_bytes: !args.no_verify,
        ..crate::stream::sized_config(args.bytes, args.frames, args.reads, args.seed)?
    };
    let chain = Chain::open(b, &args.format.0)?;
    if let Some(c) = args.capacity {
        let c = u32::try_from(c).map_err(|_| format!("capacity {c} is too large"))?;
        for (n, f) in chain.filters.iter().enumerate() {
            let io = f.set_capacity(c);
            if !io.ok() {
                return Err(format!("F{}: setting the capacity to {c}: {}", n + 1, StatusText(io.status)));
            }
        }
    }
    if !args.json {
        eprintln!(
            "client → F1.in  F1.out ⇒ F2.in (push)  F2.out ⇐ F3.in (pull)  F3.out → client: {} bytes ({} backend)...",
            cfg.bytes,
            b.name()
        );
    }
    let r = graph::run(b, chain, &cfg, &Progress::default()).map_err(|e| format!("graph failed: {e}"))?;
    let summary = Summary {
        format: describe_format(&args.format.0),
        bytes: r.stream.bytes,
        frames: r.stream.frames,
        seconds: r.stream.elapsed.as_secs_f64(),
        gb_per_s: r.stream.gb_per_s(),
        verified_bytes: cfg.verify_bytes,
        copies_per_byte: crate::stream::copies_per_byte(&r.statistics, r.stream.bytes),
        filters: r.statistics,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?);
        return Ok(());
    }
    println!(
        "streamed {} bytes in {} frames ({}) through three chained filters, {}",
        summary.bytes,
        summary.frames,
        summary.format,
        if summary.verified_bytes {
            "every byte and header verified"
        } else {
            "headers and counts verified, bytes not checked"
        }
    );
    println!(
        "  {:.2} GB/s end to end over {:.2} s; the filters copied {:.2} bytes per byte delivered",
        summary.gb_per_s, summary.seconds, summary.copies_per_byte
    );
    for (n, s) in summary.filters.iter().enumerate() {
        println!(
            "  F{}: {} bytes in, {} out, {} frames in, {} out, {} discarded, copied {} in and {} out, ring high water {} bytes",
            n + 1,
            s.bytes_in,
            s.bytes_out,
            s.frames_in,
            s.frames_out,
            s.discarded_bytes,
            s.copied_in,
            s.copied_out,
            s.high_water
        );
    }
    Ok(())
}
