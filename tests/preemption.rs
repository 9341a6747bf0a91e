//! A driver thread preempted between two holds of a ring lock, with a request in progress (issue
//! 17: what the stream path decides there). The pumps move at most `HOLD_BUDGET` bytes per hold
//! and keep a request that has more to come "in progress" — acquired from its queue, not
//! cancelable — until the next hold. At `PASSIVE_LEVEL` Windows may preempt the pump right
//! between the two; kshost's preemption point stops it there (`Machine::preempt_after_hold`)
//! while the test acts on another thread.

mod common;

use std::time::Duration;

use ksabi::{KSSTATE_RUN, KSSTATE_STOP, STATUS_SUCCESS};
use ksclient::io::InFlight;
use ksclient::{Filter, Properties, request};
use ksring::HOLD_BUDGET;
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

/// Bytes of the frame a read takes in several holds.
const FRAME: usize = 4 * HOLD_BUDGET;

/// A filter with a 4 MiB ring, both pins in RUN, and one `FRAME`-byte frame in the ring.
fn rig_with_a_frame(backend: &ksclient::emulated::Emulated) -> common::Rig<'_> {
    let filter = Filter::open_first(backend).expect("filter");
    assert_eq!(filter.set_capacity(4 << 20).status, STATUS_SUCCESS);
    let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
    let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
    assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    let frame = common::bytes(5, FRAME);
    let mut write = InFlight::write(backend, input.handle(), &[(&frame, common::meta(0, 0, 0))]);
    assert_eq!(write.wait().status, STATUS_SUCCESS);
    common::Rig { filter, input, output }
}

/// STOP on the output while the read pump is preempted between two holds of a read: STOP cancels
/// the pin's requests — including the one in progress, which the pump is not holding a lock on —
/// so the read has completed when the STOP request returns (KS: a pin going to STOP completes its
/// pending I/O), with the part it already holds. It must not wait for the preempted thread.
#[test]
fn stop_completes_a_read_the_preempted_pump_has_in_progress() {
    let backend = common::boot();
    {
        let rig = rig_with_a_frame(&backend);
        let m = backend.machine();
        let handle = kshost::Handle::from_raw(rig.output.handle().0);
        let reader = m.kernel_reader_unstarted(handle, 1, FRAME).expect("kernel reader");
        let preemption = m.preempt_after_hold(HOLD_BUDGET as u64);
        std::thread::scope(|s| {
            let pump = s.spawn(|| reader.start(1));
            assert!(
                preemption.wait_paused(Duration::from_secs(10)),
                "the read pump stopped between two holds"
            );
            assert_eq!(rig.output.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
            let done = reader.completed();
            preemption.resume();
            pump.join().expect("the reader's thread");
            assert_eq!(done.len(), 1, "the read completed within STOP: {done:?}");
            assert_eq!(done[0].0.status, STATUS_SUCCESS, "a read cancelled with data delivers it: {done:?}");
            assert_eq!(done[0].1, HOLD_BUDGET, "with the part the first hold copied");
        });
        let results = reader.finish(Duration::from_secs(10));
        assert_eq!(results.len(), 1);
        assert_eq!(common::stats(&rig.filter).bytes_out, HOLD_BUDGET as u64);
    }
    backend.shutdown().assert_clean();
}

/// A cancel that comes while a read is in progress between two holds (`IoCancelIrp` finds no
/// cancel routine on an acquired IRP and only sets `Cancel`) ends it at the next hold: the read
/// completes with the part it holds, and the rest of the frame stays in the ring for the next.
#[test]
fn a_read_cancelled_while_in_progress_ends_at_the_next_hold() {
    let backend = common::boot();
    {
        let rig = rig_with_a_frame(&backend);
        let m = backend.machine();
        let handle = kshost::Handle::from_raw(rig.output.handle().0);
        // Cancelled as soon as the pump acquires it: the first hold still fills one budget's worth.
        m.cancel_next_acquired_irp();
        let reader = m.kernel_reader(handle, 1, FRAME, 1).expect("kernel reader");
        let results = reader.finish(Duration::from_secs(10));
        assert_eq!(results.len(), 1);
        assert_eq!(
            results[0].0.status, STATUS_SUCCESS,
            "a read cancelled with data delivers it: {results:?}"
        );
        assert_eq!(results[0].1, HOLD_BUDGET, "only what the hold before the cancel was seen copied");
        let rest = InFlight::read(&backend, rig.output.handle(), &[FRAME]).frames();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].data.len(), FRAME - HOLD_BUDGET, "the rest of the frame is read next");
        assert!(rest[0].data == common::bytes(5, FRAME)[HOLD_BUDGET..], "in order");
    }
    backend.shutdown().assert_clean();
}

