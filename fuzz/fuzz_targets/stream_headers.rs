//! `cargo fuzz run stream_headers`: see `ksfuzz::stream_headers` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksfuzz::stream_headers(data));
