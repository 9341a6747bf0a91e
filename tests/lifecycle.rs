//! States, pending requests, cancel, reset, STOP, end of stream, and closing in every order —
//! the real driver under kshost, whose verifier checks every completion, IRQL and allocation.

mod common;

use std::time::Duration;

use ksabi::{
    KSRESET_BEGIN, KSRESET_END, KSSTATE_ACQUIRE, KSSTATE_PAUSE, KSSTATE_RUN, KSSTATE_STOP, KsStreamOptions,
    STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS,
};
use ksclient::io::InFlight;
use ksclient::{Backend, Filter, Properties, request};
use ksring_api::{KSRING_OPTIONSF_CONTINUES, PIN_INPUT, PIN_OUTPUT};

const EOS: u32 = KsStreamOptions::ENDOFSTREAM.bits();

/// Gives a request time to (wrongly) complete before asserting it has not.
fn still_pending(r: &mut InFlight) -> bool {
    std::thread::sleep(Duration::from_millis(20));
    r.poll().is_none()
}

#[test]
fn states_step_through_and_allocate_the_ring_at_acquire() {
    let backend = common::boot();
    {
        let rig = common::rig_with(&backend, &request::stream_format(), KSSTATE_STOP);
        assert_eq!(common::stats(&rig.filter).capacity, 0);
        assert_eq!(rig.input.set_state(KSSTATE_ACQUIRE).status, STATUS_SUCCESS);
        assert_eq!(common::stats(&rig.filter).capacity, u64::from(ksring_api::DEFAULT_CAPACITY));
        assert_eq!(rig.input.set_capacity(8192).status, STATUS_INVALID_DEVICE_STATE, "ring held");
        assert_eq!(rig.input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(rig.input.state(), Ok(KSSTATE_RUN));
        assert_eq!(rig.input.set_state(KSSTATE_STOP).status, STATUS_SUCCESS, "RUN to STOP in one call");
        assert_eq!(common::stats(&rig.filter).capacity, 0, "freed when no pin holds it");
        for bad in [-1, 4, 0x7FFF_FFFF] {
            assert_eq!(rig.output.set_state(bad).status, STATUS_INVALID_PARAMETER, "state {bad}");
        }
        assert_eq!(rig.output.state(), Ok(KSSTATE_STOP));
        for bad in [0, 4095, 4100, ksring_api::MAX_CAPACITY + 8] {
            assert_eq!(rig.filter.set_capacity(bad).status, STATUS_INVALID_PARAMETER, "capacity {bad}");
        }
        assert_eq!(rig.filter.set_capacity(8192).status, STATUS_SUCCESS);
        assert_eq!(rig.output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        assert_eq!(common::stats(&rig.filter).capacity, 8192);
        let framing = rig.output.framing().unwrap();
        assert_eq!(framing.FrameSize, (8192 - 40) / 2 / 8 * 8);
        assert_eq!(framing.Frames, 8192 / (framing.FrameSize + 40));
    }
    backend.shutdown().assert_clean();
}

#[test]
fn stream_requests_need_the_right_pin_and_state() {
    let backend = common::boot();
    {
        let rig = common::rig_with(&backend, &request::stream_format(), KSSTATE_STOP);
        let frame = common::bytes(1, 10);
        let mut w = InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 0, 0))]);
        assert_eq!(w.wait().status, STATUS_INVALID_DEVICE_STATE, "a write in STOP");
        let mut r = InFlight::read(&backend, rig.output.handle(), &[16]);
        assert_eq!(r.wait().status, STATUS_INVALID_DEVICE_STATE, "a read in STOP");
        assert_eq!(rig.input.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let mut wrong = InFlight::read(&backend, rig.input.handle(), &[16]);
        assert_eq!(wrong.wait().status, ksabi::STATUS_INVALID_DEVICE_REQUEST, "a read on the input pin");
        // In PAUSE a write is accepted but nothing moves.
        let mut w = InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 0, 0))]);
        assert!(still_pending(&mut w));
        assert_eq!(common::stats(&rig.filter).pending_writes, 1);
        assert_eq!(rig.input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!((w.wait().status, w.wait().information), (STATUS_SUCCESS, 10), "RUN lets it in");
        assert_eq!(common::stats(&rig.filter).bytes_in, 10);
    }
    backend.shutdown().assert_clean();
}

#[test]
fn a_pending_read_completes_when_a_write_arrives() {
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let mut r = InFlight::read(&backend, rig.output.handle(), &[64, 64]);
        assert!(still_pending(&mut r));
        assert_eq!(common::stats(&rig.filter).pending_reads, 1);
        let frame = common::bytes(9, 40);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut w =
                    InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0x10, 77, 123))]);
                assert_eq!(w.wait().status, STATUS_SUCCESS);
            });
        });
        let got = r.frames();
        assert_eq!(r.wait().information, 56, "one header filled");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, frame);
        assert_eq!(
            (got[0].header.options_flags, got[0].header.type_specific_flags, got[0].header.time),
            (0x10, 77, 123)
        );
        let s = common::stats(&rig.filter);
        assert_eq!(
            (s.direct_frames, s.pending_reads, s.fill),
            (1, 0, 0),
            "straight from the writer's buffer"
        );
    }
    backend.shutdown().assert_clean();
}

