//! Handles, overlapped requests and the KS calls of a client: discovery under `\GLOBAL??`, filter
//! open, pin create (as ksuser's `KsCreatePin`), properties with the size protocol, states, reset.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::null_mut;

use ksabi::{
    GUID, HANDLE, IO_STATUS_BLOCK, IOCTL_KS_PROPERTY, IOCTL_KS_RESET_STATE, KSPROPSETID_Connection, KSRESET,
    KSSTATE, KsPropertyType, NTSTATUS, STATUS_BUFFER_OVERFLOW, STATUS_PENDING, STATUS_SUCCESS,
    STATUS_TIMEOUT, StatusText, connection_property,
};
use ksrequest::{self as request, Connect};
use ksring_api::{KSPROPSETID_KsRing, KsRingStatistics, REFERENCE_STRING, ksring_property};

use super::nt;
use ksnative::names;
use ksnative::ntuser::{
    DIRECTORY_QUERY, EVENT_ALL_ACCESS, FILE_OPEN, FILE_SHARE_READ_WRITE, GENERIC_READ, GENERIC_WRITE,
    NOTIFICATION_EVENT, OBJ_CASE_INSENSITIVE, OBJECT_ATTRIBUTES, OBJECT_DIRECTORY_INFORMATION, WAIT_ANY,
};

/// Bytes a property value buffer has beyond what the request says (see [`Object::property`]).
pub const GUARD: usize = 4096;

/// How long any single request may take before a scenario calls it hung.
pub const REQUEST_TIMEOUT_MS: u64 = 20_000;

/// A request's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Io {
    /// The final status.
    pub status: NTSTATUS,
    /// `IoStatus.Information`.
    pub information: usize,
}

impl core::fmt::Display for Io {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({} bytes)", StatusText(self.status), self.information)
    }
}

/// An NT handle, closed on drop.
#[derive(Debug)]
pub struct Handle(HANDLE);

impl Handle {
    /// The raw handle.
    pub fn raw(&self) -> HANDLE {
        self.0
    }

    /// Gives the handle up without closing it (the process exit closes it).
    pub fn leak(self) -> HANDLE {
        let h = self.0;
        core::mem::forget(self);
        h
    }

    /// Closes the handle, returning `NtClose`'s status.
    pub fn close(self) -> NTSTATUS {
        let h = self.leak();
        // SAFETY: a handle this process opened and has not closed.
        unsafe { nt::NtClose(h) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: a handle this process opened and has not closed.
        unsafe { nt::NtClose(self.0) };
    }
}

/// `NtCreateFile` of `name` (relative to `root` when not null) for read and write, opened for
/// overlapped I/O (no `FILE_SYNCHRONOUS_IO_*` option), as a Win32 client's `FILE_FLAG_OVERLAPPED`.
///
/// # Errors
/// The status.
pub fn create(root: HANDLE, name: &[u16], share: u32) -> Result<Handle, NTSTATUS> {
    create_access(root, name, share, GENERIC_READ | GENERIC_WRITE)
}

/// [`create`] asking for `access` (`GENERIC_READ`, `GENERIC_WRITE` or both).
///
/// # Errors
/// The status.
pub fn create_access(root: HANDLE, name: &[u16], share: u32, access: u32) -> Result<Handle, NTSTATUS> {
    let mut unicode = nt::unicode(name);
    let mut attributes = OBJECT_ATTRIBUTES::new(root, &raw mut unicode);
    let mut iosb = IO_STATUS_BLOCK { Status: 0, PointerHighHalf: 0, Information: 0 };
    let mut handle: HANDLE = null_mut();
    // SAFETY: every pointer is to a local that outlives the call; the name is borrowed for it.
    let status = unsafe {
        nt::NtCreateFile(
            &raw mut handle,
            access,
            &raw mut attributes,
            &raw mut iosb,
            null_mut(),
            0,
            share,
            FILE_OPEN,
            0,
            null_mut(),
            0,
        )
    };
    if status == STATUS_SUCCESS { Ok(Handle(handle)) } else { Err(status) }
}

/// A notification event (one per request; also a handle that is not a file).
pub fn event() -> Handle {
    let mut h: HANDLE = null_mut();
    // SAFETY: a valid out pointer; no name.
    let status =
        unsafe { nt::NtCreateEvent(&raw mut h, EVENT_ALL_ACCESS, null_mut(), NOTIFICATION_EVENT, 0) };
    assert!(status == STATUS_SUCCESS, "NtCreateEvent: {}", StatusText(status));
    Handle(h)
}

/// The memory and status block of one overlapped request. Boxed: the kernel writes the status
/// block and the buffers until the request completes.
pub struct OpInner {
    iosb: IO_STATUS_BLOCK,
    event: Handle,
    /// The input buffer (property request, reset value).
    pub input: Vec<u8>,
    /// The output buffer (property value, or stream headers followed by frame memory).
    pub output: Vec<u8>,
    pending: bool,
}

/// One overlapped `NtDeviceIoControlFile` request and its memory. If it is dropped while still
/// in flight (a hung request), its memory is leaked rather than freed under the kernel.
pub struct Op(Option<Box<OpInner>>);

impl Op {
    /// A request with these buffers.
    pub fn new(input: Vec<u8>, output: Vec<u8>) -> Self {
        Self(Some(Box::new(OpInner {
            iosb: IO_STATUS_BLOCK { Status: 0, PointerHighHalf: 0, Information: 0 },
            event: event(),
            input,
            output,
            pending: false,
        })))
    }

