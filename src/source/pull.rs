//! A pull source: reads from the sink into free slots and hands what comes back to its filter's
//! ring strictly in the order it was asked for; an end of stream read ends the filter's input.

use core::sync::atomic::Ordering;

use framering::{FrameMeta, ReserveError};
use ksabi::{KsStreamOptions, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use super::slot::{Slot, SlotState};
use super::{HEADER, HEADERS, PART, Source, Work};
use crate::filter::{Counters, Filter};
use crate::kernel::pool::Shared;
use crate::kernel::stream::Direction;
use crate::pin_id::PinId;
use crate::stream::{self, HOLD_BUDGET, RECORD_COST, part_flags, piece_limit};

impl Source {
    pub(super) fn pull(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        // Hand what came back to the ring, strictly in the order it was asked for.
        let mut moved = false;
        let mut ended = false;
        let mut all_handed = true;
        for slot in &this.slots {
            let stale = slot.seq.load(Ordering::SeqCst) < work.next_done;
            if stale && slot.state.load() == SlotState::Done && Self::read_done(f, slot, work) {
                // Came back after a STOP dropped what was held: drop it too, counted.
                Self::drop_slot(slot, this.kind, &f.counters);
            }
        }
        let next_back = |next_done: u64| {
            this.slots.iter().find(|s| {
                s.seq.load(Ordering::SeqCst) == next_done
                    && matches!(s.state.load(), SlotState::Done | SlotState::Held)
            })
        };
        while let Some(slot) = next_back(work.next_done) {
            if slot.state.load() == SlotState::Done && !Self::read_done(f, slot, work) {
                work.next_done += 1;
                continue;
            }
            if !Self::to_ring(f, slot, &mut moved, &mut ended) {
                all_handed = false;
                break; // the ring is full: our readers will kick us
            }
            slot.state.store(SlotState::Free);
            work.next_done += 1;
        }
        if ended {
            f.end_input(); // pumps too
        } else if moved {
            stream::pump(f); // data in the ring: reads waiting for it go on
        }
        Self::take_unblock(&this.unblock, work);
        if !all_handed {
            return;
        }
        if !f.flowing(PinId::Input)
            || this.ended.load(Ordering::SeqCst)
            || this.stopping.load(Ordering::SeqCst)
            || this.shutting_down.load(Ordering::SeqCst)
            || f.input_closed()
            || work.blocked
        {
            return;
        }
        for (i, slot) in this.slots.iter().enumerate() {
            if slot.state.load() != SlotState::Free {
                continue;
            }
            let Some(mut io) = slot.io.claim() else { continue };
            for h in 0..HEADERS {
                // In bounds: HEADERS parts of PART bytes make the buffer.
                let set = io.buffers.set(h, h * PART, PART, 0, &FrameMeta::default());
                debug_assert!(set.is_ok());
            }
            io.buffers.set_count(HEADERS);
            io.next = 0;
            io.offset = 0;
            slot.seq.store(work.next_seq, Ordering::SeqCst);
            work.next_seq += 1;
            Self::send(this, &work.lease, i, io, Direction::Read);
        }
    }

    /// Takes a completed read: `false` if it brought nothing (the slot is free again).
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
        io.buffers.set_count(filled);
        io.next = 0;
        io.offset = 0;
        for i in 0..io.buffers.count() {
            // Never more than the header's extent, whatever the target's `DataUsed` says.
            Counters::add(&c.bytes_in, io.buffers.bytes(i).len() as u64);
        }
        slot.state.store(SlotState::Held);
        true
    }

    /// Puts a held read's frames into the ring; `false` if the ring filled first. The producer
    /// lock is held for at most [`HOLD_BUDGET`] of copying at a time.
    fn to_ring(f: &Filter, slot: &Slot, moved: &mut bool, ended: &mut bool) -> bool {
        loop {
            // `None`: the budget is spent; the lock is let go before the next hold.
            if let Some(all) = Self::to_ring_once(f, slot, moved, ended) {
                return all;
            }
        }
    }

    /// One hold of the producer lock for [`Source::to_ring`]: `Some(all in)`, or `None` if the
    /// budget ran out first.
    fn to_ring_once(f: &Filter, slot: &Slot, moved: &mut bool, ended: &mut bool) -> Option<bool> {
        let c = &f.counters;
        let Some(mut io) = slot.io.claim() else { return Some(false) };
        let mut producer = f.producer.lock();
        // Data moves into the ring only while the input runs: a STOP (whose discard takes this
        // lock after the state changed) must not find frames put in behind it.
        if !f.flowing(PinId::Input) {
            return Some(false);
        }
        let Some(p) = producer.ring.as_mut() else { return Some(false) };
        let limit = piece_limit(p.max_frame()).min(HOLD_BUDGET);
        let mut budget = HOLD_BUDGET;
        while let Some(&h) = io.buffers.header(io.next) {
            if io.buffers.bytes(io.next).is_empty()
                && h.OptionsFlags & KsStreamOptions::ENDOFSTREAM.bits() != 0
            {
                // The upstream filter's input ended: so does ours (after what is in the ring), once
                // the caller has let go of the producer.
                *ended = true;
                io.next += 1;
                continue;
            }
            let meta = stream::meta_of(&h);
            loop {
                if budget == 0 {
                    return None;
                }
                let bytes = io.buffers.bytes(io.next);
                let rest = bytes.get(io.offset..).unwrap_or(&[]);
                let take = rest.len().min(limit).min(budget);
                match p.reserve(take) {
                    Ok(mut grant) => {
                        grant.payload().copy_from_slice(&rest[..take]);
                        budget = budget.saturating_sub(take.max(RECORD_COST));
                        Counters::add(&c.copied_in, take as u64);
                        let last = take == rest.len();
                        grant.commit(&FrameMeta {
                            options_flags: part_flags(meta.options_flags, last),
                            ..meta
                        });
                        *moved = true;
                        io.offset += take;
                        if last {
                            break;
                        }
                    }
                    Err(ReserveError::Full) if stream::pass_padding(f) => {} // room now: again
                    Err(ReserveError::Full | ReserveError::TooLarge { .. }) => return Some(false),
                }
            }
            if h.OptionsFlags & KSRING_OPTIONSF_CONTINUES == 0 {
                Counters::add(&c.frames_in, 1);
            }
            io.next += 1;
            io.offset = 0;
        }
        Some(true)
    }
}
