//! `stream_headers`: arbitrary header arrays on either pin, in any state.

use std::mem::offset_of;
use std::time::Duration;

use ksabi::{IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, KSSTREAM_HEADER, nt_success};
use ksclient::conformance::rig;
use ksclient::io::InFlight;
use ksclient::request::{self, HEADER_SIZE, Header};
use ksclient::{Backend, Properties, graph};

use crate::checks::{Input, assert_defined, world};

/// Bytes of the caller's memory: the header array, then the frame buffers its `Data` may point into.
const MEMORY: usize = 1 << 16;
/// Where frame buffers start.
const DATA: usize = 8192;

/// Input: which pin and code, the pins' state, options (cancel, a write first so reads find data,
/// keep `Data` raw, a read at the end of a chain of three filters in RUN — where F3's pull source
/// may lend it: `src/source/lend.rs`), then the header array. Unless kept raw, each whole header's `Data` becomes an
/// address inside the caller's memory (its low 16 bits, offset past the headers), so the driver
/// sees real buffers as often as bad ones.
///
/// Invariants: a defined status; a completed read reports only whole headers it filled, each with
/// `DataUsed <= FrameExtent`; the driver's byte counts add up; the verifier stays silent;
/// everything closes back to the baseline.
///
/// # Panics
/// When an invariant breaks.
pub fn stream_headers(data: &[u8]) {
    let w = world();
    let b = &w.backend;
    let mut input = Input(data);
    let which = input.byte();
    let state = i32::from(input.byte() % 4);
    let options = input.byte();
    let headers = input.take(DATA).to_vec();
    if options & 8 != 0 {
        chain_read(b, options, &headers);
        w.assert_clean("stream_headers (chain)");
        return;
    }
    {
        let Ok(r) = rig(b, &request::stream_format(), state) else { panic!("rig") };
        if options & 2 != 0 {
            // Something in the ring for reads to find (a write only moves in RUN).
            let frame = vec![0x5Au8; 300];
            let mut w = InFlight::write(b, r.input.handle(), &[(&frame, Header::default())]);
            if w.poll().is_none() {
                let _ = r.input.cancel();
            }
            w.wait();
        }
        let on_output = which & 1 != 0;
        let code = if which & 2 == 0 { IOCTL_KS_WRITE_STREAM } else { IOCTL_KS_READ_STREAM };
        let pin = if on_output { &r.output } else { &r.input };
        let memory = caller_memory(b, options, &headers);
        let mut request = InFlight::submit(b, pin.handle(), code, memory, headers.len());
        std::thread::sleep(Duration::from_micros(50));
        if options & 1 != 0 || request.poll().is_none() {
            let _ = pin.cancel();
        }
        let io = request.wait();
        assert_defined("stream request", io.status);
        if nt_success(io.status) && code == IOCTL_KS_READ_STREAM {
            assert!(
                io.information <= headers.len(),
                "read Information {} > {}",
                io.information,
                headers.len()
            );
            for f in request.frames() {
                assert!(
                    f.header.data_used <= f.header.frame_extent,
                    "DataUsed beyond FrameExtent: {:?}",
                    f.header
                );
            }
        }
        let s = r.filter.statistics().expect("statistics");
        assert!(s.bytes_out + s.discarded_bytes <= s.bytes_in, "more out than in: {s:?}");
    }
    w.assert_clean("stream_headers");
}

/// Lays `headers` out in a new block of the caller's memory as [`stream_headers`] does (unless
/// `options & 4`, each whole header's `Data` pointed inside the block).
fn caller_memory(b: &dyn Backend, options: u8, headers: &[u8]) -> Box<dyn ksclient::backend::IoMemory> {
    let mut memory = b.alloc(MEMORY);
    let base = memory.as_ptr() as u64;
    let bytes = memory.bytes_mut();
    bytes[..headers.len()].copy_from_slice(headers);
    if options & 4 == 0 {
        let data_at = offset_of!(KSSTREAM_HEADER, Data);
        for at in (0..headers.len()).step_by(HEADER_SIZE).filter(|at| at + HEADER_SIZE <= headers.len()) {
            let raw = u64::from_le_bytes(bytes[at + data_at..at + data_at + 8].try_into().unwrap());
            let inside = base + (DATA as u64) + (raw & 0x7FFF);
            bytes[at + data_at..at + data_at + 8].copy_from_slice(&inside.to_le_bytes());
        }
    }
    memory
}

/// A read with `headers` at the end of a chain in RUN (after a frame written at its start, with
/// `options & 2`), cancelled with `options & 1` or if it has not completed: the same invariants,
/// and F3's counts add up (a lent read's bytes count in and out of F3).
fn chain_read(b: &dyn Backend, options: u8, headers: &[u8]) {
    let Ok(chain) = graph::Chain::open(b, &request::stream_format()) else { panic!("chain") };
    chain.set_state(ksabi::KSSTATE_RUN).expect("run");
    if options & 2 != 0 {
        let frame = vec![0xA5u8; 700];
        let mut w = InFlight::write(b, chain.client_input.handle(), &[(&frame, Header::default())]);
        w.wait();
    }
    let memory = caller_memory(b, options, headers);
    let out = &chain.client_output;
    let mut request = InFlight::submit(b, out.handle(), IOCTL_KS_READ_STREAM, memory, headers.len());
    std::thread::sleep(Duration::from_micros(200));
    if options & 1 != 0 || request.poll().is_none() {
        let _ = out.cancel();
    }
    let io = request.wait();
    assert_defined("chain read", io.status);
    if nt_success(io.status) {
        assert!(io.information <= headers.len(), "read Information {} > {}", io.information, headers.len());
        for f in request.frames() {
            assert!(
                f.header.data_used <= f.header.frame_extent,
                "DataUsed beyond FrameExtent: {:?}",
                f.header
            );
        }
    }
    let s = chain.filters[2].statistics().expect("statistics");
    assert!(s.bytes_out + s.discarded_bytes <= s.bytes_in, "F3: more out than in: {s:?}");
    assert!(s.copied_out <= s.bytes_out, "F3: copied more than it gave out: {s:?}");
}
