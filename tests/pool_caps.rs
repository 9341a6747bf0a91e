//! How much non-paged pool ksring lets callers take (issue 13, WINDOWS-AUDIT F9): a ring is
//! charged to the pool quota of the process whose state request allocates it, the driver caps
//! all its rings together (`MaxRingMiB`) and each filter's (`MaxFilterRingMiB`), read from the
//! service key's `Parameters` the INF writes. Over a cap: a clear status, nothing changed, and the
//! filter still usable at a smaller capacity.

mod common;

use std::sync::{Barrier, Mutex};

use ksabi::PAGE_SIZE as PAGE;
use ksabi::{
    KSSTATE_RUN, KSSTATE_STOP, STATUS_INSUFFICIENT_RESOURCES, STATUS_QUOTA_EXCEEDED, STATUS_SUCCESS,
};
use ksclient::emulated::{Emulated, INF};
use ksclient::{Filter, Properties, request};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

/// The driver with other caps in its INF (`MaxRingMiB`, `MaxFilterRingMiB`).
fn boot_with_caps(all_mib: u32, filter_mib: u32, settings: kshost::Settings) -> Emulated {
    let inf = INF
        .replace(
            "HKR,Parameters,MaxRingMiB,0x00010001,256",
            &format!("HKR,Parameters,MaxRingMiB,0x00010001,{all_mib}"),
        )
        .replace(
            "HKR,Parameters,MaxFilterRingMiB,0x00010001,64",
            &format!("HKR,Parameters,MaxFilterRingMiB,0x00010001,{filter_mib}"),
        );
    assert_ne!(inf, INF, "the INF writes both parameters");
    Emulated::boot_with_inf(settings, &inf).expect("install")
}

/// A process whose pool quota cannot hold the default ring: RUN fails cleanly (the pins stay in
/// STOP, nothing allocated or charged), and the same filter runs at a capacity that fits.
#[test]
fn quota_exhaustion_refuses_the_first_run_and_a_smaller_ring_fits() {
    let settings = kshost::Settings { process_pool_quota: Some(2 << 20), ..kshost::Settings::default() };
    let backend = Emulated::boot_with(settings).expect("install");
    let baseline = common::pool_bytes(&backend);
    let filter = Filter::open_first(&backend).expect("filter");
    let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
    let output = filter.connect(PIN_OUTPUT, &request::stream_format()).expect("output");
    let before = common::pool_bytes(&backend);
    assert_eq!(
        input.set_state(KSSTATE_RUN).status,
        STATUS_INSUFFICIENT_RESOURCES,
        "4 MiB over a 2 MiB quota"
    );
    assert_eq!(input.state(), Ok(KSSTATE_STOP));
    assert_eq!(common::pool_bytes(&backend), before, "nothing allocated");
    assert_eq!(backend.machine().pool_charged_to_process(), 0, "nothing charged");

    assert_eq!(filter.set_capacity(1 << 20).status, STATUS_SUCCESS);
    assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    assert_eq!(
        backend.machine().pool_charged_to_process(),
        (1 << 20) + PAGE,
        "the ring, charged to the caller"
    );
    let payload = common::bytes(5, 1000);
    let mut w = ksclient::io::InFlight::write(&backend, input.handle(), &[(&payload, common::meta(0, 0, 0))]);
    assert_eq!(w.wait().status, STATUS_SUCCESS);
    let mut r = ksclient::io::InFlight::read(&backend, output.handle(), &[1000]);
    assert_eq!(r.frames()[0].data, payload);
    drop((w, r, input, output, filter));
    assert_eq!(common::pool_bytes(&backend), baseline);
    assert_eq!(backend.machine().pool_charged_to_process(), 0, "the quota is returned with the ring");
    backend.shutdown().assert_clean();
}

/// `MaxFilterRingMiB`: a capacity above it is refused with `STATUS_QUOTA_EXCEEDED` and the
/// capacity stays as it was.
#[test]
fn the_per_filter_cap_refuses_a_larger_capacity() {
    let backend = boot_with_caps(16, 2, kshost::Settings::default());
    let filter = Filter::open_first(&backend).expect("filter");
    assert_eq!(filter.capacity(), Ok(2 << 20), "the default capacity is brought under the cap");
    assert_eq!(filter.set_capacity(4 << 20).status, STATUS_QUOTA_EXCEEDED);
    assert_eq!(filter.capacity(), Ok(2 << 20));
    assert_eq!(filter.set_capacity((2 << 20) + 8).status, STATUS_QUOTA_EXCEEDED, "8 bytes over");
    assert_eq!(filter.set_capacity(2 << 20).status, STATUS_SUCCESS, "exactly the cap");
    assert_eq!(filter.set_capacity(1 << 20).status, STATUS_SUCCESS);
    drop(filter);
    backend.shutdown().assert_clean();
}

