//! Properties: `KsPropertyHandler`, `KsHandleSizedListQuery`, `KsPinPropertyHandler`,
//! `KsPinDataIntersection`, `KsTopologyPropertyHandler` (KS-REFERENCE §1.8–1.9, §5.2–5.4).
//!
//! Capture (as Windows' `KspPropertyHandler` does, per a public analysis of the decompiled
//! ks.sys, and as ReactOS does): one system buffer `[value area, OutputBufferLength rounded up to
//! 8, zeroed][copy of the request]`; for a SET the caller's value is copied into the value area;
//! `IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER` (+ `IRP_INPUT_OPERATION` when there is an output
//! buffer) so that the I/O manager copies `Information` bytes back at completion. User addresses
//! are probed; an unmapped one fails with `STATUS_ACCESS_VIOLATION` (what the probe raises).
//!
//! Statuses where Windows is UNVERIFIED (chosen and stated here):
//! - request shorter than a `KSPROPERTY`: `STATUS_INVALID_PARAMETER` (the decompiled Windows code);
//! - no or several verbs among the flags: `STATUS_INVALID_PARAMETER`;
//! - unknown set: `STATUS_PROPSET_NOT_FOUND` (the KS convention of `KsDefaultDeviceIoCompletion`);
//!   unknown id, or a verb the item has no handler for: `STATUS_NOT_FOUND`;
//!
//! As ks.sys' `KspPropertyHandler` does (Windows Server 2003 `property.c`; audit F8): a request
//! shorter than `MinProperty` or a value shorter than `MinData` → `STATUS_BUFFER_TOO_SMALL` with
//! `Information` untouched (checked once the item is found, before its handlers are looked at;
//! ReactOS: `STATUS_INVALID_PARAMETER` / `STATUS_MORE_ENTRIES` with `Information` set); a GET
//! handler is called with `Information = MinData` already set. `KsPinPropertyHandler` and
//! `KsPinDataIntersection` refuse a `KSP_PIN` whose `Reserved` is not 0 (`STATUS_INVALID_PARAMETER`).
//! - Sized answers that do not fit a non-empty buffer give `STATUS_BUFFER_TOO_SMALL` (an error:
//!   nothing is copied back), never `STATUS_BUFFER_OVERFLOW` with more `Information` than the
//!   buffer holds — that would make the I/O manager write past the caller's buffer, which
//!   kshost's verifier flags as `INFORMATION_EXCEEDS_BUFFER`. (ReactOS answers NAME that way;
//!   kshost does not copy it.)

// Capture buffers are allocated 16-aligned and every offset into them is a multiple of 8 (the
// value area is rounded up to 8); data a client laid out is read with `read_unaligned`.
#![allow(clippy::cast_ptr_alignment)]
use std::ffi::c_void;

use ksabi::{
    GUID, IRP, IrpFlags, KSDATAFORMAT, KSDATARANGE, KSIDENTIFIER, KSMULTIPLE_ITEM, KSP_NODE, KSP_PIN,
    KSPIN_DESCRIPTOR, KSPIN_INTERFACE, KSPROPERTY_DESCRIPTION, KSPROPERTY_ITEM, KSPROPERTY_MEMBERSHEADER,
    KSPROPERTY_SET, KSPROPTYPESETID_General, KSTOPOLOGY, KsDataFormatFlags, KsPropertyType, NTSTATUS,
    PFNKSINTERSECTHANDLER, STATUS_ACCESS_VIOLATION, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, STATUS_NOT_FOUND, STATUS_PROPSET_NOT_FOUND, STATUS_SUCCESS,
    UserMode, nt_success, pin_property, topology_property,
};

use crate::machine::{MachineInner, current};
use crate::objects::IrpBox;
use crate::sync::Locked;

/// `(InputBufferLength, OutputBufferLength)` of a device-control IRP.
///
/// # Safety
/// As for [`IrpBox::of`], for the call: a live kshost IRP that the caller owns (the driver's
/// dispatch of a property request, through the KS routine it called).
unsafe fn lengths(irp: *mut IRP) -> (usize, usize) {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract);
    // no other reference to it is live.
    let p = unsafe { IrpBox::of(irp) }.ioctl();
    (p.InputBufferLength as usize, p.OutputBufferLength as usize)
}

/// Sets `IoStatus.Information`.
///
/// # Safety
/// As for [`IrpBox::of`], for the call: a live kshost IRP that the caller owns (the driver's
/// dispatch of a property request, through the KS routine it called).
unsafe fn set_information(irp: *mut IRP, n: usize) {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract);
    // no other reference to it is live.
    unsafe { IrpBox::of(irp) }.irp.IoStatus.Information = n;
}

/// The real address behind a request's user or kernel address (`None`: not mapped).
///
/// # Safety
/// As for [`IrpBox::of`], for the call: a live kshost IRP that the caller owns (the driver's
/// dispatch of a property request, through the KS routine it called).
unsafe fn resolve(m: &MachineInner, irp: *mut IRP, addr: usize, len: usize) -> Option<*mut u8> {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract);
    // no other reference to it is live.
    if unsafe { IrpBox::of(irp) }.irp.RequestorMode == UserMode {
        m.user.probe(addr, len)
    } else {
        Some(std::ptr::with_exposed_provenance_mut(addr))
    }
}

