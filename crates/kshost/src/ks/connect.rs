//! `KsValidateConnectRequest` (KS-REFERENCE §1.6–1.7), as the Windows 10/11 ks.sys does it
//! (FIDELITY.md cites the sources): `KspValidateConnectRequest` (capture, connection) and then
//! `KspValidateDataFormat` (format).
//!
//! **Capture** (`KsiCopyCreateParameter`): the parameter is the create's file name after an
//! optional leading `\`, the create item's `ObjectClass` and one `\`; it must hold a
//! `KSPIN_CONNECT` and a `KSDATAFORMAT` (else `STATUS_INVALID_BUFFER_SIZE`). All of it, exactly
//! its length, is copied into non-paged pool (tag `KScp`) that becomes the IRP's `SystemBuffer`
//! with `IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER`, so the I/O manager frees it at completion; a
//! second call on the same IRP reuses it. (It is pool, so special pool sees a driver read past it.)
//!
//! **Connection**, in ks.sys' order: `PinId < DescriptorsCount` (else `STATUS_INVALID_PARAMETER_3`);
//! communication: `PinToHandle` set needs SOURCE in the factory's `Communication` bits, NULL needs
//! SINK or BRIDGE (else `STATUS_INVALID_PARAMETER_4`); `Interface.Flags == 0`
//! (`STATUS_INVALID_PARAMETER_1`); priority class and subclass non-zero (`STATUS_INVALID_PARAMETER_5`);
//! the interface (set, id) listed, or the standard streaming interface if the factory lists none
//! (`STATUS_NO_MATCH`); `Medium.Flags == 0` (`STATUS_INVALID_PARAMETER_2`); the medium likewise,
//! default the standard any-instance medium (`STATUS_NO_MATCH`).
//!
//! **Format** (`KspValidateDataFormat`, with the bytes after the `KSPIN_CONNECT` as the request):
//! `FormatSize >= sizeof(KSDATAFORMAT)` and `FormatSize <=` the request (`STATUS_INVALID_PARAMETER`;
//! with [`crate::Settings::ks_connect_format_size_unchecked`] the older rule: only the lower bound,
//! `STATUS_INVALID_BUFFER_SIZE`); `Reserved == 0`, no wildcard (`GUID_NULL`) major, sub or specifier,
//! and `SPECIFIER_NONE` only with a 64-byte format (`STATUS_INVALID_PARAMETER_6`); with
//! `KSDATAFORMAT_ATTRIBUTES`, a well-formed attribute list filling the rest of the request
//! (`STATUS_INVALID_PARAMETER`); then the ranges — `ConstrainedDataRanges` if the factory has any,
//! else `DataRanges` — each GUID equal or the range's a wildcard (`STATUS_NO_MATCH` if none).
//! Simplified: kshost emulates no range attribute lists (a driver range with
//! `KSDATARANGE_ATTRIBUTES` is recorded as `UNSUPPORTED` and matches nothing), so a format that
//! carries attributes matches no range, as on Windows for ranges without attributes.

use ksabi::{
    GUID, GUID_NULL, IRP, IrpFlags, KSATTRIBUTE, KSDATAFORMAT, KSDATAFORMAT_SPECIFIER_NONE, KSDATARANGE,
    KSINTERFACE_STANDARD_STREAMING, KSINTERFACESETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE,
    KSMEDIUMSETID_Standard, KSMULTIPLE_ITEM, KSPIN_COMMUNICATION_BRIDGE, KSPIN_COMMUNICATION_SINK,
    KSPIN_COMMUNICATION_SOURCE, KSPIN_CONNECT, KSPIN_DESCRIPTOR, KSPIN_INTERFACE, KsDataFormatFlags,
    NTSTATUS, POOL_FLAG_NON_PAGED, STATUS_EAS_NOT_SUPPORTED, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER,
    STATUS_INVALID_PARAMETER_1, STATUS_INVALID_PARAMETER_2, STATUS_INVALID_PARAMETER_3,
    STATUS_INVALID_PARAMETER_4, STATUS_INVALID_PARAMETER_5, STATUS_INVALID_PARAMETER_6, STATUS_NO_MATCH,
    STATUS_SUCCESS,
};

