//! kshost driven end to end, through the client API only, with a tiny KS filter written here:
//! install from an INF, interface discovery, filter and pin creation, properties with the size
//! protocol, a pending read completed from another thread, cancel, close ordering, leaks.
#![allow(clippy::undocumented_unsafe_blocks, clippy::cast_possible_truncation)]

mod common;

use std::sync::Mutex;

use common::tiny;
use ksabi::*;
use kshost::Machine;

/// The tiny driver keeps its pin count in a static: one machine at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn machine() -> Machine {
    let m = Machine::new();
    m.install(tiny::INF, tiny::DriverEntry).expect("install");
    m
}

fn filter_path(m: &Machine) -> String {
    let found = m.interfaces(&tiny::TINY_CATEGORY);
    assert_eq!(found.len(), 1, "one enabled interface");
    assert_eq!(found[0].friendly_name.as_deref(), Some("Tiny filter"));
    found[0].path.clone()
}

#[test]
fn install_discovery_and_properties() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = machine();
    let path = filter_path(&m);
    assert!(path.starts_with("\\\\?\\ROOT#MEDIA#0000#{11111111-2222-3333-4444-555555555555}"), "{path}");
    assert!(path.ends_with("\\GLOBAL"));
    assert_eq!(m.create_file("\\\\?\\nothing", GENERIC_READ).err(), Some(STATUS_OBJECT_NAME_NOT_FOUND));
    let filter = m.create_file(&path, GENERIC_READ | GENERIC_WRITE).expect("filter");
    // The file object names the device the path names (the PDO below the driver's FDO); requests
    // go to the top of that stack, which IoGetRelatedDeviceObject gives: with the Media class's
    // upper filter (on by default), ksthunk's device above the FDO.
    let (dispatched_to, file_device, related) = *tiny::CREATE_DEVICES.lock().unwrap();
    assert_ne!(file_device, dispatched_to, "FILE_OBJECT.DeviceObject is the PDO, not the FDO");
    assert_ne!(related, dispatched_to, "IoGetRelatedDeviceObject is the class filter above the FDO");
    // SAFETY: devices of the machine, alive until it goes.
    let attached = |d: usize| unsafe { (*(d as *mut DEVICE_OBJECT)).AttachedDevice as usize };
    assert_eq!(
        (attached(file_device), attached(dispatched_to), attached(related)),
        (dispatched_to, related, 0),
        "PDO, FDO, ksthunk"
    );

    // CTYPES: a plain KSPROPERTY.
    let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET, 0);
    let mut out = [0u8; 4];
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req[..24], &mut out);
    assert_eq!((r.status, r.information, u32::from_le_bytes(out)), (STATUS_SUCCESS, 4, 1));

    // DATARANGES: the size protocol.
    let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::DATARANGES, KsPropertyType::GET, 0);
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut []);
    assert_eq!((r.status, r.information), (STATUS_BUFFER_OVERFLOW, 8 + 64));
    assert_eq!(r.win32_error(), 234, "ERROR_MORE_DATA");
    let mut four = [0u8; 4];
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut four);
    assert_eq!((r.status, r.information, u32::from_le_bytes(four)), (STATUS_SUCCESS, 4, 72));
    let mut eight = [0u8; 8];
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut eight);
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 8));
    assert_eq!(eight, [72, 0, 0, 0, 1, 0, 0, 0]);
    let mut short = [0u8; 71];
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut short);
    assert_eq!(r.status, STATUS_BUFFER_TOO_SMALL);
    let mut full = [0u8; 72];
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut full);
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, 72));
    assert_eq!(&full[8 + 16..8 + 32], tiny::bytes_of(&KSDATAFORMAT_TYPE_STREAM));

    // NAME from the INF's MediaCategories.
    let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::NAME, KsPropertyType::GET, 0);
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut []);
    assert_eq!((r.status, r.information), (STATUS_BUFFER_OVERFLOW, ("Tiny input".len() + 1) * 2));
    let mut name = vec![0u8; r.information];
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut name);
    assert_eq!(r.status, STATUS_SUCCESS);
    let text: Vec<u16> = name.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    assert_eq!(String::from_utf16_lossy(&text[..text.len() - 1]), "Tiny input");

    // Errors: unknown set, unknown id, bad pin id, short request, missing verb.
    let req = tiny::ksp_pin(KSPROPSETID_Topology, 0, KsPropertyType::GET, 0);
    assert_eq!(
        m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut [0; 64]).status,
        STATUS_PROPSET_NOT_FOUND
    );
    let req = tiny::ksp_pin(KSPROPSETID_Pin, 99, KsPropertyType::GET, 0);
    assert_eq!(m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut [0; 64]).status, STATUS_NOT_FOUND);
    let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::DATARANGES, KsPropertyType::GET, 7);
    assert_eq!(
        m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut [0; 64]).status,
        STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        m.device_io_control(filter, IOCTL_KS_PROPERTY, &req[..20], &mut [0; 64]).status,
        STATUS_INVALID_PARAMETER
    );
    let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::SET, 0);
    assert_eq!(m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut [0; 4]).status, STATUS_NOT_FOUND);
    let req =
        tiny::ksp_pin(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET | KsPropertyType::SET, 0);
    assert_eq!(
        m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut [0; 4]).status,
        STATUS_INVALID_PARAMETER
    );
    // An IOCTL the filter does not know.
    assert_eq!(
        m.device_io_control(filter, IOCTL_KS_METHOD, &req, &mut [0; 4]).status,
        STATUS_PROPSET_NOT_FOUND
    );
    // BASICSUPPORT, automatic.
    let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::BASICSUPPORT, 0);
    let mut access = [0u8; 4];
    let r = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut access);
    assert_eq!(r.status, STATUS_SUCCESS);
    assert_eq!(u32::from_le_bytes(access), (KsPropertyType::BASICSUPPORT | KsPropertyType::GET).bits());

    m.close_handle(filter).unwrap();
    assert_eq!(m.close_handle(filter), Err(STATUS_INVALID_HANDLE));
    let report = m.shutdown();
    report.assert_clean();
}

