//! KS cancelable IRP queues (KS-REFERENCE §1.11; behaviour as documented and as ReactOS does it).
//!
//! IRPs are linked through `Tail.Overlay.ListEntry` on the driver's list head, guarded by the
//! driver's spin lock, whose address is kept in `DriverContext[1]`. An IRP is *owned by the queue*
//! while its cancel routine is set; taking it (`KsRemoveIrpFromCancelableQueue`) clears the cancel
//! routine atomically, so a cancel and a removal never both get it. kshost also records the queue
//! an IRP is on, so that completing a queued IRP is flagged (`IRP_COMPLETED_WHILE_QUEUED`).

#![allow(non_upper_case_globals)] // KS' enum constants keep their C names

use std::sync::atomic::Ordering;

use ksabi::{
    DEVICE_OBJECT, IRP, KSIRP_REMOVAL_OPERATION, KSLIST_ENTRY_LOCATION, KSPIN_LOCK, KsAcquireAndRemove,
    KsAcquireAndRemoveOnlySingleItem, KsAcquireOnly, KsAcquireOnlySingleItem, KsListEntryHead, LIST_ENTRY,
    PDRIVER_CANCEL, STATUS_CANCELLED,
};

use crate::iomgr::swap_cancel_routine;
use crate::machine::{current, violation};
use crate::objects::IrpBox;
use crate::verifier::Rule;

fn entry_of(irp: *mut IRP) -> *mut LIST_ENTRY {
    &raw mut IrpBox::of(irp).overlay().ListEntry
}

fn irp_of(entry: *mut LIST_ENTRY) -> *mut IRP {
    let offset = core::mem::offset_of!(IRP, Tail) + core::mem::offset_of!(ksabi::IRP_TAIL_OVERLAY, ListEntry);
    entry.cast::<u8>().wrapping_sub(offset).cast()
}

/// `Tail.Overlay.DriverContext[1]` (`KSQUEUE_SPINLOCK_IRP_STORAGE`).
fn lock_slot(irp: *mut IRP) -> &'static mut *mut core::ffi::c_void {
    &mut IrpBox::of(irp).overlay().DriverContext[1]
}

/// The device a cancel routine gets: the IRP's current location's.
fn device_of(irp: *mut IRP) -> *mut DEVICE_OBJECT {
    IrpBox::of(irp).stack_mut().DeviceObject
}

/// A list link the caller may read and write (it holds the list's lock).
///
/// # Safety
/// `e` is a live `LIST_ENTRY` no one else touches while the reference lives.
unsafe fn link<'a>(e: *mut LIST_ENTRY) -> &'a mut LIST_ENTRY {
    // SAFETY: the caller's contract.
    unsafe { &mut *e }
}

/// Whether the list at `head` has been initialised (`InitializeListHead`).
fn check_head(head: *mut LIST_ENTRY, routine: &str) -> bool {
    // SAFETY: a non-null list head the driver passed.
    let ok = !head.is_null() && !unsafe { link(head) }.Flink.is_null();
    if !ok {
        violation(Rule::KsQueueMisuse, format!("{routine}: the list head {head:p} is not initialised"));
    }
    ok
}

/// # Safety
/// `head` is an initialised list; `entry` is not on any list; the caller holds the list's lock.
unsafe fn insert(head: *mut LIST_ENTRY, entry: *mut LIST_ENTRY, at_head: bool) {
    // SAFETY: the caller's contract: the list head.
    let h = unsafe { link(head) };
    // SAFETY: the caller's contract: the new entry.
    let e = unsafe { link(entry) };
    if at_head {
        let next = h.Flink;
        e.Flink = next;
        e.Blink = head;
        // SAFETY: the first entry of the locked list.
        unsafe { link(next) }.Blink = entry;
        h.Flink = entry;
    } else {
        let prev = h.Blink;
        e.Flink = head;
        e.Blink = prev;
        // SAFETY: the last entry of the locked list.
        unsafe { link(prev) }.Flink = entry;
        h.Blink = entry;
    }
}

/// # Safety
/// `entry` is on a list whose lock the caller holds.
unsafe fn unlink(entry: *mut LIST_ENTRY) {
    // SAFETY: the caller's contract.
    let e = unsafe { link(entry) };
    let (next, prev) = (e.Flink, e.Blink);
    // SAFETY: the neighbours on the locked list.
    unsafe { link(prev) }.Flink = next;
    // SAFETY: as above.
    unsafe { link(next) }.Blink = prev;
    e.Flink = entry;
    e.Blink = entry;
}

fn mark_queued(irp: *mut IRP, head: *mut LIST_ENTRY) {
    IrpBox::of(irp).meta.queue.store(head, Ordering::Release);
}

