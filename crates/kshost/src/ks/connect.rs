//! `KsValidateConnectRequest` (KS-REFERENCE §1.6–1.7).
//!
//! The request is the binary tail of the create's file name, after `KSSTRING_Pin\`: a
//! `KSPIN_CONNECT` and a `KSDATAFORMAT` of `FormatSize` bytes. It is always copied into an aligned
//! kernel buffer that lives as long as the IRP (the docs say user-mode requests are copied; the
//! name arrives unaligned at byte 78 either way). Checks, in order:
//!
//! 1. the parameters hold a `KSPIN_CONNECT` and a `KSDATAFORMAT` — else `STATUS_INVALID_BUFFER_SIZE`
//!    (ReactOS fails with `STATUS_UNSUCCESSFUL`; Windows' status is UNVERIFIED);
//! 2. `FormatSize` is at least `sizeof(KSDATAFORMAT)` and within the parameters — else
//!    `STATUS_INVALID_BUFFER_SIZE` (the conservative reading of "basic data format" validation);
//! 3. `PinId < DescriptorsCount` — else `STATUS_INVALID_PARAMETER` (ReactOS);
//! 4. the interface (set and id; flags ignored) is one of the descriptor's, or the standard
//!    streaming interface if it lists none — else `STATUS_NO_MATCH` (ReactOS);
//! 5. the medium likewise, default the standard any-instance medium — else `STATUS_NO_MATCH`;
//! 6. communication: `PinToHandle == NULL` needs an IRP-sink-capable factory (SINK, BOTH,
//!    BRIDGE), non-NULL an IRP-source-capable one (SOURCE, BOTH); `NONE` is never instantiable —
//!    else `STATUS_NO_MATCH` (the rule KS-REFERENCE calls consistent; Windows' exact rule UNVERIFIED);
//! 7. the format matches a range by the documented rules: the range's major format is the
//!    wildcard; or the major formats match and the range's subformat is the wildcard; or major,
//!    sub and specifier all match — else `STATUS_NO_MATCH`.

use ksabi::{
    GUID_NULL, IRP, KSDATAFORMAT, KSDATARANGE, KSINTERFACE_STANDARD_STREAMING, KSINTERFACESETID_Standard,
    KSMEDIUM_TYPE_ANYINSTANCE, KSMEDIUMSETID_Standard, KSPIN_COMMUNICATION_BOTH, KSPIN_COMMUNICATION_BRIDGE,
    KSPIN_COMMUNICATION_SINK, KSPIN_COMMUNICATION_SOURCE, KSPIN_CONNECT, KSPIN_DESCRIPTOR, KSPIN_INTERFACE,
    NTSTATUS, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER,
    STATUS_NO_MATCH, STATUS_SUCCESS,
};

use crate::objects::{FileBox, IrpBox, current_stack};
use crate::sync::Locked;

const CONNECT_SIZE: usize = size_of::<KSPIN_CONNECT>();
const FORMAT_SIZE: usize = size_of::<KSDATAFORMAT>();