#[test]
fn pin_create_validation() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = machine();
    let filter = m.create_file(&filter_path(&m), GENERIC_READ | GENERIC_WRITE).unwrap();
    let good = tiny::connect_blob(0);
    let bad_pin = tiny::connect_blob(1);
    assert_eq!(
        m.ks_create_pin_status(filter, &bad_pin, GENERIC_READ).err(),
        Some(ksabi::STATUS_INVALID_PARAMETER_3)
    );
    assert_eq!(m.ks_create_pin(filter, &bad_pin, GENERIC_READ).err(), Some(87), "ERROR_INVALID_PARAMETER");
    let mut bad_interface = good.clone();
    bad_interface[16] = 5; // Interface.Id
    assert_eq!(m.ks_create_pin_status(filter, &bad_interface, GENERIC_READ).err(), Some(STATUS_NO_MATCH));
    let mut bad_medium = good.clone();
    bad_medium[24] ^= 0xFF; // Medium.Set
    assert_eq!(m.ks_create_pin_status(filter, &bad_medium, GENERIC_READ).err(), Some(STATUS_NO_MATCH));
    let mut bad_format = good.clone();
    bad_format[72 + 16] ^= 1; // MajorFormat
    assert_eq!(m.ks_create_pin_status(filter, &bad_format, GENERIC_READ).err(), Some(STATUS_NO_MATCH));
    let mut short = good.clone();
    short.truncate(100);
    assert_eq!(m.ks_create_pin_status(filter, &short, GENERIC_READ).err(), Some(STATUS_INVALID_BUFFER_SIZE));
    let mut lying = good.clone();
    lying[72] = 200; // FormatSize beyond the request
    assert_eq!(m.ks_create_pin_status(filter, &lying, GENERIC_READ).err(), Some(STATUS_INVALID_PARAMETER));
    let mut source = good.clone();
    source[56] = 1; // PinToHandle != NULL on a sink-only factory
    assert_eq!(
        m.ks_create_pin_status(filter, &source, GENERIC_READ).err(),
        Some(ksabi::STATUS_INVALID_PARAMETER_4)
    );

    let pin = m.ks_create_pin(filter, &good, GENERIC_READ | GENERIC_WRITE).expect("pin");
    assert_eq!(
        m.ks_create_pin_status(filter, &good, GENERIC_READ).err(),
        Some(STATUS_DEVICE_BUSY),
        "one instance"
    );
    let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::CINSTANCES, KsPropertyType::GET, 0);
    let mut out = [0u8; 8];
    assert_eq!(m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut out).status, STATUS_SUCCESS);
    assert_eq!(out, [1, 0, 0, 0, 1, 0, 0, 0]);
    m.close_handle(pin).unwrap();
    m.close_handle(filter).unwrap();
    m.shutdown().assert_clean();
}

