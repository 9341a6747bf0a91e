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

/// What the client does while a chain is idle: nothing written, a read waiting at F3's output,
/// and F3's pull source's reads held at F2 for as long as nothing comes.
#[derive(Clone, Copy, Debug)]
enum WhileIdle {
    /// `CancelIoEx` on F3's output.
    CancelTheRead,
    /// Close F3's output pin.
    CloseTheReadersPin,
    /// Close F2 (its output, which F3 reads, then its input and the filter).
    CloseTheMiddleFilter,
    /// Exit the process.
    Exit,
}

/// Opens a chain in RUN with a read waiting at its end and F3's reads held at F2, does `what`, and
/// returns what the read got; checks that every byte of pool comes back.
fn idle_chain_with_a_read_waiting(what: WhileIdle) -> Vec<ksclient::io::Frame> {
    let backend = common::boot();
    let baseline = common::pool_bytes(&backend);
    let mut read;
    {
        let chain = graph::Chain::open(&backend, &request::stream_format()).expect("chain");
        chain.set_state(KSSTATE_RUN).expect("run");
        read = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
        assert!(
            common::settles(|| {
                common::stats(&chain.filters[1]).pending_reads > 0
                    && common::stats(&chain.filters[2]).pending_reads == 1
            }),
            "{what:?}: F2 holds F3's reads and F3 the client's"
        );
        assert!(read.poll().is_none(), "{what:?}: nothing to read");
        match what {
            WhileIdle::CancelTheRead => {
                let held = common::stats(&chain.filters[1]).pending_reads;
                chain.client_output.cancel().expect("cancel");
                assert_eq!(read.wait().status, STATUS_CANCELLED, "{what:?}");
                let after = common::stats(&chain.filters[1]).pending_reads;
                assert!(
                    after >= held,
                    "F3's reads stay at F2 (the client's cancel is not theirs): {after} < {held}"
                );
                // The stream goes on: the next frame written is the next read.
                let frame = common::bytes(3, 48 << 10);
                let mut w = InFlight::write(
                    &backend,
                    chain.client_input.handle(),
                    &[(&frame, common::meta(0, 0, 5))],
                );
                let mut next = InFlight::read(&backend, chain.client_output.handle(), &[64 << 10]);
                assert_eq!(w.wait().status, STATUS_SUCCESS);
                let got = next.frames();
                assert_eq!(got.len(), 1, "{what:?}: one frame");
                assert!(got[0].data == frame, "{what:?}: the frame written, whole");
                assert_eq!(got[0].header.time, 5);
            }
            WhileIdle::CloseTheReadersPin | WhileIdle::CloseTheMiddleFilter => {
                let mut handles = chain.into_handles();
                let first: &[graph::Role] = if matches!(what, WhileIdle::CloseTheReadersPin) {
                    &[graph::Role::ClientOutput]
                } else {
                    &[
                        graph::Role::Sink(1, PIN_OUTPUT),
                        graph::Role::Sink(1, PIN_INPUT),
                        graph::Role::Filter(1),
                    ]
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

/// The client cancels its read while F2 holds F3's reads for ever: the read completes cancelled,
/// F3's reads stay where they are, and the next frame written reaches the next read.
#[test]
fn an_idle_chains_read_cancelled_completes_and_the_stream_goes_on() {
    idle_chain_with_a_read_waiting(WhileIdle::CancelTheRead);
}

/// The client closes its reading pin while F2 holds F3's reads: the read is cancelled.
#[test]
fn an_idle_chains_reading_pin_closed_cancels_the_read() {
    idle_chain_with_a_read_waiting(WhileIdle::CloseTheReadersPin);
}

/// F2 goes while it holds F3's reads: its cleanup gives them back, F3's input ends behind them,
/// and the client's read gets the end of the stream (no data).
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

/// The process exits while F2 holds F3's reads and F3 the client's: the rundown cancels the
/// client's read (F3's are the driver's own, cancelled by the sources' cleanup), and everything
/// is freed.
#[test]
fn an_idle_chains_process_exit_cancels_the_read_and_frees_everything() {
    idle_chain_with_a_read_waiting(WhileIdle::Exit);
}
