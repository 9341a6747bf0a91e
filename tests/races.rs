//! Races under kshost's verifier, repeated a bounded number of times: cancel against completion
//! (including a read the writer is filling directly), close against pending requests, STOP and
//! reset against streaming (the soak), with exact data checks where nothing is discarded.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ksabi::{KSSTATE_RUN, STATUS_CANCELLED, STATUS_SUCCESS};
use ksclient::io::InFlight;
use ksclient::request::Header;
use ksclient::soak::{self, Config};
use ksclient::stream::mix;
use ksclient::{Backend, Filter, Properties, request};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

/// Writes `frames` in order while a reader reads and cancels its own reads at random; since
/// nothing is discarded, the bytes read must be exactly the bytes written.
fn cancel_reads_while_streaming(seed: u64) {
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let frames: Vec<Vec<u8>> = (0..400u32)
            .map(|k| common::bytes(k.to_le_bytes()[0], 1 + (mix(seed ^ u64::from(k)) % 3000) as usize))
            .collect();
        let done = AtomicBool::new(false);
        let got = std::thread::scope(|s| {
            s.spawn(|| {
                for chunk in frames.chunks(4) {
                    let list: Vec<(&[u8], Header)> =
                        chunk.iter().map(|f| (f.as_slice(), Header::default())).collect();
                    let mut w = InFlight::write(&backend, rig.input.handle(), &list);
                    assert_eq!(w.wait().status, STATUS_SUCCESS);
                }
                done.store(true, Ordering::SeqCst);
            });
            let mut got = Vec::new();
            let mut rng = seed;
            let total: usize = frames.iter().map(Vec::len).sum();
            while got.len() < total {
                rng = mix(rng);
                let mut r =
                    InFlight::read(&backend, rig.output.handle(), &[1 + (rng % 2000) as usize, 64, 4096]);
                if rng.is_multiple_of(3) {
                    std::thread::sleep(Duration::from_micros(rng % 200));
                    rig.output.cancel().unwrap();
                }
                let io = r.wait();
                assert!(
                    io.status == STATUS_SUCCESS || (io.status == STATUS_CANCELLED && io.information == 0),
                    "{io:?}"
                );
                for f in r.frames() {
                    got.extend_from_slice(&f.data);
                }
            }
            got
        });
        assert!(done.load(Ordering::SeqCst));
        assert_eq!(got, frames.concat(), "seed {seed}: no byte lost, repeated or reordered by a cancel");
    }
    backend.shutdown().assert_clean();
}

#[test]
fn cancelled_reads_never_lose_data() {
    for seed in 0..8 {
        cancel_reads_while_streaming(seed);
    }
}

/// Writes are cancelled at random; the reader gets exactly the accepted prefix of each write.
#[test]
fn cancelled_writes_keep_exactly_what_they_reported() {
    for seed in 0..6u64 {
        let backend = common::boot();
        {
            let rig = common::rig_with(&backend, &request::stream_format(), ksabi::KSSTATE_STOP);
            assert_eq!(rig.filter.set_capacity(8192).status, STATUS_SUCCESS);
            assert_eq!(rig.input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
            assert_eq!(rig.output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
            let mut expected = Vec::new();
            let got = std::thread::scope(|s| {
                let reader = s.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let mut r = InFlight::read(&backend, rig.output.handle(), &[5000, 5000]);
                        let frames = r.frames();
                        if frames
                            .iter()
                            .any(|f| f.header.options_flags & ksabi::KsStreamOptions::ENDOFSTREAM.bits() != 0)
                        {
                            for f in frames.iter().filter(|f| f.header.data_used > 0) {
                                got.extend_from_slice(&f.data);
                            }
                            return got;
                        }
                        for f in frames {
                            got.extend_from_slice(&f.data);
                        }
                    }
                });
                let mut rng = seed;
                for k in 0..200u32 {
                    rng = mix(rng);
                    let frame = common::bytes(k.to_le_bytes()[0], 500 + (rng % 6000) as usize);
                    let mut w = InFlight::write(&backend, rig.input.handle(), &[(&frame, Header::default())]);
                    if rng % 4 == 0 {
                        rig.input.cancel().unwrap();
                    }
                    let io = w.wait();
                    assert!(io.status == STATUS_SUCCESS || io.status == STATUS_CANCELLED, "{io:?}");
                    expected.extend_from_slice(&frame[..io.information]);
                }
                let common::Rig { input, .. } = &rig;
                backend.close(input.handle()).unwrap(); // ends the stream
                reader.join().unwrap()
            });
            std::mem::forget(rig.input); // closed above
            assert_eq!(got.len(), expected.len(), "seed {seed}");
            assert!(got == expected, "seed {seed}: the bytes differ");
        }
        backend.shutdown().assert_clean();
    }
}

