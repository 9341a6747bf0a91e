//! A pull source's lent reads: while the filter's ring is empty and a client's read waits on its
//! output, the source reads from upstream *into the client's buffers* — its request carries the
//! client read's own MDL chain — instead of into reserved ring space: the upstream filter's copy
//! is then the only one, where a read through the ring costs two (`docs/zero-copy-chain-ends.md`).
//!
//! Rules that keep the stream what it would be through the ring:
//! - **Order.** A read is lent only when nothing older can reach a client: the ring is empty and
//!   the source has nothing out and nothing unsettled (every slot free, every reservation given
//!   up or committed). While it is lent the source sends nothing else, and the output's pump gives
//!   later reads nothing, not even the end of the stream ([`crate::stream::lend_read`]). To get
//!   there, a source with reads out stops sending more while a lendable read waits.
//! - **Giving it back.** When the request returns with frames, the client's read completes with
//!   them (its headers filled in from the request's); an end-of-stream header ends the filter's
//!   input, as one read into the ring would. Frames that come back while the source's own pin
//!   stops are delivered too (they are in the client's buffer already), where frames read into
//!   the ring then are dropped and counted. With nothing (the upstream pin stopped, reset or
//!   closed, or the request was cancelled), the read goes back to the head of its queue, where it
//!   is served — or cancelled — as if it had never left; unless the output's requests were
//!   cancelled while it was lent (a STOP, reset or cleanup, even one already followed by a RUN):
//!   then it completes cancelled, as it would have on its queue. Giving it back kicks no source:
//!   after an upstream pin refused the read (stopped, resetting), the source waits for that pin's
//!   kick instead of lending again at once.
//! - **Cancel.** A cancel of the client's read (`CancelIoEx`, the thread's rundown) runs our
//!   cancel routine, which tells the source; the source cancels its request and gives the read
//!   back when that returns. A STOP, reset or cleanup of the output asks it back the same way
//!   ([`Source::recall_lent`]), and so do the source's own STOP and cleanup (they cancel every
//!   request of theirs). The cleanup waits for it: a lent read counts in the source's activity.

use core::sync::atomic::Ordering;

use ksabi::{
    KSSTREAM_HEADER, KsStreamOptions, STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE,
    STATUS_SUCCESS,
};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use super::slot::{SlotIo, SlotState};
use super::{HEADER, HEADERS, Source, Work};
use crate::filter::{Counters, Filter};
use crate::kernel::outbound::{EMPTY_HEADER, Worker};
use crate::kernel::pool::PoolBox;
use crate::kernel::pool::Shared;
use crate::kernel::stream::{Direction, LendOwner, LentRead, StreamIrp};
use crate::kernel::sync::ExclusiveGuard;
use crate::stream::{self, Lendable};

/// A read taken off the output's queue to be lent, with [`Filter::output_cancels`] then.
struct Taken {
    irp: StreamIrp,
    cancels: u32,
}

/// A client read lent to slot `slot`'s request.
pub(super) struct Loan {
    read: LentRead,
    pub(super) slot: usize,
    /// [`Filter::output_cancels`] when the read was taken.
    cancels: u32,
}

impl LendOwner for Source {
    fn lent_cancelled(this: &Shared<Self>) {
        this.lent_cancelled.store(true, Ordering::SeqCst);
        Worker::schedule(this);
    }
}

impl Source {
    /// The output whose read may be lent stops, resets or closes: a lent read is asked back (its
    /// request cancelled; the read then goes back to its queue, where the output's cancel
    /// completes it).
    pub fn recall_lent(this: &Shared<Self>) {
        this.recall.store(true, Ordering::SeqCst);
        Worker::schedule(this);
    }

