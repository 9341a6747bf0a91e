//! Object lifetimes as Windows has them (WINDOWS-AUDIT F1): the I/O manager holds no reference
//! on a pin's `RelatedFileObject`, and a process's handles close in ascending order when it exits
//! — so a filter's handle routinely closes before its pins'. The pins must go on working, and the
//! filter must go away only after its last pin. Special pool is on (kshost's default): a pin that
//! touched a freed filter would stop the test process with `DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL`.

mod common;

use ksabi::{KSSTATE_RUN, KSSTATE_STOP, STATUS_CANCELLED, STATUS_SUCCESS};
use ksclient::io::InFlight;
use ksclient::{Filter, Properties, graph, request};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

/// Closing the filter handle first leaves its pins whole: a frame written before the close is read
/// after it, states still change, and everything is freed once the pins close.
#[test]
fn pins_outlive_their_filters_handle() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    let common::Rig { filter, input, output } = common::rig(&backend);
    let payload = common::bytes(7, 3000);
    let mut write = InFlight::write(&backend, input.handle(), &[(&payload, common::meta(0, 0, 5))]);
    assert_eq!(write.wait().status, STATUS_SUCCESS);
    filter.close().expect("close the filter handle");

    let mut read = InFlight::read(&backend, output.handle(), &[4096]);
    let frames = read.frames();
    assert_eq!(read.wait().status, STATUS_SUCCESS);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].data, payload, "the frame written before the filter closed");
    assert_eq!(common::stats(&output).bytes_out, 3000);
    assert_eq!(input.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
    assert_eq!(output.state().expect("state"), KSSTATE_RUN);

    input.close().expect("close input");
    output.close().expect("close output");
    assert_eq!(common::pool_bytes(&backend), baseline, "filter, pins and ring all freed");
    backend.shutdown().assert_clean();
}

/// A process exits with its filter and both pins open and a read pending: the thread rundown
/// cancels the read first (`IoCancelThreadIo`, before any handle closes: it completes
/// `STATUS_CANCELLED`, holding nothing), then the handles close, filter first; everything is
/// freed, and the driver serves the next process as before. (Until kshost modelled the rundown,
/// this test expected the read to end with end-of-stream from the input's close — an order Windows
/// never shows.)
#[test]
fn process_exit_with_filter_and_pins_open() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let rig = common::rig(&backend);
        let mut read = InFlight::read(&backend, rig.output.handle(), &[512]);
        assert!(read.poll().is_none(), "the read waits for data");
        backend.exit_process();
        assert_eq!(read.wait().status, STATUS_CANCELLED, "cancelled by the rundown, not ended by a close");
        assert!(read.frames().is_empty(), "it held no data");
        std::mem::forget(rig); // its handles died with the process
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "rundown freed the filter, pins and ring");

    let rig = common::rig(&backend);
    let payload = common::bytes(1, 100);
    let mut write = InFlight::write(&backend, rig.input.handle(), &[(&payload, common::meta(0, 0, 0))]);
    assert_eq!(write.wait().status, STATUS_SUCCESS);
    let mut read = InFlight::read(&backend, rig.output.handle(), &[100]);
    assert_eq!(read.frames()[0].data, payload, "the next process streams as before");
    drop((write, read, rig));
    backend.shutdown().assert_clean();
}

/// A process exits with a whole three-filter chain open — IRP sources pushing and pulling, filters
/// opened first so closed first — and everything ends cleanly.
#[test]
fn process_exit_with_a_chain_of_sources_open() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        backend.exit_process();
        std::mem::forget(chain);
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "rundown freed every filter, pin and source");
    let filter = Filter::open_first(&backend).expect("a new filter after the exit");
    let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
    let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
    drop((input, output, filter));
    backend.shutdown().assert_clean();
}

