//! The Windows backend: the installed driver through the Win32 API (`windows-sys`). Interfaces are
//! found with `CM_Get_Device_Interface_ListW`; handles are opened overlapped, so every request's
//! `NTSTATUS` and `Information` come back in its `OVERLAPPED` (`Internal`, `InternalHigh`).
//!
//! Type-checked on Linux (`scripts/check-windows.sh`); run only on Windows.

use core::ffi::c_void;
use core::ptr::{null, null_mut};

use ksabi::{GUID, NTSTATUS, STATUS_PENDING};
use windows_sys::Win32::Devices::DeviceAndDriverInstallation::{
    CM_GET_DEVICE_INTERFACE_LIST_PRESENT, CM_Get_Device_Interface_List_SizeW, CM_Get_Device_Interface_ListW,
    CM_Get_Device_Interface_PropertyW, CR_SUCCESS,
};
use windows_sys::Win32::Devices::Properties::{DEVPKEY_DeviceInterface_FriendlyName, DEVPROPTYPE};
use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_IO_PENDING, ERROR_NOT_FOUND, GENERIC_READ, GENERIC_WRITE, GetLastError, HANDLE,
    INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Media::KernelStreaming::{KSPIN_CONNECT, KsCreatePin};
use windows_sys::Win32::Storage::FileSystem::{CreateFileW, FILE_FLAG_OVERLAPPED, OPEN_EXISTING};
use windows_sys::Win32::System::IO::{CancelIoEx, DeviceIoControl, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Memory::{
    MEM_COMMIT, MEM_RELEASE, MEM_RESERVE, PAGE_READWRITE, VirtualAlloc, VirtualFree,
};
use windows_sys::Win32::System::Threading::CreateEventW;

use crate::backend::{Backend, Fail, FilterPath, Handle, Io, IoMemory, Pending};

/// The installed driver, through Win32.
#[derive(Default)]
pub struct Windows;

impl Windows {
    /// The backend (it holds no state: handles are the caller's).
    #[must_use]
    pub fn new() -> Self {
        Self
    }
}

fn last_error() -> u32 {
    // SAFETY: reads the calling thread's last-error value.
    unsafe { GetLastError() }
}

fn guid(g: &GUID) -> windows_sys::core::GUID {
    windows_sys::core::GUID { data1: g.Data1, data2: g.Data2, data3: g.Data3, data4: g.Data4 }
}

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(Some(0)).collect()
}

fn handle(h: Handle) -> HANDLE {
    h.0 as usize as HANDLE
}

/// What an `NTSTATUS` slot holds before the I/O manager writes it: not a status any driver returns.
const UNWRITTEN: usize = 0xFFFF_FFFF_DEAD_0000;

/// `NTSTATUS_FROM_WIN32`: for a request that failed before the driver saw it (only a Win32 error
/// is known).
#[allow(clippy::cast_possible_wrap)]
fn status_from_win32(error: u32) -> NTSTATUS {
    ((error & 0xFFFF) | 0xC007_0000) as i32
}

fn friendly_name(path: &[u16]) -> Option<String> {
    let mut kind: DEVPROPTYPE = 0;
    let mut buf = vec![0u16; 256];
    let mut size = u32::try_from(buf.len() * 2).ok()?;
    // SAFETY: `path` is NUL-terminated; the buffer holds `size` bytes.
    let r = unsafe {
        CM_Get_Device_Interface_PropertyW(
            path.as_ptr(),
            &DEVPKEY_DeviceInterface_FriendlyName,
            &raw mut kind,
            buf.as_mut_ptr().cast(),
            &raw mut size,
            0,
        )
    };
    (r == CR_SUCCESS).then(|| {
        let n = (size as usize / 2).min(buf.len());
        String::from_utf16_lossy(&buf[..n]).trim_end_matches('\0').to_string()
    })
}

/// Memory from `VirtualAlloc`: page-aligned, zeroed, freed on drop.
struct Memory {
    base: *mut u8,
    len: usize,
}

