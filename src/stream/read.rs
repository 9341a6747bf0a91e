//! The consumer side: fills the output pin's queued reads from the ring, or from a writer's
//! buffer directly ([`direct`]), and ends the stream when the input is gone.

use framering::{Consumer, FrameMeta};
use ksabi::{KSSTREAM_HEADER, KSTIME, KsStreamOptions, STATUS_SUCCESS};
use ksring_api::KSRING_OPTIONSF_CONTINUES;

use super::{HOLD_BUDGET, RECORD_COST, first_request, let_go_locked, part_flags};
use crate::filter::{Counters, Filter};
use crate::kernel::stream::{CallerBytes, Completions, Cursor, StreamIrp};
use crate::pin_id::PinId;

/// Fills the queued reads, one bounded hold of the consumer lock at a time ([`HOLD_BUDGET`]):
/// completions run between holds, outside the lock. `true` if anything moved or completed.
pub fn pump(f: &Filter) -> bool {
    f.read_pumper.drain(f, one_hold)
}

/// One hold of the consumer lock: fills reads until the ring is empty, the queue is empty, or
/// [`HOLD_BUDGET`] is spent. `true` if the budget ran out with more to do.
///
/// A read completes when its headers are full, or when the ring is empty and it holds a finished
/// header. A header holding the start of a frame whose rest the writer is still putting in the
/// ring waits for it (the frame arrives whole when the buffer is large enough); it is delivered
/// as a part (`CONTINUES`) only when the read completes for another reason or no write is queued.
fn one_hold(f: &Filter, done: &mut Completions, progress: &mut bool) -> bool {
    let mut side = f.consumer.lock();
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    // While a read is lent, later ones get nothing — not even the end of the stream: the lent one
    // comes first ([`lend`]).
    if side.ring.is_none() || !f.flowing(PinId::Output) || f.read_lent() {
        let_go_locked(&mut side, done);
        return false;
    }
    let mut budget = HOLD_BUDGET;
    while let Some(mut irp) = first_request(&mut side, &f.reads, done) {
        let Some(c) = side.ring.as_mut() else {
            side.release(irp, done);
            break;
        };
        let mut cursor = irp.cursor();
        *progress |= fill(f, c, &mut cursor, &mut budget);
        let empty = c.is_empty();
        let ended = empty && f.input_closed();
        if ended {
            close_part(f, &mut cursor);
            end_of_stream(&mut cursor);
        }
        let idle = empty && f.writes.len() == 0;
        let finished = cursor.header().is_none() || (empty && (cursor.at > 0 || (idle && cursor.offset > 0)));
        if finished {
            close_part(f, &mut cursor);
        }
        cursor.save();
        let filled = cursor.at;
        if finished {
            irp.finish(&f.reads, done, STATUS_SUCCESS, filled);
            *progress = true;
        } else if budget == 0 && !empty {
            // More is there for it: it stays in progress for the next hold.
            side.set_in_progress(irp);
            return true;
        } else {
            // It waits for data: back on its queue, cancelable.
            side.release(irp, done);
            return false;
        }
        if budget == 0 {
            return true;
        }
        if empty && !ended {
            return false;
        }
    }
    false
}

/// Fills headers from the ring while both last and the budget allows; the parts of one frame
/// join in one header as far as it holds them. `true` if anything moved.
fn fill(f: &Filter, c: &mut Consumer<'static>, cursor: &mut Cursor, budget: &mut usize) -> bool {
    let mut moved = false;
    while *budget > 0 {
        let Some(h) = cursor.header() else { break };
        let Some(grant) = c.read() else { break };
        let payload = grant.payload();
        let n = payload.len().min(*budget);
        let n = cursor.room().copy_from(&payload[..n]);
        Counters::add(&f.counters.copied_out, n as u64);
        let meta = grant.meta();
        let frame_done = n == payload.len() && meta.options_flags & KSRING_OPTIONSF_CONTINUES == 0;
        grant.consume(n);
        *budget = budget.saturating_sub(n.max(RECORD_COST));
        put(f, cursor, &h, n, &meta, frame_done, false);
        moved = true;
    }
    moved
}

/// Delivers the start of a writer's frame (`bytes`, the rest of it) straight into the read at the
/// head of the queue, if the ring is empty (nothing older waits) — one copy instead of two — at
/// most `budget` bytes of it. Returns how many bytes went, or `None` if no read could take them.
pub fn direct(
    f: &Filter,
    bytes: CallerBytes<'_>,
    budget: usize,
    meta: &FrameMeta,
    done: &mut Completions,
) -> Option<usize> {
    let mut side = f.consumer.lock();
    if !side.ring.as_mut()?.is_empty() || f.read_lent() {
        return None;
    }
    // The read in progress (a read pump between two holds) is the oldest: it comes first.
    let was_in_progress = side.has_in_progress();
    let mut irp = first_request(&mut side, &f.reads, done)?;
    let mut cursor = irp.cursor();
    let Some(h) = cursor.header() else {
        // A full read is never left queued, but be safe: back on its queue.
        side.release(irp, done);
        return None;
    };
    let n = cursor.room().copy_from_caller(bytes.prefix(budget));
    Counters::add(&f.counters.copied_out, n as u64);
    let frame_done = n == bytes.len() && meta.options_flags & KSRING_OPTIONSF_CONTINUES == 0;
    put(f, &mut cursor, &h, n, meta, frame_done, true);
    cursor.save();
    let (full, filled) = (cursor.header().is_none(), cursor.at);
    if full {
        irp.finish(&f.reads, done, STATUS_SUCCESS, filled);
    } else if was_in_progress {
        // The read pump that left it in progress comes back for it.
        side.set_in_progress(irp);
    } else {
        // Partly filled: it stays queued; the read pump completes it when no more data comes,
        // and a cancel completes it with what it holds.
        side.release(irp, done);
    }
    Some(n)
}