    fn inner(&mut self) -> &mut OpInner {
        self.0.as_mut().expect("an op's memory is only taken in drop")
    }

    /// The buffers, when no request is in flight.
    pub fn buffers(&mut self) -> (&mut Vec<u8>, &mut Vec<u8>) {
        let inner = self.inner();
        assert!(!inner.pending, "buffers of a request in flight");
        (&mut inner.input, &mut inner.output)
    }

    /// The output buffer's address (for stream headers' `Data`).
    pub fn output_base(&mut self) -> u64 {
        self.inner().output.as_ptr() as u64
    }

    /// The event that is set when the request completes.
    pub fn event(&mut self) -> HANDLE {
        self.inner().event.raw()
    }

    /// Whether a request is in flight.
    pub fn pending(&self) -> bool {
        self.0.as_ref().is_some_and(|i| i.pending)
    }

    /// Sends `code` to `handle` with the whole input and the first `output_len` bytes of the
    /// output. `None`: in flight; `Some`: completed at once (or refused).
    pub fn start(&mut self, handle: HANDLE, code: u32, output_len: usize) -> Option<Io> {
        let inner = self.inner();
        assert!(!inner.pending, "one request at a time per op");
        assert!(output_len <= inner.output.len());
        inner.iosb = IO_STATUS_BLOCK { Status: STATUS_PENDING, PointerHighHalf: 0, Information: 0 };
        let input_len = u32::try_from(inner.input.len()).unwrap_or(u32::MAX);
        let input = if inner.input.is_empty() { null_mut() } else { inner.input.as_mut_ptr().cast() };
        let output = if output_len == 0 { null_mut() } else { inner.output.as_mut_ptr().cast() };
        // SAFETY: the status block, event and buffers live in the box until the request completes
        // (drop leaks them if it never does).
        let status = unsafe {
            nt::NtDeviceIoControlFile(
                handle,
                inner.event.raw(),
                null_mut(),
                null_mut(),
                &raw mut inner.iosb,
                code,
                input,
                input_len,
                output,
                u32::try_from(output_len).unwrap_or(u32::MAX),
            )
        };
        if status == STATUS_PENDING {
            inner.pending = true;
            return None;
        }
        // Errors returned at once leave the status block alone; successes and warnings fill it.
        let information = if ksabi::nt_success(status) || status == STATUS_BUFFER_OVERFLOW {
            inner.iosb.Information
        } else {
            0
        };
        Some(Io { status, information })
    }

    /// The result of a request in flight that has completed (its event is set).
    pub fn completed(&mut self) -> Io {
        let inner = self.inner();
        inner.pending = false;
        Io { status: inner.iosb.Status, information: inner.iosb.Information }
    }