/// The captured request and value area of a property IRP: `(request, value)`.
///
/// Captures once per IRP; later calls (a driver trying several handler tables) reuse it.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); for a kernel-mode IRP, `Type3InputBuffer` and `UserBuffer` are readable for the input
/// and output lengths.
unsafe fn capture(
    m: &MachineInner,
    irp: *mut IRP,
    for_set: bool,
) -> Result<(*mut KSIDENTIFIER, *mut u8), NTSTATUS> {
    // SAFETY: the property IRP being captured, owned by the driver's dispatch that called the KS
    // routine.
    let (in_len, out_len) = unsafe { lengths(irp) };
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract); no other reference to it is live.
    let mut b = unsafe { IrpBox::of(irp) };
    let flags = IrpFlags::from_bits_retain(b.irp.Flags);
    let value_area = out_len.checked_next_multiple_of(8).ok_or(STATUS_INVALID_PARAMETER)?;
    if flags.contains(IrpFlags::BUFFERED_IO) {
        let sb = b.system_buffer().cast::<u8>();
        return Ok((sb.wrapping_add(value_area).cast(), sb));
    }
    let total = value_area.checked_add(in_len).ok_or(STATUS_INVALID_PARAMETER)?;
    let type3 = b.ioctl().Type3InputBuffer as usize;
    let user_buffer = b.irp.UserBuffer as usize;
    // SAFETY: the property IRP being captured, owned by the driver's dispatch that called the KS
    // routine.
    let input = unsafe { resolve(m, irp, type3, in_len) }.ok_or(STATUS_ACCESS_VIOLATION)?;
    // SAFETY: the property IRP being captured, owned by the driver's dispatch that called the KS
    // routine.
    let output = unsafe { resolve(m, irp, user_buffer, out_len) }.ok_or(STATUS_ACCESS_VIOLATION)?;
    let sb = crate::iomgr::alloc_system_buffer(m, total);
    if sb.is_null() {
        return Err(STATUS_INSUFFICIENT_RESOURCES);
    }
    let request_copy = sb.wrapping_add(value_area);
    // SAFETY: `input` holds `in_len` readable bytes (probed or kernel); the buffer has room.
    unsafe { std::ptr::copy_nonoverlapping(input, request_copy, in_len) };
    if for_set && out_len > 0 {
        // SAFETY: `output` holds `out_len` readable bytes; the value area has room.
        unsafe { std::ptr::copy_nonoverlapping(output, sb, out_len) };
    }
    let mut new_flags = flags | IrpFlags::BUFFERED_IO | IrpFlags::DEALLOCATE_BUFFER;
    if out_len > 0 {
        new_flags |= IrpFlags::INPUT_OPERATION;
    }
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract); no other reference to it is live.
    let b = unsafe { IrpBox::of(irp) };
    b.irp.Flags = new_flags.bits();
    b.irp.AssociatedIrp.SystemBuffer = sb.cast();
    Ok((request_copy.cast(), sb))
}

/// Whether the (uncaptured) request asks for a SET: the value must then be captured too.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]), `in_len` its input length; for a kernel-mode IRP, `Type3InputBuffer` is readable for
/// `in_len` bytes.
unsafe fn asks_for_set(m: &MachineInner, irp: *mut IRP, in_len: usize) -> bool {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract);
    // no other reference to it is live.
    let type3 = unsafe { IrpBox::of(irp) }.ioctl().Type3InputBuffer as usize;
    // SAFETY: the property IRP being captured, owned by the driver's dispatch that called the KS
    // routine.
    unsafe { resolve(m, irp, type3, in_len) }.is_some_and(|p| {
        let flags_at = p.wrapping_add(std::mem::offset_of!(KSIDENTIFIER, Flags));
        // SAFETY: at least a KSIDENTIFIER's bytes are readable at `p` (resolved with `in_len`).
        let flags = unsafe { flags_at.cast::<u32>().read_unaligned() };
        KsPropertyType::from_bits_retain(flags).contains(KsPropertyType::SET)
    })
}

/// `KsPropertyHandler`.
///
/// # Safety
/// As the routine's contract: `irp` is a property IRP the caller is dispatching and owns (as for
/// [`IrpBox::of`]), its buffers valid for a kernel-mode requestor; `sets` is null or a table of
/// `count` property sets whose items and GUIDs stay valid.
pub(crate) unsafe fn property_handler(irp: *mut IRP, count: u32, sets: *const KSPROPERTY_SET) -> NTSTATUS {
    if !crate::irql::require_at_most(ksabi::PASSIVE_LEVEL, "KsPropertyHandler") {
        return STATUS_INVALID_DEVICE_REQUEST;
    }
    let m = current();
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS routine's
    // contract).
    let (in_len, out_len) = unsafe { lengths(irp) };
    if in_len < size_of::<KSIDENTIFIER>() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the routine's contract: the property IRP the caller owns, `in_len` its input length.
    let for_set = unsafe { asks_for_set(&m, irp, in_len) };
    // SAFETY: as above.
    let (request, value) = match unsafe { capture(&m, irp, for_set) } {
        Ok(c) => c,
        Err(s) => return s,
    };
    // SAFETY: the captured copy is 8-aligned and holds at least a KSIDENTIFIER.
    let req = unsafe { *request };
    let flags = KsPropertyType::from_bits_retain(req.Flags);
    let verbs = flags.intersection(KsPropertyType::VERBS);
    if verbs.bits().count_ones() != 1 {
        return STATUS_INVALID_PARAMETER;
    }
    let sets: &[KSPROPERTY_SET] = if sets.is_null() || count == 0 {
        &[]
    } else {
        // SAFETY: the driver's table of `count` sets.
        unsafe { std::slice::from_raw_parts(sets, count as usize) }
    };
    let Some(set) = sets.iter().find(|s| {
        // SAFETY: each set names a static GUID.
        !s.Set.is_null() && unsafe { *s.Set } == req.Set
    }) else {
        return STATUS_PROPSET_NOT_FOUND;
    };
    // KSPROPERTY_SET_IRP_STORAGE.
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract);
    // no other reference to it is live. (KSPROPERTY_SET_IRP_STORAGE is written before the handler runs)
    unsafe { IrpBox::of(irp) }.overlay().DriverContext[0] = std::ptr::from_ref(set).cast_mut().cast();
    if verbs == KsPropertyType::SETSUPPORT {
        // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS
        // routine's contract).
        unsafe { set_information(irp, 0) };
        return STATUS_SUCCESS;
    }
    let items: &[KSPROPERTY_ITEM] = if set.PropertyItem.is_null() {
        &[]
    } else {
        // SAFETY: the set's item table.
        unsafe { std::slice::from_raw_parts(set.PropertyItem, set.PropertiesCount as usize) }
    };
    let Some(item) = items.iter().find(|i| i.PropertyId == req.Id) else {
        return STATUS_NOT_FOUND;
    };
    // KSPROPERTY_ITEM_IRP_STORAGE.
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the export's
    // contract);
    // no other reference to it is live. (KSPROPERTY_ITEM_IRP_STORAGE is written before the handler runs)
    unsafe { IrpBox::of(irp) }.overlay().DriverContext[3] = std::ptr::from_ref(item).cast_mut().cast();
    if verbs == KsPropertyType::BASICSUPPORT {
        if let Some(support) = item.SupportHandler {
            // SAFETY: the driver's handler with the captured request and value area.
            return unsafe { support(irp, request, value.cast()) };
        }
        // SAFETY: the IRP the caller owns; `value` is its captured value area of `out_len`; `item`
        // is the driver's, its `Values` static.
        return unsafe { basic_support(irp, item, value, out_len) };
    }
    if in_len < item.MinProperty as usize || out_len < item.MinData as usize {
        return STATUS_BUFFER_TOO_SMALL;
    }
    let handler = match verbs {
        v if v == KsPropertyType::GET => item.GetPropertyHandler,
        v if v == KsPropertyType::SET => item.SetPropertyHandler,
        _ => None,
    };
    let Some(handler) = handler else {
        return STATUS_NOT_FOUND;
    };
    if verbs == KsPropertyType::GET {
        // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS
        // routine's contract).
        unsafe { set_information(irp, item.MinData as usize) };
    }
    // SAFETY: the driver's handler with the captured request and value area.
    unsafe { handler(irp, request, value.cast()) }
}

