//! The scenarios, named as in ksclient's conformance suite where they are the same check. Each
//! opens what it needs and closes it; the ones that close a filter before its pins run last.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ksabi::STATUS_BUFFER_OVERFLOW;
use ksabi::{
    GUID, IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, KSINTERFACE_STANDARD_STREAMING,
    KSINTERFACESETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE, KSMEDIUMSETID_Standard, KSPIN_COMMUNICATION_BOTH,
    KSPIN_DATAFLOW_IN, KSPIN_DATAFLOW_OUT, KSPROPSETID_Pin, KSRESET_BEGIN, KSRESET_END, KSSTATE,
    KSSTATE_ACQUIRE, KSSTATE_PAUSE, KSSTATE_RUN, KSSTATE_STOP, KsPropertyType, KsStreamOptions, NTSTATUS,
    STATUS_CANCELLED, STATUS_DEVICE_BUSY, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE,
    STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, STATUS_SUCCESS, StatusText, pin_property,
};
use ksrequest::{self as request, HEADER_SIZE, Header};
use ksring_api::{
    DEFAULT_CAPACITY, KSRING_OPTIONSF_CONTINUES, PIN_INPUT, PIN_OUTPUT, PINCATEGORY_KSRING_INPUT,
    PINCATEGORY_KSRING_OUTPUT,
};

use super::io::{Io, Object, Op, cancel, open_filter};
use super::stream::{self, Cfg, Stream};
use super::{bad_input, graph};
use super::{now_ms, say, sayf};
use ksnative::ensure;
use ksnative::tally::{Outcome, Tally, expect_eq};

/// A filter with both pins connected.
pub(super) struct Rig {
    pub(super) filter: Object,
    pub(super) input: Object,
    pub(super) output: Object,
}

pub(super) fn rig(format: &[u8], state: KSSTATE) -> Result<Rig, String> {
    let filter = open_filter()?;
    let input = filter.connect(PIN_INPUT, format).map_err(|s| format!("input pin: {}", StatusText(s)))?;
    let output = filter.connect(PIN_OUTPUT, format).map_err(|s| format!("output pin: {}", StatusText(s)))?;
    for pin in [&input, &output] {
        ok(pin.set_state(state)?, "set state")?;
    }
    Ok(Rig { filter, input, output })
}

pub(super) fn ok(status: NTSTATUS, what: &str) -> Outcome {
    expect_eq(what, StatusText(status), StatusText(STATUS_SUCCESS))
}

pub(super) fn status(got: NTSTATUS, want: NTSTATUS, what: &str) -> Outcome {
    expect_eq(what, StatusText(got), StatusText(want))
}

pub(super) fn bytes(seed: u8, n: usize) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add(i.to_le_bytes()[0])).collect()
}

pub(super) fn meta(options_flags: u32, tsf: u32) -> Header {
    Header { options_flags, type_specific_flags: tsf, numerator: 1, denominator: 1, ..Header::default() }
}

/// A write request of `frames` (one header each), ready to start.
pub(super) fn write_op(frames: &[(&[u8], Header)]) -> (Op, usize) {
    let headers_len = frames.len() * HEADER_SIZE;
    let data_len: usize = frames.iter().map(|(d, _)| d.len()).sum();
    let mut op = Op::new(Vec::new(), vec![0; headers_len + data_len]);
    let base = op.output_base();
    let (_, buf) = op.buffers();
    let mut at = headers_len;
    for (i, (data, h)) in frames.iter().enumerate() {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let h = Header { data: base + at as u64, frame_extent: len, data_used: len, ..*h };
        #[allow(clippy::cast_possible_truncation)] // 56
        h.write(buf, i * HEADER_SIZE, HEADER_SIZE as u32);
        buf[at..at + data.len()].copy_from_slice(data);
        at += data.len();
    }
    (op, headers_len)
}

/// Starts a write of `frames` on `pin`: the op and what completed at once.
pub(super) fn start_write(pin: &Object, frames: &[(&[u8], Header)]) -> (Op, Option<Io>) {
    let (mut op, len) = write_op(frames);
    let io = op.start(pin.handle.raw(), IOCTL_KS_WRITE_STREAM, len);
    (op, io)
}

pub(super) fn write(pin: &Object, frames: &[(&[u8], Header)]) -> Result<Io, String> {
    let (mut op, io) = start_write(pin, frames);
    match io {
        Some(io) => Ok(io),
        None => op.wait(),
    }
}

