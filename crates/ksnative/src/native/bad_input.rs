//! The part of ksclient's bad-input table (`crates/ksclient/src/conformance/bad_input.rs`) that
//! a native client can send: connect refusals (the create blob, the format, `PinToHandle`),
//! property requests (the size protocol, the verbs, the sets), control codes, reset values and
//! stream headers (sizes, option flags the driver does not implement, memory). Each case is its
//! own scenario, `bad-<area>-<what>`, and `what` in a failure names the table's row. As in
//! ksclient's `run_case`, each case runs on a fresh filter with both pins connected as byte
//! streams and checks the exact status, and that nothing a client can see changed: the filter's
//! statistics, both pins' states and instance counts, the capacity.
//!
//! Not here: cases a native client cannot express (a blob of odd length: a pin create name is
//! UTF-16, so `KsCreatePin`'s parameter is always an even number of bytes — the "without a whole
//! KSDATAFORMAT" case is sent two bytes short instead of one; a buffer that ends exactly where
//! the process's memory does: the process heap has more mapped pages after any block).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::mem::offset_of;

use ksabi::{
    GUID, GUID_NULL, HANDLE, IOCTL_KS_METHOD, IOCTL_KS_READ_STREAM, IOCTL_KS_RESET_STATE,
    IOCTL_KS_WRITE_STREAM, KSDATAFORMAT, KSDATAFORMAT_SPECIFIER_NONE, KSDATAFORMAT_SUBTYPE_NONE,
    KSINTERFACE_STANDARD_LOOPED_STREAMING, KSINTERFACESETID_Standard, KSMEDIUMSETID_Standard, KSP_PIN,
    KSPIN_CONNECT, KSPRIORITY, KSPROPSETID_Connection, KSPROPSETID_Pin, KSSTATE, KSSTATE_RUN, KSSTATE_STOP,
    KsPropertyType, KsStreamOptions, NTSTATUS, STATUS_ACCESS_DENIED, STATUS_ACCESS_VIOLATION,
    STATUS_BUFFER_TOO_SMALL, STATUS_DEVICE_BUSY, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER_1,
    STATUS_INVALID_PARAMETER_2, STATUS_INVALID_PARAMETER_3, STATUS_INVALID_PARAMETER_5,
    STATUS_INVALID_PARAMETER_6, STATUS_NO_MATCH, STATUS_NOT_FOUND, STATUS_OBJECT_TYPE_MISMATCH,
    STATUS_PROPSET_NOT_FOUND, STATUS_SUCCESS, STATUS_UNSUCCESSFUL, StatusText, WAVEFORMATEX,
    connection_property, pin_property,
};
use ksrequest::{self as request, Bytes, Connect, HEADER_SIZE, Header, wfx_offset};
use ksring_api::{KSPROPSETID_KsRing, KsRingStatistics, PIN_INPUT, PIN_OUTPUT, ksring_property};

use super::io::{Handle, Object, Op, cancel, event, open_filter};
use super::scenarios::{Rig, pin_request, rig};
use ksnative::ntuser::{GENERIC_READ, GENERIC_WRITE};
use ksnative::tally::{GAP, Outcome};

/// What a case's request got: a status, or why the case could not be set up.
type Got = Result<NTSTATUS, String>;
type Run = Box<dyn Fn(&Rig) -> Got>;