/// `MaxRingMiB` holds when many filters start at once: of twelve 2 MiB rings racing for an 8 MiB
/// cap, exactly four are allocated; the others get `STATUS_QUOTA_EXCEEDED` and stay in STOP; when
/// one stops, another fits.
#[test]
fn the_driver_wide_cap_holds_under_many_filters_at_once() {
    let backend = boot_with_caps(8, 2, kshost::Settings::default());
    let filters: Vec<Filter<'_>> = (0..12).map(|_| Filter::open_first(&backend).expect("filter")).collect();
    let pins: Vec<_> =
        filters.iter().map(|f| f.connect(PIN_INPUT, &request::stream_format()).expect("pin")).collect();
    let barrier = Barrier::new(pins.len());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (i, pin) in pins.iter().enumerate() {
            let (barrier, results) = (&barrier, &results);
            s.spawn(move || {
                barrier.wait();
                let status = pin.set_state(KSSTATE_RUN).status;
                results.lock().unwrap().push((i, status));
            });
        }
    });
    let results = results.into_inner().unwrap();
    let running: Vec<usize> = results.iter().filter(|(_, s)| *s == STATUS_SUCCESS).map(|(i, _)| *i).collect();
    assert_eq!(running.len(), 4, "{results:?}");
    assert!(results.iter().all(|(_, s)| *s == STATUS_SUCCESS || *s == STATUS_QUOTA_EXCEEDED), "{results:?}");
    let ring_bytes = |b: &Emulated| {
        b.machine()
            .pool_in_use()
            .iter()
            .filter(|(_, _, tag)| tag == "KsRR")
            .map(|(_, size, _)| *size)
            .sum::<usize>()
    };
    assert_eq!(ring_bytes(&backend), 4 * ((2 << 20) + PAGE));
    let refused = (0..pins.len()).find(|i| !running.contains(i)).unwrap();
    assert_eq!(pins[refused].state(), Ok(KSSTATE_STOP));
    assert_eq!(pins[running[0]].set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
    assert_eq!(pins[refused].set_state(KSSTATE_RUN).status, STATUS_SUCCESS, "room again after a STOP");
    drop(pins);
    drop(filters);
    backend.shutdown().assert_clean();
}

/// The machine's non-paged pool runs out (`Settings::pool_limit`): RUN fails cleanly with
/// `STATUS_INSUFFICIENT_RESOURCES`, the pins stay in STOP, and the filter runs once pool is there
/// for a smaller ring.
#[test]
fn an_exhausted_pool_refuses_the_ring_cleanly() {
    let settings = kshost::Settings { pool_limit: Some(3 << 20), ..kshost::Settings::default() };
    let backend = Emulated::boot_with(settings).expect("install");
    let filter = Filter::open_first(&backend).expect("filter");
    let input = filter.connect(PIN_INPUT, &request::stream_format()).expect("input");
    let before = common::pool_bytes(&backend);
    assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(input.state(), Ok(KSSTATE_STOP));
    assert_eq!(common::pool_bytes(&backend), before);
    assert_eq!(filter.set_capacity(1 << 20).status, STATUS_SUCCESS);
    assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    drop((input, filter));
    backend.shutdown().assert_clean();
}

/// Without the INF's `Parameters` values the driver takes its defaults: any filter may have the
/// largest ring (`MaxFilterRingMiB` 64), and all rings together 256 MiB (`MaxRingMiB`): four
/// 64 MiB rings, not five.
#[test]
fn without_the_parameters_the_caps_are_the_defaults() {
    let inf = INF
        .replace("HKR,Parameters,MaxRingMiB,0x00010001,256\n", "")
        .replace("HKR,Parameters,MaxFilterRingMiB,0x00010001,64\n", "");
    assert!(!inf.contains("MaxRingMiB") && !inf.contains("MaxFilterRingMiB"), "both values removed");
    let backend = Emulated::boot_with_inf(kshost::Settings::default(), &inf).expect("install");
    {
        let filters: Vec<Filter<'_>> =
            (0..5).map(|_| Filter::open_first(&backend).expect("filter")).collect();
        let pins: Vec<_> = filters
            .iter()
            .map(|f| {
                assert_eq!(
                    f.set_capacity(ksring_api::MAX_CAPACITY).status,
                    STATUS_SUCCESS,
                    "64 MiB per filter"
                );
                f.connect(PIN_INPUT, &request::stream_format()).expect("pin")
            })
            .collect();
        for pin in &pins[..4] {
            assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        }
        assert_eq!(pins[4].set_state(KSSTATE_RUN).status, STATUS_QUOTA_EXCEEDED, "a fifth is over 256 MiB");
        drop(pins);
        drop(filters);
    }
    backend.shutdown().assert_clean();
}