// SAFETY: plain process memory owned by this value.
unsafe impl Send for Memory {}
// SAFETY: shared references only read.
unsafe impl Sync for Memory {}

impl IoMemory for Memory {
    fn as_ptr(&self) -> *mut u8 {
        self.base
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: reserved and committed by VirtualAlloc in `alloc`; released once.
        unsafe { VirtualFree(self.base.cast(), 0, MEM_RELEASE) };
    }
}

/// An overlapped request: the `OVERLAPPED` lives in a box that stays put until it completes.
struct InFlight {
    file: HANDLE,
    overlapped: Box<OVERLAPPED>,
    done: Option<Io>,
}

// SAFETY: the OVERLAPPED is only touched by the kernel and by this owner.
unsafe impl Send for InFlight {}

impl InFlight {
    fn result(&self) -> Io {
        #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)] // the low half is the NTSTATUS
        let status = self.overlapped.Internal as u32 as i32;
        Io { status, information: self.overlapped.InternalHigh }
    }
}

impl Pending for InFlight {
    fn wait(&mut self) -> Io {
        if let Some(io) = self.done {
            return io;
        }
        let mut bytes = 0u32;
        // SAFETY: the OVERLAPPED of a request on `file`; waits for it (bWait = TRUE).
        unsafe { GetOverlappedResult(self.file, &raw const *self.overlapped, &raw mut bytes, 1) };
        let io = self.result();
        self.done = Some(io);
        io
    }

    fn poll(&mut self) -> Option<Io> {
        if self.done.is_none() && self.overlapped.Internal != STATUS_PENDING as usize {
            return Some(self.wait());
        }
        self.done
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The OVERLAPPED may not be freed while the kernel may still write it.
        self.wait();
        // SAFETY: the event created in `submit`, closed once.
        unsafe { CloseHandle(self.overlapped.hEvent) };
    }
}

