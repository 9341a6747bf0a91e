//! `cargo fuzz run property`: see `ksfuzz::property` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksfuzz::property(data));
