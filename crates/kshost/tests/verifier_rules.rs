//! Each verifier rule, shown failing: the tiny driver commits one deliberate bug, and kshost's
//! report names the rule. (`USER_BUFFER_DEREFERENCE` stops the process, so it runs in a child.)
#![allow(clippy::undocumented_unsafe_blocks)]

mod common;

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use common::tiny::{self, bug};
use ksabi::*;
use kshost::{Machine, Rule};

static SERIAL: Mutex<()> = Mutex::new(());

/// What the client does to make the driver run its buggy path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Install and shut down.
    Install,
    /// Open the filter, send one property request, close.
    Property,
    /// Open the filter and a pin, send a read, close without waiting.
    PendingRead,
    /// As `PendingRead`, with a header that says `PERSIST_SAMPLE | SAMPLE_PERSISTED`.
    PersistedRead,
    /// Open the filter and a pin, send a read, and exit the process with both handles open.
    ExitWithPendingRead,
    /// As `ExitWithPendingRead`, with both handles closed before the exit (the read keeps the pin's
    /// file object, and stays on its thread's list).
    ExitAfterClosingWithPendingRead,
}

fn run(bug: u32, action: Action) -> kshost::Report {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tiny::BREAK.store(bug, Ordering::SeqCst);
    // A wait that can never end is reported when the hang timeout passes: keep it short.
    let m = Machine::with_settings(kshost::Settings {
        hang_timeout: std::time::Duration::from_millis(300),
        ..kshost::Settings::default()
    });
    let installed = m.install(tiny::INF, tiny::DriverEntry);
    // A bug in `AddDevice` may fail the install; the report is what is checked.
    assert!(installed.is_ok() || action == Action::Install, "install: {installed:?}");
    match action {
        Action::Install => {}
        Action::Property => {
            let path = m.interfaces(&tiny::TINY_CATEGORY)[0].path.clone();
            let filter = m.create_file(&path, GENERIC_READ | GENERIC_WRITE).unwrap();
            tiny::CLIENT_HANDLE.store(usize::try_from(filter.raw()).unwrap(), Ordering::SeqCst);
            let req = tiny::ksp_pin(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET, 0);
            let _ = m.device_io_control(filter, IOCTL_KS_PROPERTY, &req, &mut [0u8; 4]);
            m.close_handle(filter).unwrap();
        }
        Action::ExitWithPendingRead => {
            let read = exit_with_a_read_pending(&m, false);
            let _ = read.wait_for(std::time::Duration::from_millis(100));
        }
        Action::ExitAfterClosingWithPendingRead => {
            let read = exit_with_a_read_pending(&m, true);
            let _ = read.wait_for(std::time::Duration::from_millis(100));
        }
        Action::PendingRead | Action::PersistedRead => {
            let options = if matches!(action, Action::PersistedRead) { 0x1_8000 } else { 0 };
            let (filter, pin) = common::open_pin(&m);
            let buffers = common::Read::new(&m, 64, options);
            let read = unsafe { buffers.send(&m, pin) };
            let _ = read.wait_for(std::time::Duration::from_millis(10));
            m.close_handle(pin).unwrap();
            m.close_handle(filter).unwrap();
            let _ = read.wait_for(std::time::Duration::from_millis(100));
            m.settle();
            // The buffers must outlive a read the driver never completes.
            buffers.leak();
        }
    }
    let report = m.shutdown();
    tiny::BREAK.store(0, Ordering::SeqCst);
    report
}

/// Opens the filter and a pin, sends a read (which waits: no data), closes both handles if `close`,
/// and exits the process; returns the read.
fn exit_with_a_read_pending(m: &Machine, close: bool) -> kshost::Overlapped {
    let (filter, pin) = common::open_pin(m);
    let buffers = common::Read::new(m, 64, 0);
    let read = unsafe { buffers.send(m, pin) };
    assert!(read.wait_for(std::time::Duration::from_millis(10)).is_none(), "the read waits for data");
    if close {
        m.close_handle(pin).unwrap();
        m.close_handle(filter).unwrap();
    }
    m.exit_process();
    m.settle();
    // The buffers must outlive a read the driver never completes.
    buffers.leak();
    read
}

