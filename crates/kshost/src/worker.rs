//! System worker threads: the driver's work items and the closes that must run at `PASSIVE_LEVEL`
//! outside the driver call that dropped the last reference (Windows defers such deletions to a
//! worker: ReactOS `ObpDeferObjectDeletion` queues its reaper on the critical queue).
//!
//! As on Windows, a machine has a fixed set of worker threads per queue, started once and fed from
//! a queue — not a thread per item. The counts are ReactOS's (`ntoskrnl/ex/work.c`: 5 critical,
//! 3 delayed, 1 hypercritical static threads). A balance manager looks at each queue once a second
//! and, when items wait and none was processed since its last look (every static thread blocked),
//! adds a dynamic thread, at most 16 per queue — ReactOS's `ExpDetectWorkerThreadDeadlock` and
//! `ExpWorkerThreadBalanceManager` (Windows' balance set manager does the same; the driver may not
//! rely on more than the static threads, and a routine that blocks a worker for long is a bug the
//! one-second stall shows). Threads wait on a condition variable: an item wakes one at once.
//!
//! Each queue is also a KQUEUE whose concurrency is the machine's processor count
//! ([`crate::Settings::processors`], when set): at most that many of its threads run items at once,
//! and one that waits (`KeWaitForSingleObject`: [`waiting`]) lets another run — a routine that
//! never returns and never waits holds a processor's share of the queue for good (Windows
//! `KeInsertQueue`/`KeRemoveQueue`: "the concurrency limit … the number of processors"; ReactOS
//! `ke/queue.c` `KiActivateWaiterQueue`). On a uniprocessor that is the whole queue: the ReactOS
//! lab's single-processor machine showed it.
//!
//! [`flush`] waits until every queue of the machine is empty and idle, then stops and joins its
//! threads (a later item starts a new set).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::machine::{Enter, MachineInner};
use crate::sync::Locked;

/// `WORK_QUEUE_TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueType {
    /// `CriticalWorkQueue` (0).
    Critical = 0,
    /// `DelayedWorkQueue` (1).
    Delayed = 1,
    /// `HyperCriticalWorkQueue` (2).
    HyperCritical = 2,
}

impl QueueType {
    /// The queue a driver names; anything else (`CustomPriorityWorkQueue`, out of range) goes to
    /// the delayed queue, as `ExQueueWorkItem` treats unknown values on ReactOS.
    pub(crate) fn from_raw(raw: i32) -> Self {
        match raw {
            0 => Self::Critical,
            2 => Self::HyperCritical,
            _ => Self::Delayed,
        }
    }
}

/// Static threads per queue (ReactOS `EX_CRITICAL_WORK_THREADS`, `EX_DELAYED_WORK_THREADS`,
/// `EX_HYPERCRITICAL_WORK_THREADS`), indexed by [`QueueType`].
const STATIC_THREADS: [usize; 3] = [5, 3, 1];
/// Dynamic threads a queue may add when it stalls (ReactOS: 16).
const MAX_DYNAMIC: usize = 16;
/// How often the balance manager looks (ReactOS: every second).
const BALANCE_PERIOD: Duration = Duration::from_secs(1);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct QueueState {
    items: VecDeque<Job>,
    /// Items being run now.
    running: usize,
    /// Of those, the ones whose thread is not waiting: the KQUEUE's current count.
    active: usize,
    processed: u64,
    processed_last_pass: u64,
    depth_last_pass: usize,
    dynamic: usize,
    stopping: bool,
}

#[derive(Default)]
struct WorkQueue {
    /// At most this many items run at once, waiting ones not counted (the processors).
    limit: usize,
    state: Mutex<QueueState>,
    /// An item was queued, or the queue stops.
    work: Condvar,
    /// The queue went idle (for [`flush`]).
    idle: Condvar,
}

