//! A client's read lent to an IRP source: taken off its pin's queue, its buffers named by a read
//! the source sends upstream, so that the upstream filter fills the client's buffers directly
//! (`docs/zero-copy-chain-ends.md`, the pull end).
//!
//! While lent, the request is on no queue, so KS' cancel routine cannot reach it: it gets one of
//! ours ([`lent_cancel`]). That routine only tells the owner (the source, which then cancels its
//! own request upstream) — it never completes the client's request, whose buffers the upstream
//! filter may be writing. The request goes back to the stream path only through
//! [`LentRead::take_back`], once the source's request is back:
//!
//! - `IoSetCancelRoutine(NULL)` returns our routine: no cancel came, the request is ours again;
//! - it returns NULL: a cancel took the routine. The routine may still be reading the request
//!   (under the cancel spin lock), so the request is ours only once the routine has told the
//!   owner it is done with it ([`LendOwner::lent_cancelled`], called after it let go of the lock
//!   and of the request) — never by waiting: the owner takes it back on the pass that signal
//!   schedules.
//!
//! The routine finds its owner through a reference on it kept in the request
//! (`DriverContext[3]`, free while the request is off every queue and completion list): whichever
//! of the routine and `take_back` swaps it out owns that reference, so the owner outlives the
//! routine's call into it.

use core::ffi::c_void;
use core::mem::offset_of;
use core::ptr::{NonNull, null_mut};
use core::sync::atomic::{AtomicPtr, Ordering};

use ksabi::{DEVICE_OBJECT, IRP, KSSTREAM_HEADER, MDL, NTSTATUS, PDRIVER_CANCEL, STATUS_SUCCESS};

use super::{Probed, StreamIrp};
use crate::kernel::nt::{self, ContextSlot, OwnedIrp};
use crate::kernel::pool::Shared;
use crate::sys;

/// Bytes of a stream header: only requests whose headers are plain ones are lent.
const HEADER: usize = size_of::<KSSTREAM_HEADER>();

/// What a lent read reports to.
pub trait LendOwner: Send + Sync + Sized + 'static {
    /// A cancel came for the lent read and its cancel routine is done with it: called at most
    /// once per loan, at or below `DISPATCH_LEVEL`, holding no lock.
    fn lent_cancelled(this: &Shared<Self>);
}

/// A client's read lent to an owner: off its queue, with our cancel routine set.
#[must_use = "a lent read is taken back and completed or queued again"]
pub struct LentRead {
    raw: Probed,
}

// SAFETY: as for `StreamIrp`.
unsafe impl Send for LentRead {}

/// `&Irp->CancelRoutine` as the atomic the I/O manager swaps (`IoSetCancelRoutine` is
/// `InterlockedExchangePointer` on it).
fn cancel_slot(irp: &OwnedIrp) -> &AtomicPtr<c_void> {
    let field = irp.as_ptr().wrapping_byte_add(offset_of!(IRP, CancelRoutine)).cast::<*mut c_void>();
    // SAFETY: an aligned pointer-sized field of an IRP the holder owns, alive while it is; every
    // access to it (ours and the I/O manager's) is an atomic exchange or load.
    unsafe { AtomicPtr::from_ptr(field) }
}

/// `IoSetCancelRoutine`: swaps the routine, returning the old one (null if none).
fn set_cancel_routine(irp: &OwnedIrp, routine: PDRIVER_CANCEL) -> *mut c_void {
    let new = routine.map_or(null_mut(), |f| f as *mut c_void);
    cancel_slot(irp).swap(new, Ordering::SeqCst)
}

impl StreamIrp {
    /// Lends it to `owner` with our cancel routine set. A cancel that came already gives it back
    /// (`Err`), its routine cleared: the caller queues it again, where KS completes it as
    /// cancelled.
    ///
    /// # Errors
    /// The request, if a cancel came before the routine was set.
    pub fn lend<T: LendOwner>(self, owner: &Shared<T>) -> Result<LentRead, Self> {
        let raw = self.raw;
        raw.context(ContextSlot::Link)
            .store(Shared::into_raw(owner.clone()).cast_mut().cast(), Ordering::SeqCst);
        let old = set_cancel_routine(&raw, Some(lent_cancel::<T>));
        debug_assert!(old.is_null(), "a request off its queue has no cancel routine");
        if raw.cancel_requested() && !set_cancel_routine(&raw, None).is_null() {
            // The cancel came first and did not see our routine: ours again, with our reference.
            drop_owner_reference::<T>(&raw);
            return Err(Self { raw });
        }
        // (A cancel that took the routine meanwhile tells the owner, as for any lent read.)
        Ok(LentRead { raw })
    }

    /// Completes a read a source's request filled in place: each of `filled` is what the upstream
    /// filter wrote in the header over the same buffer (`DataUsed`, flags, times), copied into
    /// the request's own header; `Information` is the bytes of the headers filled.
    pub fn deliver(mut self, filled: &[KSSTREAM_HEADER]) -> NTSTATUS {
        let information = {
            let mut cursor = self.cursor();
            for f in filled {
                let Some(h) = cursor.header() else { break };
                let out = KSSTREAM_HEADER {
                    DataUsed: f.DataUsed.min(h.FrameExtent),
                    OptionsFlags: f.OptionsFlags,
                    TypeSpecificFlags: f.TypeSpecificFlags,
                    PresentationTime: f.PresentationTime,
                    Duration: f.Duration,
                    ..h
                };
                cursor.set_header(&out);
                cursor.advance();
            }
            cursor.at
        };
        self.complete(STATUS_SUCCESS, information)
    }
}

