//! Every kind of bad input a user-mode client can send, by name, with the exact `NTSTATUS` it
//! gets. [`run_case`] also checks that it changed nothing the client can see: the filter's
//! statistics, both pins' states, the instance counts and the capacity.
//!
//! The same table runs in `tests/bad_input.rs` (emulated, with pool and verifier checks on top,
//! and generating the README's error table) and in `ksctl conformance` (on either backend).
//! On Windows, where an open only reports a Win32 error, statuses are compared as Win32 errors.

use std::fmt::Write as _;
use std::mem::offset_of;

use ksabi::{
    GENERIC_READ, GENERIC_WRITE, GUID, GUID_NULL, IOCTL_KS_ENABLE_EVENT, IOCTL_KS_METHOD,
    IOCTL_KS_READ_STREAM, IOCTL_KS_RESET_STATE, IOCTL_KS_WRITE_STREAM, KSDATAFORMAT,
    KSDATAFORMAT_SPECIFIER_NONE, KSDATAFORMAT_SUBTYPE_NONE, KSINTERFACE_STANDARD_LOOPED_STREAMING,
    KSINTERFACESETID_Standard, KSMEDIUMSETID_Standard, KSP_PIN, KSPIN_CONNECT, KSPRIORITY,
    KSPROPSETID_Connection, KSPROPSETID_Pin, KSPROPSETID_Topology, KSRESET_BEGIN, KSSTATE, KSSTATE_RUN,
    KSSTATE_STOP, KsPropertyType, KsStreamOptions, NTSTATUS, STATUS_ACCESS_DENIED, STATUS_ACCESS_VIOLATION,
    STATUS_BUFFER_TOO_SMALL, STATUS_DEVICE_BUSY, STATUS_DEVICE_NOT_READY, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER_1, STATUS_INVALID_PARAMETER_2,
    STATUS_INVALID_PARAMETER_3, STATUS_INVALID_PARAMETER_5, STATUS_INVALID_PARAMETER_6, STATUS_NO_MATCH,
    STATUS_NOT_FOUND, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_TYPE_MISMATCH, STATUS_PROPSET_NOT_FOUND,
    StatusText, WAVE_FORMAT_EXTENSIBLE, WAVEFORMATEX, connection_property, pin_property, topology_property,
    win32_error,
};
use ksring_api::{KSPROPSETID_KsRing, PIN_INPUT, PIN_OUTPUT, ksring_property};

use super::Rig;
use crate::backend::{Backend, Fail, Handle, Io};
use crate::filter::{Filter, Pin, Properties};
use crate::io::InFlight;
use crate::request::{self, Bytes, Connect, HEADER_SIZE, Header, wfx_offset};

/// What a request got: a status, or (for opens on Windows) only a Win32 error.
pub type Got = Fail;

fn status(s: NTSTATUS) -> Got {
    Fail::Status(s)
}

/// What a case runs against: a filter with both pins as byte streams, in the case's state.
pub struct Ctx<'b> {
    /// The backend.
    pub backend: &'b dyn Backend,
    /// The filter and its pins.
    pub rig: Rig<'b>,
}

