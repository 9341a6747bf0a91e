//! Work items (`IoAllocateWorkItem`, `IoQueueWorkItem`, `IoFreeWorkItem`): a driver's routine run
//! at `PASSIVE_LEVEL` by one of the system worker threads of the queue it names (`worker.rs`). A work item queued twice, freed while queued, or
//! still allocated at unload is reported (`WORK_ITEM_MISUSE`).
//!
//! `IO_WORKITEM` is opaque to drivers, so the pointer a driver holds is only a key: each item lives
//! in the machine's registry behind an `Arc`, and every routine looks it up there instead of
//! trusting the pointer (a stale or foreign one is reported, never read).

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ksabi::{DEVICE_OBJECT, DISPATCH_LEVEL};

use crate::machine::{Enter, MachineInner, current, violation};
use crate::sync::Locked;
use crate::verifier::Rule;

/// An `IO_WORKITEM`.
pub(crate) struct WorkItem {
    /// The device the item was allocated for (handed to the routine, never read by kshost).
    device: usize,
    queued: AtomicBool,
}

/// `IoAllocateWorkItem`.
pub(crate) fn allocate(device: *mut DEVICE_OBJECT) -> *mut c_void {
    let m = current();
    let item = Arc::new(WorkItem { device: device as usize, queued: AtomicBool::new(false) });
    let key = Arc::as_ptr(&item).cast_mut().cast::<c_void>();
    m.work_items.locked().insert(key as usize, item);
    key
}

/// The work item the driver's pointer names, if it is one of this machine's; reports `what`
/// otherwise.
fn known(m: &MachineInner, item: *mut c_void, what: &str) -> Option<Arc<WorkItem>> {
    let found = m.work_items.locked().get(&(item as usize)).cloned();
    if found.is_none() {
        violation(Rule::WorkItemMisuse, format!("{what}({item:p}): not an allocated work item"));
    }
    found
}

/// `IoQueueWorkItem`: runs `routine(device, context)` on a worker thread at `PASSIVE_LEVEL`.
///
/// # Safety
/// As the routine's contract: `routine` may be called with the item's device and `context`, on
/// another thread, at `PASSIVE_LEVEL`, at any time until it has run (the caller keeps `context`
/// valid that long). The item itself is looked up, not trusted.
pub(crate) unsafe fn queue(
    item: *mut c_void,
    routine: ksabi::PIO_WORKITEM_ROUTINE,
    queue_type: i32,
    context: *mut c_void,
) {
    let m = current();
    crate::irql::require_at_most(DISPATCH_LEVEL, "IoQueueWorkItem");
    let Some(w) = known(&m, item, "IoQueueWorkItem") else {
        return;
    };
    if w.queued.swap(true, Ordering::AcqRel) {
        violation(Rule::WorkItemMisuse, format!("IoQueueWorkItem({item:p}): already queued"));
        return;
    }
    let Some(routine) = routine else {
        violation(Rule::WorkItemMisuse, "IoQueueWorkItem with no routine".into());
        w.queued.store(false, Ordering::Release);
        return;
    };
    let machine: Arc<MachineInner> = Arc::clone(&m);
    let context_addr = context as usize;
    crate::worker::submit(&m, crate::worker::QueueType::from_raw(queue_type), move || {
        let _enter = Enter::new(&machine);
        // The item may be queued again (or freed) from the routine itself: it is no longer queued
        // once the routine runs, as on Windows.
        w.queued.store(false, Ordering::Release);
        crate::iomgr::call_guarded("a work item routine", || {
            // SAFETY: the driver's routine with its device and context, at PASSIVE_LEVEL, as the
            // queueing caller promised (`queue`'s contract).
            unsafe { routine(w.device as *mut DEVICE_OBJECT, context_addr as *mut c_void) };
        });
    });
}

/// `IoFreeWorkItem`.
pub(crate) fn free(item: *mut c_void) {
    let m = current();
    let mut items = m.work_items.locked();
    let Some(w) = items.get(&(item as usize)) else {
        drop(items);
        violation(Rule::WorkItemMisuse, format!("IoFreeWorkItem({item:p}): not an allocated work item"));
        return;
    };
    if w.queued.load(Ordering::Acquire) {
        drop(items);
        violation(Rule::WorkItemMisuse, format!("IoFreeWorkItem({item:p}) while it is queued"));
        return;
    }
    items.remove(&(item as usize));
}

/// At unload: work items never freed.
pub(crate) fn check_leaks(m: &MachineInner) {
    for &item in m.work_items.locked().keys() {
        violation(Rule::WorkItemMisuse, format!("work item {item:#x} still allocated at unload"));
    }
}
