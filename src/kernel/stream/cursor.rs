//! Where a stream IRP's processing stands: the header being filled or drained, how far into its
//! frame, and that header's MDL. Kept in the IRP itself (`Tail.Overlay.DriverContext[0]` and
//! `[2]`; KS' queue helpers own `[1]` and the list entry), so a pending IRP resumes where it
//! stopped without any allocation.
//!
//! The caller's buffers are reached as [`CallerBytes`] / [`CallerBytesMut`], never as Rust
//! slices: they are the caller's pages (locked and mapped), which another thread of the caller
//! may write while the driver copies — so they are only ever copied, byte for byte, like
//! `RtlCopyMemory` does.

use core::marker::PhantomData;
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::Ordering;

use ksabi::{
    KSSTREAM_HEADER, KsStreamOptions, MDL, NTSTATUS, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER,
};

use super::Probed;
use crate::kernel::nt::{self, ContextSlot, OwnedIrp};

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

/// A position in a probed stream IRP, borrowed from the request ([`super::StreamIrp::cursor`],
/// [`super::Acquired::cursor`]): `KsProbeStreamIrp` has put the header array in the system buffer
/// and one MDL per header with `FrameExtent > 0`, in header order ([`start`] checked it).
pub struct Cursor<'a> {
    irp: &'a mut OwnedIrp,
    headers: *mut u8,
    len: usize,
    /// Byte offset of the current header in the array (= bytes of headers finished).
    pub at: usize,
    /// Bytes of the current header's frame already moved.
    pub offset: usize,
    /// The current header's MDL (null if its `FrameExtent` is 0).
    mdl: *mut MDL,
}

