//! What a client needs from the operating system, as a trait: the real Windows API
//! (`crate::win32`, on Windows) or the kshost emulation running the real driver ([`crate::emulated`]).

use core::fmt;

use ksabi::{NTSTATUS, StatusText, nt_success, win32_error};

/// An open filter or pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u64);

/// The outcome of a request: the `NTSTATUS` and `IoStatus.Information`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Io {
    /// Final status.
    pub status: NTSTATUS,
    /// Bytes returned (or needed, for size queries).
    pub information: usize,
}

impl Io {
    /// Whether the status is a success code.
    #[must_use]
    pub fn ok(&self) -> bool {
        nt_success(self.status)
    }
}

/// A failed open: the `NTSTATUS` where the backend sees it (emulated, and kernel `KsCreatePin`),
/// or only the Win32 error (`CreateFile`, ksuser's `KsCreatePin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// The driver's status.
    Status(NTSTATUS),
    /// A Win32 error code.
    Win32(u32),
}

impl Fail {
    /// The Win32 error a Windows caller sees.
    #[must_use]
    pub fn win32(self) -> u32 {
        match self {
            Self::Status(s) => win32_error(s),
            Self::Win32(e) => e,
        }
    }

    /// Whether this failure is what `expected` gives on this backend (compared as Win32 errors
    /// when the backend only knows those).
    #[must_use]
    pub fn is(self, expected: NTSTATUS) -> bool {
        match self {
            Self::Status(s) => s == expected,
            Self::Win32(e) => e == win32_error(expected),
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Status(s) => write!(f, "{} (Win32 error {})", StatusText(s), win32_error(s)),
            Self::Win32(e) => write!(f, "Win32 error {e}"),
        }
    }
}

impl std::error::Error for Fail {}

/// A filter found by its interface category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterPath {
    /// The interface path to open.
    pub path: String,
    /// The interface's `FriendlyName`, if any.
    pub friendly_name: Option<String>,
}

/// Memory a request in flight may point into (headers and frame buffers); it must stay put until
/// the request completes.
pub trait IoMemory: Send + Sync {
    /// The first byte.
    fn as_ptr(&self) -> *mut u8;
    /// Bytes.
    fn len(&self) -> usize;
    /// Whether empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes.
    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes owned by the implementor for its lifetime.
        unsafe { core::slice::from_raw_parts(self.as_ptr(), self.len()) }
    }
    /// The bytes, mutably (only while no request uses them).
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`, borrowed mutably.
        unsafe { core::slice::from_raw_parts_mut(self.as_ptr(), self.len()) }
    }
}

/// A request in flight.
pub trait Pending: Send {
    /// Waits for it (`GetOverlappedResult(..., TRUE)`).
    fn wait(&mut self) -> Io;
    /// Its result if it has completed.
    fn poll(&mut self) -> Option<Io>;
}

/// The operating system as a KS client sees it.
pub trait Backend: Send + Sync {
    /// "emulated" or "windows".
    fn name(&self) -> &'static str;
    /// Enabled interfaces of `category`.
    fn filters(&self, category: &ksabi::GUID) -> Vec<FilterPath>;
    /// `CreateFile` on an interface path, for read and write, overlapped.
    ///
    /// # Errors
    /// The open's failure.
    fn open(&self, path: &str) -> Result<Handle, Fail>;
    /// `KsCreatePin(filter, connect, GENERIC_READ | GENERIC_WRITE)`.
    ///
    /// # Errors
    /// The create's failure.
    fn create_pin(&self, filter: Handle, connect: &[u8]) -> Result<Handle, Fail> {
        self.create_pin_access(filter, connect, ksabi::GENERIC_READ | ksabi::GENERIC_WRITE)
    }
    /// `KsCreatePin(filter, connect, access)`: a pin handle granting only `access`.
    ///
    /// # Errors
    /// The create's failure.
    fn create_pin_access(&self, filter: Handle, connect: &[u8], access: u32) -> Result<Handle, Fail>;
    /// `DeviceIoControl`, waiting for completion.
    fn ioctl(&self, handle: Handle, code: u32, input: &[u8], output: &mut [u8]) -> Io;
    /// Memory for requests in flight.
    fn alloc(&self, len: usize) -> Box<dyn IoMemory>;
    /// `DeviceIoControl` with an `OVERLAPPED`: returns at once.
    ///
    /// # Safety
    /// `input`/`output` must stay valid until the request completes, and addresses inside them
    /// (stream headers' `Data`) must point into [`IoMemory`] from [`Backend::alloc`] that does too.
    unsafe fn submit(
        &self,
        handle: Handle,
        code: u32,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_len: usize,
    ) -> Box<dyn Pending>;
    /// `CreateEvent`: a handle that is not a file (for connections that must refuse it).
    ///
    /// # Errors
    /// The creation's failure.
    fn create_event(&self) -> Result<Handle, Fail>;
    /// `CancelIoEx(handle, NULL)`.
    ///
    /// # Errors
    /// An invalid handle.
    fn cancel(&self, handle: Handle) -> Result<(), Fail>;
    /// `CloseHandle`.
    ///
    /// # Errors
    /// An invalid handle.
    fn close(&self, handle: Handle) -> Result<(), Fail>;
}
