//! Where a stream IRP's processing stands: the header being filled or drained, how far into its
//! frame, and that header's MDL. Kept in the IRP itself (`Tail.Overlay.DriverContext[0]` and
//! `[2]`; KS' queue helpers own `[1]` and the list entry), so a pending IRP resumes where it
//! stopped without any allocation.

use core::ptr::null_mut;

use ksabi::{
    IRP, KSSTREAM_HEADER, KsStreamOptions, MDL, NTSTATUS, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER,
};

use crate::kernel::nt::{self, tail_overlay};

/// `KSSTREAM_HEADER_OPTIONSF_*` bits ksring does not implement, refused on reads and writes:
/// `BUFFEREDTRANSFER`, `VRAM_DATA_TRANSFER`, `METADATA` (a second MDL), `FRAMEINFO`, `PERSIST_SAMPLE`
/// and `SAMPLE_PERSISTED` (an unlocked, unmapped placeholder MDL), `SECUREBUFFERTRANSFER` — the options
/// ks.sys lets a read carry.
pub const UNIMPLEMENTED_OPTIONS: u32 = KsStreamOptions::BUFFEREDTRANSFER
    .union(KsStreamOptions::VRAM_DATA_TRANSFER)
    .union(KsStreamOptions::METADATA)
    .union(KsStreamOptions::FRAMEINFO)
    .union(KsStreamOptions::PERSIST_SAMPLE)
    .union(KsStreamOptions::SAMPLE_PERSISTED)
    .union(KsStreamOptions::SECUREBUFFERTRANSFER)
    .bits();

/// A position in a probed stream IRP: `KsProbeStreamIrp` has put the header array in the system
/// buffer and one MDL per header with `FrameExtent > 0`, in header order.
pub struct Cursor {
    irp: *mut IRP,
    headers: *mut u8,
    len: usize,
    /// Byte offset of the current header in the array (= bytes of headers finished).
    pub at: usize,
    /// Bytes of the current header's frame already moved.
    pub offset: usize,
    /// The current header's MDL (null if its `FrameExtent` is 0).
    mdl: *mut MDL,
}