/// Sets up the cursor of a new stream request, at its first header. Checks what the stream path
/// relies on: every header as ks.sys would ([`check_header`]: it skips them for a request that
/// came with MDLs); no header carries an option ksring does not implement ([`UNIMPLEMENTED_OPTIONS`]:
/// with some of them ks.sys builds a second MDL, or an unlocked placeholder, so MDLs would no
/// longer pair with headers — `STATUS_INVALID_PARAMETER`); every header that needs an MDL has
/// exactly one, locked and already mapped by ks.sys, as long as `FrameExtent`, and no MDL is left
/// over (`STATUS_INSUFFICIENT_RESOURCES`); for reads, every header has room (`FrameExtent > 0`,
/// else `STATUS_INVALID_BUFFER_SIZE`). On an error the caller frees the chain's unlocked MDLs
/// ([`nt::free_unlocked_mdls`]) before completing the IRP.
///
/// # Safety
/// `irp` is a stream IRP the caller owns, successfully probed by `KsProbeStreamIrp` with
/// `KSPROBE_ALLOCATEMDL`.
pub(super) unsafe fn start(irp: &mut OwnedIrp, reading: bool) -> Result<(), NTSTATUS> {
    let len = irp.ioctl().OutputBufferLength as usize;
    // After the probe the (captured) header array is the system buffer.
    let headers = irp.system_buffer();
    let first_mdl = irp.mdl_address();
    let mut cursor = Cursor { irp, headers, len, at: 0, offset: 0, mdl: first_mdl };
    // Every header as ks.sys checks them, all before anything else (its order: a request gets the
    // status it would get from ks.sys alone).
    let mut at = 0;
    while at < len {
        at += cursor.check_header(at, reading)?;
    }
    let mut mdl = first_mdl;
    while let Some(h) = cursor.header_at(cursor.at) {
        if h.OptionsFlags & UNIMPLEMENTED_OPTIONS != 0 {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if h.FrameExtent > 0 {
            let Some(m) = NonNull::new(mdl) else {
                return Err(STATUS_INSUFFICIENT_RESOURCES);
            };
            // SAFETY: an MDL of the IRP's chain, built by the probe.
            let m = unsafe { m.as_ref() };
            if m.ByteCount < h.FrameExtent || nt::mdl_system_address(m).is_null() {
                return Err(STATUS_INSUFFICIENT_RESOURCES);
            }
            mdl = m.Next;
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
    Ok(())
}

/// `OptionsFlags` bits ks.sys refuses on a read header (when it builds MDLs: its mask
/// `0xFFFA23FF`).
const READ_FORBIDDEN: u32 = 0xFFFA_23FF;

/// `KSSTREAM_HEADER_OPTIONSF_PERSIST_SAMPLE | KSSTREAM_HEADER_OPTIONSF_SAMPLE_PERSISTED`.
const PERSISTED: u32 = KsStreamOptions::PERSIST_SAMPLE.union(KsStreamOptions::SAMPLE_PERSISTED).bits();
/// A header with `KSSTREAM_HEADER_OPTIONSF_METADATA` is at least this long, and names its metadata
/// buffer: length (ULONG) at `+0x80`, address at `+0x88` (ks.sys' layout).
const METADATA_HEADER: usize = 0xA0;
const METADATA_LENGTH_AT: usize = 0x80;
const METADATA_ADDRESS_AT: usize = 0x88;

impl Cursor<'_> {
    /// What ks.sys' `KsProbeStreamIrp` checks of the header at `at` (`HeaderSize` 0, no
    /// `KSPROBE_ALLOWFORMATCHANGE`), in its order; returns the header's `Size`. `Size` at least a
    /// header, a multiple of 8 and within what is left (`STATUS_INVALID_BUFFER_SIZE`). A write:
    /// `DataUsed` within `FrameExtent` (`STATUS_INVALID_BUFFER_SIZE`); `TYPECHANGED` refused — as
    /// `STATUS_INVALID_BUFFER_SIZE` unless it is a lone header, then `STATUS_INVALID_PARAMETER`.
    /// A read: `DataUsed` 0 (`STATUS_INVALID_BUFFER_SIZE`), no forbidden option
    /// (`STATUS_INVALID_PARAMETER`). Then, with bytes: `PERSIST_SAMPLE`/`SAMPLE_PERSISTED` need
    /// `Data` (`STATUS_INVALID_PARAMETER`); `METADATA` needs a header of `0xA0` bytes
    /// (`STATUS_INVALID_BUFFER_SIZE`) naming a buffer (`STATUS_INVALID_PARAMETER`); without bytes,
    /// `METADATA` is refused (`STATUS_INVALID_PARAMETER`). ks.sys skips every one of these for a
    /// request that arrives with MDLs (a kernel sender's, as ksring's IRP sources send): checked
    /// again here, such a request gets the answers any other would.
    fn check_header(&self, at: usize, reading: bool) -> Result<usize, NTSTATUS> {
        let left = self.len - at;
        let Some(h) = self.header_at(at) else {
            return Err(STATUS_INVALID_BUFFER_SIZE); // less than a header left
        };
        let size = h.Size as usize;
        if size < size_of::<KSSTREAM_HEADER>() || !size.is_multiple_of(8) || size > left {
            return Err(STATUS_INVALID_BUFFER_SIZE);
        }
        if reading {
            if h.DataUsed != 0 {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            if h.OptionsFlags & READ_FORBIDDEN != 0 {
                return Err(STATUS_INVALID_PARAMETER);
            }
        } else {
            if h.DataUsed > h.FrameExtent {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            if h.OptionsFlags & KsStreamOptions::TYPECHANGED.bits() != 0 {
                let lone = at == 0 && left == size_of::<KSSTREAM_HEADER>();
                return Err(if lone { STATUS_INVALID_PARAMETER } else { STATUS_INVALID_BUFFER_SIZE });
            }
        }
        let metadata = h.OptionsFlags & KsStreamOptions::METADATA.bits() != 0;
        if h.FrameExtent == 0 {
            return if metadata { Err(STATUS_INVALID_PARAMETER) } else { Ok(size) };
        }
        if h.OptionsFlags & PERSISTED != 0 && h.Data.is_null() {
            return Err(STATUS_INVALID_PARAMETER);
        }
        if metadata {
            // (ks.sys also checks what is left of the array; `size <= left` makes that implied.)
            if size < METADATA_HEADER {
                return Err(STATUS_INVALID_BUFFER_SIZE);
            }
            let length = self.bytes_at::<4>(at + METADATA_LENGTH_AT).map(u32::from_ne_bytes);
            let address = self.bytes_at::<8>(at + METADATA_ADDRESS_AT).map(u64::from_ne_bytes);
            if length.unwrap_or(0) == 0 || address.unwrap_or(0) == 0 {
                return Err(STATUS_INVALID_PARAMETER);
            }
        }
        Ok(size)
    }

    /// `N` bytes of the header array at `at`, if they lie in it.
    fn bytes_at<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        if at.checked_add(N)? > self.len || self.headers.is_null() {
            return None;
        }
        let mut bytes = [0u8; N];
        // SAFETY: `N` bytes inside the probed header array (checked above), into a local.
        unsafe { core::ptr::copy_nonoverlapping(self.headers.wrapping_add(at), bytes.as_mut_ptr(), N) };
        Some(bytes)
    }
}

/// The cursor saved in a pending request (set up by [`start`]: its system buffer is the probed
/// header array, its MDLs checked).
pub(super) fn load(irp: &mut Probed) -> Cursor<'_> {
    let position = irp.context(ContextSlot::Position).load(Ordering::Relaxed).addr();
    let mdl = irp.context(ContextSlot::Mdl).load(Ordering::Relaxed).cast();
    let len = irp.ioctl().OutputBufferLength as usize;
    let headers = irp.system_buffer();
    Cursor { irp, headers, len, at: position & 0xFFFF_FFFF, offset: position >> 32, mdl }
}

impl Cursor<'_> {
    /// Writes the position back into the request (before it goes back on its queue).
    pub fn save(&self) {
        let position = self.at | (self.offset << 32);
        let at = core::ptr::without_provenance_mut(position);
        self.irp.context(ContextSlot::Position).store(at, Ordering::Relaxed);
        self.irp.context(ContextSlot::Mdl).store(self.mdl.cast(), Ordering::Relaxed);
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

    /// Rewrites the current header (a read fills in `DataUsed`, flags and times); nothing when
    /// every header is done.
    pub fn set_header(&mut self, header: &KSSTREAM_HEADER) {
        if self.header().is_none() {
            return;
        }
        #[allow(clippy::cast_ptr_alignment)] // written unaligned
        let at = self.headers.wrapping_add(self.at).cast::<KSSTREAM_HEADER>();
        // SAFETY: the current header is inside the array (checked just above).
        unsafe { at.write_unaligned(*header) };
    }

    /// The current header's buffer: `FrameExtent` bytes, and never more than its MDL describes
    /// (a kernel-mode caller's headers are not captured: it could change `FrameExtent` after
    /// [`start`] checked it); none if it has no MDL.
    fn buffer(&self) -> (*mut u8, usize) {
        match self.header() {
            Some(h) if !self.mdl.is_null() => {
                // SAFETY: an MDL of the request's chain, checked locked and mapped by `start`.
                let mdl = unsafe { &*self.mdl };
                (nt::mdl_system_address(mdl), (h.FrameExtent as usize).min(mdl.ByteCount as usize))
            }
            _ => (null_mut(), 0),
        }
    }

    /// What is left of the current (write) header's frame: its `DataUsed` bytes after the
    /// `offset` already moved.
    pub fn unsent(&self) -> CallerBytes<'_> {
        let (base, extent) = self.buffer();
        if base.is_null() {
            return CallerBytes::EMPTY;
        }
        let used = self.header().map_or(0, |h| h.DataUsed as usize).min(extent);
        CallerBytes {
            ptr: base.wrapping_add(self.offset),
            len: used.saturating_sub(self.offset),
            buffer: PhantomData,
        }
    }

    /// The room left in the current (read) header's buffer: `FrameExtent` bytes after the
    /// `offset` already filled.
    pub fn room(&mut self) -> CallerBytesMut<'_> {
        let (base, extent) = self.buffer();
        if base.is_null() {
            return CallerBytesMut { ptr: core::ptr::dangling_mut(), len: 0, buffer: PhantomData };
        }
        CallerBytesMut {
            ptr: base.wrapping_add(self.offset),
            len: extent.saturating_sub(self.offset),
            buffer: PhantomData,
        }
    }

    /// The request's `IoStatus.Information` (a write's bytes accepted so far).
    pub fn information(&self) -> usize {
        self.irp.io_status().Information
    }

    /// Adds `n` to the request's `IoStatus.Information`.
    pub fn add_information(&mut self, n: usize) {
        self.irp.io_status_mut().Information += n;
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

/// Bytes of a caller's buffer, to be copied from (see the module's comment).
#[derive(Clone, Copy)]
pub struct CallerBytes<'a> {
    ptr: *const u8,
    len: usize,
    buffer: PhantomData<&'a [u8]>,
}

impl CallerBytes<'_> {
    /// No bytes.
    pub const EMPTY: Self = Self { ptr: core::ptr::dangling(), len: 0, buffer: PhantomData };

    /// How many.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The first `n` of them (all if fewer).
    #[must_use]
    pub fn prefix(self, n: usize) -> Self {
        Self { len: self.len.min(n), ..self }
    }

    /// Copies them to the start of `to`, as many as fit; returns how many.
    pub fn copy_to(self, to: &mut [u8]) -> usize {
        let n = self.len.min(to.len());
        // SAFETY: `n` bytes are readable at `ptr` (a locked, mapped buffer borrowed for `'_`) and
        // writable in `to`; a caller's buffer never overlaps the driver's memory.
        unsafe { crate::sys::copy_memory(to.as_mut_ptr(), self.ptr, n) };
        n
    }
}

