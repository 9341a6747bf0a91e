//! The producer side: drains the input pin's queue into the ring, or straight into waiting reads.

use framering::{FrameMeta, Producer, ReserveError, WriteGrant};
use ksabi::{KSSTREAM_HEADER, KSTIME, KsStreamOptions, STATUS_SUCCESS};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use super::{HOLD_BUDGET, RECORD_COST, Side, first_request, let_go_locked, part_flags, piece_limit};
use crate::filter::{Counters, Filter};
use crate::kernel::stream::{CallerBytes, Completions, Cursor};
use crate::pin_id::PinId;

/// Drains the queued writes, one bounded hold of the producer lock at a time ([`HOLD_BUDGET`]):
/// completions run between holds, outside the lock. `true` if anything moved or completed.
pub fn pump(f: &Filter) -> bool {
    f.write_pumper.drain(f, one_hold)
}

/// How a hold over one write ended.
enum Fed {
    /// Every header's frame is in (the IRP can complete).
    All,
    /// The ring is full, the frame cannot go in, or it waits for a read to take it straight
    /// ([`passes_through`]): the rest waits for the reader.
    Full,
    /// The hold's budget is spent: the rest goes on after the lock has been let go.
    Budget,
}

/// One hold of the producer lock: moves writes on — the one in progress first — until the ring
/// is full, the queue is empty, or [`HOLD_BUDGET`] is spent. `true` if the budget ran out with
/// more to do: the write it was on stays in progress for the next hold.
fn one_hold(f: &Filter, done: &mut Completions, progress: &mut bool) -> bool {
    let mut side = f.producer.lock();
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    // Writes wait, too, while a cancel of a fed input's writes is not acknowledged: one queued
    // after the cancel looked at the queue is newer than what it cancelled, and its dispatch
    // routine cancels it once it looks again (`stream::dispatch`).
    if side.ring.is_none() || !f.flowing(PinId::Input) || f.feed_cancelled() {
        let_go_locked(&mut side, done);
        return false;
    }
    let mut budget = HOLD_BUDGET;
    while let Some(mut irp) = first_request(&mut side, &f.writes, done) {
        let Side { ring: Some(p), open_frame, .. } = &mut *side else {
            side.release(irp, done);
            break;
        };
        let limit = piece_limit(p.max_frame()).min(HOLD_BUDGET);
        let mut cursor = irp.cursor();
        let fed = feed(f, p, open_frame, &mut cursor, limit, &mut budget, done, progress);
        cursor.save();
        // Information holds the bytes accepted.
        let accepted = cursor.information();
        match fed {
            Fed::All => {
                irp.finish(&f.writes, done, STATUS_SUCCESS, accepted);
                *progress = true;
                if budget == 0 {
                    return true;
                }
            }
            Fed::Full => {
                side.release(irp, done);
                return false;
            }
            Fed::Budget => {
                side.set_in_progress(irp);
                return true;
            }
        }
    }
    false
}

/// The metadata a stream header carries (a write's, or a completed read's for a pull source).
pub fn meta_of(h: &KSSTREAM_HEADER) -> FrameMeta {
    FrameMeta {
        options_flags: h.OptionsFlags,
        type_specific_flags: h.TypeSpecificFlags,
        presentation_time: h.PresentationTime.Time,
        numerator: h.PresentationTime.Numerator,
        denominator: h.PresentationTime.Denominator,
        duration: h.Duration,
    }
}

/// Moves the write IRP's frames on, charging what it copies to `budget`.
#[allow(clippy::too_many_arguments)] // the hold's state, passed down once
fn feed(
    f: &Filter,
    p: &mut Producer<'static>,
    open_frame: &mut Option<FrameMeta>,
    cursor: &mut Cursor,
    limit: usize,
    budget: &mut usize,
    done: &mut Completions,
    progress: &mut bool,
) -> Fed {
    while let Some(h) = cursor.header() {
        if *budget == 0 {
            return Fed::Budget;
        }
        if cursor.offset == 0
            && let Some(cut) = *open_frame
        {
            // A frame begins while the one before is open: that one's write went (cancelled,
            // reset) after some of its parts. End it where it was cut, before this one starts.
            if !end_cut_frame(f, p, &cut, done) {
                return Fed::Full;
            }
            *open_frame = None;
            *budget = budget.saturating_sub(RECORD_COST);
            *progress = true;
            continue;
        }
        let meta = meta_of(&h);
        let rest = cursor.unsent();
        let through = passes_through(f, &h);
        let moved = if reads_waiting(f) && (through || p.is_drained()) {
            super::read::direct(f, rest, *budget, &meta, done)
        } else {
            None
        };
        let moved = if let Some(n) = moved {
            n
        } else if through {
            return Fed::Full;
        } else {
            let take = rest.len().min(limit).min(*budget);
            let last = take == rest.len();
            let put = reserve_with(f, p, take, |mut grant| {
                rest.prefix(take).copy_to(grant.payload());
                Counters::add(&f.counters.copied_in, take as u64);
                grant.commit(&FrameMeta { options_flags: part_flags(meta.options_flags, last), ..meta });
            });
            if !put {
                return Fed::Full;
            }
            take
        };
        let frame_ends = moved == rest.len();
        *budget = budget.saturating_sub(moved.max(RECORD_COST));
        *progress = true;
        cursor.offset += moved;
        // Parts of this frame went out and its end has not: it is open until its last part.
        *open_frame = (!frame_ends).then_some(meta);
        Counters::add(&f.counters.bytes_in, moved as u64);
        // Information is the bytes accepted so far.
        cursor.add_information(moved);
        if frame_ends {
            // A header that says the frame continues (an IRP source forwarding a part) is not a
            // whole frame yet.
            if meta.options_flags & KSRING_OPTIONSF_CONTINUES == 0 {
                Counters::add(&f.counters.frames_in, 1);
            }
            cursor.advance();
        }
    }
    Fed::All
}

