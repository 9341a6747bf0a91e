//! Verified streaming on one thread: several write requests in flight on each input pin and
//! several reads on each output pin, all overlapped, completion by event (`NtWaitForMultipleObjects`).
//! Frames come from `ksrequest::pattern::Plan` and are checked with its `FrameCheck` — the same
//! pattern and checker as ksclient's threaded stream. Closing the input after the last write ends
//! the stream; the reader expects `ENDOFSTREAM` right after the last frame.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ksabi::{HANDLE, IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM, STATUS_SUCCESS};
use ksrequest::pattern::{CheckError, FrameCheck, Plan, mix};
use ksrequest::{HEADER_SIZE, Header};

use super::io::{Io, Object, Op, wait_any};

/// What to stream.
#[derive(Clone, Copy, Debug)]
pub struct Cfg {
    /// Payload bytes (the last frame may go past it).
    pub bytes: u64,
    /// Smallest frame.
    pub frame_min: usize,
    /// Largest frame.
    pub frame_max: usize,
    /// Smallest read buffer per header.
    pub extent_min: usize,
    /// Largest read buffer per header.
    pub extent_max: usize,
    /// Frames per write request.
    pub frames_per_write: usize,
    /// Headers per read request.
    pub headers_per_read: usize,
    /// Writes in flight.
    pub writes: usize,
    /// Reads in flight.
    pub reads: usize,
    /// Seed of frames and read sizes.
    pub seed: u64,
    /// Whether the stream ends by closing the input (the reader then expects `ENDOFSTREAM`);
    /// otherwise the input stays open, reading stops after the last frame, and the reads still
    /// in flight are cancelled (and must come back empty).
    pub end_by_close: bool,
}

impl Default for Cfg {
    fn default() -> Self {
        Self {
            bytes: 64 << 20,
            frame_min: 0,
            frame_max: 64 << 10,
            extent_min: 1 << 10,
            extent_max: 64 << 10,
            frames_per_write: 8,
            headers_per_read: 8,
            writes: 4,
            reads: 4,
            seed: 0x5EED_CAFE,
            end_by_close: true,
        }
    }
}

/// One stream: an input pin written, an output pin read.
pub struct Stream {
    cfg: Cfg,
    plan: Plan,
    total: u64,
    next: u64,
    /// The input pin written (`None` once closed).
    pub input: Option<Object>,
    /// The output pin read.
    pub output: Object,
    writes: Vec<(Op, usize)>,
    reads: Vec<Op>,
    /// Read slots in the order their requests were sent: reads are checked in that order (the
    /// order the driver fills them), whatever order the waits see them complete in.
    read_order: VecDeque<usize>,
    rng: u64,
    /// The checker, with the counts of what was verified.
    pub check: FrameCheck,
    /// Write requests completed.
    pub write_requests: u64,
}

impl Stream {
    /// A stream from `input` to `output` (both connected and in RUN).
    pub fn new(input: Object, output: Object, cfg: Cfg) -> Self {
        let plan = Plan::new(cfg.seed, cfg.frame_min, cfg.frame_max);
        let total = plan.frames_for(cfg.bytes);
        let write_len = cfg.frames_per_write * (HEADER_SIZE + cfg.frame_max);
        let read_len = cfg.headers_per_read * (HEADER_SIZE + cfg.extent_max);
        Self {
            cfg,
            plan,
            total,
            next: 0,
            input: Some(input),
            output,
            writes: (0..cfg.writes).map(|_| (Op::new(Vec::new(), vec![0; write_len]), 0)).collect(),
            reads: (0..cfg.reads).map(|_| Op::new(Vec::new(), vec![0; read_len])).collect(),
            read_order: VecDeque::new(),
            rng: mix(cfg.seed ^ 0xEAD),
            check: FrameCheck::new(plan, total, true),
            write_requests: 0,
        }
    }

    fn submit_write(&mut self, slot: usize) -> Option<Io> {
        let Some(input) = &self.input else { return None };
        if self.next >= self.total {
            return None;
        }
        let headers_len = self.cfg.frames_per_write * HEADER_SIZE;
        let (op, payload) = &mut self.writes[slot];
        let base = op.output_base();
        let (_, bytes) = op.buffers();
        let (headers, data) = bytes.split_at_mut(headers_len);
        let (mut n, mut at) = (0, 0);
        *payload = 0;
        while n < self.cfg.frames_per_write && self.next < self.total {
            let mut h = self.plan.header(self.next);
            let len = h.data_used as usize;
            self.plan.fill(self.next, 0, &mut data[at..at + len]);
            h.data = base + (headers_len + at) as u64;
            #[allow(clippy::cast_possible_truncation)] // 56
            h.write(headers, n * HEADER_SIZE, HEADER_SIZE as u32);
            at += len;
            *payload += len;
            n += 1;
            self.next += 1;
        }
        op.start(input.handle.raw(), IOCTL_KS_WRITE_STREAM, n * HEADER_SIZE)
    }

    /// Every frame has been read (and, when the input's close ends the stream, its end too).
    fn done(&self) -> bool {
        self.check.ended || (!self.cfg.end_by_close && self.check.k >= self.total)
    }

    fn submit_read(&mut self, slot: usize) -> Option<Io> {
        if self.done() {
            return None;
        }
        let cfg = self.cfg;
        let headers_len = cfg.headers_per_read * HEADER_SIZE;
        let op = &mut self.reads[slot];
        let base = op.output_base();
        let (_, bytes) = op.buffers();
        let mut at = headers_len;
        for i in 0..cfg.headers_per_read {
            self.rng = mix(self.rng);
            let span = (cfg.extent_max - cfg.extent_min + 1) as u64;
            let extent = cfg.extent_min + usize::try_from(self.rng % span).unwrap_or(0);
            let h = Header {
                data: base + at as u64,
                frame_extent: u32::try_from(extent).unwrap_or(u32::MAX),
                ..Header::default()
            };
            #[allow(clippy::cast_possible_truncation)] // 56
            h.write(bytes, i * HEADER_SIZE, HEADER_SIZE as u32);
            at += extent;
        }
        let io = op.start(self.output.handle.raw(), IOCTL_KS_READ_STREAM, headers_len);
        if io.is_none() {
            self.read_order.push_back(slot);
        }
        io
    }

