//! A kernel-mode client of the output pin (another driver) that resubmits its read from its own
//! completion routine — the usual way kernel KS clients stream (WINDOWS-AUDIT F5). Its completion
//! routine re-enters ksring's dispatch on the completing thread, so ksring must never complete an
//! IRP, or let a cancel routine complete one, while it holds one of its spin locks: kshost stops
//! the process with `SPINLOCK_ALREADY_OWNED` if it does (on Windows: a deadlock; Driver Verifier's
//! deadlock detection bug-checks with 0xC4).

mod common;

use std::time::Duration;

use ksabi::{STATUS_CANCELLED, STATUS_FILE_CLOSED, STATUS_SUCCESS};
use ksclient::Properties;
use ksclient::io::InFlight;

/// A cancel that arrives while ksring's read pump holds the kernel client's read (acquired from
/// the queue, looking for data in an empty ring): the pump releases it, `KsReleaseIrpOnCancelableQueue`
/// runs ksring's cancel routine, and the read completes cancelled — which must happen after
/// ksring's locks are dropped, because the client's completion routine sends the next read right
/// there. The next read then gets the frame written after it.
#[test]
fn a_read_cancelled_inside_a_release_completes_outside_the_locks() {
    let backend = common::boot();
    let rig = common::rig(&backend);
    let m = backend.machine();
    let handle = kernel_handle(&rig.output);
    // The first acquire of the client's first read (by the pump its own dispatch runs) meets a cancel.
    m.cancel_next_acquired_irp();
    let reader = m.kernel_reader(handle, 2, 64, 2).expect("kernel reader");
    let frame = common::bytes(3, 10);
    let mut write = InFlight::write(&backend, rig.input.handle(), &[(&frame, common::meta(0, 0, 0))]);
    assert_eq!(write.wait().status, STATUS_SUCCESS);
    let results = reader.finish(Duration::from_secs(10));
    assert_eq!(results.len(), 2, "both reads completed: {results:?}");
    assert_eq!(results[0].0.status, STATUS_CANCELLED, "the first read was cancelled empty");
    assert_eq!(results[1].0.status, STATUS_SUCCESS, "the resubmitted read got the frame");
    assert_eq!(results[1].1, 10);
    assert_eq!(common::stats(&rig.output).bytes_out, 10);
    drop(rig);
    backend.shutdown().assert_clean();
}

/// A kernel-mode client may hold a pin's file object past the pin's last handle (as an IRP-source
/// pin of another driver does): once the pin's cleanup has run, a stream request on it is refused
/// with `STATUS_FILE_CLOSED` — not taken as if the pin were still open (it would wait on a ring
/// nobody feeds) and not as a stopped pin's `STATUS_INVALID_DEVICE_STATE`.
#[test]
fn a_read_sent_after_the_pins_last_handle_closed_is_refused_as_closed() {
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let m = backend.machine();
        let handle = kernel_handle(&rig.output);
        let reader = m.kernel_reader_unstarted(handle, 1, 64).expect("kernel reader");
        rig.output.close().expect("the output pin's handle closes (the reader still holds its file object)");
        reader.start(1);
        let results = reader.finish(Duration::from_secs(10));
        assert_eq!(results.len(), 1, "the read completed: {results:?}");
        assert_eq!(results[0].0.status, STATUS_FILE_CLOSED, "{results:?}");
        assert_eq!(results[0].0.information, 0);
    }
    backend.shutdown().assert_clean();
}

/// The client's handle of `pin`, as kshost's kernel-mode senders take it.
fn kernel_handle(pin: &ksclient::Pin<'_>) -> kshost::Handle {
    kshost::Handle::from_raw(pin.handle().0)
}

/// A plain header over `extent` bytes, `used` of them filled.
fn header(extent: u32, used: u32) -> kshost::KernelHeader {
    kshost::KernelHeader { size: 56, extent, used, ..Default::default() }
}

