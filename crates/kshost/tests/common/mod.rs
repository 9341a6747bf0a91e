//! Shared by kshost's own tests: the tiny driver, and the client steps they all take.
#![allow(dead_code)] // each test binary uses part of it

pub mod tiny;

use ksabi::{GENERIC_READ, GENERIC_WRITE, IOCTL_KS_READ_STREAM, KSSTREAM_HEADER};
use kshost::{Handle, Machine, Overlapped, UserBuffer};

/// Opens the tiny filter (its first interface) and a pin on it, both for reading and writing.
pub fn open_pin(m: &Machine) -> (Handle, Handle) {
    let path = m.interfaces(&tiny::TINY_CATEGORY)[0].path.clone();
    let filter = m.create_file(&path, GENERIC_READ | GENERIC_WRITE).unwrap();
    let pin = m.ks_create_pin(filter, &tiny::connect_blob(0), GENERIC_READ | GENERIC_WRITE).unwrap();
    (filter, pin)
}

/// A one-header read's memory in the client process: its data buffer and its header.
pub struct Read {
    pub data: UserBuffer,
    pub header: UserBuffer,
}

impl Read {
    /// A buffer of `extent` bytes and a header naming it, with `options` as its `OptionsFlags`.
    pub fn new(m: &Machine, extent: u32, options: u32) -> Self {
        let data = m.alloc_user(extent as usize);
        let mut header = m.alloc_user(size_of::<KSSTREAM_HEADER>());
        header.as_mut_slice().copy_from_slice(tiny::bytes_of(&tiny::stream_header(
            data.as_ptr(),
            extent,
            0,
            options,
        )));
        Self { data, header }
    }

    /// Sends it on `pin` (`IOCTL_KS_READ_STREAM`, overlapped).
    ///
    /// # Safety
    /// `self` outlives the request: kept until it completes, or leaked ([`Read::leak`]).
    pub unsafe fn send(&self, m: &Machine, pin: Handle) -> Overlapped {
        // SAFETY: the caller keeps the header and the buffer it names alive while the driver has them.
        unsafe {
            m.device_io_control_overlapped(
                pin,
                IOCTL_KS_READ_STREAM,
                std::ptr::null(),
                0,
                self.header.as_ptr(),
                self.header.len(),
            )
        }
    }

    /// Keeps the memory for good: for a read the driver may never complete.
    pub fn leak(self) {
        std::mem::forget(self);
    }
}
