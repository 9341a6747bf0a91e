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

/// `Tail.Overlay.ListEntry`, the IRP's link on a queue.
///
/// # Safety
/// As for [`IrpBox::of`], for the duration of the call: a live kshost IRP the caller owns (the
/// driver that queues or takes it, or the holder of the queue's lock).
unsafe fn entry_of(irp: *mut IRP) -> *mut LIST_ENTRY {
    // SAFETY: the caller's contract is `IrpBox::of`'s.
    &raw mut unsafe { IrpBox::of(irp) }.overlay().ListEntry
}

fn irp_of(entry: *mut LIST_ENTRY) -> *mut IRP {
    let offset = core::mem::offset_of!(IRP, Tail) + core::mem::offset_of!(ksabi::IRP_TAIL_OVERLAY, ListEntry);
    entry.cast::<u8>().wrapping_sub(offset).cast()
}

/// `Tail.Overlay.DriverContext[1]` (`KSQUEUE_SPINLOCK_IRP_STORAGE`).
///
/// # Safety
/// As for [`IrpBox::of`], for `'a`: a live kshost IRP that the caller owns while it uses the slot.
unsafe fn lock_slot<'a>(irp: *mut IRP) -> &'a mut *mut core::ffi::c_void {
    // SAFETY: the caller's contract is `IrpBox::of`'s.
    &mut unsafe { IrpBox::of(irp) }.into_overlay().DriverContext[1]
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
///
/// # Safety
/// `head` is null or a readable `LIST_ENTRY` that no one writes during the call: the driver's
/// queue head, whose lock the caller holds (other threads insert and remove under it).
unsafe fn check_head(head: *mut LIST_ENTRY, routine: &str) -> bool {
    // SAFETY: a non-null list head (checked first), readable (the caller's contract); only `Flink`
    // is read, through the raw pointer.
    let ok = !head.is_null() && !unsafe { (*head).Flink }.is_null();
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

/// Records the queue an IRP is on (null: none).
///
/// # Safety
/// As for [`IrpBox::meta_of`], for the duration of the call: a live kshost IRP.
unsafe fn mark_queued(irp: *mut IRP, head: *mut LIST_ENTRY) {
    // SAFETY: the caller's contract is `IrpBox::meta_of`'s; only the record is referenced.
    unsafe { IrpBox::meta_of(irp) }.queue.store(head, Ordering::Release);
}

/// Runs a cancel routine the way the I/O manager would: cancel spin lock held, IRQL in `CancelIrql`.
///
/// # Safety
/// `irp` is a live kshost IRP whose cancel routine the caller has just taken (so no one else
/// will cancel or dequeue it), and `routine` is that routine.
unsafe fn run_cancel(irp: *mut IRP, routine: unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP)) {
    let m = current();
    let irql = m.cancel_lock.acquire();
    // SAFETY: the caller's contract, and the cancel lock acquired just above at `irql`.
    unsafe { crate::iomgr::call_cancel_routine(&m, irp, routine, irql) };
}

fn cancel_routine_or_default(
    routine: PDRIVER_CANCEL,
) -> unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP) {
    routine.unwrap_or(ks_cancel_routine)
}