/// Process exit runs its threads down before it closes their handles (`IoCancelThreadIo`, then the
/// handle table): a read waiting on the driver's cancelable queue is cancelled — completed
/// `STATUS_CANCELLED` by the queue's cancel routine — not ended by the pin's cleanup. (The status
/// alone would not tell: the cleanup's `KsCancelIo` gives the same one. The cleanup finding the
/// queue empty does.)
#[test]
fn process_exit_cancels_a_pending_read_before_closing_its_handles() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tiny::BREAK.store(0, Ordering::SeqCst);
    let m = Machine::new();
    m.install(tiny::INF, tiny::DriverEntry).unwrap();
    tiny::CLEANUPS_WITH_QUEUED.store(0, Ordering::SeqCst);
    let read = exit_with_a_read_pending(&m, false);
    let status = read.wait_for(std::time::Duration::from_secs(5)).expect("the read completed").status;
    assert_eq!(status, STATUS_CANCELLED);
    assert_eq!(
        tiny::CLEANUPS_WITH_QUEUED.load(Ordering::SeqCst),
        0,
        "the pin's cleanup found the read already gone"
    );
    m.shutdown().assert_clean();
}

/// A read the driver holds with no cancel routine when its process exits: the thread rundown
/// cancels it, waits, and reports it never completed (on Windows the exit waits 5 minutes).
#[test]
fn a_read_held_without_a_cancel_routine_at_process_exit_is_reported() {
    let report = run(bug::NEVER_COMPLETE, Action::ExitWithPendingRead);
    assert!(report.has(Rule::IrpNeverCompleted), "got:\n{}", report.describe());
    assert!(
        report.describe().contains("as its thread exited"),
        "the rundown reported it:\n{}",
        report.describe()
    );
}

/// How a read held with the driver's own cancel routine ended when a write came while the routine
/// was stopped right after `IoReleaseCancelSpinLock` — its IRP's cancel routine already taken, the
/// IRP not yet completed: the read's status, the write's, and the report.
fn write_while_a_cancel_routine_runs(bug: u32) -> (NTSTATUS, NTSTATUS, kshost::Report) {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let _mode = OwnCancelRoutine::on(bug);
    let m = Machine::new();
    m.install(tiny::INF, tiny::DriverEntry).unwrap();
    let (filter, pin) = common::open_pin(&m);
    let buffers = common::Read::new(&m, 16, 0);
    let read = unsafe { buffers.send(&m, pin) };
    assert!(read.wait_for(std::time::Duration::from_millis(10)).is_none(), "the driver holds the read");
    let stop = m.preempt_after("IoReleaseCancelSpinLock");
    let write_status = std::thread::scope(|s| {
        let cancel = s.spawn(|| m.cancel_io(pin));
        assert!(
            stop.wait_paused(std::time::Duration::from_secs(10)),
            "the cancel routine stopped after letting go of the cancel spin lock"
        );
        let mut payload = m.alloc_user(16);
        payload.as_mut_slice().copy_from_slice(b"sixteen bytes!!!");
        let mut h = tiny::bytes_of(&tiny::stream_header(payload.as_ptr(), 16, 16, 0)).to_vec();
        let write = m.device_io_control(pin, IOCTL_KS_WRITE_STREAM, &[], &mut h).status;
        stop.resume();
        assert_eq!(cancel.join().unwrap(), Ok(1), "CancelIoEx ran the driver's cancel routine");
        write
    });
    let read_status = read.wait_for(std::time::Duration::from_secs(5)).expect("the read completed").status;
    m.close_handle(pin).unwrap();
    m.close_handle(filter).unwrap();
    let report = m.shutdown();
    drop(buffers);
    (read_status, write_status, report)
}

/// The tiny driver holding reads with its own cancel routine, and committing `bug`, until dropped
/// (also when a test fails, so that the next test gets the ordinary driver).
struct OwnCancelRoutine;

impl OwnCancelRoutine {
    fn on(bug: u32) -> Self {
        tiny::BREAK.store(bug, Ordering::SeqCst);
        tiny::OWN_CANCEL_ROUTINE.store(true, Ordering::SeqCst);
        Self
    }
}

impl Drop for OwnCancelRoutine {
    fn drop(&mut self) {
        tiny::OWN_CANCEL_ROUTINE.store(false, Ordering::SeqCst);
        tiny::BREAK.store(0, Ordering::SeqCst);
    }
}

