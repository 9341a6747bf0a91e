//! The conformance suite `ksctl conformance` runs, on the emulated machine: every scenario on a
//! fresh machine, which must then shut down clean (kshost's verifier: no leak, no IRP left, no
//! rule broken).

mod common;

use ksclient::conformance;

#[test]
fn every_scenario_passes_and_leaves_the_machine_clean() {
    let mut failures = Vec::new();
    for scenario in conformance::scenarios() {
        let backend = common::boot();
        let outcome = (scenario.run)(&backend);
        let report = backend.shutdown();
        if let Err(e) = outcome {
            failures.push(format!("{}: {e}", scenario.name));
        }
        if !report.violations.is_empty() {
            failures.push(format!("{}: {}", scenario.name, report.describe()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_driver_says_hello_in_the_debug_output() {
    let backend = common::boot();
    assert!(backend.machine().debug_output().iter().any(|l| l.contains("ksring: DriverEntry done")));
    backend.shutdown().assert_clean();
}
