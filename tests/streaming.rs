//! Streaming through the real driver under kshost: two threads, patterned frames of random sizes,
//! random read-buffer sizes, every byte and header checked, the driver's statistics against the
//! client's own counts.

mod common;

use ksabi::{KSSTATE_RUN, KSSTATE_STOP, STATUS_SUCCESS};
use ksclient::stream::{self, Config, Progress, Report};
use ksclient::{Backend, Filter, Properties, request};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

/// Streams `cfg` through a fresh filter whose ring has `capacity` bytes; checks the statistics.
fn stream_through(
    backend: &ksclient::emulated::Emulated,
    format: &[u8],
    capacity: Option<u32>,
    cfg: &Config,
) -> Report {
    let filter = Filter::open_first(backend).expect("filter");
    if let Some(c) = capacity {
        assert_eq!(filter.set_capacity(c).status, STATUS_SUCCESS);
    }
    let input = filter.connect(PIN_INPUT, format).expect("input");
    let output = filter.connect(PIN_OUTPUT, format).expect("output");
    assert_eq!(input.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    assert_eq!(output.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    let report = stream::run(backend, input, &output, cfg, &Progress::default()).expect("verified stream");
    assert!(report.bytes >= cfg.bytes, "{} of {} bytes", report.bytes, cfg.bytes);
    let s = common::stats(&filter);
    // The driver counted exactly what the client wrote and verified.
    assert_eq!((s.bytes_in, s.bytes_out), (report.bytes, report.bytes));
    assert_eq!((s.frames_in, s.frames_out), (report.frames, report.frames));
    assert_eq!(s.split_parts, report.parts, "every part the reader saw, and no other, was a split");
    assert_eq!((s.discarded_frames, s.discarded_bytes), (0, 0));
    assert_eq!((s.pending_reads, s.pending_writes, s.fill), (0, 0, 0));
    // The ring held bytes at some point — unless none went through it: a write that finds a read
    // waiting and the ring empty goes straight into the read (all of them may, as in a run whose
    // reader always waits first).
    assert!(s.high_water <= s.capacity, "{s:?}");
    assert!(s.high_water > 0 || (s.copied_in == 0 && s.direct_frames == s.frames_in), "{s:?}");
    // Every byte read was copied once into the reader's buffer; every byte written was copied once
    // into the ring, except those copied straight into a waiting read (counted out only).
    assert_eq!(s.copied_out, report.bytes);
    assert!(s.copied_in <= report.bytes, "{s:?}");
    assert_eq!(output.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
    drop(output);
    assert_eq!(common::stats(&filter).capacity, 0, "the ring is freed when the last pin stops");
    report
}

#[test]
fn one_gibibyte_with_random_frames_and_reads() {
    let backend = common::boot();
    let cfg = Config { bytes: 1 << 30, seed: 0x1_6B, ..Config::default() };
    let report = stream_through(&backend, &request::stream_format(), None, &cfg);
    assert!(report.parts > 0, "read buffers smaller than frames split some");
    assert!(!report.latencies_ns.is_empty());
    eprintln!(
        "1 GiB: {} frames, {} parts, {:.2} GB/s, p50 {:?}",
        report.frames,
        report.parts,
        report.gb_per_s(),
        report.latency(50.0)
    );
    backend.shutdown().assert_clean();
}

#[test]
fn frames_larger_than_the_ring_go_through_in_parts() {
    let backend = common::boot();
    // A 64 KiB ring: frames up to 1 MiB must be split by the writer side too.
    let cfg = Config {
        bytes: 64 << 20,
        frame_min: 100 << 10,
        frame_max: 1 << 20,
        extent_min: 1,
        extent_max: 512 << 10,
        seed: 0xB16,
        ..Config::default()
    };
    let report = stream_through(&backend, &request::stream_format(), Some(64 << 10), &cfg);
    assert!(report.parts > report.frames, "nearly every frame arrives in parts");
    backend.shutdown().assert_clean();
}

#[test]
fn zero_length_frames_and_tiny_buffers() {
    let backend = common::boot();
    let cfg = Config {
        bytes: 2 << 20,
        frame_min: 0,
        frame_max: 300,
        extent_min: 1,
        extent_max: 64,
        frames_per_write: 32,
        headers_per_read: 32,
        seed: 7,
        ..Config::default()
    };
    stream_through(&backend, &request::stream_format(), Some(4096), &cfg);
    backend.shutdown().assert_clean();
}

#[test]
fn pcm_streams_like_bytes() {
    let backend = common::boot();
    let cfg = Config { bytes: 32 << 20, seed: 0x9C3, ..Config::default() };
    stream_through(&backend, &request::pcm_format(2, 16, 48_000), None, &cfg);
    backend.shutdown().assert_clean();
}

#[test]
fn two_filters_stream_at_once() {
    let backend = common::boot();
    let cfg = |seed| Config { bytes: 128 << 20, seed, ..Config::default() };
    std::thread::scope(|s| {
        let a = s.spawn(|| stream_through(&backend, &request::stream_format(), None, &cfg(1)));
        let b = s
            .spawn(|| stream_through(&backend, &request::pcm_format(8, 32, 192_000), Some(1 << 20), &cfg(2)));
        assert!(a.join().expect("first filter").bytes >= 128 << 20);
        assert!(b.join().expect("second filter").bytes >= 128 << 20);
    });
    backend.shutdown().assert_clean();
}

/// F2: headers whose flags make `KsProbeStreamIrp` build MDLs ksring does not expect — an unlocked,
/// unmapped placeholder for `PERSIST_SAMPLE|SAMPLE_PERSISTED`, a second MDL for `METADATA` — are
/// refused with `STATUS_INVALID_PARAMETER`; ksring maps no MDL itself and leaves no unlocked MDL
/// on an IRP it completes (the verifier reports `MDL_NOT_LOCKED` for either).
#[test]
fn headers_with_flags_ksring_does_not_implement_are_refused() {
    use ksabi::{IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, KsStreamOptions, STATUS_INVALID_PARAMETER};
    use ksclient::io::InFlight;
    use ksclient::request::{HEADER_SIZE, Header};

    let persisted = (KsStreamOptions::PERSIST_SAMPLE | KsStreamOptions::SAMPLE_PERSISTED).bits();
    let backend = common::boot();
    let mut got = Vec::new();
    let frames_in;
    {
        let rig = common::rig(&backend);
        for (code, pin, flags, size) in [
            (IOCTL_KS_READ_STREAM, rig.output.handle(), persisted, HEADER_SIZE),
            (IOCTL_KS_WRITE_STREAM, rig.input.handle(), persisted, HEADER_SIZE),
            (IOCTL_KS_WRITE_STREAM, rig.input.handle(), KsStreamOptions::METADATA.bits(), 0xA0),
        ] {
            let mut memory = backend.alloc(4096);
            let base = memory.as_ptr() as u64;
            let used = if code == IOCTL_KS_WRITE_STREAM { 8 } else { 0 };
            let header = Header {
                data: base + 1024,
                frame_extent: 8,
                data_used: used,
                options_flags: flags,
                ..Header::default()
            };
            let bytes = memory.bytes_mut();
            #[allow(clippy::cast_possible_truncation)] // 56 or 160
            header.write(bytes, 0, size as u32);
            bytes[0x80..0x84].copy_from_slice(&16u32.to_le_bytes());
            bytes[0x88..0x90].copy_from_slice(&(base + 2048).to_le_bytes());
            got.push((flags, InFlight::submit(&backend, pin, code, memory, size).wait().status));
        }
        frames_in = common::stats(&rig.filter).frames_in;
    }
    let report = backend.shutdown();
    report.assert_clean();
    for (flags, status) in got {
        assert_eq!(status, STATUS_INVALID_PARAMETER, "OptionsFlags {flags:#x}");
    }
    assert_eq!(frames_in, 0, "nothing reached the ring");
}

/// A stream request ks.sys cannot build an MDL for (`IoAllocateMdl` out of memory: ReactOS'
/// `KsProbeStreamIrp` returns `STATUS_INSUFFICIENT_RESOURCES`), a write or a read, is refused
/// with that status and changes nothing: the ring's statistics and the driver's pool are as they
/// were, and the stream goes on with the next request, byte for byte.
#[test]
fn a_stream_request_without_memory_for_its_mdl_is_refused_and_changes_nothing() {
    use ksclient::io::InFlight;
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let first = common::bytes(3, 5000);
        let header = common::meta(0, 0, 1);
        assert_eq!(
            InFlight::write(&backend, rig.input.handle(), &[(&first[..], header)]).wait().status,
            STATUS_SUCCESS
        );
        let (stats, pool) = (common::stats(&rig.filter), common::pool_bytes(&backend));

        backend.machine().fail_pool_allocation_after(0);
        let second = common::bytes(9, 3000);
        let write = InFlight::write(&backend, rig.input.handle(), &[(&second[..], header)]).wait();
        backend.machine().stop_failing_pool_allocations();
        assert_eq!(write.status, ksabi::STATUS_INSUFFICIENT_RESOURCES);
        backend.machine().fail_pool_allocation_after(0);
        let read = InFlight::read(&backend, rig.output.handle(), &[8192]).wait();
        backend.machine().stop_failing_pool_allocations();
        assert_eq!(read.status, ksabi::STATUS_INSUFFICIENT_RESOURCES);
        assert_eq!(common::stats(&rig.filter), stats, "the refusals changed the ring");
        assert_eq!(common::pool_bytes(&backend), pool, "the refusals left pool behind");

        let frames = InFlight::read(&backend, rig.output.handle(), &[8192]).frames();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].data, first, "the frame written before the refusals");
    }
    backend.shutdown().assert_clean();
}