impl LentRead {
    /// The head of its MDL chain, which the source's request carries while it is lent.
    pub fn mdls(&self) -> *mut MDL {
        self.raw.mdl_address()
    }

    /// Takes it back once the source's request that named its buffers is back: ours if no cancel
    /// took its routine, or if one did and `routine_done` (the owner was told, after the routine
    /// let go of it). Otherwise it stays lent (`Err`) until the routine's signal.
    ///
    /// # Errors
    /// Itself, while a cancel routine may still be reading it.
    pub fn take_back<T: LendOwner>(self, routine_done: bool) -> Result<StreamIrp, Self> {
        if !set_cancel_routine(&self.raw, None).is_null() {
            drop_owner_reference::<T>(&self.raw);
            return Ok(StreamIrp { raw: self.raw });
        }
        if routine_done { Ok(StreamIrp { raw: self.raw }) } else { Err(self) }
    }
}

/// For [`super::Acquired::lendable_headers`]: if this read can be lent — nothing moved into it yet, at most `out.len()` headers, each a
/// plain `KSSTREAM_HEADER` with its one MDL, locked and mapped — fills `out` with the headers
/// of a kernel-mode read over the same buffers (`Data` each MDL's system address) and returns
/// how many.
pub(super) fn lendable_headers(raw: &mut Probed, out: &mut [KSSTREAM_HEADER]) -> Option<usize> {
    if raw.ioctl().IoControlCode != ksabi::IOCTL_KS_READ_STREAM {
        return None;
    }
    let len = raw.ioctl().OutputBufferLength as usize;
    let count = len / HEADER;
    if count == 0 || !len.is_multiple_of(HEADER) || count > out.len() {
        return None;
    }
    let first_mdl = raw.mdl_address();
    let started = {
        let cursor = super::cursor::load(raw);
        cursor.at != 0 || cursor.offset != 0
    };
    if started {
        return None;
    }
    let mut mdl = first_mdl;
    for (i, slot) in out.iter_mut().take(count).enumerate() {
        let mut cursor = super::cursor::load(raw);
        cursor.at = i * HEADER;
        let h = cursor.header()?;
        let m = NonNull::new(mdl)?;
        // SAFETY: an MDL of the request's chain, checked locked and mapped by the probe's
        // `start` (one per header with bytes, and every read header has bytes).
        let m = unsafe { m.as_ref() };
        let data = nt::mdl_system_address(m);
        if h.Size as usize != HEADER || h.FrameExtent == 0 || m.ByteCount < h.FrameExtent || data.is_null() {
            return None;
        }
        *slot = KSSTREAM_HEADER {
            Size: h.Size,
            FrameExtent: h.FrameExtent,
            DataUsed: 0,
            Data: data.cast(),
            OptionsFlags: 0,
            TypeSpecificFlags: 0,
            PresentationTime: ksabi::KSTIME { Time: 0, Numerator: 0, Denominator: 0 },
            Duration: 0,
            Reserved: 0,
        };
        mdl = m.Next;
    }
    mdl.is_null().then_some(count)
}

/// `IoSetCancelRoutine(irp, NULL)`, for a cancel routine of ours (see `super::cancel`).
pub(super) fn clear_cancel_routine(irp: &OwnedIrp) {
    set_cancel_routine(irp, None);
}

/// Gives back the owner reference a lent read holds, if the cancel routine did not take it.
fn drop_owner_reference<T>(irp: &OwnedIrp) {
    let owner = irp.context(ContextSlot::Link).swap(null_mut(), Ordering::SeqCst);
    if !owner.is_null() {
        // SAFETY: the reference `lend` gave up into this slot, swapped out once.
        drop(unsafe { Shared::<T>::from_raw(owner.cast::<T>().cast_const()) });
    }
}

/// The cancel routine of a lent read (entered with the cancel spin lock held): takes the owner
/// reference out of the request, lets go of the lock — after which it no longer touches the
/// request — and tells the owner.
unsafe extern "system" fn lent_cancel<T: LendOwner>(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    let Some(raw) = NonNull::new(irp) else { return };
    // SAFETY: a lent read of ours, alive until its owner takes it back, which it does not before
    // this routine's signal below.
    let irp = unsafe { OwnedIrp::new(raw) };
    let owner = irp.context(ContextSlot::Link).swap(null_mut(), Ordering::SeqCst);
    // SAFETY: as above; set by `IoCancelIrp` before it called us.
    let irql = unsafe { (*raw.as_ptr()).CancelIrql };
    // SAFETY: the cancel spin lock `IoCancelIrp` holds for us, released once.
    unsafe { sys::IoReleaseCancelSpinLock(irql) };
    // The request is not touched from here on.
    if let Some(owner) = NonNull::new(owner) {
        // SAFETY: the reference `lend` gave up into the request, swapped out once (here).
        let owner = unsafe { Shared::<T>::from_raw(owner.as_ptr().cast::<T>().cast_const()) };
        T::lent_cancelled(&owner);
    }
}