/// A read request with one header per extent.
pub(super) fn read_op(extents: &[usize]) -> (Op, usize) {
    let headers_len = extents.len() * HEADER_SIZE;
    let mut op = Op::new(Vec::new(), vec![0; headers_len + extents.iter().sum::<usize>()]);
    let base = op.output_base();
    let (_, buf) = op.buffers();
    let mut at = headers_len;
    for (i, &e) in extents.iter().enumerate() {
        let h = Header {
            data: base + at as u64,
            frame_extent: u32::try_from(e).unwrap_or(u32::MAX),
            ..Header::default()
        };
        #[allow(clippy::cast_possible_truncation)] // 56
        h.write(buf, i * HEADER_SIZE, HEADER_SIZE as u32);
        at += e;
    }
    (op, headers_len)
}

pub(super) fn start_read(pin: &Object, extents: &[usize]) -> (Op, Option<Io>) {
    let (mut op, len) = read_op(extents);
    let io = op.start(pin.handle.raw(), IOCTL_KS_READ_STREAM, len);
    (op, io)
}

/// A frame a read returned.
pub(super) struct Frame {
    pub(super) header: Header,
    pub(super) data: Vec<u8>,
}

/// The frames of a completed read.
pub(super) fn frames_of(op: &mut Op, io: Io) -> Result<Vec<Frame>, String> {
    if io.status != STATUS_SUCCESS {
        return Err(format!("read: {io}"));
    }
    let base = op.output_base();
    let (_, buf) = op.buffers();
    let mut out = Vec::new();
    let mut at = 0;
    while at < io.information {
        let (h, size) = Header::read(buf, at).ok_or("short read headers")?;
        let from = usize::try_from(h.data.wrapping_sub(base)).unwrap_or(usize::MAX);
        let data =
            buf.get(from..from.saturating_add(h.data_used as usize)).ok_or("header Data moved")?.to_vec();
        out.push(Frame { header: h, data });
        at += (size as usize).max(HEADER_SIZE);
    }
    Ok(out)
}

pub(super) fn read(pin: &Object, extents: &[usize]) -> Result<Vec<Frame>, String> {
    let (mut op, io) = start_read(pin, extents);
    let io = match io {
        Some(io) => io,
        None => op.wait()?,
    };
    frames_of(&mut op, io)
}

/// Gives a request time to (wrongly) complete; whether it is still in flight.
pub(super) fn still_pending(op: &mut Op, started: Option<Io>) -> bool {
    started.is_none() && op.wait_ms(50).is_none()
}

pub(super) fn pin_request(id: u32, pin: u32) -> Vec<u8> {
    request::pin_property(KSPROPSETID_Pin, id, KsPropertyType::GET, pin)
}

/// ReactOS' `KsHandleSizedListQuery` (drivers/ksfilter/ks/api.c) writes `Item->Size =
/// DataItemSize` where Windows' writes `sizeof(KSMULTIPLE_ITEM) + Length` (the whole list, as
/// `KSMULTIPLE_ITEM` is documented). When `list` is exactly that ReactOS shape — `Size` equal to the
/// item size, and `Count` items of it after the header, nothing more — the Windows `Size`; else
/// `None` (a Windows-shaped list, or a malformed one that the strict parse then rejects).
fn reactos_sized_list(list: &[u8], item: usize) -> Option<usize> {
    let size = request::u32_at(list, 0)? as usize;
    let count = request::u32_at(list, 4)? as usize;
    let total = 8 + count.checked_mul(item)?;
    (size == item && count > 0 && list.len() == total && size != total).then_some(total)
}

