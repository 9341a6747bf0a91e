//! System worker threads: closes that must run at `PASSIVE_LEVEL` outside the driver call that
//! dropped the last reference (Windows finishes such work in an APC or a worker thread), and the
//! driver's work items.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::machine::{Enter, MachineInner};
use crate::sync::Locked;

/// Outstanding worker threads of every machine (joined by [`flush`]).
static WORKERS: Mutex<Vec<(usize, JoinHandle<()>)>> = Mutex::new(Vec::new());

/// Closes `file` (the address of a `FILE_OBJECT`) on a worker thread.
pub(crate) fn defer(m: &Arc<MachineInner>, file: usize) {
    let machine = Arc::clone(m);
    spawn(m, move || {
        let _enter = Enter::new(&machine);
        crate::iomgr::close_file(&machine, file as *mut ksabi::FILE_OBJECT);
    });
}

/// Runs `work` on a worker thread of machine `m` (joined by [`flush`]).
pub(crate) fn spawn(m: &Arc<MachineInner>, work: impl FnOnce() + Send + 'static) {
    let handle = std::thread::Builder::new()
        .name("kshost-worker".into())
        .spawn(work)
        .expect("spawning a kshost worker thread");
    let mut all = WORKERS.locked();
    // Threads that have finished are joined now: a long run (a driver queueing work items for
    // hours) must not keep every exited thread's stack until the machine shuts down.
    let (done, running): (Vec<_>, Vec<_>) = all.drain(..).partition(|(_, h)| h.is_finished());
    *all = running;
    all.push((Arc::as_ptr(m) as usize, handle));
    drop(all);
    for (_, h) in done {
        let _ = h.join();
    }
}

/// Waits for every worker thread of machine `m`.
pub(crate) fn flush(m: &MachineInner) {
    let me = std::ptr::from_ref(m) as usize;
    loop {
        let mine: Vec<JoinHandle<()>> = {
            let mut all = WORKERS.locked();
            let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|(owner, _)| *owner == me);
            *all = rest;
            mine.into_iter().map(|(_, h)| h).collect()
        };
        if mine.is_empty() {
            return;
        }
        for h in mine {
            let _ = h.join();
        }
    }
}