impl Backend for Windows {
    fn name(&self) -> &'static str {
        "windows"
    }

    fn filters(&self, category: &GUID) -> Vec<FilterPath> {
        let g = guid(category);
        let mut len = 0u32;
        // SAFETY: asks for the size of the present interfaces' list.
        let r = unsafe {
            CM_Get_Device_Interface_List_SizeW(&raw mut len, &g, null(), CM_GET_DEVICE_INTERFACE_LIST_PRESENT)
        };
        if r != CR_SUCCESS || len <= 1 {
            return Vec::new();
        }
        let mut buf = vec![0u16; len as usize];
        // SAFETY: `buf` holds `len` characters.
        let r = unsafe {
            CM_Get_Device_Interface_ListW(
                &g,
                null(),
                buf.as_mut_ptr(),
                len,
                CM_GET_DEVICE_INTERFACE_LIST_PRESENT,
            )
        };
        if r != CR_SUCCESS {
            return Vec::new();
        }
        buf.split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let mut z = s.to_vec();
                z.push(0);
                FilterPath { path: String::from_utf16_lossy(s), friendly_name: friendly_name(&z) }
            })
            .collect()
    }

    fn open(&self, path: &str) -> Result<Handle, Fail> {
        let name = wide(path);
        // SAFETY: a NUL-terminated path; no security attributes or template.
        let h = unsafe {
            CreateFileW(
                name.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                null_mut(),
            )
        };
        if h == INVALID_HANDLE_VALUE {
            return Err(Fail::Win32(last_error()));
        }
        Ok(Handle(h as usize as u64))
    }

    fn create_pin_access(&self, filter: Handle, connect: &[u8], access: u32) -> Result<Handle, Fail> {
        // ksuser reads the KSPIN_CONNECT and the format after it: give it an aligned copy.
        let mut aligned = vec![0u64; connect.len().div_ceil(8)];
        // SAFETY: `aligned` holds at least `connect.len()` bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(connect.as_ptr(), aligned.as_mut_ptr().cast::<u8>(), connect.len())
        };
        let mut pin: HANDLE = null_mut();
        // SAFETY: a filter handle and a KSPIN_CONNECT followed by its format.
        let error = unsafe {
            KsCreatePin(handle(filter), aligned.as_ptr().cast::<KSPIN_CONNECT>(), access, &raw mut pin)
        };
        if error != 0 {
            return Err(Fail::Win32(error));
        }
        Ok(Handle(pin as usize as u64))
    }

    fn ioctl(&self, h: Handle, code: u32, input: &[u8], output: &mut [u8]) -> Io {
        // SAFETY: both slices outlive the call, which waits for the request.
        let mut pending =
            unsafe { self.submit(h, code, input.as_ptr(), input.len(), output.as_mut_ptr(), output.len()) };
        pending.wait()
    }

    fn alloc(&self, len: usize) -> Box<dyn IoMemory> {
        // SAFETY: a fresh read-write region; NULL only on exhaustion.
        let base = unsafe { VirtualAlloc(null(), len.max(1), MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE) };
        assert!(!base.is_null(), "VirtualAlloc({len}) failed: {}", last_error());
        Box::new(Memory { base: base.cast(), len })
    }

    unsafe fn submit(
        &self,
        h: Handle,
        code: u32,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_len: usize,
    ) -> Box<dyn Pending> {
        let file = handle(h);
        let (Ok(in_len), Ok(out_len)) = (u32::try_from(input_len), u32::try_from(output_len)) else {
            return Box::new(Failed(Io { status: ksabi::STATUS_INVALID_PARAMETER, information: 0 }));
        };
        let mut overlapped = Box::new(OVERLAPPED { Internal: UNWRITTEN, ..OVERLAPPED::default() });
        // SAFETY: a manual-reset event, unnamed, initially clear.
        overlapped.hEvent = unsafe { CreateEventW(null(), 1, 0, null()) };
        // SAFETY: the caller keeps the buffers valid until completion; the OVERLAPPED is boxed and
        // owned by the returned value, which waits before freeing it.
        let ok = unsafe {
            DeviceIoControl(
                file,
                code,
                input.cast::<c_void>(),
                in_len,
                output.cast::<c_void>(),
                out_len,
                null_mut(),
                &raw mut *overlapped,
            )
        };
        let error = if ok == 0 { last_error() } else { 0 };
        let mut request = InFlight { file, overlapped, done: None };
        if ok == 0 && error != ERROR_IO_PENDING && request.overlapped.Internal == UNWRITTEN {
            // Failed before reaching the driver: only the Win32 error is known, and nothing will
            // ever signal the event.
            request.done = Some(Io { status: status_from_win32(error), information: 0 });
        }
        Box::new(request)
    }

    fn create_event(&self) -> Result<Handle, Fail> {
        // SAFETY: an unnamed manual-reset event, not signalled.
        let h = unsafe { CreateEventW(null(), 1, 0, null()) };
        if h.is_null() {
            return Err(Fail::Win32(last_error()));
        }
        Ok(Handle(h as usize as u64))
    }

    fn cancel(&self, h: Handle) -> Result<(), Fail> {
        // SAFETY: cancels every request of this thread and others on the handle.
        if unsafe { CancelIoEx(handle(h), null()) } == 0 {
            let e = last_error();
            if e != ERROR_NOT_FOUND {
                return Err(Fail::Win32(e));
            }
        }
        Ok(())
    }

    fn close(&self, h: Handle) -> Result<(), Fail> {
        // SAFETY: a handle this backend opened, closed once by its owner.
        if unsafe { CloseHandle(handle(h)) } == 0 {
            return Err(Fail::Win32(last_error()));
        }
        Ok(())
    }
}

/// A request that never got in flight.
struct Failed(Io);

impl Pending for Failed {
    fn wait(&mut self) -> Io {
        self.0
    }
    fn poll(&mut self) -> Option<Io> {
        Some(self.0)
    }
}
