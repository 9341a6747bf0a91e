//! Time at `DISPATCH_LEVEL` (issue 13, WINDOWS-AUDIT F9): no hold of a ring lock copies more than
//! `ksring::HOLD_BUDGET`, whatever the frame or ring size — large frames move piece by piece, the
//! lock let go in between — and the pieces of a frame join again in a read buffer large enough
//! for the whole frame. kshost counts the bytes copied under each spin-lock hold.

mod common;

use ksabi::{KSSTATE_RUN, KsStreamOptions, STATUS_SUCCESS};
use ksclient::io::InFlight;
use ksclient::{Filter, Properties, request};
use ksring_api::{KSRING_OPTIONSF_CONTINUES, PIN_INPUT, PIN_OUTPUT};

/// A filter with a 64 MiB ring and both pins streaming bytes in RUN.
fn rig_with_a_64_mib_ring(backend: &ksclient::emulated::Emulated) -> common::Rig<'_> {
    let filter = Filter::open_first(backend).expect("filter");
    assert_eq!(filter.set_capacity(64 << 20).status, STATUS_SUCCESS);
    let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
    let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
    assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    common::Rig { filter, input, output }
}

/// Three 16 MiB frames through a 64 MiB ring, read into 16 MiB buffers: every byte arrives, each
/// frame whole in one header, and no spin-lock hold copied more than the budget.
#[test]
fn a_16_mib_frame_through_a_64_mib_ring_never_copies_more_than_the_budget_under_a_lock() {
    let backend = common::boot();
    let common::Rig { filter, input, output } = rig_with_a_64_mib_ring(&backend);
    backend.machine().reset_spin_lock_holds();
    let frames: Vec<Vec<u8>> = (0..3u8).map(|k| common::bytes(k * 31, 16 << 20)).collect();
    // A read waits first, so the writer's first piece goes straight into it (the direct path);
    // the others go through the ring.
    let mut first_read = InFlight::read(&backend, output.handle(), &[16 << 20]);
    let writes: Vec<InFlight> = frames
        .iter()
        .enumerate()
        .map(|(k, f)| {
            InFlight::write(&backend, input.handle(), &[(f, common::meta(0, 0, i64::try_from(k).unwrap()))])
        })
        .collect();
    let mut got = vec![first_read.frames()];
    for _ in 1..frames.len() {
        got.push(InFlight::read(&backend, output.handle(), &[16 << 20]).frames());
    }
    for mut w in writes {
        assert_eq!(w.wait().status, STATUS_SUCCESS);
    }
    for (k, frames_read) in got.iter().enumerate() {
        assert_eq!(frames_read.len(), 1, "frame {k} in one header");
        let h = &frames_read[0].header;
        assert_eq!(h.options_flags & KSRING_OPTIONSF_CONTINUES, 0, "frame {k} whole");
        assert_eq!(h.options_flags & KsStreamOptions::ENDOFSTREAM.bits(), 0);
        assert_eq!(h.time, i64::try_from(k).unwrap(), "frame {k}'s metadata");
        assert!(frames_read[0].data == frames[k], "frame {k}'s bytes");
    }
    let holds = backend.machine().spin_lock_holds();
    assert!(holds.holds > 0);
    assert!(
        holds.max_bytes <= ksring::HOLD_BUDGET as u64,
        "{} bytes copied under one hold, budget {}",
        holds.max_bytes,
        ksring::HOLD_BUDGET
    );
    assert!(holds.max_bytes > 0, "the copies are counted");
    let s = common::stats(&filter);
    assert_eq!((s.bytes_out, s.frames_out, s.split_parts), (3 * (16 << 20), 3, 0));
    drop((input, output, filter));
    backend.shutdown().assert_clean();
}

/// A 16 MiB frame read into 1 MiB buffers: it comes out in 16 parts, each header full and marked
/// `CONTINUES` but the last, and every hold stays within the budget.
#[test]
fn a_frame_larger_than_the_read_buffer_comes_out_in_full_parts() {
    let backend = common::boot();
    let common::Rig { filter, input, output } = rig_with_a_64_mib_ring(&backend);
    backend.machine().reset_spin_lock_holds();
    let frame = common::bytes(77, 16 << 20);
    let mut write = InFlight::write(&backend, input.handle(), &[(&frame, common::meta(0, 0, 0))]);
    assert_eq!(write.wait().status, STATUS_SUCCESS, "the ring holds the whole frame");
    let mut data = Vec::new();
    for part in 0..16 {
        let frames = InFlight::read(&backend, output.handle(), &[1 << 20]).frames();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data.len(), 1 << 20, "part {part} fills its header");
        let continues = frames[0].header.options_flags & KSRING_OPTIONSF_CONTINUES != 0;
        assert_eq!(continues, part < 15, "part {part}");
        data.extend_from_slice(&frames[0].data);
    }
    assert!(data == frame);
    assert!(backend.machine().spin_lock_holds().max_bytes <= ksring::HOLD_BUDGET as u64);
    assert_eq!(common::stats(&filter).split_parts, 15);
    drop((write, input, output, filter));
    backend.shutdown().assert_clean();
}

