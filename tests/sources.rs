//! What an IRP-source pin holds when it stops: the frames it took from its ring (push) or read
//! from its sink (pull) and has not delivered are dropped and counted as discarded — exactly, so
//! that every byte a filter took in is accounted for: delivered downstream, or discarded.

mod common;

use std::time::Duration;

use ksabi::{KSSTATE, KSSTATE_RUN, KSSTATE_STOP, STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_SUCCESS};
use ksclient::io::InFlight;
use ksclient::request::{self, Connect, Header};
use ksclient::{Filter, Pin, Properties};
use ksring_api::{KsRingStatistics, MIN_CAPACITY, PIN_INPUT, PIN_OUTPUT};

/// A pin of `filter` (factory `pin`) that is an IRP source connected to `target`.
fn source<'b>(filter: &Filter<'b>, pin: u32, target: &Pin<'b>) -> Pin<'b> {
    let mut c = Connect::new(pin, request::stream_format());
    c.pin_to_handle = target.handle().0;
    filter.create_pin(&c).expect("IRP-source pin")
}

/// `count` frames of `len` bytes.
fn frames(count: usize, len: usize) -> Vec<Vec<u8>> {
    (0..count).map(|k| common::bytes(u8::try_from(k % 251).unwrap(), len)).collect()
}

fn write_all(backend: &ksclient::emulated::Emulated, pin: &Pin<'_>, frames: &[Vec<u8>]) {
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), Header::default())).collect();
    assert_eq!(InFlight::write(backend, pin.handle(), &list).wait().status, STATUS_SUCCESS);
}

/// Appends the frames a read got to `got`, joining parts: a frame the writer's hold budget cut may
/// reach a reader in two headers, the first marked `CONTINUES` (the documented contract). `open`:
/// the last header before these continues; returns whether the last of these does.
fn join_parts(got: &mut Vec<Vec<u8>>, frames: Vec<ksclient::io::Frame>, mut open: bool) -> bool {
    for f in frames {
        match got.last_mut() {
            Some(last) if open => last.extend_from_slice(&f.data),
            _ => got.push(f.data),
        }
        open = f.header.options_flags & ksring_api::KSRING_OPTIONSF_CONTINUES != 0;
    }
    open
}

/// Which filter of a pair gets the smallest ring (4 KiB; the other keeps the default 4 MiB).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Small {
    Neither,
    Upstream,
    Downstream,
}

/// F1 (a client writes its input) whose output is a push source into F2's input; F2's output is
/// an ordinary pin. Fields drop in order: pins, then filters.
struct PushPair<'b> {
    push: Pin<'b>,
    f1_in: Pin<'b>,
    f2_out: Pin<'b>,
    f2_in: Pin<'b>,
    f2: Filter<'b>,
    f1: Filter<'b>,
}

/// Opens a [`PushPair`], every pin in RUN but the source, which goes to `source_state`.
fn push_pair(backend: &ksclient::emulated::Emulated, small: Small, source_state: KSSTATE) -> PushPair<'_> {
    let pair = push_pair_in_stop(backend, small);
    for pin in [&pair.f2_out, &pair.f2_in, &pair.f1_in] {
        assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    }
    assert_eq!(pair.push.set_state(source_state).status, STATUS_SUCCESS);
    pair
}

/// A [`PushPair`] connected, every pin in STOP (no ring allocated yet).
fn push_pair_in_stop(backend: &ksclient::emulated::Emulated, small: Small) -> PushPair<'_> {
    let format = request::stream_format();
    let f1 = Filter::open_first(backend).expect("F1");
    let f2 = Filter::open_first(backend).expect("F2");
    for (filter, which) in [(&f1, Small::Upstream), (&f2, Small::Downstream)] {
        if small == which {
            assert_eq!(filter.set_capacity(MIN_CAPACITY).status, STATUS_SUCCESS);
        }
    }
    let f2_in = f2.connect(PIN_INPUT, &format).expect("F2.in");
    let f2_out = f2.connect(PIN_OUTPUT, &format).expect("F2.out");
    let f1_in = f1.connect(PIN_INPUT, &format).expect("F1.in");
    let push = source(&f1, PIN_OUTPUT, &f2_in);
    PushPair { push, f1_in, f2_out, f2_in, f2, f1 }
}

/// F2 (a client writes its input) whose output F3's input pulls from, an IRP source; F3's output
/// is an ordinary pin. Fields drop in order: pins, then filters.
struct PullPair<'b> {
    pull: Pin<'b>,
    f3_out: Pin<'b>,
    f2_out: Pin<'b>,
    f2_in: Pin<'b>,
    f3: Filter<'b>,
    f2: Filter<'b>,
}

/// Opens a [`PullPair`], every pin in RUN but the source, which goes to `source_state`.
fn pull_pair(backend: &ksclient::emulated::Emulated, small: Small, source_state: KSSTATE) -> PullPair<'_> {
    let capacity = |which| (small == which).then_some(MIN_CAPACITY);
    pull_pair_with(backend, [capacity(Small::Upstream), capacity(Small::Downstream)], source_state)
}

/// A [`PullPair`] whose F2 and F3 rings have the given capacities (or the driver's).
fn pull_pair_with(
    backend: &ksclient::emulated::Emulated,
    capacities: [Option<u32>; 2],
    source_state: KSSTATE,
) -> PullPair<'_> {
    let format = request::stream_format();
    let f2 = Filter::open_first(backend).expect("F2");
    let f3 = Filter::open_first(backend).expect("F3");
    for (filter, capacity) in [&f2, &f3].into_iter().zip(capacities) {
        if let Some(bytes) = capacity {
            assert_eq!(filter.set_capacity(bytes).status, STATUS_SUCCESS);
        }
    }
    let f2_in = f2.connect(PIN_INPUT, &format).expect("F2.in");
    let f2_out = f2.connect(PIN_OUTPUT, &format).expect("F2.out");
    let f3_out = f3.connect(PIN_OUTPUT, &format).expect("F3.out");
    let pull = source(&f3, PIN_INPUT, &f2_out);
    for pin in [&f2_in, &f2_out, &f3_out] {
        assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    }
    assert_eq!(pull.set_state(source_state).status, STATUS_SUCCESS);
    PullPair { pull, f3_out, f2_out, f2_in, f3, f2 }
}

/// A read of `extents` on `pin`: whether it completed within `ms` milliseconds (if not, it is
/// cancelled), and the frames it returned.
fn read_within(
    backend: &ksclient::emulated::Emulated,
    pin: &Pin<'_>,
    extents: &[usize],
    ms: u32,
) -> (bool, Vec<ksclient::io::Frame>) {
    let mut read = InFlight::read(backend, pin.handle(), extents);
    let came = (0..ms).any(|_| {
        std::thread::sleep(Duration::from_millis(1));
        read.poll().is_some()
    });
    if !came {
        pin.cancel().expect("cancel the waiting read");
    }
    (came, read.frames())
}

/// Reads `pin` (1 KiB headers) into `got` until a read brings nothing within a second.
fn read_until_quiet(backend: &ksclient::emulated::Emulated, pin: &Pin<'_>, got: &mut Vec<Vec<u8>>) {
    loop {
        let (came, frames) = read_within(backend, pin, &[1024; 8], 1000);
        got.extend(frames.into_iter().map(|f| f.data));
        if !came {
            return;
        }
    }
}

