//! A push source: takes frames out of its filter's ring in place into a free slot's headers and
//! writes them to the sink; what the sink does not accept is held and sent again, in order; the
//! ring's space goes back only after a request's frames are done with, in the order it was taken.

use core::sync::atomic::Ordering;

use ksabi::{STATUS_CANCELLED, STATUS_DEVICE_NOT_READY, STATUS_INVALID_DEVICE_STATE, STATUS_SUCCESS};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use super::slot::{Slot, SlotIo, SlotState, end_of_stream};
use super::{HEADERS, Source, Work};
use crate::filter::{Counters, Filter};
use crate::kernel::object::Object;
use crate::kernel::outbound::Lease;
use crate::kernel::pool::Shared;
use crate::kernel::ring_memory::RingRef;
use crate::kernel::stream::Direction;
use crate::pin_id::PinId;
use crate::stream::{self, part_flags};

impl Source {
    pub(super) fn push(this: &Shared<Self>, f: &Filter, work: &mut Work) {
        for i in this.by_seq() {
            let slot = &this.slots[i];
            if slot.state.load() == SlotState::Done {
                this.write_done(f, slot, work);
            }
        }
        if this.release_holds(f) {
            stream::pump(f); // room in the ring: writes waiting for it go on
        }
        this.take_unblock(work);
        let held = this.slots.iter().any(|s| s.state.load() == SlotState::Held);
        let idle = this.in_flight.load(Ordering::SeqCst) == 0;
        if idle && !this.ended.load(Ordering::SeqCst) && !this.shutting_down.load(Ordering::SeqCst) {
            // Nothing in flight, and what came back is accounted (or, completed since, stops
            // newer sends: `refused_ahead`): writes the sink cancelled are ours again. Whether
            // this pin flows or not — the sink's other writers wait for this meanwhile. (A sink
            // that ended has forgotten us; the target may be let go.)
            Self::acknowledge_feed(this, &work.lease);
        }
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
                    if this.winding_down() || this.refused_ahead() {
                        break;
                    }
                    if this.slots[i].state.load() == SlotState::Held
                        && let Some(io) = this.slots[i].io.claim()
                    {
                        Self::send(this, &work.lease, i, io, Direction::Write);
                    }
                }
            }
            return;
        }
        let ring = f.ring_ref();
        for (i, slot) in this.slots.iter().enumerate() {
            // (Before taking frames: a slot that took some must go. A held slot stopped this pass
            // above, and only this pass makes one.)
            if this.winding_down() || this.refused_ahead() {
                break;
            }
            if slot.state.load() != SlotState::Free {
                continue;
            }
            let Some(mut io) = slot.io.claim() else { continue };
            if !io.holds.settled() {
                continue; // its holds go back first, in order
            }
            io.holds.clear();
            io.buffers.let_go_of_region();
            let mut count = ring.as_ref().map_or(0, |ring| Self::fill_from_ring(f, ring, &mut io));
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
    }

    /// Tells the sink that writes it cancelled are back with this source, so that it takes writes
    /// again ([`Filter::feed_acknowledged`]).
    fn acknowledge_feed(this: &Shared<Self>, lease: &Lease) {
        if let Some(Object::Pin(sink)) = this.target.object_while_leased(lease, this.device) {
            sink.filter().feed_acknowledged(this);
        }
    }

    /// Whether a request sent earlier came back not wholly accepted — refused or cancelled — and
    /// is not accounted yet: then nothing newer may be sent before it goes again, or the sink
    /// would take newer frames first. (A request refused inline by a resetting sink, and the
    /// sink's reset ending before the next send of the same pass, put frames out of order.)
    fn refused_ahead(&self) -> bool {
        // `completed` stores the status before the state: a done slot's status is its own.
        self.slots
            .iter()
            .any(|s| s.state.load() == SlotState::Done && s.status.load(Ordering::SeqCst) != STATUS_SUCCESS)
    }

    /// Takes frame parts out of the ring in place into a free slot — its headers name the ring's
    /// storage, the ring keeps the space (held) until the slot gives it back — and returns the
    /// headers filled. No copy: the consumer lock is held for at most [`HEADERS`] takes.
    fn fill_from_ring(f: &Filter, ring: &RingRef, io: &mut SlotIo) -> usize {
        let mut consumer = f.consumer.lock();
        let Some(c) = consumer.ring.as_mut() else { return 0 };
        if !ring.holds(c.core()) {
            return 0; // the ring changed since `ring` was taken: the next pass takes the new one
        }
        let mut count = 0;
        while count < HEADERS {
            let Some(part) = c.take(usize::MAX) else { break };
            let meta = part.meta();
            let flags = part_flags(meta.options_flags, !part.has_more());
            // In bounds: a part the ring handed out lies in its storage.
            let set = io.buffers.set_in_region(count, ring, part.offset(), part.len(), flags, &meta);
            debug_assert!(set.is_ok());
            io.holds.list[count] = Some(part.hold());
            io.holds.taken = count + 1;
            count += 1;
        }
        count
    }

    /// Gives the ring back the space of finished frame parts (accepted by the sink, or dropped),
    /// strictly in the order they were taken: slot by slot in the order they were sent, stopping
    /// at the first part not finished (a request in flight, a remainder to send again). Returns
    /// whether any space came back.
    pub(super) fn release_holds(&self, f: &Filter) -> bool {
        let mut released = false;
        let mut consumer = f.consumer.lock();
        for i in self.by_seq() {
            let slot = &self.slots[i];
            if slot.state.load() == SlotState::InFlight {
                break;
            }
            let Some(mut io) = slot.io.claim() else { break };
            let holds = &mut io.holds;
            while holds.released < holds.done {
                if let (Some(c), Some(hold)) = (consumer.ring.as_mut(), holds.list[holds.released].take()) {
                    // Refused only for a hold of a ring let go since (its space went with it).
                    let _ = c.release_held(hold);
                    released = true;
                }
                holds.released += 1;
            }
            if !holds.settled() {
                break; // later slots' parts were taken after this one's
            }
            if slot.state.load() == SlotState::Free {
                // Nothing of the ring is named here any more: let its memory go with the filter's
                // (a STOP may have let the ring go; its memory counts against the driver's cap).
                io.holds.clear();
                io.buffers.let_go_of_region();
            }
        }
        released
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
            let used = io.buffers.len(first);
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
            let meta = stream::meta_of(&h);
            // In bounds: the rest of the frame's own bytes.
            let set = io.buffers.advance(first, accepted, h.OptionsFlags, &meta);
            debug_assert!(set.is_ok());
        }
        io.buffers.remove_front(first);
        // Those parts' space may go back (in order); a made-up end of stream took none.
        io.holds.done = (io.holds.done + first).min(io.holds.taken);
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