impl Cursor {
    /// A cursor at the first header. Checks what the stream path relies on: no header carries an
    /// option ksring does not implement ([`UNIMPLEMENTED_OPTIONS`]: with some of them ks.sys builds
    /// a second MDL, or an unlocked placeholder, so MDLs would no longer pair with headers —
    /// `STATUS_INVALID_PARAMETER`); every header that needs an MDL has exactly one, locked and
    /// already mapped by ks.sys, as long as `FrameExtent`, and no MDL is left over
    /// (`STATUS_INSUFFICIENT_RESOURCES`); for reads, every header has room (`FrameExtent > 0`,
    /// else `STATUS_INVALID_BUFFER_SIZE`). On an error the caller frees the chain's unlocked MDLs
    /// ([`nt::free_unlocked_mdls`]) before completing the IRP.
    ///
    /// # Safety
    /// `irp` is a stream IRP the caller owns, successfully probed by `KsProbeStreamIrp` with
    /// `KSPROBE_ALLOCATEMDL`.
    pub unsafe fn start(irp: *mut IRP, reading: bool) -> Result<Self, NTSTATUS> {
        // SAFETY: the caller's probed device-control IRP.
        let len = unsafe { nt::ioctl_parameters(irp) }.OutputBufferLength as usize;
        // SAFETY: after the probe the (captured) header array is the system buffer.
        let headers = unsafe { nt::system_buffer(irp) };
        // SAFETY: as above.
        let first_mdl = unsafe { (*irp).MdlAddress };
        let mut cursor = Self { irp, headers, len, at: 0, offset: 0, mdl: first_mdl };
        let mut mdl = first_mdl;
        while let Some(h) = cursor.header_at(cursor.at) {
            if h.OptionsFlags & UNIMPLEMENTED_OPTIONS != 0 {
                return Err(STATUS_INVALID_PARAMETER);
            }
            if h.FrameExtent > 0 {
                if mdl.is_null() {
                    return Err(STATUS_INSUFFICIENT_RESOURCES);
                }
                // SAFETY: an MDL of the IRP's chain, built by the probe.
                let m = unsafe { &*mdl };
                let (bytes, next) = (m.ByteCount, m.Next);
                // SAFETY: as above.
                if bytes < h.FrameExtent || unsafe { nt::mdl_system_address(mdl) }.is_null() {
                    return Err(STATUS_INSUFFICIENT_RESOURCES);
                }
                mdl = next;
            } else if reading {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            cursor.at += h.Size as usize;
        }
        if !mdl.is_null() {
            return Err(STATUS_INSUFFICIENT_RESOURCES); // an MDL no header accounts for
        }
        cursor.at = 0;
        cursor.save();
        Ok(cursor)
    }

    /// The cursor saved in a pending IRP.
    ///
    /// # Safety
    /// `irp` was set up by [`Cursor::start`] and the caller owns it now (acquired from its queue,
    /// or taken by its cancel routine).
    pub unsafe fn load(irp: *mut IRP) -> Self {
        // SAFETY: the caller owns the IRP; DriverContext is the owner's.
        let context = unsafe { (*tail_overlay(irp)).DriverContext };
        // SAFETY: as in `start`.
        let len = unsafe { nt::ioctl_parameters(irp) }.OutputBufferLength as usize;
        // SAFETY: as in `start`.
        let headers = unsafe { nt::system_buffer(irp) };
        let position = context[0].addr();
        Self { irp, headers, len, at: position & 0xFFFF_FFFF, offset: position >> 32, mdl: context[2].cast() }
    }

    /// Writes the position back into the IRP (before it goes back on its queue).
    pub fn save(&self) {
        let position = self.at | (self.offset << 32);
        let overlay = tail_overlay(self.irp);
        // SAFETY: the caller of `start`/`load` owns the IRP.
        unsafe { (*overlay).DriverContext[0] = core::ptr::without_provenance_mut(position) };
        // SAFETY: as above.
        unsafe { (*overlay).DriverContext[2] = self.mdl.cast() };
    }

    fn header_at(&self, at: usize) -> Option<KSSTREAM_HEADER> {
        if at + size_of::<KSSTREAM_HEADER>() > self.len || self.headers.is_null() {
            return None;
        }
        #[allow(clippy::cast_ptr_alignment)] // read unaligned
        let header = self.headers.wrapping_add(at).cast::<KSSTREAM_HEADER>();
        // SAFETY: inside the probed header array (a kernel caller's may be unaligned).
        Some(unsafe { header.read_unaligned() })
    }

    /// The current header, or `None` when every header is done.
    pub fn header(&self) -> Option<KSSTREAM_HEADER> {
        self.header_at(self.at)
    }

    /// Rewrites the current header (a read fills in `DataUsed`, flags and times).
    pub fn set_header(&self, header: &KSSTREAM_HEADER) {
        debug_assert!(self.header().is_some());
        #[allow(clippy::cast_ptr_alignment)] // written unaligned
        let at = self.headers.wrapping_add(self.at).cast::<KSSTREAM_HEADER>();
        // SAFETY: the current header is inside the array (it was just read from there).
        unsafe { at.write_unaligned(*header) };
    }

    /// The current header's buffer (`FrameExtent` bytes; null if it has none).
    pub fn data(&self) -> *mut u8 {
        if self.mdl.is_null() {
            return null_mut();
        }
        // SAFETY: an MDL of the IRP, checked mappable in `start`.
        unsafe { nt::mdl_system_address(self.mdl) }
    }

    /// Moves to the next header.
    pub fn advance(&mut self) {
        if let Some(h) = self.header() {
            if h.FrameExtent > 0 && !self.mdl.is_null() {
                // SAFETY: an MDL of the IRP's chain.
                self.mdl = unsafe { (*self.mdl).Next };
            }
            self.at += h.Size as usize;
            self.offset = 0;
        }
    }
}
