//! The scenarios, each a function of the backend only.

use std::time::Duration;

use ksabi::{
    GUID, KSFILTER_NODE, KSINTERFACE_STANDARD_STREAMING, KSINTERFACESETID_Standard,
    KSMEDIUM_TYPE_ANYINSTANCE, KSMEDIUMSETID_Standard, KSPIN_COMMUNICATION_BOTH, KSPIN_DATAFLOW_IN,
    KSPIN_DATAFLOW_OUT, KSRESET_BEGIN, KSRESET_END, KSSTATE_ACQUIRE, KSSTATE_PAUSE, KSSTATE_RUN,
    KSSTATE_STOP, KsStreamOptions, STATUS_CANCELLED, STATUS_DEVICE_BUSY, STATUS_DEVICE_NOT_READY,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, STATUS_SUCCESS, StatusText,
};
use ksring_api::{
    DEFAULT_CAPACITY, KSCATEGORY_KSRING, KSRING_COMPONENT, KSRING_MANUFACTURER, KSRING_OPTIONSF_CONTINUES,
    PIN_INPUT, PIN_OUTPUT, PINCATEGORY_KSRING_INPUT, PINCATEGORY_KSRING_OUTPUT,
};

use super::{Scenario, bad_input, ensure, expect_eq, rig};
use crate::backend::{Backend, Io};
use crate::filter::{Filter, Properties};
use crate::graph::{self, Chain};
use crate::io::InFlight;
use crate::request::{self, Header};
use crate::stream::{self, Config, Progress};

type Outcome = Result<(), String>;

/// Every scenario, in the order `ksctl conformance` runs them.
#[must_use]
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario { name: "discovery", about: "pin factories, topology and component id", run: discovery },
        Scenario { name: "intersection", about: "data intersection and proposed formats", run: intersection },
        Scenario { name: "connect", about: "pin creation rules: formats, instances, the peer", run: connect },
        Scenario {
            name: "states",
            about: "STOP/ACQUIRE/PAUSE/RUN, the ring's memory, capacity",
            run: states,
        },
        Scenario {
            name: "pause",
            about: "stream requests: which pin, which state; PAUSE holds them",
            run: pause,
        },
        Scenario { name: "stream", about: "32 MiB verified stream, statistics agree", run: verified_stream },
        Scenario {
            name: "pending-read",
            about: "a read waits for a write from another thread",
            run: pending_read,
        },
        Scenario { name: "full-ring", about: "writes wait for readers to make room", run: full_ring },
        Scenario { name: "cancel", about: "CancelIo keeps accepted data, loses nothing", run: cancel },
        Scenario {
            name: "cancel-mid-frame",
            about: "a frame cut short by CancelIo ends where it was cut; the next is its own",
            run: cancel_mid_frame,
        },
        Scenario { name: "reset", about: "KSRESET_BEGIN flushes and refuses until END", run: reset },
        Scenario { name: "stop", about: "STOP discards what the ring holds, counted", run: stop },
        Scenario {
            name: "end-of-stream",
            about: "closing the input: drain, then ENDOFSTREAM",
            run: end_of_stream,
        },
        Scenario {
            name: "close-orders",
            about: "every close order with requests pending",
            run: close_orders,
        },
        Scenario { name: "two-filters", about: "two filters stream at once", run: two_filters },
        Scenario {
            name: "graph",
            about: "three filters chained by IRP-source pins: 64 MiB verified, counts agree",
            run: chained_filters,
        },
        Scenario {
            name: "graph-close-orders",
            about: "a chain with requests in flight closes cleanly in sampled orders",
            run: chain_close_orders,
        },
        Scenario {
            name: "bad-input",
            about: "every bad input gets its status, changes nothing",
            run: bad_inputs,
        },
    ]
}

fn ok(io: Io, what: &str) -> Outcome {
    expect_eq(what, ksabi::StatusText(io.status), ksabi::StatusText(STATUS_SUCCESS))
}

