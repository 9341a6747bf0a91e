//! The producer side: drains the input pin's queue into the ring, or straight into waiting reads.

use framering::{FrameMeta, Producer, ReserveError};
use ksabi::{IRP, KSSTREAM_HEADER, KSTIME, STATUS_SUCCESS};
use ksring_api::{KSRING_OPTIONSF_CONTINUES, PIN_INPUT, PIN_OUTPUT};

use super::completions::Completions;
use super::{Cursor, part_flags, piece_limit, release};
use crate::filter::{Counters, Filter};

/// One pass over the queued writes; `true` if anything moved or completed.
pub fn pump(f: &Filter) -> bool {
    let mut done = Completions::new();
    let mut progress = false;
    {
        let mut producer = f.producer.lock();
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        if let Some(p) = producer.as_mut()
            && f.flowing(PIN_INPUT)
        {
            let limit = piece_limit(p.max_frame());
            while let Some(irp) = f.writes.acquire_first() {
                // SAFETY: acquired from the queue: ours until released or removed.
                let mut cursor = unsafe { Cursor::load(irp) };
                let finished = feed(f, p, irp, &mut cursor, limit, &mut done, &mut progress);
                cursor.save();
                if finished {
                    // SAFETY: acquired from this queue.
                    unsafe { f.writes.remove(irp) };
                    // SAFETY: ours; Information holds the bytes accepted.
                    let accepted = unsafe { crate::nt::information(irp) };
                    // SAFETY: off the queue, ours to complete.
                    unsafe { done.push(irp, STATUS_SUCCESS, accepted) };
                    progress = true;
                } else {
                    // SAFETY: acquired from this queue, under the producer lock.
                    unsafe { release(&f.writes, irp, &mut done) };
                    break;
                }
            }
        }
    }
    done.complete_all();
    progress
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

/// Moves the write IRP's frames on; `true` when all are accepted, `false` when the ring is full.
fn feed(
    f: &Filter,
    p: &mut Producer<'static>,
    irp: *mut IRP,
    cursor: &mut Cursor,
    limit: usize,
    done: &mut Completions,
    progress: &mut bool,
) -> bool {
    while let Some(h) = cursor.header() {
        let used = h.DataUsed as usize;
        let meta = meta_of(&h);
        let base = cursor.data();
        let rest: &[u8] = if used == 0 || base.is_null() {
            &[]
        } else {
            // SAFETY: the header's mapped buffer holds FrameExtent >= DataUsed bytes (checked by
            // the probe and `Cursor::start`); the caller does not write it while the IRP is ours.
            unsafe { core::slice::from_raw_parts(base.wrapping_add(cursor.offset), used - cursor.offset) }
        };
        let moved = if f.reads.len() > 0 && f.flowing(PIN_OUTPUT) {
            super::read::direct(f, rest, &meta, done)
        } else {
            None
        };
        let moved = if let Some(n) = moved {
            n
        } else {
            let take = rest.len().min(limit);
            match p.reserve(take) {
                Ok(mut grant) => {
                    grant.payload().copy_from_slice(&rest[..take]);
                    let last = take == rest.len();
                    grant.commit(&FrameMeta { options_flags: part_flags(meta.options_flags, last), ..meta });
                    take
                }
                Err(ReserveError::Full) if super::pass_padding(f) => continue, // room now: again
                Err(ReserveError::Full | ReserveError::TooLarge { .. }) => return false,
            }
        };
        *progress = true;
        cursor.offset += moved;
        Counters::add(&f.counters.bytes_in, moved as u64);
        // SAFETY: the IRP is ours; Information is the bytes accepted so far.
        unsafe { (*irp).IoStatus.Information += moved };
        if cursor.offset == used {
            // A header that says the frame continues (an IRP source forwarding a part) is not a
            // whole frame yet.
            if meta.options_flags & KSRING_OPTIONSF_CONTINUES == 0 {
                Counters::add(&f.counters.frames_in, 1);
            }
            cursor.advance();
        }
    }
    true
}

const _: () = assert!(size_of::<KSTIME>() == 16);
