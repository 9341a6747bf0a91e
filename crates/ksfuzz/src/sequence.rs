//! `sequence`: a little op-code language over filters, pins and requests, with exact byte
//! accounting at the end.

use ksabi::{
    IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, KSRESET_BEGIN, KSRESET_END, STATUS_SUCCESS, nt_success,
};
use ksclient::io::InFlight;
use ksclient::request::{self, Header};
use ksclient::{Filter, Pin, Properties};
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

use crate::checks::{Input, assert_defined, world};

/// At most this many operations per input.
const MAX_OPS: usize = 64;

struct Slot<'b> {
    filter: Filter<'b>,
    pins: [Option<Pin<'b>>; 2],
    pending: Vec<(u32, InFlight)>,
    /// Bytes the driver accepted from completed writes, as the client counted them.
    accepted: u64,
    /// Bytes completed reads delivered.
    read: u64,
}

impl Slot<'_> {
    /// Counts a completed request.
    fn settle(&mut self, code: u32, mut r: InFlight) {
        let io = r.wait();
        assert_defined("stream request", io.status);
        if code == IOCTL_KS_WRITE_STREAM {
            // Success or cancel: Information is the bytes accepted either way.
            self.accepted += io.information as u64;
        } else if nt_success(io.status) {
            self.read += r.frames().iter().map(|f| u64::from(f.header.data_used)).sum::<u64>();
        }
    }

    /// Settles every request that has completed.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].1.poll().is_some() {
                let (code, r) = self.pending.remove(i);
                self.settle(code, r);
            } else {
                i += 1;
            }
        }
    }
}

/// Runs up to `MAX_OPS` operations, then cancels and closes everything and checks, per filter,
/// that the driver accepted exactly what the client's writes report, delivered exactly what its
/// reads got, and that every accepted byte was delivered or discarded.
///
/// # Panics
/// When an invariant breaks.
#[allow(clippy::too_many_lines)] // one interpreter
#[allow(clippy::many_single_char_names)] // w(orld), b(ackend), s(lot), p(in), n: the interpreter's registers
pub fn sequence(data: &[u8]) {
    let w = world();
    let b = &w.backend;
    let mut input = Input(data);
    {
        let mut slots: Vec<Slot<'_>> = Vec::new();
        for _ in 0..MAX_OPS {
            if input.0.is_empty() {
                break;
            }
            let op = input.byte() % 12;
            let arg = input.byte();
            if op == 0 {
                if slots.len() < 2 {
                    let filter = Filter::open_first(b).expect("filter");
                    slots.push(Slot {
                        filter,
                        pins: [None, None],
                        pending: Vec::new(),
                        accepted: 0,
                        read: 0,
                    });
                }
                continue;
            }
            if slots.is_empty() {
                continue;
            }
            let n = slots.len();
            let s = &mut slots[usize::from(arg >> 6) % n];
            let id = u32::from(arg & 1);
            let pin = s.pins[id as usize].as_ref();
            match op {
                1 if pin.is_none() => {
                    let format = if arg & 2 == 0 {
                        request::stream_format()
                    } else {
                        request::pcm_format(2, 16, 48_000)
                    };
                    s.pins[id as usize] = s.filter.connect(id, &format).ok();
                }
                2 => {
                    if let Some(p) = pin {
                        assert_defined("set state", p.set_state(i32::from((arg >> 1) % 5)).status);
                    }
                }
                3 => {
                    if let Some(p) = s.pins[PIN_INPUT as usize].as_ref() {
                        let sizes = [0usize, 1, 100, 3000, 70_000];
                        let frames: Vec<Vec<u8>> = (0..=(arg >> 5) % 4)
                            .map(|i| vec![i; sizes[usize::from((arg >> 1) % 5)]])
                            .collect();
                        let list: Vec<(&[u8], Header)> =
                            frames.iter().map(|f| (f.as_slice(), Header::default())).collect();
                        s.pending.push((IOCTL_KS_WRITE_STREAM, InFlight::write(b, p.handle(), &list)));
                    }
                }
                4 => {
                    if let Some(p) = s.pins[PIN_OUTPUT as usize].as_ref() {
                        let extents = [1usize, 64, 1000, 65_536];
                        let e: Vec<usize> = (0..=(arg >> 5) % 4)
                            .map(|i| extents[usize::from((arg >> 1).wrapping_add(i) % 4)])
                            .collect();
                        s.pending.push((IOCTL_KS_READ_STREAM, InFlight::read(b, p.handle(), &e)));
                    }
                }
                5 => {
                    if let Some(p) = pin {
                        p.cancel().expect("cancel");
                    }
                }
                6 => {
                    if let Some(p) = pin {
                        let value = [KSRESET_BEGIN, KSRESET_END, 9][usize::from((arg >> 1) % 3)];
                        assert_defined("reset", p.reset(value).status);
                    }
                }
                7 => {
                    if let Some(p) = s.pins[id as usize].take() {
                        p.close().expect("close pin");
                    }
                }
                8 => {
                    let idx = usize::from(arg >> 6) % n;
                    let mut gone = slots.remove(idx);
                    finish(&mut gone);
                }
                9 => s.reap(),
                10 => {
                    assert_defined("capacity", s.filter.set_capacity(4096 << (arg % 8)).status);
                }
                _ => {
                    let st = s.filter.statistics().expect("statistics");
                    assert!(st.bytes_out + st.discarded_bytes <= st.bytes_in, "more out than in: {st:?}");
                }
            }
        }
        for mut s in slots {
            finish(&mut s);
        }
    }
    w.assert_clean("sequence");
}

/// Cancels and settles everything on a filter, closes its pins (freeing the ring), checks the
/// accounting, and closes it.
fn finish(s: &mut Slot<'_>) {
    for p in s.pins.iter().flatten() {
        p.cancel().expect("cancel");
    }
    for (code, r) in std::mem::take(&mut s.pending) {
        s.settle(code, r);
    }
    for p in &mut s.pins {
        if let Some(p) = p.take() {
            p.close().expect("close pin");
        }
    }
    let st = s.filter.statistics().expect("statistics");
    assert_eq!(st.bytes_in, s.accepted, "the driver accepted what the writes say: {st:?}");
    assert_eq!(st.bytes_out, s.read, "the driver delivered what the reads got: {st:?}");
    assert_eq!(
        st.bytes_in,
        st.bytes_out + st.discarded_bytes,
        "every accepted byte delivered or discarded: {st:?}"
    );
    assert_eq!((st.capacity, st.pending_reads, st.pending_writes), (0, 0, 0), "nothing left: {st:?}");
    let _ = STATUS_SUCCESS;
}