/// A read cancelled (`CancelIoEx`) while its dispatch routine is stopped before it takes its lock —
/// before it sets its cancel routine, so `IoCancelIrp` only sets `Cancel` — and then held: returns
/// whether it completed `STATUS_CANCELLED` on its own, before its handle closed.
fn read_cancelled_before_its_cancel_routine_is_set(bug: u32) -> bool {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let _mode = OwnCancelRoutine::on(bug);
    let m = Machine::new();
    m.install(tiny::INF, tiny::DriverEntry).unwrap();
    let (filter, pin) = common::open_pin(&m);
    let buffers = common::Read::new(&m, 16, 0);
    let stop = m.preempt_before("KeAcquireSpinLockRaiseToDpc");
    let read = std::thread::scope(|s| {
        let send = s.spawn(|| unsafe { buffers.send(&m, pin) });
        assert!(stop.wait_paused(std::time::Duration::from_secs(10)), "the dispatch routine stopped");
        assert_eq!(m.cancel_io(pin), Ok(0), "no cancel routine yet: IoCancelIrp only set Cancel");
        stop.resume();
        send.join().unwrap()
    });
    let on_its_own = read.wait_for(std::time::Duration::from_millis(300)).map(|io| io.status);
    m.close_handle(pin).unwrap();
    m.close_handle(filter).unwrap();
    let at_close = read.wait_for(std::time::Duration::from_secs(5)).map(|io| io.status);
    assert_eq!(at_close, Some(STATUS_CANCELLED), "the read ended cancelled, at the latest by the cleanup");
    m.shutdown().assert_clean();
    drop(buffers);
    on_its_own == Some(STATUS_CANCELLED)
}

/// Microsoft's pattern: set the cancel routine, then check `Cancel` — a request cancelled just
/// before is taken back and completed at once.
#[test]
fn a_read_cancelled_before_its_cancel_routine_is_set_is_completed_at_once() {
    assert!(read_cancelled_before_its_cancel_routine_is_set(0));
}

/// Without the check, the same read stays held: `CancelIoEx` did nothing, and only the handle's
/// close ends it (kshost reaches the window with a preemption point before the driver's lock).
#[test]
fn a_read_held_without_checking_cancel_misses_a_cancel_that_came_first() {
    assert!(!read_cancelled_before_its_cancel_routine_is_set(bug::NO_CANCEL_RECHECK));
}

/// Microsoft's pattern for a request a driver holds with its own cancel routine: the completing
/// thread clears the routine under the driver's lock and, finding it already taken, leaves the
/// request to the routine — which kshost stops right after it let go of the cancel spin lock, so
/// the write comes in exactly then. The read completes once, cancelled; the write finds no read.
#[test]
fn a_write_during_a_drivers_cancel_routine_leaves_the_read_to_it() {
    let (read, write, report) = write_while_a_cancel_routine_runs(0);
    assert_eq!(read, STATUS_CANCELLED);
    assert_eq!(
        tiny::LAST_CANCEL_IRQL.load(Ordering::SeqCst),
        APC_LEVEL,
        "CancelIoEx cancels at APC_LEVEL (NtCancelIoFile)"
    );
    assert_eq!(write, STATUS_DEVICE_NOT_READY);
    report.assert_clean();
}

/// The same interleaving, with a driver that completes the read although `IoSetCancelRoutine(NULL)`
/// returned NULL: its cancel routine, let go, completes it a second time. Without the preemption
/// point the routine ran to its end before the write, which then found no read: the bug passed.
#[test]
fn completing_a_read_whose_cancel_routine_runs_is_reported() {
    let (read, write, report) = write_while_a_cancel_routine_runs(bug::COMPLETE_DESPITE_CANCEL);
    assert_eq!((read, write), (STATUS_SUCCESS, STATUS_SUCCESS), "the write completed the read first");
    assert!(report.has(Rule::IrpCompletedTwice), "got:\n{}", report.describe());
}

/// The same read, its handles closed before the exit: closing a handle cancels nothing (the read
/// keeps the pin's file object), and the thread rundown still finds it, on its thread's list.
#[test]
fn a_read_held_on_closed_handles_at_process_exit_is_run_down_too() {
    let report = run(bug::NEVER_COMPLETE, Action::ExitAfterClosingWithPendingRead);
    assert!(
        report.describe().contains("as its thread exited"),
        "the rundown reported it:\n{}",
        report.describe()
    );
}

/// A request that never completes is reported once: the exit that timed out waiting for it
/// disassociated it from its thread (`IopDisassociateThreadIrp`), so the next exit does not cancel
/// it, wait for it, or report it again.
#[test]
fn a_request_timed_out_at_one_exit_is_not_run_down_again() {
    let _s = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tiny::BREAK.store(bug::NEVER_COMPLETE, Ordering::SeqCst);
    let m = Machine::with_settings(kshost::Settings {
        hang_timeout: std::time::Duration::from_millis(300),
        ..kshost::Settings::default()
    });
    m.install(tiny::INF, tiny::DriverEntry).unwrap();
    let _read = exit_with_a_read_pending(&m, false);
    m.exit_process();
    let report = m.shutdown();
    tiny::BREAK.store(0, Ordering::SeqCst);
    let reports = report.describe().matches("as its thread exited").count();
    assert_eq!(reports, 1, "reported at the first exit only:\n{}", report.describe());
}