fn status(io: Io, want: i32, what: &str) -> Outcome {
    expect_eq(what, ksabi::StatusText(io.status), ksabi::StatusText(want))
}

fn meta(options_flags: u32, tsf: u32) -> Header {
    Header { options_flags, type_specific_flags: tsf, numerator: 1, denominator: 1, ..Header::default() }
}

/// A frame's header with presentation time `time` (to tell frames apart in what a read returns).
fn timed(time: i64) -> Header {
    Header { time, numerator: 1, denominator: 1, ..Header::default() }
}

fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i.to_le_bytes()[0])).collect()
}

/// Gives a request time to (wrongly) complete, then says whether it is still pending.
fn still_pending(r: &mut InFlight) -> bool {
    std::thread::sleep(Duration::from_millis(20));
    r.poll().is_none()
}

fn stats(p: &impl Properties) -> Result<ksring_api::KsRingStatistics, String> {
    p.statistics().map_err(|io| format!("statistics: {}", ksabi::StatusText(io.status)))
}

fn discovery(b: &dyn Backend) -> Outcome {
    let f = Filter::open_first(b).map_err(|e| e.to_string())?;
    expect_eq("pin factories", f.pin_factories(), Ok(2))?;
    let standard = vec![(KSINTERFACESETID_Standard, KSINTERFACE_STANDARD_STREAMING, 0)];
    let medium = vec![(KSMEDIUMSETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE, 0)];
    for (pin, flow, category) in [
        (PIN_INPUT, KSPIN_DATAFLOW_IN, PINCATEGORY_KSRING_INPUT),
        (PIN_OUTPUT, KSPIN_DATAFLOW_OUT, PINCATEGORY_KSRING_OUTPUT),
    ] {
        expect_eq("data flow", f.data_flow(pin), Ok(flow.cast_unsigned()))?;
        expect_eq("communication", f.communication(pin), Ok(KSPIN_COMMUNICATION_BOTH.cast_unsigned()))?;
        expect_eq("category", f.category(pin), Ok(category))?;
        ensure!(f.name(pin).is_ok_and(|n| !n.is_empty()), "pin {pin} has no name (INF MediaCategories?)");
        expect_eq("interfaces", f.identifiers(pin, false), Ok(standard.clone()))?;
        expect_eq("mediums", f.identifiers(pin, true), Ok(medium.clone()))?;
        expect_eq("instances", f.instances(pin), Ok((1, 0)))?;
        expect_eq("necessary instances", f.necessary_instances(pin), Ok(1))?;
        let ranges = f.data_ranges(pin, false).map_err(|io| format!("ranges: {io:?}"))?;
        expect_eq("range count", ranges.len(), 2)?;
        expect_eq("first range", &ranges[0], &request::stream_format())?;
    }
    let categories = f.categories().map_err(|io| format!("categories: {io:?}"))?;
    ensure!(categories.contains(&KSCATEGORY_KSRING), "categories {categories:?} lack KSCATEGORY_KSRING");
    expect_eq("nodes", f.nodes(), Ok(vec![]))?;
    let c = f.connections().map_err(|io| format!("connections: {io:?}"))?;
    expect_eq(
        "connections",
        c.iter().map(|c| (c.FromNode, c.FromNodePin, c.ToNode, c.ToNodePin)).collect::<Vec<_>>(),
        vec![(KSFILTER_NODE, PIN_INPUT, KSFILTER_NODE, PIN_OUTPUT)],
    )?;
    let id = f.component_id().map_err(|io| format!("component id: {io:?}"))?;
    expect_eq("component", (id.Manufacturer, id.Component), (KSRING_MANUFACTURER, KSRING_COMPONENT))?;
    expect_eq("capacity", f.capacity(), Ok(DEFAULT_CAPACITY))
}