/// The automatic `KSPROPERTY_TYPE_BASICSUPPORT` answer from the item's handlers and `Values`.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `value` is its value area, as `data` is for [`write_list`]; `item.Values` is null or
/// the driver's value description, whose member lists stay valid.
unsafe fn basic_support(irp: *mut IRP, item: &KSPROPERTY_ITEM, value: *mut u8, out_len: usize) -> NTSTATUS {
    let mut access = KsPropertyType::BASICSUPPORT;
    if item.GetPropertyHandler.is_some() {
        access |= KsPropertyType::GET;
    }
    if item.SetPropertyHandler.is_some() {
        access |= KsPropertyType::SET;
    }
    let (prop_type, lists) = if item.Values.is_null() {
        (KSIDENTIFIER { Set: KSPROPTYPESETID_General, Id: 0, Flags: 0 }, &[][..])
    } else {
        // SAFETY: the item's static value description.
        let v = unsafe { &*item.Values };
        let lists: &[ksabi::KSPROPERTY_MEMBERSLIST] = if v.MembersList.is_null() {
            &[]
        } else {
            // SAFETY: its member lists.
            unsafe { std::slice::from_raw_parts(v.MembersList, v.MembersListCount as usize) }
        };
        (v.PropTypeSet, lists)
    };
    let member_bytes = |l: &ksabi::KSPROPERTY_MEMBERSLIST| {
        l.MembersHeader.MembersSize as usize * l.MembersHeader.MembersCount as usize
    };
    let full = size_of::<KSPROPERTY_DESCRIPTION>()
        + lists.iter().map(|l| size_of::<KSPROPERTY_MEMBERSHEADER>() + member_bytes(l)).sum::<usize>();
    if out_len == 0 {
        // SAFETY: the property IRP that `basic_support`'s caller is answering, owned by the
        // driver's dispatch that called the KS routine.
        unsafe { set_information(irp, full) };
        return STATUS_BUFFER_OVERFLOW;
    }
    if out_len == size_of::<u32>() {
        // SAFETY: the value area holds at least 4 bytes (8-aligned).
        unsafe { value.cast::<u32>().write(access.bits()) };
        // SAFETY: the property IRP that `basic_support`'s caller is answering, owned by the
        // driver's dispatch that called the KS routine.
        unsafe { set_information(irp, 4) };
        return STATUS_SUCCESS;
    }
    if out_len < size_of::<KSPROPERTY_DESCRIPTION>() {
        return STATUS_BUFFER_TOO_SMALL;
    }
    let description = KSPROPERTY_DESCRIPTION {
        AccessFlags: access.bits(),
        DescriptionSize: u32::try_from(full).unwrap_or(u32::MAX),
        PropTypeSet: prop_type,
        MembersListCount: u32::try_from(lists.len()).unwrap_or(0),
        Reserved: 0,
    };
    // SAFETY: the value area holds `out_len >= 0x28` bytes, 8-aligned.
    unsafe { value.cast::<KSPROPERTY_DESCRIPTION>().write(description) };
    if out_len < full {
        // SAFETY: the property IRP that `basic_support`'s caller is answering, owned by the
        // driver's dispatch that called the KS routine.
        unsafe { set_information(irp, size_of::<KSPROPERTY_DESCRIPTION>()) };
        return STATUS_SUCCESS;
    }
    let mut at = size_of::<KSPROPERTY_DESCRIPTION>();
    for l in lists {
        // SAFETY: `full <= out_len` bytes are available; headers land 4-aligned.
        unsafe { value.wrapping_add(at).cast::<KSPROPERTY_MEMBERSHEADER>().write_unaligned(l.MembersHeader) };
        at += size_of::<KSPROPERTY_MEMBERSHEADER>();
        let n = member_bytes(l);
        if n > 0 && !l.Members.is_null() {
            // SAFETY: the item's static member values, `n` bytes; room checked above.
            unsafe { std::ptr::copy_nonoverlapping(l.Members.cast::<u8>(), value.wrapping_add(at), n) };
        }
        at += n;
    }
    // SAFETY: the property IRP that `basic_support`'s caller is answering, owned by the driver's
    // dispatch that called the KS routine.
    unsafe { set_information(irp, full) };
    STATUS_SUCCESS
}