fn expect(bug: u32, action: Action, rule: Rule) {
    let report = run(bug, action);
    assert!(report.has(rule), "bug {bug}: expected {rule}, got:\n{}", report.describe());
    assert!(report.describe().contains(rule.name()), "the report names the rule");
}

#[test]
fn a_clean_driver_has_no_violations() {
    for action in [Action::Install, Action::Property, Action::PendingRead] {
        run(0, action).assert_clean();
    }
}

macro_rules! rule_tests {
    ($($name:ident: $bug:expr, $action:expr => $rule:expr;)*) => {$(
        #[test]
        fn $name() {
            expect($bug, $action, $rule);
        }
    )*};
}

rule_tests! {
    irp_completed_twice: bug::COMPLETE_TWICE, Action::Property => Rule::IrpCompletedTwice;
    irp_completed_with_cancel_routine: bug::COMPLETE_WITH_CANCEL_ROUTINE, Action::Property => Rule::IrpCompletedWithCancelRoutine;
    irp_completed_while_queued: bug::COMPLETE_WHILE_QUEUED, Action::PendingRead => Rule::IrpCompletedWhileQueued;
    irp_completed_with_pending_status: bug::COMPLETE_WITH_PENDING_STATUS, Action::Property => Rule::IrpCompletedWithPendingStatus;
    pending_not_marked: bug::PENDING_NOT_MARKED, Action::PendingRead => Rule::PendingNotMarked;
    marked_pending_returned_other: bug::MARKED_RETURNED_OTHER, Action::Property => Rule::MarkedPendingReturnedOther;
    returned_without_completing: bug::RETURN_WITHOUT_COMPLETING, Action::Property => Rule::ReturnedWithoutCompleting;
    returned_status_mismatch: bug::STATUS_MISMATCH, Action::Property => Rule::ReturnedStatusMismatch;
    irp_never_completed: bug::NEVER_COMPLETE, Action::PendingRead => Rule::IrpNeverCompleted;
    information_exceeds_buffer: bug::INFORMATION_EXCEEDS, Action::Property => Rule::InformationExceedsBuffer;
    pool_leak: bug::POOL_LEAK, Action::Property => Rule::PoolLeak;
    pool_double_free: bug::POOL_DOUBLE_FREE, Action::Property => Rule::PoolBadFree;
    pool_tag_mismatch: bug::POOL_TAG_MISMATCH, Action::Property => Rule::PoolTagMismatch;
    pool_bad_request: bug::POOL_BAD_REQUEST, Action::Property => Rule::PoolBadRequest;
    passive_call_at_dispatch: bug::PASSIVE_CALL_AT_DISPATCH, Action::Property => Rule::IrqlTooHigh;
    spinlock_released_at_wrong_irql: bug::SPINLOCK_WRONG_IRQL, Action::Property => Rule::SpinLockIrqlMismatch;
    spinlock_not_held: bug::SPINLOCK_NOT_HELD, Action::Property => Rule::SpinLockNotHeld;
    irql_not_restored: bug::IRQL_NOT_RESTORED, Action::Property => Rule::IrqlNotRestored;
    cancel_spinlock_not_held: bug::CANCEL_LOCK_NOT_HELD, Action::Property => Rule::CancelSpinLockNotHeld;
    missing_dispatch_entry: bug::MISSING_DISPATCH_ENTRY, Action::Property => Rule::MissingDispatchEntry;
    no_object_header: bug::NO_OBJECT_HEADER, Action::Property => Rule::NoObjectHeader;
    object_reference_leak: bug::OB_REFERENCE_LEAK, Action::Property => Rule::ObjectReferenceLeak;
    driver_irp_misuse: bug::FREE_FOREIGN_IRP, Action::Property => Rule::DriverIrpMisuse;
    work_item_misuse: bug::WORK_ITEM_LEAK, Action::Property => Rule::WorkItemMisuse;
    invalid_kernel_handle: bug::CLOSE_INVALID_HANDLE, Action::Property => Rule::InvalidKernelHandle;
    wait_never_satisfied: bug::WAIT_FOREVER, Action::Property => Rule::WaitNeverSatisfied;
    file_closed_with_irps_in_flight: bug::SEND_AND_FORGET, Action::PendingRead => Rule::FileClosedWithIrpsInFlight;
    ks_header_leak: bug::KS_HEADER_LEAK, Action::Property => Rule::KsHeaderLeak;
    ks_header_double_free: bug::KS_HEADER_DOUBLE_FREE, Action::Property => Rule::KsHeaderBadFree;
    ks_queue_misuse: bug::KS_QUEUE_MISUSE, Action::PendingRead => Rule::KsQueueMisuse;
    device_initializing_not_cleared: bug::DEVICE_INITIALIZING, Action::Install => Rule::DeviceInitializingNotCleared;
    device_deleted_twice: bug::DEVICE_DOUBLE_DELETE, Action::Install => Rule::DeviceBadDelete;
    device_deleted_while_attached: bug::DELETE_ATTACHED, Action::Install => Rule::DeviceBadDelete;
    unknown_irp: bug::UNKNOWN_IRP, Action::Property => Rule::UnknownObject;
    mdl_not_locked: bug::MAP_UNLOCKED_MDL, Action::PersistedRead => Rule::MdlNotLocked;
    fast_io_routing_unsupported: bug::FAST_IO_ROUTING, Action::Install => Rule::Unsupported;
}