    /// Waits up to `ms` for the request in flight; `None` if it is still in flight.
    pub fn wait_ms(&mut self, ms: u64) -> Option<Io> {
        let inner = self.inner();
        if !inner.pending {
            return None;
        }
        let mut timeout = -i64::try_from(ms.saturating_mul(10_000)).unwrap_or(i64::MAX);
        // SAFETY: the op's own event; a valid relative timeout.
        let status = unsafe { nt::NtWaitForSingleObject(inner.event.raw(), 0, &raw mut timeout) };
        if status == STATUS_TIMEOUT { None } else { Some(self.completed()) }
    }

    /// Waits for the request in flight (at most [`REQUEST_TIMEOUT_MS`]).
    ///
    /// # Errors
    /// It did not complete in time.
    pub fn wait(&mut self) -> Result<Io, String> {
        self.wait_ms(REQUEST_TIMEOUT_MS)
            .ok_or_else(|| format!("a request did not complete in {} s", REQUEST_TIMEOUT_MS / 1000))
    }

    /// Starts and waits: a synchronous call.
    ///
    /// # Errors
    /// It did not complete in time.
    pub fn call(&mut self, handle: HANDLE, code: u32, output_len: usize) -> Result<Io, String> {
        match self.start(handle, code, output_len) {
            Some(io) => Ok(io),
            None => self.wait(),
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        if self.pending() && self.wait_ms(REQUEST_TIMEOUT_MS).is_none() {
            // Still in flight: the kernel may yet write the memory. Leak it.
            core::mem::forget(self.0.take());
        }
    }
}

/// Waits until one of `ops` (each in flight) completes; its index.
///
/// # Errors
/// None completed within [`REQUEST_TIMEOUT_MS`].
pub fn wait_any(events: &mut [HANDLE]) -> Result<usize, String> {
    let mut timeout = -i64::try_from(REQUEST_TIMEOUT_MS * 10_000).unwrap_or(i64::MAX);
    let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
    // SAFETY: `events` holds `count` event handles; a valid relative timeout.
    let status =
        unsafe { nt::NtWaitForMultipleObjects(count, events.as_mut_ptr(), WAIT_ANY, 0, &raw mut timeout) };
    let index = usize::try_from(status).unwrap_or(usize::MAX);
    if index < events.len() {
        Ok(index)
    } else {
        Err(format!("no request completed in {} s ({})", REQUEST_TIMEOUT_MS / 1000, StatusText(status)))
    }
}

/// `NtCancelIoFile`: cancels this thread's requests on `handle`.
pub fn cancel(handle: HANDLE) -> NTSTATUS {
    let mut iosb = IO_STATUS_BLOCK { Status: 0, PointerHighHalf: 0, Information: 0 };
    // SAFETY: a valid handle and status block.
    unsafe { nt::NtCancelIoFile(handle, &raw mut iosb) }
}

/// The device interface links of `class` in `\GLOBAL??`, as paths to open with the reference
/// string (`\??\Root#KsRing#0000#{guid}\GLOBAL`).
pub fn interfaces(class: &GUID) -> Vec<Vec<u16>> {
    let dir_name: Vec<u16> = "\\GLOBAL??".encode_utf16().collect();
    let mut unicode = nt::unicode(&dir_name);
    let mut attributes = OBJECT_ATTRIBUTES::new(null_mut(), &raw mut unicode);
    attributes.Attributes = OBJ_CASE_INSENSITIVE;
    let mut dir: HANDLE = null_mut();
    // SAFETY: valid out pointer and attributes.
    if unsafe { nt::NtOpenDirectoryObject(&raw mut dir, DIRECTORY_QUERY, &raw mut attributes) }
        != STATUS_SUCCESS
    {
        return Vec::new();
    }
    let dir = Handle(dir);
    let mut buffer = vec![0u64; 1024]; // 8 KiB, aligned for the entries
    let mut context = 0u32;
    let mut found = Vec::new();
    loop {
        let mut returned = 0u32;
        // SAFETY: the buffer is 8 KiB; one entry per call; context and returned are valid.
        let status = unsafe {
            nt::NtQueryDirectoryObject(
                dir.raw(),
                buffer.as_mut_ptr().cast(),
                8192,
                1,
                0,
                &raw mut context,
                &raw mut returned,
            )
        };
        if !ksabi::nt_success(status) {
            break;
        }
        // SAFETY: a successful query put one entry at the start of the buffer.
        let entry = unsafe { buffer.as_ptr().cast::<OBJECT_DIRECTORY_INFORMATION>().read() };
        // SAFETY: the entry's name points into the buffer, `Length` bytes.
        let name =
            unsafe { core::slice::from_raw_parts(entry.Name.Buffer, usize::from(entry.Name.Length / 2)) };
        if names::is_interface_of(name, class) {
            found.push(names::interface_path(name, REFERENCE_STRING));
        }
    }
    found
}

/// A filter or pin handle, with its property calls.
#[derive(Debug)]
pub struct Object {
    /// The handle.
    pub handle: Handle,
}

impl Object {
    /// `IOCTL_KS_PROPERTY` with `request` and a value buffer of `value_len` bytes (initially
    /// `value`); the result and the buffer.
    ///
    /// # Errors
    /// The request hung.
    ///
    /// The buffer has [`GUARD`] more bytes than the request says: a kernel that writes (or copies
    /// back) more than `value_len` bytes corrupts nothing of the client's, and `Information`
    /// beyond `value_len` shows it.
    pub fn property(&self, request: &[u8], value: &[u8], value_len: usize) -> Result<(Io, Vec<u8>), String> {
        let mut out = value.to_vec();
        out.resize(value_len.max(value.len()) + GUARD, 0);
        let mut op = Op::new(request.to_vec(), out);
        let io = op.call(self.handle.raw(), IOCTL_KS_PROPERTY, value_len)?;
        let (_, out) = op.buffers();
        let mut out = core::mem::take(out);
        out.truncate(value_len.max(value.len()));
        Ok((io, out))
    }

