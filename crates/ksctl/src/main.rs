//! `ksctl` — the ksring harness.
//!
//! Lists KsRing filters, shows everything KS lets a client discover about them, streams verified
//! data through them (alone, or three chained pin to pin by IRP-source pins), benchmarks and soaks them, and runs the conformance suite — against the driver
//! installed on Windows, or with `--emulated` against the real driver code running in kshost.
//!
//! Exit status: 0 on success, 1 when a check fails (data mismatch, conformance failure, verifier
//! finding), 2 on a usage error.

mod args;
mod bench;
mod conformance;
mod graph;
mod info;
mod list;
mod session;
mod soak;
mod stream;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::session::Session;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let session = match Session::open(cli.emulated) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ksctl: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Command::List(a) => list::run(&session, a),
        Command::Info(a) => info::run(&session, a),
        Command::Stream(a) => stream::run(&session, a),
        Command::Bench(a) => bench::run(&session, a),
        Command::Conformance(a) => conformance::run(&session, a),
        Command::Soak(a) => soak::run(&session, a),
        Command::Graph(a) => graph::run(&session, a),
    };
    let finished = session.finish();
    match (result, finished) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Err(e), _) | (Ok(()), Err(e)) => {
            eprintln!("ksctl: {e}");
            ExitCode::FAILURE
        }
    }
}