struct Pool {
    queues: [Arc<WorkQueue>; 3],
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// The balance manager's wake-up (stop).
    balance: Arc<(Mutex<bool>, Condvar)>,
}

/// The pools of every machine, by the machine's address.
static POOLS: Mutex<Vec<(usize, Arc<Pool>)>> = Mutex::new(Vec::new());

fn key(m: &MachineInner) -> usize {
    std::ptr::from_ref(m) as usize
}

thread_local! {
    /// The queue whose item this (worker) thread is running.
    static RUNNING_IN: RefCell<Option<Arc<WorkQueue>>> = const { RefCell::new(None) };
}

/// Whether this thread is a system worker thread running a work item.
pub(crate) fn in_work_item() -> bool {
    RUNNING_IN.with(|r| r.borrow().is_some())
}

fn worker_loop(queue: &Arc<WorkQueue>) {
    loop {
        let job = {
            let mut s = queue.state.locked();
            loop {
                if s.active < queue.limit
                    && let Some(job) = s.items.pop_front()
                {
                    s.running += 1;
                    s.active += 1;
                    break job;
                }
                if s.stopping {
                    return;
                }
                s = queue.work.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        RUNNING_IN.with(|r| *r.borrow_mut() = Some(Arc::clone(queue)));
        job();
        RUNNING_IN.with(|r| *r.borrow_mut() = None);
        let mut s = queue.state.locked();
        s.running -= 1;
        s.active -= 1;
        s.processed += 1;
        queue.work.notify_one(); // a processor's share is free
        if s.running == 0 && s.items.is_empty() {
            queue.idle.notify_all();
        }
    }
}

/// Runs `wait` (a blocking wait of the calling thread): a worker thread running an item leaves its
/// queue's count meanwhile, so that another item may run, and counts again after (exceeding the
/// limit for a while, as a KQUEUE lets a woken thread).
pub(crate) fn waiting<R>(wait: impl FnOnce() -> R) -> R {
    let queue = RUNNING_IN.with(|r| r.borrow().clone());
    if let Some(q) = &queue {
        q.state.locked().active -= 1;
        q.work.notify_one();
    }
    let result = wait();
    if let Some(q) = &queue {
        q.state.locked().active += 1;
    }
    result
}

fn start_thread(pool: &Pool, which: usize, dynamic: bool) {
    let queue = Arc::clone(&pool.queues[which]);
    let name = format!(
        "kshost-worker-{}{}",
        ["critical", "delayed", "hypercritical"][which],
        if dynamic { "+" } else { "" }
    );
    let handle = std::thread::Builder::new()
        .name(name)
        .spawn(move || worker_loop(&queue))
        .expect("spawning a kshost worker thread");
    pool.threads.locked().push(handle);
}

/// One look of the balance manager: a queue that had items waiting at the last look and processed
/// nothing since gets a dynamic thread.
fn balance(pool: &Pool) {
    for (which, queue) in pool.queues.iter().enumerate() {
        let add = {
            let mut s = queue.state.locked();
            let stalled =
                s.depth_last_pass > 0 && s.processed == s.processed_last_pass && s.dynamic < MAX_DYNAMIC;
            s.processed_last_pass = s.processed;
            s.depth_last_pass = s.items.len();
            if stalled {
                s.dynamic += 1;
            }
            stalled && !s.stopping
        };
        if add {
            start_thread(pool, which, true);
        }
    }
}

fn start_pool(processors: Option<usize>) -> Arc<Pool> {
    let queue = || Arc::new(WorkQueue { limit: processors.unwrap_or(usize::MAX), ..WorkQueue::default() });
    let pool = Arc::new(Pool {
        queues: [queue(), queue(), queue()],
        threads: Mutex::new(Vec::new()),
        balance: Arc::new((Mutex::new(false), Condvar::new())),
    });
    for (which, &n) in STATIC_THREADS.iter().enumerate() {
        for _ in 0..n {
            start_thread(&pool, which, false);
        }
    }
    let weak = Arc::downgrade(&pool);
    let stop = Arc::clone(&pool.balance);
    let manager = std::thread::Builder::new()
        .name("kshost-balance-manager".into())
        .spawn(move || {
            let (lock, cv) = &*stop;
            loop {
                let stopped = lock.locked();
                if *stopped {
                    return;
                }
                let (stopped, _) = cv
                    .wait_timeout(stopped, BALANCE_PERIOD)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if *stopped {
                    return;
                }
                drop(stopped);
                let Some(pool) = weak.upgrade() else { return };
                balance(&pool);
            }
        })
        .expect("spawning the kshost balance manager");
    pool.threads.locked().push(manager);
    pool
}

/// Closes `file` (the address of a `FILE_OBJECT`) on a worker thread of the critical queue.
///
/// # Safety
/// As for [`crate::iomgr::close_file`]: the file object's last reference is gone and this is its
/// one close (the address travels as an integer only to cross to the worker thread).
pub(crate) unsafe fn defer(m: &Arc<MachineInner>, file: usize) {
    let machine = Arc::clone(m);
    submit(m, QueueType::Critical, move || {
        let _enter = Enter::new(&machine);
        // SAFETY: `defer`'s contract, handed on to the one closure that runs the close.
        unsafe { crate::iomgr::close_file(&machine, file as *mut ksabi::FILE_OBJECT) };
    });
}

/// Queues `work` on queue `which` of machine `m` (run by one of its worker threads).
pub(crate) fn submit(m: &Arc<MachineInner>, which: QueueType, work: impl FnOnce() + Send + 'static) {
    let pool = {
        let mut pools = POOLS.locked();
        let me = key(m);
        if let Some((_, p)) = pools.iter().find(|(owner, _)| *owner == me) {
            Arc::clone(p)
        } else {
            let p = start_pool(m.settings.processors);
            pools.push((me, Arc::clone(&p)));
            p
        }
    };
    let queue = &pool.queues[which as usize];
    queue.state.locked().items.push_back(Box::new(work));
    queue.work.notify_one();
}

/// Waits until every queue of machine `m` is empty with nothing running, then stops and joins its
/// threads.
pub(crate) fn flush(m: &MachineInner) {
    let me = key(m);
    let Some(pool) = POOLS.locked().iter().find(|(owner, _)| *owner == me).map(|(_, p)| Arc::clone(p)) else {
        return;
    };
    // An item may queue another on any queue: idle means all three idle in one pass.
    loop {
        let mut quiet = true;
        for queue in &pool.queues {
            let mut s = queue.state.locked();
            while s.running > 0 || !s.items.is_empty() {
                quiet = false;
                s = queue.idle.wait(s).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
        if quiet {
            break;
        }
    }
    POOLS.locked().retain(|(owner, _)| *owner != me);
    for queue in &pool.queues {
        queue.state.locked().stopping = true;
        queue.work.notify_all();
    }
    {
        let (lock, cv) = &*pool.balance;
        *lock.locked() = true;
        cv.notify_all();
    }
    let threads = std::mem::take(&mut *pool.threads.locked());
    for t in threads {
        let _ = t.join();
    }
    // Items queued between the idle check and the stop (none should be: callers flush once the
    // driver is quiet) still run, here.
    for queue in &pool.queues {
        let left: Vec<Job> = queue.state.locked().items.drain(..).collect();
        for job in left {
            job();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QueueType;

    #[test]
    fn queue_types_are_the_wdk_values() {
        assert_eq!(QueueType::from_raw(0), QueueType::Critical);
        assert_eq!(QueueType::from_raw(ksabi::DelayedWorkQueue), QueueType::Delayed);
        assert_eq!(QueueType::from_raw(2), QueueType::HyperCritical);
        assert_eq!(QueueType::from_raw(77), QueueType::Delayed);
    }
}