/// The caps are read whole and only from `REG_DWORD`s: `MaxRingMiB` 320 (above 255, so more than
/// its low byte counts) takes five 64 MiB rings but not six; a `MaxRingMiB` written as a string
/// (4 bytes of UTF-16, "a" and its NUL) is not a DWORD and leaves the default, 256 MiB: four
/// 64 MiB rings, not five.
#[test]
fn caps_come_whole_and_only_from_dwords() {
    let with_rings = |inf: &str, fit: usize| {
        let backend = Emulated::boot_with_inf(kshost::Settings::default(), inf).expect("install");
        {
            let filters: Vec<Filter<'_>> =
                (0..=fit).map(|_| Filter::open_first(&backend).expect("filter")).collect();
            let pins: Vec<_> = filters
                .iter()
                .map(|f| {
                    assert_eq!(f.set_capacity(ksring_api::MAX_CAPACITY).status, STATUS_SUCCESS);
                    f.connect(PIN_INPUT, &request::stream_format()).expect("pin")
                })
                .collect();
            for pin in &pins[..fit] {
                assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS, "{fit} rings fit");
            }
            assert_eq!(pins[fit].set_state(KSSTATE_RUN).status, STATUS_QUOTA_EXCEEDED, "one more does not");
        }
        backend.shutdown().assert_clean();
    };
    let dword_320 =
        INF.replace("HKR,Parameters,MaxRingMiB,0x00010001,256", "HKR,Parameters,MaxRingMiB,0x00010001,320");
    with_rings(&dword_320, 5);
    let string =
        INF.replace("HKR,Parameters,MaxRingMiB,0x00010001,256", "HKR,Parameters,MaxRingMiB,0x00000000,\"a\"");
    with_rings(&string, 4);
}

/// A push source's requests name frames in its filter's ring, so the ring's memory lives as long
/// as any of them might (it counts against `MaxRingMiB` until then) — but no longer: once its
/// pins stop and the source has given everything back, the memory and its share of the cap go,
/// and the filter runs again within a cap that holds exactly its two rings' worth.
#[test]
fn a_push_sources_ring_memory_goes_back_to_the_cap_when_it_stops() {
    use ksclient::io::InFlight;
    use ksclient::request::{Connect, Header};
    let backend = boot_with_caps(2, 1, kshost::Settings::default());
    {
        let format = request::stream_format();
        let f1 = Filter::open_first(&backend).expect("F1");
        let f2 = Filter::open_first(&backend).expect("F2");
        for f in [&f1, &f2] {
            assert_eq!(f.set_capacity(1 << 20).status, STATUS_SUCCESS);
        }
        let f2_in = f2.connect(PIN_INPUT, &format).expect("F2.in");
        let f1_in = f1.connect(PIN_INPUT, &format).expect("F1.in");
        let mut c = Connect::new(ksring_api::PIN_OUTPUT, format.clone());
        c.pin_to_handle = f2_in.handle().0;
        let push = f1.create_pin(&c).expect("the push source");
        for round in 0..3 {
            for pin in [&f2_in, &f1_in, &push] {
                assert_eq!(
                    pin.set_state(KSSTATE_RUN).status,
                    STATUS_SUCCESS,
                    "round {round}: RUN within the cap"
                );
            }
            let frame = vec![7u8; 3000];
            let write = InFlight::write(&backend, f1_in.handle(), &[(&frame[..], Header::default())]).wait();
            assert_eq!(write.status, STATUS_SUCCESS);
            let sent = (0..5000).any(|_| {
                std::thread::sleep(std::time::Duration::from_millis(1));
                f2.statistics().is_ok_and(|s| s.bytes_in == 3000 * (round + 1))
            });
            assert!(sent, "round {round}: the source pushed the frame to F2");
            for pin in [&push, &f1_in] {
                assert_eq!(pin.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
            }
            backend.machine().settle(); // the source settles in its work item
        }
    }
    backend.machine().settle();
    backend.shutdown().assert_clean();
}