    /// A GET of `len` bytes; the bytes returned.
    ///
    /// # Errors
    /// The status when it is not success (or the request hung).
    pub fn get(&self, request: &[u8], len: usize) -> Result<Vec<u8>, String> {
        let (io, mut out) = self.property(request, &[], len)?;
        if io.status != STATUS_SUCCESS {
            return Err(format!("{}", StatusText(io.status)));
        }
        out.truncate(io.information.min(len));
        Ok(out)
    }

    /// A GET of a `u32`.
    ///
    /// # Errors
    /// As [`Object::get`], or a short value.
    pub fn get_u32(&self, request: &[u8]) -> Result<u32, String> {
        let out = self.get(request, 4)?;
        request::u32_at(&out, 0).ok_or_else(|| format!("{} bytes for a u32", out.len()))
    }

    /// A GET with the KS size protocol: an empty buffer gets `STATUS_BUFFER_OVERFLOW` and the
    /// size, then a buffer of that size gets the value.
    ///
    /// # Errors
    /// Either step's unexpected status.
    pub fn get_sized(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let (size, _) = self.property(request, &[], 0)?;
        if size.status != STATUS_BUFFER_OVERFLOW {
            return Err(format!("size query: {size}, expected STATUS_BUFFER_OVERFLOW"));
        }
        self.get(request, size.information)
    }

    /// A SET of `value`; the status.
    ///
    /// # Errors
    /// The request hung.
    pub fn set(&self, request: &[u8], value: &[u8]) -> Result<NTSTATUS, String> {
        self.property(request, value, value.len()).map(|(io, _)| io.status)
    }

    /// `KSPROPERTY_KSRING_STATISTICS`.
    ///
    /// # Errors
    /// The status when it is not success.
    pub fn statistics(&self) -> Result<KsRingStatistics, String> {
        let req = request::property(KSPROPSETID_KsRing, ksring_property::STATISTICS, KsPropertyType::GET);
        let out = self.get(&req, size_of::<KsRingStatistics>()).map_err(|e| format!("statistics: {e}"))?;
        if out.len() < size_of::<KsRingStatistics>() {
            return Err(format!("statistics: {} bytes", out.len()));
        }
        // SAFETY: KsRingStatistics is made of integers only; the read is unaligned and in bounds.
        Ok(unsafe { out.as_ptr().cast::<KsRingStatistics>().read_unaligned() })
    }