/// One bad input.
pub struct Case {
    /// The scenario name, `bad-<area>-<what>`.
    pub name: &'static str,
    /// The row of ksclient's table.
    pub row: &'static str,
    state: KSSTATE,
    expected: NTSTATUS,
    /// What ReactOS answers instead, and why (its source): that answer is a `SKIP`, reported.
    gap: Option<(NTSTATUS, &'static str)>,
    /// Why it is not sent on ReactOS at all (it stops that kernel).
    stops_reactos: Option<&'static str>,
    run: Run,
}

impl Case {
    /// ReactOS answers `status` instead of the Windows status, because `why`.
    fn gap(mut self, status: NTSTATUS, why: &'static str) -> Self {
        self.gap = Some((status, why));
        self
    }
}

fn case(
    name: &'static str,
    row: &'static str,
    expected: NTSTATUS,
    run: impl Fn(&Rig) -> Got + 'static,
) -> Case {
    Case { name, row, state: KSSTATE_RUN, expected, gap: None, stops_reactos: None, run: Box::new(run) }
}

fn stopped(mut c: Case) -> Case {
    c.state = KSSTATE_STOP;
    c
}

fn opened(r: Result<Object, NTSTATUS>) -> NTSTATUS {
    r.err().unwrap_or(0)
}

/// Creates a pin on the rig's filter from `blob`.
fn pin_create(blob: Vec<u8>) -> impl Fn(&Rig) -> Got {
    move |r| Ok(opened(r.filter.create_pin(&blob, GENERIC_READ | GENERIC_WRITE)))
}

fn connect(pin: u32) -> Connect {
    Connect::new(pin, request::stream_format())
}

/// Creates pin `pin` streaming `format` on a second filter as an IRP source pointing at the
/// handle `target` picks (it may open more, kept in the `Vec` until the create is over).
fn source_create(
    pin: u32,
    format: Vec<u8>,
    target: impl Fn(&Rig, &Object, &mut Vec<Handle>) -> Result<HANDLE, String> + 'static,
) -> impl Fn(&Rig) -> Got {
    move |r| {
        let second = open_filter()?;
        let mut keep = Vec::new();
        let handle = target(r, &second, &mut keep)?;
        let got = opened(second.connect_to(pin, &format, handle));
        drop(keep);
        Ok(got)
    }
}

/// A source pin on a third filter feeding the rig's input (it stays in STOP: nothing moves).
fn feed_rig_input(r: &Rig, keep: &mut Vec<Handle>) -> Result<HANDLE, String> {
    let third = open_filter()?;
    let source = third
        .connect_to(PIN_OUTPUT, &request::stream_format(), r.input.handle.raw())
        .map_err(|s| format!("source feeding the rig: {}", StatusText(s)))?;
    let h = source.handle.raw();
    keep.push(source.handle); // closed before its filter
    keep.push(third.handle);
    Ok(h)
}

/// A pin of a third filter opened with only `access`.
fn sink_with_access(pin: u32, access: u32, keep: &mut Vec<Handle>) -> Result<HANDLE, String> {
    let third = open_filter()?;
    let sink = third
        .create_pin(&connect(pin).to_bytes(), access)
        .map_err(|s| format!("sink with access {access:#x}: {}", StatusText(s)))?;
    let h = sink.handle.raw();
    keep.push(sink.handle);
    keep.push(third.handle);
    Ok(h)
}

fn on_filter(req: Vec<u8>, value_len: usize) -> impl Fn(&Rig) -> Got {
    move |r| Ok(r.filter.property(&req, &[], value_len)?.0.status)
}

fn filter_set(req: Vec<u8>, value: Vec<u8>) -> impl Fn(&Rig) -> Got {
    move |r| r.filter.set(&req, &value)
}

fn input_set(req: Vec<u8>, value: Vec<u8>) -> impl Fn(&Rig) -> Got {
    move |r| r.input.set(&req, &value)
}

fn capacity_set(value: Vec<u8>) -> impl Fn(&Rig) -> Got {
    filter_set(request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET), value)
}

fn ioctl(on_input: bool, code: u32, input: Vec<u8>, output_len: usize) -> impl Fn(&Rig) -> Got {
    move |r| {
        let target = if on_input { &r.input } else { &r.filter };
        let mut op = Op::new(input.clone(), vec![0; output_len]);
        Ok(op.call(target.handle.raw(), code, output_len)?.status)
    }
}

/// Sends the header bytes `build(base)` makes (frame buffers after them in the same 4 KiB, whose
/// address is `base`) as `code` on the input or output pin. A bad request must be refused at
/// once or complete with an error; one still in flight after 300 ms is cancelled and fails.
fn stream(code: u32, on_output: bool, build: impl Fn(u64) -> Vec<u8> + 'static) -> impl Fn(&Rig) -> Got {
    move |r| {
        let pin = if on_output { &r.output } else { &r.input };
        let mut op = Op::new(Vec::new(), vec![0; 4096]);
        let base = op.output_base();
        let bytes = build(base);
        op.buffers().1[..bytes.len()].copy_from_slice(&bytes);
        if let Some(io) = op.start(pin.handle.raw(), code, bytes.len()) {
            return Ok(io.status);
        }
        if let Some(io) = op.wait_ms(300) {
            return Ok(io.status);
        }
        cancel(pin.handle.raw());
        let io = op.wait()?;
        Err(format!("the request was accepted and waited (then cancelled: {io})"))
    }
}

/// Header bytes: each header at its own offset with `Size = size`; frame buffers at 1024 on.
fn headers(list: &[(Header, u32)], base: u64) -> Vec<u8> {
    let mut out = vec![0u8; 1024];
    let mut at = 0;
    for (i, (h, size)) in list.iter().enumerate() {
        let data = if h.data == 0 { base + 1024 + (i as u64) * 256 } else { h.data };
        Header { data, ..*h }.write(&mut out, at, *size);
        at += (*size as usize).max(HEADER_SIZE);
    }
    out.truncate(at);
    out
}

fn frame(used: u32, extent: u32, flags: u32) -> Header {
    Header { frame_extent: extent, data_used: used, options_flags: flags, ..Header::default() }
}

/// One 0xA0-byte header with `KSSTREAM_HEADER_OPTIONSF_METADATA`, its 8-byte frame at 1024 and
/// 16 bytes of metadata at 2048 (length at +0x80, address at +0x88, as ks.sys reads them).
fn metadata_header(used: u32, base: u64) -> Vec<u8> {
    let mut h = headers(&[(frame(used, 8, KsStreamOptions::METADATA.bits()), 0xA0)], base);
    h[0x80..0x84].copy_from_slice(&16u32.to_le_bytes());
    h[0x88..0x90].copy_from_slice(&(base + 2048).to_le_bytes());
    h
}

