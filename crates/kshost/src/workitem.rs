//! Work items (`IoAllocateWorkItem`, `IoQueueWorkItem`, `IoFreeWorkItem`): a driver's routine run
//! at `PASSIVE_LEVEL` by one of the system worker threads of the queue it names (`worker.rs`). A work item queued twice, freed while queued, or
//! still allocated at unload is reported (`WORK_ITEM_MISUSE`).

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ksabi::{DEVICE_OBJECT, DISPATCH_LEVEL};

use crate::machine::{Enter, MachineInner, current, violation};
use crate::sync::Locked;
use crate::verifier::Rule;

/// An `IO_WORKITEM`.
pub(crate) struct WorkItem {
    device: *mut DEVICE_OBJECT,
    queued: AtomicBool,
}

/// `IoAllocateWorkItem`.
pub(crate) fn allocate(device: *mut DEVICE_OBJECT) -> *mut c_void {
    let m = current();
    let item = Box::into_raw(Box::new(WorkItem { device, queued: AtomicBool::new(false) }));
    m.work_items.locked().insert(item as usize);
    item.cast()
}

fn known(m: &MachineInner, item: *mut c_void, what: &str) -> bool {
    let ok = m.work_items.locked().contains(&(item as usize));
    if !ok {
        violation(Rule::WorkItemMisuse, format!("{what}({item:p}): not an allocated work item"));
    }
    ok
}

/// `IoQueueWorkItem`: runs `routine(device, context)` on a worker thread at `PASSIVE_LEVEL`.
pub(crate) fn queue(
    item: *mut c_void,
    routine: ksabi::PIO_WORKITEM_ROUTINE,
    queue_type: i32,
    context: *mut c_void,
) {
    let m = current();
    crate::irql::require_at_most(DISPATCH_LEVEL, "IoQueueWorkItem");
    if !known(&m, item, "IoQueueWorkItem") {
        return;
    }
    // SAFETY: a live work item of this machine (checked above).
    let w = unsafe { &*item.cast::<WorkItem>() };
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
    let (device, item_addr, context_addr) = (w.device as usize, item as usize, context as usize);
    crate::worker::submit(&m, crate::worker::QueueType::from_raw(queue_type), move || {
        let _enter = Enter::new(&machine);
        // The item may be queued again (or freed) from the routine itself: it is no longer queued
        // once the routine runs, as on Windows.
        // SAFETY: the work item stays allocated while queued (freeing it while queued is a reported
        // misuse, and kshost frees only on IoFreeWorkItem).
        unsafe { &*(item_addr as *const WorkItem) }.queued.store(false, Ordering::Release);
        crate::iomgr::call_guarded("a work item routine", || {
            // SAFETY: the driver's routine with its device and context, at PASSIVE_LEVEL.
            unsafe { routine(device as *mut DEVICE_OBJECT, context_addr as *mut c_void) };
        });
    });
}

/// `IoFreeWorkItem`.
pub(crate) fn free(item: *mut c_void) {
    let m = current();
    if !known(&m, item, "IoFreeWorkItem") {
        return;
    }
    // SAFETY: a live work item of this machine.
    if unsafe { &*item.cast::<WorkItem>() }.queued.load(Ordering::Acquire) {
        violation(Rule::WorkItemMisuse, format!("IoFreeWorkItem({item:p}) while it is queued"));
        return;
    }
    m.work_items.locked().remove(&(item as usize));
    // SAFETY: allocated by `allocate` with Box::into_raw; removed from the registry once.
    drop(unsafe { Box::from_raw(item.cast::<WorkItem>()) });
}

/// At unload: work items never freed.
pub(crate) fn check_leaks(m: &MachineInner) {
    for &item in m.work_items.locked().iter() {
        violation(Rule::WorkItemMisuse, format!("work item {item:#x} still allocated at unload"));
    }
}
