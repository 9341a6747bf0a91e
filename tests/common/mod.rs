//! Shared by the end-to-end tests: boot the emulated machine with ksring, open a filter with both
//! pins, build frames.
#![allow(dead_code)] // each test binary uses part of it

use ksabi::{KSSTATE, KSSTATE_RUN, STATUS_SUCCESS};
use ksclient::emulated::Emulated;
use ksclient::request::{self, Header};
use ksclient::{Filter, Pin, Properties};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

/// Waits up to five seconds for `done` (what a work item or another thread does after the call
/// that started it returns: a source settling after STOP, requests reaching a queue).
pub fn settles(mut done: impl FnMut() -> bool) -> bool {
    (0..5000).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(1));
        done()
    })
}

/// A machine with ksring installed.
pub fn boot() -> Emulated {
    Emulated::boot().expect("ksring installs from inf/ksring.inx")
}

/// A filter with both pins connected as byte streams.
pub struct Rig<'b> {
    pub filter: Filter<'b>,
    pub input: Pin<'b>,
    pub output: Pin<'b>,
}

/// Opens a filter and connects both pins with `format`, then sets both to `state`.
pub fn rig_with<'b>(backend: &'b Emulated, format: &[u8], state: KSSTATE) -> Rig<'b> {
    let filter = Filter::open_first(backend).expect("open filter");
    let input = filter.connect(PIN_INPUT, format).expect("input pin");
    let output = filter.connect(PIN_OUTPUT, format).expect("output pin");
    assert_eq!(input.set_state(state).status, STATUS_SUCCESS);
    assert_eq!(output.set_state(state).status, STATUS_SUCCESS);
    Rig { filter, input, output }
}

/// Byte-stream pins in RUN.
pub fn rig(backend: &Emulated) -> Rig<'_> {
    rig_with(backend, &request::stream_format(), KSSTATE_RUN)
}

/// A frame's header fields with these flags, type-specific flags and time.
pub fn meta(options_flags: u32, tsf: u32, time: i64) -> Header {
    Header {
        options_flags,
        type_specific_flags: tsf,
        time,
        numerator: 1,
        denominator: 1,
        duration: 7,
        ..Header::default()
    }
}

/// `n` bytes counting up from `seed`.
pub fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i.to_le_bytes()[0])).collect()
}

/// `count` frames of `len` bytes (at least 2), each saying which it is in its first two bytes
/// ([`numbers`] reads them back), the rest counting up.
#[allow(dead_code)] // not every test binary numbers frames
pub fn numbered(count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|k| {
            let mut f = bytes(u8::try_from(k % 251).unwrap_or(0), len);
            f[..2].copy_from_slice(&u16::try_from(k).unwrap_or(u16::MAX).to_le_bytes());
            f
        })
        .collect()
}

/// Which [`numbered`] frames these are, in order.
#[allow(dead_code)] // not every test binary numbers frames
pub fn numbers(frames: &[Vec<u8>]) -> Vec<usize> {
    frames.iter().map(|f| usize::from(u16::from_le_bytes([f[0], f[1]]))).collect()
}

/// Bytes of pool the driver holds now.
pub fn pool_bytes(backend: &Emulated) -> usize {
    backend.machine().pool_in_use().iter().map(|(_, size, _)| size).sum()
}

/// Statistics of a filter or pin, unwrapped.
pub fn stats(p: &impl Properties) -> ksring_api::KsRingStatistics {
    p.statistics().expect("statistics")
}

/// A status must be one ksring or ks.sys defines, never `STATUS_PENDING` from a finished request.
pub fn assert_defined(status: ksabi::NTSTATUS) {
    assert!(
        ksabi::status_name(status).is_some() && status != ksabi::STATUS_PENDING,
        "undefined status {}",
        ksabi::StatusText(status)
    );
}
