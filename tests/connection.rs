//! Pin creation against the real driver: good connections on both factories, one instance per
//! factory, one format per filter, pool exhaustion. (Malformed connection requests are in
//! `bad_input.rs`, with every other bad input.)

mod common;

use ksabi::{
    STATUS_DEVICE_BUSY, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE, STATUS_NO_MATCH,
    STATUS_SUCCESS,
};
use ksclient::request;
use ksclient::{Backend, Fail, Filter, Properties};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

fn pcm() -> Vec<u8> {
    request::pcm_format(2, 16, 48_000)
}

#[test]
fn good_connections_on_both_factories() {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        for format in [
            request::stream_format(),
            pcm(),
            request::pcm_format(8, 32, 192_000),
            request::pcm_format(1, 8, 8_000),
        ] {
            let input = f.connect(PIN_INPUT, &format).expect("input");
            let output = f.connect(PIN_OUTPUT, &format).expect("output, same format");
            assert_eq!(input.data_format(), Ok(format.clone()));
            assert_eq!(output.data_format(), Ok(format.clone()));
            assert_eq!(f.instances(PIN_INPUT), Ok((1, 1)));
            assert_eq!(f.global_instances(PIN_OUTPUT).map(|c| c.1), Ok(1));
            drop((input, output));
            assert_eq!(f.instances(PIN_INPUT), Ok((1, 0)));
        }
    }
    backend.shutdown().assert_clean();
}

#[test]
fn one_instance_per_factory_and_one_format_per_filter() {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        let output = f.connect(PIN_OUTPUT, &request::stream_format()).unwrap();
        let before = common::pool_bytes(&backend);
        assert_eq!(
            f.connect(PIN_OUTPUT, &request::stream_format()).err(),
            Some(Fail::Status(STATUS_DEVICE_BUSY))
        );
        assert_eq!(
            f.connect(PIN_INPUT, &pcm()).err(),
            Some(Fail::Status(STATUS_NO_MATCH)),
            "peer streams bytes"
        );
        assert_eq!(common::pool_bytes(&backend), before);
        assert_eq!(f.instances(PIN_OUTPUT), Ok((1, 1)));
        // The same the other way round: an output must stream what the input streams.
        let h = Filter::open_first(&backend).unwrap();
        let pcm_input = h.connect(PIN_INPUT, &pcm()).unwrap();
        assert_eq!(
            h.connect(PIN_OUTPUT, &request::stream_format()).err(),
            Some(Fail::Status(STATUS_NO_MATCH)),
            "peer streams PCM"
        );
        assert_eq!(h.propose(PIN_OUTPUT, &request::stream_format()).status, STATUS_NO_MATCH);
        assert_eq!(h.proposed_format(PIN_OUTPUT), Ok(pcm()), "the output is offered the input's format");
        drop((pcm_input, h));
        // A second filter is independent; the device-wide count sees both.
        let g = Filter::open_first(&backend).unwrap();
        let other = g.connect(PIN_OUTPUT, &pcm()).expect("another filter's output");
        assert_eq!(f.global_instances(PIN_OUTPUT).map(|c| c.1), Ok(2));
        // Changing a format: only in STOP, only to the peer's format.
        let input = f.connect(PIN_INPUT, &request::stream_format()).unwrap();
        assert_eq!(input.set_data_format(&pcm()).status, STATUS_NO_MATCH);
        assert_eq!(input.set_data_format(&request::stream_format()).status, STATUS_SUCCESS);
        drop(output);
        assert_eq!(input.set_data_format(&pcm()).status, STATUS_SUCCESS, "no peer any more");
        assert_eq!(input.data_format(), Ok(pcm()));
        assert_eq!(input.set_state(ksabi::KSSTATE_ACQUIRE).status, STATUS_SUCCESS);
        assert_eq!(
            input.set_data_format(&request::stream_format()).status,
            ksabi::STATUS_INVALID_DEVICE_STATE
        );
        assert_eq!(input.set_data_format(&[0; 10]).status, STATUS_INVALID_BUFFER_SIZE);
        drop((input, other, g));
    }
    backend.shutdown().assert_clean();
}

#[test]
fn pool_exhaustion_fails_cleanly() {
    let backend = common::boot();
    {
        let m = backend.machine();
        m.fail_pool_allocation_after(0);
        assert!(matches!(
            Filter::open_first(&backend).err(),
            Some(Fail::Status(STATUS_INSUFFICIENT_RESOURCES))
        ));
        m.stop_failing_pool_allocations();
        let f = Filter::open_first(&backend).unwrap();
        let before = common::pool_bytes(&backend);
        m.fail_pool_allocation_after(0);
        assert_eq!(
            f.connect(PIN_INPUT, &request::stream_format()).err(),
            Some(Fail::Status(STATUS_INSUFFICIENT_RESOURCES))
        );
        m.stop_failing_pool_allocations();
        assert_eq!(common::pool_bytes(&backend), before);
        assert_eq!(f.instances(PIN_INPUT), Ok((1, 0)));
        // The ring's storage is allocated at ACQUIRE: failing it leaves the pin in STOP.
        let input = f.connect(PIN_INPUT, &request::stream_format()).unwrap();
        m.fail_pool_allocation_after(0);
        assert_eq!(input.set_state(ksabi::KSSTATE_RUN).status, STATUS_INSUFFICIENT_RESOURCES);
        m.stop_failing_pool_allocations();
        assert_eq!(input.state(), Ok(ksabi::KSSTATE_STOP));
        assert_eq!(input.set_state(ksabi::KSSTATE_RUN).status, STATUS_SUCCESS);
        assert_eq!(common::stats(&f).capacity, u64::from(ksring_api::DEFAULT_CAPACITY));
    }
    backend.shutdown().assert_clean();
}