fn discovery() -> Outcome {
    let f = open_filter()?;
    expect_eq(
        "pin factories",
        f.get_u32(&request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET)),
        Ok(2),
    )?;
    for (pin, flow, category) in [
        (PIN_INPUT, KSPIN_DATAFLOW_IN, PINCATEGORY_KSRING_INPUT),
        (PIN_OUTPUT, KSPIN_DATAFLOW_OUT, PINCATEGORY_KSRING_OUTPUT),
    ] {
        let p = |id| pin_request(id, pin);
        expect_eq("data flow", f.get_u32(&p(pin_property::DATAFLOW)), Ok(flow.cast_unsigned()))?;
        expect_eq(
            "communication",
            f.get_u32(&p(pin_property::COMMUNICATION)),
            Ok(KSPIN_COMMUNICATION_BOTH.cast_unsigned()),
        )?;
        let cat = f.get(&p(pin_property::CATEGORY), 16).map_err(|e| format!("category: {e}"))?;
        expect_eq("category", request::guid_at(&cat, 0), Some(category))?;
        let name = f.get_sized(&p(pin_property::NAME)).map_err(|e| format!("name: {e}"))?;
        ensure!(name.len() > 2, "pin {pin} name has {} bytes", name.len());
        for (id, set, item) in [
            (pin_property::INTERFACES, KSINTERFACESETID_Standard, KSINTERFACE_STANDARD_STREAMING),
            (pin_property::MEDIUMS, KSMEDIUMSETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE),
        ] {
            let mut list = f.get_sized(&p(id)).map_err(|e| format!("property {id}: {e}"))?;
            if let Some(total) = reactos_sized_list(&list, 24) {
                // ks.sys fills this list, not ksring: see `reactos_sized_list`.
                sayf!(
                    "GAP discovery: KSPROPERTY_PIN {id}: KSMULTIPLE_ITEM.Size is 24 (the item size), Windows \
                     gives {total} (the whole list): ReactOS ks.sys KsHandleSizedListQuery (api.c) stores \
                     DataItemSize"
                );
                list[..4].copy_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_le_bytes());
            }
            let items = request::fixed_items(&list, 24)
                .ok_or_else(|| format!("property {id}: malformed list {list:02x?}"))?;
            let got: Vec<(Option<GUID>, Option<u32>)> =
                items.iter().map(|b| (request::guid_at(b, 0), request::u32_at(b, 16))).collect();
            expect_eq("interfaces/mediums", got, vec![(Some(set), Some(item))])?;
        }
        let counts = f.get(&p(pin_property::CINSTANCES), 8).map_err(|e| format!("cinstances: {e}"))?;
        expect_eq(
            "instances",
            (request::u32_at(&counts, 0), request::u32_at(&counts, 4)),
            (Some(1), Some(0)),
        )?;
        let global =
            f.get(&p(pin_property::GLOBALCINSTANCES), 8).map_err(|e| format!("globalcinstances: {e}"))?;
        expect_eq("global instances", request::u32_at(&global, 4), Some(0))?;
        expect_eq("necessary instances", f.get_u32(&p(pin_property::NECESSARYINSTANCES)), Ok(1))?;
        let ranges = f.get_sized(&p(pin_property::DATARANGES)).map_err(|e| format!("ranges: {e}"))?;
        let items = request::range_items(&ranges).ok_or("malformed range list")?;
        expect_eq("range count", items.len(), 2)?;
        expect_eq("first range", items[0], request::stream_format().as_slice())?;
    }
    Ok(())
}

/// `KSPROPERTY_PIN_DATAINTERSECTION` with a wildcard range: the size protocol, then the stream
/// format. ReactOS' `KsPinDataIntersection` (drivers/ksfilter/ks/connectivity.c) takes only an
/// `NT_SUCCESS` status from the driver's intersect handler as a match and goes on to the next
/// range otherwise, so the handler's size answer (`STATUS_BUFFER_OVERFLOW`, a warning) ends as
/// `STATUS_NO_MATCH`. That answer is reported as a gap; the format itself is checked either way.
fn intersection() -> Outcome {
    let f = open_filter()?;
    let zero = GUID::from_u128(0);
    let mut req = pin_request(pin_property::DATAINTERSECTION, PIN_INPUT);
    req.extend_from_slice(&request::multiple_item(&[request::data_format(64, zero, zero, zero)]));
    let (size, _) = f.property(&req, &[], 0)?;
    let want = request::stream_format();
    if size.status == STATUS_NO_MATCH {
        say("GAP intersection: the size query gets STATUS_NO_MATCH: ReactOS ks.sys KsPinDataIntersection \
             (connectivity.c) treats the handler's STATUS_BUFFER_OVERFLOW as no match");
    } else {
        expect_eq(
            "size query",
            (StatusText(size.status), size.information),
            (StatusText(STATUS_BUFFER_OVERFLOW), want.len()),
        )?;
    }
    expect_eq("wildcard intersection", f.get(&req, want.len()), Ok(want))?;
    let mut none = pin_request(pin_property::DATAINTERSECTION, PIN_INPUT);
    none.extend_from_slice(&request::multiple_item(&[request::audio_range(2, (12, 12), (44_100, 48_000))]));
    let (io, _) = f.property(&none, &[], 256)?;
    status(io.status, STATUS_NO_MATCH, "no common format")
}