    /// Sets `KSPROPERTY_KSRING_CAPACITY`.
    ///
    /// # Errors
    /// The request hung.
    pub fn set_capacity(&self, bytes: u32) -> Result<NTSTATUS, String> {
        self.set(
            &request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET),
            &bytes.to_le_bytes(),
        )
    }

    /// Sets `KSPROPERTY_CONNECTION_STATE`.
    ///
    /// # Errors
    /// The request hung.
    pub fn set_state(&self, state: KSSTATE) -> Result<NTSTATUS, String> {
        self.set(
            &request::property(KSPROPSETID_Connection, connection_property::STATE, KsPropertyType::SET),
            &state.to_le_bytes(),
        )
    }

    /// `KSPROPERTY_CONNECTION_STATE`.
    ///
    /// # Errors
    /// The status when it is not success.
    pub fn state(&self) -> Result<KSSTATE, String> {
        self.get_u32(&request::property(
            KSPROPSETID_Connection,
            connection_property::STATE,
            KsPropertyType::GET,
        ))
        .map(u32::cast_signed)
    }

    /// `IOCTL_KS_RESET_STATE`.
    ///
    /// # Errors
    /// The request hung.
    pub fn reset(&self, value: KSRESET) -> Result<NTSTATUS, String> {
        let mut op = Op::new(value.to_le_bytes().to_vec(), Vec::new());
        op.call(self.handle.raw(), IOCTL_KS_RESET_STATE, 0).map(|io| io.status)
    }

    /// Creates a pin on this filter as ksuser's `KsCreatePin` does: `NtCreateFile` of
    /// `KSSTRING_Pin` + `\` + the `KSPIN_CONNECT` and format, relative to the filter.
    ///
    /// # Errors
    /// The create's status.
    pub fn connect_with(&self, connect: &Connect) -> Result<Object, NTSTATUS> {
        self.create_pin(&connect.to_bytes(), GENERIC_READ | GENERIC_WRITE)
    }

    /// Creates a pin from the raw create blob `blob` (a `KSPIN_CONNECT` and format, or a bad
    /// one), asking for `access`.
    ///
    /// # Errors
    /// The create's status.
    pub fn create_pin(&self, blob: &[u8], access: u32) -> Result<Object, NTSTATUS> {
        let name = names::pin_create_name(blob);
        create_access(self.handle.raw(), &name, 0, access).map(|handle| Object { handle })
    }

    /// [`Object::connect_with`] as an IRP source pointing at `target` (`PinToHandle`).
    ///
    /// # Errors
    /// The create's status.
    pub fn connect_to(&self, pin: u32, format: &[u8], target: HANDLE) -> Result<Object, NTSTATUS> {
        let mut c = Connect::new(pin, format.to_vec());
        c.pin_to_handle = target as u64;
        self.connect_with(&c)
    }

    /// [`Object::connect_with`] the standard interface and medium, as an IRP sink.
    ///
    /// # Errors
    /// The create's status.
    pub fn connect(&self, pin: u32, format: &[u8]) -> Result<Object, NTSTATUS> {
        self.connect_with(&Connect::new(pin, format.to_vec()))
    }
}

/// Opens the first KsRing filter.
///
/// # Errors
/// None found, or the open's status.
pub fn open_filter() -> Result<Object, String> {
    let paths = interfaces(&ksring_api::KSCATEGORY_KSRING);
    let path = paths.first().ok_or_else(|| String::from("no KSCATEGORY_KSRING interface in \\GLOBAL??"))?;
    create(null_mut(), path, FILE_SHARE_READ_WRITE)
        .map(|handle| Object { handle })
        .map_err(|s| format!("open {}: {}", String::from_utf16_lossy(path), StatusText(s)))
}