/// Resets `pin`: `KSRESET_BEGIN`, then `KSRESET_END`.
fn reset(pin: &Pin<'_>) {
    assert_eq!(pin.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
    assert_eq!(pin.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
}

/// A client's own 100-byte write to `pin`, waited for.
fn write_own(backend: &ksclient::emulated::Emulated, pin: &Pin<'_>) -> ksclient::Io {
    let own = common::bytes(7, 100);
    InFlight::write(backend, pin.handle(), &[(own.as_slice(), Header::default())]).wait()
}

/// Stops F1's push source's next pass where it lets go of F1's ring lock (kshost's hold point on
/// a work-item thread), kicking it with a state change of F2's output that moves nothing.
fn stop_the_push_sources_next_pass(
    backend: &ksclient::emulated::Emulated,
    f2_out: &Pin<'_>,
) -> kshost::Preemption {
    let pass = backend.machine().preempt_after_hold_in_work_item(0);
    assert_eq!(f2_out.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
    assert!(pass.wait_paused(Duration::from_secs(10)), "the source's pass ran");
    pass
}

/// `got`, numbered frames of `sent` read from F2 after its input's reset, came in order and whole;
/// F1's source (`s1`) sent them all and dropped none; what F2 (`s2`) did not deliver, its reset
/// flushed.
fn assert_delivered_in_order(
    got: &[Vec<u8>],
    sent: &[Vec<u8>],
    s1: &ksring_api::KsRingStatistics,
    s2: &ksring_api::KsRingStatistics,
) {
    let n = sent.len() as u64;
    let order = common::numbers(got);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "in order, none twice: {order:?}");
    assert!(got.iter().zip(&order).all(|(f, &k)| *f == sent[k]), "each frame whole");
    assert_eq!((s1.discarded_frames, s1.frames_out), (0, n), "the source sent all: {s1:?}");
    assert_eq!(order.len() as u64 + s2.discarded_frames, n, "read or flushed by F2's reset: {s2:?}");
}

/// A push source (F1's output into F2's input) whose writes wait at F2's full 4 KiB ring, then
/// STOP on it: what it took out of F1's ring and F2 did not accept is discarded, and F1's
/// counters balance — every frame and byte F1 took in reached F2 or was discarded.
#[test]
fn a_push_source_stopping_counts_what_it_held_as_discarded() {
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in: _f2_in, f2_out, f1_in, push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        write_all(&backend, &f1_in, &frames(40, 1000));
        assert!(common::settles(|| common::stats(&f2).pending_writes > 0), "the source's writes wait at F2");
        assert_eq!(push.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
        let balanced = |s1: &KsRingStatistics, s2: &KsRingStatistics| {
            s1.frames_in == s2.frames_in + s1.discarded_frames
                && s1.bytes_in == s2.bytes_in + s1.discarded_bytes
        };
        let settled = common::settles(|| balanced(&common::stats(&f1), &common::stats(&f2)));
        let (s1, s2) = (common::stats(&f1), common::stats(&f2));
        assert!(
            settled,
            "F1 took in {} frames / {} bytes; F2 {} / {}; F1 discarded {} / {}; {s1:?}",
            s1.frames_in, s1.bytes_in, s2.frames_in, s2.bytes_in, s1.discarded_frames, s1.discarded_bytes
        );
        assert!(s2.bytes_in > 0 && s1.discarded_bytes > 0, "some went through, some was held: {s1:?}");
        assert_eq!((s1.frames_in, s1.bytes_in), (40, 40_000));
        // Back to RUN, the source streams again (a STOP ends once nothing is in flight).
        let mut reader = InFlight::read(&backend, f2_out.handle(), &[8192; 8]);
        drop(reader.frames());
        assert_eq!(push.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let before = common::stats(&f2).bytes_in;
        write_all(&backend, &f1_in, &frames(2, 1000));
        assert!(common::settles(|| common::stats(&f2).bytes_in == before + 2000), "the source runs again");
    }
    backend.shutdown().assert_clean();
}

/// A pull source (F3's input reading F2's output) whose reads filled F3's 4 KiB ring (nobody reads
/// F3), then STOP on it: F3 accounts for every byte it pulled from F2 as discarded (STOP discards
/// its ring, and what a read brings back after it). Nothing enters F3's ring after the STOP (it
/// did once: the source's work item, running after the STOP's discard, still handed held reads
/// to the ring).
#[test]
fn a_pull_source_stopping_counts_what_it_held_as_discarded() {
    let backend = common::boot();
    {
        let PullPair { f2, f3, f2_in, f2_out: _f2_out, f3_out, pull } =
            pull_pair(&backend, Small::Downstream, KSSTATE_RUN);
        // 1000- and 5000-byte frames in turn: F3's 4 KiB ring has room for one 2024-byte read
        // header at a time — a whole 1000-byte frame, or a part of the next.
        let sent: Vec<Vec<u8>> = (0..40)
            .map(|k| common::bytes(u8::try_from(k).unwrap(), if k % 2 == 0 { 1000 } else { 5000 }))
            .collect();
        write_all(&backend, &f2_in, &sent);
        // Its reads name space in F3's ring: once that is full, it reads no more.
        assert!(
            common::settles(|| {
                let (s2, s3) = (common::stats(&f2), common::stats(&f3));
                s2.bytes_out == s3.bytes_in && s3.fill > 0
            }),
            "the pull source fills F3's ring"
        );
        assert_eq!(pull.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
        // Bytes: the ring's discard counts a frame's parts one by one (`discarded_frames` is
        // "frames or parts"), so only the bytes balance exactly here.
        let settled = common::settles(|| {
            let (s2, s3) = (common::stats(&f2), common::stats(&f3));
            s2.bytes_out == s3.discarded_bytes
        });
        let (s2, s3) = (common::stats(&f2), common::stats(&f3));
        assert!(
            settled,
            "F3 pulled {} frames / {} bytes, discarded {} / {}: {s3:?}",
            s2.frames_out, s2.bytes_out, s3.discarded_frames, s3.discarded_bytes
        );
        assert_eq!(s3.bytes_out, 0, "nobody read F3");
        assert_eq!(s3.fill, 0, "nothing entered F3's ring after its input went to STOP");
        // Back to RUN, the source reads again: what F2 still had, then what it takes in now,
        // reaches F3's reader — every byte after those discarded, in order.
        assert_eq!(pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let more = common::bytes(9, 700);
        write_all(&backend, &f2_in, std::slice::from_ref(&more));
        let pulled = usize::try_from(s2.bytes_out).unwrap();
        let expected = [&sent.concat()[pulled..], &more[..]].concat();
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let (came, frames) = read_within(&backend, &f3_out, &[4096; 8], 5000);
            assert!(came, "the source runs again: {} of {} bytes came", got.len(), expected.len());
            got.extend(frames.into_iter().flat_map(|f| f.data));
        }
        assert!(got == expected, "F3's reader gets the rest of F2's stream, in order");
    }
    backend.shutdown().assert_clean();
}

/// A pull source whose sink's last handle closes (F2's output) ends its own filter's input after
/// everything it read — its reads fill its small ring; what F2 still had is F2's: F3's reader gets
/// every byte the source read, in order, then the end of the stream.
#[test]
fn a_pull_source_whose_sink_closes_ends_its_filters_input_after_all_it_read() {
    use ksabi::KsStreamOptions;
    let backend = common::boot();
    {
        // The source starts once all of it is in F2's ring: its reads then take the 20 frames in
        // two (16 headers each), whatever the threads' timing — started first, it could be
        // served a frame per read and hold only four before F3's small ring stops it.
        let PullPair { f2, f3, f2_in, f2_out, f3_out, pull } =
            pull_pair(&backend, Small::Downstream, ksabi::KSSTATE_PAUSE);
        let sent = frames(20, 1000);
        write_all(&backend, &f2_in, &sent);
        assert_eq!(pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        // Its reads name space in F3's ring: it reads what that holds, and F2 keeps the rest.
        assert!(
            common::settles(|| {
                let (s2, s3) = (common::stats(&f2), common::stats(&f3));
                s3.fill > 0 && s2.bytes_out == s3.bytes_in
            }),
            "the source read what F3's ring holds"
        );
        f2_out.close().expect("F2.out's handle closes");
        let read = usize::try_from(common::stats(&f2).frames_out).unwrap();
        assert!(read > 0 && read < sent.len(), "F2 gave {read} of {} frames", sent.len());
        let sent = &sent[..read];
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut ended = false;
        while !ended && got.len() <= sent.len() {
            // Room for more than the ring holds: a read drains it at once, so an end of stream
            // given while the source still holds frames would show up before them.
            let (came, frames) = read_within(&backend, &f3_out, &[4096; 8], 5000);
            if !came {
                break;
            }
            for f in frames {
                ended |= f.header.options_flags & KsStreamOptions::ENDOFSTREAM.bits() != 0;
                if !f.data.is_empty() {
                    got.push(f.data);
                }
            }
        }
        assert!(got == sent, "{} of {} frames came out, in order", got.len(), sent.len());
        assert!(ended, "then the end of the stream");
    }
    backend.shutdown().assert_clean();
}

/// A push source whose writes wait at F2's full input when F2's input is reset: its writes come
/// back cancelled (what F2 accepted before stays accepted), F2 refuses new ones until the reset
/// ends, then the source sends what F2 did not take again — in order, nothing lost or repeated,
/// nothing discarded by the source: every frame F1 took in was accepted by F2 once, and F2's
/// reader gets those its reset did not flush, in order.
#[test]
fn a_push_source_sends_again_what_a_resetting_sink_did_not_take() {
    const N: usize = 100;
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in, f2_out, f1_in, push: _push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        // Each frame says which it is in its first two bytes. 1024 bytes: a hold's budget ends on
        // a frame's edge (so no frame is in two requests when F2 resets, which would cut it).
        let sent = common::numbered(N, 1024);
        write_all(&backend, &f1_in, &sent);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let read = |got: &mut Vec<Vec<u8>>| {
            let (came, frames) = read_within(&backend, &f2_out, &[1024; 8], 5000);
            got.extend(frames.into_iter().map(|f| f.data));
            came
        };
        // The source's four requests carry 16 frames each; reading 20 frames lets the first
        // complete and its slot go again with newer frames — sent after the other three.
        while got.len() < 20 {
            assert!(read(&mut got), "F2 delivers");
        }
        assert!(
            common::settles(|| common::stats(&f2).pending_writes >= 4),
            "all four requests wait at F2 again"
        );
        // While F2 resets, the source sends once at most: a resend F2 refuses, after which nothing
        // newer may go (F2's reset could end before it, and take it first). kshost stops the work
        // routine before a second send, if one comes.
        let second_send = backend.machine().preempt_before_nth("IofCallDriver", 1);
        assert_eq!(f2_in.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
        let sent_twice_while_resetting = second_send.wait_paused(Duration::from_millis(500));
        assert_eq!(f2_in.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
        second_send.resume();
        while read(&mut got) && common::stats(&f2).frames_in < N as u64 + 1 {
            if common::stats(&f1).frames_out == N as u64 && common::stats(&f2).fill == 0 {
                break;
            }
        }
        let (s1, s2) = (common::stats(&f1), common::stats(&f2));
        let n = N as u64;
        assert_eq!((s1.discarded_frames, s1.frames_out, s2.frames_in), (0, n, n), "{s1:?} {s2:?}");
        let order = common::numbers(&got);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "in order, none twice: {order:?}");
        assert!(got.iter().zip(&order).all(|(f, &k)| *f == sent[k]), "each frame whole");
        assert_eq!(order.len() as u64 + s2.discarded_frames, n, "read or flushed by F2's reset");
        assert!(!sent_twice_while_resetting, "a request went after one F2 refused");
    }
    backend.shutdown().assert_clean();
}

/// A push source that takes frames out of its filter's full ring lets the writer waiting for
/// that room go on: a client's write larger than F1's 4 KiB ring completes once F1's source has
/// forwarded enough of it to F2 (nobody else drains F1).
#[test]
fn a_push_source_draining_its_ring_lets_the_writer_go_on() {
    let backend = common::boot();
    {
        let PushPair { f1: _f1, f2, f2_in: _f2_in, f2_out: _f2_out, f1_in, push: _push } =
            push_pair(&backend, Small::Upstream, KSSTATE_RUN);
        let sent = frames(40, 1000);
        let list: Vec<(&[u8], Header)> = sent.iter().map(|f| (f.as_slice(), Header::default())).collect();
        let mut write = InFlight::write(&backend, f1_in.handle(), &list);
        assert!(
            common::settles(|| write.poll().is_some()),
            "the write of 40 000 bytes through a 4 KiB ring completed"
        );
        assert_eq!(write.wait().status, STATUS_SUCCESS);
        assert!(common::settles(|| common::stats(&f2).bytes_in == 40_000), "F2 got it all");
    }
    backend.shutdown().assert_clean();
}

/// Frames larger than the budget of one spin-lock hold through a push and a pull source: no hold
/// of a ring lock — the sources' own included — copies more than `ksring::HOLD_BUDGET`.
#[test]
fn sources_copy_within_the_hold_budget() {
    let backend = common::boot();
    {
        let format = request::stream_format();
        let f1 = Filter::open_first(&backend).expect("F1");
        let f2 = Filter::open_first(&backend).expect("F2");
        let f3 = Filter::open_first(&backend).expect("F3");
        let f2_in = f2.connect(PIN_INPUT, &format).expect("F2.in");
        let f2_out = f2.connect(PIN_OUTPUT, &format).expect("F2.out");
        let f1_in = f1.connect(PIN_INPUT, &format).expect("F1.in");
        let f3_out = f3.connect(PIN_OUTPUT, &format).expect("F3.out");
        let push = source(&f1, PIN_OUTPUT, &f2_in);
        let pull = source(&f3, PIN_INPUT, &f2_out);
        for pin in [&f2_in, &f2_out, &f3_out, &f1_in, &push, &pull] {
            assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        }
        backend.machine().reset_spin_lock_holds();
        let sent = frames(4, 200_000);
        write_all(&backend, &f1_in, &sent);
        let mut got = Vec::new();
        while got.len() < 800_000 {
            let mut read = InFlight::read(&backend, f3_out.handle(), &[200_000]);
            assert!(common::settles(|| read.poll().is_some()), "the chain delivers");
            got.extend(read.frames().into_iter().flat_map(|f| f.data));
        }
        assert!(got == sent.concat(), "every byte, in order");
        let holds = backend.machine().spin_lock_holds();
        let budget = ksring::HOLD_BUDGET as u64;
        assert!(
            holds.max_bytes <= budget,
            "{} bytes copied under one hold, budget {budget}",
            holds.max_bytes
        );
    }
    backend.shutdown().assert_clean();
}

/// A push source pin in PAUSE sends nothing: frames written into its filter wait in the ring,
/// and go to the sink once the source runs again.
#[test]
fn a_paused_push_source_sends_nothing() {
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in: _f2_in, f2_out: _f2_out, f1_in, push } =
            push_pair(&backend, Small::Neither, ksabi::KSSTATE_PAUSE);
        write_all(&backend, &f1_in, &frames(5, 1000));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(common::stats(&f2).bytes_in, 0, "nothing went while the source was paused");
        assert_eq!(common::stats(&f1).fill, 5 * (1000 + 40), "the frames wait in F1's ring");
        assert_eq!(push.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert!(common::settles(|| common::stats(&f2).bytes_in == 5000), "they go once it runs");
    }
    backend.shutdown().assert_clean();
}

/// Zero-length frames go through a push source like any other: F1 counts each out and F2 each in
/// (only the end-of-stream marker a source makes up itself is not a frame out).
#[test]
fn a_push_source_forwards_empty_frames_as_frames() {
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in: _f2_in, f2_out: _f2_out, f1_in, push: _push } =
            push_pair(&backend, Small::Neither, KSSTATE_RUN);
        let built = backend.machine().kernel_mdls_built_by_probe();
        let sent: Vec<Vec<u8>> =
            (0..12).map(|k| if k % 3 == 0 { Vec::new() } else { common::bytes(1, 100) }).collect();
        write_all(&backend, &f1_in, &sent);
        assert!(common::settles(|| common::stats(&f2).frames_in == 12), "F2 took all twelve");
        let s1 = common::stats(&f1);
        assert_eq!((s1.frames_in, s1.frames_out, s1.bytes_out), (12, 12, 800), "{s1:?}");
        // Requests mixing empty headers (no MDL: ks.sys pairs MDLs with headers that have bytes)
        // and full ones still carry MDLs of their own.
        assert_eq!(backend.machine().kernel_mdls_built_by_probe(), built, "ks.sys built no MDL");
    }
    backend.shutdown().assert_clean();
}

/// F2's reset cancels a push source's write after F2 took the first part of a frame (6000-byte
/// frames, F2's 4 KiB ring takes 2024-byte parts): the source sends only the rest of that frame
/// again — F2 takes every byte F1 took in exactly once (its reset flushed some of them).
#[test]
fn a_frame_a_resetting_sink_took_part_of_goes_again_from_where_it_was_cut() {
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in, f2_out, f1_in, push: _push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        write_all(&backend, &f1_in, &frames(4, 6000));
        assert!(common::settles(|| common::stats(&f2).pending_writes > 0), "the source's write waits at F2");
        assert!(!common::stats(&f2).bytes_in.is_multiple_of(6000), "F2 holds part of a frame");
        assert_eq!(f2_in.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
        assert_eq!(f2_in.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
        let (s1, s2) = drain_after_reset(&backend, &f1, &f2, &f2_out, 24_000);
        assert_eq!((s1.bytes_out, s2.bytes_in, s1.discarded_bytes), (24_000, 24_000, 0), "{s1:?} {s2:?}");
    }
    backend.shutdown().assert_clean();
}

/// Reads F2's output until F2 has taken `total` bytes from F1's push source with nothing left
/// pending (after F2's input was reset under it); fails if it never gets there. Returns both
/// filters' statistics.
fn drain_after_reset(
    backend: &ksclient::emulated::Emulated,
    f1: &Filter<'_>,
    f2: &Filter<'_>,
    f2_out: &Pin<'_>,
    total: u64,
) -> (ksring_api::KsRingStatistics, ksring_api::KsRingStatistics) {
    let done = || {
        let (s1, s2) = (common::stats(f1), common::stats(f2));
        s2.bytes_in >= total && s2.pending_writes == 0 && s1.bytes_out >= total
    };
    for _ in 0..100 {
        if done() {
            break;
        }
        read_within(backend, f2_out, &[8192; 4], 200);
    }
    let drained = common::settles(done);
    let (s1, s2) = (common::stats(f1), common::stats(f2));
    assert!(drained, "{s1:?} {s2:?}");
    (s1, s2)
}

/// A resetting sink that took a frame, an empty frame after it and the start of the next: the
/// source sends again only the rest of that next frame — the empty frame in between was taken
/// (bytes were accepted past it), so nothing is counted, or sent, twice.
#[test]
fn an_empty_frame_a_resetting_sink_took_is_not_where_the_rest_starts() {
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in, f2_out, f1_in, push } =
            push_pair(&backend, Small::Downstream, ksabi::KSSTATE_PAUSE);
        // All three in F1's ring before the source runs: one request carries them.
        write_all(&backend, &f1_in, &[vec![1; 1000], Vec::new(), vec![2; 6000]]);
        assert_eq!(push.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert!(common::settles(|| common::stats(&f2).pending_writes > 0), "the source's write waits at F2");
        let taken = common::stats(&f2).bytes_in;
        assert!(taken > 1000 && taken < 7000, "F2 took the first frame and part of the third: {taken}");
        assert_eq!(f2_in.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
        assert_eq!(f2_in.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
        let (s1, s2) = drain_after_reset(&backend, &f1, &f2, &f2_out, 7000);
        assert_eq!((s1.bytes_out, s2.bytes_in, s1.discarded_bytes), (7000, 7000, 0), "{s1:?} {s2:?}");
        // (F2 counts four frames in: the third frame's start, ended where the reset cut it, and
        // its rest.)
        assert_eq!(s1.frames_out, 3, "{s1:?}");
    }
    backend.shutdown().assert_clean();
}

/// A pull source pin in PAUSE reads nothing from its sink; empty frames it reads once it runs
/// are frames like any other — not the end of the stream — and F3's reader gets them all, then
/// waits for more.
#[test]
fn a_paused_pull_source_reads_nothing_and_empty_frames_are_not_the_end() {
    use ksabi::KsStreamOptions;
    let backend = common::boot();
    {
        let PullPair { f2, f3, f2_in, f2_out: _f2_out, f3_out, pull } =
            pull_pair(&backend, Small::Neither, ksabi::KSSTATE_PAUSE);
        let sent: Vec<Vec<u8>> =
            (0..6).map(|k| if k % 2 == 0 { Vec::new() } else { common::bytes(2, 300) }).collect();
        write_all(&backend, &f2_in, &sent);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(common::stats(&f2).bytes_out, 0, "nothing was read while the source was paused");
        assert_eq!(common::stats(&f2).pending_reads, 0, "not even a read is waiting at F2");
        assert_eq!(pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut read = InFlight::read(&backend, f3_out.handle(), &[512; 8]);
        assert!(common::settles(|| read.poll().is_some()), "the source runs");
        let got = read.frames();
        assert!(common::settles(|| common::stats(&f3).frames_in == 6), "all six frames reached F3");
        let eos = got.iter().any(|f| f.header.options_flags & KsStreamOptions::ENDOFSTREAM.bits() != 0);
        assert!(
            !eos,
            "an empty frame is not the end of the stream: {:?}",
            got.iter().map(|f| f.data.len()).collect::<Vec<_>>()
        );
        let (_, last) = read_within(&backend, &f3_out, &[512], 300);
        assert!(
            last.iter().all(|f| f.header.options_flags & KsStreamOptions::ENDOFSTREAM.bits() == 0),
            "F3's input did not end"
        );
    }
    backend.shutdown().assert_clean();
}

/// The end of the stream travels through a pull source (F2's input closes; F3's reader gets every
/// frame, then `ENDOFSTREAM`), and after it the source goes quiet: it sends no more reads (F2's
/// output would answer each at once with the end again, for ever) — no spin lock is taken any
/// more while nothing happens.
#[test]
fn a_pull_source_goes_quiet_after_the_end_of_the_stream() {
    use ksabi::KsStreamOptions;
    let backend = common::boot();
    {
        let PullPair { f2: _f2, f3: _f3, f2_in, f2_out: _f2_out, f3_out, pull: _pull } =
            pull_pair(&backend, Small::Neither, KSSTATE_RUN);
        write_all(&backend, &f2_in, &frames(3, 500));
        f2_in.close().expect("F2's input closes: the end of its stream");
        // The frames may come in one read and the end in the next.
        let mut got = Vec::new();
        let is_end =
            |f: &ksclient::io::Frame| f.header.options_flags & KsStreamOptions::ENDOFSTREAM.bits() != 0;
        while !got.iter().any(is_end) {
            let (came, frames) = read_within(&backend, &f3_out, &[512; 8], 5000);
            assert!(came, "F3's reader gets the stream");
            got.extend(frames);
        }
        assert_eq!(got.iter().filter(|f| !f.data.is_empty()).count(), 3, "every frame, then the end");
        std::thread::sleep(Duration::from_millis(50));
        let holds = backend.machine().spin_lock_holds().holds;
        std::thread::sleep(Duration::from_millis(100));
        let later = backend.machine().spin_lock_holds().holds;
        assert!(
            later - holds < 10,
            "the source still works after the end: {} spin-lock holds in 100 ms",
            later - holds
        );
    }
    backend.shutdown().assert_clean();
}

/// An IRP-source pin whose connection runs out of resources at any step — its pin block, its KS
/// object header, its activity, its work item (`IoAllocateWorkItem`), each slot's buffer,
/// bookkeeping and IRP (`IoAllocateIrp`), the source itself: Driver Verifier's low-resources
/// simulation fails `IoAllocateIrp` and `IoAllocateWorkItem` too — is refused with
/// `STATUS_INSUFFICIENT_RESOURCES` and leaves nothing behind: no instance, no pool block, the sink
/// untouched (it still takes a source afterwards), a clean machine at shutdown. Push and pull.
#[test]
fn an_irp_source_that_runs_out_of_resources_is_refused_cleanly() {
    use ksclient::Fail;
    let format = request::stream_format();
    for (source_pin, sink_pin) in [(PIN_OUTPUT, PIN_INPUT), (PIN_INPUT, PIN_OUTPUT)] {
        let mut refusals = 0;
        let mut connected = false;
        for n in 0..80 {
            let backend = common::boot();
            {
                let f1 = Filter::open_first(&backend).expect("F1");
                let f2 = Filter::open_first(&backend).expect("F2");
                let sink = f2.connect(sink_pin, &format).expect("the sink");
                let before = common::pool_bytes(&backend);
                let mut c = Connect::new(source_pin, format.clone());
                c.pin_to_handle = sink.handle().0;
                backend.machine().fail_pool_allocation_after(n);
                let made = f1.create_pin(&c);
                backend.machine().stop_failing_pool_allocations();
                match made {
                    Ok(source) => {
                        // Every allocation of the connection succeeded: nothing left to fail.
                        connected = true;
                        drop(source);
                    }
                    Err(e) => {
                        assert_eq!(
                            e,
                            Fail::Status(ksabi::STATUS_INSUFFICIENT_RESOURCES),
                            "failure after {n}"
                        );
                        refusals += 1;
                        backend.machine().settle();
                        assert_eq!(common::pool_bytes(&backend), before, "failure after {n}: pool left");
                        assert_eq!(
                            f1.instances(source_pin),
                            Ok((1, 0)),
                            "failure after {n}: an instance left"
                        );
                        drop(source(&f1, source_pin, &sink)); // the sink takes a source again
                    }
                }
            }
            backend.machine().settle();
            backend.shutdown().assert_clean();
            if connected {
                break;
            }
        }
        assert!(connected, "pin {source_pin}: still refused after 80 allocations");
        assert!(refusals >= 5, "pin {source_pin}: only {refusals} allocation steps failed");
    }
}

/// A push source sends its frames in place: each request names the frames' bytes in its filter's
/// ring, which keeps that space until the request has completed and every earlier one has too.
/// Both rings small (4 KiB) and the sink's reader slow (small reads, a pause between), so the
/// source's requests wait at the sink while the writer keeps trying to fill the source's ring:
/// space given back early would be written over under a waiting request. Every byte and every
/// frame's order is checked at the far end, and F1 copies nothing out (the hop is the sink's copy).
#[test]
fn a_push_source_sends_in_place_and_never_reuses_space_a_request_still_names() {
    let backend = common::boot();
    {
        let format = request::stream_format();
        let f1 = Filter::open_first(&backend).expect("F1");
        let f2 = Filter::open_first(&backend).expect("F2");
        for f in [&f1, &f2] {
            assert_eq!(f.set_capacity(MIN_CAPACITY).status, STATUS_SUCCESS);
        }
        let f2_in = f2.connect(PIN_INPUT, &format).expect("F2.in");
        let f2_out = f2.connect(PIN_OUTPUT, &format).expect("F2.out");
        let f1_in = f1.connect(PIN_INPUT, &format).expect("F1.in");
        let push = source(&f1, PIN_OUTPUT, &f2_in);
        for pin in [&f2_in, &f2_out, &f1_in, &push] {
            assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        }
        // 300 frames of 1..1500 bytes, each byte telling its frame and place.
        let sent: Vec<Vec<u8>> = (0..300usize)
            .map(|k| (0..=(k * 37) % 1500).map(|i| u8::try_from((k * 7 + i) % 251).unwrap()).collect())
            .collect();
        let total: usize = sent.iter().map(Vec::len).sum();
        let list: Vec<(&[u8], Header)> = sent.iter().map(|f| (f.as_slice(), Header::default())).collect();
        let mut write = InFlight::write(&backend, f1_in.handle(), &list);
        let mut got: Vec<u8> = Vec::new();
        let mut reads = 0;
        while got.len() < total && reads < 20_000 {
            let mut read = InFlight::read(&backend, f2_out.handle(), &[700]);
            assert!(common::settles(|| read.poll().is_some()), "the chain delivers");
            got.extend(read.frames().into_iter().flat_map(|f| f.data));
            reads += 1;
            std::thread::sleep(Duration::from_micros(200)); // a slow reader
        }
        assert_eq!(write.wait().status, STATUS_SUCCESS);
        let want: Vec<u8> = sent.concat();
        assert_eq!(got.len(), want.len(), "every byte arrives");
        if let Some(at) = got.iter().zip(&want).position(|(a, b)| a != b) {
            panic!("byte {at} differs: space under a waiting request was reused");
        }
        let s1 = common::stats(&f1);
        assert_eq!((s1.copied_out, s1.bytes_out), (0, total as u64), "F1 sends in place: no copy out");
        drop(push);
    }
    backend.machine().settle();
    backend.shutdown().assert_clean();
}

/// A push source sizes its requests' MDL blocks for its ring when it connects (4 KiB here); the
/// ring made larger after (1 MiB), requests naming more than the blocks hold go without MDLs of
/// their own and the sink's ks.sys builds them, as for any sender; the others still carry theirs.
/// Either way every byte arrives in order, and every MDL is accounted for at the end.
#[test]
fn a_push_source_whose_ring_grew_sends_what_its_mdls_cannot_describe_without_them() {
    let backend = common::boot();
    {
        let pair = push_pair_in_stop(&backend, Small::Upstream);
        assert_eq!(pair.f1.set_capacity(1 << 20).status, STATUS_SUCCESS, "no pin holds F1's ring yet");
        for pin in [&pair.f2_out, &pair.f2_in, &pair.f1_in, &pair.push] {
            assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        }
        let before = backend.machine().kernel_mdls_built_by_probe();
        let sent = common::numbered(64, 20_000);
        let list: Vec<(&[u8], Header)> = sent.iter().map(|f| (f.as_slice(), Header::default())).collect();
        let mut write = InFlight::write(&backend, pair.f1_in.handle(), &list);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut open = true;
        while got.len() < sent.len() {
            let mut read = InFlight::read(&backend, pair.f2_out.handle(), &[64 << 10; 4]);
            assert!(
                common::settles(|| read.poll().is_some()),
                "the pair delivers: {} frames so far",
                got.len()
            );
            open = join_parts(&mut got, read.frames(), open);
        }
        assert_eq!(write.wait().status, STATUS_SUCCESS);
        assert_eq!(common::numbers(&got), (0..64).collect::<Vec<_>>(), "every frame once, in order");
        assert_eq!(got, sent, "every byte");
        assert!(
            backend.machine().kernel_mdls_built_by_probe() > before,
            "requests past the blocks' room went without MDLs of their own"
        );
        let PushPair { push, f1_in, f2_out, f2_in, f2, f1 } = pair;
        drop((push, f1_in, f2_out, f2_in, f2, f1));
    }
    backend.machine().settle();
    backend.shutdown().assert_clean();
}

/// A pull source whose reads wait at an empty F2 — each names space reserved in F3's ring — when
/// F3's output is reset: the reset empties F3's ring of its frames but leaves that space reserved
/// (resetting the whole ring handed it to new reads while the old ones still named it, and the
/// old reads' frames were refused at their commit: F3's reader lost them). Then F2 gets frames:
/// F3's reader gets every one, in order, nothing discarded.
#[test]
fn a_reset_downstream_of_a_pull_source_keeps_the_space_its_reads_name() {
    let backend = common::boot();
    {
        let PullPair { f2, f3, f2_in, f2_out: _f2_out, f3_out, pull: _pull } =
            pull_pair(&backend, Small::Neither, KSSTATE_RUN);
        assert!(common::settles(|| common::stats(&f2).pending_reads > 0), "the source's reads wait at F2");
        assert_eq!(f3_out.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
        assert_eq!(f3_out.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
        let sent = frames(40, 3000);
        write_all(&backend, &f2_in, &sent);
        let mut got = Vec::new();
        let mut open = false;
        while got.len() < sent.len() || open {
            let (came, frames) = read_within(&backend, &f3_out, &[4096; 8], 5000);
            assert!(came, "{} of {} frames came", got.len(), sent.len());
            open = join_parts(&mut got, frames, open);
        }
        assert!(got == sent, "every frame, in order");
        assert_eq!(common::stats(&f3).discarded_bytes, 0, "nothing discarded");
    }
    backend.shutdown().assert_clean();
}

/// A pull source reading small frames sizes its read headers to them: F3's 64 KiB ring (nobody
/// reads it) fills with many 1000-byte frames — the first read, not knowing them yet, reserves
/// the largest piece (half the ring), and the rest take what they need. With every header the
/// largest piece, each frame held half the ring's space until read: one frame filled it. Each
/// read carries several frames: as many headers as fit a quarter of the ring.
#[test]
fn a_pull_source_sizes_its_reads_to_the_frames() {
    let backend = common::boot();
    {
        let PullPair { f2, f3, f2_in, f2_out: _f2_out, f3_out: _f3_out, pull } =
            pull_pair_with(&backend, [None, Some(64 << 10)], ksabi::KSSTATE_PAUSE);
        write_all(&backend, &f2_in, &frames(200, 1000));
        let irps_before = backend.machine().driver_irps_sent();
        assert_eq!(pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        // Settled: every read is back (what F2 gave is what F3 took) and no more come for 50 ms.
        // (Not "nothing moved": under load the source's first pass may not have run yet.)
        let (mut last, mut still_for) = (u64::MAX, 0);
        assert!(
            common::settles(|| {
                let (s2, s3) = (common::stats(&f2), common::stats(&f3));
                let still = s3.frames_in > 0 && s2.bytes_out == s3.bytes_in && s3.frames_in == last;
                last = s3.frames_in;
                still_for = if still { still_for + 1 } else { 0 };
                still_for >= 50
            }),
            "the source stops reading once F3's ring is full"
        );
        let s3 = common::stats(&f3);
        assert!(s3.frames_in >= 12, "F3's ring holds {} frames of 1000 bytes: {s3:?}", s3.frames_in);
        // And each read carries several (F2 had them all waiting): a read per frame would do.
        let reads = backend.machine().driver_irps_sent() - irps_before;
        assert!(reads * 3 <= s3.frames_in, "{reads} reads brought {} frames", s3.frames_in);
    }
    backend.shutdown().assert_clean();
}

/// A pull source whose upstream filter is empty has all four of its requests waiting there at
/// once, each naming its share of the source's ring.
#[test]
fn every_pull_request_fits_in_its_ring_at_once() {
    let backend = common::boot();
    {
        let PullPair { f2, f3, f2_in: _f2_in, f2_out: _f2_out, f3_out: _f3_out, pull: _pull } =
            pull_pair(&backend, Small::Neither, KSSTATE_RUN);
        assert!(
            common::settles(|| common::stats(&f2).pending_reads == 4),
            "four reads wait at F2: {:?}, F3 {:?}",
            common::stats(&f2),
            common::stats(&f3)
        );
    }
    backend.shutdown().assert_clean();
}

/// Only a filter between two IRP sources lets large frames pass through (`stream::write`'s
/// pass-through): one fed by a push source but read by nobody keeps what the source sends in its
/// ring, and one whose output a pull source reads takes a client's writes into its ring at once
/// (the client's write completes with the pull source in STOP, not reading).
#[test]
fn only_a_filter_between_two_sources_keeps_large_frames_out_of_its_ring() {
    let backend = common::boot();
    let sent = frames(8, 64 << 10);
    let bytes = (8 * (64 << 10)) as u64;
    {
        let PushPair { f1: _f1, f2, f2_in: _f2_in, f2_out: _f2_out, f1_in, push: _push } =
            push_pair(&backend, Small::Neither, KSSTATE_RUN);
        write_all(&backend, &f1_in, &sent);
        assert!(
            common::settles(|| common::stats(&f2).copied_in == bytes),
            "F2's ring took them: {:?}",
            common::stats(&f2)
        );
    }
    {
        let PullPair { f2, f3: _f3, f2_in, f2_out: _f2_out, f3_out: _f3_out, pull: _pull } =
            pull_pair(&backend, Small::Neither, KSSTATE_STOP);
        write_all(&backend, &f2_in, &sent);
        assert_eq!(common::stats(&f2).copied_in, bytes, "F2's ring took them");
    }
    backend.shutdown().assert_clean();
}

/// A STOP and a RUN of a pull source while its work routine is in the middle of a pass (stopped
/// by the test where its first read is about to be queued at F2): the pass stops sending once it
/// sees the STOP, the pass that drops what was in flight goes on reading once the pin runs again
/// — the kicks of the RUN, of F2's new data and of F3's reader were merged into it — and F3's
/// reader gets every byte written after, in order. Before: that pass only dropped (no pass came
/// after it, and F3's reader waited for ever), and reads sent after the STOP carried data read
/// after the RUN into the drop.
#[test]
fn a_pull_source_stopped_and_run_again_mid_pass_reads_everything_after() {
    let backend = common::boot();
    {
        let PullPair { f2: _f2, f3: _f3, f2_in, f2_out: _f2_out, f3_out, pull } =
            pull_pair(&backend, Small::Neither, ksabi::KSSTATE_PAUSE);
        let sent = frames(40, 1000);
        let preemption = backend.machine().preempt_before("KsAddIrpToCancelableQueue");
        assert_eq!(pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert!(
            preemption.wait_paused(Duration::from_secs(10)),
            "the source's first read stopped before F2 queued it"
        );
        assert_eq!(pull.set_state(KSSTATE_STOP).status, STATUS_SUCCESS);
        assert_eq!(pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        write_all(&backend, &f2_in, &sent);
        let mut read = InFlight::read(&backend, f3_out.handle(), &[4096; 16]);
        preemption.resume();
        let expected = sent.concat();
        let mut got = Vec::new();
        loop {
            let came = (0..2000).any(|_| {
                std::thread::sleep(Duration::from_millis(1));
                read.poll().is_some()
            });
            if !came {
                f3_out.cancel().expect("cancel the waiting read");
            }
            got.extend(read.frames().into_iter().flat_map(|f| f.data));
            if !came || got.len() >= expected.len() {
                break;
            }
            read = InFlight::read(&backend, f3_out.handle(), &[4096; 16]);
        }
        assert_eq!(got.len(), expected.len(), "every byte came");
        assert!(got == expected, "in order");
    }
    backend.shutdown().assert_clean();
}

/// A reset of the sink between two sends of one pass: the push source's first write (frames 0–15)
/// is cancelled by F2's `KSRESET_BEGIN` after F2 took 0–2 (the test stops the source's work
/// routine right after F2 copied them, kshost's preemption point), and the reset ends before the
/// pass sends its next write. The pass sends nothing newer than the cancelled write: its remainder
/// goes again first, and F2's reader gets 3–63 (0–2 were flushed by the reset), in order, nothing
/// discarded by the source. Before: the pass went on, and F2 took 16–63 before 3–15.
#[test]
fn a_push_source_sends_nothing_newer_before_a_write_its_sink_cancelled() {
    const N: usize = 64;
    let backend = common::boot();
    {
        let PushPair { f1, f2: _f2, f2_in, f2_out, f1_in, push } =
            push_pair(&backend, Small::Downstream, ksabi::KSSTATE_PAUSE);
        let sent = common::numbered(N, 1024);
        write_all(&backend, &f1_in, &sent);
        let preemption = backend.machine().preempt_after_hold(1024);
        assert_eq!(push.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        assert!(preemption.wait_paused(Duration::from_secs(10)), "F2 copied the first frames in");
        assert_eq!(f2_in.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
        assert_eq!(f2_in.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
        preemption.resume();
        let mut got: Vec<Vec<u8>> = Vec::new();
        while got.len() < N - 3 {
            let (came, frames) = read_within(&backend, &f2_out, &[1024; 8], 2000);
            got.extend(frames.into_iter().map(|f| f.data));
            if !came {
                break;
            }
        }
        let order = common::numbers(&got);
        assert_eq!(
            order,
            (3..N).collect::<Vec<_>>(),
            "the cancelled write's rest first, then the rest, in order"
        );
        assert!(got.iter().zip(&order).all(|(f, &k)| *f == sent[k]), "each frame whole");
        assert_eq!(common::stats(&f1).discarded_frames, 0, "the source dropped nothing");
    }
    backend.shutdown().assert_clean();
}

/// The window a sink's reset left open (`src/source/mod.rs`): F1's source is stopped just before it
/// sends a newer write (kshost's preemption point at its `IofCallDriver`) while its older writes
/// wait at F2's full input, and F2's input is reset — begun *and* ended — meanwhile. The reset
/// cancels the older writes; the newer one arrives after it ended. F2 refuses it until the source
/// has taken its cancelled writes back (it says so when nothing of it is in flight), so the
/// older writes' frames go again first: F2's reader gets what the reset did not flush, in order,
/// nothing dropped by the source. Before: F2 took the newer write at once, ahead of the older
/// ones' frames (64–79 before 18–63).
#[test]
fn a_reset_begun_and_ended_before_a_newer_write_arrives_does_not_let_it_overtake() {
    reset_while_a_newer_write_is_on_its_way(NewerWrite::BeforeDispatch);
}

/// As above, the reset begun and ended later still: while F2's dispatch routine, past its checks,
/// is about to queue the newer write (`KsAddIrpToCancelableQueue`). The reset's cancel did not
/// see it on the queue, so F2 cancels it itself once queued, and it goes again after the older
/// writes' frames.
#[test]
fn a_reset_begun_and_ended_while_a_newer_write_is_being_queued_does_not_let_it_overtake() {
    reset_while_a_newer_write_is_on_its_way(NewerWrite::BeforeQueue);
}

/// As above, the reset begun before the newer write is queued and ended right after (the
/// dispatch routine stopped after `KsAddIrpToCancelableQueue`, before it looks again): the reset's
/// end pumps F2's writes. It must not take the newer one, which the dispatch routine then cancels.
/// Before: the pump took it, ahead of the older writes' frames.
#[test]
fn a_reset_that_ends_while_a_newer_write_sits_queued_unchecked_does_not_let_it_overtake() {
    reset_while_a_newer_write_is_on_its_way(NewerWrite::AfterQueue);
}

/// Where the newer write is stopped while F2's input resets.
#[derive(Clone, Copy)]
enum NewerWrite {
    /// In the source's work routine, before `IofCallDriver`: begin and end.
    BeforeDispatch,
    /// In F2's dispatch routine, before `KsAddIrpToCancelableQueue`: begin and end.
    BeforeQueue,
    /// Before `KsAddIrpToCancelableQueue` for the begin, after it for the end.
    AfterQueue,
}

/// F1's source pushes 100 numbered frames into F2's 4 KiB input; its newer write is stopped as
/// `at` says while F2's input is reset; then everything F2 delivers must be in order.
fn reset_while_a_newer_write_is_on_its_way(at: NewerWrite) {
    const N: usize = 100;
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in, f2_out, f1_in, push: _push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        let sent = common::numbered(N, 1024);
        write_all(&backend, &f1_in, &sent);
        assert!(common::settles(|| common::stats(&f2).pending_writes >= 4), "all four writes wait at F2");
        // Reading lets F2 take in the first write; its slot goes again with newer frames.
        let mut newer = backend.machine().preempt_before("IofCallDriver");
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut paused = false;
        while !paused && got.len() < N {
            let (_, frames) = read_within(&backend, &f2_out, &[1024; 8], 200);
            got.extend(frames.into_iter().map(|f| f.data));
            paused = newer.wait_paused(Duration::from_millis(50));
        }
        assert!(paused, "the source was about to send a newer write");
        if !matches!(at, NewerWrite::BeforeDispatch) {
            // No read is in flight: the next queueing is the newer write's, in F2's dispatch.
            newer = newer.then_before("KsAddIrpToCancelableQueue");
            assert!(newer.wait_paused(Duration::from_secs(10)), "F2 was about to queue it");
        }
        assert!(common::stats(&f2).pending_writes > 0, "older writes wait at F2");
        assert_eq!(f2_in.reset(ksabi::KSRESET_BEGIN).status, STATUS_SUCCESS);
        if matches!(at, NewerWrite::BeforeDispatch) {
            assert_eq!(f2_in.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
            // F2 waits for the source to take its writes back: its writes only, not its reads.
            let mut read = InFlight::read(&backend, f2_out.handle(), &[1024]);
            std::thread::sleep(Duration::from_millis(20));
            assert!(read.poll().is_none(), "a read of F2's (empty) output waits, not refused");
            f2_out.cancel().expect("cancel the read");
            assert!(read.wait().status == STATUS_CANCELLED && read.frames().is_empty(), "it got nothing");
        }
        if matches!(at, NewerWrite::AfterQueue) {
            newer = newer.then_after("KsAddIrpToCancelableQueue");
            assert!(newer.wait_paused(Duration::from_secs(10)), "F2 queued it");
        }
        if !matches!(at, NewerWrite::BeforeDispatch) {
            assert_eq!(f2_in.reset(ksabi::KSRESET_END).status, STATUS_SUCCESS);
        }
        newer.resume();
        read_until_quiet(&backend, &f2_out, &mut got);
        assert_delivered_in_order(&got, &sent, &common::stats(&f1), &common::stats(&f2));
    }
    backend.shutdown().assert_clean();
}

/// A push source's pass stopped where it lets go of F1's ring lock, after it settled what had come
/// back (nothing) and before it took its kicks, while its four one-frame writes wait at F2's full
/// input, none of them taken in: F2's input is reset meanwhile, which cancels all four, and its end
/// kicks the source. That kick must wait for the pass that settles the cancelled writes: taken by
/// the stopped pass, the next one held the four writes, refused, with no kick to come (they gave
/// back no ring space, so no pump of F1's kicked either). Before: F2 got nothing more after its
/// reset.
#[test]
fn a_cancel_settled_after_the_kick_that_followed_it_does_not_stall_the_source() {
    const N: usize = 40;
    let backend = common::boot();
    {
        let PushPair { f1, f2, f2_in, f2_out, f1_in, push: _push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        let sent = common::numbered(N, 1024);
        // One frame a write, each taken by the source before the next: one frame a request, and
        // F2 takes whole requests until its ring is full.
        let mut k = 0;
        while common::stats(&f2).pending_writes < 4 {
            assert!(k < N, "F2's input fills");
            write_all(&backend, &f1_in, &sent[k..=k]);
            k += 1;
            let sent_on = |s: ksring_api::KsRingStatistics| s.frames_in + u64::from(s.pending_writes);
            assert!(common::settles(|| sent_on(common::stats(&f2)) == k as u64), "frame {k} went on to F2");
        }
        let taken_in = common::stats(&f2).frames_in;
        write_all(&backend, &f1_in, &sent[k..]);
        // A state change that moves nothing (F2's output is in RUN already) pumps F2 and kicks the
        // source, whose pass stops there.
        let pass = stop_the_push_sources_next_pass(&backend, &f2_out);
        let s2 = common::stats(&f2);
        assert_eq!((s2.pending_writes, s2.frames_in), (4, taken_in), "four writes wait, none taken in");
        reset(&f2_in);
        pass.resume();
        // Before anything else kicks it (a read at F2 does), the source sends again by itself.
        assert!(
            common::settles(|| common::stats(&f2).frames_in > taken_in),
            "F2 takes frames in again: {:?}",
            common::stats(&f1)
        );
        let mut got: Vec<Vec<u8>> = Vec::new();
        read_until_quiet(&backend, &f2_out, &mut got);
        assert_delivered_in_order(&got, &sent, &common::stats(&f1), &common::stats(&f2));
    }
    backend.shutdown().assert_clean();
}

/// A push source in PAUSE whose writes F2's reset cancelled says it has taken them back once
/// nothing of it is out, whether it flows or not: F2's other writers are not refused meanwhile (a
/// refused write kicks it). Before: F2 refused every write (`STATUS_DEVICE_NOT_READY`) until the
/// source ran again.
#[test]
fn a_paused_push_source_does_not_hold_its_sinks_other_writers_back_after_a_reset() {
    let backend = common::boot();
    {
        let PushPair { f1: _f1, f2, f2_in, f2_out: _f2_out, f1_in, push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        write_all(&backend, &f1_in, &frames(40, 1024));
        assert!(common::settles(|| common::stats(&f2).pending_writes > 0), "the source's writes wait at F2");
        assert_eq!(push.set_state(ksabi::KSSTATE_PAUSE).status, STATUS_SUCCESS);
        reset(&f2_in);
        let taken = common::settles(|| write_own(&backend, &f2_in).status == STATUS_SUCCESS);
        assert!(taken, "a client's write to F2's input is taken: {:?}", common::stats(&f2));
    }
    backend.shutdown().assert_clean();
}

/// A push source closed while its sink waits for it to acknowledge a cancel of its writes (its
/// pass stopped by kshost, F2's input reset meanwhile): F2 refuses its other writers until then —
/// and takes their writes again once the source is detached, before its cleanup has finished
/// waiting for that pass: nobody is left to acknowledge.
#[test]
fn a_push_source_closed_before_it_acknowledged_a_cancel_leaves_its_sink_taking_writes() {
    let backend = common::boot();
    {
        let PushPair { f1: _f1, f2, f2_in, f2_out, f1_in, push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        write_all(&backend, &f1_in, &frames(100, 1024));
        assert!(common::settles(|| common::stats(&f2).pending_writes > 0), "the source's writes wait at F2");
        let pass = stop_the_push_sources_next_pass(&backend, &f2_out);
        reset(&f2_in);
        let write = || write_own(&backend, &f2_in);
        assert_eq!(write().status, STATUS_DEVICE_NOT_READY, "refused until the source acknowledges");
        std::thread::scope(|s| {
            // Its cleanup detaches it, then waits for the stopped pass.
            let closing = s.spawn(move || drop(push));
            assert!(
                common::settles(|| write().status == STATUS_SUCCESS),
                "taken once the source is detached"
            );
            pass.resume();
            closing.join().expect("the source pin closed");
        });
    }
    backend.shutdown().assert_clean();
}

/// F2's input reset while its push source has no write out (nothing was written to F1; its pass
/// stopped by kshost, so it could not acknowledge anything): nothing of the source's was
/// cancelled and whatever it sends next is its oldest, so F2 refuses none of its writers — a
/// client's write straight after the reset is taken.
#[test]
fn a_reset_while_its_push_source_has_nothing_out_refuses_no_writer() {
    let backend = common::boot();
    {
        let PushPair { f1: _f1, f2: _f2, f2_in, f2_out, f1_in: _f1_in, push: _push } =
            push_pair(&backend, Small::Downstream, KSSTATE_RUN);
        let pass = stop_the_push_sources_next_pass(&backend, &f2_out);
        reset(&f2_in);
        assert_eq!(write_own(&backend, &f2_in).status, STATUS_SUCCESS, "taken at once");
        pass.resume();
    }
    backend.shutdown().assert_clean();
}

/// The pass-through's size rule in a filter between two sources (F1's push, F3's pull — paused,
/// so no read of F3's waits at F2): frames of `PASS_THROUGH_MIN` (16 KiB) wait in F1's write for a
/// read (F2 copies nothing into its ring), smaller ones go into F2's ring at once. Then F3's
/// source runs and its reader gets every byte, in order. (In a streaming chain a read of F3's is
/// nearly always waiting, so small frames mostly go straight into it too: only with no read
/// waiting does the rule show.)
#[test]
fn a_filter_between_two_sources_passes_only_large_frames_through() {
    let backend = common::boot();
    for (size, through) in [(16 << 10, true), ((16 << 10) - 1, false)] {
        let format = request::stream_format();
        let f1 = Filter::open_first(&backend).expect("F1");
        let f2 = Filter::open_first(&backend).expect("F2");
        let f3 = Filter::open_first(&backend).expect("F3");
        let f2_in = f2.connect(PIN_INPUT, &format).expect("F2.in");
        let f2_out = f2.connect(PIN_OUTPUT, &format).expect("F2.out");
        let f1_in = f1.connect(PIN_INPUT, &format).expect("F1.in");
        let f3_out = f3.connect(PIN_OUTPUT, &format).expect("F3.out");
        let push = source(&f1, PIN_OUTPUT, &f2_in);
        let pull = source(&f3, PIN_INPUT, &f2_out);
        for pin in [&f2_in, &f2_out, &f3_out, &f1_in, &push] {
            assert_eq!(pin.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        }
        assert_eq!(pull.set_state(ksabi::KSSTATE_PAUSE).status, STATUS_SUCCESS);
        let sent = frames(4, size);
        let bytes = (4 * size) as u64;
        write_all(&backend, &f1_in, &sent);
        if through {
            assert!(
                common::settles(|| common::stats(&f2).pending_writes > 0),
                "{size}: F1's write waits at F2"
            );
            let s2 = common::stats(&f2);
            assert_eq!((s2.copied_in, s2.high_water), (0, 0), "{size}: F2's ring took nothing: {s2:?}");
        } else {
            assert!(
                common::settles(|| common::stats(&f2).copied_in == bytes),
                "{size}: F2's ring took them: {:?}",
                common::stats(&f2)
            );
        }
        assert_eq!(pull.set_state(KSSTATE_RUN).status, STATUS_SUCCESS);
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let mut read = InFlight::read(&backend, f3_out.handle(), &[size; 4]);
            assert!(common::settles(|| read.poll().is_some()), "{size}: the chain delivers");
            got.extend(read.frames().into_iter().map(|f| f.data));
        }
        assert!(got == sent, "{size}: every frame, in order");
    }
    backend.shutdown().assert_clean();
}