fn connect_with(format: &[u8]) -> Outcome {
    let f = open_filter()?;
    let input = f.connect(PIN_INPUT, format).map_err(|s| format!("input: {}", StatusText(s)))?;
    let output = f.connect(PIN_OUTPUT, format).map_err(|s| format!("output: {}", StatusText(s)))?;
    let counts = f.get(&pin_request(pin_property::CINSTANCES, PIN_OUTPUT), 8)?;
    expect_eq("output instances", request::u32_at(&counts, 4), Some(1))?;
    let again = f.connect(PIN_OUTPUT, format).err();
    expect_eq("second output", again.map(StatusText), Some(StatusText(STATUS_DEVICE_BUSY)))?;
    drop((input, output));
    let output = f.connect(PIN_OUTPUT, format).map_err(|s| format!("output again: {}", StatusText(s)))?;
    let other = if format.len() > size_of::<ksabi::KSDATAFORMAT>() {
        request::stream_format()
    } else {
        request::pcm_format(2, 16, 48_000)
    };
    let mismatch = f.connect(PIN_INPUT, &other).err();
    expect_eq("peer format mismatch", mismatch.map(StatusText), Some(StatusText(STATUS_NO_MATCH)))?;
    drop(output);
    let counts = f.get(&pin_request(pin_property::CINSTANCES, PIN_OUTPUT), 8)?;
    expect_eq("instances after close", request::u32_at(&counts, 4), Some(0))
}

fn states() -> Outcome {
    let r = rig(&request::stream_format(), KSSTATE_STOP)?;
    expect_eq("no ring in STOP", r.filter.statistics()?.capacity, 0)?;
    ok(r.input.set_state(KSSTATE_ACQUIRE)?, "ACQUIRE")?;
    expect_eq("ring at ACQUIRE", r.filter.statistics()?.capacity, u64::from(DEFAULT_CAPACITY))?;
    status(r.input.set_capacity(8192)?, STATUS_INVALID_DEVICE_STATE, "capacity while held")?;
    ok(r.input.set_state(KSSTATE_PAUSE)?, "PAUSE")?;
    ok(r.input.set_state(KSSTATE_RUN)?, "RUN")?;
    expect_eq("state", r.input.state(), Ok(KSSTATE_RUN))?;
    ok(r.input.set_state(KSSTATE_STOP)?, "RUN to STOP")?;
    expect_eq("ring freed", r.filter.statistics()?.capacity, 0)?;
    for bad in [-1, 4] {
        status(r.output.set_state(bad)?, STATUS_INVALID_PARAMETER, "bad state")?;
    }
    status(r.filter.set_capacity(4095)?, STATUS_INVALID_PARAMETER, "capacity 4095")?;
    ok(r.filter.set_capacity(8192)?, "capacity 8192")?;
    ok(r.output.set_state(KSSTATE_RUN)?, "output RUN")?;
    expect_eq("new capacity", r.filter.statistics()?.capacity, 8192)
}

fn pause() -> Outcome {
    let r = rig(&request::stream_format(), KSSTATE_STOP)?;
    let frame = bytes(1, 10);
    status(write(&r.input, &[(&frame, meta(0, 0))])?.status, STATUS_INVALID_DEVICE_STATE, "write in STOP")?;
    ok(r.input.set_state(KSSTATE_PAUSE)?, "input PAUSE")?;
    let (mut w, started) = start_write(&r.input, &[(&frame, meta(0, 0))]);
    ensure!(still_pending(&mut w, started), "a write moved in PAUSE: {started:?}");
    ok(r.input.set_state(KSSTATE_RUN)?, "input RUN")?;
    let io = w.wait()?;
    expect_eq("write in RUN", (io.status, io.information), (STATUS_SUCCESS, 10))
}

fn verified_stream(cfg: Cfg) -> Outcome {
    let Rig { filter, input, output } = rig(&request::stream_format(), KSSTATE_RUN)?;
    let start = now_ms();
    let mut s = [Stream::new(input, output, cfg)];
    stream::run(&mut s)?;
    let ms = now_ms().saturating_sub(start).max(1);
    let c = &s[0].check;
    let st = filter.statistics()?;
    sayf!("KSRING-NATIVE: {} frames, {} bytes, {} split parts in {} ms", c.frames, c.bytes, c.parts, ms);
    expect_eq("bytes in/out", (st.bytes_in, st.bytes_out), (c.bytes, c.bytes))?;
    expect_eq("frames in/out", (st.frames_in, st.frames_out), (c.frames, c.frames))?;
    expect_eq("split parts", st.split_parts, c.parts)?;
    ensure!(c.parts > 0, "no frame was split (read extents {}..{})", cfg.extent_min, cfg.extent_max);
    expect_eq("nothing discarded or pending", (st.discarded_bytes, st.pending_reads, st.fill), (0, 0, 0))
}