fn intersection(b: &dyn Backend) -> Outcome {
    let f = Filter::open_first(b).map_err(|e| e.to_string())?;
    let zero = GUID::from_u128(0);
    let wildcard = request::data_format(64, zero, zero, zero);
    expect_eq("wildcard", f.intersect(PIN_INPUT, &[wildcard]), Ok(request::stream_format()))?;
    let narrow = request::audio_range(2, (16, 24), (44_100, 48_000));
    expect_eq(
        "audio",
        f.intersect(PIN_OUTPUT, std::slice::from_ref(&narrow)),
        Ok(request::pcm_format(2, 24, 48_000)),
    )?;
    let none = request::audio_range(2, (12, 12), (44_100, 48_000));
    expect_eq("no match", f.intersect(PIN_INPUT, &[none]).map_err(|io| io.status), Err(STATUS_NO_MATCH))?;
    let pcm = request::pcm_format(2, 24, 48_000);
    let out = f.connect(PIN_OUTPUT, &pcm).map_err(|e| format!("connect offered format: {e}"))?;
    expect_eq("proposed to the input", f.proposed_format(PIN_INPUT), Ok(pcm.clone()))?;
    status(f.propose(PIN_INPUT, &request::stream_format()), STATUS_NO_MATCH, "propose another format")?;
    ok(f.propose(PIN_INPUT, &pcm), "propose the peer's format")?;
    drop(out);
    Ok(())
}

fn connect(b: &dyn Backend) -> Outcome {
    let f = Filter::open_first(b).map_err(|e| e.to_string())?;
    for format in
        [request::stream_format(), request::pcm_format(2, 16, 48_000), request::pcm_format(8, 32, 192_000)]
    {
        let input = f.connect(PIN_INPUT, &format).map_err(|e| format!("input: {e}"))?;
        let output = f.connect(PIN_OUTPUT, &format).map_err(|e| format!("output: {e}"))?;
        expect_eq("format", input.data_format(), Ok(format.clone()))?;
        expect_eq("instances", f.instances(PIN_OUTPUT), Ok((1, 1)))?;
        let again = f.connect(PIN_OUTPUT, &format).err();
        ensure!(again.is_some_and(|e| e.is(STATUS_DEVICE_BUSY)), "second output: {again:?}");
        drop((input, output));
    }
    let output = f.connect(PIN_OUTPUT, &request::stream_format()).map_err(|e| e.to_string())?;
    let mismatch = f.connect(PIN_INPUT, &request::pcm_format(2, 16, 48_000)).err();
    ensure!(mismatch.is_some_and(|e| e.is(STATUS_NO_MATCH)), "peer format mismatch: {mismatch:?}");
    drop(output);
    expect_eq("instances after close", f.instances(PIN_OUTPUT), Ok((1, 0)))
}

fn states(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_STOP)?;
    expect_eq("no ring in STOP", stats(&r.filter)?.capacity, 0)?;
    ok(r.input.set_state(KSSTATE_ACQUIRE), "ACQUIRE")?;
    expect_eq("ring at ACQUIRE", stats(&r.filter)?.capacity, u64::from(DEFAULT_CAPACITY))?;
    status(r.input.set_capacity(8192), STATUS_INVALID_DEVICE_STATE, "capacity while held")?;
    ok(r.input.set_state(KSSTATE_RUN), "RUN")?;
    expect_eq("state", r.input.state(), Ok(KSSTATE_RUN))?;
    ok(r.input.set_state(KSSTATE_STOP), "RUN to STOP")?;
    expect_eq("ring freed", stats(&r.filter)?.capacity, 0)?;
    for bad in [-1, 4] {
        status(r.output.set_state(bad), STATUS_INVALID_PARAMETER, "bad state")?;
    }
    status(r.filter.set_capacity(4095), STATUS_INVALID_PARAMETER, "capacity 4095")?;
    ok(r.filter.set_capacity(8192), "capacity 8192")?;
    ok(r.output.set_state(KSSTATE_PAUSE), "PAUSE")?;
    expect_eq("new capacity", stats(&r.filter)?.capacity, 8192)?;
    let framing = r.output.framing().map_err(|io| format!("framing: {io:?}"))?;
    expect_eq("frame size", framing.FrameSize, (8192 - 40) / 2 / 8 * 8)?;
    // A frame of FrameSize and its 40-byte record take just over half the ring: one fits whole.
    expect_eq(
        "frames, alignment, pool",
        (framing.Frames, framing.FileAlignment, framing.PoolType, framing.OptionsFlags),
        (1, 7, 512, ksabi::KsAllocatorRequirements::SYSTEM_MEMORY.bits()),
    )
}