#[test]
fn pending_read_completed_by_a_write_from_another_thread() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = machine();
    let (filter, pin) = common::open_pin(&m);
    let mut buffers = common::Read::new(&m, 64, 0);
    let read = unsafe { buffers.send(&m, pin) };
    assert_eq!(read.poll(), None, "the read pends");

    std::thread::scope(|s| {
        s.spawn(|| {
            let mut data = m.alloc_user(16);
            data.as_mut_slice().copy_from_slice(b"hello, pin world");
            let h = tiny::stream_header(data.as_ptr(), 16, 16, KsStreamOptions::ENDOFSTREAM.bits());
            let mut hb = tiny::bytes_of(&h).to_vec();
            let r = m.device_io_control(pin, IOCTL_KS_WRITE_STREAM, &[], &mut hb);
            assert_eq!((r.status, r.information), (STATUS_SUCCESS, 16));
        });
    });
    let r = read.wait();
    assert_eq!((r.status, r.information), (STATUS_SUCCESS, size_of::<KSSTREAM_HEADER>()));
    let back: KSSTREAM_HEADER =
        unsafe { buffers.header.as_slice().as_ptr().cast::<KSSTREAM_HEADER>().read_unaligned() };
    assert_eq!(back.DataUsed, 16);
    assert_eq!(back.OptionsFlags, KsStreamOptions::ENDOFSTREAM.bits());
    assert_eq!(back.Data, buffers.data.as_ptr().cast(), "the caller gets its own Data pointer back");
    assert_eq!(&buffers.data.as_slice()[..16], b"hello, pin world");
    let _ = buffers.data.as_mut_slice();

    m.close_handle(pin).unwrap();
    m.close_handle(filter).unwrap();
    m.shutdown().assert_clean();
}

#[test]
fn cancel_and_close_orders() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = machine();
    let (filter, pin) = common::open_pin(&m);
    let buffers = common::Read::new(&m, 64, 0);

    // CancelIo completes a pending read with STATUS_CANCELLED.
    let read = unsafe { buffers.send(&m, pin) };
    assert_eq!(read.poll(), None);
    assert_eq!(m.cancel_io(pin), Ok(1));
    let r = read.wait();
    assert_eq!(r.status, STATUS_CANCELLED);
    assert_eq!(r.win32_error(), 995, "ERROR_OPERATION_ABORTED");

    // Closing the filter handle first: the filter's close waits for its pin's.
    tiny::CLOSES.lock().unwrap().clear();
    let read = unsafe { buffers.send(&m, pin) };
    m.close_handle(filter).unwrap();
    assert_eq!(read.poll(), None, "the pin still works after its filter's handle is closed");
    // Closing the pin with a read pending: cleanup cancels it, then the pin and the filter close.
    m.close_handle(pin).unwrap();
    assert_eq!(read.wait().status, STATUS_CANCELLED);
    m.settle();
    assert_eq!(*tiny::CLOSES.lock().unwrap(), ["pin", "filter"], "a filter closes only after its pins");
    assert!(m.pool_in_use().is_empty(), "everything freed: {:?}", m.pool_in_use());
    m.shutdown().assert_clean();
}

