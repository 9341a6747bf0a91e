//! # ksfuzz — everything a user-mode client can send ksring, at random
//!
//! Four harnesses drive the **real driver under kshost** with arbitrary bytes and check
//! invariants, not just "no crash":
//!
//! - [`pin_create`]: any `KsCreatePin` blob (any length, lying sizes, any GUIDs and PCM fields);
//! - [`property`]: any property request on the filter or a pin (any set, id, flags, lengths);
//! - [`stream_headers`]: any header array on either pin, in any state, possibly cancelled;
//! - [`sequence`]: a little op-code language (open, connect, state, write, read, cancel, reset,
//!   close, capacity) with exact byte accounting at the end.
//!
//! After every input: the status is a defined `NTSTATUS`, kshost's verifier has nothing to say
//! (no double completion, no IRQL or lock misuse, no user pointer touched), and once everything is
//! closed the driver's pool is back where it started. A violated invariant panics, which
//! `cargo fuzz` reports as a crash; `tests/corpus.rs` replays the committed corpus and every past
//! crash under plain `cargo test`.

mod checks;
mod create;
mod props;
pub mod seeds;
mod sequence;
mod stream;

pub use create::pin_create;
pub use props::property;
pub use sequence::sequence;
pub use stream::stream_headers;

/// A harness: one input in, a panic on a broken invariant.
pub type Harness = fn(&[u8]);

/// The harnesses by name (the `cargo fuzz` target names), for the corpus replay.
pub const TARGETS: &[(&str, Harness)] = &[
    ("pin_create", pin_create),
    ("property", property),
    ("stream_headers", stream_headers),
    ("sequence", sequence),
];
