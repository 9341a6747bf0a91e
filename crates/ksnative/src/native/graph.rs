//! The three-filter IRP-source chain (as ksclient's `graph`, `tests/graph.rs`):
//!
//! ```text
//! client ──write──▶ F1.input   F1.output ══push══▶ F2.input
//!                              F2.output ◀══pull══ F3.input   F3.output ──read──▶ client
//! ```
//!
//! F1's output pin is created with `PinToHandle` = F2's input pin (a push source), F3's input pin
//! with `PinToHandle` = F2's output pin (a pull source). The client only writes F1 and reads F3;
//! closing F1's input ends the stream, and the end travels down the chain.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ksabi::{
    HANDLE, KSSTATE, KSSTATE_RUN, KSSTATE_STOP, STATUS_CANCELLED, STATUS_SUCCESS, StatusText, pin_property,
};
use ksrequest::pattern::mix;
use ksrequest::{self as request, Header};
use ksring_api::{KsRingStatistics, PIN_INPUT, PIN_OUTPUT};

use super::io::{Handle, Object, open_filter};
use super::scenarios::{meta, ok, pin_request, read, start_write};
use super::stream::{self, Cfg, Stream};
use super::{now_ms, sayf, sleep_ms};
use ksnative::ensure;
use ksnative::tally::{GAP, Outcome, expect_eq};

/// The chain's nine handles, in the order they are opened (indices of the close orders).
pub const ROLES: [&str; 9] = [
    "F1",
    "F2",
    "F3",
    "F1.in(client)",
    "F2.in(sink)",
    "F2.out(sink)",
    "F1.out(push)",
    "F3.in(pull)",
    "F3.out(client)",
];

/// The open chain.
pub struct Chain {
    filters: [Object; 3],
    client_input: Object,
    f2_input: Object,
    f2_output: Object,
    push: Object,
    pull: Object,
    client_output: Object,
}

fn pin(
    filter: &Object,
    id: u32,
    format: &[u8],
    target: Option<HANDLE>,
    role: usize,
) -> Result<Object, String> {
    match target {
        None => filter.connect(id, format),
        Some(t) => filter.connect_to(id, format, t),
    }
    .map_err(|s| format!("{}: {}", ROLES[role], StatusText(s)))
}

impl Chain {
    /// Opens three filters and connects them, every pin streaming `format`, in STOP; with
    /// `capacity`, each filter's ring is set to it first.
    pub fn open(format: &[u8], capacity: Option<u32>) -> Result<Self, String> {
        let filters = [open_filter()?, open_filter()?, open_filter()?];
        if let Some(bytes) = capacity {
            for (n, f) in filters.iter().enumerate() {
                ok(f.set_capacity(bytes)?, &format!("F{} capacity", n + 1))?;
            }
        }
        let client_input = pin(&filters[0], PIN_INPUT, format, None, 3)?;
        let f2_input = pin(&filters[1], PIN_INPUT, format, None, 4)?;
        let f2_output = pin(&filters[1], PIN_OUTPUT, format, None, 5)?;
        let push = pin(&filters[0], PIN_OUTPUT, format, Some(f2_input.handle.raw()), 6)?;
        let pull = pin(&filters[2], PIN_INPUT, format, Some(f2_output.handle.raw()), 7)?;
        let client_output = pin(&filters[2], PIN_OUTPUT, format, None, 8)?;
        Ok(Self { filters, client_input, f2_input, f2_output, push, pull, client_output })
    }

    /// Sets every pin to `state`, downstream first (a sink reaches it before its source).
    pub fn set_state(&self, state: KSSTATE) -> Outcome {
        for (role, p) in [
            (8, &self.client_output),
            (7, &self.pull),
            (5, &self.f2_output),
            (4, &self.f2_input),
            (6, &self.push),
            (3, &self.client_input),
        ] {
            ok(p.set_state(state)?, &format!("{}: state {state}", ROLES[role]))?;
        }
        Ok(())
    }

    /// The nine handles in [`ROLES`] order.
    pub fn into_handles(self) -> [Handle; 9] {
        let [f1, f2, f3] = self.filters;
        [
            f1.handle,
            f2.handle,
            f3.handle,
            self.client_input.handle,
            self.f2_input.handle,
            self.f2_output.handle,
            self.push.handle,
            self.pull.handle,
            self.client_output.handle,
        ]
    }
}

fn statistics(filters: &[Object; 3]) -> Result<[KsRingStatistics; 3], String> {
    let get = |n: usize| filters[n].statistics().map_err(|e| format!("F{}: {e}", n + 1));
    Ok([get(0)?, get(1)?, get(2)?])
}