/// `KsAddIrpToCancelableQueue`.
///
/// # Safety
/// As the routine's contract: `head` is null or an initialised list head guarded by the spin lock
/// `lock`, whose entries are IRPs of this machine; `irp` is a live kshost IRP the caller owns (as
/// for [`IrpBox::of`]), on no queue; once queued, the queue owns it until it is taken off.
pub(crate) unsafe fn add(
    head: *mut LIST_ENTRY,
    lock: *mut KSPIN_LOCK,
    irp: *mut IRP,
    location: KSLIST_ENTRY_LOCATION,
    cancel: PDRIVER_CANCEL,
) {
    // SAFETY: the driver passes an IRP it owns (`KsAddIrpToCancelableQueue`'s contract).
    if !unsafe { IrpBox::meta_of(irp) }.queue.load(Ordering::Acquire).is_null() {
        violation(
            Rule::KsQueueMisuse,
            format!("KsAddIrpToCancelableQueue: IRP {irp:p} is already on a queue"),
        );
        return;
    }
    let routine = cancel_routine_or_default(cancel);
    // SAFETY: the driver's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsAddIrpToCancelableQueue") };
    // The head is checked under its lock: another thread may be inserting meanwhile.
    // SAFETY: the caller's contract: null or the driver's list head, whose lock is held.
    if !unsafe { check_head(head, "KsAddIrpToCancelableQueue") } {
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsAddIrpToCancelableQueue") };
        return;
    }
    // SAFETY: the IRP is not on a list; we hold the list's lock.
    // SAFETY: the driver's own IRP, not yet cancellable (no cancel routine set).
    let entry = unsafe { entry_of(irp) };
    // SAFETY: the IRP is not on a list; we hold the list's lock.
    unsafe { insert(head, entry, location == KsListEntryHead) };
    // SAFETY: the driver's own IRP.
    unsafe { mark_queued(irp, head) };
    // SAFETY: the driver's own IRP, not yet cancellable; no other reference to it is live.
    *unsafe { lock_slot(irp) } = lock.cast();
    // SAFETY: the driver's own IRP; the slot is only swapped atomically.
    unsafe { swap_cancel_routine(irp, Some(routine)) };
    // SAFETY: the driver's own IRP; `Cancel` is read through the raw pointer (a canceller may set
    // it concurrently, as on Windows).
    let cancelled = unsafe { (*irp).Cancel } != 0;
    // SAFETY: the driver's own IRP; the slot is only swapped atomically.
    if cancelled && unsafe { swap_cancel_routine(irp, None) }.is_some() {
        // Cancelled before it was queued: cancel it now.
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsAddIrpToCancelableQueue") };
        // SAFETY: its cancel routine was just taken back here, so no one else cancels or dequeues
        // it.
        unsafe { run_cancel(irp, routine) };
    } else {
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsAddIrpToCancelableQueue") };
    }
}