/// A process exits in the middle of streaming through a chain: a read waits at F3's output before
/// anything is written, then more is written into F1 than the three rings hold, so writes wait at
/// F1's input. Every client request completes (none is left pending, which on Windows would hold
/// the exit for 5 minutes), the handles close, the sources stop, and every byte of pool comes back.
/// (A regression test of the chain's teardown under exit, not of the rundown's order: the pins'
/// cleanups would cancel the same requests, and it passed before kshost ran threads down.)
#[test]
fn process_exit_while_a_chain_streams_completes_the_clients_requests_and_frees_everything() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        let capacity = chain.filters[0].capacity().expect("capacity") as usize;
        let mut read = InFlight::read(&backend, chain.client_output.handle(), &[capacity * 8]);
        let frame = common::bytes(7, 256 << 10);
        let frames = 3 * capacity / frame.len() + 8;
        let mut writes: Vec<InFlight> = (0..frames)
            .map(|i| {
                InFlight::write(
                    &backend,
                    chain.client_input.handle(),
                    &[(&frame, common::meta(0, 0, i64::try_from(i).unwrap()))],
                )
            })
            .collect();
        // The chain holds at most its three rings, so writes go in until they are full and the
        // rest wait for good: wait until the count of waiting writes stops moving.
        let mut waiting = || writes.iter_mut().map(|w| w.poll().is_none()).filter(|&w| w).count();
        let (mut last, mut same) = (usize::MAX, 0);
        assert!(
            common::settles(|| {
                let now = waiting();
                same = if now == last { same + 1 } else { 0 };
                last = now;
                same >= 200
            }),
            "the rings filled"
        );
        assert!(last > 0, "later writes wait");
        backend.exit_process();
        let r = read.wait();
        assert!(r.status == STATUS_SUCCESS || r.status == STATUS_CANCELLED, "the read completed: {r:?}");
        for w in &mut writes {
            let io = w.wait();
            assert!(
                io.status == STATUS_SUCCESS || io.status == STATUS_CANCELLED,
                "every write completed: {io:?}"
            );
        }
        assert!(
            writes.iter_mut().any(|w| w.wait().status == STATUS_CANCELLED),
            "a write still waiting when the process exited was cancelled"
        );
        std::mem::forget(chain); // its handles died with the process
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "rundown freed every filter, pin, source and ring");
    backend.shutdown().assert_clean();
}

/// What the client does while a chain is idle: nothing written, and a read waiting at F3's output
/// lent to F3's pull source — off F3's queue, its buffers named by the source's read, which F2
/// holds for as long as nothing comes (`src/source/lend.rs`).
#[derive(Clone, Copy, Debug)]
enum WhileIdle {
    /// `CancelIoEx` on F3's output.
    CancelTheRead,
    /// Close F3's output pin.
    CloseTheReadersPin,
    /// Stop F3's output pin, then run it again.
    StopTheReadersPin,
    /// Stop F3's input pin (the pull source), then run it again.
    StopThePullSource,
    /// Close F3's input pin (the pull source).
    CloseThePullSource,
    /// Close F2 (its output, which F3 reads, then its input and the filter).
    CloseTheMiddleFilter,
    /// Exit the process.
    Exit,
}

/// Whether the chain's client read is lent: off F3's queue, F2 holding the one read that names
/// its buffers.
fn lent(chain: &graph::Chain<'_>) -> bool {
    common::stats(&chain.filters[2]).pending_reads == 0 && common::stats(&chain.filters[1]).pending_reads == 1
}

/// Writes one frame into the chain and reads it at the end with a new read (lent, as the first
/// was): the stream goes on, in order.
fn one_frame_through(backend: &ksclient::emulated::Emulated, chain: &graph::Chain<'_>, what: WhileIdle) {
    let frame = common::bytes(3, 48 << 10);
    let mut next = InFlight::read(backend, chain.client_output.handle(), &[64 << 10]);
    assert!(common::settles(|| lent(chain)), "{what:?}: the next read is lent");
    let mut w = InFlight::write(backend, chain.client_input.handle(), &[(&frame, common::meta(0, 0, 5))]);
    assert_eq!(w.wait().status, STATUS_SUCCESS);
    let got = next.frames();
    assert_eq!(got.len(), 1, "{what:?}: one frame");
    assert!(got[0].data == frame, "{what:?}: the frame written, whole");
    assert_eq!(got[0].header.time, 5);
}