/// Closing a pin's handle while its requests are in flight on another thread.
#[test]
fn close_races_pending_requests() {
    for seed in 0..10u64 {
        let backend = common::boot();
        {
            let filter = Filter::open_first(&backend).unwrap();
            let input = filter.connect(PIN_INPUT, &request::stream_format()).unwrap();
            let output = filter.connect(PIN_OUTPUT, &request::stream_format()).unwrap();
            assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
            assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
            let (hi, ho) = (input.handle(), output.handle());
            std::mem::forget((input, output)); // closed by the racing thread
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    std::thread::sleep(Duration::from_micros(mix(seed) % 2000));
                    backend.close(if seed % 2 == 0 { hi } else { ho }).unwrap();
                });
                let frame = vec![7u8; 2048];
                for _ in 0..50 {
                    let mut w = InFlight::write(&backend, hi, &[(&frame, Header::default())]);
                    let mut r = InFlight::read(&backend, ho, &[1024, 1024]);
                    for io in [w.wait(), r.wait()] {
                        common::assert_defined(io.status);
                    }
                }
            });
            let other = if seed % 2 == 0 { ho } else { hi };
            backend.close(other).unwrap();
        }
        backend.shutdown().assert_clean();
    }
}

/// Both pins of a filter leaving STOP at once: each allocates a ring outside the filter's lock,
/// one installs it and the other frees its own and uses the installed one. However the two
/// interleave, the filter ends with exactly one ring and nothing leaks.
#[test]
fn two_pins_acquiring_at_once_share_one_ring() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    let ring = u64::from(ksring_api::DEFAULT_CAPACITY);
    for _ in 0..20 {
        let filter = Filter::open_first(&backend).unwrap();
        let input = filter.connect(PIN_INPUT, &request::stream_format()).unwrap();
        let output = filter.connect(PIN_OUTPUT, &request::stream_format()).unwrap();
        let with_pins = common::pool_bytes(&backend);
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            for pin in [&input, &output] {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    assert_eq!(pin.set_state(ksabi::KSSTATE_ACQUIRE).status, STATUS_SUCCESS);
                });
            }
        });
        assert_eq!(common::stats(&filter).capacity, ring);
        let rings = common::pool_bytes(&backend) - with_pins;
        assert!(rings as u64 >= ring && (rings as u64) < 2 * ring, "one ring, not two: {rings} bytes");
        drop((input, output, filter));
        assert_eq!(common::pool_bytes(&backend), baseline, "everything freed");
    }
    backend.shutdown().assert_clean();
}

/// Streaming while both pins are cancelled, reset and stopped at random: nothing reordered or
/// repeated, every byte accounted for (see `ksclient::soak`).
#[test]
fn soak_with_stops_resets_and_cancels() {
    for seed in 0..3u64 {
        let backend = common::boot();
        {
            let f = Filter::open_first(&backend).unwrap();
            assert_eq!(f.set_capacity(32 << 10).status, STATUS_SUCCESS);
            let input = f.connect(PIN_INPUT, &request::stream_format()).unwrap();
            let output = f.connect(PIN_OUTPUT, &request::stream_format()).unwrap();
            assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
            assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
            let cfg = Config { duration: Duration::from_millis(700), seed, ..Config::default() };
            let report =
                soak::run(&backend, &f, input, &output, &cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert!(report.delivered > 0 && report.disturbances > 10, "{report:?}");
            assert_eq!(report.accepted, report.delivered + report.discarded);
        }
        backend.shutdown().assert_clean();
    }
}