/// The driver reads a user address directly: the tagged pointer faults and kshost names the rule
/// before the process dies. Run in a child process (this test binary, filtered to the helper).
#[test]
fn user_buffer_dereference_stops_the_process_with_the_rule() {
    if std::env::var_os("KSHOST_CHILD_USER_DEREF").is_some() {
        let _ = run(bug::USER_BUFFER_DEREFERENCE, Action::Property);
        eprintln!("not reached: the dereference should have faulted");
        std::process::exit(0);
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "user_buffer_dereference_stops_the_process_with_the_rule", "--nocapture"])
        .env("KSHOST_CHILD_USER_DEREF", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child must die; stderr:\n{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(11), "killed by SIGSEGV");
    }
    assert!(stderr.contains("USER_BUFFER_DEREFERENCE"), "stderr names the rule:\n{stderr}");
    assert!(!stderr.contains("not reached"));
}

/// Runs `bug` in a child process (this test binary, filtered to `test`) and returns its stderr
/// after checking that the fault killed it.
fn child_dies_with(test: &str, bug: u32) -> String {
    if std::env::var_os("KSHOST_CHILD_BUG").is_some() {
        let _ = run(bug, Action::Property);
        eprintln!("not reached: the access should have faulted");
        std::process::exit(0);
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture"])
        .env("KSHOST_CHILD_BUG", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the child must die; stderr:\n{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let signal = if bug == bug::SPINLOCK_TWICE { 6 } else { 11 };
        assert_eq!(out.status.signal(), Some(signal), "killed by the signal; stderr:\n{stderr}");
    }
    assert!(!stderr.contains("not reached"));
    stderr
}

/// Special pool: a write one byte past a 48-byte block hits the guard page, and the report names
/// Windows' bug check and the block's tag.
#[test]
fn special_pool_stops_an_overrun_with_the_tag() {
    let stderr = child_dies_with("special_pool_stops_an_overrun_with_the_tag", bug::POOL_OVERRUN);
    assert!(stderr.contains("DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION (bug check 0xd6)"), "{stderr}");
    assert!(stderr.contains("of 0x30 bytes tagged 'Ovr1'"), "{stderr}");
}

/// Special pool: reading a freed block faults, and the report names the freed block's tag.
#[test]
fn special_pool_stops_a_use_after_free_with_the_tag() {
    let stderr =
        child_dies_with("special_pool_stops_a_use_after_free_with_the_tag", bug::POOL_USE_AFTER_FREE);
    assert!(stderr.contains("DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL (bug check 0xd5)"), "{stderr}");
    assert!(stderr.contains("in freed pool block"), "{stderr}");
    assert!(stderr.contains("tagged 'Uaf1'"), "{stderr}");
}

/// A spin lock acquired by the thread that holds it: Windows would hang there (Driver Verifier's
/// deadlock detection bug-checks 0xC4); kshost names the rule and stops the process.
#[test]
fn spinlock_acquired_twice_stops_the_process_with_the_rule() {
    let stderr =
        child_dies_with("spinlock_acquired_twice_stops_the_process_with_the_rule", bug::SPINLOCK_TWICE);
    assert!(stderr.contains("SPINLOCK_ALREADY_OWNED"), "{stderr}");
    assert!(stderr.contains("bug check 0xC4"), "{stderr}");
}