/// Whether reads wait on a running output: then a writer's data may go straight into them
/// ([`super::read::direct`]) when the ring is empty.
///
/// A frame bound for the ring anyway tries that only if the producer sees the ring drained
/// ([`Producer::is_drained`], one atomic load): `direct` takes the consumer lock, and while a
/// reader drains a full ring under that lock the writer spun for it (holding the producer lock) on
/// every frame, only to find the ring not empty — 17 % of the processor time of `ksctl stream
/// --emulated --no-verify`. A frame that skips the look goes into the ring, and the pump that
/// follows hands it to the reads. A frame that passes through ([`passes_through`]) always looks:
/// it waits for a read otherwise, so a read it missed would leave it waiting.
fn reads_waiting(f: &Filter) -> bool {
    f.reads.len() > 0 && f.flowing(PinId::Output)
}

/// Frames of at least this many bytes pass through ([`passes_through`]); smaller ones go into the
/// ring. Holding a write costs its source a request slot until a read takes the frame, copying
/// costs a `memcpy`: measured through a three-filter chain under kshost, holding loses to the
/// per-request cost at 4 KiB frames (−25 %), is even at 16 KiB, and wins from 32 KiB (+12 %; +15–20 %
/// at 64 KiB, +50 % at 1 MiB).
pub const PASS_THROUGH_MIN: usize = 16 << 10;

/// Whether a frame of header `h` that no read could take now waits in its write for one instead
/// of going into the ring: in a filter between two IRP sources ([`Filter::passes_through`]), a
/// frame of at least [`PASS_THROUGH_MIN`] bytes. Its bytes sit in the upstream filter's ring, held
/// there until this write completes, and a read from the downstream filter names space in that
/// filter's ring: taken straight ([`super::read::direct`]), the frame is copied once between the
/// two rings instead of twice, and this filter's ring stays empty. Nothing waits for ever: the
/// downstream source keeps reading while it has room, and when it goes the writes go into the ring
/// ([`Filter::passes_through`] turns false and the pump runs).
fn passes_through(f: &Filter, h: &KSSTREAM_HEADER) -> bool {
    h.DataUsed as usize >= PASS_THROUGH_MIN && f.passes_through()
}

/// Reserves `len` payload bytes in the ring and hands the grant to `fill` (which commits it);
/// `false` if the ring has no room (or can never hold that much). A reserve that published padding
/// and found the start still occupied is tried again once the consumer has passed that padding
/// (see [`super::pass_padding`]).
fn reserve_with(
    f: &Filter,
    p: &mut Producer<'static>,
    len: usize,
    fill: impl FnOnce(WriteGrant<'_, 'static>),
) -> bool {
    loop {
        match p.reserve(len) {
            Ok(grant) => {
                fill(grant);
                return true;
            }
            Err(ReserveError::Full) if super::pass_padding(f) => {}
            Err(ReserveError::Full | ReserveError::TooLarge { .. }) => return false,
        }
    }
}

/// Ends a frame that was cut short with an empty last part carrying its metadata (not
/// `ENDOFSTREAM`: the stream goes on): straight into the read holding its start when the ring is
/// empty, else into the ring. `false` if the ring has no room for the record yet.
fn end_cut_frame(f: &Filter, p: &mut Producer<'static>, cut: &FrameMeta, done: &mut Completions) -> bool {
    let meta = FrameMeta { options_flags: cut.options_flags & !KsStreamOptions::ENDOFSTREAM.bits(), ..*cut };
    // Straight into the read holding its start when the ring is empty, else into the ring.
    let ended = (reads_waiting(f) && super::read::direct(f, CallerBytes::EMPTY, 0, &meta, done).is_some())
        || reserve_with(f, p, 0, |grant| grant.commit(&meta));
    if !ended {
        return false;
    }
    if meta.options_flags & KSRING_OPTIONSF_CONTINUES == 0 {
        Counters::add(&f.counters.frames_in, 1);
    }
    true
}

const _: () = assert!(size_of::<KSTIME>() == 16);