/// Why ReactOS cannot be sent a stream request whose frames are all empty.
const EMPTY_REQUEST: &str = "ReactOS' KsProbeStreamIrp (drivers/ksfilter/ks/irp.c), with \
    KSPROBE_ALLOCATEMDL | KSPROBE_PROBEANDLOCK, allocates MDLs only for headers with a FrameExtent and then \
    jumps to its MDL probe, which reads Irp->MdlAddress->MdlFlags: a request whose frames are all empty \
    dereferences NULL. The ENDOFSTREAM frame a push source sends when its filter's input ends is such a \
    request (alone in it), so is a lone empty frame; the lab saw the kernel stop (KMODE_EXCEPTION_NOT_HANDLED, \
    a read of address 0xA at ks.sys+0xCBCB, in the push source's work item)";

/// Streams `cfg` through a chain (written to F1, read back verified from F3), then checks each
/// filter's statistics: every filter took in and gave out exactly what the client wrote and read,
/// nothing discarded. With `cfg.end_by_close` the stream ends by closing F1's input: the end
/// travels down the chain (F1's push source sends F2 a zero-length `ENDOFSTREAM` frame, which F3's
/// pull source takes as its input's end), F2 counts that frame too, and the client reads the end
/// from F3. Without, F1's input stays open and the push source closes first (so it sends no end).
/// Then every pin stops and the chain closes; no pin instance is left.
pub fn stream_through(format: &[u8], capacity: Option<u32>, cfg: Cfg) -> Outcome {
    let chain = Chain::open(format, capacity)?;
    chain.set_state(KSSTATE_RUN)?;
    let Chain { filters, client_input, f2_input, f2_output, push, pull, client_output } = chain;
    let start = now_ms();
    let mut s = [Stream::new(client_input, client_output, cfg)];
    stream::run(&mut s).map_err(|e| format!("{e}; statistics then: {:?}", statistics(&filters)))?;
    let ms = now_ms().saturating_sub(start).max(1);
    let (frames, bytes, parts) = (s[0].check.frames, s[0].check.bytes, s[0].check.parts);
    sayf!(
        "KSRING-NATIVE: chain: {frames} frames, {bytes} bytes, {parts} split parts in {ms} ms (seed {:#x})",
        cfg.seed
    );
    let st = statistics(&filters)?;
    // Bytes F3 delivered without copying them: lent reads F2 filled directly (src/source/lend.rs).
    sayf!(
        "KSRING-NATIVE: chain: F3 lent {} of {} bytes to its pull source's reads",
        st[2].bytes_out.saturating_sub(st[2].copied_out),
        st[2].bytes_out
    );
    for (n, s) in st.iter().enumerate() {
        let frames = frames + u64::from(n == 1 && cfg.end_by_close);
        expect_eq(
            &format!("F{}: bytes in/out, frames in/out, discarded frames/bytes", n + 1),
            (s.bytes_in, s.bytes_out, s.frames_in, s.frames_out, s.discarded_frames, s.discarded_bytes),
            (bytes, bytes, frames, frames, 0, 0),
        )?;
    }
    for (role, p) in [(8, &s[0].output), (7, &pull), (5, &f2_output), (4, &f2_input), (6, &push)] {
        ok(p.set_state(KSSTATE_STOP)?, &format!("{}: STOP", ROLES[role]))?;
    }
    ok(push.handle.close(), "close F1.out(push)")?;
    drop(s);
    drop((pull, f2_input, f2_output, filters));
    instances_drain()
}

/// `graph`: 16 MiB of byte stream through the chain, frames 1 B..96 KiB, read extents
/// 1 B..48 KiB; F1's input stays open (`graph-end-of-stream` checks the end).
pub fn graph() -> Outcome {
    stream_through(
        &request::stream_format(),
        None,
        Cfg {
            bytes: 16 << 20,
            frame_min: 1,
            frame_max: 96 << 10,
            extent_min: 1,
            extent_max: 48 << 10,
            seed: 0x6A_F00D,
            end_by_close: false,
            ..Cfg::default()
        },
    )
}

/// `graph-small-rings`: PCM through 8 KiB rings everywhere (every ring wraps constantly, frames
/// up to 20 000 bytes travel in parts), three seeds.
pub fn graph_small_rings() -> Outcome {
    for seed in 0..3 {
        stream_through(
            &request::pcm_format(2, 16, 48_000),
            Some(8192),
            Cfg {
                bytes: 1 << 20,
                frame_min: 1,
                frame_max: 20_000,
                extent_min: 1,
                extent_max: 48 << 10,
                seed,
                end_by_close: false,
                ..Cfg::default()
            },
        )
        .map_err(|e| format!("seed {seed}: {e}"))?;
    }
    Ok(())
}