/// The oldest read of the output, as [`lend`] found it.
pub struct Lendable {
    /// The read, taken off its queue (only when asked to take it).
    pub irp: Option<StreamIrp>,
    /// How many headers the read over its buffers has (in the caller's `out`).
    pub count: usize,
    /// [`Filter::output_cancels`] when it was taken: a cancel of the output's requests after that
    /// is one this read missed while lent.
    pub cancels: u32,
}

/// The oldest read, to a pull source feeding this filter's input that would lend it
/// ([`crate::kernel::stream::LentRead`]): only while the ring is empty and the output runs, no
/// read is in progress or lent, and the input has not ended — then nothing older than it is in
/// the ring or to come into it, and it may take the upstream filter's frames directly. With
/// `take`, the read is taken off the queue, `out` gets the headers of a read over its buffers,
/// and the filter counts it lent (until [`given_back`]); without, it stays queued. `None` if
/// there is no such read.
pub fn lend(f: &Filter, out: &mut [KSSTREAM_HEADER], take: bool) -> Option<Lendable> {
    Completions::scope(|done| {
        let mut side = f.consumer.lock();
        // Read before the state: a count that includes a STOP's cancel comes with that STOP's
        // state (`Filter::cancel_requests`).
        let cancels = f.output_cancels();
        // The output's state under this lock: a STOP, reset or cleanup stores its state first, and
        // its cancel takes this lock (`let_go`) before it looks for a lent read to recall.
        let ready = side.ring.as_mut().is_some_and(Consumer::is_empty)
            && f.flowing(PinId::Output)
            && !f.closing(PinId::Output)
            && !side.has_in_progress()
            && !f.read_lent()
            && !f.input_closed();
        if !ready {
            return None;
        }
        let mut irp = first_request(&mut side, &f.reads, done)?;
        let count = if irp.cancel_requested() { None } else { irp.lendable_headers(out) };
        let Some(count) = count.filter(|_| take) else {
            side.release(irp, done);
            return count.map(|count| Lendable { irp: None, count, cancels });
        };
        f.set_read_lent(true);
        Some(Lendable { irp: Some(irp.take(&f.reads)), count, cancels })
    })
}

/// A lent read is back with the stream path (completed, or queued again at the head): later
/// reads may be filled again. Only the reads are pumped: the sources are not kicked — the one
/// that gave the read back is running, and a kick would undo its wait for an upstream pin that
/// refused the read (it would lend again at once, refused again, for ever).
pub fn given_back(f: &Filter) {
    f.set_read_lent(false);
    pump(f);
}

/// Records `n` more bytes of a frame with `meta` in the current header (after the `offset` bytes
/// it holds): its `DataUsed`, flags and times. The header is done — the cursor moves on — when
/// the frame ends in it or it is full; a full header whose frame goes on is a part (`CONTINUES`).
fn put(
    f: &Filter,
    cursor: &mut Cursor,
    h: &KSSTREAM_HEADER,
    n: usize,
    meta: &FrameMeta,
    frame_done: bool,
    direct: bool,
) {
    cursor.offset += n;
    write_header(cursor, h, cursor.offset, meta, part_flags(meta.options_flags, frame_done));
    Counters::add(&f.counters.bytes_out, n as u64);
    if frame_done {
        Counters::add(&f.counters.frames_out, 1);
        if direct {
            Counters::add(&f.counters.direct_frames, 1);
        }
        cursor.advance();
    } else if cursor.offset == h.FrameExtent as usize {
        Counters::add(&f.counters.split_parts, 1);
        cursor.advance();
    }
}

/// Completes the current header as a part if it holds the start of a frame whose rest is not
/// there yet (the read is about to complete).
fn close_part(f: &Filter, cursor: &mut Cursor) {
    if cursor.offset > 0 {
        Counters::add(&f.counters.split_parts, 1);
        cursor.advance();
    }
}

/// Fills in a read header for `n` bytes of a frame with `meta`.
fn write_header(cursor: &mut Cursor, h: &KSSTREAM_HEADER, n: usize, meta: &FrameMeta, flags: u32) {
    #[allow(clippy::cast_possible_truncation)] // n <= FrameExtent, a u32
    let out = KSSTREAM_HEADER {
        DataUsed: n as u32,
        OptionsFlags: flags,
        TypeSpecificFlags: meta.type_specific_flags,
        PresentationTime: KSTIME {
            Time: meta.presentation_time,
            Numerator: meta.numerator,
            Denominator: meta.denominator,
        },
        Duration: meta.duration,
        ..*h
    };
    cursor.set_header(&out);
}

/// Puts the end-of-stream header (no data, `ENDOFSTREAM`) in the current header.
fn end_of_stream(cursor: &mut Cursor) {
    if let Some(h) = cursor.header() {
        let meta = FrameMeta::default();
        write_header(cursor, &h, 0, &meta, KsStreamOptions::ENDOFSTREAM.bits());
        cursor.advance();
    }
}