    fn write_done(&mut self, slot: usize, io: Io) -> Result<(), String> {
        let expected = self.writes[slot].1;
        if io.status != STATUS_SUCCESS || io.information != expected {
            return Err(format!("write: {io}, expected {expected} bytes"));
        }
        self.write_requests += 1;
        Ok(())
    }

    fn read_done(&mut self, slot: usize, io: Io) -> Result<(), String> {
        if io.status != STATUS_SUCCESS {
            return Err(format!("read: {io} after {} of {} frames", self.check.k, self.total));
        }
        let op = &mut self.reads[slot];
        let base = op.output_base();
        let (_, bytes) = op.buffers();
        let mut at = 0;
        while at < io.information {
            let (h, size) = Header::read(bytes, at)
                .ok_or_else(|| format!("read: {} bytes of headers", io.information))?;
            let from = usize::try_from(h.data.wrapping_sub(base)).unwrap_or(usize::MAX);
            let data = bytes
                .get(from..from.saturating_add(h.data_used as usize))
                .ok_or_else(|| format!("read header's Data moved: {h:?}"))?;
            self.check.header(&h, data).map_err(|e| match e {
                CheckError::Mismatch(m) => format!("data mismatch: {m}"),
                CheckError::EndOfStream(m) => format!("end of stream: {m}"),
            })?;
            at += (size as usize).max(HEADER_SIZE);
        }
        Ok(())
    }

    /// Handles one completion (`write` side or read side, slot `slot`) and keeps the pipeline
    /// full: resubmits, and closes the input after the last write completes.
    fn complete(&mut self, write: bool, slot: usize, io: Io) -> Result<(), String> {
        let mut io = io;
        loop {
            if write {
                self.write_done(slot, io)?;
            } else {
                self.read_done(slot, io)?;
            }
            let again = if write { self.submit_write(slot) } else { self.submit_read(slot) };
            match again {
                Some(done) => io = done,
                None => break,
            }
        }
        if self.cfg.end_by_close
            && self.next >= self.total
            && self.input.is_some()
            && !self.writes.iter().any(|(op, _)| op.pending())
        {
            drop(self.input.take()); // closing the input ends the stream
        }
        Ok(())
    }

    /// Starts every read and write.
    ///
    /// # Errors
    /// A request that failed at once.
    pub fn start(&mut self) -> Result<(), String> {
        for i in 0..self.reads.len() {
            if let Some(io) = self.submit_read(i) {
                self.complete(false, i, io)?;
            }
        }
        for i in 0..self.writes.len() {
            if let Some(io) = self.submit_write(i) {
                self.complete(true, i, io)?;
            }
        }
        Ok(())
    }

    fn in_flight(&mut self, out: &mut Vec<(bool, usize, HANDLE)>) {
        for (i, (op, _)) in self.writes.iter_mut().enumerate() {
            if op.pending() {
                out.push((true, i, op.event()));
            }
        }
        if let Some(&i) = self.read_order.front().filter(|_| !self.done()) {
            out.push((false, i, self.reads[i].event()));
        }
    }

    /// With the input left open: cancels the reads still in flight after the last frame; each
    /// must come back empty.
    fn cancel_leftover_reads(&mut self) -> Result<(), String> {
        if self.read_order.is_empty() {
            return Ok(());
        }
        super::io::cancel(self.output.handle.raw());
        while let Some(i) = self.read_order.pop_front() {
            let io = self.reads[i].wait()?;
            if io.information != 0 {
                return Err(format!("a read after the last frame: {io}"));
            }
        }
        Ok(())
    }
}

/// Runs `streams` together until each has seen its end of stream and nothing is in flight.
///
/// # Errors
/// The first failure (naming the stream).
pub fn run(streams: &mut [Stream]) -> Result<(), String> {
    for (n, s) in streams.iter_mut().enumerate() {
        s.start().map_err(|e| format!("stream {n}: {e}"))?;
    }
    loop {
        let mut waiting: Vec<(usize, bool, usize)> = Vec::new();
        let mut events: Vec<HANDLE> = Vec::new();
        for (n, s) in streams.iter_mut().enumerate() {
            let mut mine = Vec::new();
            s.in_flight(&mut mine);
            for (write, slot, event) in mine {
                waiting.push((n, write, slot));
                events.push(event);
            }
        }
        if events.is_empty() {
            break;
        }
        let which = wait_any(&mut events).map_err(|e| {
            let s = &streams[waiting[0].0];
            format!("{e}: {} of {} frames read, {} written", s.check.k, s.total, s.next)
        })?;
        let (n, write, slot) = waiting[which];
        let s = &mut streams[n];
        let io = if write {
            s.writes[slot].0.completed()
        } else {
            s.read_order.pop_front();
            s.reads[slot].completed()
        };
        s.complete(write, slot, io).map_err(|e| format!("stream {n}: {e}"))?;
    }
    for (n, s) in streams.iter_mut().enumerate() {
        if !s.cfg.end_by_close {
            s.cancel_leftover_reads().map_err(|e| format!("stream {n}: {e}"))?;
        } else if !s.check.ended {
            return Err(format!("stream {n}: no ENDOFSTREAM after {} of {} frames", s.check.k, s.total));
        }
    }
    Ok(())
}
