//! `ksctl soak`: streaming under random cancels, resets and STOP/RUN cycles, with exact
//! accounting (`ksclient::soak`).

use std::time::Duration;

use ksabi::{KSSTATE_RUN, StatusText};
use ksclient::Properties;
use ksclient::request;
use ksclient::soak::{self, Config};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};
use serde::Serialize;

use crate::args::SoakArgs;
use crate::info::open_filter;
use crate::session::Session;

#[derive(Serialize)]
struct Summary {
    seconds: u64,
    accepted: u64,
    delivered: u64,
    discarded: u64,
    writes: u64,
    reads: u64,
    disturbances: u64,
}

pub fn run(session: &Session, args: &SoakArgs) -> Result<(), String> {
    let b = session.backend();
    let filter = open_filter(session, &args.common)?;
    let capacity = u32::try_from(args.capacity).map_err(|_| "capacity too large".to_string())?;
    let io = filter.set_capacity(capacity);
    if !io.ok() {
        return Err(format!("setting the capacity to {capacity}: {}", StatusText(io.status)));
    }
    let input =
        filter.connect(PIN_INPUT, &request::stream_format()).map_err(|e| format!("input pin: {e}"))?;
    let output =
        filter.connect(PIN_OUTPUT, &request::stream_format()).map_err(|e| format!("output pin: {e}"))?;
    for pin in [&input, &output] {
        let io = pin.set_state(KSSTATE_RUN);
        if !io.ok() {
            return Err(format!("RUN: {}", StatusText(io.status)));
        }
    }
    let cfg = Config {
        duration: Duration::from_secs(args.seconds),
        disturb_every: Duration::from_millis(args.disturb_ms),
        seed: args.seed,
        ..Config::default()
    };
    if !args.common.json {
        eprintln!("soaking for {} s ({} backend)...", args.seconds, b.name());
    }
    let r = soak::run(b, &filter, input, &output, &cfg).map_err(|e| format!("soak failed: {e}"))?;
    let summary = Summary {
        seconds: args.seconds,
        accepted: r.accepted,
        delivered: r.delivered,
        discarded: r.discarded,
        writes: r.writes,
        reads: r.reads,
        disturbances: r.disturbances,
    };
    if args.common.json {
        println!("{}", serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?);
    } else {
        println!(
            "soaked {} s: {} bytes accepted = {} delivered + {} discarded; {} writes, {} reads, {} disturbances; nothing reordered or repeated",
            summary.seconds,
            summary.accepted,
            summary.delivered,
            summary.discarded,
            summary.writes,
            summary.reads,
            summary.disturbances
        );
    }
    Ok(())
}
