//! How long the driver holds its spin locks, and how much it copies under one hold.
//!
//! At `DISPATCH_LEVEL` a processor runs nothing else — no DPC, no thread: Microsoft's guidance is
//! that a DPC should run for no more than 100 µs and no spin lock be held longer than 25 µs, and
//! a single DPC or a stretch at `DISPATCH_LEVEL` past the watchdog's allotment bug-checks 0x133
//! `DPC_WATCHDOG_VIOLATION` (sources in `FIDELITY.md`). kshost times every spin-lock hold (the
//! driver's `KeAcquireSpinLock*`/`KeReleaseSpinLock*` pairs and the cancel spin lock) and counts
//! the bytes the driver copies while holding it (through `copy_memory`, the host build's
//! `RtlCopyMemory`), per lock and overall, with a latency histogram for percentiles.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Histogram buckets: 8 per power of two of nanoseconds, up to 2^40 ns.
const SUB: usize = 8;
const BUCKETS: usize = 41 * SUB;

/// One lock's (or all locks') holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HoldSummary {
    /// Holds measured.
    pub holds: u64,
    /// The longest hold.
    pub max: Duration,
    /// The 99.9th percentile hold (to the histogram's resolution: 1/8 of a power of two).
    pub p999: Duration,
    /// The most bytes copied under one hold.
    pub max_bytes: u64,
    /// The most copies (`RtlCopyMemory` calls) made under one hold: a hold over many small frames
    /// is bounded by how many it handles, not by its bytes.
    pub max_copies: u64,
}

/// Locks tracked one by one (open addressing by address); holds of locks beyond them count in
/// the overall figures only.
const LOCK_SLOTS: usize = 1024;

/// One lock's figures (lock-free: recording a hold takes no lock of kshost's own, so measuring
/// does not serialise the driver's threads).
#[derive(Default)]
struct PerLock {
    lock: AtomicUsize,
    holds: AtomicU64,
    max_ns: AtomicU64,
    max_bytes: AtomicU64,
    max_copies: AtomicU64,
}

/// Spin-lock holds of one machine.
pub struct LockStats {
    histogram: Vec<AtomicU64>,
    holds: AtomicU64,
    max_ns: AtomicU64,
    max_bytes: AtomicU64,
    max_copies: AtomicU64,
    per_lock: Vec<PerLock>,
}

impl Default for LockStats {
    fn default() -> Self {
        Self {
            histogram: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            holds: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            max_bytes: AtomicU64::new(0),
            max_copies: AtomicU64::new(0),
            per_lock: (0..LOCK_SLOTS).map(|_| PerLock::default()).collect(),
        }
    }
}

fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return usize::try_from(ns).unwrap_or(0);
    }
    let msb = 63 - ns.leading_zeros() as usize;
    let sub = usize::try_from((ns >> (msb - 3)) & (SUB as u64 - 1)).unwrap_or(0);
    ((msb - 2) * SUB + sub).min(BUCKETS - 1)
}

/// The smallest value of bucket `b` (what a percentile reports).
fn bucket_floor(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let msb = b / SUB + 2;
    let sub = (b % SUB) as u64;
    (1u64 << msb) | (sub << (msb - 3))
}