/// `KsHandleSizedListQuery`: the 0 / 4 / 8 / full / too-small protocol into the system buffer.
///
/// # Safety
/// As the routine's contract: `irp` is a captured property IRP the caller's handler serves and
/// owns (as for [`IrpBox::of`]); `items` holds `count` entries of `item_size` bytes.
pub(crate) unsafe fn sized_list(irp: *mut IRP, count: u32, item_size: u32, items: *const c_void) -> NTSTATUS {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS routine's
    // contract).
    let (_, out_len) = unsafe { lengths(irp) };
    // SAFETY: the system buffer of a captured property request (value area first).
    // SAFETY: the driver passes the property IRP its handler is serving, which it owns
    // (`KsHandleSizedListQuery`'s contract).
    let data = unsafe { IrpBox::of(irp) }.system_buffer().cast::<u8>();
    // SAFETY: the IRP the caller owns and its value area; the caller's table (the contract).
    unsafe { write_list(irp, data, out_len, count, item_size as usize, items.cast()) }
}

/// Writes a `KSMULTIPLE_ITEM` of `count` items of `item_size` bytes (the 0 / 4 / 8 / full /
/// too-small protocol).
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `data` is its value area (the captured system buffer's start: 8-aligned, `out_len` writable bytes rounded up to 8) that no one else uses meanwhile; `items` holds `count * item_size` readable bytes.
unsafe fn write_list(
    irp: *mut IRP,
    data: *mut u8,
    out_len: usize,
    count: u32,
    item_size: usize,
    items: *const u8,
) -> NTSTATUS {
    let size = size_of::<KSMULTIPLE_ITEM>() + count as usize * item_size;
    let Ok(size32) = u32::try_from(size) else {
        return STATUS_INVALID_PARAMETER;
    };
    match out_len {
        0 => {
            // SAFETY: the property IRP that `write_list`'s caller is answering, owned by the
            // driver's dispatch that called the KS routine.
            unsafe { set_information(irp, size) };
            STATUS_BUFFER_OVERFLOW
        }
        4 => {
            // SAFETY: at least 4 bytes in the 8-aligned value area.
            unsafe { data.cast::<u32>().write(size32) };
            // SAFETY: the property IRP that `write_list`'s caller is answering, owned by the
            // driver's dispatch that called the KS routine.
            unsafe { set_information(irp, 4) };
            STATUS_SUCCESS
        }
        8 => {
            // SAFETY: at least 8 bytes.
            unsafe { data.cast::<KSMULTIPLE_ITEM>().write(KSMULTIPLE_ITEM { Size: size32, Count: count }) };
            // SAFETY: the property IRP that `write_list`'s caller is answering, owned by the
            // driver's dispatch that called the KS routine.
            unsafe { set_information(irp, 8) };
            STATUS_SUCCESS
        }
        n if n >= size => {
            // SAFETY: `size` bytes fit; the items are the driver's table of `count` entries.
            unsafe { data.cast::<KSMULTIPLE_ITEM>().write(KSMULTIPLE_ITEM { Size: size32, Count: count }) };
            if count > 0 {
                // SAFETY: `size - 8` bytes of the driver's table fit after the header.
                unsafe { std::ptr::copy_nonoverlapping(items, data.wrapping_add(8), size - 8) };
            }
            // SAFETY: the property IRP that `write_list`'s caller is answering, owned by the
            // driver's dispatch that called the KS routine.
            unsafe { set_information(irp, size) };
            STATUS_SUCCESS
        }
        _ => STATUS_BUFFER_TOO_SMALL,
    }
}

/// The descriptor of the pin a `KSP_PIN` request names.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `property` is its captured request (at least a `KSIDENTIFIER`); `descriptors` is null
/// or a table of `count` descriptors that stays valid for `'a`.
unsafe fn descriptor<'a>(
    irp: *mut IRP,
    property: *mut KSIDENTIFIER,
    count: u32,
    descriptors: *const KSPIN_DESCRIPTOR,
) -> Result<&'a KSPIN_DESCRIPTOR, NTSTATUS> {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS routine's
    // contract).
    let (in_len, _) = unsafe { lengths(irp) };
    if in_len < size_of::<KSP_PIN>() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: at least a KSP_PIN was captured.
    let KSP_PIN { PinId: pin, Reserved: reserved, .. } = unsafe { *property.cast::<KSP_PIN>() };
    if pin >= count || reserved != 0 || descriptors.is_null() {
        return Err(STATUS_INVALID_PARAMETER);
    }
    // SAFETY: `pin < count` indexes the driver's descriptor table.
    Ok(unsafe { &*descriptors.wrapping_add(pin as usize) })
}