/// A writer preempted between two holds of one frame, its first part already copied straight
/// into a waiting read, is reset (`KSRESET_BEGIN`/`END` on the input: its write is cancelled).
/// With no writer left, the read completes with that part (marked `CONTINUES`: it is not the
/// whole frame). The frame was cut short there: the next frame written first ends it — an empty
/// last part with the cut frame's metadata — so that a client joining parts never joins the cut
/// frame to the next one, which comes out on its own.
#[test]
fn a_frame_cut_short_in_a_waiting_read_is_ended_before_the_next() {
    use ksring_api::KSRING_OPTIONSF_CONTINUES;
    let backend = common::boot();
    {
        let filter = Filter::open_first(&backend).expect("filter");
        let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
        let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
        assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut read = InFlight::read(&backend, output.handle(), &[FRAME]);
        let first = common::bytes(3, FRAME - 100);
        let preemption = backend.machine().preempt_after_hold(HOLD_BUDGET as u64);
        let cut = std::thread::scope(|s| {
            let writer =
                s.spawn(|| InFlight::write(&backend, input.handle(), &[(&first, common::meta(0, 0, 1))]));
            assert!(preemption.wait_paused(Duration::from_secs(10)), "the writer stopped between two holds");
            assert_eq!(input.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
            assert_eq!(input.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
            preemption.resume();
            writer.join().expect("writer").wait()
        });
        assert_eq!(cut.status, ksabi::STATUS_CANCELLED, "the reset cancelled the write");
        assert_eq!(cut.information, HOLD_BUDGET, "after its first part");
        let part = read.frames();
        let shape = |frames: &[ksclient::io::Frame]| {
            frames.iter().map(|f| (f.data.len(), f.header.options_flags, f.header.time)).collect::<Vec<_>>()
        };
        assert_eq!(shape(&part), [(HOLD_BUDGET, KSRING_OPTIONSF_CONTINUES, 1)], "the part the read holds");
        assert!(part[0].data == first[..HOLD_BUDGET], "what was accepted of the frame");
        // A read waits (the ring is empty): the cut frame's end and the next frame go straight
        // into it.
        let mut waiting = InFlight::read(&backend, output.handle(), &[FRAME, FRAME]);
        let next = common::bytes(200, 10);
        let mut w = InFlight::write(&backend, input.handle(), &[(&next, common::meta(0, 0, 2))]);
        let got = waiting.frames();
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        assert_eq!(
            common::stats(&filter).direct_frames,
            2,
            "the cut frame's end and the next frame went direct"
        );
        assert_eq!(shape(&got), [(0, 0, 1), (10, 0, 2)], "the cut frame's end, then the next frame alone");
        assert!(got[1].data == next);
    }
    backend.shutdown().assert_clean();
}

/// A write checked by the dispatch routine (pin in RUN) whose thread is preempted before it
/// queues the request, while another thread moves the pin to STOP — or begins a reset — whose
/// cancel finds nothing queued yet. Once queued, the write is cancelled all the same: it must
/// not wait on a stopped (or resetting) pin until it closes.
#[test]
fn a_write_queued_after_a_stop_or_reset_began_is_cancelled() {
    for stop in [true, false] {
        let backend = common::boot();
        {
            let rig = common::rig(&backend);
            let frame = common::bytes(1, 100);
            let preemption = backend.machine().preempt_before("KsAddIrpToCancelableQueue");
            let mut write = std::thread::scope(|s| {
                let writer = s.spawn(|| {
                    InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 0, 0))])
                });
                assert!(preemption.wait_paused(Duration::from_secs(10)), "the writer stopped before queuing");
                if stop {
                    assert_eq!(rig.input.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
                } else {
                    assert_eq!(rig.input.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
                }
                preemption.resume();
                writer.join().expect("writer")
            });
            let done = (0..5000).any(|_| {
                std::thread::sleep(Duration::from_millis(1));
                write.poll().is_some()
            });
            let case = if stop { "STOP" } else { "KSRESET_BEGIN" };
            if !done {
                // Let the pin go so that the machine can shut down; the test has failed.
                let _ = rig.input.cancel();
            }
            assert!(done, "{case}: the write queued after it began still waits");
            assert_eq!(write.wait().status, ksabi::STATUS_CANCELLED, "{case}");
            if !stop {
                assert_eq!(rig.input.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
            }
        }
        backend.shutdown().assert_clean();
    }
}