#[test]
fn read_access_is_checked_by_the_io_manager() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = machine();
    let filter = m.create_file(&filter_path(&m), GENERIC_READ | GENERIC_WRITE).unwrap();
    let pin = m.ks_create_pin(filter, &tiny::connect_blob(0), GENERIC_WRITE).unwrap();
    let mut header = vec![0u8; size_of::<KSSTREAM_HEADER>()];
    let r = m.device_io_control(pin, IOCTL_KS_READ_STREAM, &[], &mut header);
    assert_eq!(r.status, STATUS_ACCESS_DENIED, "READ_STREAM needs a handle opened for reading");
    m.close_handle(pin).unwrap();
    m.close_handle(filter).unwrap();
    m.shutdown().assert_clean();
}

/// `KsProbeStreamIrp`'s header rules (the Windows 10/11 ks.sys checks), each seen through a write or read.
#[test]
fn stream_header_probe_rules() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let m = machine();
    let filter = m.create_file(&filter_path(&m), GENERIC_READ | GENERIC_WRITE).unwrap();
    let pin = m.ks_create_pin(filter, &tiny::connect_blob(0), GENERIC_READ | GENERIC_WRITE).unwrap();
    let data = m.alloc_user(64);
    let h = |extent: u32, used: u32, options: u32| tiny::stream_header(data.as_ptr(), extent, used, options);
    let send = |code: u32, headers: &[KSSTREAM_HEADER], size: u32| {
        let mut bytes = Vec::new();
        for mut x in headers.iter().copied() {
            x.Size = size;
            bytes.extend_from_slice(tiny::bytes_of(&x));
            bytes.resize(bytes.len() + size.saturating_sub(56) as usize, 0);
        }
        m.device_io_control(pin, code, &[], &mut bytes).status
    };
    let hs = size_of::<KSSTREAM_HEADER>() as u32;
    // Writes.
    assert_eq!(
        send(IOCTL_KS_WRITE_STREAM, &[h(16, 17, 0)], hs),
        STATUS_INVALID_BUFFER_SIZE,
        "DataUsed > FrameExtent"
    );
    assert_eq!(
        send(IOCTL_KS_WRITE_STREAM, &[h(16, 16, 0)], hs - 8),
        STATUS_INVALID_BUFFER_SIZE,
        "Size < sizeof"
    );
    assert_eq!(
        send(IOCTL_KS_WRITE_STREAM, &[h(16, 16, 0)], hs + 4),
        STATUS_INVALID_BUFFER_SIZE,
        "Size not 8-aligned"
    );
    assert_eq!(
        send(IOCTL_KS_WRITE_STREAM, &[h(16, 16, KsStreamOptions::TYPECHANGED.bits())], hs),
        STATUS_INVALID_PARAMETER,
        "TYPECHANGED without KSPROBE_ALLOWFORMATCHANGE"
    );
    let mut unmapped = h(16, 16, 0);
    unmapped.Data = std::ptr::without_provenance_mut(0x1000);
    assert_eq!(send(IOCTL_KS_WRITE_STREAM, &[unmapped], hs), STATUS_ACCESS_VIOLATION, "Data not mapped");
    let mut overrun = h(64, 64, 0);
    overrun.FrameExtent = 65;
    assert_eq!(
        send(IOCTL_KS_WRITE_STREAM, &[overrun], hs),
        STATUS_ACCESS_VIOLATION,
        "FrameExtent beyond the mapping"
    );
    let mut bytes = tiny::bytes_of(&h(16, 16, 0)).to_vec();
    bytes[0] = 200; // Size beyond the array
    assert_eq!(
        m.device_io_control(pin, IOCTL_KS_WRITE_STREAM, &[], &mut bytes).status,
        STATUS_INVALID_BUFFER_SIZE
    );
    assert_eq!(
        m.device_io_control(pin, IOCTL_KS_WRITE_STREAM, &[], &mut [0u8; 55]).status,
        STATUS_INVALID_BUFFER_SIZE
    );
    assert_eq!(
        m.device_io_control(pin, IOCTL_KS_WRITE_STREAM, &[], &mut []).status,
        STATUS_INVALID_BUFFER_SIZE
    );
    // Reads.
    assert_eq!(
        send(IOCTL_KS_READ_STREAM, &[h(16, 1, 0)], hs),
        STATUS_INVALID_BUFFER_SIZE,
        "read with DataUsed"
    );
    assert_eq!(
        send(IOCTL_KS_READ_STREAM, &[h(16, 0, 4)], hs),
        STATUS_INVALID_PARAMETER,
        "read with OptionsFlags outside ks.sys' mask"
    );
    let metadata = KsStreamOptions::METADATA.bits();
    assert_eq!(
        send(IOCTL_KS_READ_STREAM, &[h(16, 0, metadata)], hs),
        STATUS_INVALID_BUFFER_SIZE,
        "METADATA in a header shorter than 0xA0"
    );
    assert_eq!(
        send(IOCTL_KS_WRITE_STREAM, &[h(0, 0, metadata)], hs),
        STATUS_INVALID_PARAMETER,
        "METADATA with no frame buffer"
    );
    let mut persisted = h(16, 0, 0x1_8000);
    persisted.Data = std::ptr::null_mut();
    assert_eq!(
        send(IOCTL_KS_READ_STREAM, &[persisted], hs),
        STATUS_INVALID_PARAMETER,
        "PERSIST_SAMPLE with no Data"
    );
    m.close_handle(pin).unwrap();
    m.close_handle(filter).unwrap();
    m.shutdown().assert_clean();
}

