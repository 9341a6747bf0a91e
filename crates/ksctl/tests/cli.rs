//! `ksctl` as a user runs it: the commands against the emulated driver, JSON that parses, exit
//! codes that mean something, one-line errors for bad arguments.

use assert_cmd::Command;

fn ksctl() -> Command {
    Command::cargo_bin("ksctl").expect("ksctl is built")
}

fn stdout(args: &[&str]) -> String {
    let out = ksctl().args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn stream_verifies_and_reports() {
    let text = stdout(&["stream", "--emulated", "--bytes", "64M"]);
    assert!(text.contains("every byte and header verified"), "{text}");
    assert!(text.contains("GB/s") && text.contains("p99"), "{text}");
}

#[test]
fn stream_json_agrees_with_the_driver() {
    let text = stdout(&["stream", "--emulated", "--bytes", "16M", "--format", "pcm:2:16:48000", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let bytes = v["bytes"].as_u64().expect("bytes");
    assert!(bytes >= 16 << 20);
    assert_eq!(v["driver"]["bytes_out"].as_u64(), Some(bytes));
    assert_eq!(v["driver"]["frames_in"], v["frames"]);
    assert_eq!(v["format"], "PCM 2 ch 16-bit 48000 Hz");
}

#[test]
fn big_frames_through_a_small_ring() {
    let text = stdout(&[
        "stream",
        "--emulated",
        "--bytes",
        "32M",
        "--frames",
        "1M",
        "--capacity",
        "64K",
        "--reads",
        "4K..256K",
    ]);
    assert!(text.contains("verified"), "{text}");
}

#[test]
fn graph_streams_through_three_chained_filters() {
    let text = stdout(&["graph", "--emulated", "--bytes", "32M", "--capacity", "64K", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let bytes = v["bytes"].as_u64().expect("bytes");
    assert!(bytes >= 32 << 20);
    for f in v["filters"].as_array().expect("three filters") {
        assert_eq!(f["bytes_in"].as_u64(), Some(bytes), "{f}");
        assert_eq!(f["bytes_out"].as_u64(), Some(bytes), "{f}");
        assert_eq!(f["capacity"].as_u64(), Some(64 << 10), "--capacity reached every filter: {f}");
    }
}

#[test]
fn list_and_info() {
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&["list", "--emulated", "--json"])).expect("JSON");
    assert_eq!(list[0]["friendly_name"], "KsRing");
    let path = list[0]["path"].as_str().expect("path").to_string();
    let info: serde_json::Value =
        serde_json::from_str(&stdout(&["info", "--emulated", "--json", "--path", &path])).expect("JSON");
    assert_eq!(info["pin_factories"], 2);
    assert_eq!(info["pins"][0]["name"], "Input");
    assert_eq!(info["pins"][1]["data_flow"], "out (data source)");
    assert_eq!(info["errors"].as_array().map(Vec::len), Some(0), "{info}");
    let text = stdout(&["info", "--emulated"]);
    assert!(text.contains("filter pin 0 -> filter pin 1"), "{text}");
}

#[test]
fn conformance_passes_and_lists() {
    let text = stdout(&["conformance", "--emulated"]);
    assert!(text.contains("scenarios passed on the emulated backend"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    let listed = stdout(&["conformance", "--emulated", "--list"]);
    assert!(listed.contains("bad-input"));
    let out = ksctl().args(["conformance", "--emulated", "--only", "no-such-scenario"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bench_prints_a_table() {
    let rows: serde_json::Value = serde_json::from_str(&stdout(&[
        "bench",
        "--emulated",
        "--sizes",
        "4K,64K",
        "--capacities",
        "256K",
        "--bytes",
        "8M",
        "--json",
    ]))
    .expect("JSON");
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert!(rows[0]["gb_per_s"].as_f64().is_some_and(|g| g > 0.0));
}

#[test]
fn bad_arguments_get_one_line_and_exit_2() {
    for args in [
        vec!["stream", "--emulated", "--bytes", "lots"],
        vec!["stream", "--emulated", "--frames", "9..2"],
        vec!["stream", "--emulated", "--format", "video"],
        vec!["stream", "--emulated", "--in-flight", "0"],
        vec!["frobnicate"],
    ] {
        let out = ksctl().args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.lines().next().is_some_and(|l| l.starts_with("error:")), "{args:?}: {err}");
    }
    // Off Windows there is no installed driver to talk to.
    if !cfg!(windows) {
        let out = ksctl().args(["list"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--emulated"));
    }
}

#[test]
fn a_format_the_driver_refuses_fails_the_run() {
    let out = ksctl()
        .args(["stream", "--emulated", "--bytes", "1M", "--format", "pcm:9:16:48000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STATUS_NO_MATCH"));
}

#[test]
fn soak_accounts_for_every_byte() {
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&["soak", "--emulated", "--seconds", "1", "--json"])).expect("JSON");
    let (a, d, x) =
        (v["accepted"].as_u64().unwrap(), v["delivered"].as_u64().unwrap(), v["discarded"].as_u64().unwrap());
    assert_eq!(a, d + x);
    assert!(v["disturbances"].as_u64().unwrap() > 0);
}
