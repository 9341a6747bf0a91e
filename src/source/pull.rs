//! A pull source: its read requests name space reserved in its own filter's ring — the upstream
//! filter's copy into them is the hop's only one — and what comes back is committed to the ring
//! strictly in the order it was asked for; an end of stream read ends the filter's input.

use core::sync::atomic::Ordering;

use framering::{CommitError, FrameMeta, Producer, ReserveError};
use ksabi::{KsStreamOptions, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use super::slot::{Slot, SlotIo, SlotState};
use super::{HEADER, HEADERS, SLOTS, Source, Work};
use crate::filter::{Counters, Filter};
use crate::kernel::pool::Shared;
use crate::kernel::ring_memory::RingRef;
use crate::kernel::stream::Direction;
use crate::pin_id::PinId;
use crate::stream::{self, HOLD_BUDGET, piece_limit};

/// The least a read header reserves (a few small frames' worth).
const MIN_READ_PART: usize = 256;

impl Source {
    pub(super) fn pull(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        if work.lent.is_some() {
            return; // nothing else goes out, or is settled, while a read is lent
        }
        for slot in &this.slots {
            let stale = slot.seq.load(Ordering::SeqCst) < work.next_done;
            if stale && slot.state.load() == SlotState::Done && Self::read_done(f, slot, work) {
                // Accounted after a STOP dropped what was held: drop it too, counted. (Not
                // expected — a STOP ends once every read is back and dropped — but a read left
                // done would keep every later one from being settled.)
                Self::drop_slot(slot, this.kind, &f.counters);
            }
        }
        // Account completed reads in the order they were sent.
        let next_back = |next_done: u64| {
            this.slots
                .iter()
                .find(|s| s.seq.load(Ordering::SeqCst) == next_done && s.state.load() == SlotState::Done)
        };
        while let Some(slot) = next_back(work.next_done) {
            Self::read_done(f, slot, work);
            work.next_done += 1;
        }
        // Commit what they brought (and give up what reads that brought nothing reserved).
        let (moved, ended) = this.settle_reservations(f);
        if ended {
            f.end_input(); // pumps too
        } else if moved {
            stream::pump(f); // data in the ring: reads waiting for it go on
        }
        this.take_unblock(work);
        // (Reads held behind an older one still in flight do not stop new ones: reservations
        // are made in order and settled in order.)
        if !f.flowing(PinId::Input)
            || this.ended.load(Ordering::SeqCst)
            || this.stopping.load(Ordering::SeqCst)
            || this.shutting_down.load(Ordering::SeqCst)
            || f.input_closed()
            || work.blocked
        {
            return;
        }
        if Self::lend_or_wait(this, f, work) {
            return;
        }
        let ring = f.ring_ref();
        for (i, slot) in this.slots.iter().enumerate() {
            if this.winding_down() {
                break;
            }
            if slot.state.load() != SlotState::Free {
                continue;
            }
            let Some(mut io) = slot.io.claim() else { continue };
            if !io.reserved.settled() {
                continue; // its reservations are given up first, in order
            }
            io.reserved.clear();
            io.buffers.set_count(0);
            io.buffers.let_go_of_region();
            let count =
                ring.as_ref().map_or(0, |ring| Self::reserve_for_read(f, ring, &mut io, work.read_part));
            if io.reserved.count == 0 {
                break; // no room in the ring: its readers kick us as they make some
            }
            // Its place in the order of reads is its reservations' place in the ring's order.
            slot.seq.store(work.next_seq, Ordering::SeqCst);
            work.next_seq += 1;
            if count == 0 {
                // Reserved, but no header could name it (a reservation always lies in the ring:
                // not expected): given up in order, as a read that brought nothing.
                continue;
            }
            io.buffers.set_count(count);
            Self::send(this, &work.lease, i, io, Direction::Read);
        }
    }

    /// Reserves space in the ring for a read's headers — each names its reservation in place —
    /// and returns how many: as many as fit now, up to [`HEADERS`] and a [`SLOTS`]th of the ring
    /// (so every slot can read at once), each `hint` bytes ([`Work::read_part`]) and at most a
    /// piece of the size the write path cuts frames into. No copy: the upstream filter writes
    /// into the ring through them.
    fn reserve_for_read(f: &Filter, ring: &RingRef, io: &mut SlotIo, hint: usize) -> usize {
        let mut producer = f.producer.lock();
        // Space is reserved only while the input runs (a STOP's discard takes this lock after the
        // state changed), in the ring `ring` refers to.
        let Some(p) = producer.ring.as_mut().filter(|p| f.flowing(PinId::Input) && ring.holds(p.core()))
        else {
            return 0;
        };
        let most = piece_limit(p.max_frame()).min(HOLD_BUDGET);
        let part = if hint == 0 { most } else { hint.min(most) };
        let wanted = (p.max_frame() / SLOTS / part.max(1)).clamp(1, HEADERS);
        let mut count = 0;
        // `wanted <= HEADERS` and the list was cleared: every reservation made is recorded.
        while count < wanted {
            match p.reserve_pending(part) {
                Ok(r) => {
                    // Recorded before the header is set: reserved space is given up in order
                    // even if the header could not name it.
                    let added = io.reserved.add(r);
                    debug_assert!(added);
                    // In bounds: a reservation lies in the ring's storage.
                    let set = io.buffers.set_in_region(
                        count,
                        ring,
                        r.offset(),
                        r.capacity(),
                        0,
                        &FrameMeta::default(),
                    );
                    debug_assert!(set.is_ok());
                    if set.is_err() {
                        break;
                    }
                    count += 1;
                }
                Err(ReserveError::Full) if stream::pass_padding(f) => {} // room now: again
                Err(ReserveError::Full | ReserveError::TooLarge { .. }) => break,
            }
        }
        count
    }

    /// Takes a completed read: the headers it filled are held (committed in order by
    /// [`Source::settle_reservations`]); `false` if it brought nothing (the slot is free again,
    /// its reservations to be given up).
    pub(super) fn read_done(f: &Filter, slot: &Slot, work: &mut Work) -> bool {
        let c = &f.counters;
        let status = slot.status.load(Ordering::SeqCst);
        let Some(mut io) = slot.io.claim() else { return false };
        let filled =
            if status == STATUS_SUCCESS { slot.information.load(Ordering::SeqCst) / HEADER } else { 0 };
        if filled == 0 {
            if matches!(status, STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE) {
                work.blocked = true;
            }
            slot.state.store(SlotState::Free);
            return false;
        }
        // Never more headers than were sent.
        let sent = io.buffers.count();
        io.buffers.set_count(filled.min(sent));
        let mut largest = 0;
        for i in 0..io.buffers.count() {
            // Never more than the header's extent, whatever the target's `DataUsed` says.
            let used = io.buffers.used(i);
            Counters::add(&c.bytes_in, used as u64);
            largest = largest.max(used);
        }
        // The next reads' headers: twice the largest frame (or part) this one brought — room for
        // frames that grow (a full header doubles the next; a frame larger than its header came
        // in parts), and little held for frames that do not.
        work.read_part = largest.saturating_mul(2).max(MIN_READ_PART);
        slot.state.store(SlotState::Held);
        true
    }

    /// Settles the ring space reads reserved, strictly in the order it was reserved (the order
    /// the reads were sent): a held read's headers are committed as frames — if the input runs —
    /// and what it did not fill is given up; a read that brought nothing, or whose data was
    /// dropped, gives up all of its space. Stops at the first read still in flight or not yet
    /// accounted, or held while the input does not run. Returns whether frames went into the ring,
    /// and whether the end of the stream came.
    pub(super) fn settle_reservations(&self, f: &Filter) -> (bool, bool) {
        let (mut moved, mut ended) = (false, false);
        let mut producer = f.producer.lock();
        let flowing = f.flowing(PinId::Input);
        for i in self.by_seq() {
            let slot = &self.slots[i];
            let state = slot.state.load();
            if matches!(state, SlotState::InFlight | SlotState::Done) {
                break; // later reads reserved after this one
            }
            let Some(mut io) = slot.io.claim() else { break };
            if io.reserved.settled() {
                continue;
            }
            if state == SlotState::Held {
                if !flowing {
                    break; // committed once the input runs (or dropped by a STOP)
                }
                Self::commit_read(f, producer.ring.as_mut(), &mut io, &mut moved, &mut ended);
                slot.state.store(SlotState::Free);
            }
            // What is left: not filled, or dropped.
            while let Some(r) = io.reserved.next() {
                if let Some(p) = producer.ring.as_mut() {
                    // Refused only for a ring let go since (its space went with it).
                    let gone = p.abandon_pending(&r);
                    debug_assert_ne!(gone, Err(CommitError::OutOfOrder));
                }
            }
            // Nothing of the ring is named here any more: its memory may go with the filter's.
            io.buffers.set_count(0);
            io.buffers.let_go_of_region();
        }
        (moved, ended)
    }

    /// Commits a held read's headers to the ring as frames, in order, each in the space it was
    /// read into. A zero-length `ENDOFSTREAM` header ends the input instead (its space given up).
    fn commit_read(
        f: &Filter,
        mut producer: Option<&mut Producer<'static>>,
        io: &mut SlotIo,
        moved: &mut bool,
        ended: &mut bool,
    ) {
        let counters = &f.counters;
        for i in 0..io.buffers.count() {
            let (Some(&header), Some(reserved)) = (io.buffers.header(i), io.reserved.next()) else { break };
            let used = io.buffers.used(i);
            if used == 0 && header.OptionsFlags & KsStreamOptions::ENDOFSTREAM.bits() != 0 {
                // The upstream filter's input ended: so does ours, after what is in the ring.
                *ended = true;
                if let Some(p) = producer.as_deref_mut() {
                    let gone = p.abandon_pending(&reserved);
                    debug_assert_ne!(gone, Err(CommitError::OutOfOrder));
                }
                continue;
            }
            let meta = stream::meta_of(&header);
            let committed = producer.as_deref_mut().map(|p| p.commit_pending(&reserved, used, &meta));
            debug_assert_ne!(committed, Some(Err(CommitError::OutOfOrder)));
            if committed != Some(Ok(())) {
                // The ring it was read into was let go meanwhile: the frame went with it.
                Counters::add(&counters.discarded_frames, 1);
                Counters::add(&counters.discarded_bytes, used as u64);
                continue;
            }
            *moved = true;
            if header.OptionsFlags & KSRING_OPTIONSF_CONTINUES == 0 {
                Counters::add(&counters.frames_in, 1);
            }
        }
    }
}