/// Opens a chain in RUN with a read lent at its end, does `what`, and returns what the read got;
/// checks that every byte of pool comes back.
fn idle_chain_with_a_read_waiting(what: WhileIdle) -> Vec<ksclient::io::Frame> {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    let mut read;
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        // F3's source had read ahead into its ring (F2 holds those reads): it takes them back and
        // lends the client's read instead.
        assert!(common::settles(|| lent(&chain)), "{what:?}: the client's read is lent");
        assert!(read.poll().is_none(), "{what:?}: nothing to read");
        let copied = common::stats(&chain.filters[2]).copied_out;
        match what {
            WhileIdle::CancelTheRead => {
                chain.client_output.cancel().expect("cancel");
                assert_eq!(read.wait().status, STATUS_CANCELLED, "{what:?}");
                assert!(
                    common::settles(|| common::stats(&chain.filters[1]).pending_reads == 0),
                    "the source's read that named it was cancelled"
                );
                one_frame_through(&backend, &chain, what);
                assert_eq!(common::stats(&chain.filters[2]).copied_out, copied, "F3 copied nothing: lent");
            }
            WhileIdle::StopTheReadersPin => {
                assert_eq!(chain.client_output.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
                assert_eq!(read.wait().status, STATUS_CANCELLED, "{what:?}");
                assert_eq!(chain.client_output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
                one_frame_through(&backend, &chain, what);
            }
            WhileIdle::StopThePullSource => {
                assert_eq!(chain.pull.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
                // Given back: queued at F3 again, not completed.
                assert!(
                    common::settles(|| {
                        common::stats(&chain.filters[2]).pending_reads == 1
                            && common::stats(&chain.filters[1]).pending_reads == 0
                    }),
                    "{what:?}: the read is back on F3's queue"
                );
                assert!(read.poll().is_none(), "{what:?}: still waiting");
                assert_eq!(chain.pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
                assert!(common::settles(|| lent(&chain)), "{what:?}: lent again");
                let frame = common::bytes(9, 40 << 10);
                let mut w = InFlight::write(
                    &backend,
                    chain.client_input.handle(),
                    &[(&frame, common::meta(0, 0, 7))],
                );
                assert_eq!(w.wait().status, STATUS_SUCCESS);
                assert_eq!(read.wait().status, STATUS_SUCCESS, "{what:?}");
                let got = read.frames();
                assert!(got.len() == 1 && got[0].data == frame, "{what:?}: the frame written");
                assert_eq!(common::stats(&chain.filters[2]).copied_out, copied, "F3 copied nothing: lent");
            }
            WhileIdle::CloseTheReadersPin
            | WhileIdle::CloseTheMiddleFilter
            | WhileIdle::CloseThePullSource => {
                let mut handles = chain.into_handles();
                let first: &[graph::Role] = match what {
                    WhileIdle::CloseTheReadersPin => &[graph::Role::ClientOutput],
                    WhileIdle::CloseThePullSource => &[graph::Role::PullSource],
                    _ => &[
                        graph::Role::Sink(1, PIN_OUTPUT),
                        graph::Role::Sink(1, PIN_INPUT),
                        graph::Role::Filter(1),
                    ],
                };
                for role in first {
                    let at = handles.iter().position(|(r, _)| r == role).expect("the role's handle");
                    handles.remove(at).1.close().expect("close");
                }
                // The read ends before the rest closes.
                let io = read.wait();
                assert_eq!(
                    io.status,
                    if matches!(what, WhileIdle::CloseTheReadersPin) {
                        STATUS_CANCELLED
                    } else {
                        STATUS_SUCCESS
                    },
                    "{what:?}: {io:?}"
                );
                for (role, h) in handles {
                    h.close().unwrap_or_else(|e| panic!("{what:?}: close {role}: {e}"));
                }
            }
            WhileIdle::Exit => {
                backend.exit_process();
                assert_eq!(read.wait().status, STATUS_CANCELLED, "{what:?}");
                std::mem::forget(chain); // its handles died with the process
            }
        }
    }
    let got = read.frames();
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "{what:?}: every filter, pin, source and ring freed");
    backend.shutdown().assert_clean();
    got
}

/// The client cancels its lent read while F2 holds the source's read that names it: our cancel
/// routine has the source cancel that read, the client's completes cancelled, and the next frame
/// written reaches the next read (lent too).
#[test]
fn an_idle_chains_read_cancelled_completes_and_the_stream_goes_on() {
    idle_chain_with_a_read_waiting(WhileIdle::CancelTheRead);
}

/// The client closes its reading pin while its read is lent: asked back, the read is cancelled.
#[test]
fn an_idle_chains_reading_pin_closed_cancels_the_read() {
    idle_chain_with_a_read_waiting(WhileIdle::CloseTheReadersPin);
}

/// The reading pin goes to STOP while its read is lent: the read is cancelled, as a queued one
/// is; back in RUN, the stream goes on.
#[test]
fn an_idle_chains_reading_pin_stopped_cancels_the_read() {
    idle_chain_with_a_read_waiting(WhileIdle::StopTheReadersPin);
}

/// The pull source goes to STOP while it has the client's read lent: the read goes back to F3's
/// queue, waiting as before; back in RUN, it is lent again and gets the next frame.
#[test]
fn an_idle_chains_pull_source_stopped_gives_the_read_back() {
    idle_chain_with_a_read_waiting(WhileIdle::StopThePullSource);
}

/// The pull source closes while it has the client's read lent: its cleanup waits for the read,
/// given back to F3's queue, where F3's ended input gives it the end of the stream.
#[test]
fn an_idle_chains_pull_source_closed_ends_the_stream_for_the_reader() {
    let frames = idle_chain_with_a_read_waiting(WhileIdle::CloseThePullSource);
    assert!(frames.len() == 1 && frames[0].data.is_empty(), "one header, no data");
    assert_ne!(frames[0].header.options_flags & ksabi::KsStreamOptions::ENDOFSTREAM.bits(), 0);
}

/// F2 goes while it holds the source's read that names the client's: its cleanup cancels it, the
/// client's read goes back to F3's queue, F3's input ends, and the read gets the end of the
/// stream (no data).
#[test]
fn an_idle_chains_middle_filter_closed_ends_the_stream_for_the_reader() {
    let frames = idle_chain_with_a_read_waiting(WhileIdle::CloseTheMiddleFilter);
    assert_eq!(frames.len(), 1, "one header back");
    assert!(frames[0].data.is_empty(), "no data");
    assert_ne!(
        frames[0].header.options_flags & ksabi::KsStreamOptions::ENDOFSTREAM.bits(),
        0,
        "end of stream"
    );
}

/// The process exits while the client's read is lent: the thread's rundown cancels it through our
/// cancel routine (on no queue, nothing else would reach it: Windows would wait five minutes),
/// and everything is freed.
#[test]
fn an_idle_chains_process_exit_cancels_the_read_and_frees_everything() {
    idle_chain_with_a_read_waiting(WhileIdle::Exit);
}

/// A cancel of a lent read races the source's read that names it: the read's cancel routine is
/// stopped right after it let go of the cancel spin lock — the read's cancel routine already
/// taken, the source not yet told — while a frame arrives and F2 fills the source's read. The
/// source must not touch the client's read until the routine says it is done with it (on Windows
/// the routine could still be reading the request: completing it then is a use after free). Once
/// the routine goes on, the read completes with the frame: a cancel loses no data that arrived.
#[test]
fn a_lent_reads_cancel_routine_stopped_mid_way_keeps_the_read_until_it_is_done() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        let mut read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        assert!(common::settles(|| lent(&chain)), "the client's read is lent");
        let stop = backend.machine().preempt_after("IoReleaseCancelSpinLock");
        std::thread::scope(|s| {
            let cancel = s.spawn(|| chain.client_output.cancel());
            assert!(
                stop.wait_paused(std::time::Duration::from_secs(10)),
                "the lent read's cancel routine stopped after letting go of the cancel spin lock"
            );
            let frame = common::bytes(5, 32 << 10);
            let mut w =
                InFlight::write(&backend, chain.client_input.handle(), &[(&frame, common::meta(0, 0, 9))]);
            assert_eq!(w.wait().status, STATUS_SUCCESS);
            // F2 filled the source's read (and so the client's buffer): the read is back.
            assert!(
                common::settles(|| {
                    let f2 = common::stats(&chain.filters[1]);
                    f2.pending_reads == 0 && f2.bytes_out == frame.len() as u64
                }),
                "F2 filled the source's read"
            );
            backend.machine().settle();
            assert!(read.poll().is_none(), "the read is kept while its cancel routine runs");
            stop.resume();
            assert!(cancel.join().expect("the cancel thread").is_ok(), "CancelIoEx");
            assert_eq!(read.wait().status, STATUS_SUCCESS, "completed with what it got");
            let got = read.frames();
            assert!(got.len() == 1 && got[0].data == frame, "the frame, whole");
        });
        assert_eq!(common::stats(&chain.filters[2]).copied_out, 0, "F3 copied nothing: lent");
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "every filter, pin, source and ring freed");
    backend.shutdown().assert_clean();
}

