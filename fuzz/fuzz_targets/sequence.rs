//! `cargo fuzz run sequence`: see `ksfuzz::sequence` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksfuzz::sequence(data));