/// `KsPinPropertyHandler`: the static `KSPROPSETID_Pin` properties from the descriptor table.
/// Ids it does not answer (CINSTANCES, DATAINTERSECTION, GLOBALCINSTANCES, NECESSARYINSTANCES,
/// PHYSICALCONNECTION, PROPOSEDATAFORMAT...) give `STATUS_NOT_FOUND` (ReactOS:
/// `STATUS_NOT_IMPLEMENTED`; Windows UNVERIFIED).
///
/// # Safety
/// As the routine's contract: `irp` is a captured property IRP the caller's handler serves and
/// owns (as for [`IrpBox::of`]); `property` and `data` are its captured request and value area
/// (as the handler got them); `descriptors` is null or a table of `count` pin descriptors whose
/// tables stay valid.
pub(crate) unsafe fn pin_property_handler(
    irp: *mut IRP,
    property: *mut KSIDENTIFIER,
    data: *mut c_void,
    count: u32,
    descriptors: *const KSPIN_DESCRIPTOR,
) -> NTSTATUS {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS routine's
    // contract).
    let (_, out_len) = unsafe { lengths(irp) };
    let data = data.cast::<u8>();
    // SAFETY: the captured request.
    let id = unsafe { (*property).Id };
    if id == pin_property::CTYPES {
        // SAFETY: the caller's IRP and value area (the contract).
        return unsafe { write_u32(irp, data, out_len, count) };
    }
    // SAFETY: the caller's IRP, captured request and descriptor table (the contract).
    let d = match unsafe { descriptor(irp, property, count, descriptors) } {
        Ok(d) => d,
        Err(s) => return s,
    };
    // The descriptor's tables are the driver's, valid as long as the descriptors (the contract).
    let (ranges_list, ranges_count) = if d.ConstrainedDataRangesCount == 0 {
        (d.DataRanges, d.DataRangesCount)
    } else {
        (d.ConstrainedDataRanges, d.ConstrainedDataRangesCount)
    };
    match id {
        pin_property::DATAFLOW => {
            // SAFETY: the caller's IRP and value area (the contract).
            unsafe { write_u32(irp, data, out_len, d.DataFlow.cast_unsigned()) }
        }
        pin_property::COMMUNICATION => {
            // SAFETY: the caller's IRP and value area (the contract).
            unsafe { write_u32(irp, data, out_len, d.Communication.cast_unsigned()) }
        }
        pin_property::DATARANGES => {
            // SAFETY: the caller's IRP and value area; the descriptor's range table.
            unsafe { ranges(irp, data, out_len, d.DataRanges, d.DataRangesCount) }
        }
        pin_property::CONSTRAINEDDATARANGES => {
            // SAFETY: the caller's IRP and value area; the descriptor's range table.
            unsafe { ranges(irp, data, out_len, ranges_list, ranges_count) }
        }
        pin_property::INTERFACES => {
            let default = KSPIN_INTERFACE {
                Set: ksabi::KSINTERFACESETID_Standard,
                Id: ksabi::KSINTERFACE_STANDARD_STREAMING,
                Flags: 0,
            };
            // SAFETY: the caller's IRP and value area; the descriptor's interface table.
            unsafe { identifiers(irp, data, out_len, d.Interfaces, d.InterfacesCount, default) }
        }
        pin_property::MEDIUMS => {
            let default = KSPIN_INTERFACE {
                Set: ksabi::KSMEDIUMSETID_Standard,
                Id: ksabi::KSMEDIUM_TYPE_ANYINSTANCE,
                Flags: 0,
            };
            // SAFETY: the caller's IRP and value area; the descriptor's medium table.
            unsafe { identifiers(irp, data, out_len, d.Mediums, d.MediumsCount, default) }
        }
        pin_property::CATEGORY => {
            if d.Category.is_null() {
                return STATUS_NOT_FOUND;
            }
            // SAFETY: the descriptor's static GUID.
            let category = unsafe { *d.Category };
            // SAFETY: the caller's IRP and value area (the contract).
            unsafe { write_guid(irp, data, out_len, category) }
        }
        pin_property::NAME => {
            let guid = if d.Name.is_null() { d.Category } else { d.Name };
            if guid.is_null() {
                return STATUS_NOT_FOUND;
            }
            // SAFETY: the descriptor's static GUID.
            let guid = unsafe { *guid };
            // SAFETY: the caller's IRP and value area (the contract).
            unsafe { write_name(irp, data, out_len, guid) }
        }
        _ => STATUS_NOT_FOUND,
    }
}

/// Answers a `u32`.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `data` is its value area (the captured system buffer's start: 8-aligned, `out_len` writable bytes rounded up to 8) that no one else uses meanwhile.
unsafe fn write_u32(irp: *mut IRP, data: *mut u8, out_len: usize, v: u32) -> NTSTATUS {
    if out_len < 4 {
        // SAFETY: the property IRP that `write_u32`'s caller is answering, owned by the driver's
        // dispatch that called the KS routine.
        unsafe { set_information(irp, 4) };
        return if out_len == 0 { STATUS_BUFFER_OVERFLOW } else { STATUS_BUFFER_TOO_SMALL };
    }
    // SAFETY: 4 bytes in the 8-aligned value area.
    unsafe { data.cast::<u32>().write(v) };
    // SAFETY: the property IRP that `write_u32`'s caller is answering, owned by the driver's
    // dispatch that called the KS routine.
    unsafe { set_information(irp, 4) };
    STATUS_SUCCESS
}

/// Answers a GUID.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `data` is its value area (the captured system buffer's start: 8-aligned, `out_len` writable bytes rounded up to 8) that no one else uses meanwhile.
unsafe fn write_guid(irp: *mut IRP, data: *mut u8, out_len: usize, g: GUID) -> NTSTATUS {
    if out_len < 16 {
        // SAFETY: the property IRP that `write_guid`'s caller is answering, owned by the driver's
        // dispatch that called the KS routine.
        unsafe { set_information(irp, 16) };
        return if out_len == 0 { STATUS_BUFFER_OVERFLOW } else { STATUS_BUFFER_TOO_SMALL };
    }
    // SAFETY: 16 bytes in the value area (GUID is 4-aligned).
    unsafe { data.cast::<GUID>().write(g) };
    // SAFETY: the property IRP that `write_guid`'s caller is answering, owned by the driver's
    // dispatch that called the KS routine.
    unsafe { set_information(irp, 16) };
    STATUS_SUCCESS
}