    /// Lends the output's oldest read if it may be (`true`: it was, or a lendable read waits for
    /// what is out to come back first, and nothing more is sent); `false` to read into the ring.
    pub(super) fn lend_or_wait(this: &Shared<Self>, f: &Filter, work: &mut Work) -> bool {
        if f.reads.len() == 0 {
            // No read waits. While the client's reads are lent, reading ahead into the ring only
            // makes the next ones take the ring's copy: the frames wait upstream instead.
            return work.lending;
        }
        // Nothing out and nothing unsettled: a slot's request in flight holds its buffers (they
        // cannot be claimed), and one back but not yet settled — holding frames, or space to give
        // up — has reservations not yet settled.
        let idle = this.slots.iter().all(|s| s.io.claim().is_some_and(|io| io.reserved.settled()));
        let mut hop = [EMPTY_HEADER; HEADERS];
        if !idle {
            // Reads into the ring are out: a read that could be lent waits for them, and they are
            // taken back (an idle upstream filter would hold them, and the read behind them, for
            // as long as nothing comes; one it is filling comes back with what it holds).
            let waits = stream::lend_read(f, &mut hop, false).is_some();
            if waits {
                this.cancel_in_flight();
            }
            return waits;
        }
        // Slot 0's buffers, claimed before the read is taken (every slot is free: the claim
        // succeeds; the pass is the only claimer).
        let Some(io) = this.slots[0].io.claim() else { return false };
        // A recall from before this lend is void (one from after it is seen below, or by a pass).
        this.recall.store(false, Ordering::SeqCst);
        let Some(Lendable { irp: Some(irp), count, cancels }) = stream::lend_read(f, &mut hop, true) else {
            // The oldest read cannot be lent (nothing to take it to, or headers of a kind a
            // request of ours does not carry): through the ring, reading ahead as it goes.
            work.lending = false;
            return false;
        };
        work.lending = true;
        Self::lend(this, f, work, io, Taken { irp, cancels }, &hop[..count]);
        true
    }

    /// Sends slot 0's request (its buffers `io`) over the buffers of the read `taken` off the
    /// output's queue, with the headers `hop`.
    fn lend(
        this: &Shared<Self>,
        f: &Filter,
        work: &mut Work,
        mut io: ExclusiveGuard<'_, PoolBox<SlotIo>>,
        taken: Taken,
        hop: &[KSSTREAM_HEADER],
    ) {
        let Taken { irp, cancels } = taken;
        let i = 0;
        let slot = &this.slots[i];
        this.lent_cancelled.store(false, Ordering::SeqCst);
        let read = match irp.lend(this) {
            Ok(read) => read,
            Err(irp) => {
                // A cancel came before our routine was set: queued again, KS completes it there.
                give_back(f, irp);
                stream::lent_read_given_back(f);
                return;
            }
        };
        io.reserved.clear();
        io.buffers.foreign_headers()[..hop.len()].copy_from_slice(hop);
        io.hop_count = hop.len();
        let mdls = read.mdls();
        slot.seq.store(work.next_seq, Ordering::SeqCst);
        work.next_seq += 1;
        work.lent = Some(Loan { read, slot: i, cancels });
        // The cleanup waits for it to be given back.
        this.activity.enter();
        slot.state.store(SlotState::InFlight);
        this.in_flight.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the headers name exactly the lent read's buffers, one per MDL of its chain, in
        // order (`lendable_headers`); the read stays lent — its chain untouched — until the request
        // is back and settled (`service_lent`).
        unsafe {
            slot.request.send_borrowed(this, &this.target, &work.lease, Direction::Read, io, mdls, |io| {
                #[allow(clippy::cast_possible_truncation)] // at most HEADERS headers
                let length = (io.hop_count * HEADER) as u32;
                (io.buffers.foreign_headers().as_mut_ptr().cast(), length)
            });
        };
        // The source's own STOP or cleanup that looked for requests before this one was marked
        // would have missed it. (The output's need no look here: a STOP, reset or cleanup of the
        // output that came before the read was taken kept it from being taken — `lend_read` looks
        // at the state, under the lock the cancel's `let_go` takes after storing it — and one that
        // came after finds the read lent and recalls it.)
        if this.winding_down() && slot.state.load() == SlotState::InFlight {
            slot.request.cancel();
        }
    }