/// F3: a `FormatSize` that claims more bytes than the create parameter holds. The Windows Server
/// 2003-era ks.sys (kshost's `ks_connect_format_size_unchecked`) does not bound it; ksring must,
/// by the parameter's length as KS computes it, instead of reading past the captured copy. Here the
/// parameter holds a valid 82-byte PCM format but says 90 — today's driver never reads the 8
/// missing bytes, so it took the pin; with special pool, a driver that reads them faults.
#[test]
fn format_size_beyond_the_create_parameter_is_refused_by_the_driver() {
    let settings = kshost::Settings { ks_connect_format_size_unchecked: true, ..kshost::Settings::default() };
    let backend = ksclient::emulated::Emulated::boot_with(settings).expect("boot");
    {
        let f = Filter::open_first(&backend).unwrap();
        let mut blob = request::Connect::new(PIN_INPUT, pcm()).to_bytes();
        let format_size = size_of::<ksabi::KSPIN_CONNECT>();
        blob[format_size..format_size + 4].copy_from_slice(&90u32.to_le_bytes());
        let before = common::pool_bytes(&backend);
        assert_eq!(
            create_raw(&backend, &f, &blob),
            Some(Fail::Status(STATUS_INVALID_BUFFER_SIZE)),
            "FormatSize 90 in an 82-byte parameter tail"
        );
        assert_eq!(common::pool_bytes(&backend), before);
        assert_eq!(f.instances(PIN_INPUT), Ok((1, 0)));
    }
    backend.shutdown().assert_clean();
    // The same request under the Windows 10/11 rule: ks.sys refuses it itself.
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        let mut blob = request::Connect::new(PIN_INPUT, pcm()).to_bytes();
        let at = size_of::<ksabi::KSPIN_CONNECT>();
        blob[at..at + 4].copy_from_slice(&90u32.to_le_bytes());
        assert_eq!(create_raw(&backend, &f, &blob), Some(Fail::Status(ksabi::STATUS_INVALID_PARAMETER)));
    }
    backend.shutdown().assert_clean();
}

/// A pin create from raw bytes: what failed (a pin that was created is closed again).
fn create_raw(backend: &dyn Backend, f: &Filter<'_>, blob: &[u8]) -> Option<Fail> {
    match backend.create_pin(f.handle(), blob) {
        Ok(h) => {
            backend.close(h).expect("close");
            None
        }
        Err(e) => Some(e),
    }
}

/// `AddDevice` failing part way (a pool allocation refused at each step of the install in turn:
/// the driver's extension, the KS device header, the interface's link, ...) undoes what it did:
/// the machine's report at unload is clean (no KS header, link string, pool block or object
/// reference left) and the driver's device list is empty. The first run with no failure is the
/// control: it installs.
#[test]
fn an_install_that_fails_part_way_leaves_nothing_behind() {
    let inf = include_str!("../inf/ksring.inx");
    for n in 0..40 {
        let machine = kshost::Machine::new();
        machine.fail_pool_allocation_after(n);
        let installed = machine.install(inf, ksring::driver_entry);
        machine.stop_failing_pool_allocations();
        let Err(error) = installed else {
            // Every allocation of the install succeeded: nothing left to fail (the runs before
            // this one each failed at an earlier allocation).
            assert!(n > 0, "no allocation failure was reached");
            machine.shutdown().assert_clean();
            return;
        };
        assert_eq!(
            machine.driver_devices(),
            0,
            "failure after {n} allocations ({error}): a device left behind"
        );
        machine.shutdown().assert_clean();
    }
    panic!("the install still failed after 40 allocations");
}

/// The driver on a stack with no class upper filter above it (32-bit Windows has no ksthunk; other
/// device classes have none): PnP requests then reach its FDO straight from the PnP manager, with a
/// current location no driver above has set up, and its forwarded start must still come back to it
/// (its completion routine is asked for on every outcome) and be completed once.
#[test]
fn a_stack_without_an_upper_filter_starts_and_is_removed_cleanly() {
    let settings = kshost::Settings { class_upper_filter: false, ..kshost::Settings::default() };
    let backend = ksclient::emulated::Emulated::boot_with(settings).expect("boot");
    assert_eq!(backend.machine().device_stack_characteristics().len(), 2, "PDO and the driver's FDO only");
    {
        let f = Filter::open_first(&backend).unwrap();
        assert_eq!(f.instances(PIN_INPUT), Ok((1, 0)));
    }
    backend.shutdown().assert_clean();
}