/// Through a three-filter chain — push and pull sources copying between their rings and their
/// requests — with 4 MiB frames and the default 4 MiB rings: every byte arrives, and no spin-lock
/// hold anywhere in the chain copies more than the budget.
#[test]
fn a_chain_of_sources_never_copies_more_than_the_budget_under_a_lock() {
    use ksclient::graph::{self, Chain};
    use ksclient::stream::{Config, Progress};
    let backend = common::boot();
    backend.machine().reset_spin_lock_holds();
    let chain = Chain::open(&backend, &request::stream_format()).expect("chain");
    let cfg = Config {
        bytes: 32 << 20,
        frame_min: 1 << 20,
        frame_max: 4 << 20,
        extent_min: 1 << 20,
        extent_max: 4 << 20,
        seed: 0xB16,
        ..Config::default()
    };
    let report = graph::run(&backend, chain, &cfg, &Progress::default()).expect("the chain streams");
    assert!(report.stream.bytes >= 32 << 20);
    let holds = backend.machine().spin_lock_holds();
    assert!(holds.max_bytes > 0, "the sources' copies are counted");
    assert!(
        holds.max_bytes <= ksring::HOLD_BUDGET as u64,
        "{} bytes copied under one hold in the chain, budget {}",
        holds.max_bytes,
        ksring::HOLD_BUDGET
    );
    backend.shutdown().assert_clean();
}

/// Many tiny frames: each frame record costs a hold at least `RECORD_COST` of its budget, so one
/// hold handles at most `HOLD_BUDGET / RECORD_COST` frames (a hold is bounded by the frames it
/// handles, not only by its bytes) — and more than one (frames move in batches, not a lock round
/// trip each). kshost counts the copies made under each hold.
#[test]
fn tiny_frames_move_in_bounded_batches() {
    const FRAMES: usize = 2048;
    let backend = common::boot();
    let common::Rig { filter, input, output } = common::rig(&backend);
    backend.machine().reset_spin_lock_holds();
    let payloads: Vec<Vec<u8>> = (0..FRAMES).map(|k| vec![u8::try_from(k % 251).unwrap()]).collect();
    let frames: Vec<_> = payloads.iter().map(|p| (&p[..], common::meta(0, 0, 0))).collect();
    assert_eq!(InFlight::write(&backend, input.handle(), &frames).wait().status, STATUS_SUCCESS);
    let got = InFlight::read(&backend, output.handle(), &[1; FRAMES]).frames();
    assert_eq!(got.len(), FRAMES);
    assert!(got.iter().zip(&payloads).all(|(f, p)| f.data == *p), "every frame, in order");
    let per_hold = backend.machine().spin_lock_holds().max_copies;
    let bound = 256; // HOLD_BUDGET / RECORD_COST, as `RECORD_COST` documents it
    assert!(per_hold <= bound, "{per_hold} frames copied under one hold, at most {bound}");
    assert!(per_hold > 1, "frames move in batches: {per_hold} per hold");
    drop((input, output, filter));
    backend.shutdown().assert_clean();
}

/// A frame larger than a small ring's largest part arrives in parts, and the ring empties between
/// them while its write is still queued: a read with room for the whole frame waits for the rest
/// instead of completing with the first part — it gets the frame whole, in one header.
#[test]
fn a_frame_that_outgrows_a_small_ring_still_comes_out_whole() {
    use ksabi::KSSTATE_PAUSE;
    let backend = common::boot();
    {
        let filter = Filter::open_first(&backend).expect("filter");
        assert_eq!(filter.set_capacity(ksring_api::MIN_CAPACITY).status, STATUS_SUCCESS);
        let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
        let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
        assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let frame = common::bytes(7, 10_000);
        // Its first part fills the 4 KiB ring; the write waits with the rest.
        let mut write = InFlight::write(&backend, input.handle(), &[(&frame, common::meta(0, 0, 1))]);
        let mut read = InFlight::read(&backend, output.handle(), &[16_384]);
        assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let got = read.frames();
        assert_eq!(write.wait().status, STATUS_SUCCESS);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header.options_flags & KSRING_OPTIONSF_CONTINUES, 0, "not a part");
        assert!(got[0].data == frame, "the whole frame in one header");
    }
    backend.shutdown().assert_clean();
}