use crate::machine::{MachineInner, current, violation};
use crate::objects::{IrpBox, current_stack};
use crate::verifier::Rule;

const CONNECT_SIZE: usize = size_of::<KSPIN_CONNECT>();
const FORMAT_SIZE: usize = size_of::<KSDATAFORMAT>();
/// The pool tag ks.sys' `KsiCopyCreateParameter` allocates with (`'KScp'`).
pub(crate) const TAG_CREATE_PARAMETER: u32 = u32::from_le_bytes(*b"KScp");

/// `KsValidateConnectRequest`.
///
/// # Safety
/// As the routine's contract: `irp` is the pin-create IRP the caller is dispatching through KS
/// (its create item in `DriverContext[0]`), which it owns (as for [`IrpBox::of`]); `descriptors`
/// is null or a table of `count` pin descriptors whose interface, medium and range tables stay
/// valid; `out` is null or valid for writing a pointer.
pub(crate) unsafe fn validate(
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
    let m = current();
    // SAFETY: the routine's contract: the create IRP the caller owns, dispatched through KS.
    let (captured, size) = match unsafe { copy_create_parameter(&m, irp, CONNECT_SIZE + FORMAT_SIZE) } {
        Ok(c) => c,
        Err(status) => return status,
    };
    #[allow(clippy::cast_ptr_alignment)] // pool: 16-aligned
    let connect = captured.cast::<KSPIN_CONNECT>();
    // SAFETY: the caller's out pointer (ks.sys sets it as soon as the parameter is captured).
    unsafe { *out = connect };
    // SAFETY: pool (16-aligned) holding `size >= CONNECT_SIZE + FORMAT_SIZE` bytes.
    let request = unsafe { *connect };
    // SAFETY: the captured parameter holds `size` bytes.
    let tail =
        unsafe { std::slice::from_raw_parts(captured.wrapping_add(CONNECT_SIZE), size - CONNECT_SIZE) };
    let descriptors: &[KSPIN_DESCRIPTOR] = if descriptors.is_null() || count == 0 {
        &[]
    } else {
        // SAFETY: the driver's descriptor table of `count` entries.
        unsafe { std::slice::from_raw_parts(descriptors, count as usize) }
    };
    // SAFETY: the driver's descriptors, their tables valid (the routine's contract).
    let d = match unsafe { check_connection(&request, descriptors) } {
        Ok(d) => d,
        Err(status) => return status,
    };
    // SAFETY: as above.
    unsafe { check_format(d, tail, m.settings.ks_connect_format_size_unchecked) }
}