/// A kernel sender's request that carries MDLs of its own over non-paged pool (as ksring's IRP
/// sources send): ks.sys builds none and ksring serves it as any other — written frames arrive
/// whole, a read's buffers are filled through the sender's MDLs — and the chain stays the
/// sender's (kshost's verifier checks every MDL at the end).
#[test]
fn a_kernel_request_with_mdls_of_its_own_is_served_as_any_other() {
    use ksabi::{IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM};
    use kshost::PresetMdls;
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let m = backend.machine();
        let input = kernel_handle(&rig.input);
        let output = kernel_handle(&rig.output);
        let built = m.kernel_mdls_built_by_probe();
        let pattern: Vec<u8> = (0..=250).collect();
        let timeout = Duration::from_secs(10);
        let headers = [header(100, 100), header(5000, 4000), header(1, 1)];
        let w =
            m.kernel_request(input, IOCTL_KS_WRITE_STREAM, &headers, &pattern, PresetMdls::NonPaged, timeout);
        let w = w.expect("the write completes");
        assert_eq!((w.io.status, w.io.information), (STATUS_SUCCESS, 4101), "{w:?}");
        let r = m.kernel_request(
            output,
            IOCTL_KS_READ_STREAM,
            &[header(8192, 0); 3],
            &[],
            PresetMdls::NonPaged,
            timeout,
        );
        let r = r.expect("the read completes");
        assert_eq!(r.io.status, STATUS_SUCCESS);
        let used: Vec<u32> = r.headers.iter().map(|h| h.DataUsed).collect();
        assert_eq!(used, [100, 4000, 1], "one frame per header, whole");
        let want =
            |from: usize, n: usize| (from..from + n).map(|i| pattern[i % pattern.len()]).collect::<Vec<u8>>();
        assert_eq!(&r.data[..100], want(0, 100).as_slice());
        assert_eq!(&r.data[8192..12192], want(100, 4000).as_slice());
        assert_eq!(r.data[16384], pattern[5100 % pattern.len()]);
        assert_eq!(m.kernel_mdls_built_by_probe(), built, "ks.sys built no MDL for either");
    }
    backend.shutdown().assert_clean();
}