/// `graph-end-of-stream`: 4 MiB with empty frames among the others, ended by closing F1's
/// input: the end travels down the chain and F2 counts it as a frame.
pub fn graph_end_of_stream() -> Outcome {
    if super::reactos() {
        return Err(format!("{GAP}not run: {EMPTY_REQUEST}"));
    }
    stream_through(
        &request::stream_format(),
        None,
        Cfg { bytes: 4 << 20, frame_min: 0, frame_max: 32 << 10, seed: 0xE05, ..Cfg::default() },
    )
}

/// Waits (up to 5 s) until no pin instance of the driver is left (a source may still be letting
/// go of its sink when the last handle closes: the sink's close comes once its requests are
/// done), checked on a new filter with `KSPROPERTY_PIN_GLOBALCINSTANCES`.
fn instances_drain() -> Outcome {
    let f = open_filter()?;
    let mut left = (Some(0), Some(0));
    for _ in 0..50 {
        let global = |pin| f.get(&pin_request(pin_property::GLOBALCINSTANCES, pin), 8);
        let (i, o) = (global(PIN_INPUT)?, global(PIN_OUTPUT)?);
        left = (request::u32_at(&i, 4), request::u32_at(&o, 4));
        if left == (Some(0), Some(0)) {
            return Ok(());
        }
        sleep_ms(100);
    }
    Err(format!("pin instances (input, output) left after every handle closed: {left:?}"))
}

/// Opens a chain in RUN, writes six frames into F1 (seeded sizes up to 40 000 bytes), for even
/// seeds reads 1000 bytes back from F3, so that requests are in flight or held in every part of
/// the chain; then closes the nine handles in `order` (indices into [`ROLES`]). Every close must
/// succeed, the client's write end as success or cancelled, and no pin instance be left.
fn close_in_order(order: &[usize; 9], seed: u64) -> Outcome {
    let chain = Chain::open(&request::stream_format(), None)?;
    chain.set_state(KSSTATE_RUN)?;
    let frames: Vec<Vec<u8>> = (0..6u8)
        .map(|k| {
            super::scenarios::bytes(k, 1 + usize::try_from(mix(seed ^ u64::from(k)) % 40_000).unwrap_or(0))
        })
        .collect();
    let list: Vec<(&[u8], Header)> = frames.iter().map(|f| (f.as_slice(), meta(0, 0))).collect();
    let (mut w, started) = start_write(&chain.client_input, &list);
    if seed.is_multiple_of(2) {
        let got = read(&chain.client_output, &[1000])?;
        ensure!(!got.is_empty(), "read: no frame");
    }
    let mut handles = chain.into_handles().map(Some);
    for &i in order {
        let h = handles[i].take().ok_or_else(|| format!("{} twice in the order", ROLES[i]))?;
        ok(h.close(), &format!("close {}", ROLES[i]))?;
    }
    let io = match started {
        Some(io) => io,
        None => w.wait()?,
    };
    ensure!(
        io.status == STATUS_SUCCESS || io.status == STATUS_CANCELLED,
        "the client's write ended with {io}"
    );
    instances_drain()
}

/// The named close orders KS' termination rules are about (as
/// `tests/graph.rs::named_close_orders_end_cleanly`), indices into [`ROLES`].
const ORDERS: [(&str, [usize; 9]); 5] = [
    ("sources first", [6, 7, 4, 5, 3, 8, 0, 1, 2]),
    ("sinks first", [4, 5, 6, 7, 3, 8, 0, 1, 2]),
    ("filters first", [0, 1, 2, 4, 5, 6, 7, 8, 3]),
    ("middle filter first", [1, 5, 4, 0, 2, 7, 6, 3, 8]),
    ("opening order", [0, 1, 2, 3, 4, 5, 6, 7, 8]),
];

/// `graph-close-*`: close order `n` of [`ORDERS`]. The opening order closes F1's input while
/// its push source is open: the source sends the end of stream, which ReactOS cannot take.
pub fn close_order(n: usize) -> Outcome {
    let (name, order) = ORDERS[n];
    if super::reactos() && order.iter().position(|&i| i == 3) < order.iter().position(|&i| i == 6) {
        return Err(format!(
            "{GAP}not run ({name}: F1's input closes before its push source): {EMPTY_REQUEST}"
        ));
    }
    close_in_order(&order, n as u64).map_err(|e| format!("{name}: {e}"))
}