/// F2's output has not started (STOP) when the client's read arrives at F3: the source lends it,
/// F2 refuses the request, and the read goes back to F3's queue — where the source leaves it until
/// F2 says it runs, instead of lending it again and again (a request refused at once, for as long
/// as F2 stays stopped). Once F2 runs, the read is lent and gets the next frame.
#[test]
fn a_read_lent_to_a_stopped_upstream_pin_waits_for_it_to_run() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        assert_eq!(chain.client_output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(chain.pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        assert!(
            common::settles(|| common::stats(&chain.filters[2]).pending_reads == 1),
            "the read is back on F3's queue"
        );
        let sent = backend.machine().driver_irps_sent();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let again = backend.machine().driver_irps_sent() - sent;
        assert!(again <= 2, "the source sent {again} requests in 200 ms to a pin that refuses them");
        assert!(read.poll().is_none(), "the read waits");
        chain.set_state(KSSTATE_RUN).expect("run");
        assert!(common::settles(|| lent(&chain)), "lent once F2 runs");
        let frame = common::bytes(4, 30 << 10);
        let mut w =
            InFlight::write(&backend, chain.client_input.handle(), &[(&frame, common::meta(0, 0, 3))]);
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        assert_eq!(read.wait().status, STATUS_SUCCESS);
        let got = read.frames();
        assert!(got.len() == 1 && got[0].data == frame, "the frame written");
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "every filter, pin, source and ring freed");
    backend.shutdown().assert_clean();
}

