//! `cargo fuzz run pin_create`: see `ksfuzz::pin_create` for the input format and the invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ksfuzz::pin_create(data));