type Run = Box<dyn Fn(&Ctx<'_>) -> Got>;

/// One bad input.
pub struct Case {
    /// Where: open, connect, property, ioctl, reset, stream.
    pub area: &'static str,
    /// What is wrong.
    pub name: &'static str,
    /// The state both pins are in when it is sent.
    pub state: KSSTATE,
    run: Run,
    /// The status it must get.
    pub expected: NTSTATUS,
    /// Whether a ks.sys routine decides the status, rather than ksring's own code.
    pub by_ks: bool,
}

fn case(
    area: &'static str,
    name: &'static str,
    expected: NTSTATUS,
    run: impl Fn(&Ctx<'_>) -> NTSTATUS + 'static,
) -> Case {
    answered(area, name, expected, move |c| status(run(c)))
}

/// A case whose request may fail with only a Win32 error (opens, on Windows).
fn answered(
    area: &'static str,
    name: &'static str,
    expected: NTSTATUS,
    run: impl Fn(&Ctx<'_>) -> Got + 'static,
) -> Case {
    Case { area, name, state: KSSTATE_RUN, run: Box::new(run), expected, by_ks: false }
}

/// A case whose status comes from a ks.sys routine the driver calls.
fn ks(mut c: Case) -> Case {
    c.by_ks = true;
    c
}

fn stopped(mut c: Case) -> Case {
    c.state = KSSTATE_STOP;
    c
}

fn opened<T>(r: Result<T, Fail>) -> Got {
    r.err().unwrap_or(Fail::Status(0))
}

fn pin_create(blob: Vec<u8>) -> impl Fn(&Ctx<'_>) -> Got {
    move |c| opened(c.backend.create_pin(c.rig.filter.handle(), &blob))
}

/// Creates pin `pin` streaming `format` on a second filter as an IRP source pointing at the
/// handle `target` picks (it may open more, kept in the `Vec` until the attempt is over); what
/// the create got. Whatever was opened is closed again.
fn source_create(
    pin: u32,
    format: Vec<u8>,
    target: impl for<'b> Fn(&Ctx<'b>, &Filter<'b>, &mut Vec<Pin<'b>>) -> Result<Handle, Fail> + 'static,
) -> impl Fn(&Ctx<'_>) -> Got {
    move |c| {
        let second = match Filter::open_first(c.backend) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let mut keep = Vec::new();
        let handle = match target(c, &second, &mut keep) {
            Ok(h) => h,
            Err(e) => return e,
        };
        let mut request = Connect::new(pin, format.clone());
        request.pin_to_handle = handle.0;
        let got = opened(second.create_pin(&request));
        drop(keep);
        got
    }
}

/// A source pin on a third filter feeding the rig's input (it stays in STOP: nothing moves).
fn feed_rig_input<'b>(c: &Ctx<'b>, keep: &mut Vec<Pin<'b>>) -> Result<Handle, Fail> {
    let third = Filter::open_first(c.backend)?;
    let mut request = connect(PIN_OUTPUT);
    request.pin_to_handle = c.rig.input.handle().0;
    let source = third.create_pin(&request)?;
    let handle = source.handle();
    keep.push(source); // the pin keeps its filter open (a filter closes after its pins)
    Ok(handle)
}

/// A connection that would be fine for `pin` on an empty filter.
fn connect(pin: u32) -> Connect {
    Connect::new(pin, request::stream_format())
}

fn filter_property(request: Vec<u8>, value_len: usize) -> impl Fn(&Ctx<'_>) -> NTSTATUS {
    move |c| c.rig.filter.property(&request, &mut vec![0; value_len]).status
}

fn filter_set(request: Vec<u8>, value: Vec<u8>) -> impl Fn(&Ctx<'_>) -> NTSTATUS {
    move |c| c.rig.filter.set(&request, &value).status
}

fn input_set(request: Vec<u8>, value: Vec<u8>) -> impl Fn(&Ctx<'_>) -> NTSTATUS {
    move |c| c.rig.input.set(&request, &value).status
}

fn pin_get(id: u32, pin: u32) -> Vec<u8> {
    request::pin_property(KSPROPSETID_Pin, id, KsPropertyType::GET, pin)
}

fn intersection(list: &[u8]) -> Vec<u8> {
    let mut r = pin_get(pin_property::DATAINTERSECTION, PIN_INPUT);
    r.extend_from_slice(list);
    r
}

/// Submits stream headers (given as raw bytes, with frame buffers after them) on a pin.
fn stream(
    code: u32,
    on_output: bool,
    build: impl Fn(u64) -> Vec<u8> + 'static,
) -> impl Fn(&Ctx<'_>) -> NTSTATUS {
    move |c| {
        let pin = if on_output { c.rig.output.handle() } else { c.rig.input.handle() };
        let mut memory = c.backend.alloc(4096);
        let base = memory.as_ptr() as u64;
        let bytes = build(base);
        memory.bytes_mut()[..bytes.len()].copy_from_slice(&bytes);
        let headers = bytes.len().min(4096);
        InFlight::submit(c.backend, pin, code, memory, headers.min(bytes.len())).wait().status
    }
}

/// Header bytes: each header at its own offset with `Size = size`; buffers start at 1024.
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

/// One 0xA0-byte header with `KSSTREAM_HEADER_OPTIONSF_METADATA`, its 8-byte frame at 1024 and
/// 16 bytes of metadata at 2048 (length at +0x80, address at +0x88, as ks.sys reads them).
fn metadata_header(used: u32, base: u64) -> Vec<u8> {
    let mut h = headers(&[(write_header(used, 8, KsStreamOptions::METADATA.bits()), 0xA0)], base);
    h[0x80..0x84].copy_from_slice(&16u32.to_le_bytes());
    h[0x88..0x90].copy_from_slice(&(base + 2048).to_le_bytes());
    h
}

fn write_header(used: u32, extent: u32, flags: u32) -> Header {
    Header { frame_extent: extent, data_used: used, options_flags: flags, ..Header::default() }
}

/// The cases whose status a ks.sys routine decides (`KsValidateConnectRequest`,
/// `KsPropertyHandler`, `KsPinPropertyHandler`, `KsPinDataIntersection`,
/// `KsTopologyPropertyHandler`, `KsProbeStreamIrp`, `KsAcquireResetValue`,
/// `KsDefaultDeviceIoCompletion`, create-item dispatch).
const DECIDED_BY_KS: &[&str] = &[
    "filter path with parameters after the reference string",
    "pin created relative to a pin",
    "pin id beyond the factories",
    "blob shorter than a KSPIN_CONNECT",
    "blob without a whole KSDATAFORMAT",
    "FormatSize beyond the blob",
    "FormatSize below a KSDATAFORMAT",
    "interface Flags set",
    "medium Flags set",
    "priority subclass 0",
    "format Reserved set",
    "format with a wildcard major format",
    "SPECIFIER_NONE format longer than a KSDATAFORMAT",
    "format with an attribute flag but no list",
    "looped-streaming interface",
    "interface from another set",
    "medium from another set",
    "format outside the ranges",
    "request shorter than a KSPROPERTY",
    "unknown property set",
    "unknown property id",
    "no verb in Flags",
    "GET and SET at once",
    "SET of a read-only property",
    "fixed-size value buffer too small",
    "KSPROPERTY where a KSP_PIN is needed",
    "KSP_PIN with a pin id beyond the factories",
    "KSP_PIN with Reserved set (a static property)",
    "intersection request without its range list",
    "variable-size value buffer too small",
    "connection set on a filter",
    "pin set on a pin",
    "topology node name with no nodes",
    "capacity value shorter than a ULONG",
    "method request (no methods)",
    "event request (no events)",
    "stream request on a filter",
    "unknown control code",
    "value shorter than a KSRESET",
    "empty header array",
    "array shorter than a header",
    "header Size below a KSSTREAM_HEADER",
    "header Size not a multiple of 8",
    "header Size beyond the array",
    "second header cut short",
    "write DataUsed beyond FrameExtent",
    "write with TYPECHANGED",
    "write Data at unmapped memory",
    "write FrameExtent beyond the caller's memory",
    "read with DataUsed set",
    "read with OptionsFlags set",
    "METADATA header shorter than 0xA0",
    "read Data at unmapped memory",
];

/// Every case.
#[allow(clippy::too_many_lines)] // one table
#[must_use]
pub fn cases() -> Vec<Case> {
    #[allow(clippy::cast_possible_truncation)] // 56
    let hs = HEADER_SIZE as u32;
    let pcm = || request::pcm_format(2, 16, 48_000);
    let mut v = vec![
        // ---- opening --------------------------------------------------------------------------
        answered(
            "open",
            "filter path with parameters after the reference string",
            STATUS_INVALID_PARAMETER,
            |c| {
                let path = format!("{}\\extra", c.backend.filters(&ksring_api::KSCATEGORY_KSRING)[0].path);
                opened(c.backend.open(&path))
            },
        ),
        answered("open", "pin created relative to a pin", STATUS_OBJECT_NAME_NOT_FOUND, |c| {
            opened(c.backend.create_pin(c.rig.input.handle(), &connect(PIN_INPUT).to_bytes()))
        }),
        // ---- pin creation ---------------------------------------------------------------------
        answered(
            "connect",
            "pin id beyond the factories",
            STATUS_INVALID_PARAMETER_3,
            pin_create(connect(2).to_bytes()),
        ),
        answered(
            "connect",
            "second instance of a factory",
            STATUS_DEVICE_BUSY,
            pin_create(connect(PIN_INPUT).to_bytes()),
        ),
        answered("connect", "blob shorter than a KSPIN_CONNECT", STATUS_INVALID_BUFFER_SIZE, {
            pin_create(connect(PIN_INPUT).to_bytes()[..40].to_vec())
        }),
        answered("connect", "blob without a whole KSDATAFORMAT", STATUS_INVALID_BUFFER_SIZE, {
            let b = connect(PIN_INPUT).to_bytes();
            pin_create(b[..b.len() - 1].to_vec())
        }),
        answered("connect", "FormatSize beyond the blob", STATUS_INVALID_PARAMETER, {
            let mut b = Bytes(connect(PIN_INPUT).to_bytes());
            b.u32(size_of::<KSPIN_CONNECT>(), 65);
            pin_create(b.0)
        }),
        answered("connect", "FormatSize below a KSDATAFORMAT", STATUS_INVALID_PARAMETER, {
            let mut b = Bytes(connect(PIN_INPUT).to_bytes());
            b.u32(size_of::<KSPIN_CONNECT>(), 32);
            pin_create(b.0)
        }),
        answered("connect", "interface Flags set", STATUS_INVALID_PARAMETER_1, {
            let mut c = connect(PIN_INPUT);
            c.interface.2 = 1;
            pin_create(c.to_bytes())
        }),
        answered("connect", "medium Flags set", STATUS_INVALID_PARAMETER_2, {
            let mut c = connect(PIN_INPUT);
            c.medium.2 = 1;
            pin_create(c.to_bytes())
        }),
        answered("connect", "priority subclass 0", STATUS_INVALID_PARAMETER_5, {
            let mut b = Bytes(connect(PIN_INPUT).to_bytes());
            b.u32(offset_of!(KSPIN_CONNECT, Priority) + offset_of!(KSPRIORITY, PrioritySubClass), 0);
            pin_create(b.0)
        }),
        answered("connect", "format Reserved set", STATUS_INVALID_PARAMETER_6, {
            let mut f = Bytes(request::stream_format());
            f.u32(offset_of!(KSDATAFORMAT, Reserved), 1);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
        answered("connect", "format with a wildcard major format", STATUS_INVALID_PARAMETER_6, {
            let f =
                request::data_format(64, GUID_NULL, KSDATAFORMAT_SUBTYPE_NONE, KSDATAFORMAT_SPECIFIER_NONE);
            pin_create(Connect::new(PIN_INPUT, f).to_bytes())
        }),
        answered(
            "connect",
            "SPECIFIER_NONE format longer than a KSDATAFORMAT",
            STATUS_INVALID_PARAMETER_6,
            {
                let mut f = Bytes(request::stream_format());
                f.0.resize(72, 0);
                f.u32(0, 72);
                pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
            },
        ),
        answered("connect", "looped-streaming interface", STATUS_NO_MATCH, {
            let mut c = connect(PIN_INPUT);
            c.interface.1 = KSINTERFACE_STANDARD_LOOPED_STREAMING;
            pin_create(c.to_bytes())
        }),
        answered("connect", "interface from another set", STATUS_NO_MATCH, {
            let mut c = connect(PIN_INPUT);
            c.interface.0 = KSMEDIUMSETID_Standard;
            pin_create(c.to_bytes())
        }),
        answered("connect", "medium from another set", STATUS_NO_MATCH, {
            let mut c = connect(PIN_OUTPUT);
            c.medium = (KSINTERFACESETID_Standard, 0, 0);
            pin_create(c.to_bytes())
        }),
        // ---- IRP-source connections (PinToHandle set) ------------------------------------------
        answered(
            "connect",
            "PinToHandle that is no handle",
            STATUS_INVALID_HANDLE,
            source_create(PIN_OUTPUT, request::stream_format(), |_, _, _| Ok(Handle(0x7FFF_FFF8))),
        ),
        answered(
            "connect",
            "PinToHandle already closed",
            STATUS_INVALID_HANDLE,
            source_create(PIN_OUTPUT, request::stream_format(), |c, _, _| {
                let gone = Filter::open_first(c.backend)?;
                let handle = gone.handle();
                gone.close()?;
                Ok(handle)
            }),
        ),
        answered(
            "connect",
            "PinToHandle of an event, not a file",
            STATUS_OBJECT_TYPE_MISMATCH,
            source_create(PIN_OUTPUT, request::stream_format(), |c, _, _| c.backend.create_event()),
        ),
        answered(
            "connect",
            "PinToHandle of a filter, not a pin",
            STATUS_INVALID_PARAMETER,
            source_create(PIN_OUTPUT, request::stream_format(), |c, _, _| Ok(c.rig.filter.handle())),
        ),
        answered(
            "connect",
            "PinToHandle of the same filter's pin",
            STATUS_INVALID_PARAMETER,
            source_create(PIN_OUTPUT, request::stream_format(), |_, second, keep| {
                let own = second.connect(PIN_INPUT, &request::stream_format())?;
                let handle = own.handle();
                keep.push(own);
                Ok(handle)
            }),
        ),
        answered(
            "connect",
            "PinToHandle of a pin with the same data flow",
            STATUS_NO_MATCH,
            source_create(PIN_OUTPUT, request::stream_format(), |c, _, _| Ok(c.rig.output.handle())),
        ),
        answered(
            "connect",
            "PinToHandle of a pin streaming another format",
            STATUS_NO_MATCH,
            source_create(PIN_OUTPUT, pcm(), |c, _, _| Ok(c.rig.input.handle())),
        ),
        answered(
            "connect",
            "PinToHandle of a pin that is an IRP source",
            STATUS_NO_MATCH,
            source_create(PIN_INPUT, request::stream_format(), |c, _, keep| feed_rig_input(c, keep)),
        ),
        answered(
            "connect",
            "PinToHandle of a pin another source feeds",
            STATUS_DEVICE_BUSY,
            source_create(PIN_OUTPUT, request::stream_format(), |c, _, keep| {
                feed_rig_input(c, keep)?;
                Ok(c.rig.input.handle())
            }),
        ),
        answered(
            "connect",
            "PinToHandle of a sink opened without write access (a push source writes)",
            STATUS_ACCESS_DENIED,
            source_create(PIN_OUTPUT, request::stream_format(), |c, _, keep| {
                let third = Filter::open_first(c.backend)?;
                let sink = third.create_pin_access(&connect(PIN_INPUT), GENERIC_READ)?;
                let handle = sink.handle();
                keep.push(sink);
                Ok(handle)
            }),
        ),
        answered(
            "connect",
            "PinToHandle of a sink opened without read access (a pull source reads)",
            STATUS_ACCESS_DENIED,
            source_create(PIN_INPUT, request::stream_format(), |c, _, keep| {
                let third = Filter::open_first(c.backend)?;
                let sink = third.create_pin_access(&connect(PIN_OUTPUT), GENERIC_WRITE)?;
                let handle = sink.handle();
                keep.push(sink);
                Ok(handle)
            }),
        ),
        answered("connect", "format outside the ranges", STATUS_NO_MATCH, {
            let video = request::data_format(
                64,
                GUID::from_u128(0x7669_6473),
                GUID::from_u128(1),
                GUID::from_u128(2),
            );
            pin_create(Connect::new(PIN_INPUT, video).to_bytes())
        }),
        answered("connect", "format with an attribute flag but no list", STATUS_INVALID_PARAMETER, {
            let mut f = Bytes(request::stream_format());
            f.u32(offset_of!(KSDATAFORMAT, Flags), 2);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
        answered("connect", "PCM GUIDs without a WAVEFORMATEX", STATUS_INVALID_BUFFER_SIZE, {
            let mut f = Bytes(pcm()[..64].to_vec());
            f.u32(0, 64);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
        answered("connect", "PCM cbSize beyond FormatSize", STATUS_INVALID_BUFFER_SIZE, {
            let mut f = Bytes(pcm());
            f.u16(wfx_offset(offset_of!(WAVEFORMATEX, cbSize)), 22);
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes())
        }),
    ];
    for (name, format) in [
        ("PCM with 9 channels", request::pcm_format(9, 16, 48_000)),
        ("PCM with 0 channels", request::pcm_format(0, 16, 48_000)),
        ("PCM with 12-bit samples", request::pcm_format(2, 12, 48_000)),
        ("PCM at 4 kHz", request::pcm_format(2, 16, 4_000)),
        ("PCM at 384 kHz", request::pcm_format(2, 16, 384_000)),
    ] {
        v.push(answered(
            "connect",
            name,
            STATUS_NO_MATCH,
            pin_create(Connect::new(PIN_INPUT, format).to_bytes()),
        ));
    }
    for (name, field, value) in [
        ("PCM with a wrong nBlockAlign", offset_of!(WAVEFORMATEX, nBlockAlign), 3u16),
        ("PCM with WAVE_FORMAT_EXTENSIBLE", offset_of!(WAVEFORMATEX, wFormatTag), WAVE_FORMAT_EXTENSIBLE),
    ] {
        let mut f = Bytes(pcm());
        f.u16(wfx_offset(field), value);
        v.push(answered(
            "connect",
            name,
            STATUS_NO_MATCH,
            pin_create(Connect::new(PIN_INPUT, f.0).to_bytes()),
        ));
    }
    let mut f = Bytes(pcm());
    f.u32(wfx_offset(offset_of!(WAVEFORMATEX, nAvgBytesPerSec)), 1);
    v.push(answered(
        "connect",
        "PCM with a wrong nAvgBytesPerSec",
        STATUS_NO_MATCH,
        pin_create(Connect::new(PIN_INPUT, f.0).to_bytes()),
    ));
    v.push(answered("connect", "format other than the connected peer's", STATUS_NO_MATCH, {
        let blob = Connect::new(PIN_INPUT, pcm()).to_bytes();
        move |c: &Ctx<'_>| {
            // A second filter with only its output connected (as a byte stream).
            let Ok(other) = Filter::open_first(c.backend) else { return status(0) };
            let Ok(output) = other.connect(PIN_OUTPUT, &request::stream_format()) else { return status(0) };
            let got = opened(c.backend.create_pin(other.handle(), &blob));
            drop((output, other));
            got
        }
    }));

    // ---- properties ---------------------------------------------------------------------------
    let ctypes = request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET);
    v.extend([
        case(
            "property",
            "request shorter than a KSPROPERTY",
            STATUS_INVALID_PARAMETER,
            filter_property(ctypes[..20].to_vec(), 4),
        ),
        case("property", "unknown property set", STATUS_PROPSET_NOT_FOUND, {
            filter_property(request::property(GUID::from_u128(0xBAD), 0, KsPropertyType::GET), 4)
        }),
        case("property", "unknown property id", STATUS_NOT_FOUND, {
            filter_property(request::property(KSPROPSETID_Pin, 77, KsPropertyType::GET), 4)
        }),
        case("property", "no verb in Flags", STATUS_INVALID_PARAMETER, {
            filter_property(
                request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::empty()),
                4,
            )
        }),
        case("property", "GET and SET at once", STATUS_INVALID_PARAMETER, {
            filter_property(
                request::property(
                    KSPROPSETID_Pin,
                    pin_property::CTYPES,
                    KsPropertyType::GET | KsPropertyType::SET,
                ),
                4,
            )
        }),
        case("property", "SET of a read-only property", STATUS_NOT_FOUND, {
            filter_set(
                request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::SET),
                vec![0; 4],
            )
        }),
        case(
            "property",
            "fixed-size value buffer too small",
            STATUS_BUFFER_TOO_SMALL,
            filter_property(ctypes.clone(), 2),
        ),
        case("property", "KSPROPERTY where a KSP_PIN is needed", STATUS_BUFFER_TOO_SMALL, {
            filter_property(pin_get(pin_property::DATAFLOW, 0)[..24].to_vec(), 4)
        }),
        case("property", "KSP_PIN with a pin id beyond the factories", STATUS_INVALID_PARAMETER, {
            filter_property(pin_get(pin_property::DATAFLOW, 2), 4)
        }),
        case("property", "KSP_PIN with Reserved set (a static property)", STATUS_INVALID_PARAMETER, {
            let mut r = Bytes(pin_get(pin_property::DATAFLOW, 0));
            r.u32(offset_of!(KSP_PIN, Reserved), 1);
            filter_property(r.0, 4)
        }),
        case("property", "KSP_PIN with Reserved set (instance counts)", STATUS_INVALID_PARAMETER, {
            let mut r = Bytes(pin_get(pin_property::CINSTANCES, 0));
            r.u32(offset_of!(KSP_PIN, Reserved), 1);
            filter_property(r.0, 8)
        }),
        case("property", "KSP_PIN with Reserved set (intersection)", STATUS_INVALID_PARAMETER, {
            let mut r = Bytes(intersection(&request::multiple_item(&[request::stream_format()])));
            r.u32(offset_of!(KSP_PIN, Reserved), 1);
            filter_property(r.0, 128)
        }),
        case("property", "variable-size value buffer too small", STATUS_BUFFER_TOO_SMALL, {
            filter_property(pin_get(pin_property::DATARANGES, 0), 100)
        }),
        case("property", "connection set on a filter", STATUS_PROPSET_NOT_FOUND, {
            filter_property(
                request::property(KSPROPSETID_Connection, connection_property::STATE, KsPropertyType::GET),
                4,
            )
        }),
        case("property", "pin set on a pin", STATUS_PROPSET_NOT_FOUND, |c| {
            c.rig
                .input
                .property(
                    &request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET),
                    &mut [0; 4],
                )
                .status
        }),
        case("property", "topology node name with no nodes", STATUS_INVALID_PARAMETER, {
            filter_property(
                request::node_property(KSPROPSETID_Topology, topology_property::NAME, KsPropertyType::GET, 0),
                64,
            )
        }),
        case("property", "intersection request without its range list", STATUS_BUFFER_TOO_SMALL, {
            filter_property(intersection(&[]), 128)
        }),
        case("property", "intersection list Size beyond the request", STATUS_INVALID_BUFFER_SIZE, {
            let mut list = Bytes(request::multiple_item(&[request::stream_format()]));
            list.u32(0, 4096);
            filter_property(intersection(&list.0), 128)
        }),
        case("property", "intersection list Count beyond its Size", STATUS_INVALID_BUFFER_SIZE, {
            // A first range that matches nothing: ranges after a match are never looked at.
            let video = request::data_format(64, GUID::from_u128(0x7669_6473), GUID_NULL, GUID_NULL);
            let mut list = Bytes(request::multiple_item(&[video]));
            list.u32(4, 3);
            filter_property(intersection(&list.0), 128)
        }),
        case("property", "intersection range FormatSize below a KSDATARANGE", STATUS_INVALID_BUFFER_SIZE, {
            let mut range = Bytes(request::stream_format());
            range.u32(0, 16);
            filter_property(intersection(&request::multiple_item(&[range.0])), 128)
        }),
        case("property", "intersection with no common format", STATUS_NO_MATCH, {
            let video = request::data_format(
                64,
                GUID::from_u128(0x7669_6473),
                GUID::from_u128(0),
                GUID::from_u128(0),
            );
            filter_property(intersection(&request::multiple_item(&[video])), 128)
        }),
        case("property", "proposed format ksring cannot stream", STATUS_NO_MATCH, {
            filter_set(
                request::pin_property(
                    KSPROPSETID_Pin,
                    pin_property::PROPOSEDATAFORMAT,
                    KsPropertyType::SET,
                    0,
                ),
                request::pcm_format(2, 16, 1),
            )
        }),
        case("property", "capacity below the minimum", STATUS_INVALID_PARAMETER, {
            filter_set(
                request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET),
                4088u32.to_le_bytes().to_vec(),
            )
        }),
        case("property", "capacity above the maximum", STATUS_INVALID_PARAMETER, {
            filter_set(
                request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET),
                u32::MAX.to_le_bytes().to_vec(),
            )
        }),
        case("property", "capacity not a multiple of 8", STATUS_INVALID_PARAMETER, {
            filter_set(
                request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET),
                8191u32.to_le_bytes().to_vec(),
            )
        }),
        case("property", "capacity change while the ring is in use", STATUS_INVALID_DEVICE_STATE, {
            filter_set(
                request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET),
                8192u32.to_le_bytes().to_vec(),
            )
        }),
        case("property", "capacity value shorter than a ULONG", STATUS_BUFFER_TOO_SMALL, {
            filter_set(
                request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET),
                vec![0; 2],
            )
        }),
        case("property", "state beyond RUN", STATUS_INVALID_PARAMETER, {
            input_set(
                request::property(KSPROPSETID_Connection, connection_property::STATE, KsPropertyType::SET),
                4i32.to_le_bytes().to_vec(),
            )
        }),
        case("property", "negative state", STATUS_INVALID_PARAMETER, {
            input_set(
                request::property(KSPROPSETID_Connection, connection_property::STATE, KsPropertyType::SET),
                (-1i32).to_le_bytes().to_vec(),
            )
        }),
        case("property", "data format change outside STOP", STATUS_INVALID_DEVICE_STATE, {
            input_set(
                request::property(
                    KSPROPSETID_Connection,
                    connection_property::DATAFORMAT,
                    KsPropertyType::SET,
                ),
                request::stream_format(),
            )
        }),
        stopped(case(
            "property",
            "data format value shorter than a KSDATAFORMAT",
            STATUS_INVALID_BUFFER_SIZE,
            {
                input_set(
                    request::property(
                        KSPROPSETID_Connection,
                        connection_property::DATAFORMAT,
                        KsPropertyType::SET,
                    ),
                    vec![0; 40],
                )
            },
        )),
        stopped(case("property", "data format FormatSize beyond the value", STATUS_INVALID_BUFFER_SIZE, {
            let mut f = Bytes(request::stream_format());
            f.u32(0, 200);
            input_set(
                request::property(
                    KSPROPSETID_Connection,
                    connection_property::DATAFORMAT,
                    KsPropertyType::SET,
                ),
                f.0,
            )
        })),
        stopped(case("property", "data format other than the peer's", STATUS_NO_MATCH, {
            input_set(
                request::property(
                    KSPROPSETID_Connection,
                    connection_property::DATAFORMAT,
                    KsPropertyType::SET,
                ),
                pcm(),
            )
        })),
        case("ioctl", "method request (no methods)", STATUS_PROPSET_NOT_FOUND, |c| {
            c.backend.ioctl(c.rig.filter.handle(), IOCTL_KS_METHOD, &ctypes_request(), &mut [0; 8]).status
        }),
        case("ioctl", "event request (no events)", STATUS_PROPSET_NOT_FOUND, |c| {
            c.backend
                .ioctl(c.rig.input.handle(), IOCTL_KS_ENABLE_EVENT, &ctypes_request(), &mut [0; 8])
                .status
        }),
        case("ioctl", "stream request on a filter", STATUS_INVALID_DEVICE_REQUEST, |c| {
            c.backend.ioctl(c.rig.filter.handle(), IOCTL_KS_READ_STREAM, &[], &mut [0; 56]).status
        }),
        case("ioctl", "unknown control code", STATUS_INVALID_DEVICE_REQUEST, |c| {
            c.backend
                .ioctl(
                    c.rig.input.handle(),
                    ksabi::ctl_code(ksabi::FILE_DEVICE_KS, 0x7FF, 3, 0),
                    &[],
                    &mut [],
                )
                .status
        }),
    ]);

    // ---- reset ------------------------------------------------------------------------------------
    v.extend([
        case("reset", "value shorter than a KSRESET", STATUS_INVALID_PARAMETER, |c| {
            c.backend.ioctl(c.rig.input.handle(), IOCTL_KS_RESET_STATE, &[0; 2], &mut []).status
        }),
        case("reset", "value neither BEGIN nor END", STATUS_INVALID_PARAMETER, |c| {
            c.rig.input.reset(2).status
        }),
        case("reset", "negative value", STATUS_INVALID_PARAMETER, |c| c.rig.output.reset(-1).status),
        case("reset", "stream request between BEGIN and END", STATUS_DEVICE_NOT_READY, move |c| {
            // A failing BEGIN or END shows up as the case's status (and fails it).
            let begin = c.rig.input.reset(KSRESET_BEGIN).status;
            if begin != 0 {
                return begin;
            }
            let status =
                stream(IOCTL_KS_WRITE_STREAM, false, move |b| headers(&[(write_header(8, 8, 0), hs)], b))(c);
            let end = c.rig.input.reset(ksabi::KSRESET_END).status;
            if end == 0 { status } else { end }
        }),
    ]);

    // ---- stream headers -----------------------------------------------------------------------
    let typechanged = KsStreamOptions::TYPECHANGED.bits();
    let metadata = KsStreamOptions::METADATA.bits();
    let persisted = (KsStreamOptions::PERSIST_SAMPLE | KsStreamOptions::SAMPLE_PERSISTED).bits();
    v.extend([
        case("stream", "write on the output pin", STATUS_INVALID_DEVICE_REQUEST, {
            stream(IOCTL_KS_WRITE_STREAM, true, move |b| headers(&[(write_header(8, 8, 0), hs)], b))
        }),
        case("stream", "read on the input pin", STATUS_INVALID_DEVICE_REQUEST, {
            stream(IOCTL_KS_READ_STREAM, false, move |b| headers(&[(write_header(0, 8, 0), hs)], b))
        }),
        stopped(case("stream", "write in STOP", STATUS_INVALID_DEVICE_STATE, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| headers(&[(write_header(8, 8, 0), hs)], b))
        })),
        stopped(case("stream", "read in STOP", STATUS_INVALID_DEVICE_STATE, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| headers(&[(write_header(0, 8, 0), hs)], b))
        })),
        case(
            "stream",
            "empty header array",
            STATUS_INVALID_BUFFER_SIZE,
            stream(IOCTL_KS_WRITE_STREAM, false, |_| Vec::new()),
        ),
        case("stream", "array shorter than a header", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                headers(&[(write_header(8, 8, 0), hs)], b)[..40].to_vec()
            })
        }),
        case("stream", "header Size below a KSSTREAM_HEADER", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                let mut h = headers(&[(write_header(8, 8, 0), hs)], b);
                h[..4].copy_from_slice(&48u32.to_le_bytes());
                h
            })
        }),
        case("stream", "header Size not a multiple of 8", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                let mut h = headers(&[(write_header(8, 8, 0), hs + 4)], b);
                h.resize(HEADER_SIZE + 4, 0);
                h
            })
        }),
        case("stream", "header Size beyond the array", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                let mut h = headers(&[(write_header(8, 8, 0), hs)], b);
                h[..4].copy_from_slice(&64u32.to_le_bytes());
                h
            })
        }),
        case("stream", "second header cut short", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                let h = headers(&[(write_header(8, 8, 0), hs), (write_header(8, 8, 0), hs)], b);
                h[..HEADER_SIZE + 30].to_vec()
            })
        }),
        case("stream", "write DataUsed beyond FrameExtent", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| headers(&[(write_header(9, 8, 0), hs)], b))
        }),
        case("stream", "write with TYPECHANGED", STATUS_INVALID_PARAMETER, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                headers(&[(write_header(8, 8, typechanged), hs)], b)
            })
        }),
        case("stream", "write Data at unmapped memory", STATUS_ACCESS_VIOLATION, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                let h = Header { data: 0x1000, ..write_header(8, 8, 0) };
                headers(&[(h, hs)], b)
            })
        }),
        case("stream", "write FrameExtent beyond the caller's memory", STATUS_ACCESS_VIOLATION, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| headers(&[(write_header(8, 1 << 20, 0), hs)], b))
        }),
        case("stream", "read with DataUsed set", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| headers(&[(write_header(4, 8, 0), hs)], b))
        }),
        case("stream", "read with OptionsFlags set", STATUS_INVALID_PARAMETER, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| headers(&[(write_header(0, 8, 0x200), hs)], b))
        }),
        case("stream", "METADATA header shorter than 0xA0", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| headers(&[(write_header(0, 8, metadata), hs)], b))
        }),
        case("stream", "read with METADATA", STATUS_INVALID_PARAMETER, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| metadata_header(0, b))
        }),
        case("stream", "write with METADATA", STATUS_INVALID_PARAMETER, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| metadata_header(8, b))
        }),
        case("stream", "read marked PERSIST_SAMPLE|SAMPLE_PERSISTED", STATUS_INVALID_PARAMETER, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| headers(&[(write_header(0, 8, persisted), hs)], b))
        }),
        case("stream", "write marked PERSIST_SAMPLE|SAMPLE_PERSISTED", STATUS_INVALID_PARAMETER, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| headers(&[(write_header(8, 8, persisted), hs)], b))
        }),
        case("stream", "write with FRAMEINFO", STATUS_INVALID_PARAMETER, {
            stream(IOCTL_KS_WRITE_STREAM, false, move |b| {
                headers(&[(write_header(8, 8, KsStreamOptions::FRAMEINFO.bits()), hs)], b)
            })
        }),
        case("stream", "read header with no room (FrameExtent 0)", STATUS_INVALID_BUFFER_SIZE, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| {
                headers(&[(write_header(0, 8, 0), hs), (write_header(0, 0, 0), hs)], b)
            })
        }),
        case("stream", "read Data at unmapped memory", STATUS_ACCESS_VIOLATION, {
            stream(IOCTL_KS_READ_STREAM, true, move |b| {
                let h = Header { data: 0x1000, ..write_header(0, 8, 0) };
                headers(&[(h, hs)], b)
            })
        }),
    ]);
    v.into_iter().map(|c| if DECIDED_BY_KS.contains(&c.name) { ks(c) } else { c }).collect()
}