fn verified_stream(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_RUN)?;
    let cfg = Config { bytes: 32 << 20, ..Config::default() };
    let super::Rig { filter, input, output } = r;
    let report = stream::run(b, input, &output, &cfg, &Progress::default()).map_err(|e| e.to_string())?;
    let s = stats(&filter)?;
    expect_eq("bytes in/out", (s.bytes_in, s.bytes_out), (report.bytes, report.bytes))?;
    expect_eq("frames in/out", (s.frames_in, s.frames_out), (report.frames, report.frames))?;
    expect_eq("split parts", s.split_parts, report.parts)?;
    expect_eq("nothing discarded or pending", (s.discarded_bytes, s.pending_reads, s.fill), (0, 0, 0))
}

fn pending_read(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_RUN)?;
    let mut read = InFlight::read(b, r.output.handle(), &[64, 64]);
    ensure!(still_pending(&mut read), "a read of an empty ring completed");
    let frame = bytes(9, 40);
    std::thread::scope(|s| {
        s.spawn(|| InFlight::write(b, r.input.handle(), &[(&frame, meta(0x10, 77))]).wait()).join()
    })
    .map_err(|_| "writer panicked".to_string())
    .and_then(|io| ok(io, "write"))?;
    let got = read.frames();
    expect_eq("frames", got.len(), 1)?;
    expect_eq("data", &got[0].data, &frame)?;
    expect_eq("metadata", (got[0].header.options_flags, got[0].header.type_specific_flags), (0x10, 77))?;
    let s = stats(&r.filter)?;
    expect_eq("copied straight to the waiting read", (s.direct_frames, s.pending_reads, s.fill), (1, 0, 0))
}

fn pause(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_STOP)?;
    let frame = bytes(1, 10);
    let w = InFlight::write(b, r.input.handle(), &[(&frame, meta(0, 0))]).wait();
    status(w, STATUS_INVALID_DEVICE_STATE, "write in STOP")?;
    status(InFlight::read(b, r.output.handle(), &[16]).wait(), STATUS_INVALID_DEVICE_STATE, "read in STOP")?;
    ok(r.input.set_state(KSSTATE_PAUSE), "input PAUSE")?;
    let wrong = InFlight::read(b, r.input.handle(), &[16]).wait();
    status(wrong, ksabi::STATUS_INVALID_DEVICE_REQUEST, "read on the input pin")?;
    let mut w = InFlight::write(b, r.input.handle(), &[(&frame, meta(0, 0))]);
    ensure!(still_pending(&mut w), "a write moved in PAUSE");
    expect_eq("pending writes", stats(&r.filter)?.pending_writes, 1)?;
    ok(r.input.set_state(KSSTATE_RUN), "input RUN")?;
    expect_eq("write in RUN", (w.wait().status, w.wait().information), (STATUS_SUCCESS, 10))?;
    expect_eq("bytes in", stats(&r.filter)?.bytes_in, 10)?;
    // A read waiting on a paused output gets nothing, not even a write made meanwhile into the
    // empty ring (which would otherwise go straight into a waiting read); it gets the frame once
    // the output runs.
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let mut first = InFlight::read(b, r.output.handle(), &[16, 16]);
    ok(r.output.set_state(KSSTATE_RUN), "output RUN")?;
    expect_eq("the first frame", first.frames().len(), 1)?;
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE again")?;
    let mut read = InFlight::read(b, r.output.handle(), &[16]);
    let w = InFlight::write(b, r.input.handle(), &[(&frame, meta(0, 0))]).wait();
    ok(w, "write while the output pauses")?;
    ensure!(still_pending(&mut read), "a read moved in PAUSE");
    ensure!(stats(&r.filter)?.fill > 0, "the frame waits in the ring");
    ok(r.output.set_state(KSSTATE_RUN), "output RUN")?;
    expect_eq("the read in RUN", read.frames().len(), 1)
}