pub(crate) fn validate(
    irp: *mut IRP,
    count: u32,
    descriptors: *const KSPIN_DESCRIPTOR,
    out: *mut *mut KSPIN_CONNECT,
) -> NTSTATUS {
    if !crate::irql::require_at_most(ksabi::PASSIVE_LEVEL, "KsValidateConnectRequest") {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    if out.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let stack = current_stack(irp);
    // SAFETY: the create IRP's current location.
    let file = unsafe { (*stack).FileObject };
    let fo = &FileBox::of(file).fo;
    let name_bytes: &[u8] = if fo.FileName.Buffer.is_null() {
        &[]
    } else {
        // SAFETY: FileName holds `Length` bytes owned by the file object.
        unsafe { std::slice::from_raw_parts(fo.FileName.Buffer.cast::<u8>(), fo.FileName.Length as usize) }
    };
    // The parameters follow the first backslash after the (optional leading `\` and) item name.
    let start = usize::from(name_bytes.starts_with(&[b'\\', 0])) * 2;
    let params = name_bytes[start..]
        .chunks_exact(2)
        .position(|c| c == [b'\\', 0])
        .map_or(&[][..], |i| &name_bytes[start + i * 2 + 2..]);
    if params.len() < CONNECT_SIZE + FORMAT_SIZE {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    // An aligned copy that lives as long as the IRP.
    let mut copy = vec![0u64; params.len().div_ceil(8)].into_boxed_slice();
    // SAFETY: `copy` has room for `params.len()` bytes; the two do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(params.as_ptr(), copy.as_mut_ptr().cast::<u8>(), params.len()) };
    let connect = copy.as_mut_ptr().cast::<KSPIN_CONNECT>();
    // SAFETY: the copy is 8-aligned and holds a KSPIN_CONNECT ...
    let request = unsafe { *connect };
    // SAFETY: ... followed by a KSDATAFORMAT (checked: at least CONNECT_SIZE + FORMAT_SIZE bytes).
    let format = unsafe { *connect.wrapping_add(1).cast::<KSDATAFORMAT>() };
    IrpBox::of(irp).meta.captured.locked().push(copy);

    let descriptors: &[KSPIN_DESCRIPTOR] = if descriptors.is_null() || count == 0 {
        &[]
    } else {
        // SAFETY: the driver's descriptor table of `count` entries.
        unsafe { std::slice::from_raw_parts(descriptors, count as usize) }
    };
    let status = check(&request, &format, params.len() - CONNECT_SIZE, descriptors);
    if status != STATUS_SUCCESS {
        return status;
    }
    // SAFETY: the caller's out pointer.
    unsafe { *out = connect };
    STATUS_SUCCESS
}

/// The decision, separate from the IRP plumbing: `format_room` is how many bytes follow the
/// `KSPIN_CONNECT` in the request.
fn check(
    request: &KSPIN_CONNECT,
    format: &KSDATAFORMAT,
    format_room: usize,
    descriptors: &[KSPIN_DESCRIPTOR],
) -> NTSTATUS {
    let format_size = format.FormatSize as usize;
    if format_size < FORMAT_SIZE || format_size > format_room {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    let Some(d) = descriptors.get(request.PinId as usize) else {
        return STATUS_INVALID_PARAMETER;
    };
    let standard_interface =
        KSPIN_INTERFACE { Set: KSINTERFACESETID_Standard, Id: KSINTERFACE_STANDARD_STREAMING, Flags: 0 };
    let standard_medium =
        KSPIN_INTERFACE { Set: KSMEDIUMSETID_Standard, Id: KSMEDIUM_TYPE_ANYINSTANCE, Flags: 0 };
    if !listed(d.Interfaces, d.InterfacesCount, &request.Interface, &standard_interface) {
        return STATUS_NO_MATCH;
    }
    if !listed(d.Mediums, d.MediumsCount, &request.Medium, &standard_medium) {
        return STATUS_NO_MATCH;
    }
    let sink_ok = matches!(
        d.Communication,
        KSPIN_COMMUNICATION_SINK | KSPIN_COMMUNICATION_BOTH | KSPIN_COMMUNICATION_BRIDGE
    );
    let source_ok = matches!(d.Communication, KSPIN_COMMUNICATION_SOURCE | KSPIN_COMMUNICATION_BOTH);
    if (request.PinToHandle.is_null() && !sink_ok) || (!request.PinToHandle.is_null() && !source_ok) {
        return STATUS_NO_MATCH;
    }
    let ranges: &[*const KSDATARANGE] = if d.DataRanges.is_null() || d.DataRangesCount == 0 {
        &[]
    } else {
        // SAFETY: the descriptor's range pointer array of `DataRangesCount` entries.
        unsafe { std::slice::from_raw_parts(d.DataRanges, d.DataRangesCount as usize) }
    };
    let matched = ranges.iter().filter(|r| !r.is_null()).any(|&r| {
        // SAFETY: a range of the driver's static table.
        let r = unsafe { &*r };
        range_accepts(r, format)
    });
    if matched { STATUS_SUCCESS } else { STATUS_NO_MATCH }
}

/// The documented wildcard rules (KS-REFERENCE §1.7): major wildcard; or major equal and sub
/// wildcard; or major, sub and specifier all equal.
fn range_accepts(r: &KSDATARANGE, format: &KSDATAFORMAT) -> bool {
    r.MajorFormat == GUID_NULL
        || (r.MajorFormat == format.MajorFormat
            && (r.SubFormat == GUID_NULL
                || (r.SubFormat == format.SubFormat && r.Specifier == format.Specifier)))
}

/// Whether `wanted` (set and id) is in the list, or equals `default` when the list is empty.
fn listed(
    list: *const KSPIN_INTERFACE,
    count: u32,
    wanted: &KSPIN_INTERFACE,
    default: &KSPIN_INTERFACE,
) -> bool {
    let entries: &[KSPIN_INTERFACE] = if list.is_null() || count == 0 {
        std::slice::from_ref(default)
    } else {
        // SAFETY: the descriptor's table of `count` entries.
        unsafe { std::slice::from_raw_parts(list, count as usize) }
    };
    entries.iter().any(|e| e.Set == wanted.Set && e.Id == wanted.Id)
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // test tables are tiny
mod tests {
    use ksabi::{
        GUID, KSDATAFORMAT_SPECIFIER_WAVEFORMATEX, KSDATAFORMAT_SUBTYPE_PCM, KSDATAFORMAT_TYPE_AUDIO,
        KSDATAFORMAT_TYPE_STREAM, KSPIN_COMMUNICATION, KSPIN_COMMUNICATION_NONE, KSPIN_DATAFLOW_IN,
        KSPRIORITY,
    };

    use super::*;

    const CUSTOM_SET: GUID = GUID::from_u128(0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF);
    const ROOM: usize = FORMAT_SIZE;

    fn range(major: GUID, sub: GUID, spec: GUID) -> KSDATARANGE {
        KSDATARANGE {
            FormatSize: FORMAT_SIZE as u32,
            MajorFormat: major,
            SubFormat: sub,
            Specifier: spec,
            ..KSDATARANGE::default()
        }
    }

    fn pcm() -> KSDATAFORMAT {
        range(KSDATAFORMAT_TYPE_AUDIO, KSDATAFORMAT_SUBTYPE_PCM, KSDATAFORMAT_SPECIFIER_WAVEFORMATEX)
    }

    fn descriptor(communication: KSPIN_COMMUNICATION, ranges: &[*const KSDATARANGE]) -> KSPIN_DESCRIPTOR {
        KSPIN_DESCRIPTOR {
            InterfacesCount: 0,
            Interfaces: std::ptr::null(),
            MediumsCount: 0,
            Mediums: std::ptr::null(),
            DataRangesCount: ranges.len() as u32,
            DataRanges: ranges.as_ptr(),
            DataFlow: KSPIN_DATAFLOW_IN,
            Communication: communication,
            Category: std::ptr::null(),
            Name: std::ptr::null(),
            ConstrainedDataRangesCount: 0,
            ConstrainedDataRanges: std::ptr::null(),
        }
    }

    fn connect(pin: u32, to_handle: usize) -> KSPIN_CONNECT {
        KSPIN_CONNECT {
            Interface: KSPIN_INTERFACE {
                Set: KSINTERFACESETID_Standard,
                Id: KSINTERFACE_STANDARD_STREAMING,
                Flags: 0,
            },
            Medium: KSPIN_INTERFACE { Set: KSMEDIUMSETID_Standard, Id: KSMEDIUM_TYPE_ANYINSTANCE, Flags: 0 },
            PinId: pin,
            PinToHandle: to_handle as ksabi::HANDLE,
            Priority: KSPRIORITY::default(),
        }
    }

    #[test]
    fn format_wildcard_rules() {
        let audio = KSDATAFORMAT_TYPE_AUDIO;
        let pcm_sub = KSDATAFORMAT_SUBTYPE_PCM;
        let wfx = KSDATAFORMAT_SPECIFIER_WAVEFORMATEX;
        let cases = [
            (range(GUID_NULL, GUID_NULL, GUID_NULL), true, "major wildcard accepts anything"),
            (range(GUID_NULL, CUSTOM_SET, CUSTOM_SET), true, "major wildcard ignores the rest"),
            (range(audio, GUID_NULL, CUSTOM_SET), true, "sub wildcard ignores the specifier"),
            (range(audio, pcm_sub, wfx), true, "all three equal"),
            (range(audio, pcm_sub, GUID_NULL), false, "a specifier wildcard alone is not a rule"),
            (range(audio, CUSTOM_SET, wfx), false, "sub differs"),
            (range(KSDATAFORMAT_TYPE_STREAM, GUID_NULL, GUID_NULL), false, "major differs"),
        ];
        for (r, expected, why) in cases {
            assert_eq!(range_accepts(&r, &pcm()), expected, "{why}");
        }
    }

    #[test]
    fn communication_against_pin_to_handle() {
        let r = range(GUID_NULL, GUID_NULL, GUID_NULL);
        let ranges = [&raw const r];
        let cases = [
            (KSPIN_COMMUNICATION_NONE, STATUS_NO_MATCH, STATUS_NO_MATCH),
            (KSPIN_COMMUNICATION_SINK, STATUS_SUCCESS, STATUS_NO_MATCH),
            (KSPIN_COMMUNICATION_SOURCE, STATUS_NO_MATCH, STATUS_SUCCESS),
            (KSPIN_COMMUNICATION_BOTH, STATUS_SUCCESS, STATUS_SUCCESS),
            (KSPIN_COMMUNICATION_BRIDGE, STATUS_SUCCESS, STATUS_NO_MATCH),
        ];
        for (communication, as_sink, as_source) in cases {
            let d = [descriptor(communication, &ranges)];
            assert_eq!(check(&connect(0, 0), &pcm(), ROOM, &d), as_sink, "{communication} as sink");
            assert_eq!(check(&connect(0, 0x40), &pcm(), ROOM, &d), as_source, "{communication} as source");
        }
    }

    #[test]
    fn sizes_pin_ids_interfaces_and_mediums() {
        let r = pcm();
        let ranges = [&raw const r];
        let d = [descriptor(KSPIN_COMMUNICATION_SINK, &ranges), descriptor(KSPIN_COMMUNICATION_SINK, &[])];
        assert_eq!(check(&connect(0, 0), &pcm(), ROOM, &d), STATUS_SUCCESS);
        assert_eq!(check(&connect(1, 0), &pcm(), ROOM, &d), STATUS_NO_MATCH, "no ranges: nothing matches");
        assert_eq!(check(&connect(2, 0), &pcm(), ROOM, &d), STATUS_INVALID_PARAMETER);
        assert_eq!(check(&connect(u32::MAX, 0), &pcm(), ROOM, &d), STATUS_INVALID_PARAMETER);
        assert_eq!(
            check(&connect(0, 0), &pcm(), ROOM - 1, &d),
            STATUS_INVALID_BUFFER_SIZE,
            "FormatSize lies"
        );
        let mut small = pcm();
        small.FormatSize = FORMAT_SIZE as u32 - 1;
        assert_eq!(check(&connect(0, 0), &small, ROOM, &d), STATUS_INVALID_BUFFER_SIZE);
        assert_eq!(
            check(&connect(2, 0), &small, ROOM, &d),
            STATUS_INVALID_BUFFER_SIZE,
            "size is checked first"
        );

        let mut other_interface = connect(0, 0);
        other_interface.Interface.Id = 1;
        assert_eq!(check(&other_interface, &pcm(), ROOM, &d), STATUS_NO_MATCH, "default interface only");
        let mut flags_ignored = connect(0, 0);
        flags_ignored.Interface.Flags = 7;
        flags_ignored.Medium.Flags = 7;
        assert_eq!(check(&flags_ignored, &pcm(), ROOM, &d), STATUS_SUCCESS, "flags are not compared");
        let mut other_medium = connect(0, 0);
        other_medium.Medium.Set = CUSTOM_SET;
        assert_eq!(check(&other_medium, &pcm(), ROOM, &d), STATUS_NO_MATCH, "default medium only");

        // Explicit lists replace the defaults.
        let listed_interfaces = [KSPIN_INTERFACE { Set: CUSTOM_SET, Id: 3, Flags: 0 }];
        let listed_mediums = [KSPIN_INTERFACE { Set: CUSTOM_SET, Id: 9, Flags: 0 }];
        let mut explicit = descriptor(KSPIN_COMMUNICATION_SINK, &ranges);
        explicit.InterfacesCount = 1;
        explicit.Interfaces = listed_interfaces.as_ptr();
        explicit.MediumsCount = 1;
        explicit.Mediums = listed_mediums.as_ptr();
        let d = [explicit];
        assert_eq!(check(&connect(0, 0), &pcm(), ROOM, &d), STATUS_NO_MATCH, "standard interface not listed");
        let mut custom = connect(0, 0);
        custom.Interface = listed_interfaces[0];
        assert_eq!(check(&custom, &pcm(), ROOM, &d), STATUS_NO_MATCH, "standard medium not listed");
        custom.Medium = listed_mediums[0];
        assert_eq!(check(&custom, &pcm(), ROOM, &d), STATUS_SUCCESS);
    }
}
