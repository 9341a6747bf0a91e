//! Stream requests as types (`IOCTL_KS_WRITE_STREAM` / `IOCTL_KS_READ_STREAM`), so that the
//! stream path above ([`crate::stream`]) moves data and decides without `unsafe`.
//!
//! A request's life, each step a type that can only go on to the next:
//! 1. [`StreamIrp::probe`]: `KsProbeStreamIrp` and the checks the stream path relies on turn an
//!    [`Irp`] into a [`StreamIrp`] — owned, its headers and buffers safe to reach through a
//!    [`Cursor`] — or complete it with the refusal.
//! 2. [`StreamQueue::push`]: marked pending, on its pin's KS cancel-safe queue; the dispatch
//!    routine gives it up.
//! 3. [`StreamQueue::acquire_first`] (only with the side's [`PumpKey`], i.e. under the lock its
//!    pumps take) hands out an [`Acquired`] request: still linked, not cancelable, the pump's until
//!    it [`Acquired::release`]s it back (cancelable again) or [`Acquired::finish`]es it into the
//!    hold's [`Completions`], which complete it only once the locks are let go.
//! 4. A cancel takes a queued request off its queue ([`cancel`]) and completes it — or, if a pump
//!    is releasing it at that moment, leaves it to that pump's `Completions`.
//!
//! How a cancelled request completes is the stream path's decision: the two calls up into it are
//! [`crate::stream::cancelled_result`] and [`crate::stream::on_cancel`].

mod completions;
mod cursor;
mod lent;
mod queue;

use core::ptr::NonNull;

use ksabi::{DEVICE_OBJECT, IOCTL_KS_READ_STREAM, IRP, KsProbe, NTSTATUS, STATUS_CANCELLED, nt_success};

pub use completions::Completions;
pub use cursor::{CallerBytes, Cursor};
pub use lent::{LendOwner, LentRead};
pub use queue::{PumpKey, StreamQueue};

use super::irp::Irp;
use super::nt::OwnedIrp;
use super::object::{self, Object};
use crate::sys;

/// Which stream IOCTL.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// `IOCTL_KS_WRITE_STREAM`, on the input pin.
    Write,
    /// `IOCTL_KS_READ_STREAM`, on the output pin.
    Read,
}

/// A probed stream request the driver owns outright (off every queue): right after
/// [`StreamIrp::probe`], or in the cancel routine once KS has unlinked it.
#[must_use = "a stream request must be queued or completed"]
pub struct StreamIrp {
    raw: Probed,
}

/// A stream request [`StreamIrp::probe`] set up — probed by ks.sys, checked, its cursor saved —
/// and that this module owns. Only `probe` makes one from a request; the queue and the cancel
/// routine make one again from a request of a queue, which only holds probed ones.
struct Probed(OwnedIrp);

impl core::ops::Deref for Probed {
    type Target = OwnedIrp;
    fn deref(&self) -> &OwnedIrp {
        &self.0
    }
}

impl core::ops::DerefMut for Probed {
    fn deref_mut(&mut self) -> &mut OwnedIrp {
        &mut self.0
    }
}

// SAFETY: an IRP is not tied to a thread: whoever owns it may complete it anywhere.
unsafe impl Send for StreamIrp {}

impl StreamIrp {
    /// `KsProbeStreamIrp` for `direction` (headers captured, one MDL per header with data, locked
    /// and mapped), then [`Cursor`]'s checks. On a refusal the request is completed with it (after
    /// freeing MDLs the probe left unlocked) and the status is returned for the dispatch routine.
    ///
    /// # Errors
    /// The status the request was completed with.
    pub fn probe(irp: Irp, direction: Direction) -> Result<Self, NTSTATUS> {
        let flags = match direction {
            Direction::Write => {
                KsProbe::STREAMWRITE | KsProbe::ALLOCATEMDL | KsProbe::PROBEANDLOCK | KsProbe::SYSTEMADDRESS
            }
            Direction::Read => KsProbe::ALLOCATEMDL | KsProbe::PROBEANDLOCK | KsProbe::SYSTEMADDRESS,
        };
        // SAFETY: a stream IRP we own; ks.sys probes, captures and maps the caller's headers and
        // data.
        let status = unsafe { sys::KsProbeStreamIrp(irp.as_raw(), flags.bits(), 0) };
        if !nt_success(status) {
            return Err(irp.complete(status, 0));
        }
        let mut raw = irp.into_owned();
        // SAFETY: ours, and successfully probed with KSPROBE_ALLOCATEMDL just now.
        if let Err(status) = unsafe { cursor::start(&mut raw, direction == Direction::Read) } {
            // No unlocked MDL may reach the I/O manager.
            raw.free_unlocked_mdls();
            return Err(raw.complete(status, 0));
        }
        Ok(Self { raw: Probed(raw) })
    }

    /// Whether it is a read (`IOCTL_KS_READ_STREAM`).
    pub fn is_read(&self) -> bool {
        self.raw.ioctl().IoControlCode == IOCTL_KS_READ_STREAM
    }

