//! The conformance suite `ksctl conformance` runs, on the emulated machine: one test per scenario
//! (`cargo test -p ksring-e2e --test conformance -- <name>` runs one), each on a fresh machine that
//! must then shut down clean (kshost's verifier: no leak, no IRP left, no rule broken).

mod common;

use ksclient::conformance;
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = conformance::scenarios()
        .into_iter()
        .map(|scenario| {
            Trial::test(scenario.name, move || {
                let backend = common::boot();
                let outcome = (scenario.run)(&backend);
                let report = backend.shutdown();
                outcome.map_err(Failed::from)?;
                if report.violations.is_empty() { Ok(()) } else { Err(report.describe().into()) }
            })
        })
        .collect();
    trials.push(Trial::test("the_driver_says_hello_in_the_debug_output", || {
        let backend = common::boot();
        let hello = backend.machine().debug_output().iter().any(|l| l.contains("ksring: DriverEntry done"));
        let report = backend.shutdown();
        if !hello {
            return Err("no \"ksring: DriverEntry done\" in the debug output".into());
        }
        if report.violations.is_empty() { Ok(()) } else { Err(report.describe().into()) }
    }));
    libtest_mimic::run(&args, trials).exit();
}