#[test]
fn a_full_ring_holds_writes_until_readers_make_room() {
    let backend = common::boot();
    {
        let rig = common::rig_with(&backend, &request::stream_format(), KSSTATE_STOP);
        assert_eq!(rig.filter.set_capacity(4096).status, STATUS_SUCCESS);
        assert_eq!(rig.input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(rig.output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let frames: Vec<Vec<u8>> = (0..5).map(|i| common::bytes(i, 1500)).collect();
        let list: Vec<(&[u8], _)> = frames.iter().map(|f| (f.as_slice(), common::meta(0, 0, 0))).collect();
        let mut w = InFlight::write(&backend, rig.input.handle(), &list);
        assert!(still_pending(&mut w), "7500 bytes do not fit 4096");
        let s = common::stats(&rig.filter);
        assert!(s.bytes_in > 0 && s.bytes_in < 7500, "partly accepted: {}", s.bytes_in);
        assert_eq!(rig.output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut got = Vec::new();
        while got.len() < 5 {
            let mut r = InFlight::read(&backend, rig.output.handle(), &[2000; 3]);
            got.extend(r.frames());
        }
        assert_eq!((w.wait().status, w.wait().information), (STATUS_SUCCESS, 7500));
        assert_eq!(got.iter().map(|f| f.data.clone()).collect::<Vec<_>>(), frames);
    }
    backend.shutdown().assert_clean();
}

#[test]
fn cancel_keeps_what_was_accepted_and_loses_nothing() {
    let backend = common::boot();
    {
        let rig = common::rig_with(&backend, &request::stream_format(), KSSTATE_STOP);
        assert_eq!(rig.filter.set_capacity(4096).status, STATUS_SUCCESS);
        assert_eq!(rig.input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(rig.output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let frames: Vec<Vec<u8>> = (0..4).map(|i| common::bytes(i, 1800)).collect();
        let list: Vec<(&[u8], _)> = frames.iter().map(|f| (f.as_slice(), common::meta(0, 0, 0))).collect();
        let mut w = InFlight::write(&backend, rig.input.handle(), &list);
        assert!(still_pending(&mut w));
        rig.input.cancel().unwrap();
        let io = w.wait();
        assert_eq!(io.status, STATUS_CANCELLED);
        assert!(io.information > 0 && io.information < 7200, "bytes accepted before the cancel");
        assert_eq!(common::stats(&rig.filter).pending_writes, 0);
        // Exactly the accepted bytes come out, in order.
        assert_eq!(rig.output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut out = Vec::new();
        while out.len() < io.information {
            let mut r = InFlight::read(&backend, rig.output.handle(), &[4096]);
            for f in r.frames() {
                out.extend_from_slice(&f.data);
            }
        }
        assert_eq!(out, frames.concat()[..io.information]);
        // A pending read cancelled with nothing in it.
        let mut r = InFlight::read(&backend, rig.output.handle(), &[64]);
        assert!(still_pending(&mut r));
        rig.output.cancel().unwrap();
        assert_eq!((r.wait().status, r.wait().information), (STATUS_CANCELLED, 0));
        let s = common::stats(&rig.filter);
        assert_eq!(
            (s.pending_reads, s.bytes_in, s.bytes_out),
            (0, io.information as u64, io.information as u64)
        );
    }
    backend.shutdown().assert_clean();
}

#[test]
fn reset_discards_and_refuses_until_end() {
    let backend = common::boot();
    {
        let rig = common::rig_with(&backend, &request::stream_format(), KSSTATE_RUN);
        assert_eq!(rig.output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let frame = common::bytes(3, 1000);
        let mut w = InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 0, 0))]);
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        assert_eq!(rig.input.reset(KSRESET_BEGIN).status, STATUS_SUCCESS);
        let s = common::stats(&rig.filter);
        assert_eq!((s.discarded_frames, s.discarded_bytes, s.fill), (1, 1000, 0), "flushed");
        let mut refused = InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 0, 0))]);
        assert_eq!(refused.wait().status, STATUS_DEVICE_NOT_READY);
        assert_eq!(rig.input.reset(7).status, STATUS_INVALID_PARAMETER, "neither BEGIN nor END");
        assert_eq!(rig.input.reset(KSRESET_END).status, STATUS_SUCCESS);
        assert_eq!(rig.output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut w = InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 5, 0))]);
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        let mut r = InFlight::read(&backend, rig.output.handle(), &[2000]);
        let got = r.frames();
        assert_eq!((got.len(), got[0].header.type_specific_flags), (1, 5), "only the frame after the reset");
        // A reset of the output cancels its pending reads.
        let mut pending = InFlight::read(&backend, rig.output.handle(), &[100]);
        assert!(still_pending(&mut pending));
        assert_eq!(rig.output.reset(KSRESET_BEGIN).status, STATUS_SUCCESS);
        assert_eq!(pending.wait().status, STATUS_CANCELLED);
        assert_eq!(rig.output.reset(KSRESET_END).status, STATUS_SUCCESS);
    }
    backend.shutdown().assert_clean();
}