fn full_ring(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_STOP)?;
    ok(r.filter.set_capacity(4096), "capacity")?;
    ok(r.input.set_state(KSSTATE_RUN), "input RUN")?;
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..5).map(|i| bytes(i, 1500)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    let mut w = InFlight::write(b, r.input.handle(), &list);
    ensure!(still_pending(&mut w), "7500 bytes fit a 4096-byte ring?");
    ok(r.output.set_state(KSSTATE_RUN), "output RUN")?;
    let mut got = Vec::new();
    for _ in 0..10 {
        if got.len() == frames.len() {
            break;
        }
        got.extend(InFlight::read(b, r.output.handle(), &[2000; 3]).frames().into_iter().map(|f| f.data));
    }
    expect_eq("write", (w.wait().status, w.wait().information), (STATUS_SUCCESS, 7500))?;
    expect_eq("frames", got, frames)
}

fn cancel(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_STOP)?;
    ok(r.filter.set_capacity(4096), "capacity")?;
    ok(r.input.set_state(KSSTATE_RUN), "input RUN")?;
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..4).map(|i| bytes(i, 1800)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    let mut w = InFlight::write(b, r.input.handle(), &list);
    ensure!(still_pending(&mut w), "the write did not wait");
    r.input.cancel().map_err(|e| e.to_string())?;
    let io = w.wait();
    expect_eq("cancelled write", ksabi::StatusText(io.status), ksabi::StatusText(STATUS_CANCELLED))?;
    ensure!(io.information > 0 && io.information < 7200, "accepted {} bytes", io.information);
    ok(r.output.set_state(KSSTATE_RUN), "output RUN")?;
    let mut out = Vec::new();
    for _ in 0..10 {
        if out.len() >= io.information {
            break;
        }
        for f in InFlight::read(b, r.output.handle(), &[4096]).frames() {
            out.extend_from_slice(&f.data);
        }
    }
    expect_eq("accepted bytes come out", out.as_slice(), &frames.concat()[..io.information])?;
    let mut read = InFlight::read(b, r.output.handle(), &[64]);
    ensure!(still_pending(&mut read), "a read of an empty ring completed");
    r.output.cancel().map_err(|e| e.to_string())?;
    expect_eq("cancelled read", (read.wait().status, read.wait().information), (STATUS_CANCELLED, 0))
}

