//! Who may open ksring (WINDOWS-AUDIT F9/F11, issue 13): the INF's security descriptor —
//! SYSTEM and administrators only — guards the filter opens (`\GLOBAL` is in the device's
//! namespace, so only with `FILE_DEVICE_SECURE_OPEN`), and an IRP-source connection asks for the
//! access it uses on the handle it is given.

mod common;

use ksabi::{GENERIC_READ, GENERIC_WRITE, STATUS_ACCESS_DENIED};
use ksclient::request::{self, Connect};
use ksclient::{Filter, Properties};
use kshost::{Caller, Handle};
use ksring_api::{KSCATEGORY_KSRING, PIN_INPUT, PIN_OUTPUT};

fn filter_path(backend: &ksclient::emulated::Emulated) -> String {
    backend.machine().interfaces(&KSCATEGORY_KSRING)[0].path.clone()
}

/// A standard user is refused with `STATUS_ACCESS_DENIED` (Win32 error 5); SYSTEM and an
/// administrator open the filter; nothing is left behind by the refusal.
#[test]
fn only_system_and_administrators_open_filters() {
    let backend = common::boot();
    let m = backend.machine();
    let path = filter_path(&backend);
    let baseline = common::pool_bytes(&backend);
    m.set_caller(Caller::StandardUser);
    assert_eq!(m.create_file(&path, GENERIC_READ | GENERIC_WRITE), Err(STATUS_ACCESS_DENIED));
    assert_eq!(m.create_file(&path, GENERIC_READ), Err(STATUS_ACCESS_DENIED), "not even to read");
    assert_eq!(common::pool_bytes(&backend), baseline, "a refused open reaches no driver code");
    for caller in [Caller::LocalSystem, Caller::Administrator] {
        m.set_caller(caller);
        let h = m.create_file(&path, GENERIC_READ | GENERIC_WRITE).expect("allowed");
        m.close_handle(h).unwrap();
    }
    backend.shutdown().assert_clean();
}

/// The device stack carries `FILE_DEVICE_SECURE_OPEN` (from the driver's `IoCreateDevice` and the
/// INF's `DeviceCharacteristics`), on every device object including the class filter on top —
/// without it Windows would not check `\GLOBAL` opens against the descriptor at all.
#[test]
fn the_whole_stack_is_secure_open() {
    let backend = common::boot();
    let m = backend.machine();
    let filter = Filter::open_first(&backend).expect("filter");
    assert_eq!(filter.pin_factories(), Ok(2));
    let installed = m.device_stack_characteristics();
    assert!(installed.len() >= 3, "PDO, ksring's FDO, ksthunk: {installed:?}");
    for c in &installed {
        assert_ne!(c & ksabi::FILE_DEVICE_SECURE_OPEN, 0, "{installed:?}");
    }
    drop(filter);
    backend.shutdown().assert_clean();
}

/// A push source writes to the pin it is given, a pull source reads from it: the connection asks
/// for `FILE_WRITE_DATA` or `FILE_READ_DATA` on the handle, and a handle opened without that access
/// is refused with `STATUS_ACCESS_DENIED`, the pin left unconnected.
#[test]
fn pin_to_handle_needs_the_access_the_source_uses() {
    let backend = common::boot();
    let m = backend.machine();
    let format = request::stream_format();
    let sink_filter = Filter::open_first(&backend).expect("sink filter");
    let source_filter = Filter::open_first(&backend).expect("source filter");
    let connect = |pin: u32| Connect::new(pin, format.clone()).to_bytes();
    let open_pin = |pin: u32, access: u32| {
        m.ks_create_pin_status(Handle::from_raw(sink_filter.handle().0), &connect(pin), access)
            .expect("sink pin")
    };
    let source = |pin: u32, target: Handle| {
        let mut c = Connect::new(pin, format.clone());
        c.pin_to_handle = target.raw();
        m.ks_create_pin_status(
            Handle::from_raw(source_filter.handle().0),
            &c.to_bytes(),
            GENERIC_READ | GENERIC_WRITE,
        )
    };
    // A read-only handle to an input pin: a push source may not write through it.
    let read_only_input = open_pin(PIN_INPUT, GENERIC_READ);
    assert_eq!(source(PIN_OUTPUT, read_only_input).err(), Some(STATUS_ACCESS_DENIED));
    // A write-only handle to an output pin: a pull source may not read through it.
    let write_only_output = open_pin(PIN_OUTPUT, GENERIC_WRITE);
    assert_eq!(source(PIN_INPUT, write_only_output).err(), Some(STATUS_ACCESS_DENIED));
    // Nothing was connected: the source filter's pins are free, the sinks have no feeder.
    assert_eq!(source_filter.instances(PIN_OUTPUT), Ok((1, 0)));
    assert_eq!(source_filter.instances(PIN_INPUT), Ok((1, 0)));
    m.close_handle(read_only_input).unwrap();
    m.close_handle(write_only_output).unwrap();
    // With the access, the same connections succeed.
    let input = open_pin(PIN_INPUT, GENERIC_WRITE);
    let push = source(PIN_OUTPUT, input).expect("push source with write access");
    let output = open_pin(PIN_OUTPUT, GENERIC_READ);
    let pull = source(PIN_INPUT, output).expect("pull source with read access");
    for h in [push, pull, input, output] {
        m.close_handle(h).unwrap();
    }
    drop((sink_filter, source_filter));
    backend.shutdown().assert_clean();
}