/// The `Name` under `MediaCategories\{guid}` as a NUL-terminated UTF-16 string.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `data` is its value area (the captured system buffer's start: 8-aligned, `out_len` writable bytes rounded up to 8) that no one else uses meanwhile.
unsafe fn write_name(irp: *mut IRP, data: *mut u8, out_len: usize, guid: GUID) -> NTSTATUS {
    let m = current();
    let Some(name) = m.media_categories.locked().get(&guid).cloned() else {
        return STATUS_NOT_FOUND;
    };
    let mut units: Vec<u16> = name.encode_utf16().collect();
    units.push(0);
    let needed = units.len() * 2;
    if out_len < needed {
        // SAFETY: the property IRP that `write_name`'s caller is answering, owned by the driver's
        // dispatch that called the KS routine.
        unsafe { set_information(irp, needed) };
        return if out_len == 0 { STATUS_BUFFER_OVERFLOW } else { STATUS_BUFFER_TOO_SMALL };
    }
    // SAFETY: `needed <= out_len` bytes in the value area.
    unsafe { std::ptr::copy_nonoverlapping(units.as_ptr().cast::<u8>(), data, needed) };
    // SAFETY: the property IRP that `write_name`'s caller is answering, owned by the driver's
    // dispatch that called the KS routine.
    unsafe { set_information(irp, needed) };
    STATUS_SUCCESS
}

/// A `KSMULTIPLE_ITEM` of data ranges, each padded to 8 bytes.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `data` is its value area (the captured system buffer's start: 8-aligned, `out_len` writable bytes rounded up to 8) that no one else uses meanwhile; `list` is null or an array of `count` pointers, each null or a data range of
/// `FormatSize` readable bytes.
unsafe fn ranges(
    irp: *mut IRP,
    data: *mut u8,
    out_len: usize,
    list: *const *const KSDATARANGE,
    count: u32,
) -> NTSTATUS {
    let list: &[*const KSDATARANGE] = if list.is_null() || count == 0 {
        &[]
    } else {
        // SAFETY: the descriptor's range pointer array.
        unsafe { std::slice::from_raw_parts(list, count as usize) }
    };
    let ranges: Vec<&KSDATARANGE> = list
        .iter()
        .filter(|r| !r.is_null())
        .map(|&r| {
            // SAFETY: a static range of the driver.
            unsafe { &*r }
        })
        .collect();
    let size = 8 + ranges.iter().map(|r| (r.FormatSize as usize).next_multiple_of(8)).sum::<usize>();
    let Ok(size32) = u32::try_from(size) else {
        return STATUS_INVALID_PARAMETER;
    };
    let n = u32::try_from(ranges.len()).unwrap_or(0);
    match out_len {
        0 => {
            // SAFETY: the property IRP that `ranges`'s caller is answering, owned by the driver's
            // dispatch that called the KS routine.
            unsafe { set_information(irp, size) };
            STATUS_BUFFER_OVERFLOW
        }
        4 => {
            // SAFETY: 4 bytes.
            unsafe { data.cast::<u32>().write(size32) };
            // SAFETY: the property IRP that `ranges`'s caller is answering, owned by the driver's
            // dispatch that called the KS routine.
            unsafe { set_information(irp, 4) };
            STATUS_SUCCESS
        }
        8 => {
            // SAFETY: 8 bytes.
            unsafe { data.cast::<KSMULTIPLE_ITEM>().write(KSMULTIPLE_ITEM { Size: size32, Count: n }) };
            // SAFETY: the property IRP that `ranges`'s caller is answering, owned by the driver's
            // dispatch that called the KS routine.
            unsafe { set_information(irp, 8) };
            STATUS_SUCCESS
        }
        l if l >= size => {
            // SAFETY: `size` bytes fit.
            unsafe { data.cast::<KSMULTIPLE_ITEM>().write(KSMULTIPLE_ITEM { Size: size32, Count: n }) };
            let mut at = 8;
            for r in ranges {
                let len = r.FormatSize as usize;
                let (from, to) = (std::ptr::from_ref(r).cast::<u8>(), data.wrapping_add(at));
                // SAFETY: each range is `FormatSize` bytes of static data; room checked.
                unsafe { std::ptr::copy_nonoverlapping(from, to, len) };
                at += len.next_multiple_of(8);
            }
            // SAFETY: the property IRP that `ranges`'s caller is answering, owned by the driver's
            // dispatch that called the KS routine.
            unsafe { set_information(irp, size) };
            STATUS_SUCCESS
        }
        _ => STATUS_BUFFER_TOO_SMALL,
    }
}

/// A `KSMULTIPLE_ITEM` of interfaces or mediums, `default` alone if the list is empty.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `data` is its value area (the captured system buffer's start: 8-aligned, `out_len` writable bytes rounded up to 8) that no one else uses meanwhile; `list` is null or an array of `count` entries.
unsafe fn identifiers(
    irp: *mut IRP,
    data: *mut u8,
    out_len: usize,
    list: *const KSPIN_INTERFACE,
    count: u32,
    default: KSPIN_INTERFACE,
) -> NTSTATUS {
    let (items, n) =
        if list.is_null() || count == 0 { (std::ptr::from_ref(&default), 1) } else { (list, count) };
    // SAFETY: the caller's IRP and value area; `items` is the caller's array of `count` entries
    // or `default`, alive for the call.
    unsafe { write_list(irp, data, out_len, n, size_of::<KSPIN_INTERFACE>(), items.cast()) }
}