/// Runs a cancel routine the way the I/O manager would: cancel spin lock held, IRQL in `CancelIrql`.
fn run_cancel(irp: *mut IRP, routine: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP)) {
    let m = current();
    let irql = m.cancel_lock.acquire();
    IrpBox::of(irp).irp.CancelIrql = irql;
    // SAFETY: the driver's (or KS') cancel routine, entered with the cancel lock held.
    unsafe { routine(device_of(irp), irp) };
    if m.cancel_lock.held_by_me() {
        violation(
            Rule::CancelSpinLockNotHeld,
            "a cancel routine returned without releasing the cancel spin lock".into(),
        );
        m.cancel_lock.release(irql);
    }
}

fn cancel_routine_or_default(
    routine: PDRIVER_CANCEL,
) -> unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP) {
    routine.unwrap_or(crate::exports::KsCancelRoutine)
}

/// `KsAddIrpToCancelableQueue`.
pub(crate) fn add(
    head: *mut LIST_ENTRY,
    lock: *mut KSPIN_LOCK,
    irp: *mut IRP,
    location: KSLIST_ENTRY_LOCATION,
    cancel: PDRIVER_CANCEL,
) {
    if !check_head(head, "KsAddIrpToCancelableQueue") {
        return;
    }
    if !IrpBox::of(irp).meta.queue.load(Ordering::Acquire).is_null() {
        violation(
            Rule::KsQueueMisuse,
            format!("KsAddIrpToCancelableQueue: IRP {irp:p} is already on a queue"),
        );
        return;
    }
    let routine = cancel_routine_or_default(cancel);
    // SAFETY: the driver's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsAddIrpToCancelableQueue") };
    // SAFETY: the IRP is not on a list; we hold the list's lock.
    unsafe { insert(head, entry_of(irp), location == KsListEntryHead) };
    mark_queued(irp, head);
    *lock_slot(irp) = lock.cast();
    swap_cancel_routine(irp, Some(routine));
    let cancelled = IrpBox::of(irp).irp.Cancel != 0;
    if cancelled && swap_cancel_routine(irp, None).is_some() {
        // Cancelled before it was queued: cancel it now.
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsAddIrpToCancelableQueue") };
        run_cancel(irp, routine);
    } else {
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsAddIrpToCancelableQueue") };
    }
}

/// `KsRemoveIrpFromCancelableQueue`: the first IRP (from the head or tail) whose cancel routine
/// can be taken; it stays on the list for the *Only* operations.
pub(crate) fn remove(
    head: *mut LIST_ENTRY,
    lock: *mut KSPIN_LOCK,
    location: KSLIST_ENTRY_LOCATION,
    operation: KSIRP_REMOVAL_OPERATION,
) -> *mut IRP {
    if !check_head(head, "KsRemoveIrpFromCancelableQueue") {
        return std::ptr::null_mut();
    }
    if !(KsAcquireOnly..=KsAcquireAndRemoveOnlySingleItem).contains(&operation) {
        violation(
            Rule::KsQueueMisuse,
            format!("KsRemoveIrpFromCancelableQueue: removal operation {operation}"),
        );
        return std::ptr::null_mut();
    }
    // SAFETY: the driver's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsRemoveIrpFromCancelableQueue") };
    let mut found = std::ptr::null_mut();
    // SAFETY: an initialised list we hold the lock of.
    let first = unsafe { link(head) }.Flink;
    // SAFETY: as above; `first` is on the list (or is the head).
    let single = first != head && unsafe { link(first) }.Flink == head;
    let single_only = matches!(operation, KsAcquireOnlySingleItem | KsAcquireAndRemoveOnlySingleItem);
    if !single_only || single {
        let from_head = location == KsListEntryHead;
        // SAFETY: as above.
        let mut entry = {
            // SAFETY: as above.
            let h = unsafe { link(head) };
            if from_head { h.Flink } else { h.Blink }
        };
        while entry != head {
            let irp = irp_of(entry);
            if swap_cancel_routine(irp, None).is_some() {
                if matches!(operation, KsAcquireAndRemove | KsAcquireAndRemoveOnlySingleItem) {
                    // SAFETY: on this list, lock held.
                    unsafe { unlink(entry) };
                    mark_queued(irp, std::ptr::null_mut());
                }
                found = irp;
                break;
            }
            // Being cancelled, or already acquired: skip it.
            // SAFETY: as above.
            entry = {
                // SAFETY: an entry of the locked list.
                let e = unsafe { link(entry) };
                if from_head { e.Flink } else { e.Blink }
            };
        }
    }
    // SAFETY: the lock acquired above.
    unsafe { crate::irql::release(lock, irql, "KsRemoveIrpFromCancelableQueue") };
    if !found.is_null()
        && matches!(operation, KsAcquireOnly | KsAcquireOnlySingleItem)
        && crate::machine::current().cancel_next_acquired.swap(false, Ordering::SeqCst)
    {
        crate::iomgr::cancel_irp(&crate::machine::current(), found);
    }
    found
}