/// Bad headers for a kernel request, each with the status ks.sys gives it (kshost's model of the
/// Windows 10/11 `KsProbeStreamIrp`; several headers where the order across headers matters).
#[allow(clippy::too_many_lines)] // a table of cases, one per bad header
fn bad_headers() -> Vec<(&'static str, u32, Vec<kshost::KernelHeader>, i32)> {
    use ksabi::KsStreamOptions as O;
    use ksabi::{
        IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER,
    };
    use kshost::KernelHeader;
    let typechanged = O::TYPECHANGED.bits();
    let h =
        |size, extent, used, options| KernelHeader { size, extent, used, options, ..KernelHeader::default() };
    let no_data =
        |options| KernelHeader { size: 56, extent: 64, used: 64, options, metadata: None, no_data: true };
    let persisted = (O::PERSIST_SAMPLE | O::SAMPLE_PERSISTED).bits();
    // A METADATA header of 0xA0 bytes naming a metadata buffer of `length` bytes, at an address or 0.
    let m = |length, address| KernelHeader {
        size: 0xA0,
        extent: 64,
        used: 64,
        options: O::METADATA.bits(),
        metadata: Some((length, address)),
        no_data: false,
    };
    vec![
        ("read, Size 0", IOCTL_KS_READ_STREAM, vec![h(0, 64, 0, 0)], STATUS_INVALID_BUFFER_SIZE),
        // ks.sys checks every header before ksring's own rules (a read needs room): its answer.
        (
            "read, no room, then SPLICEPOINT",
            IOCTL_KS_READ_STREAM,
            vec![h(56, 0, 0, 0), h(56, 64, 0, 1)],
            STATUS_INVALID_PARAMETER,
        ),
        (
            "write, BUFFEREDTRANSFER (not implemented), then Size 0",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 64, O::BUFFEREDTRANSFER.bits()), h(0, 64, 64, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, METADATA in a 56-byte header",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 64, O::METADATA.bits())],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "read, a second header's Size past the array",
            IOCTL_KS_READ_STREAM,
            vec![h(56, 64, 0, 0), h(64, 64, 0, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, no Data, then Size 0",
            IOCTL_KS_WRITE_STREAM,
            vec![no_data(0), h(0, 64, 64, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, PERSIST_SAMPLE|SAMPLE_PERSISTED without Data, then Size 0",
            IOCTL_KS_WRITE_STREAM,
            vec![no_data(persisted), h(0, 64, 64, 0)],
            STATUS_INVALID_PARAMETER,
        ),
        (
            "write, PERSIST_SAMPLE|SAMPLE_PERSISTED with Data, then Size 0",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 64, persisted), h(0, 64, 64, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, METADATA naming no buffer, then Size 0",
            IOCTL_KS_WRITE_STREAM,
            vec![m(16, false), h(0, 64, 64, 0)],
            STATUS_INVALID_PARAMETER,
        ),
        (
            "write, METADATA naming a buffer of 0 bytes, then Size 0",
            IOCTL_KS_WRITE_STREAM,
            vec![m(0, true), h(0, 64, 64, 0)],
            STATUS_INVALID_PARAMETER,
        ),
        (
            "write, METADATA naming a buffer, then Size 0",
            IOCTL_KS_WRITE_STREAM,
            vec![m(16, true), h(0, 64, 64, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, METADATA without bytes",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 0, 0, O::METADATA.bits())],
            STATUS_INVALID_PARAMETER,
        ),
        ("read, Size 60", IOCTL_KS_READ_STREAM, vec![h(60, 64, 0, 0)], STATUS_INVALID_BUFFER_SIZE),
        ("read, Size 48", IOCTL_KS_READ_STREAM, vec![h(48, 64, 0, 0)], STATUS_INVALID_BUFFER_SIZE),
        (
            "read, Size past the array",
            IOCTL_KS_READ_STREAM,
            vec![h(64, 64, 0, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        ("read, DataUsed 1", IOCTL_KS_READ_STREAM, vec![h(56, 64, 1, 0)], STATUS_INVALID_BUFFER_SIZE),
        ("read, SPLICEPOINT", IOCTL_KS_READ_STREAM, vec![h(56, 64, 0, 1)], STATUS_INVALID_PARAMETER),
        (
            "write, a second header of Size 0 and no bytes",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 64, 0), h(0, 0, 0, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, DataUsed past FrameExtent",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 65, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, a lone TYPECHANGED",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 64, typechanged)],
            STATUS_INVALID_PARAMETER,
        ),
        (
            "write, TYPECHANGED first of two",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 64, typechanged), h(56, 64, 64, 0)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
        (
            "write, TYPECHANGED second of two",
            IOCTL_KS_WRITE_STREAM,
            vec![h(56, 64, 64, 0), h(56, 64, 64, typechanged)],
            STATUS_INVALID_BUFFER_SIZE,
        ),
    ]
}

/// ks.sys checks no header of a request that arrives with MDLs of its own, so ksring checks them
/// itself: each bad header gets the status ks.sys gives the same request without MDLs (kshost's
/// model of the Windows 10/11 `KsProbeStreamIrp`), and the ring takes nothing. Before, ksring's
/// header walk stepped by `Size` unchecked: a header of `Size` 0 was refused for want of MDLs
/// (`STATUS_INSUFFICIENT_RESOURCES`) — or, with no bytes after a header with bytes, walked for ever.
#[test]
fn ks_sys_checks_no_header_of_a_request_with_mdls_of_its_own_so_ksring_does() {
    use ksabi::IOCTL_KS_WRITE_STREAM;
    use kshost::PresetMdls;
    let cases = bad_headers();
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let m = backend.machine();
        for (what, ioctl, headers, want) in &cases {
            let pin = if *ioctl == IOCTL_KS_WRITE_STREAM { &rig.input } else { &rig.output };
            let pin = kernel_handle(pin);
            for mdls in [PresetMdls::None, PresetMdls::NonPaged] {
                let r = m.kernel_request(pin, *ioctl, headers, &[7], mdls, Duration::from_secs(10));
                let r = r.unwrap_or_else(|s| panic!("{what} ({mdls:?}): not completed: {s:#x}"));
                assert_eq!((r.io.status, r.io.information), (*want, 0), "{what} ({mdls:?})");
            }
        }
        let s = common::stats(&rig.input);
        assert_eq!((s.frames_in, s.bytes_in), (0, 0), "the ring took nothing: {s:?}");
    }
    backend.shutdown().assert_clean();
}

/// ks.sys looks only at a chain's first MDL to decide how to treat them all, so a sender's chain
/// must be built one way throughout. kshost reports the two ways it is not, as Driver Verifier
/// would bug-check: an unbuilt MDL after a nonpaged first is mapped without being locked
/// (`MDL_NOT_LOCKED`); a nonpaged MDL after an unbuilt first is probed and locked (`MDL_MISUSE`).
/// The request fails either way.
#[test]
fn a_chain_of_mdls_built_two_ways_is_what_ks_sys_mishandles() {
    use ksabi::IOCTL_KS_READ_STREAM;
    use kshost::{PresetMdls, Rule};
    for (mdls, rule) in
        [(PresetMdls::LaterUnbuilt, Rule::MdlNotLocked), (PresetMdls::FirstUnbuilt, Rule::MdlMisuse)]
    {
        let backend = common::boot();
        {
            let rig = common::rig(&backend);
            let m = backend.machine();
            let output = kernel_handle(&rig.output);
            let r = m.kernel_request(
                output,
                IOCTL_KS_READ_STREAM,
                &[header(64, 0); 2],
                &[],
                mdls,
                Duration::from_secs(10),
            );
            let r = r.expect("the read completes");
            assert!(!ksabi::nt_success(r.io.status), "{mdls:?}: refused: {:#x}", r.io.status);
        }
        let report = backend.shutdown();
        assert!(report.has(rule), "{mdls:?}: {rule} reported: {}", report.describe());
    }
}

/// A kernel sender's request with an empty header array (`OutputBufferLength` 0, no MDLs), which
/// Windows' ks.sys lets through its probe — no header to check, no MDL to build — unlike a
/// user-mode one: ksring completes it at once with nothing moved, with and without data in the
/// ring, and the stream goes on as if it had not come.
#[test]
fn a_kernel_request_with_no_headers_completes_with_nothing_moved() {
    use ksabi::{IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM};
    use kshost::PresetMdls;
    let backend = common::boot();
    {
        let rig = common::rig(&backend);
        let m = backend.machine();
        let input = kernel_handle(&rig.input);
        let output = kernel_handle(&rig.output);
        let timeout = Duration::from_secs(10);
        let empty = |pin, ioctl| {
            let r = m.kernel_request(pin, ioctl, &[], &[], PresetMdls::None, timeout);
            let r = r.expect("it completes");
            (r.io.status, r.io.information)
        };
        let before = common::stats(&rig.filter);
        assert_eq!(empty(output, IOCTL_KS_READ_STREAM), (STATUS_SUCCESS, 0), "a read, the ring empty");
        assert_eq!(empty(input, IOCTL_KS_WRITE_STREAM), (STATUS_SUCCESS, 0), "a write");
        assert_eq!(common::stats(&rig.filter), before, "nothing counted");
        let pattern: Vec<u8> = (0..=250).collect();
        let w = m.kernel_request(
            input,
            IOCTL_KS_WRITE_STREAM,
            &[header(300, 300)],
            &pattern,
            PresetMdls::None,
            timeout,
        );
        assert_eq!(w.expect("the write completes").io.status, STATUS_SUCCESS);
        assert_eq!(empty(output, IOCTL_KS_READ_STREAM), (STATUS_SUCCESS, 0), "a read, a frame in the ring");
        let r =
            m.kernel_request(output, IOCTL_KS_READ_STREAM, &[header(512, 0)], &[], PresetMdls::None, timeout);
        let r = r.expect("the read completes");
        assert_eq!((r.io.status, r.headers[0].DataUsed), (STATUS_SUCCESS, 300), "the frame, whole");
        let want: Vec<u8> = (0..300).map(|i| pattern[i % pattern.len()]).collect();
        assert_eq!(&r.data[..300], want.as_slice(), "its bytes");
    }
    backend.shutdown().assert_clean();
}