impl LockStats {
    fn record(&self, lock: usize, ns: u64, copied: Copied) {
        let Copied { bytes, copies } = copied;
        self.histogram[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.holds.fetch_add(1, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
        self.max_bytes.fetch_max(bytes, Ordering::Relaxed);
        self.max_copies.fetch_max(copies, Ordering::Relaxed);
        if let Some(e) = self.slot(lock) {
            e.holds.fetch_add(1, Ordering::Relaxed);
            e.max_ns.fetch_max(ns, Ordering::Relaxed);
            e.max_bytes.fetch_max(bytes, Ordering::Relaxed);
            e.max_copies.fetch_max(copies, Ordering::Relaxed);
        }
    }

    /// The slot of `lock` (claimed on first use), if the table has room.
    fn slot(&self, lock: usize) -> Option<&PerLock> {
        let start = (lock >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) % LOCK_SLOTS;
        (0..LOCK_SLOTS).map(|i| &self.per_lock[(start + i) % LOCK_SLOTS]).find(|e| {
            let held = e.lock.load(Ordering::Relaxed);
            held == lock
                || (held == 0
                    && e.lock
                        .compare_exchange(0, lock, Ordering::Relaxed, Ordering::Relaxed)
                        .map_or_else(|now| now == lock, |_| true))
        })
    }

    /// All holds so far.
    pub(crate) fn overall(&self) -> HoldSummary {
        let holds = self.holds.load(Ordering::Relaxed);
        let counts: Vec<u64> = self.histogram.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let rank = holds - holds / 1000; // the 99.9th percentile's rank
        let mut seen = 0;
        let p999 = counts
            .iter()
            .enumerate()
            .find(|(_, c)| {
                seen += **c;
                seen >= rank.max(1)
            })
            .map_or(0, |(b, _)| bucket_floor(b));
        HoldSummary {
            holds,
            max: Duration::from_nanos(self.max_ns.load(Ordering::Relaxed)),
            p999: Duration::from_nanos(p999),
            max_bytes: self.max_bytes.load(Ordering::Relaxed),
            max_copies: self.max_copies.load(Ordering::Relaxed),
        }
    }

    /// Per lock address: holds, the longest, the most bytes (no percentile), longest first.
    pub(crate) fn per_lock(&self) -> Vec<(usize, HoldSummary)> {
        let mut v: Vec<(usize, HoldSummary)> = self
            .per_lock
            .iter()
            .filter(|e| e.lock.load(Ordering::Relaxed) != 0)
            .map(|e| {
                let summary = HoldSummary {
                    holds: e.holds.load(Ordering::Relaxed),
                    max: Duration::from_nanos(e.max_ns.load(Ordering::Relaxed)),
                    p999: Duration::ZERO,
                    max_bytes: e.max_bytes.load(Ordering::Relaxed),
                    max_copies: e.max_copies.load(Ordering::Relaxed),
                };
                (e.lock.load(Ordering::Relaxed), summary)
            })
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.1.max));
        v
    }

    /// Forgets every hold (between benchmark cells).
    pub(crate) fn reset(&self) {
        for b in &self.histogram {
            b.store(0, Ordering::Relaxed);
        }
        self.holds.store(0, Ordering::Relaxed);
        self.max_ns.store(0, Ordering::Relaxed);
        self.max_bytes.store(0, Ordering::Relaxed);
        self.max_copies.store(0, Ordering::Relaxed);
        for e in &self.per_lock {
            e.lock.store(0, Ordering::Relaxed);
            e.holds.store(0, Ordering::Relaxed);
            e.max_ns.store(0, Ordering::Relaxed);
            e.max_bytes.store(0, Ordering::Relaxed);
            e.max_copies.store(0, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// The locks this thread holds, innermost last: (lock, since, what was copied meanwhile).
    static HELD: RefCell<Vec<(usize, Instant, Copied)>> = const { RefCell::new(Vec::new()) };
}

/// What the driver copied under one hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Copied {
    /// Bytes.
    pub bytes: u64,
    /// `RtlCopyMemory` calls.
    pub copies: u64,
}

/// A lock was just acquired by this thread.
pub(crate) fn acquired(lock: usize) {
    HELD.with(|h| h.borrow_mut().push((lock, Instant::now(), Copied::default())));
}

/// A lock is being released by this thread: record the hold on the current machine, and return
/// what was copied under it (`None` for a hold this thread did not record).
pub(crate) fn released(lock: usize) -> Option<Copied> {
    let (_, since, copied) = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let i = h.iter().rposition(|&(l, _, _)| l == lock)?;
        Some(h.remove(i))
    })?;
    let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    crate::machine::with_current(|m| m.lock_stats.record(lock, ns, copied));
    Some(copied)
}

/// Whether this thread holds any spin lock (it runs at `DISPATCH_LEVEL` and cannot be preempted).
pub(crate) fn holds_any() -> bool {
    HELD.with(|h| !h.borrow().is_empty())
}

/// `n` bytes copied by this thread: counted against every lock it holds.
pub(crate) fn copied(n: usize) {
    HELD.with(|h| {
        for held in h.borrow_mut().iter_mut() {
            held.2.bytes += n as u64;
            held.2.copies += 1;
        }
    });
}
