//! loom: the wake-up protocol ksring's stream path (`src/stream/mod.rs`) builds on this ring —
//! no request waits forever while the other side has what it needs.
//!
//! The driver keeps pending reads on a queue whose count is raised (`SeqCst`) before a read is
//! queued; a writer commits a frame, issues a `SeqCst` fence, and serves the reads itself only if
//! the count says someone waits; a reader, after queueing, takes the consumer's lock, fences, and
//! looks at the ring. The claim: of a writer that adds data and a reader that adds a read, at least
//! one sees the other, so the read is served. The model runs the real `Producer`/`Consumer` (with
//! loom's atomics) and models the driver's spin locks as mutexes and its KS queue as a counter.
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p framering --test loom_wakeup --release`.
//! Without the fences (`no_fences_loses_the_wakeup`) loom finds the interleaving where nobody
//! serves the read — the test shows the fences are what makes the protocol work.
#![cfg(loom)]

use framering::{Consumer, FrameMeta, Producer, RingCore};
use loom::sync::atomic::{AtomicU32, Ordering, fence};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// The driver side of one filter, as far as the protocol goes.
struct Filter {
    producer: Mutex<Producer<'static>>,
    consumer: Mutex<Consumer<'static>>,
    /// Reads queued and not yet served (the KS queue, under its own lock).
    queue: Mutex<u32>,
    /// The queue's count, readable without the queue's lock (`IrpQueue::len`).
    waiting: AtomicU32,
    served: AtomicU32,
    fences: bool,
}

impl Filter {
    fn fence(&self) {
        if self.fences {
            fence(Ordering::SeqCst);
        }
    }

    /// `read::pump`: under the consumer's lock, serve queued reads from the ring.
    fn read_pump(&self) {
        let mut rx = self.consumer.lock().unwrap();
        self.fence();
        loop {
            let mut queue = self.queue.lock().unwrap();
            if *queue == 0 {
                return;
            }
            let Some(frame) = rx.read() else { return };
            frame.release();
            *queue -= 1;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.served.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A write: commit a frame, then serve waiting reads if the count says there are any.
    fn write(&self) {
        self.producer.lock().unwrap().push(b"frame", &FrameMeta::default()).unwrap();
        self.fence();
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.read_pump();
        }
    }

    /// A read: count it, queue it, then pump.
    fn read(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        *self.queue.lock().unwrap() += 1;
        self.read_pump();
    }
}

fn filter(fences: bool) -> Arc<Filter> {
    let core: &'static mut RingCore = Box::leak(Box::new(RingCore::new()));
    let storage: &'static mut [u64] = Box::leak(vec![0u64; 4096 / 8].into_boxed_slice());
    // SAFETY: a leaked u64 buffer seen as bytes: 8-aligned, initialised, used only by this ring.
    let bytes = unsafe { std::slice::from_raw_parts_mut(storage.as_mut_ptr().cast::<u8>(), 4096) };
    let (producer, consumer) = core.split(bytes).unwrap();
    Arc::new(Filter {
        producer: Mutex::new(producer),
        consumer: Mutex::new(consumer),
        queue: Mutex::new(0),
        waiting: AtomicU32::new(0),
        served: AtomicU32::new(0),
        fences,
    })
}

/// One writer, one reader: the read is always served.
fn check(fences: bool) -> bool {
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::clone(&lost);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let f = filter(fences);
        let w = Arc::clone(&f);
        let writer = thread::spawn(move || w.write());
        f.read();
        writer.join().unwrap();
        if f.served.load(Ordering::SeqCst) != 1 {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    !lost.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_queued_read_is_always_served() {
    assert!(check(true), "a read waited forever with a frame in the ring");
}

#[test]
fn no_fences_loses_the_wakeup() {
    assert!(!check(false), "without the fences loom should find the lost wake-up");
}