/// `KsPinDataIntersection` as ks.sys' `KsPinDataIntersectionEx` does it (Windows Server 2003
/// `connect.c`; FIDELITY.md): checks the `KSP_PIN` and the client's `KSMULTIPLE_ITEM` of ranges
/// as it walks them, and for each client range, each of the factory's `DataRanges` whose GUIDs
/// match (equal, or a wildcard on either side):
/// - if either specifier is `KSDATAFORMAT_SPECIFIER_NONE` and neither the majors nor the subs are
///   both wildcards, answers **by itself**, without the handler: the factory range's 64 bytes as
///   the format, its wildcards replaced by the client's GUIDs (`STATUS_BUFFER_OVERFLOW` with
///   `Information = 64` for an empty buffer, `STATUS_BUFFER_TOO_SMALL` for a short one);
/// - else calls the handler; anything but `STATUS_NO_MATCH` is the answer.
///
/// Simplified: attribute lists are checked for size only, and a client range with a required
/// attribute matches nothing (kshost emulates no factory attribute ranges).
///
/// # Safety
/// As the routine's contract: `irp` is a captured property IRP the caller's handler serves and
/// owns (as for [`IrpBox::of`]); `pin` and `data` are its captured request and value area (as the
/// handler got them); `descriptors` is null or a table of `count` pin descriptors whose range
/// tables stay valid.
#[allow(clippy::too_many_lines)] // one walk of the list, in ks.sys' order
pub(crate) unsafe fn data_intersection(
    irp: *mut IRP,
    pin: *mut KSP_PIN,
    data: *mut c_void,
    count: u32,
    descriptors: *const KSPIN_DESCRIPTOR,
    handler: PFNKSINTERSECTHANDLER,
) -> NTSTATUS {
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS routine's
    // contract).
    let (in_len, out_len) = unsafe { lengths(irp) };
    // SAFETY: a captured KSP_PIN (the item's MinProperty).
    let KSP_PIN { PinId: pin_id, Reserved: reserved, .. } = unsafe { *pin };
    if pin_id >= count || reserved != 0 || descriptors.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    let head = size_of::<KSP_PIN>() + size_of::<KSMULTIPLE_ITEM>();
    if in_len < head {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    // SAFETY: `pin_id < count`.
    let d = unsafe { &*descriptors.wrapping_add(pin_id as usize) };
    let list = pin.cast::<u8>().wrapping_add(size_of::<KSP_PIN>());
    // SAFETY: the captured request holds at least the list header (checked).
    let header = unsafe { list.cast::<KSMULTIPLE_ITEM>().read() };
    if header.Size as usize > in_len - size_of::<KSP_PIN>() {
        return STATUS_INVALID_BUFFER_SIZE;
    }
    let factory: Vec<&KSDATARANGE> = if d.DataRanges.is_null() {
        Vec::new()
    } else {
        // SAFETY: the descriptor's range table.
        unsafe { std::slice::from_raw_parts(d.DataRanges, d.DataRangesCount as usize) }
            .iter()
            .filter(|r| !r.is_null())
            // SAFETY: static ranges of the driver.
            .map(|&r| unsafe { &*r })
            .collect()
    };
    let mut left = (header.Size as usize).wrapping_sub(size_of::<KSMULTIPLE_ITEM>());
    let mut at = size_of::<KSMULTIPLE_ITEM>();
    let mut remaining = header.Count;
    while remaining > 0 {
        let range_at = list.wrapping_add(at).cast::<KSDATARANGE>();
        if left < size_of::<KSDATARANGE>() {
            return STATUS_INVALID_BUFFER_SIZE;
        }
        // SAFETY: within the captured list (checked); ranges sit at 8-aligned offsets.
        let r = unsafe { range_at.read() };
        let format_size = r.FormatSize as usize;
        let plain = r.Specifier == ksabi::GUID_NULL || r.Specifier == ksabi::KSDATAFORMAT_SPECIFIER_NONE;
        if format_size < size_of::<KSDATARANGE>()
            || format_size > left
            || (format_size != size_of::<KSDATARANGE>() && plain)
        {
            return STATUS_INVALID_BUFFER_SIZE;
        }
        let range_flags = KsDataFormatFlags::from_bits_retain(r.Flags);
        if !(KsDataFormatFlags::ATTRIBUTES | KsDataFormatFlags::REQUIRED_ATTRIBUTES).contains(range_flags)
            || range_flags == KsDataFormatFlags::REQUIRED_ATTRIBUTES
        {
            return STATUS_INVALID_PARAMETER;
        }
        let mut step = format_size;
        if remaining > 1 {
            step = step.next_multiple_of(8);
            if step > left {
                return STATUS_INVALID_BUFFER_SIZE;
            }
        }
        let mut required_attribute = false;
        if range_flags.contains(KsDataFormatFlags::ATTRIBUTES) {
            if remaining == 1 {
                return STATUS_INVALID_BUFFER_SIZE;
            }
            remaining -= 1;
            if left < step + size_of::<KSMULTIPLE_ITEM>() {
                return STATUS_INVALID_BUFFER_SIZE;
            }
            // SAFETY: the attribute list header lies within the list (checked).
            let attributes =
                unsafe { list.wrapping_add(at + step).cast::<KSMULTIPLE_ITEM>().read_unaligned() };
            let size = attributes.Size as usize;
            if size < size_of::<KSMULTIPLE_ITEM>() || left < step + size {
                return STATUS_INVALID_BUFFER_SIZE;
            }
            required_attribute = range_flags.contains(KsDataFormatFlags::REQUIRED_ATTRIBUTES);
            step += size;
            if remaining > 1 {
                step = step.next_multiple_of(8);
                if step > left {
                    return STATUS_INVALID_BUFFER_SIZE;
                }
            }
        }
        let fits = |a: GUID, b: GUID| a == b || a == ksabi::GUID_NULL || b == ksabi::GUID_NULL;
        for f in &factory {
            if KsDataFormatFlags::from_bits_retain(f.Flags).contains(KsDataFormatFlags::ATTRIBUTES) {
                crate::machine::violation(
                    crate::verifier::Rule::Unsupported,
                    "a data range with KSDATARANGE_ATTRIBUTES (not emulated)".into(),
                );
                continue;
            }
            let matched = fits(f.MajorFormat, r.MajorFormat)
                && fits(f.SubFormat, r.SubFormat)
                && fits(f.Specifier, r.Specifier)
                && !required_attribute;
            if !matched {
                continue;
            }
            let none = ksabi::KSDATAFORMAT_SPECIFIER_NONE;
            let wild = ksabi::GUID_NULL;
            if (f.Specifier == none || r.Specifier == none)
                && !(f.MajorFormat == wild && r.MajorFormat == wild)
                && !(f.SubFormat == wild && r.SubFormat == wild)
            {
                // SAFETY: the caller's IRP and its value area of `out_len` bytes.
                return unsafe { answer_from_range(irp, f, &r, data.cast(), out_len) };
            }
            let Some(handler) = handler else {
                return STATUS_NOT_FOUND;
            };
            // SAFETY: the driver's intersect handler with the captured request, range and value area.
            let status = unsafe { handler(irp, pin, range_at, data) };
            if status != STATUS_NO_MATCH {
                if nt_success(status) && out_len > 0 && !data.is_null() {
                    let flags_at = data.cast::<u8>().wrapping_add(std::mem::offset_of!(KSDATAFORMAT, Flags));
                    // SAFETY: the value area holds at least 8 bytes (rounded up to 8, non-empty).
                    let flags = unsafe { flags_at.cast::<u32>().read_unaligned() };
                    let attributes =
                        (KsDataFormatFlags::ATTRIBUTES | KsDataFormatFlags::REQUIRED_ATTRIBUTES).bits();
                    // SAFETY: as above.
                    unsafe { flags_at.cast::<u32>().write_unaligned(flags & !attributes) };
                }
                return status;
            }
        }
        left -= step;
        at += step;
        remaining -= 1;
    }
    STATUS_NO_MATCH
}

/// ks.sys' own answer: the factory range as a 64-byte format, its wildcards the client's GUIDs.
///
/// # Safety
/// `irp` is the property IRP the caller answers, which it owns (as for [`IrpBox::of`]); `data` is its value area, as for [`write_list`].
unsafe fn answer_from_range(
    irp: *mut IRP,
    f: &KSDATARANGE,
    r: &KSDATARANGE,
    data: *mut u8,
    out_len: usize,
) -> NTSTATUS {
    let size = size_of::<KSDATAFORMAT>();
    if out_len == 0 {
        // SAFETY: the property IRP that `answer_from_range`'s caller is answering, owned by the
        // driver's dispatch that called the KS routine.
        unsafe { set_information(irp, size) };
        return STATUS_BUFFER_OVERFLOW;
    }
    if out_len < size {
        return STATUS_BUFFER_TOO_SMALL;
    }
    let mut format = *f;
    let wild = ksabi::GUID_NULL;
    if f.MajorFormat == wild {
        format.MajorFormat = r.MajorFormat;
    }
    if f.SubFormat == wild {
        format.SubFormat = r.SubFormat;
    }
    if f.Specifier == wild {
        format.Specifier = r.Specifier;
    }
    format.Flags &= !(KsDataFormatFlags::ATTRIBUTES | KsDataFormatFlags::REQUIRED_ATTRIBUTES).bits();
    // SAFETY: the value area holds `out_len >= 64` bytes, 8-aligned.
    unsafe { data.cast::<KSDATAFORMAT>().write(format) };
    // SAFETY: the property IRP that `answer_from_range`'s caller is answering, owned by the
    // driver's dispatch that called the KS routine.
    unsafe { set_information(irp, size) };
    STATUS_SUCCESS
}

/// `KsTopologyPropertyHandler`.
///
/// # Safety
/// As the routine's contract: `irp` is a captured property IRP the caller's handler serves and
/// owns (as for [`IrpBox::of`]); `property` and `data` are its captured request and value area (as
/// the handler got them); `topology` is null or the driver's topology, whose tables stay valid.
pub(crate) unsafe fn topology_handler(
    irp: *mut IRP,
    property: *mut KSIDENTIFIER,
    data: *mut c_void,
    topology: *const KSTOPOLOGY,
) -> NTSTATUS {
    if topology.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the driver's static topology.
    let t = unsafe { &*topology };
    // SAFETY: the driver passes the property IRP it is dispatching, which it owns (the KS routine's
    // contract).
    let (in_len, out_len) = unsafe { lengths(irp) };
    let data = data.cast::<u8>();
    // SAFETY: the captured request.
    let id = unsafe { (*property).Id };
    match id {
        topology_property::CATEGORIES => {
            // SAFETY: the caller's IRP and value area; the topology's table of GUIDs.
            unsafe { write_list(irp, data, out_len, t.CategoriesCount, 16, t.Categories.cast()) }
        }
        topology_property::NODES => {
            // SAFETY: the caller's IRP and value area; the topology's table of GUIDs.
            unsafe { write_list(irp, data, out_len, t.TopologyNodesCount, 16, t.TopologyNodes.cast()) }
        }
        topology_property::CONNECTIONS => {
            let (n, table) = (t.TopologyConnectionsCount, t.TopologyConnections.cast());
            // SAFETY: the caller's IRP and value area; the topology's table of 16-byte connections.
            unsafe { write_list(irp, data, out_len, n, 16, table) }
        }
        topology_property::NAME => {
            if in_len < size_of::<KSP_NODE>() {
                return STATUS_INVALID_PARAMETER;
            }
            // SAFETY: a captured KSP_NODE.
            let node = unsafe { (*property.cast::<KSP_NODE>()).NodeId };
            if node >= t.TopologyNodesCount {
                return STATUS_INVALID_PARAMETER;
            }
            let names = if t.TopologyNodesNames.is_null() { t.TopologyNodes } else { t.TopologyNodesNames };
            // SAFETY: `node` indexes the node tables.
            let name = unsafe { *names.wrapping_add(node as usize) };
            // SAFETY: the caller's IRP and value area (the contract).
            unsafe { write_name(irp, data, out_len, name) }
        }
        _ => STATUS_NOT_FOUND,
    }
}
