//! Single stream requests, for tests and conformance checks: a write of given frames, a read
//! with given buffer sizes, each in flight until waited for, with its memory kept alive.

use ksabi::{IOCTL_KS_READ_STREAM, IOCTL_KS_WRITE_STREAM};

use crate::backend::{Backend, Handle, Io, IoMemory, Pending};
use crate::request::{HEADER_SIZE, Header};

/// A stream request in flight, owning the memory it points into.
pub struct InFlight {
    memory: Box<dyn IoMemory>,
    pending: Box<dyn Pending>,
    result: Option<Io>,
    headers: usize,
}

/// A frame a read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header as the driver filled it.
    pub header: Header,
    /// `DataUsed` bytes of the buffer.
    pub data: Vec<u8>,
}

impl InFlight {
    /// Writes `frames` (each its bytes and header fields; `data`, `frame_extent` and `data_used`
    /// are filled in) as one `IOCTL_KS_WRITE_STREAM`.
    #[must_use]
    pub fn write(backend: &dyn Backend, pin: Handle, frames: &[(&[u8], Header)]) -> Self {
        let headers = frames.len() * HEADER_SIZE;
        let data: usize = frames.iter().map(|(d, _)| d.len()).sum();
        let mut memory = backend.alloc(headers + data);
        let base = memory.as_ptr() as u64;
        let bytes = memory.bytes_mut();
        let mut at = headers;
        for (i, (payload, h)) in frames.iter().enumerate() {
            bytes[at..at + payload.len()].copy_from_slice(payload);
            let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            let h = Header { data: base + at as u64, frame_extent: len, data_used: len, ..*h };
            #[allow(clippy::cast_possible_truncation)] // 56
            h.write(bytes, i * HEADER_SIZE, HEADER_SIZE as u32);
            at += payload.len();
        }
        Self::submit(backend, pin, IOCTL_KS_WRITE_STREAM, memory, headers)
    }

    /// Submits an arbitrary header array (already in `memory`, `headers` bytes long) with `code`.
    #[must_use]
    pub fn submit(
        backend: &dyn Backend,
        pin: Handle,
        code: u32,
        memory: Box<dyn IoMemory>,
        headers: usize,
    ) -> Self {
        let ptr = memory.as_ptr();
        // SAFETY: `memory` moves into the returned value and lives until the request is waited for
        // (`Drop` waits); the headers point into it.
        let pending = unsafe { backend.submit(pin, code, core::ptr::null(), 0, ptr, headers) };
        Self { memory, pending, result: None, headers }
    }

    /// Reads into one buffer per entry of `extents` (each at least 1 byte), as one
    /// `IOCTL_KS_READ_STREAM`.
    #[must_use]
    pub fn read(backend: &dyn Backend, pin: Handle, extents: &[usize]) -> Self {
        let headers = extents.len() * HEADER_SIZE;
        let mut memory = backend.alloc(headers + extents.iter().sum::<usize>());
        let base = memory.as_ptr() as u64;
        let bytes = memory.bytes_mut();
        let mut at = headers;
        for (i, &extent) in extents.iter().enumerate() {
            let h = Header {
                data: base + at as u64,
                frame_extent: u32::try_from(extent).unwrap_or(u32::MAX),
                ..Header::default()
            };
            #[allow(clippy::cast_possible_truncation)] // 56
            h.write(bytes, i * HEADER_SIZE, HEADER_SIZE as u32);
            at += extent;
        }
        Self::submit(backend, pin, IOCTL_KS_READ_STREAM, memory, headers)
    }

    /// Waits for completion.
    pub fn wait(&mut self) -> Io {
        if let Some(io) = self.result {
            return io;
        }
        let io = self.pending.wait();
        self.result = Some(io);
        io
    }

    /// The result, if complete.
    pub fn poll(&mut self) -> Option<Io> {
        if self.result.is_none() {
            self.result = self.pending.poll();
        }
        self.result
    }

    /// Waits, then returns the frames a read got (the headers within `Information`).
    pub fn frames(&mut self) -> Vec<Frame> {
        let io = self.wait();
        let bytes = self.memory.bytes();
        let base = self.memory.as_ptr() as u64;
        let mut out = Vec::new();
        let mut at = 0;
        while at < io.information.min(self.headers) {
            let Some((header, size)) = Header::read(bytes, at) else { break };
            let from = usize::try_from(header.data.wrapping_sub(base)).unwrap_or(usize::MAX);
            let data =
                bytes.get(from..from.saturating_add(header.data_used as usize)).unwrap_or_default().to_vec();
            out.push(Frame { header, data });
            at += (size as usize).max(HEADER_SIZE);
        }
        out
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The memory may not go while the driver may still write into it.
        self.wait();
    }
}