/// The cases.
#[allow(clippy::too_many_lines)] // one table
pub fn cases() -> Vec<Case> {
    #[allow(clippy::cast_possible_truncation)] // 56
    let hs = HEADER_SIZE as u32;
    let pcm = || request::pcm_format(2, 16, 48_000);
    let sf = request::stream_format;
    let video =
        || request::data_format(64, GUID::from_u128(0x7669_6473), GUID::from_u128(1), GUID::from_u128(2));
    let ctypes = request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET);
    let write = IOCTL_KS_WRITE_STREAM;
    let read = IOCTL_KS_READ_STREAM;
    let w1 = move |b| headers(&[(frame(8, 8, 0), hs)], b);
    let v = vec![
        // ---- pin creation -------------------------------------------------------------------------
        case("bad-connect-pin-id", "pin id beyond the factories", STATUS_INVALID_PARAMETER_3, {
            pin_create(connect(2).to_bytes())
        }),
        case("bad-connect-second-instance", "second instance of a factory", STATUS_DEVICE_BUSY, {
            pin_create(connect(PIN_INPUT).to_bytes())
        }),
        case("bad-connect-short-blob", "blob shorter than a KSPIN_CONNECT", STATUS_INVALID_BUFFER_SIZE, {
            pin_create(connect(PIN_INPUT).to_bytes()[..40].to_vec())
        }),
        case("bad-connect-short-format", "blob without a whole KSDATAFORMAT", STATUS_INVALID_BUFFER_SIZE, {
            let b = connect(PIN_INPUT).to_bytes();
            pin_create(b[..b.len() - 2].to_vec())
        }),
        case("bad-connect-formatsize-beyond", "FormatSize beyond the blob", STATUS_INVALID_PARAMETER, {
            let mut b = Bytes(connect(PIN_INPUT).to_bytes());
            b.u32(size_of::<KSPIN_CONNECT>(), 65);
            pin_create(b.0)
        }),
        case("bad-connect-formatsize-small", "FormatSize below a KSDATAFORMAT", STATUS_INVALID_PARAMETER, {
            let mut b = Bytes(connect(PIN_INPUT).to_bytes());
            b.u32(size_of::<KSPIN_CONNECT>(), 32);
            pin_create(b.0)
        }),
        case("bad-connect-interface-flags", "interface Flags set", STATUS_INVALID_PARAMETER_1, {
            let mut c = connect(PIN_INPUT);
            c.interface.2 = 1;
            pin_create(c.to_bytes())
        }),
        case("bad-connect-medium-flags", "medium Flags set", STATUS_INVALID_PARAMETER_2, {
            let mut c = connect(PIN_INPUT);
            c.medium.2 = 1;
            pin_create(c.to_bytes())
        }),
        case("bad-connect-priority", "priority subclass 0", STATUS_INVALID_PARAMETER_5, {
            let mut b = Bytes(connect(PIN_INPUT).to_bytes());
            b.u32(offset_of!(KSPIN_CONNECT, Priority) + offset_of!(KSPRIORITY, PrioritySubClass), 0);
            pin_create(b.0)
        }),
        case("bad-connect-format-reserved", "format Reserved set", STATUS_INVALID_PARAMETER_6, {
            let mut f = Bytes(sf());
            f.u32(offset_of!(KSDATAFORMAT, Reserved), 1);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
        case(
            "bad-connect-wildcard-major",
            "format with a wildcard major format",
            STATUS_INVALID_PARAMETER_6,
            {
                let f = request::data_format(
                    64,
                    GUID_NULL,
                    KSDATAFORMAT_SUBTYPE_NONE,
                    KSDATAFORMAT_SPECIFIER_NONE,
                );
                pin_create(Connect::new(PIN_INPUT, f).to_bytes())
            },
        ),
        case(
            "bad-connect-long-none-format",
            "SPECIFIER_NONE format longer than a KSDATAFORMAT",
            STATUS_INVALID_PARAMETER_6,
            {
                let mut f = Bytes(sf());
                f.0.resize(72, 0);
                f.u32(0, 72);
                pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
            },
        ),
        case("bad-connect-looped", "looped-streaming interface", STATUS_NO_MATCH, {
            let mut c = connect(PIN_INPUT);
            c.interface.1 = KSINTERFACE_STANDARD_LOOPED_STREAMING;
            pin_create(c.to_bytes())
        }),
        case("bad-connect-interface-set", "interface from another set", STATUS_NO_MATCH, {
            let mut c = connect(PIN_INPUT);
            c.interface.0 = KSMEDIUMSETID_Standard;
            pin_create(c.to_bytes())
        }),
        case("bad-connect-medium-set", "medium from another set", STATUS_NO_MATCH, {
            let mut c = connect(PIN_OUTPUT);
            c.medium = (KSINTERFACESETID_Standard, 0, 0);
            pin_create(c.to_bytes())
        }),
        case("bad-connect-format-range", "format outside the ranges", STATUS_NO_MATCH, {
            pin_create(Connect::new(PIN_INPUT, video()).to_bytes())
        }),
        case(
            "bad-connect-attribute-flag",
            "format with an attribute flag but no list",
            STATUS_INVALID_PARAMETER,
            {
                let mut f = Bytes(sf());
                f.u32(offset_of!(KSDATAFORMAT, Flags), 2);
                pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
            },
        ),
        case("bad-connect-pcm-short", "PCM GUIDs without a WAVEFORMATEX", STATUS_INVALID_BUFFER_SIZE, {
            let mut f = Bytes(pcm()[..64].to_vec());
            f.u32(0, 64);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
        case("bad-connect-pcm-cbsize", "PCM cbSize beyond FormatSize", STATUS_INVALID_BUFFER_SIZE, {
            let mut f = Bytes(pcm());
            f.u16(wfx_offset(offset_of!(WAVEFORMATEX, cbSize)), 22);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
        case("bad-connect-pcm-channels", "PCM with 9 channels", STATUS_NO_MATCH, {
            pin_create(Connect::new(PIN_INPUT, request::pcm_format(9, 16, 48_000)).to_bytes())
        }),
        case("bad-connect-pcm-rate", "PCM at 384 kHz", STATUS_NO_MATCH, {
            pin_create(Connect::new(PIN_INPUT, request::pcm_format(2, 16, 384_000)).to_bytes())
        }),
        case("bad-connect-pcm-align", "PCM with a wrong nBlockAlign", STATUS_NO_MATCH, {
            let mut f = Bytes(pcm());
            f.u16(wfx_offset(offset_of!(WAVEFORMATEX, nBlockAlign)), 3);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
        // ---- IRP-source connections (PinToHandle set) ---------------------------------------------
        case("bad-source-no-handle", "PinToHandle that is no handle", STATUS_INVALID_HANDLE, {
            source_create(PIN_OUTPUT, sf(), |_, _, _| Ok(0x7FFF_FFF8 as HANDLE))
        }),
        case("bad-source-closed-handle", "PinToHandle already closed", STATUS_INVALID_HANDLE, {
            source_create(PIN_OUTPUT, sf(), |_, _, _| {
                let gone = open_filter()?;
                let h = gone.handle.raw();
                drop(gone);
                Ok(h)
            })
        }),
        case("bad-source-event", "PinToHandle of an event, not a file", STATUS_OBJECT_TYPE_MISMATCH, {
            source_create(PIN_OUTPUT, sf(), |_, _, keep| {
                let e = event();
                let h = e.raw();
                keep.push(e);
                Ok(h)
            })
        }),
        case("bad-source-filter", "PinToHandle of a filter, not a pin", STATUS_INVALID_PARAMETER, {
            source_create(PIN_OUTPUT, sf(), |r, _, _| Ok(r.filter.handle.raw()))
        }),
        case("bad-source-own-pin", "PinToHandle of the same filter's pin", STATUS_INVALID_PARAMETER, {
            source_create(PIN_OUTPUT, sf(), |_, second, keep| {
                let own = second
                    .connect(PIN_INPUT, &request::stream_format())
                    .map_err(|s| format!("own pin: {}", StatusText(s)))?;
                let h = own.handle.raw();
                keep.push(own.handle);
                Ok(h)
            })
        }),
        case("bad-source-same-flow", "PinToHandle of a pin with the same data flow", STATUS_NO_MATCH, {
            source_create(PIN_OUTPUT, sf(), |r, _, _| Ok(r.output.handle.raw()))
        }),
        case("bad-source-other-format", "PinToHandle of a pin streaming another format", STATUS_NO_MATCH, {
            source_create(PIN_OUTPUT, pcm(), |r, _, _| Ok(r.input.handle.raw()))
        }),
        case("bad-source-to-source", "PinToHandle of a pin that is an IRP source", STATUS_NO_MATCH, {
            source_create(PIN_INPUT, sf(), |r, _, keep| feed_rig_input(r, keep))
        }),
        case("bad-source-fed-sink", "PinToHandle of a pin another source feeds", STATUS_DEVICE_BUSY, {
            source_create(PIN_OUTPUT, sf(), |r, _, keep| {
                feed_rig_input(r, keep)?;
                Ok(r.input.handle.raw())
            })
        }),
        case(
            "bad-source-push-read-only",
            "PinToHandle of a sink opened without write access (a push source writes)",
            STATUS_ACCESS_DENIED,
            source_create(PIN_OUTPUT, sf(), |_, _, keep| sink_with_access(PIN_INPUT, GENERIC_READ, keep)),
        ),
        case(
            "bad-source-pull-write-only",
            "PinToHandle of a sink opened without read access (a pull source reads)",
            STATUS_ACCESS_DENIED,
            source_create(PIN_INPUT, sf(), |_, _, keep| sink_with_access(PIN_OUTPUT, GENERIC_WRITE, keep)),
        ),
        // ---- properties -----------------------------------------------------------------------------
        case("bad-property-short-request", "request shorter than a KSPROPERTY", STATUS_INVALID_PARAMETER, {
            on_filter(ctypes[..20].to_vec(), 4)
        }),
        case("bad-property-unknown-set", "unknown property set", STATUS_PROPSET_NOT_FOUND, {
            on_filter(request::property(GUID::from_u128(0xBAD), 0, KsPropertyType::GET), 4)
        }),
        case("bad-property-unknown-id", "unknown property id", STATUS_NOT_FOUND, {
            on_filter(request::property(KSPROPSETID_Pin, 77, KsPropertyType::GET), 4)
        }),
        case("bad-property-no-verb", "no verb in Flags", STATUS_INVALID_PARAMETER, {
            on_filter(request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::empty()), 4)
        }),
        case("bad-property-get-and-set", "GET and SET at once", STATUS_INVALID_PARAMETER, {
            let flags = KsPropertyType::GET | KsPropertyType::SET;
            on_filter(request::property(KSPROPSETID_Pin, pin_property::CTYPES, flags), 4)
        }),
        case("bad-property-set-read-only", "SET of a read-only property", STATUS_NOT_FOUND, {
            filter_set(
                request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::SET),
                vec![0; 4],
            )
        }),
        case("bad-property-fixed-small", "fixed-size value buffer too small", STATUS_BUFFER_TOO_SMALL, {
            on_filter(ctypes.clone(), 2)
        }),
        case(
            "bad-property-ksp-pin-short",
            "KSPROPERTY where a KSP_PIN is needed",
            STATUS_BUFFER_TOO_SMALL,
            on_filter(pin_request(pin_property::DATAFLOW, 0)[..24].to_vec(), 4),
        ),
        case(
            "bad-property-ksp-pin-id",
            "KSP_PIN with a pin id beyond the factories",
            STATUS_INVALID_PARAMETER,
            on_filter(pin_request(pin_property::DATAFLOW, 2), 4),
        ),
        case(
            "bad-property-ksp-pin-reserved",
            "KSP_PIN with Reserved set (a static property)",
            STATUS_INVALID_PARAMETER,
            {
                let mut r = Bytes(pin_request(pin_property::DATAFLOW, 0));
                r.u32(offset_of!(KSP_PIN, Reserved), 1);
                on_filter(r.0, 4)
            },
        ),
        case(
            "bad-property-ksp-pin-reserved-ksring",
            "KSP_PIN with Reserved set (instance counts)",
            STATUS_INVALID_PARAMETER,
            {
                let mut r = Bytes(pin_request(pin_property::CINSTANCES, 0));
                r.u32(offset_of!(KSP_PIN, Reserved), 1);
                on_filter(r.0, 8)
            },
        ),
        case(
            "bad-property-variable-small",
            "variable-size value buffer too small",
            STATUS_BUFFER_TOO_SMALL,
            {
                // Eight bytes short of the list: on a ks.sys that copies the whole list anyway (see
                // REACTOS), the excess stays inside its copy of the request instead of the pool.
                |r: &Rig| {
                    let req = pin_request(pin_property::DATARANGES, 0);
                    let (size, _) = r.filter.property(&req, &[], 0)?;
                    if size.information < 16 {
                        return Err(format!("size query: {size}"));
                    }
                    Ok(r.filter.property(&req, &[], size.information - 8)?.0.status)
                }
            },
        ),
        case("bad-property-connection-on-filter", "connection set on a filter", STATUS_PROPSET_NOT_FOUND, {
            let get = KsPropertyType::GET;
            on_filter(request::property(KSPROPSETID_Connection, connection_property::STATE, get), 4)
        }),
        case("bad-property-pin-set-on-pin", "pin set on a pin", STATUS_PROPSET_NOT_FOUND, {
            let req = ctypes.clone();
            move |r: &Rig| Ok(r.input.property(&req, &[], 4)?.0.status)
        }),
        case("bad-property-capacity-small", "capacity below the minimum", STATUS_INVALID_PARAMETER, {
            capacity_set(4088u32.to_le_bytes().to_vec())
        }),
        case("bad-property-capacity-large", "capacity above the maximum", STATUS_INVALID_PARAMETER, {
            capacity_set(u32::MAX.to_le_bytes().to_vec())
        }),
        case("bad-property-capacity-odd", "capacity not a multiple of 8", STATUS_INVALID_PARAMETER, {
            capacity_set(8191u32.to_le_bytes().to_vec())
        }),
        case(
            "bad-property-capacity-in-use",
            "capacity change while the ring is in use",
            STATUS_INVALID_DEVICE_STATE,
            capacity_set(8192u32.to_le_bytes().to_vec()),
        ),
        case(
            "bad-property-capacity-short",
            "capacity value shorter than a ULONG",
            STATUS_BUFFER_TOO_SMALL,
            capacity_set(vec![0; 2]),
        ),
        case(
            "bad-property-format-outside-stop",
            "data format change outside STOP",
            STATUS_INVALID_DEVICE_STATE,
            input_set(
                request::property(
                    KSPROPSETID_Connection,
                    connection_property::DATAFORMAT,
                    KsPropertyType::SET,
                ),
                sf(),
            ),
        ),
        stopped(case(
            "bad-property-format-other",
            "data format other than the peer's",
            STATUS_NO_MATCH,
            input_set(
                request::property(
                    KSPROPSETID_Connection,
                    connection_property::DATAFORMAT,
                    KsPropertyType::SET,
                ),
                pcm(),
            ),
        )),
        // ---- other control codes, reset ----------------------------------------------------------------
        case("bad-ioctl-method", "method request (no methods)", STATUS_PROPSET_NOT_FOUND, {
            ioctl(false, IOCTL_KS_METHOD, ctypes.clone(), 8)
        }),
        case("bad-ioctl-stream-on-filter", "stream request on a filter", STATUS_INVALID_DEVICE_REQUEST, {
            ioctl(false, IOCTL_KS_READ_STREAM, Vec::new(), 56)
        }),
        case("bad-ioctl-unknown-code", "unknown control code", STATUS_INVALID_DEVICE_REQUEST, {
            ioctl(true, ksabi::ctl_code(ksabi::FILE_DEVICE_KS, 0x7FF, 3, 0), Vec::new(), 0)
        }),
        case("bad-reset-short", "value shorter than a KSRESET", STATUS_INVALID_PARAMETER, {
            ioctl(true, IOCTL_KS_RESET_STATE, vec![0; 2], 0)
        }),
        case("bad-reset-value", "value neither BEGIN nor END", STATUS_INVALID_PARAMETER, {
            ioctl(true, IOCTL_KS_RESET_STATE, 2u32.to_le_bytes().to_vec(), 0)
        }),
        // ---- stream headers ------------------------------------------------------------------------
        case("bad-stream-write-on-output", "write on the output pin", STATUS_INVALID_DEVICE_REQUEST, {
            stream(write, true, w1)
        }),
        case("bad-stream-read-on-input", "read on the input pin", STATUS_INVALID_DEVICE_REQUEST, {
            stream(read, false, move |b| headers(&[(frame(0, 8, 0), hs)], b))
        }),
        stopped(case("bad-stream-write-in-stop", "write in STOP", STATUS_INVALID_DEVICE_STATE, {
            stream(write, false, w1)
        })),
        stopped(case("bad-stream-read-in-stop", "read in STOP", STATUS_INVALID_DEVICE_STATE, {
            stream(read, true, move |b| headers(&[(frame(0, 8, 0), hs)], b))
        })),
        case("bad-stream-no-headers", "empty header array", STATUS_INVALID_BUFFER_SIZE, {
            stream(write, false, |_| Vec::new())
        }),
        case("bad-stream-short-array", "array shorter than a header", STATUS_INVALID_BUFFER_SIZE, {
            stream(write, false, move |b| w1(b)[..40].to_vec())
        }),
        case("bad-stream-size-small", "header Size below a KSSTREAM_HEADER", STATUS_INVALID_BUFFER_SIZE, {
            stream(write, false, move |b| {
                let mut h = w1(b);
                h[..4].copy_from_slice(&48u32.to_le_bytes());
                h
            })
        }),
        case("bad-stream-size-unaligned", "header Size not a multiple of 8", STATUS_INVALID_BUFFER_SIZE, {
            stream(write, false, move |b| {
                let mut h = headers(&[(frame(8, 8, 0), hs + 4)], b);
                h.resize(HEADER_SIZE + 4, 0);
                h
            })
        }),
        case("bad-stream-size-beyond", "header Size beyond the array", STATUS_INVALID_BUFFER_SIZE, {
            stream(write, false, move |b| {
                let mut h = w1(b);
                h[..4].copy_from_slice(&64u32.to_le_bytes());
                h
            })
        }),
        case("bad-stream-second-cut", "second header cut short", STATUS_INVALID_BUFFER_SIZE, {
            stream(write, false, move |b| {
                let h = headers(&[(frame(8, 8, 0), hs), (frame(8, 8, 0), hs)], b);
                h[..HEADER_SIZE + 30].to_vec()
            })
        }),
        case(
            "bad-stream-used-beyond-extent",
            "write DataUsed beyond FrameExtent",
            STATUS_INVALID_BUFFER_SIZE,
            stream(write, false, move |b| headers(&[(frame(9, 8, 0), hs)], b)),
        ),
        case("bad-stream-typechanged", "write with TYPECHANGED", STATUS_INVALID_PARAMETER, {
            let f = KsStreamOptions::TYPECHANGED.bits();
            stream(write, false, move |b| headers(&[(frame(8, 8, f), hs)], b))
        }),
        case("bad-stream-write-unmapped", "write Data at unmapped memory", STATUS_ACCESS_VIOLATION, {
            stream(write, false, move |b| headers(&[(Header { data: 0x1000, ..frame(8, 8, 0) }, hs)], b))
        }),
        case("bad-stream-read-used", "read with DataUsed set", STATUS_INVALID_BUFFER_SIZE, {
            stream(read, true, move |b| headers(&[(frame(4, 8, 0), hs)], b))
        }),
        case("bad-stream-read-flags", "read with OptionsFlags set", STATUS_INVALID_PARAMETER, {
            stream(read, true, move |b| headers(&[(frame(0, 8, 0x200), hs)], b))
        }),
        case("bad-stream-metadata-short", "METADATA header shorter than 0xA0", STATUS_INVALID_BUFFER_SIZE, {
            let f = KsStreamOptions::METADATA.bits();
            stream(read, true, move |b| headers(&[(frame(0, 8, f), hs)], b))
        }),
        case("bad-stream-read-metadata", "read with METADATA", STATUS_INVALID_PARAMETER, {
            stream(read, true, move |b| metadata_header(0, b))
        }),
        case("bad-stream-write-metadata", "write with METADATA", STATUS_INVALID_PARAMETER, {
            stream(write, false, move |b| metadata_header(8, b))
        }),
        case(
            "bad-stream-read-persist",
            "read marked PERSIST_SAMPLE|SAMPLE_PERSISTED",
            STATUS_INVALID_PARAMETER,
            {
                let f = (KsStreamOptions::PERSIST_SAMPLE | KsStreamOptions::SAMPLE_PERSISTED).bits();
                stream(read, true, move |b| headers(&[(frame(0, 8, f), hs)], b))
            },
        ),
        case(
            "bad-stream-write-persist",
            "write marked PERSIST_SAMPLE|SAMPLE_PERSISTED",
            STATUS_INVALID_PARAMETER,
            {
                let f = (KsStreamOptions::PERSIST_SAMPLE | KsStreamOptions::SAMPLE_PERSISTED).bits();
                stream(write, false, move |b| headers(&[(frame(8, 8, f), hs)], b))
            },
        ),
        case("bad-stream-frameinfo", "write with FRAMEINFO", STATUS_INVALID_PARAMETER, {
            let f = KsStreamOptions::FRAMEINFO.bits();
            stream(write, false, move |b| headers(&[(frame(8, 8, f), hs)], b))
        }),
        case(
            "bad-stream-read-no-room",
            "read header with no room (FrameExtent 0)",
            STATUS_INVALID_BUFFER_SIZE,
            stream(read, true, move |b| headers(&[(frame(0, 8, 0), hs), (frame(0, 0, 0), hs)], b)),
        ),
        case("bad-stream-read-unmapped", "read Data at unmapped memory", STATUS_ACCESS_VIOLATION, {
            stream(read, true, move |b| headers(&[(Header { data: 0x1000, ..frame(0, 8, 0) }, hs)], b))
        }),
    ];
    v.into_iter()
        .map(|c| match REACTOS.iter().find(|(name, ..)| *name == c.name) {
            Some(&(_, status, why)) => c.gap(status, why),
            None => c,
        })
        .map(|mut c| {
            if STOPS_REACTOS.contains(&c.name) {
                c.stops_reactos = Some(RAISES);
            }
            c
        })
        .collect()
}

const NO_FORMAT_CHECK: &str = "ReactOS' KsValidateConnectRequest (drivers/ksfilter/ks/connectivity.c, \
    KspValidateConnectRequest) checks the pin id and the interface's and medium's Set and Id only \
    (\"FIXME implement format checking\"), so the request reaches ksring, whose own checks refuse it";
const NO_FLAGS_CHECK: &str = "ReactOS' KsValidateConnectRequest (drivers/ksfilter/ks/connectivity.c, \
    KspValidateConnectRequest) compares only the interface's and medium's Set and Id, not their Flags, \
    the priority or the format; the request reaches ksring, which refuses it because the factory's \
    one instance is taken";
const UNKNOWN_SET: &str = "ReactOS' FindPropertyHandler (drivers/ksfilter/ks/property.c) answers a \
    set the object does not have as an unknown id, STATUS_NOT_FOUND";
const NO_VERB_HANDLER: &str = "ReactOS' FindPropertyHandler (drivers/ksfilter/ks/property.c) takes the \
    SET handler when SET is set, and KspPropertyHandler returns STATUS_SUCCESS, doing nothing, when the \
    item has no handler for the verb";

/// Why the [`STOPS_REACTOS`] cases are not sent there.
const RAISES: &str = "ReactOS' KsProbeStreamIrp (drivers/ksfilter/ks/irp.c) reports this header \
    (or the fault probing its buffer) with ExRaiseStatus inside _SEH2_TRY, and in the lab's amd64 build \
    the exception is not caught: the kernel stops on a last-chance exception (seen with \
    bad-stream-short-array: KDBG, exception 0xC0000206 raised in ks.sys called from ksring.sys)";

/// Stream header cases that make ReactOS' `KsProbeStreamIrp` raise (see [`RAISES`]).
const STOPS_REACTOS: &[&str] = &[
    "bad-stream-short-array",
    "bad-stream-size-small",
    "bad-stream-size-unaligned",
    "bad-stream-size-beyond",
    "bad-stream-second-cut",
    "bad-stream-used-beyond-extent",
    "bad-stream-typechanged",
    "bad-stream-write-unmapped",
    "bad-stream-read-used",
    "bad-stream-read-flags",
    "bad-stream-metadata-short",
    "bad-stream-read-metadata",
    "bad-stream-read-persist",
    "bad-stream-read-unmapped",
];

/// The cases ReactOS (the lab's commit 7432f4e9d959) answers differently from Windows, with the
/// status it gives and why. A case that gets exactly that status is a `SKIP`, not a pass.
const REACTOS: &[(&str, NTSTATUS, &str)] = &[
    (
        "bad-connect-pin-id",
        STATUS_INVALID_PARAMETER,
        "ReactOS' KsValidateConnectRequest (drivers/ksfilter/ks/connectivity.c, KspValidateConnectRequest) \
         answers a pin id beyond the factories with STATUS_INVALID_PARAMETER",
    ),
    (
        "bad-connect-short-blob",
        STATUS_UNSUCCESSFUL,
        "ReactOS' KspCopyCreateRequest (drivers/ksfilter/ks/misc.c) answers a create parameter shorter \
         than a KSPIN_CONNECT with STATUS_UNSUCCESSFUL",
    ),
    ("bad-connect-formatsize-beyond", STATUS_INVALID_BUFFER_SIZE, NO_FORMAT_CHECK),
    ("bad-connect-formatsize-small", STATUS_INVALID_BUFFER_SIZE, NO_FORMAT_CHECK),
    ("bad-connect-wildcard-major", STATUS_NO_MATCH, NO_FORMAT_CHECK),
    ("bad-connect-attribute-flag", STATUS_NO_MATCH, NO_FORMAT_CHECK),
    ("bad-connect-interface-flags", STATUS_DEVICE_BUSY, NO_FLAGS_CHECK),
    ("bad-connect-medium-flags", STATUS_DEVICE_BUSY, NO_FLAGS_CHECK),
    ("bad-connect-priority", STATUS_DEVICE_BUSY, NO_FLAGS_CHECK),
    ("bad-connect-format-reserved", STATUS_DEVICE_BUSY, NO_FLAGS_CHECK),
    ("bad-connect-long-none-format", STATUS_DEVICE_BUSY, NO_FLAGS_CHECK),
    (
        "bad-property-short-request",
        STATUS_INVALID_BUFFER_SIZE,
        "ReactOS' KspPropertyHandler (drivers/ksfilter/ks/property.c) answers a request shorter than a \
         KSPROPERTY with STATUS_INVALID_BUFFER_SIZE",
    ),
    ("bad-property-unknown-set", STATUS_NOT_FOUND, UNKNOWN_SET),
    (
        "bad-property-no-verb",
        STATUS_NOT_FOUND,
        "ReactOS' FindPropertyHandler (drivers/ksfilter/ks/property.c) finds no handler without GET or \
         SET and answers STATUS_NOT_FOUND",
    ),
    ("bad-property-get-and-set", STATUS_SUCCESS, NO_VERB_HANDLER),
    ("bad-property-connection-on-filter", STATUS_NOT_FOUND, UNKNOWN_SET),
    ("bad-property-pin-set-on-pin", STATUS_NOT_FOUND, UNKNOWN_SET),
    (
        "bad-property-capacity-short",
        STATUS_INVALID_PARAMETER,
        "ReactOS' KspPropertyHandler (drivers/ksfilter/ks/property.c) rounds OutputBufferLength up to a \
         multiple of 8 before comparing it with MinData (4), so ksring's handler runs and reads the \
         2-byte value zero-extended: capacity 0, which ksring refuses as out of range",
    ),
    ("bad-property-set-read-only", STATUS_SUCCESS, NO_VERB_HANDLER),
    (
        "bad-property-fixed-small",
        STATUS_SUCCESS,
        "ReactOS' KspPropertyHandler (drivers/ksfilter/ks/property.c) rounds OutputBufferLength up to a \
         multiple of 8 before comparing it with MinData, and its buffered I/O then copies the 4-byte \
         value back into the caller's 2-byte buffer, 2 bytes past its end",
    ),
    (
        "bad-property-ksp-pin-short",
        STATUS_INVALID_PARAMETER,
        "ReactOS' FindPropertyHandler (drivers/ksfilter/ks/property.c) answers a request shorter than \
         MinProperty with STATUS_INVALID_PARAMETER",
    ),
    (
        "bad-property-ksp-pin-reserved",
        STATUS_SUCCESS,
        "ReactOS' KsPinPropertyHandler (drivers/ksfilter/ks/connectivity.c, KspPinPropertyHandler) does \
         not check KSP_PIN.Reserved",
    ),
    (
        "bad-property-variable-small",
        STATUS_SUCCESS,
        "ReactOS' KsPinPropertyHandler (drivers/ksfilter/ks/connectivity.c, KspPinPropertyHandler, \
         KSPROPERTY_PIN_DATARANGES) copies the whole list without comparing its size with \
         OutputBufferLength, past the system buffer KspPropertyHandler (property.c) allocated \
         (OutputBufferLength rounded up to 8, then the request): a kernel pool overflow from user \
         mode (with 100 bytes the first lab run stopped in BAD_POOL_CALLER), and past the caller's \
         buffer on the copy back",
    ),
];

/// What a bad request must leave as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    statistics: Result<KsRingStatistics, String>,
    states: (Result<KSSTATE, String>, Result<KSSTATE, String>),
    instances: (Result<Vec<u8>, String>, Result<Vec<u8>, String>),
    capacity: Result<u32, String>,
}

fn snapshot(r: &Rig) -> Snapshot {
    let f = &r.filter;
    Snapshot {
        statistics: f.statistics(),
        states: (r.input.state(), r.output.state()),
        instances: (
            f.get(&pin_request(pin_property::CINSTANCES, PIN_INPUT), 8),
            f.get(&pin_request(pin_property::CINSTANCES, PIN_OUTPUT), 8),
        ),
        capacity: f.get_u32(&request::property(
            KSPROPSETID_KsRing,
            ksring_property::CAPACITY,
            KsPropertyType::GET,
        )),
    }
}

/// Runs `case` on a fresh filter: the exact status, and nothing changed.
pub fn run(case: &Case) -> Outcome {
    if let Some(why) = case.stops_reactos.filter(|_| super::reactos()) {
        return Err(format!("{GAP}{}: not sent: {why}", case.row));
    }
    let r = rig(&request::stream_format(), case.state)?;
    let before = snapshot(&r);
    let got = (case.run)(&r).map_err(|e| format!("{}: {e}", case.row))?;
    let after = snapshot(&r);
    if after != before {
        return Err(format!("{}: state changed: before {before:?}, after {after:?}", case.row));
    }
    match case.gap {
        _ if got == case.expected => Ok(()),
        Some((status, why)) if got == status => Err(format!(
            "{GAP}{}: {} where Windows gives {}: {why}",
            case.row,
            StatusText(got),
            StatusText(case.expected)
        )),
        _ => Err(format!("{}: got {}, expected {}", case.row, StatusText(got), StatusText(case.expected))),
    }
}