/// A frame larger than the ring's largest part is accepted piece by piece; the write is cancelled
/// after the first piece. What was accepted comes out as a frame of its own, ended where it was
/// cut (its last header without `CONTINUES`) — never joined to the frame written next — and the
/// next frame comes out whole, with its own metadata. (The same with the start of the frame
/// already in a waiting read: `tests/preemption.rs`, which needs kshost to stop the writer.)
fn cancel_mid_frame(b: &dyn Backend) -> Outcome {
    // The cut frame's flags: kept on its end, but for ENDOFSTREAM (the stream goes on).
    let kept = (KsStreamOptions::TIMEVALID | KsStreamOptions::SPLICEPOINT).bits();
    let eos = KsStreamOptions::ENDOFSTREAM.bits();
    let r = rig(b, &request::stream_format(), KSSTATE_STOP)?;
    ok(r.filter.set_capacity(4096), "capacity")?;
    ok(r.input.set_state(KSSTATE_RUN), "input RUN")?;
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let first = bytes(1, 10_000);
    let mut w =
        InFlight::write(b, r.input.handle(), &[(&first, Header { options_flags: kept | eos, ..timed(1) })]);
    ensure!(still_pending(&mut w), "a 10000-byte frame fit a 4096-byte ring at once?");
    r.input.cancel().map_err(|e| e.to_string())?;
    let io = w.wait();
    expect_eq("cancelled write", ksabi::StatusText(io.status), ksabi::StatusText(STATUS_CANCELLED))?;
    let accepted = io.information;
    ensure!(accepted > 0 && accepted < first.len(), "accepted {accepted} of {} bytes", first.len());
    let next = bytes(200, 10);
    let mut w = InFlight::write(b, r.input.handle(), &[(&next, timed(2))]);
    ok(r.output.set_state(KSSTATE_RUN), "output RUN")?;
    let mut got = Vec::new();
    for _ in 0..4 {
        if got.iter().any(|f: &crate::io::Frame| f.header.time == 2) {
            break;
        }
        got.extend(InFlight::read(b, r.output.handle(), &[16384, 16384]).frames());
    }
    ok(w.wait(), "the next frame")?;
    let seen: Vec<(usize, u32, i64)> =
        got.iter().map(|f| (f.data.len(), f.header.options_flags, f.header.time)).collect();
    let cut: Vec<u8> = got.iter().take_while(|f| f.header.time == 1).flat_map(|f| f.data.clone()).collect();
    ensure!(
        cut == first[..accepted],
        "the {accepted} accepted bytes of the cut frame (time 1) did not come out as they went in; frames \
         read (bytes, flags, time): {seen:?}"
    );
    let end = got.iter().take_while(|f| f.header.time == 1).last().map(|f| f.header.options_flags);
    expect_eq(&format!("the cut frame's last header's flags ({seen:?})"), end, Some(kept))?;
    let after = got.iter().find(|f| f.header.time == 2);
    ensure!(
        after.map(|f| f.data.as_slice()) == Some(&next[..]),
        "the next frame (time 2) is not alone: {seen:?}"
    );
    let s = stats(&r.filter)?;
    let bytes_total = (accepted + next.len()) as u64;
    expect_eq(
        "frames and bytes in and out",
        (s.frames_in, s.frames_out, s.bytes_in, s.bytes_out),
        (2, 2, bytes_total, bytes_total),
    )?;
    // A frame cut short just before both pins stop (the ring is freed): it goes with the ring —
    // the next ring starts clean, with no end of a frame it never held.
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let mut w = InFlight::write(b, r.input.handle(), &[(&first, timed(3))]);
    ensure!(still_pending(&mut w), "the third frame did not wait");
    r.input.cancel().map_err(|e| e.to_string())?;
    w.wait();
    for pin in [&r.input, &r.output] {
        ok(pin.set_state(KSSTATE_STOP), "STOP")?;
    }
    for pin in [&r.input, &r.output] {
        ok(pin.set_state(KSSTATE_RUN), "RUN")?;
    }
    ok(InFlight::write(b, r.input.handle(), &[(&next, timed(4))]).wait(), "a frame in the new ring")?;
    let got: Vec<(usize, i64)> = InFlight::read(b, r.output.handle(), &[16384, 16384])
        .frames()
        .iter()
        .map(|f| (f.data.len(), f.header.time))
        .collect();
    expect_eq("the new ring's frames (bytes, time)", got, vec![(next.len(), 4)])
}