    /// The pin (or filter) of its file object, which lives while the request is outstanding.
    pub fn object(&self) -> Option<Object<'_>> {
        object::file_of(&self.raw)?.object()
    }

    /// Where its processing stands.
    pub fn cursor(&mut self) -> Cursor<'_> {
        cursor::load(&mut self.raw)
    }

    /// Itself, unless a pump is releasing it ([`Acquired::release`]): a cancel routine that finds
    /// one gives it to that pump, which completes it once its locks are let go.
    fn unless_being_released(self) -> Option<Self> {
        (!completions::defer_cancel(&self.raw)).then_some(self)
    }

    /// Gives up ownership to the queue or the completion list that takes it.
    fn into_owned(self) -> OwnedIrp {
        self.raw.0
    }

    /// Completes it; returns `status`.
    pub fn complete(self, status: NTSTATUS, information: usize) -> NTSTATUS {
        self.raw.0.complete(status, information)
    }
}

/// A request a pump acquired from its queue ([`StreamQueue::acquire_first`]): still linked, its
/// cancel routine cleared, so it stays the pump's until given back or finished.
#[must_use = "an acquired request goes back to its queue or is finished"]
pub struct Acquired {
    raw: Probed,
    /// The id of the queue it came from (and of that queue's key).
    queue: usize,
}

// SAFETY: as for `StreamIrp`; a pump may leave it in progress for the next hold on any thread.
unsafe impl Send for Acquired {}

impl Acquired {
    /// Whether a cancel came for it since it was queued (`Irp->Cancel`).
    pub fn cancel_requested(&self) -> bool {
        self.raw.cancel_requested()
    }

    /// Where its processing stands.
    pub fn cursor(&mut self) -> Cursor<'_> {
        cursor::load(&mut self.raw)
    }

    /// Gives it back to `queue`, cancelable again. If a cancel came for it meanwhile,
    /// `KsReleaseIrpOnCancelableQueue` runs [`cancel`] right here, under the caller's lock: the
    /// cancel routine leaves the completion to `done`, which runs it after the locks are let go.
    ///
    /// `key` must be its queue's (it stands for the lock that queue's pumps take); with another
    /// key it is given back plainly, and a cancel that came meanwhile completes it right there.
    pub fn release(self, key: &mut PumpKey, done: &mut Completions) {
        let armed = key.is(self.queue);
        if armed {
            completions::arm(&self.raw);
        }
        // SAFETY: acquired from its queue, given up; armed (with its queue's key) for a cancel
        // that runs meanwhile, else completed by that cancel routine.
        unsafe { sys::KsReleaseIrpOnCancelableQueue(self.raw.as_ptr(), Some(cancel)) };
        // Armed, the request stays alive until the marker is read back: the key (the side's lock)
        // keeps other pumps of this queue from acquiring it, and a cancel leaves it to us.
        if armed && completions::disarm(&self.raw) {
            // The cancel routine unlinked it and left it to us: ours outright.
            let mut irp = StreamIrp { raw: self.raw };
            let (status, information) = crate::stream::cancelled_result(&mut irp);
            done.push(irp, status, information);
        }
    }

    /// If this read can be lent — nothing moved into it yet, at most `out.len()` headers, each a
    /// plain `KSSTREAM_HEADER` with its one MDL, locked and mapped — fills `out` with the headers
    /// of a kernel-mode read over the same buffers (`Data` each MDL's system address) and returns
    /// how many.
    pub fn lendable_headers(&mut self, out: &mut [ksabi::KSSTREAM_HEADER]) -> Option<usize> {
        lent::lendable_headers(&mut self.raw, out)
    }

    /// Unlinks it from `queue`: the caller's outright (to lend, [`StreamIrp::lend`]).
    pub fn take(self, queue: &StreamQueue) -> StreamIrp {
        queue.remove(&self.raw);
        StreamIrp { raw: self.raw }
    }

    /// Unlinks it from `queue` and has `done` complete it with `status` and `information` once
    /// the locks are let go.
    pub fn finish(self, queue: &StreamQueue, done: &mut Completions, status: NTSTATUS, information: usize) {
        queue.remove(&self.raw);
        done.push(StreamIrp { raw: self.raw }, status, information);
    }
}

/// The cancel routine of queued stream requests: lets `KsCancelRoutine` unlink the request and
/// release the cancel spin lock (it does not complete a request whose status is already
/// `STATUS_CANCELLED`), then completes it as the stream path says — unless a pump is releasing
/// it under its lock, which then completes it after dropping the lock ([`Acquired::release`]).
unsafe extern "system" fn cancel(device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    let Some(raw) = NonNull::new(irp) else { return };
    // SAFETY: the I/O manager (or KS) calls the cancel routine of our queued IRP with the cancel
    // spin lock held: the routine owns the request from here (KS unlinks it just below).
    let mut irp = Probed(unsafe { OwnedIrp::new(raw) });
    // Already cleared when `IoCancelIrp` calls us (it swaps the routine out first, as `KsCancelIo`
    // does). ReactOS' `KsAddIrpToCancelableQueue` and `KsReleaseIrpOnCancelableQueue` call us for a
    // request cancelled meanwhile with the routine still set, and its `IofCompleteRequest` asserts
    // `!Irp->CancelRoutine` (seen in the ReactOS lab): cleared here, whoever called.
    lent::clear_cancel_routine(&irp);
    irp.io_status_mut().Status = STATUS_CANCELLED;
    // SAFETY: as above; the IRP was queued with KsAddIrpToCancelableQueue.
    unsafe { sys::KsCancelRoutine(device, irp.as_ptr()) };
    // The IRP is off its queue and ours.
    let owned = StreamIrp { raw: irp };
    crate::stream::on_cancel(&owned);
    if let Some(mut owned) = owned.unless_being_released() {
        let (status, information) = crate::stream::cancelled_result(&mut owned);
        owned.complete(status, information);
    }
}
