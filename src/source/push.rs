//! A push source: takes frames out of its filter's ring into a free slot and writes them to the
//! sink; what the sink does not accept is held and sent again, in order.

use core::sync::atomic::Ordering;

use ksabi::{STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use super::slot::{Slot, SlotIo, SlotState, end_of_stream};
use super::{HEADERS, SLOT_BYTES, Source, Work};
use crate::filter::{Counters, Filter};
use crate::kernel::pool::Shared;
use crate::kernel::stream::Direction;
use crate::pin_id::PinId;
use crate::stream::{self, HOLD_BUDGET, RECORD_COST, part_flags};

impl Source {
    pub(super) fn push(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        for i in this.by_seq() {
            let slot = &this.slots[i];
            if slot.state.load() == SlotState::Done {
                this.write_done(f, slot, work);
            }
        }
        Self::take_unblock(&this.unblock, work);
        let held = this.slots.iter().any(|s| s.state.load() == SlotState::Held);
        let idle = this.in_flight.load(Ordering::SeqCst) == 0;
        if !f.flowing(PinId::Output)
            || this.ended.load(Ordering::SeqCst)
            || this.stopping.load(Ordering::SeqCst)
            || this.shutting_down.load(Ordering::SeqCst)
        {
            return;
        }
        if held {
            // What the sink did not take goes again first, in order, once nothing else is out.
            if idle && !work.blocked {
                for i in this.by_seq() {
                    if this.slots[i].state.load() == SlotState::Held
                        && let Some(io) = this.slots[i].io.claim()
                    {
                        Self::send(this, &work.lease, i, io, Direction::Write);
                    }
                }
            }
            return;
        }
        let mut moved = false;
        for (i, slot) in this.slots.iter().enumerate() {
            if slot.state.load() != SlotState::Free {
                continue;
            }
            let Some(mut io) = slot.io.claim() else { continue };
            let mut count = Self::fill_from_ring(f, &mut io);
            moved |= count > 0;
            // The end goes last: after every write has completed *and* been accounted (a write
            // that completed inline while this loop ran is DONE until the next pass counts it;
            // the end must not overtake its statistics down the chain).
            let settled = this.slots.iter().all(|s| s.state.load() == SlotState::Free);
            if count == 0 && f.input_closed() && settled && !work.eos_sent {
                count = end_of_stream(&mut io);
                work.eos_sent = true;
            }
            if count == 0 {
                break;
            }
            slot.seq.store(work.next_seq, Ordering::SeqCst);
            io.buffers.set_count(count);
            work.next_seq += 1;
            Self::send(this, &work.lease, i, io, Direction::Write);
        }
        if moved {
            stream::pump(f); // room in the ring: writes waiting for it go on
        }
    }

    /// Takes frames out of the ring into a free slot; returns the headers filled. The consumer
    /// lock is held for at most [`HOLD_BUDGET`] of copying at a time (this source is the ring's
    /// only consumer, so nothing else takes frames between holds).
    fn fill_from_ring(f: &Filter, io: &mut SlotIo) -> usize {
        let mut used = 0;
        let mut count = 0;
        loop {
            let mut consumer = f.consumer.lock();
            let Some(c) = consumer.ring.as_mut() else { return count };
            let mut budget = HOLD_BUDGET;
            while count < HEADERS && used < SLOT_BYTES && budget > 0 {
                let Some(grant) = c.read() else { return count };
                let payload = grant.payload();
                let n = payload.len().min(SLOT_BYTES - used).min(budget);
                io.buffers.data_mut()[used..used + n].copy_from_slice(&payload[..n]);
                Counters::add(&f.counters.copied_out, n as u64);
                let meta = grant.meta();
                let record_done = n == payload.len();
                // In bounds: `used + n <= SLOT_BYTES` and `count < HEADERS`.
                let set = io.buffers.set(count, used, n, part_flags(meta.options_flags, record_done), &meta);
                debug_assert!(set.is_ok());
                grant.consume(n);
                used += n;
                count += 1;
                budget = budget.saturating_sub(n.max(RECORD_COST));
                if !record_done && budget > 0 {
                    return count; // the slot is full
                }
            }
            if count == HEADERS || used == SLOT_BYTES {
                return count;
            }
            // The budget is spent: let the lock go, then go on.
        }
    }

    /// Accounts a completed write: what the sink accepted goes out; the rest is held for later
    /// (the sink refused or cancelled it) or dropped (it failed).
    pub(super) fn write_done(&self, f: &Filter, slot: &Slot, work: &mut Work) {
        let c = &f.counters;
        let status = slot.status.load(Ordering::SeqCst);
        let all = status == STATUS_SUCCESS;
        let mut accepted = slot.information.load(Ordering::SeqCst);
        let Some(mut io) = slot.io.claim() else { return };
        let mut first = 0;
        while let Some(&h) = io.buffers.header(first) {
            // The frame's bytes as this source set them (a sink cannot make them more).
            let used = io.buffers.bytes(first).len();
            // A failed write reports bytes: a zero-length frame at its edge (nothing accepted
            // past it) counts as not taken — sending it again is harmless; losing an end of stream
            // is not. One with bytes accepted past it was taken.
            if !all && (accepted == 0 || accepted < used) {
                break;
            }
            if !all {
                accepted -= used;
            }
            Counters::add(&c.bytes_out, used as u64);
            // The end-of-stream marker this source made up itself (no buffer) was never in the
            // ring: it is not a frame out.
            let made_up = used == 0 && !io.buffers.has_buffer(first);
            if h.OptionsFlags & KSRING_OPTIONSF_CONTINUES == 0 && !made_up {
                Counters::add(&c.frames_out, 1);
            }
            first += 1;
        }
        if let Some(&h) = io.buffers.header(first)
            && accepted > 0
        {
            // The sink took the start of this frame: the rest goes again as its continuation.
            Counters::add(&c.bytes_out, accepted as u64);
            let rest = io.buffers.bytes(first).len().saturating_sub(accepted);
            let meta = stream::meta_of(&h);
            let start = io.buffers.start(first).unwrap_or(0) + accepted;
            // In bounds: the rest of the frame's own bytes.
            let set = io.buffers.set(first, start, rest, h.OptionsFlags, &meta);
            debug_assert!(set.is_ok());
        }
        io.buffers.remove_front(first);
        if io.buffers.count() == 0 {
            slot.state.store(SlotState::Free);
            return;
        }
        drop(io);
        slot.state.store(SlotState::Held);
        if matches!(status, STATUS_CANCELLED | STATUS_DEVICE_NOT_READY | STATUS_INVALID_DEVICE_STATE) {
            work.blocked = true; // the sink stopped or is resetting: it kicks us when it runs again
        } else {
            Self::drop_slot(slot, self.kind, c); // failed for good: counted
        }
    }
}