/// `KsiCopyCreateParameter`: the whole parameter, at least `min` bytes, captured once per IRP.
///
/// # Safety
/// `irp` is a live kshost create IRP the caller owns (as for [`IrpBox::of`]), dispatched through
/// KS' create (`DriverContext[0]` null or its create item), its file object alive.
unsafe fn copy_create_parameter(
    m: &MachineInner,
    irp: *mut IRP,
    min: usize,
) -> Result<(*mut u8, usize), NTSTATUS> {
    // SAFETY: the driver passes the create IRP it is dispatching, which it owns (the export's
    // contract).
    let stack = unsafe { current_stack(irp) };
    // SAFETY: the create IRP's current location.
    let file = unsafe { (*stack).FileObject };
    // SAFETY: the create's file object, allocated by kshost and referenced by the create IRP; only kshost's
    // create path and this dispatch use it until the create returns, and only to read. Only the
    // `FILE_OBJECT` is referenced, not kshost's record beside it.
    let fo = unsafe { &*file };
    let name: &[u8] = if fo.FileName.Buffer.is_null() {
        &[]
    } else {
        // SAFETY: FileName holds `Length` bytes owned by the file object.
        unsafe { std::slice::from_raw_parts(fo.FileName.Buffer.cast::<u8>(), fo.FileName.Length as usize) }
    };
    let name = name.strip_prefix(&[b'\\', 0][..]).unwrap_or(name);
    // SAFETY: the driver passes the create IRP it is dispatching, which it owns (the export's
    // contract); no other reference to it is live.
    let mut b = unsafe { IrpBox::of(irp) };
    let item = b.overlay().DriverContext[0].cast::<ksabi::KSOBJECT_CREATE_ITEM>();
    if item.is_null() {
        violation(Rule::Unsupported, "KsValidateConnectRequest outside a KS create dispatch".into());
        return Err(STATUS_INVALID_DEVICE_REQUEST);
    }
    // SAFETY: KSCREATE_ITEM_IRP_STORAGE: the driver's create item the name matched.
    let class = usize::from(unsafe { (*item).ObjectClass.Length });
    if name.len() < class + 2 + min {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    let size = name.len() - class - 2;
    if IrpFlags::from_bits_retain(b.irp.Flags).contains(IrpFlags::BUFFERED_IO) {
        return Ok((b.system_buffer().cast(), size));
    }
    // SAFETY: the create IRP's current location.
    let stack = unsafe { &*stack };
    // SAFETY: a create IRP: `Create` is the live member of the parameter union.
    if unsafe { stack.Parameters.Create }.EaLength != 0 {
        return Err(STATUS_EAS_NOT_SUPPORTED);
    }
    let captured = m.pool.allocate(POOL_FLAG_NON_PAGED, size, TAG_CREATE_PARAMETER);
    if captured.is_null() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    // SAFETY: `size` bytes of the name after the class and separator; the block holds `size`.
    unsafe { std::ptr::copy_nonoverlapping(name[class + 2..].as_ptr(), captured, size) };
    // SAFETY: the driver passes the create IRP it is dispatching, which it owns (the export's
    // contract); no other reference to it is live.
    let b = unsafe { IrpBox::of(irp) };
    b.irp.Flags |= (IrpFlags::BUFFERED_IO | IrpFlags::DEALLOCATE_BUFFER).bits();
    b.irp.AssociatedIrp.SystemBuffer = captured.cast();
    Ok((captured, size))
}

/// `KspValidateConnectRequest` after the capture: the factory the request may instantiate.
///
/// # Safety
/// Each descriptor's `Interfaces` and `Mediums` are null or tables of their counts of entries.
unsafe fn check_connection<'d>(
    request: &KSPIN_CONNECT,
    descriptors: &'d [KSPIN_DESCRIPTOR],
) -> Result<&'d KSPIN_DESCRIPTOR, NTSTATUS> {
    let d = descriptors.get(request.PinId as usize).ok_or(STATUS_INVALID_PARAMETER_3)?;
    let wanted = if request.PinToHandle.is_null() {
        KSPIN_COMMUNICATION_SINK | KSPIN_COMMUNICATION_BRIDGE
    } else {
        KSPIN_COMMUNICATION_SOURCE
    };
    if wanted & d.Communication == 0 {
        return Err(STATUS_INVALID_PARAMETER_4);
    }
    if request.Interface.Flags != 0 {
        return Err(STATUS_INVALID_PARAMETER_1);
    }
    if request.Priority.PriorityClass == 0 || request.Priority.PrioritySubClass == 0 {
        return Err(STATUS_INVALID_PARAMETER_5);
    }
    let standard_interface =
        KSPIN_INTERFACE { Set: KSINTERFACESETID_Standard, Id: KSINTERFACE_STANDARD_STREAMING, Flags: 0 };
    // SAFETY: the descriptor's interface table (the caller's contract).
    if !unsafe { listed(d.Interfaces, d.InterfacesCount, &request.Interface, &standard_interface) } {
        return Err(STATUS_NO_MATCH);
    }
    if request.Medium.Flags != 0 {
        return Err(STATUS_INVALID_PARAMETER_2);
    }
    let standard_medium =
        KSPIN_INTERFACE { Set: KSMEDIUMSETID_Standard, Id: KSMEDIUM_TYPE_ANYINSTANCE, Flags: 0 };
    // SAFETY: the descriptor's medium table (the caller's contract).
    if !unsafe { listed(d.Mediums, d.MediumsCount, &request.Medium, &standard_medium) } {
        return Err(STATUS_NO_MATCH);
    }
    Ok(d)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `KspValidateDataFormat`: `request` is everything after the `KSPIN_CONNECT` (at least a
/// `KSDATAFORMAT`, as the capture guaranteed).
///
/// # Safety
/// `d`'s `DataRanges` and `ConstrainedDataRanges` are null or arrays of their counts of pointers,
/// each null or a data range.
unsafe fn check_format(d: &KSPIN_DESCRIPTOR, request: &[u8], size_unchecked: bool) -> NTSTATUS {
    if request.len() < FORMAT_SIZE {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: at least FORMAT_SIZE bytes; read unaligned.
    let format = unsafe { request.as_ptr().cast::<KSDATAFORMAT>().read_unaligned() };
    let format_size = format.FormatSize as usize;
    if size_unchecked {
        if format_size < FORMAT_SIZE {
            return STATUS_INVALID_BUFFER_SIZE;
        }
    } else if format_size < FORMAT_SIZE || format_size > request.len() {
        return STATUS_INVALID_PARAMETER;
    }
    if format.Reserved != 0
        || format.MajorFormat == GUID_NULL
        || format.SubFormat == GUID_NULL
        || format.Specifier == GUID_NULL
        || (format_size != FORMAT_SIZE && format.Specifier == KSDATAFORMAT_SPECIFIER_NONE)
    {
        return STATUS_INVALID_PARAMETER_6;
    }
    let mut attributes = 0;
    if KsDataFormatFlags::from_bits_retain(format.Flags).contains(KsDataFormatFlags::ATTRIBUTES) {
        match attribute_count(request, format_size) {
            Ok(n) => attributes = n,
            Err(status) => return status,
        }
    }
    let (list, n) = if d.ConstrainedDataRangesCount == 0 {
        (d.DataRanges, d.DataRangesCount)
    } else {
        (d.ConstrainedDataRanges, d.ConstrainedDataRangesCount)
    };
    let ranges: &[*const KSDATARANGE] = if list.is_null() || n == 0 {
        &[]
    } else {
        // SAFETY: the descriptor's range pointer array of `n` entries.
        unsafe { std::slice::from_raw_parts(list, n as usize) }
    };
    let mut i = 0;
    while i < ranges.len() {
        let r = ranges[i];
        i += 1;
        if r.is_null() {
            continue;
        }
        // SAFETY: a range of the driver's static table.
        let r = unsafe { &*r };
        if KsDataFormatFlags::from_bits_retain(r.Flags).contains(KsDataFormatFlags::ATTRIBUTES) {
            violation(Rule::Unsupported, "a data range with KSDATARANGE_ATTRIBUTES (not emulated)".into());
            i += 1; // its attribute list
            continue;
        }
        if range_accepts(r, &format) && attributes == 0 {
            return STATUS_SUCCESS;
        }
    }
    STATUS_NO_MATCH
}

/// A format's attribute list after its `FormatSize` (aligned to 8), filling the rest of the
/// request: the number of attributes, or the status ks.sys returns for a malformed list.
fn attribute_count(request: &[u8], format_size: usize) -> Result<u32, NTSTATUS> {
    let aligned = format_size.next_multiple_of(8);
    if u32::try_from(aligned).is_err() {
        return Err(STATUS_INVALID_BUFFER_SIZE);
    }
    if request.len() < aligned + size_of::<KSMULTIPLE_ITEM>() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let (size, count) = (u32_at(request, aligned) as usize, u32_at(request, aligned + 4));
    if size != request.len() - aligned {
        return Err(STATUS_INVALID_PARAMETER);
    }
    let mut left = size - size_of::<KSMULTIPLE_ITEM>();
    let mut at = aligned + size_of::<KSMULTIPLE_ITEM>();
    for n in (1..=count).rev() {
        let minimum = size_of::<KSATTRIBUTE>();
        if left < minimum {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let (a_size, a_flags) = (u32_at(request, at) as usize, u32_at(request, at + 4));
        if a_size < minimum || a_size > left || a_flags != 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let step = if n > 1 { a_size.next_multiple_of(8) } else { a_size };
        if step > left {
            return Err(STATUS_INVALID_PARAMETER);
        }
        left -= step;
        at += step;
    }
    if left != 0 {
        return Err(STATUS_INVALID_PARAMETER);
    }
    Ok(count)
}

/// ks.sys' rule: each of major, sub and specifier is equal, or the range's is the wildcard.
fn range_accepts(r: &KSDATARANGE, format: &KSDATAFORMAT) -> bool {
    let fits = |range: GUID, ours: GUID| range == GUID_NULL || range == ours;
    fits(r.MajorFormat, format.MajorFormat)
        && fits(r.SubFormat, format.SubFormat)
        && fits(r.Specifier, format.Specifier)
}

/// Whether `wanted` (set and id) is in the list, or equals `default` when the list is empty.
///
/// # Safety
/// `list` is null or an array of `count` entries.
unsafe fn listed(
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
        KSDATAFORMAT_SPECIFIER_WAVEFORMATEX, KSDATAFORMAT_SUBTYPE_PCM, KSDATAFORMAT_TYPE_AUDIO,
        KSDATAFORMAT_TYPE_STREAM, KSPIN_COMMUNICATION, KSPIN_COMMUNICATION_BOTH, KSPIN_COMMUNICATION_NONE,
        KSPIN_DATAFLOW_IN, KSPRIORITY,
    };

    use super::*;

    const CUSTOM_SET: GUID = GUID::from_u128(0x0123_4567_89AB_CDEF_0123_4567_89AB_CDEF);

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

    /// A request of `len` bytes starting with `format`.
    fn bytes(format: &KSDATAFORMAT, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len.max(FORMAT_SIZE)];
        // SAFETY: KSDATAFORMAT is plain data of FORMAT_SIZE bytes.
        let raw = unsafe { std::slice::from_raw_parts(std::ptr::from_ref(format).cast::<u8>(), FORMAT_SIZE) };
        v[..FORMAT_SIZE].copy_from_slice(raw);
        v.truncate(len);
        v
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
            Priority: KSPRIORITY { PriorityClass: 1, PrioritySubClass: 1 },
        }
    }

    /// [`check_connection`] for these tests, whose descriptors point only at tables (or nothing)
    /// that the calling test keeps alive across the call.
    fn connection<'d>(
        request: &KSPIN_CONNECT,
        descriptors: &'d [KSPIN_DESCRIPTOR],
    ) -> Result<&'d KSPIN_DESCRIPTOR, NTSTATUS> {
        // SAFETY: the tests' descriptors name live local tables or none (see above).
        unsafe { check_connection(request, descriptors) }
    }

    /// [`check_format`] for these tests (as [`connection`]).
    fn format(d: &KSPIN_DESCRIPTOR, request: &[u8], size_unchecked: bool) -> NTSTATUS {
        // SAFETY: the tests' descriptors name live local range tables or none (see above).
        unsafe { check_format(d, request, size_unchecked) }
    }

    fn status(r: Result<&KSPIN_DESCRIPTOR, NTSTATUS>) -> NTSTATUS {
        r.map_or_else(|s| s, |_| STATUS_SUCCESS)
    }

    #[test]
    fn format_wildcard_rules() {
        let audio = KSDATAFORMAT_TYPE_AUDIO;
        let pcm_sub = KSDATAFORMAT_SUBTYPE_PCM;
        let wfx = KSDATAFORMAT_SPECIFIER_WAVEFORMATEX;
        let cases = [
            (range(GUID_NULL, GUID_NULL, GUID_NULL), true, "all wildcards"),
            (range(GUID_NULL, CUSTOM_SET, CUSTOM_SET), false, "a major wildcard does not cover the rest"),
            (range(audio, GUID_NULL, CUSTOM_SET), false, "sub wildcard, specifier differs"),
            (range(audio, GUID_NULL, wfx), true, "sub wildcard"),
            (range(audio, pcm_sub, wfx), true, "all three equal"),
            (range(audio, pcm_sub, GUID_NULL), true, "specifier wildcard"),
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
            (KSPIN_COMMUNICATION_NONE, STATUS_INVALID_PARAMETER_4, STATUS_INVALID_PARAMETER_4),
            (KSPIN_COMMUNICATION_SINK, STATUS_SUCCESS, STATUS_INVALID_PARAMETER_4),
            (KSPIN_COMMUNICATION_SOURCE, STATUS_INVALID_PARAMETER_4, STATUS_SUCCESS),
            (KSPIN_COMMUNICATION_BOTH, STATUS_SUCCESS, STATUS_SUCCESS),
            (KSPIN_COMMUNICATION_BRIDGE, STATUS_SUCCESS, STATUS_INVALID_PARAMETER_4),
        ];
        for (communication, as_sink, as_source) in cases {
            let d = [descriptor(communication, &ranges)];
            assert_eq!(status(connection(&connect(0, 0), &d)), as_sink, "{communication} as sink");
            assert_eq!(status(connection(&connect(0, 0x40), &d)), as_source, "{communication} as source");
        }
    }

    #[test]
    fn connection_fields_in_ks_order() {
        let d = [descriptor(KSPIN_COMMUNICATION_SINK, &[])];
        assert_eq!(status(connection(&connect(0, 0), &d)), STATUS_SUCCESS);
        assert_eq!(status(connection(&connect(1, 0), &d)), STATUS_INVALID_PARAMETER_3);
        assert_eq!(status(connection(&connect(u32::MAX, 0), &d)), STATUS_INVALID_PARAMETER_3);
        let mut c = connect(0, 0);
        c.Interface.Flags = 7;
        c.Medium.Flags = 7;
        c.Priority.PrioritySubClass = 0;
        assert_eq!(status(connection(&c, &d)), STATUS_INVALID_PARAMETER_1, "interface flags first");
        c.Interface.Flags = 0;
        assert_eq!(status(connection(&c, &d)), STATUS_INVALID_PARAMETER_5, "then priority");
        c.Priority.PrioritySubClass = 1;
        c.Interface.Id = 1;
        assert_eq!(status(connection(&c, &d)), STATUS_NO_MATCH, "then the interface");
        c.Interface.Id = 0;
        assert_eq!(status(connection(&c, &d)), STATUS_INVALID_PARAMETER_2, "then medium flags");
        c.Medium.Flags = 0;
        c.Medium.Set = CUSTOM_SET;
        assert_eq!(status(connection(&c, &d)), STATUS_NO_MATCH, "default medium only");
        let mut c = connect(0, 0);
        c.Priority.PriorityClass = 0;
        assert_eq!(status(connection(&c, &d)), STATUS_INVALID_PARAMETER_5);

        // Explicit lists replace the defaults.
        let listed_interfaces = [KSPIN_INTERFACE { Set: CUSTOM_SET, Id: 3, Flags: 0 }];
        let listed_mediums = [KSPIN_INTERFACE { Set: CUSTOM_SET, Id: 9, Flags: 0 }];
        let mut explicit = descriptor(KSPIN_COMMUNICATION_SINK, &[]);
        explicit.InterfacesCount = 1;
        explicit.Interfaces = listed_interfaces.as_ptr();
        explicit.MediumsCount = 1;
        explicit.Mediums = listed_mediums.as_ptr();
        let d = [explicit];
        assert_eq!(status(connection(&connect(0, 0), &d)), STATUS_NO_MATCH, "standard interface");
        let mut custom = connect(0, 0);
        custom.Interface = listed_interfaces[0];
        assert_eq!(status(connection(&custom, &d)), STATUS_NO_MATCH, "standard medium not listed");
        custom.Medium = listed_mediums[0];
        assert_eq!(status(connection(&custom, &d)), STATUS_SUCCESS);
    }

    #[test]
    fn format_sizes_reserved_and_wildcards() {
        let r = pcm();
        let ranges = [&raw const r];
        let d = descriptor(KSPIN_COMMUNICATION_SINK, &ranges);
        let mut f = pcm();
        f.FormatSize = 82;
        assert_eq!(format(&d, &bytes(&f, 82), false), STATUS_SUCCESS);
        assert_eq!(format(&d, &bytes(&f, 81), false), STATUS_INVALID_PARAMETER, "FormatSize lies");
        assert_eq!(format(&d, &bytes(&f, 81), true), STATUS_SUCCESS, "the older ks.sys rule");
        f.FormatSize = 63;
        assert_eq!(format(&d, &bytes(&f, 82), false), STATUS_INVALID_PARAMETER);
        assert_eq!(format(&d, &bytes(&f, 82), true), STATUS_INVALID_BUFFER_SIZE);
        let mut f = pcm();
        f.Reserved = 1;
        assert_eq!(format(&d, &bytes(&f, 64), false), STATUS_INVALID_PARAMETER_6);
        for wildcard in 0..3 {
            let mut f = pcm();
            *[&mut f.MajorFormat, &mut f.SubFormat, &mut f.Specifier][wildcard] = GUID_NULL;
            assert_eq!(format(&d, &bytes(&f, 64), false), STATUS_INVALID_PARAMETER_6, "{wildcard}");
        }
        let stream =
            range(KSDATAFORMAT_TYPE_STREAM, ksabi::KSDATAFORMAT_SUBTYPE_NONE, KSDATAFORMAT_SPECIFIER_NONE);
        let mut long_stream = stream;
        long_stream.FormatSize = 72;
        let any = range(GUID_NULL, GUID_NULL, GUID_NULL);
        let ranges = [&raw const any];
        let d = descriptor(KSPIN_COMMUNICATION_SINK, &ranges);
        assert_eq!(format(&d, &bytes(&stream, 64), false), STATUS_SUCCESS);
        assert_eq!(format(&d, &bytes(&long_stream, 72), false), STATUS_INVALID_PARAMETER_6);
        let none = descriptor(KSPIN_COMMUNICATION_SINK, &[]);
        assert_eq!(format(&none, &bytes(&stream, 64), false), STATUS_NO_MATCH, "no ranges");
    }

    #[test]
    fn constrained_ranges_replace_the_ranges() {
        let r = pcm();
        let stream =
            range(KSDATAFORMAT_TYPE_STREAM, ksabi::KSDATAFORMAT_SUBTYPE_NONE, KSDATAFORMAT_SPECIFIER_NONE);
        let ranges = [&raw const r];
        let constrained = [&raw const stream];
        let mut d = descriptor(KSPIN_COMMUNICATION_SINK, &ranges);
        d.ConstrainedDataRangesCount = 1;
        d.ConstrainedDataRanges = constrained.as_ptr();
        assert_eq!(format(&d, &bytes(&stream, 64), false), STATUS_SUCCESS);
        assert_eq!(format(&d, &bytes(&pcm(), 64), false), STATUS_NO_MATCH);
    }

    #[test]
    fn attribute_lists() {
        let any = range(GUID_NULL, GUID_NULL, GUID_NULL);
        let ranges = [&raw const any];
        let d = descriptor(KSPIN_COMMUNICATION_SINK, &ranges);
        let mut f = pcm();
        f.Flags = KsDataFormatFlags::ATTRIBUTES.bits();
        assert_eq!(format(&d, &bytes(&f, 64), false), STATUS_INVALID_PARAMETER, "no list");
        let mut v = bytes(&f, 64);
        v.extend_from_slice(&8u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(format(&d, &v, false), STATUS_SUCCESS, "an empty list");
        let mut one = bytes(&f, 64);
        one.extend_from_slice(&32u32.to_le_bytes());
        one.extend_from_slice(&1u32.to_le_bytes());
        one.extend_from_slice(&24u32.to_le_bytes());
        one.extend_from_slice(&[0; 20]);
        assert_eq!(format(&d, &one, false), STATUS_NO_MATCH, "attributes match no plain range");
        one[76..80].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(format(&d, &one, false), STATUS_INVALID_PARAMETER, "attribute flags");
        let mut wrong = v.clone();
        wrong[64..68].copy_from_slice(&16u32.to_le_bytes());
        assert_eq!(format(&d, &wrong, false), STATUS_INVALID_PARAMETER, "list size");
    }
}
