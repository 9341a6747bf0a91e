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
use std::time::Duration;

/// Histogram buckets: 8 per power of two of nanoseconds, up to 2^40 ns.
const SUB: usize = 8;
const BUCKETS: usize = 41 * SUB;
/// Copies of the histogram, one per thread modulo this: threads on different processors count
/// holds in different cache lines. (One shared histogram and hold counter, bumped on every release
/// from every processor, cost the chain benchmark about 5 % of its time in cache-line transfers —
/// kshost measuring itself, not the driver.)
const SHARDS: usize = 8;

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
    /// [`SHARDS`] histograms of [`BUCKETS`] each; the holds are their sum.
    histogram: Vec<AtomicU64>,
    max_ns: AtomicU64,
    max_bytes: AtomicU64,
    max_copies: AtomicU64,
    per_lock: Vec<PerLock>,
}

impl Default for LockStats {
    fn default() -> Self {
        Self {
            histogram: (0..SHARDS * BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_ns: AtomicU64::new(0),
            max_bytes: AtomicU64::new(0),
            max_copies: AtomicU64::new(0),
            per_lock: (0..LOCK_SLOTS).map(|_| PerLock::default()).collect(),
        }
    }
}

/// Raises `max` to `value` if that is more: a load first, so that the common case (not a new
/// maximum) writes nothing to a line other processors read too.
fn raise(max: &AtomicU64, value: u64) {
    if value > max.load(Ordering::Relaxed) {
        max.fetch_max(value, Ordering::Relaxed);
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
        let shard = (crate::irql::thread_tag() >> 1) % SHARDS;
        self.histogram[shard * BUCKETS + bucket(ns)].fetch_add(1, Ordering::Relaxed);
        raise(&self.max_ns, ns);
        raise(&self.max_bytes, bytes);
        raise(&self.max_copies, copies);
        if let Some(e) = self.slot(lock) {
            e.holds.fetch_add(1, Ordering::Relaxed);
            raise(&e.max_ns, ns);
            raise(&e.max_bytes, bytes);
            raise(&e.max_copies, copies);
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
        let counts: Vec<u64> = (0..BUCKETS)
            .map(|b| {
                (0..SHARDS).map(|shard| self.histogram[shard * BUCKETS + b].load(Ordering::Relaxed)).sum()
            })
            .collect();
        let holds = counts.iter().sum::<u64>();
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
    /// The locks this thread holds, innermost last: (lock, since ([`clock::now`]), what was copied
    /// meanwhile).
    static HELD: RefCell<Vec<(usize, u64, Copied)>> = const { RefCell::new(Vec::new()) };
}

/// The hold timer's clock: two reads per spin-lock hold, so it must be cheap. On x86-64 the
/// time-stamp counter (`RDTSC`, constant-rate on the processors kshost runs on), converted to
/// nanoseconds with a rate measured once against `Instant`; `clock_gettime` through the vDSO cost
/// the chain benchmark about 4 % of its time. Elsewhere, `Instant`.
mod clock {
    #[cfg(target_arch = "x86_64")]
    pub(super) fn now() -> u64 {
        // SAFETY: RDTSC has no preconditions: every x86-64 processor has it, user mode may run it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Nanoseconds between two [`now`] readings.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn ns_between(from: u64, to: u64) -> u64 {
        use std::sync::OnceLock;
        use std::time::{Duration, Instant};
        static NS_PER_TICK: OnceLock<f64> = OnceLock::new();
        let rate = *NS_PER_TICK.get_or_init(|| {
            let (t0, c0) = (Instant::now(), now());
            while t0.elapsed() < Duration::from_millis(2) {
                std::hint::spin_loop();
            }
            let (ns, ticks) = (t0.elapsed().as_nanos(), now().saturating_sub(c0));
            #[allow(clippy::cast_precision_loss)] // a rate: 2 ms of nanoseconds and ticks
            let rate = ns as f64 / ticks.max(1) as f64;
            rate
        });
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ns = (to.saturating_sub(from) as f64 * rate) as u64;
        ns
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn origin() -> std::time::Instant {
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn now() -> u64 {
        u64::try_from(origin().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn ns_between(from: u64, to: u64) -> u64 {
        to.saturating_sub(from)
    }
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
    HELD.with(|h| h.borrow_mut().push((lock, clock::now(), Copied::default())));
}

/// A lock is being released by this thread: record the hold on the current machine, and return
/// what was copied under it (`None` for a hold this thread did not record).
pub(crate) fn released(lock: usize) -> Option<Copied> {
    let (_, since, copied) = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let i = h.iter().rposition(|&(l, _, _)| l == lock)?;
        Some(h.remove(i))
    })?;
    let ns = clock::ns_between(since, clock::now());
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