fn reset(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_RUN)?;
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let frame = bytes(3, 1000);
    ok(InFlight::write(b, r.input.handle(), &[(&frame, meta(0, 0))]).wait(), "write")?;
    ok(r.input.reset(KSRESET_BEGIN), "reset begin")?;
    let s = stats(&r.filter)?;
    expect_eq("flushed", (s.discarded_frames, s.discarded_bytes, s.fill), (1, 1000, 0))?;
    let refused = InFlight::write(b, r.input.handle(), &[(&frame, meta(0, 0))]).wait();
    status(refused, STATUS_DEVICE_NOT_READY, "write during reset")?;
    ok(r.input.reset(KSRESET_END), "reset end")?;
    ok(r.output.set_state(KSSTATE_RUN), "output RUN")?;
    ok(InFlight::write(b, r.input.handle(), &[(&frame, meta(0, 5))]).wait(), "write after reset")?;
    let got = InFlight::read(b, r.output.handle(), &[2000]).frames();
    expect_eq(
        "only the frame after the reset",
        got.iter().map(|f| f.header.type_specific_flags).collect::<Vec<_>>(),
        vec![5],
    )
}

fn stop(b: &dyn Backend) -> Outcome {
    let r = rig(b, &request::stream_format(), KSSTATE_RUN)?;
    ok(r.output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..3).map(|i| bytes(i, 700)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    ok(InFlight::write(b, r.input.handle(), &list).wait(), "write")?;
    ok(r.input.set_state(KSSTATE_STOP), "input STOP")?;
    let s = stats(&r.filter)?;
    expect_eq("discarded", (s.discarded_frames, s.discarded_bytes, s.fill), (3, 2100, 0))?;
    expect_eq("accounted", s.bytes_in, s.bytes_out + s.discarded_bytes)
}

fn end_of_stream(b: &dyn Backend) -> Outcome {
    const EOS: u32 = KsStreamOptions::ENDOFSTREAM.bits();
    let super::Rig { filter, input, output } = rig(b, &request::stream_format(), KSSTATE_RUN)?;
    ok(output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..3).map(|i| bytes(i, 300)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    ok(InFlight::write(b, input.handle(), &list).wait(), "write")?;
    input.close().map_err(|e| e.to_string())?;
    ok(output.set_state(KSSTATE_RUN), "output RUN")?;
    let got = InFlight::read(b, output.handle(), &[300, 200, 200]).frames();
    expect_eq("headers", got.len(), 3)?;
    expect_eq("first frame", &got[0].data, &frames[0])?;
    expect_eq("split part flag", got[1].header.options_flags, KSRING_OPTIONSF_CONTINUES)?;
    expect_eq("split frame", [got[1].data.clone(), got[2].data.clone()].concat(), frames[1].clone())?;
    let got = InFlight::read(b, output.handle(), &[500, 500]).frames();
    expect_eq("headers", got.len(), 2)?;
    expect_eq("last frame", &got[0].data, &frames[2])?;
    expect_eq("end of stream", (got[1].header.options_flags, got[1].header.data_used), (EOS, 0))?;
    let again = InFlight::read(b, output.handle(), &[10]).frames();
    expect_eq("end of stream again", again.first().map(|f| f.header.options_flags), Some(EOS))?;
    let input = filter.connect(PIN_INPUT, &request::stream_format()).map_err(|e| e.to_string())?;
    ok(input.set_state(KSSTATE_RUN), "new input RUN")?;
    let mut pending = InFlight::read(b, output.handle(), &[10]);
    ensure!(still_pending(&mut pending), "end of stream while an input is connected");
    drop(input);
    expect_eq(
        "end of stream after the new input",
        pending.frames().first().map(|f| f.header.options_flags),
        Some(EOS),
    )
}

fn close_orders(b: &dyn Backend) -> Outcome {
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        let f = Filter::open_first(b).map_err(|e| e.to_string())?;
        ok(f.set_capacity(4096), "capacity")?;
        let input = f.connect(PIN_INPUT, &request::stream_format()).map_err(|e| e.to_string())?;
        let output = f.connect(PIN_OUTPUT, &request::stream_format()).map_err(|e| e.to_string())?;
        ok(input.set_state(KSSTATE_RUN), "input RUN")?;
        ok(output.set_state(KSSTATE_PAUSE), "output PAUSE")?;
        let big = bytes(0, 6000);
        let mut w = InFlight::write(b, input.handle(), &[(&big, meta(0, 0))]);
        let mut r = InFlight::read(b, output.handle(), &[64]);
        ensure!(still_pending(&mut w) && still_pending(&mut r), "requests did not wait");
        let handles = [f.handle(), input.handle(), output.handle()];
        std::mem::forget((f, input, output)); // closed by hand, in order
        for i in order {
            b.close(handles[i]).map_err(|e| format!("close {i} in {order:?}: {e}"))?;
        }
        expect_eq(
            &format!("{order:?}"),
            (w.wait().status, r.wait().status),
            (STATUS_CANCELLED, STATUS_CANCELLED),
        )?;
    }
    Ok(())
}

fn two_filters(b: &dyn Backend) -> Outcome {
    let one = |seed, format: Vec<u8>| -> Outcome {
        let super::Rig { filter, input, output } = rig(b, &format, KSSTATE_RUN)?;
        let cfg = Config { bytes: 16 << 20, seed, ..Config::default() };
        let report = stream::run(b, input, &output, &cfg, &Progress::default()).map_err(|e| e.to_string())?;
        expect_eq("bytes out", stats(&filter)?.bytes_out, report.bytes)
    };
    std::thread::scope(|s| {
        let a = s.spawn(|| one(1, request::stream_format()));
        let c = s.spawn(|| one(2, request::pcm_format(2, 16, 48_000)));
        a.join().map_err(|_| "first filter panicked".to_string())??;
        c.join().map_err(|_| "second filter panicked".to_string())?
    })
}

fn chained_filters(b: &dyn Backend) -> Outcome {
    let chain = Chain::open(b, &request::stream_format())?;
    let cfg = Config {
        bytes: 64 << 20,
        frame_max: 96 << 10,
        extent_min: 1,
        extent_max: 48 << 10,
        ..Config::default()
    };
    graph::run(b, chain, &cfg, &Progress::default()).map(drop)
}

/// Closes a running chain's nine handles in orders drawn from a seed, with a write in flight into
/// F1 and data spread over the chain; the closes must all succeed and the chain must then be gone
/// (three new filters open and connect). The emulated suite (`tests/graph.rs`) checks every pin
/// order and the machine's pool, references and IRPs on top.
fn chain_close_orders(b: &dyn Backend) -> Outcome {
    for seed in 0..24u64 {
        let chain = Chain::open(b, &request::stream_format())?;
        chain.set_state(KSSTATE_RUN)?;
        let frame = vec![0x5A; 1 + (stream::mix(seed) % 60_000) as usize];
        let mut w = InFlight::write(b, chain.client_input.handle(), &[(&frame, Header::default())]);
        let mut handles: Vec<_> = chain.into_handles().into_iter().map(Some).collect();
        let mut rng = stream::mix(seed ^ 0xC105E);
        while handles.iter().any(Option::is_some) {
            rng = stream::mix(rng);
            let open: Vec<usize> = (0..handles.len()).filter(|&i| handles[i].is_some()).collect();
            let i = open[usize::try_from(rng).unwrap_or(usize::MAX) % open.len()];
            if let Some((role, h)) = handles[i].take() {
                h.close().map_err(|e| format!("seed {seed}: close {role}: {e}"))?;
            }
        }
        let io = w.wait();
        ensure!(
            io.status == STATUS_SUCCESS || io.status == STATUS_CANCELLED,
            "seed {seed}: the write into F1 ended with {}",
            StatusText(io.status)
        );
    }
    Chain::open(b, &request::stream_format()).map(drop)
}

fn bad_inputs(b: &dyn Backend) -> Outcome {
    let mut failures = Vec::new();
    for case in bad_input::cases() {
        let result = bad_input::context(b, &case).and_then(|ctx| bad_input::run_case(&ctx, &case));
        if let Err(e) = result {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    ensure!(failures.is_empty(), "{} case(s) failed:\n  {}", failures.len(), failures.join("\n  "));
    Ok(())
}