/// `KsRemoveIrpFromCancelableQueue`: the first IRP (from the head or tail) whose cancel routine
/// can be taken; it stays on the list for the *Only* operations.
///
/// # Safety
/// As the routine's contract: `head` is null or an initialised list head guarded by the spin lock
/// `lock`, every entry of which is the link of a live kshost IRP queued by
/// `KsAddIrpToCancelableQueue`.
pub(crate) unsafe fn remove(
    head: *mut LIST_ENTRY,
    lock: *mut KSPIN_LOCK,
    location: KSLIST_ENTRY_LOCATION,
    operation: KSIRP_REMOVAL_OPERATION,
) -> *mut IRP {
    if !(KsAcquireOnly..=KsAcquireAndRemoveOnlySingleItem).contains(&operation) {
        violation(
            Rule::KsQueueMisuse,
            format!("KsRemoveIrpFromCancelableQueue: removal operation {operation}"),
        );
        return std::ptr::null_mut();
    }
    // SAFETY: the driver's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsRemoveIrpFromCancelableQueue") };
    // The head is checked under its lock: another thread may be inserting meanwhile.
    // SAFETY: the caller's contract: null or the driver's list head, whose lock is held.
    if !unsafe { check_head(head, "KsRemoveIrpFromCancelableQueue") } {
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsRemoveIrpFromCancelableQueue") };
        return std::ptr::null_mut();
    }
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
            // SAFETY: an IRP on the locked queue is live (a queued IRP is pending, not freed).
            if unsafe { swap_cancel_routine(irp, None) }.is_some() {
                if matches!(operation, KsAcquireAndRemove | KsAcquireAndRemoveOnlySingleItem) {
                    // SAFETY: on this list, lock held.
                    unsafe { unlink(entry) };
                    // SAFETY: a live IRP (on the queue until just now).
                    unsafe { mark_queued(irp, std::ptr::null_mut()) };
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
        // SAFETY: the IRP just acquired from the queue is live and now the driver's.
        unsafe { crate::iomgr::cancel_irp(&crate::machine::current(), found) };
    }
    found
}

/// `KsReleaseIrpOnCancelableQueue`: gives an acquired IRP back to its queue (re-arming the cancel
/// routine); if it was cancelled meanwhile, cancels it now.
///
/// # Safety
/// As the routine's contract: `irp` is a live kshost IRP the caller acquired from a queue
/// (`KsAcquireOnly*`), so it owns it (as for [`IrpBox::of`]) until this gives it back.
pub(crate) unsafe fn release(irp: *mut IRP, cancel: PDRIVER_CANCEL) {
    // SAFETY: the driver passes an IRP it acquired, so it owns it (the export's contract).
    let lock = unsafe { lock_slot(irp) }.cast::<KSPIN_LOCK>();
    // SAFETY: as above; only the record is referenced.
    if lock.is_null() || unsafe { IrpBox::meta_of(irp) }.queue.load(Ordering::Acquire).is_null() {
        violation(
            Rule::KsQueueMisuse,
            format!("KsReleaseIrpOnCancelableQueue: IRP {irp:p} is not on a queue"),
        );
        return;
    }
    let routine = cancel_routine_or_default(cancel);
    // SAFETY: the queue's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsReleaseIrpOnCancelableQueue") };
    // SAFETY: the driver's acquired IRP; the slot is only swapped atomically.
    unsafe { swap_cancel_routine(irp, Some(routine)) };
    // SAFETY: a live IRP; `Cancel` is read through the raw pointer (a canceller may set it).
    let cancelled = unsafe { (*irp).Cancel } != 0;
    // SAFETY: a live IRP; the slot is only swapped atomically.
    let run = cancelled && unsafe { swap_cancel_routine(irp, None) }.is_some();
    // SAFETY: the lock acquired above.
    unsafe { crate::irql::release(lock, irql, "KsReleaseIrpOnCancelableQueue") };
    if run {
        // SAFETY: its cancel routine was just taken back here, so no one else cancels or dequeues
        // it.
        unsafe { run_cancel(irp, routine) };
    }
}

/// `KsRemoveSpecificIrpFromCancelableQueue`: unlinks an acquired IRP.
///
/// # Safety
/// `irp` is a live kshost IRP that the caller owns (an acquired IRP: its cancel routine taken),
/// as for [`IrpBox::of`] for the duration of the call.
pub(crate) unsafe fn remove_specific(irp: *mut IRP) {
    // SAFETY: the caller's contract: an IRP it owns.
    let lock = unsafe { lock_slot(irp) }.cast::<KSPIN_LOCK>();
    // SAFETY: as above; only the record is referenced.
    if lock.is_null() || unsafe { IrpBox::meta_of(irp) }.queue.load(Ordering::Acquire).is_null() {
        violation(
            Rule::KsQueueMisuse,
            format!("KsRemoveSpecificIrpFromCancelableQueue: IRP {irp:p} is not on a queue"),
        );
        return;
    }
    // SAFETY: the queue's lock.
    let irql = unsafe { crate::irql::acquire(lock, "KsRemoveSpecificIrpFromCancelableQueue") };
    // SAFETY: the caller owns the IRP.
    let entry = unsafe { entry_of(irp) };
    // SAFETY: on the queue, lock held.
    unsafe { unlink(entry) };
    // SAFETY: the caller owns the IRP.
    unsafe { mark_queued(irp, std::ptr::null_mut()) };
    // SAFETY: the lock acquired above.
    unsafe { crate::irql::release(lock, irql, "KsRemoveSpecificIrpFromCancelableQueue") };
}

/// `KsCancelRoutine` as the routine a queue sets when the driver gives none (the export of the
/// same name, which the driver may call from its own cancel routine, runs [`cancel_routine`] too).
unsafe extern "system" fn ks_cancel_routine(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    // SAFETY: a cancel routine is entered with the cancel lock held and an IRP whose cancel
    // routine (this one) the canceller took.
    unsafe { cancel_routine(irp) };
}

/// `KsCancelRoutine`: entered with the cancel spin lock held; unlinks the IRP, releases the cancel
/// lock, and completes it with `STATUS_CANCELLED` unless its status already is that (a wrapper
/// cancel routine that completes it itself).
///
/// # Safety
/// As the routine's contract: called as (or from) a cancel routine, with the cancel spin lock held
/// and `irp` a live kshost IRP whose cancel routine the canceller took, so the canceller owns it
/// (as for [`IrpBox::of`]); it is completed here.
pub(crate) unsafe fn cancel_routine(irp: *mut IRP) {
    let m = current();
    // SAFETY: a cancel routine is entered with an IRP whose cancel routine the canceller took:
    // the canceller (this call) owns it.
    let lock = unsafe { lock_slot(irp) }.cast::<KSPIN_LOCK>();
    // SAFETY: as above; only the record is referenced.
    if !lock.is_null() && !unsafe { IrpBox::meta_of(irp) }.queue.load(Ordering::Acquire).is_null() {
        // SAFETY: the queue's lock (we are at DISPATCH_LEVEL already).
        let irql = unsafe { crate::irql::acquire(lock, "KsCancelRoutine") };
        // SAFETY: the canceller owns the IRP.
        let entry = unsafe { entry_of(irp) };
        // SAFETY: on the queue, lock held.
        unsafe { unlink(entry) };
        // SAFETY: the canceller owns the IRP.
        unsafe { mark_queued(irp, std::ptr::null_mut()) };
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsCancelRoutine") };
    }
    // SAFETY: the canceller owns the IRP; `b` is not used after it is handed to the completion.
    let b = unsafe { IrpBox::of(irp) };
    m.cancel_lock.release(b.irp.CancelIrql);
    if b.irp.IoStatus.Status != STATUS_CANCELLED {
        b.irp.IoStatus.Status = STATUS_CANCELLED;
        // SAFETY: the canceller owns the IRP and completing gives it up; `b` is not used after.
        unsafe { crate::iomgr::complete_request(&m, irp) };
    }
}

/// `KsCancelIo`: marks every IRP on the queue cancelled and runs each cancel routine it can take.
///
/// # Safety
/// As the routine's contract: `head` is null or an initialised list head guarded by the spin lock
/// `lock`, every entry of which is the link of a live kshost IRP queued by
/// `KsAddIrpToCancelableQueue`.
pub(crate) unsafe fn cancel_io(head: *mut LIST_ENTRY, lock: *mut KSPIN_LOCK) {
    loop {
        // SAFETY: the driver's lock.
        let irql = unsafe { crate::irql::acquire(lock, "KsCancelIo") };
        // The head is checked under its lock (another thread may be inserting meanwhile): a bad
        // one fails the first round, before anything is cancelled.
        // SAFETY: the caller's contract: null or the driver's list head, whose lock is held.
        if !unsafe { check_head(head, "KsCancelIo") } {
            // SAFETY: the lock acquired above.
            unsafe { crate::irql::release(lock, irql, "KsCancelIo") };
            return;
        }
        let mut target = None;
        // SAFETY: an initialised list we hold the lock of.
        let mut entry = unsafe { link(head) }.Flink;
        while entry != head {
            let irp = irp_of(entry);
            // `Cancel` is written as `IoCancelIrp` writes it, through the raw pointer: the IRP is
            // the driver's, and no reference covers it.
            // SAFETY: an IRP on the locked queue is live.
            unsafe { (*irp).Cancel = 1 };
            // SAFETY: as above; the slot is only swapped atomically.
            if let Some(routine) = unsafe { swap_cancel_routine(irp, None) } {
                target = Some((irp, routine));
                break;
            }
            // SAFETY: as above.
            entry = unsafe { link(entry) }.Flink;
        }
        // SAFETY: the lock acquired above.
        unsafe { crate::irql::release(lock, irql, "KsCancelIo") };
        match target {
            // SAFETY: its cancel routine was taken above, so no one else cancels or dequeues it.
            Some((irp, routine)) => unsafe { run_cancel(irp, routine) },
            None => return,
        }
    }
}