#[test]
fn stop_discards_what_the_ring_holds() {
    let backend = common::boot();
    {
        let rig = common::rig_with(&backend, &request::stream_format(), KSSTATE_RUN);
        assert_eq!(rig.output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let frames: Vec<Vec<u8>> = (0..3).map(|i| common::bytes(i, 700)).collect();
        let list: Vec<(&[u8], _)> = frames.iter().map(|f| (f.as_slice(), common::meta(0, 0, 0))).collect();
        let mut w = InFlight::write(&backend, rig.input.handle(), &list);
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        assert_eq!(rig.input.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
        let s = common::stats(&rig.filter);
        assert_eq!((s.discarded_frames, s.discarded_bytes, s.fill), (3, 2100, 0));
        assert_eq!(s.bytes_in, s.bytes_out + s.discarded_bytes, "every byte accounted for");
        assert_eq!(s.capacity, u64::from(ksring_api::DEFAULT_CAPACITY), "the output still holds the ring");
    }
    backend.shutdown().assert_clean();
}

#[test]
fn closing_the_input_lets_readers_drain_then_see_end_of_stream() {
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        assert_eq!(rig.output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let frames: Vec<Vec<u8>> = (0..3).map(|i| common::bytes(i, 300)).collect();
        let list: Vec<(&[u8], _)> = frames.iter().map(|f| (f.as_slice(), common::meta(0, 0, 0))).collect();
        let mut w = InFlight::write(&backend, rig.input.handle(), &list);
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        drop(w);
        rig.input.close().unwrap();
        assert_eq!(rig.output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        // The frames, with a split one, then the end.
        let mut r = InFlight::read(&backend, rig.output.handle(), &[300, 200, 200]);
        let got = r.frames();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].data, frames[0]);
        assert_eq!(got[1].header.options_flags, KSRING_OPTIONSF_CONTINUES);
        assert_eq!([got[1].data.clone(), got[2].data.clone()].concat(), frames[1]);
        let mut r = InFlight::read(&backend, rig.output.handle(), &[500, 500]);
        let got = r.frames();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].data, frames[2]);
        assert_eq!((got[1].header.options_flags, got[1].header.data_used), (EOS, 0), "end of stream follows");
        for _ in 0..2 {
            let mut again = InFlight::read(&backend, rig.output.handle(), &[10]);
            let got = again.frames();
            assert_eq!((got.len(), got[0].header.options_flags), (1, EOS), "and again, at once");
        }
        // A new input pin starts a new stream.
        let input = rig.filter.connect(PIN_INPUT, &request::stream_format()).unwrap();
        assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut pending = InFlight::read(&backend, rig.output.handle(), &[10]);
        assert!(still_pending(&mut pending), "no end of stream while an input is connected");
        drop(input);
        assert_eq!(pending.frames()[0].header.options_flags, EOS);
    }
    backend.shutdown().assert_clean();
}

/// Closes the three handles in `order` (0 filter, 1 input, 2 output) with requests pending on
/// both pins.
fn close_in_order(order: [usize; 3]) {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        assert_eq!(f.set_capacity(4096).status, STATUS_SUCCESS);
        let input = f.connect(PIN_INPUT, &request::stream_format()).unwrap();
        let output = f.connect(PIN_OUTPUT, &request::stream_format()).unwrap();
        assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(output.set_state(KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let big = common::bytes(0, 6000);
        let mut w = InFlight::write(&backend, input.handle(), &[(&big, common::meta(0, 0, 0))]);
        let mut r = InFlight::read(&backend, output.handle(), &[64]);
        assert!(still_pending(&mut w) && still_pending(&mut r));
        let handles = [f.handle(), input.handle(), output.handle()];
        std::mem::forget((f, input, output)); // closed by hand below, in order
        for i in order {
            backend.close(handles[i]).expect("close");
        }
        let (wi, ri) = (w.wait(), r.wait());
        assert_eq!((wi.status, ri.status), (STATUS_CANCELLED, STATUS_CANCELLED), "order {order:?}");
    }
    let report = backend.shutdown();
    report.assert_clean();
}

#[test]
fn closing_handles_in_every_order_ends_clean() {
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        close_in_order(order);
    }
}

#[test]
fn debug_output_names_the_driver() {
    let backend = common::boot();
    assert!(backend.machine().debug_output().iter().any(|l| l.contains("ksring: DriverEntry done")));
    backend.shutdown().assert_clean();
    let _ = PIN_OUTPUT;
}