/// Room in a caller's buffer, to be copied into (see the module's comment).
pub struct CallerBytesMut<'a> {
    ptr: *mut u8,
    len: usize,
    buffer: PhantomData<&'a mut [u8]>,
}

impl CallerBytesMut<'_> {
    /// Copies `from` to the start, as much as fits; returns how many bytes.
    pub fn copy_from(&mut self, from: &[u8]) -> usize {
        let n = self.len.min(from.len());
        // SAFETY: `n` bytes writable at `ptr` (borrowed mutably for `'_`) and readable in
        // `from`; a caller's buffer never overlaps the driver's memory.
        unsafe { crate::sys::copy_memory(self.ptr, from.as_ptr(), n) };
        n
    }

    /// Copies another caller's bytes to the start, as many as fit; returns how many. (Two
    /// requests' buffers: a write's straight into a read's.)
    pub fn copy_from_caller(&mut self, from: CallerBytes<'_>) -> usize {
        let n = self.len.min(from.len);
        // SAFETY: `n` bytes writable here and readable there, both locked and mapped. The two
        // ranges may overlap (a kernel caller's non-paged buffer is its own system address, and
        // it may give the same one to a write and a read): a move, not a copy.
        unsafe { crate::sys::move_memory(self.ptr, from.ptr, n) };
        n
    }
}