/// The I/O manager's access check: an INF `Security` descriptor guards opens of the device's
/// namespace (the reference string `\GLOBAL`) only with `FILE_DEVICE_SECURE_OPEN` on the stack;
/// without it such opens are "left entirely up to the driver". The tiny driver does not ask for
/// the characteristic, so only the INF's `DeviceCharacteristics` closes the hole.
#[test]
fn security_descriptor_guards_the_namespace_only_with_secure_open() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let admins_only = "[TinyInstall.NT.HW]\nAddReg = TinySecurity\n[TinySecurity]\nHKR,,Security,,\"D:P(A;;GA;;;SY)(A;;GA;;;BA)\"\n";
    for (secure_open, user_opens) in [(false, true), (true, false)] {
        let mut inf = tiny::INF.replace("[Strings]", &format!("{admins_only}[Strings]"));
        if secure_open {
            inf = inf.replace("HKR,,Security,,", "HKR,,DeviceCharacteristics,0x10001,0x100\nHKR,,Security,,");
        }
        let m = kshost::Machine::new();
        m.install(&inf, tiny::DriverEntry).expect("install");
        let path = filter_path(&m);
        m.set_caller(kshost::Caller::StandardUser);
        let opened = m.create_file(&path, GENERIC_READ | GENERIC_WRITE);
        assert_eq!(opened.is_ok(), user_opens, "secure open {secure_open}: {opened:?}");
        if let Ok(h) = opened {
            m.close_handle(h).unwrap();
        } else {
            assert_eq!(opened, Err(STATUS_ACCESS_DENIED));
        }
        m.set_caller(kshost::Caller::Administrator);
        let h = m.create_file(&path, GENERIC_READ | GENERIC_WRITE).expect("administrators may");
        m.close_handle(h).unwrap();
        m.shutdown().assert_clean();
    }
}