fn ctypes_request() -> Vec<u8> {
    request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET)
}

/// Everything a bad request must leave as it was (as a client can see it).
type PerPin<T> = (Result<T, Io>, Result<T, Io>);

/// What [`run_case`] compares before and after.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    stats: Result<ksring_api::KsRingStatistics, Io>,
    states: PerPin<KSSTATE>,
    instances: PerPin<(u32, u32)>,
    capacity: Result<u32, Io>,
}

/// The filter's and pins' visible state.
#[must_use]
pub fn snapshot(c: &Ctx<'_>) -> Snapshot {
    let f = &c.rig.filter;
    Snapshot {
        stats: f.statistics(),
        states: (c.rig.input.state(), c.rig.output.state()),
        instances: (f.instances(PIN_INPUT), f.instances(PIN_OUTPUT)),
        capacity: f.capacity(),
    }
}

/// A fresh filter with both pins as byte streams, in the case's state.
///
/// # Errors
/// When the filter or its pins cannot be set up.
pub fn context<'b>(backend: &'b dyn Backend, case: &Case) -> Result<Ctx<'b>, String> {
    Ok(Ctx { backend, rig: super::rig(backend, &request::stream_format(), case.state)? })
}

/// Sends the case's bad input and checks its status and that nothing changed.
///
/// # Errors
/// What differed.
pub fn run_case(ctx: &Ctx<'_>, case: &Case) -> Result<(), String> {
    let before = snapshot(ctx);
    let got = (case.run)(ctx);
    if !got.is(case.expected) {
        return Err(format!("got {got}, expected {}", StatusText(case.expected)));
    }
    let after = snapshot(ctx);
    if after != before {
        return Err(format!("state changed: before {before:?}, after {after:?}"));
    }
    Ok(())
}
/// The README's table, generated from the cases.
#[must_use]
pub fn table_markdown(cases: &[Case]) -> String {
    let mut out =
        String::from("| area | bad input | NTSTATUS | Win32 error | decided by |\n|---|---|---|---|---|\n");
    for c in cases {
        let name = ksabi::status_name(c.expected).unwrap_or("?");
        let by = if c.by_ks { "ks.sys †" } else { "ksring" };
        let _ = writeln!(
            out,
            "| {} | {} | `{name}` ({:#010X}) | {} | {by} |",
            c.area,
            c.name,
            c.expected.cast_unsigned(),
            win32_error(c.expected)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_consistent() {
        let table = cases();
        assert!(table.len() >= 50, "{} cases", table.len());
        let mut names = std::collections::HashSet::new();
        for c in &table {
            assert!(names.insert(c.name), "duplicate case {}", c.name);
        }
        for name in DECIDED_BY_KS {
            assert!(names.contains(name), "{name} is not a case");
        }
    }
}