/// The reading pin stops and runs again — or resets and ends the reset — before the source has
/// had its lent read back: the read completes cancelled all the same, as a queued read would have
/// at the STOP or the reset, and the stream goes on with the next read. The source is stopped just
/// before it cancels its request (`IoCancelIrp`), so that the RUN (or the reset's end) surely comes
/// before the request is back.
#[test]
fn a_lent_read_is_cancelled_by_a_stop_or_reset_even_when_the_pin_runs_again_at_once() {
    for reset in [false, true] {
        let backend = common::boot();
        let baseline = common::pool_bytes(&backend);
        {
            let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
            chain.set_state(KSSTATE_RUN).expect("run");
            let mut read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
            assert!(common::settles(|| lent(&chain)), "the client's read is lent");
            let out = &chain.client_output;
            let stop = backend.machine().preempt_before("IoCancelIrp");
            if reset {
                assert_eq!(out.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
            } else {
                assert_eq!(out.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
            }
            assert!(
                stop.wait_paused(std::time::Duration::from_secs(10)),
                "the source stopped before cancelling its request"
            );
            if reset {
                assert_eq!(out.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
            } else {
                assert_eq!(out.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
            }
            stop.resume();
            assert_eq!(read.wait().status, STATUS_CANCELLED, "reset {reset}");
            let what = if reset { WhileIdle::CancelTheRead } else { WhileIdle::StopTheReadersPin };
            one_frame_through(&backend, &chain, what);
        }
        backend.machine().settle();
        assert_eq!(common::pool_bytes(&backend), baseline, "every filter, pin, source and ring freed");
        backend.shutdown().assert_clean();
    }
}

/// The pull source goes to STOP just as it lends the client's read: its request counted in
/// flight, not yet set up again (kshost stops the work routine before `IoReuseIrp`). The STOP's
/// cancel finds the request not sent — it only marks it, and the reuse clears the mark — so the
/// source cancels it itself once it is sent, and the read goes back to F3's queue (it would stay
/// lent, held at F2, for as long as nothing comes).
#[test]
fn a_pull_source_stopped_while_it_lends_takes_the_read_back() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        // The source has read ahead (F2 holds its reads); the next request it sets up is the lend.
        assert!(common::settles(|| common::stats(&chain.filters[1]).pending_reads > 0), "read ahead");
        let reuse = backend.machine().preempt_before("IoReuseIrp");
        let mut read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        assert!(
            reuse.wait_paused(std::time::Duration::from_secs(10)),
            "the source stopped before setting up the request that lends the read"
        );
        assert_eq!(chain.pull.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
        reuse.resume();
        assert!(
            common::settles(|| {
                common::stats(&chain.filters[2]).pending_reads == 1
                    && common::stats(&chain.filters[1]).pending_reads == 0
            }),
            "the read is back on F3's queue, nothing held at F2"
        );
        assert!(read.poll().is_none(), "still waiting");
        assert_eq!(chain.pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert!(common::settles(|| lent(&chain)), "lent again");
        let frame = common::bytes(6, 20 << 10);
        let mut w =
            InFlight::write(&backend, chain.client_input.handle(), &[(&frame, common::meta(0, 0, 1))]);
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        assert_eq!(read.wait().status, STATUS_SUCCESS);
        let got = read.frames();
        assert!(got.len() == 1 && got[0].data == frame, "the frame written");
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "every filter, pin, source and ring freed");
    backend.shutdown().assert_clean();
}

/// An empty frame (no bytes, not the end of the stream) reaches a lent read like any other, and
/// the stream goes on: it does not end F3's input (only an empty `ENDOFSTREAM` frame does).
#[test]
fn an_empty_frame_through_a_lent_read_is_not_the_end() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        let mut read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        assert!(common::settles(|| lent(&chain)), "the client's read is lent");
        let frame = common::bytes(8, 12 << 10);
        let mut w = InFlight::write(
            &backend,
            chain.client_input.handle(),
            &[(&[][..], common::meta(0, 0, 1)), (&frame, common::meta(0, 0, 2))],
        );
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        assert_eq!(read.wait().status, STATUS_SUCCESS);
        let got = read.frames();
        assert!(got.len() == 1 && got[0].data.is_empty(), "the empty frame: {got:?}");
        assert_eq!(got[0].header.options_flags & ksabi::KsStreamOptions::ENDOFSTREAM.bits(), 0);
        let mut next = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        assert_eq!(next.wait().status, STATUS_SUCCESS);
        let got = next.frames();
        assert!(got.len() == 1 && got[0].data == frame, "the next frame, not the end: {got:?}");
        assert_eq!(common::stats(&chain.filters[2]).frames_out, 2, "both frames counted out of F3");
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "every filter, pin, source and ring freed");
    backend.shutdown().assert_clean();
}

/// Reads F3's pull source can lend (one header) and reads it cannot (20 headers: more than a
/// request of its own carries) alternate at the end of a chain while frames stream in: every frame
/// arrives once, whole and in order. The source goes from lending to reading into its ring and
/// back, and the order of what it has out holds across the switch (when timing lets it lend:
/// see the end).
#[test]
fn lendable_and_unlendable_reads_alternate_in_order() {
    let backend = common::boot();
    {
        const N: usize = 600;
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        let sent = common::numbered(N, 3000);
        let mut got: Vec<Vec<u8>> = Vec::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                for batch in sent.chunks(8) {
                    let list: Vec<(&[u8], ksclient::request::Header)> =
                        batch.iter().map(|f| (f.as_slice(), ksclient::request::Header::default())).collect();
                    let mut w = InFlight::write(&backend, chain.client_input.handle(), &list);
                    assert_eq!(w.wait().status, STATUS_SUCCESS);
                }
            });
            let mut i = 0;
            while got.len() < N {
                let extents: Vec<usize> = if i % 2 == 0 { vec![4096] } else { vec![4096; 20] };
                let mut r = InFlight::read(&backend, chain.client_output.handle(), &extents);
                assert_eq!(r.wait().status, STATUS_SUCCESS, "read {i}");
                got.extend(r.frames().into_iter().map(|f| f.data));
                i += 1;
            }
        });
        let order = common::numbers(&got);
        assert!(order.iter().copied().eq(0..N), "every frame once, in order: {order:?}");
        assert!(got.iter().zip(&sent).all(|(g, s)| g == s), "each frame whole");
        let f3 = common::stats(&chain.filters[2]);
        assert_eq!(f3.bytes_out, (N * 3000) as u64, "{f3:?}");
        // Which way each read goes depends on timing: with two processors both ways are taken
        // (the mutants of the switch fail here); on one, the writer may keep F3's ring from ever
        // being empty when a read waits, and nothing is lent.
        eprintln!("lent {} of {} bytes", f3.bytes_out - f3.copied_out, f3.bytes_out);
    }
    backend.shutdown().assert_clean();
}

