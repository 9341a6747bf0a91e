//! The consumer side: fills the output pin's queued reads from the ring, or from a writer's
//! buffer directly ([`direct`]), and ends the stream when the input is gone.

use framering::{Consumer, FrameMeta};
use ksabi::{KSSTREAM_HEADER, KSTIME, KsStreamOptions, STATUS_SUCCESS};
use ksring_api::{KSRING_OPTIONSF_CONTINUES, PIN_OUTPUT};

use super::completions::Completions;
use super::{Cursor, part_flags, release};
use crate::filter::{Counters, Filter};

/// One pass over the queued reads; `true` if anything moved or completed.
pub fn pump(f: &Filter) -> bool {
    let mut done = Completions::new();
    let mut progress = false;
    {
        let mut consumer = f.consumer.lock();
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        if let Some(c) = consumer.as_mut()
            && f.flowing(PIN_OUTPUT)
        {
            while let Some(irp) = f.reads.acquire_first() {
                // SAFETY: acquired from the queue: ours until released or removed.
                let mut cursor = unsafe { Cursor::load(irp) };
                progress |= fill(f, c, &mut cursor);
                let empty = c.is_empty();
                let ended = empty && f.input_closed();
                if ended && cursor.header().is_some() {
                    end_of_stream(&mut cursor);
                }
                cursor.save();
                let finished = cursor.header().is_none() || (cursor.at > 0 && empty);
                if finished {
                    // SAFETY: acquired from this queue.
                    unsafe { f.reads.remove(irp) };
                    // SAFETY: off the queue, ours to complete.
                    unsafe { done.push(irp, STATUS_SUCCESS, cursor.at) };
                    progress = true;
                } else {
                    // SAFETY: acquired from this queue, under the consumer lock.
                    unsafe { release(&f.reads, irp, &mut done) };
                    break;
                }
                if empty && !ended {
                    break;
                }
            }
        }
    }
    done.complete_all();
    progress
}

/// Fills headers from the ring while both last; `true` if anything moved.
fn fill(f: &Filter, c: &mut Consumer<'static>, cursor: &mut Cursor) -> bool {
    let mut moved = false;
    while let Some(h) = cursor.header() {
        let Some(grant) = c.read() else {
            break;
        };
        let payload = grant.payload();
        let n = payload.len().min(h.FrameExtent as usize);
        // SAFETY: the header's mapped buffer holds FrameExtent >= n bytes (`Cursor::start`); the
        // ring's payload is n bytes or more; the two do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(payload.as_ptr(), cursor.data(), n) };
        let meta = grant.meta();
        let record_done = n == payload.len();
        let frame_done = record_done && meta.options_flags & KSRING_OPTIONSF_CONTINUES == 0;
        write_header(cursor, &h, n, &meta, part_flags(meta.options_flags, record_done));
        grant.consume(n);
        count_out(f, n, frame_done, false);
        cursor.advance();
        moved = true;
    }
    moved
}

/// Delivers the start of a writer's frame (`bytes`, the rest of it) straight into the read at the
/// head of the queue, if the ring is empty (nothing older waits) — one copy instead of two.
/// Returns how many bytes went, or `None` if no read could take them.
pub fn direct(f: &Filter, bytes: &[u8], meta: &FrameMeta, done: &mut Completions) -> Option<usize> {
    let mut consumer = f.consumer.lock();
    let c = consumer.as_mut()?;
    if !c.is_empty() {
        return None;
    }
    let irp = f.reads.acquire_first()?;
    // SAFETY: acquired from the queue: ours until released or removed.
    let mut cursor = unsafe { Cursor::load(irp) };
    let Some(h) = cursor.header() else {
        // SAFETY: acquired from this queue (a full read is never left queued, but be safe), under
        // the consumer lock.
        unsafe { release(&f.reads, irp, done) };
        return None;
    };
    let n = bytes.len().min(h.FrameExtent as usize);
    // SAFETY: the read header's mapped buffer holds FrameExtent >= n bytes; the writer's buffer
    // holds `bytes`; different requests' buffers.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), cursor.data(), n) };
    let last = n == bytes.len();
    write_header(&cursor, &h, n, meta, part_flags(meta.options_flags, last));
    count_out(f, n, last && meta.options_flags & KSRING_OPTIONSF_CONTINUES == 0, true);
    cursor.advance();
    cursor.save();
    if cursor.header().is_none() {
        // SAFETY: acquired from this queue.
        unsafe { f.reads.remove(irp) };
        // SAFETY: off the queue, ours to complete.
        unsafe { done.push(irp, STATUS_SUCCESS, cursor.at) };
    } else {
        // Partly filled: it stays queued; the read pump completes it when no more data comes,
        // and a cancel completes it with what it holds.
        // SAFETY: acquired from this queue, under the consumer lock.
        unsafe { release(&f.reads, irp, done) };
    }
    Some(n)
}

/// Fills in a read header for `n` bytes of a frame with `meta`.
fn write_header(cursor: &Cursor, h: &KSSTREAM_HEADER, n: usize, meta: &FrameMeta, flags: u32) {
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

fn count_out(f: &Filter, n: usize, frame_done: bool, direct: bool) {
    Counters::add(&f.counters.bytes_out, n as u64);
    if frame_done {
        Counters::add(&f.counters.frames_out, 1);
        if direct {
            Counters::add(&f.counters.direct_frames, 1);
        }
    } else {
        Counters::add(&f.counters.split_parts, 1);
    }
}