    /// Cancels the lent read's request if a cancel or a recall came for it, and gives the read
    /// back once the request is.
    pub(super) fn service_lent(&self, f: &Filter, work: &mut Work) {
        let Some(i) = work.lent.as_ref().map(|l| l.slot) else { return };
        let slot = &self.slots[i];
        match slot.state.load() {
            SlotState::InFlight => {
                let recalled = self.recall.swap(false, Ordering::SeqCst);
                if recalled || self.lent_cancelled.load(Ordering::SeqCst) {
                    slot.request.cancel();
                }
            }
            SlotState::Done => self.settle_lent(f, work, i),
            SlotState::Free | SlotState::Held => {}
        }
    }

    /// The lent read's request is back: the read completes with what it brought, or goes back to
    /// its queue — unless its cancel routine may still be reading it (then the routine's signal
    /// brings another pass).
    fn settle_lent(&self, f: &Filter, work: &mut Work, i: usize) {
        let Some(loan) = work.lent.take() else { return };
        let irp = match loan.read.take_back::<Self>(self.lent_cancelled.load(Ordering::SeqCst)) {
            Ok(irp) => irp,
            Err(read) => {
                work.lent = Some(Loan { read, ..loan });
                return;
            }
        };
        let slot = &self.slots[i];
        let status = slot.status.load(Ordering::SeqCst);
        let information = if status == STATUS_SUCCESS { slot.information.load(Ordering::SeqCst) } else { 0 };
        let mut ended = false;
        if let Some(mut io) = slot.io.claim() {
            let filled = (information / HEADER).min(io.hop_count);
            io.hop_count = 0;
            let headers = &io.buffers.foreign_headers()[..filled];
            if filled > 0 {
                ended = count_delivered(&f.counters, headers);
                irp.deliver(headers);
            } else if f.output_cancels() != loan.cancels {
                // The output stopped, reset or closed while it was lent: cancelled, as it would
                // have been on its queue — even if the output runs again by now.
                irp.complete(STATUS_CANCELLED, 0);
            } else {
                if matches!(status, STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE) {
                    work.blocked = true; // the upstream pin does not run: wait for its kick
                }
                give_back(f, irp);
            }
        } else {
            give_back(f, irp); // not expected: the request is back, its buffers with it
        }
        slot.state.store(SlotState::Free);
        work.next_done = work.next_done.max(slot.seq.load(Ordering::SeqCst) + 1);
        stream::lent_read_given_back(f);
        if ended {
            f.end_input();
        }
        self.activity.leave();
    }
}

/// Puts a read that was (about to be) lent back at the head of the output's queue, where a
/// cancel that came for it meanwhile completes it at once (KS runs the cancel routine of a
/// request queued with `Cancel` set). A STOP, reset or cleanup of the output since it was taken
/// is the caller's to see ([`Filter::output_cancels`]). The caller then says it is back
/// ([`stream::lent_read_given_back`], which pumps: the read is served as if it had never left).
fn give_back(f: &Filter, irp: StreamIrp) {
    f.reads.push_front(irp);
}

/// Counts frames a lent read brought as in and out of the filter (they passed it without
/// touching its ring); `true` if one of them ends the stream.
fn count_delivered(c: &Counters, filled: &[KSSTREAM_HEADER]) -> bool {
    let mut ended = false;
    for h in filled {
        let used = u64::from(h.DataUsed.min(h.FrameExtent));
        if used == 0 && h.OptionsFlags & KsStreamOptions::ENDOFSTREAM.bits() != 0 {
            ended = true;
            continue;
        }
        Counters::add(&c.bytes_in, used);
        Counters::add(&c.bytes_out, used);
        if h.OptionsFlags & KSRING_OPTIONSF_CONTINUES == 0 {
            Counters::add(&c.frames_in, 1);
            Counters::add(&c.frames_out, 1);
        }
    }
    ended
}