/// `KsReleaseIrpOnCancelableQueue`: gives an acquired IRP back to its queue (re-arming the cancel
/// routine); if it was cancelled meanwhile, cancels it now.
pub(crate) fn release(irp: *mut IRP, cancel: PDRIVER_CANCEL) {
    let lock = lock_slot(irp).cast::<KSPIN_LOCK>();
    if lock.is_null() || IrpBox::of(irp).meta.queue.load(Ordering::Acquire).is_null() {
        violation(
            Rule::KsQueueMisuse,
            format!("KsReleaseIrpOnCancelableQueue: IRP {irp:p} is not on a queue"),
        );
        return;
    }
    let routine = cancel_routine_or_default(cancel);
    // SAFETY: the queue's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsReleaseIrpOnCancelableQueue") };
    swap_cancel_routine(irp, Some(routine));
    let cancelled = IrpBox::of(irp).irp.Cancel != 0;
    let run = cancelled && swap_cancel_routine(irp, None).is_some();
    // SAFETY: the lock acquired above.
    unsafe { crate::irql::release(lock, irql, "KsReleaseIrpOnCancelableQueue") };
    if run {
        run_cancel(irp, routine);
    }
}

/// `KsRemoveSpecificIrpFromCancelableQueue`: unlinks an acquired IRP.
pub(crate) fn remove_specific(irp: *mut IRP) {
    let lock = lock_slot(irp).cast::<KSPIN_LOCK>();
    if lock.is_null() || IrpBox::of(irp).meta.queue.load(Ordering::Acquire).is_null() {
        violation(
            Rule::KsQueueMisuse,
            format!("KsRemoveSpecificIrpFromCancelableQueue: IRP {irp:p} is not on a queue"),
        );
        return;
    }
    // SAFETY: the queue's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsRemoveSpecificIrpFromCancelableQueue") };
    // SAFETY: on the queue, lock held.
    unsafe { unlink(entry_of(irp)) };
    mark_queued(irp, std::ptr::null_mut());
    // SAFETY: the lock acquired above.
    unsafe { crate::irql::release(lock, irql, "KsRemoveSpecificIrpFromCancelableQueue") };
}

/// `KsCancelRoutine`: entered with the cancel spin lock held; unlinks the IRP, releases the cancel
/// lock, and completes it with `STATUS_CANCELLED` unless its status already is that (a wrapper
/// cancel routine that completes it itself).
pub(crate) fn cancel_routine(irp: *mut IRP) {
    let m = current();
    let lock = lock_slot(irp).cast::<KSPIN_LOCK>();
    if !lock.is_null() && !IrpBox::of(irp).meta.queue.load(Ordering::Acquire).is_null() {
        // SAFETY: the queue's lock (we are at DISPATCH_LEVEL already).
        let irql = unsafe { crate::irql::acquire(lock, "KsCancelRoutine") };
        // SAFETY: on the queue, lock held.
        unsafe { unlink(entry_of(irp)) };
        mark_queued(irp, std::ptr::null_mut());
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsCancelRoutine") };
    }
    let b = IrpBox::of(irp);
    m.cancel_lock.release(b.irp.CancelIrql);
    if b.irp.IoStatus.Status != STATUS_CANCELLED {
        b.irp.IoStatus.Status = STATUS_CANCELLED;
        crate::iomgr::complete_request(&m, irp);
    }
}

/// `KsCancelIo`: marks every IRP on the queue cancelled and runs each cancel routine it can take.
pub(crate) fn cancel_io(head: *mut LIST_ENTRY, lock: *mut KSPIN_LOCK) {
    if !check_head(head, "KsCancelIo") {
        return;
    }
    loop {
        // SAFETY: the driver's lock.
        let irql = unsafe { crate::irql::acquire(lock, "KsCancelIo") };
        let mut target = None;
        // SAFETY: an initialised list we hold the lock of.
        let mut entry = unsafe { link(head) }.Flink;
        while entry != head {
            let irp = irp_of(entry);
            IrpBox::of(irp).irp.Cancel = 1;
            if let Some(routine) = swap_cancel_routine(irp, None) {
                target = Some((irp, routine));
                break;
            }
            // SAFETY: as above.
            entry = unsafe { link(entry) }.Flink;
        }
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsCancelIo") };
        match target {
            Some((irp, routine)) => run_cancel(irp, routine),
            None => return,
        }
    }
}