/// A frame waits in F3's ring when the client's read arrives, and the read's dispatch routine is
/// stopped right after queueing it, before it pumps (kshost's point after
/// `KsAddIrpToCancelableQueue`). F2's output resets meanwhile — F3's source gets its reads back
/// with nothing, so it has nothing out and nothing to commit — and a newer frame comes through the
/// chain: the source must not lend the read (older data is in the ring), so the read gets the
/// older frame once its dispatch goes on, and the newer one after it.
#[test]
fn a_read_is_not_lent_while_the_ring_holds_older_frames() {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        let (older, newer) = (common::bytes(1, 10 << 10), common::bytes(2, 11 << 10));
        let mut w =
            InFlight::write(&backend, chain.client_input.handle(), &[(&older, common::meta(0, 0, 1))]);
        assert_eq!(w.wait().status, STATUS_SUCCESS);
        assert!(
            common::settles(|| common::stats(&chain.filters[2]).fill > 0
                && common::stats(&chain.filters[1]).pending_reads > 0),
            "the older frame is in F3's ring, and F3's source reads ahead again"
        );
        let queued = backend.machine().preempt_after("KsAddIrpToCancelableQueue");
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
                read.wait();
                read.frames()
            });
            assert!(
                queued.wait_paused(std::time::Duration::from_secs(10)),
                "the read is queued, not yet pumped"
            );
            assert_eq!(chain.f2_output.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
            assert!(
                common::settles(|| common::stats(&chain.filters[1]).pending_reads == 0),
                "F3's source has its reads back"
            );
            assert_eq!(chain.f2_output.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
            let mut w =
                InFlight::write(&backend, chain.client_input.handle(), &[(&newer, common::meta(0, 0, 2))]);
            assert_eq!(w.wait().status, STATUS_SUCCESS);
            assert!(
                common::settles(
                    || common::stats(&chain.filters[1]).bytes_out >= (older.len() + newer.len()) as u64
                ),
                "the newer frame went through F2"
            );
            queued.resume();
            let got = reader.join().expect("reader");
            assert!(got.len() == 1 && got[0].data == older, "the older frame first");
        });
        let mut next = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        assert_eq!(next.wait().status, STATUS_SUCCESS);
        let got = next.frames();
        assert!(got.len() == 1 && got[0].data == newer, "then the newer");
    }
    backend.machine().settle();
    assert_eq!(common::pool_bytes(&backend), baseline, "every filter, pin, source and ring freed");
    backend.shutdown().assert_clean();
}