fn split_frames() -> Outcome {
    verified_stream(Cfg {
        bytes: 4 << 20,
        frame_min: 1,
        frame_max: 20_000,
        extent_min: 1,
        extent_max: 3000,
        seed: 0x5B17,
        ..Cfg::default()
    })
}

fn pending_read() -> Outcome {
    let r = rig(&request::stream_format(), KSSTATE_RUN)?;
    let (mut rd, started) = start_read(&r.output, &[64, 64]);
    ensure!(still_pending(&mut rd, started), "a read of an empty ring completed");
    let frame = bytes(9, 40);
    ok(write(&r.input, &[(&frame, meta(0x10, 77))])?.status, "write")?;
    let io = rd.wait()?;
    let got = frames_of(&mut rd, io)?;
    expect_eq("frames", got.len(), 1)?;
    expect_eq("data", &got[0].data, &frame)?;
    expect_eq("metadata", (got[0].header.options_flags, got[0].header.type_specific_flags), (0x10, 77))
}

fn cancel_requests() -> Outcome {
    let r = rig(&request::stream_format(), KSSTATE_STOP)?;
    ok(r.filter.set_capacity(4096)?, "capacity")?;
    ok(r.input.set_state(KSSTATE_RUN)?, "input RUN")?;
    ok(r.output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..4).map(|i| bytes(i, 1800)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    let (mut w, started) = start_write(&r.input, &list);
    ensure!(still_pending(&mut w, started), "the write did not wait");
    ok(cancel(r.input.handle.raw()), "NtCancelIoFile(input)")?;
    let io = w.wait()?;
    status(io.status, STATUS_CANCELLED, "cancelled write")?;
    ensure!(io.information > 0 && io.information < 7200, "cancelled write accepted {} bytes", io.information);
    ok(r.output.set_state(KSSTATE_RUN)?, "output RUN")?;
    let mut out = Vec::new();
    for _ in 0..10 {
        if out.len() >= io.information {
            break;
        }
        for f in read(&r.output, &[4096])? {
            out.extend_from_slice(&f.data);
        }
    }
    expect_eq("accepted bytes come out", out.as_slice(), &frames.concat()[..io.information])?;
    let (mut rd, started) = start_read(&r.output, &[64]);
    ensure!(still_pending(&mut rd, started), "a read of an empty ring completed");
    ok(cancel(r.output.handle.raw()), "NtCancelIoFile(output)")?;
    let io = rd.wait()?;
    expect_eq("cancelled read", (StatusText(io.status), io.information), (StatusText(STATUS_CANCELLED), 0))
}

/// As ksclient's `cancel-mid-frame`: a frame cut short by `NtCancelIoFile` after its first part
/// comes out ended where it was cut, never joined to the next frame.
fn cancel_mid_frame() -> Outcome {
    let timed = |time: i64| Header { time, numerator: 1, denominator: 1, ..Header::default() };
    let r = rig(&request::stream_format(), KSSTATE_STOP)?;
    ok(r.filter.set_capacity(4096)?, "capacity")?;
    ok(r.input.set_state(KSSTATE_RUN)?, "input RUN")?;
    ok(r.output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
    let first = bytes(1, 10_000);
    let (mut w, started) = start_write(&r.input, &[(&first, timed(1))]);
    ensure!(still_pending(&mut w, started), "a 10000-byte frame fit a 4096-byte ring at once?");
    ok(cancel(r.input.handle.raw()), "NtCancelIoFile(input)")?;
    let io = w.wait()?;
    status(io.status, STATUS_CANCELLED, "cancelled write")?;
    let accepted = io.information;
    ensure!(accepted > 0 && accepted < first.len(), "accepted {accepted} of {} bytes", first.len());
    let next = bytes(200, 10);
    let (mut w, started) = start_write(&r.input, &[(&next, timed(2))]);
    ok(r.output.set_state(KSSTATE_RUN)?, "output RUN")?;
    let mut got = Vec::new();
    for _ in 0..4 {
        if got.iter().any(|f: &Frame| f.header.time == 2) {
            break;
        }
        got.extend(read(&r.output, &[16384, 16384])?);
    }
    let io = match started {
        Some(io) => io,
        None => w.wait()?,
    };
    ok(io.status, "the next frame")?;
    let seen: Vec<(usize, u32, i64)> =
        got.iter().map(|f| (f.data.len(), f.header.options_flags, f.header.time)).collect();
    let cut: Vec<u8> = got.iter().take_while(|f| f.header.time == 1).flat_map(|f| f.data.clone()).collect();
    ensure!(
        cut == first[..accepted],
        "the cut frame's {accepted} bytes did not come out as they went in: {seen:?}"
    );
    let ends =
        got.iter().any(|f| f.header.time == 1 && f.header.options_flags & KSRING_OPTIONSF_CONTINUES == 0);
    ensure!(ends, "the cut frame never ends: {seen:?}");
    let after = got.iter().find(|f| f.header.time == 2);
    ensure!(after.map(|f| f.data.as_slice()) == Some(&next[..]), "the next frame is not alone: {seen:?}");
    Ok(())
}

fn reset() -> Outcome {
    let r = rig(&request::stream_format(), KSSTATE_RUN)?;
    ok(r.output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
    let frame = bytes(3, 1000);
    ok(write(&r.input, &[(&frame, meta(0, 0))])?.status, "write")?;
    ok(r.input.reset(KSRESET_BEGIN)?, "reset begin")?;
    let s = r.filter.statistics()?;
    expect_eq("flushed", (s.discarded_frames, s.discarded_bytes, s.fill), (1, 1000, 0))?;
    status(write(&r.input, &[(&frame, meta(0, 0))])?.status, STATUS_DEVICE_NOT_READY, "write during reset")?;
    ok(r.input.reset(KSRESET_END)?, "reset end")?;
    ok(r.output.set_state(KSSTATE_RUN)?, "output RUN")?;
    ok(write(&r.input, &[(&frame, meta(0, 5))])?.status, "write after reset")?;
    let got = read(&r.output, &[2000])?;
    expect_eq(
        "only the frame after the reset",
        got.iter().map(|f| f.header.type_specific_flags).collect::<Vec<_>>(),
        vec![5],
    )
}

fn stop() -> Outcome {
    let r = rig(&request::stream_format(), KSSTATE_RUN)?;
    ok(r.output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..3).map(|i| bytes(i, 700)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    ok(write(&r.input, &list)?.status, "write")?;
    ok(r.input.set_state(KSSTATE_STOP)?, "input STOP")?;
    let s = r.filter.statistics()?;
    expect_eq("discarded", (s.discarded_frames, s.discarded_bytes, s.fill), (3, 2100, 0))
}

fn full_ring() -> Outcome {
    let r = rig(&request::stream_format(), KSSTATE_STOP)?;
    ok(r.filter.set_capacity(4096)?, "capacity")?;
    ok(r.input.set_state(KSSTATE_RUN)?, "input RUN")?;
    ok(r.output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..5).map(|i| bytes(i, 1500)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    let (mut w, started) = start_write(&r.input, &list);
    ensure!(still_pending(&mut w, started), "7500 bytes fit a 4096-byte ring?");
    ok(r.output.set_state(KSSTATE_RUN)?, "output RUN")?;
    let mut got = Vec::new();
    for _ in 0..10 {
        if got.len() == frames.len() {
            break;
        }
        got.extend(read(&r.output, &[2000; 3])?.into_iter().map(|f| f.data));
    }
    let io = w.wait()?;
    expect_eq("write", (io.status, io.information), (STATUS_SUCCESS, 7500))?;
    expect_eq("frames", got, frames)
}

fn end_of_stream() -> Outcome {
    const EOS: u32 = KsStreamOptions::ENDOFSTREAM.bits();
    let Rig { filter, input, output } = rig(&request::stream_format(), KSSTATE_RUN)?;
    ok(output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
    let frames: Vec<Vec<u8>> = (0..3).map(|i| bytes(i, 300)).collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    ok(write(&input, &list)?.status, "write")?;
    ok(input.handle.close(), "close input")?;
    ok(output.set_state(KSSTATE_RUN)?, "output RUN")?;
    let got = read(&output, &[300, 200, 200])?;
    expect_eq("headers", got.len(), 3)?;
    expect_eq("first frame", &got[0].data, &frames[0])?;
    expect_eq("split part flag", got[1].header.options_flags, KSRING_OPTIONSF_CONTINUES)?;
    expect_eq("split frame", [got[1].data.clone(), got[2].data.clone()].concat(), frames[1].clone())?;
    let got = read(&output, &[500, 500])?;
    expect_eq("headers", got.len(), 2)?;
    expect_eq("last frame", &got[0].data, &frames[2])?;
    expect_eq("end of stream", (got[1].header.options_flags, got[1].header.data_used), (EOS, 0))?;
    let again = read(&output, &[10])?;
    expect_eq("end of stream again", again.first().map(|f| f.header.options_flags), Some(EOS))?;
    let input = filter
        .connect(PIN_INPUT, &request::stream_format())
        .map_err(|s| format!("new input: {}", StatusText(s)))?;
    ok(input.set_state(KSSTATE_RUN)?, "new input RUN")?;
    let (mut pending, started) = start_read(&output, &[10]);
    ensure!(still_pending(&mut pending, started), "end of stream while an input is connected");
    drop(input);
    let io = pending.wait()?;
    let got = frames_of(&mut pending, io)?;
    expect_eq("end of stream after the new input", got.first().map(|f| f.header.options_flags), Some(EOS))
}

fn two_filters() -> Outcome {
    let a = rig(&request::stream_format(), KSSTATE_RUN)?;
    let b = rig(&request::pcm_format(2, 16, 48_000), KSSTATE_RUN)?;
    let cfg = Cfg { bytes: 16 << 20, ..Cfg::default() };
    let mut s = [Stream::new(a.input, a.output, cfg), Stream::new(b.input, b.output, Cfg { seed: 2, ..cfg })];
    stream::run(&mut s)?;
    expect_eq("first filter's bytes out", a.filter.statistics()?.bytes_out, s[0].check.bytes)?;
    expect_eq("second filter's bytes out", b.filter.statistics()?.bytes_out, s[1].check.bytes)
}

/// Every close order of a filter and its two pins, with a write and a read in flight: both
/// requests end cancelled, and every close succeeds. Orders with the filter first are the F1
/// case (the filter closes under live pins).
fn close_orders() -> Outcome {
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        let f = open_filter()?;
        ok(f.set_capacity(4096)?, "capacity")?;
        let input = f
            .connect(PIN_INPUT, &request::stream_format())
            .map_err(|s| format!("input: {}", StatusText(s)))?;
        let output = f
            .connect(PIN_OUTPUT, &request::stream_format())
            .map_err(|s| format!("output: {}", StatusText(s)))?;
        ok(input.set_state(KSSTATE_RUN)?, "input RUN")?;
        ok(output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
        let big = bytes(0, 6000);
        let (mut w, ws) = start_write(&input, &[(&big, meta(0, 0))]);
        let (mut r, rs) = start_read(&output, &[64]);
        ensure!(still_pending(&mut w, ws) && still_pending(&mut r, rs), "requests did not wait");
        let mut handles = [Some(f.handle), Some(input.handle), Some(output.handle)];
        for i in order {
            if let Some(h) = handles[i].take() {
                ok(h.close(), &format!("close {i} in {order:?}"))?;
            }
        }
        let (wi, ri) = (w.wait()?, r.wait()?);
        expect_eq(
            &format!("{order:?}: write, read"),
            (StatusText(wi.status), StatusText(ri.status)),
            (StatusText(STATUS_CANCELLED), StatusText(STATUS_CANCELLED)),
        )?;
    }
    Ok(())
}

/// The audit's F1 reproduction: close the filter before its pins, open a new filter (its
/// allocation may reuse the old one's pool), then use the old pins. The old pins must still have
/// their own filter: the frame written before the close comes out of the old output pin, and the
/// old filter's statistics are the old ones.
fn filter_first_close() -> Outcome {
    let Rig { filter, input, output } = rig(&request::stream_format(), KSSTATE_RUN)?;
    ok(output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
    let frame = bytes(7, 500);
    ok(write(&input, &[(&frame, meta(0, 42))])?.status, "write")?;
    ok(filter.handle.close(), "close the filter first")?;
    let other = open_filter()?;
    let other_in = other
        .connect(PIN_INPUT, &request::stream_format())
        .map_err(|s| format!("new filter's input: {}", StatusText(s)))?;
    expect_eq("old output's state", output.state(), Ok(KSSTATE_PAUSE))?;
    let s = output.statistics()?;
    expect_eq(
        "old filter's statistics through its pin (bytes in, capacity)",
        (s.bytes_in, s.capacity),
        (500, u64::from(DEFAULT_CAPACITY)),
    )?;
    ok(output.set_state(KSSTATE_RUN)?, "old output RUN")?;
    let got = read(&output, &[1000])?;
    expect_eq(
        "the frame written before the filter closed",
        got.first().map(|f| (f.data.clone(), f.header.type_specific_flags)),
        Some((frame, 42)),
    )?;
    drop((input, output, other_in, other));
    Ok(())
}

/// Sets up the process-exit case: a filter, both pins in RUN/PAUSE, a write and a read in flight,
/// then the process exits without closing anything (see `after_exit`). Never returns.
fn exit_with_handles_open() -> ! {
    let setup = || -> Result<(), String> {
        let r = rig(&request::stream_format(), KSSTATE_STOP)?;
        ok(r.filter.set_capacity(4096)?, "capacity")?;
        ok(r.input.set_state(KSSTATE_RUN)?, "input RUN")?;
        ok(r.output.set_state(KSSTATE_PAUSE)?, "output PAUSE")?;
        let big = bytes(0, 6000);
        let (mut w, ws) = start_write(&r.input, &[(&big, meta(0, 0))]);
        let (mut rd, rs) = start_read(&r.output, &[64]);
        ensure!(still_pending(&mut w, ws) && still_pending(&mut rd, rs), "requests did not wait");
        // Nothing is closed or freed: the kernel's process rundown does it.
        core::mem::forget((r, w, rd));
        Ok(())
    };
    if let Err(e) = setup() {
        sayf!("FAIL process-exit: setting up: {e}");
    }
    say("KSRING-NATIVE: exiting with the filter and pins open, a write and a read in flight");
    super::terminate(0)
}

/// Run by a second `BootExecute` program after the first exited with its handles open: no pin
/// instance is left, a new filter streams, and the driver still answers.
pub fn after_exit() {
    let check = || -> Outcome {
        let f = open_filter()?;
        for pin in [PIN_INPUT, PIN_OUTPUT] {
            let global = f.get(&pin_request(pin_property::GLOBALCINSTANCES, pin), 8)?;
            expect_eq(
                &format!("pin {pin} instances left after the exit"),
                request::u32_at(&global, 4),
                Some(0),
            )?;
        }
        drop(f);
        verified_stream(Cfg { bytes: 4 << 20, seed: 0xAF7E, ..Cfg::default() })
    };
    let mut tally = Tally::default();
    say(&tally.record("process-exit", &check()));
    say(&tally.summary());
}

/// The scenarios, in order (the ones that close a filter before its pins last); the bad-input
/// cases (`bad_input`) run after `two-filters`.
/// A scenario: its name and what it runs.
type Scenario = (&'static str, fn() -> Outcome);

const SCENARIOS: &[Scenario] = &[
    ("discovery", discovery),
    ("intersection", intersection),
    ("connect-stream", || connect_with(&request::stream_format())),
    ("connect-pcm", || connect_with(&request::pcm_format(2, 16, 48_000))),
    ("states", states),
    ("pause", pause),
    ("stream", || verified_stream(Cfg::default())),
    ("split-frames", split_frames),
    ("pending-read", pending_read),
    ("full-ring", full_ring),
    ("cancel", cancel_requests),
    ("cancel-mid-frame", cancel_mid_frame),
    ("reset", reset),
    ("stop", stop),
    ("end-of-stream", end_of_stream),
    ("two-filters", two_filters),
    ("graph", graph::graph),
    ("graph-small-rings", graph::graph_small_rings),
    ("graph-end-of-stream", graph::graph_end_of_stream),
    ("graph-close-sources-first", || graph::close_order(0)),
    ("graph-close-sinks-first", || graph::close_order(1)),
    ("graph-close-filters-first", || graph::close_order(2)),
    ("graph-close-middle-filter-first", || graph::close_order(3)),
    ("graph-close-opening-order", || graph::close_order(4)),
    ("close-orders", close_orders),
    ("filter-first-close", filter_first_close),
];

fn run_one(tally: &mut Tally, name: &str, scenario: &dyn Fn() -> Outcome) {
    sayf!("KSRING-NATIVE: running {name}");
    let start = now_ms();
    let outcome = scenario();
    sayf!("KSRING-NATIVE: {name} took {} ms", now_ms().saturating_sub(start));
    say(&tally.record(name, &outcome));
}

/// Runs the scenarios whose name contains `only` (all if `None`), prints each result and the
/// summary; then, when running all (or `only` names it), sets up the process-exit case and exits.
pub fn run(only: Option<&str>) -> bool {
    let mut tally = Tally::default();
    let wanted = |name: &str| only.is_none_or(|o| name.contains(o));
    for (name, scenario) in SCENARIOS {
        if wanted(name) {
            run_one(&mut tally, name, scenario);
        }
        if *name == "two-filters" {
            for case in bad_input::cases().iter().filter(|c| wanted(c.name)) {
                run_one(&mut tally, case.name, &|| bad_input::run(case));
            }
        }
    }
    say(&tally.summary());
    if only.is_none_or(|o| "process-exit".contains(o)) {
        exit_with_handles_open();
    }
    false
}
