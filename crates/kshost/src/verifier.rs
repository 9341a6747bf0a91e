//! What Driver Verifier and the I/O manager would catch, recorded as named violations.
//!
//! Kernel routines cannot panic (they run inside `extern "system"` calls from the driver), so a
//! violation is recorded on the machine; where going on would corrupt state (a second completion,
//! a bad free) the offending operation is refused. [`crate::Machine::shutdown`] reports them, and a
//! machine dropped with violations fails the test that owns it.

use std::fmt;

/// A rule the driver broke. The names are what test output shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `IoCompleteRequest` on an IRP that was already completed.
    IrpCompletedTwice,
    /// An IRP completed while a cancel routine was still set on it.
    IrpCompletedWithCancelRoutine,
    /// An IRP completed while still linked on a KS cancelable queue.
    IrpCompletedWhileQueued,
    /// An IRP completed with `STATUS_PENDING` as its final status.
    IrpCompletedWithPendingStatus,
    /// A dispatch routine returned `STATUS_PENDING` without `IoMarkIrpPending`.
    PendingNotMarked,
    /// A dispatch routine marked the IRP pending but returned another status.
    MarkedPendingReturnedOther,
    /// A dispatch routine returned a status other than `STATUS_PENDING` without completing the IRP.
    ReturnedWithoutCompleting,
    /// The status a dispatch routine returned differs from the status it completed the IRP with.
    ReturnedStatusMismatch,
    /// An IRP was never completed (found at a wait timeout, removal or shutdown).
    IrpNeverCompleted,
    /// On a buffered completion, `IoStatus.Information` exceeded the caller's output buffer.
    InformationExceedsBuffer,
    /// Pool still allocated at device removal or driver unload.
    PoolLeak,
    /// `ExFreePoolWithTag` on a block that is not allocated (double free or wild pointer).
    PoolBadFree,
    /// `ExFreePoolWithTag` with a tag other than the one the block was allocated with.
    PoolTagMismatch,
    /// Paged pool requested at `DISPATCH_LEVEL`, or pool flags without a pool type.
    PoolBadRequest,
    /// A routine that must run at `PASSIVE_LEVEL` (or below a level) was called above it.
    IrqlTooHigh,
    /// A spin lock released at an IRQL other than `DISPATCH_LEVEL`, or to a level above it.
    SpinLockIrqlMismatch,
    /// A spin lock released that this thread does not hold.
    SpinLockNotHeld,
    /// A spin lock acquired by the thread that already holds it: a deadlock on Windows (Driver
    /// Verifier's deadlock detection stops it with bug check 0xC4); kshost stops the process.
    SpinLockAlreadyOwned,
    /// A dispatch, cancel or completion routine returned at a different IRQL than it was entered.
    IrqlNotRestored,
    /// The cancel spin lock released by a thread that does not hold it.
    CancelSpinLockNotHeld,
    /// A `KSDISPATCH_TABLE` lacks an entry for a major function routed through KS.
    MissingDispatchEntry,
    /// A file object reached KS dispatch without a KS object header at `FsContext`.
    NoObjectHeader,
    /// A KS device or object header was still allocated at removal or unload.
    KsHeaderLeak,
    /// A KS object header freed that is not allocated.
    KsHeaderBadFree,
    /// A KS queue helper was given an IRP that is not in the state it needs.
    KsQueueMisuse,
    /// `AddDevice` returned with `DO_DEVICE_INITIALIZING` still set.
    DeviceInitializingNotCleared,
    /// A device object deleted twice, or a wild device pointer.
    DeviceBadDelete,
    /// A routine was given a pointer kshost did not hand out (IRP, file or device object).
    UnknownObject,
    /// A kernel routine kshost does not emulate in the way it was used.
    Unsupported,
    /// An object reference (`ObReferenceObjectByHandle`) still held at driver unload, or a
    /// dereference of an object the driver holds no reference to.
    ObjectReferenceLeak,
    /// An IRP from `IoAllocateIrp` freed or reused while in flight, sent back to the I/O manager
    /// (no completion routine kept it), or still allocated at unload.
    DriverIrpMisuse,
    /// A file object closed (its last reference dropped) while IRPs sent to it are in flight.
    FileClosedWithIrpsInFlight,
    /// A work item queued while already queued, freed while queued, or still allocated at unload.
    WorkItemMisuse,
    /// `KeWaitForSingleObject` waited longer than the machine's hang timeout.
    WaitNeverSatisfied,
    /// An MDL whose pages are not locked was mapped (`MmMapLockedPagesSpecifyCache`), or was still
    /// chained on an IRP the I/O manager completed (it unlocks every MDL of the chain). Windows
    /// bug-checks.
    MdlNotLocked,
    /// An MDL built against its kind: `MmBuildMdlForNonPagedPool` on an MDL that is not fresh
    /// from `MmInitializeMdl` (flags set, page array too small for what it describes) or that
    /// describes memory other than nonpaged pool; such an MDL given to `MmProbeAndLockPages`.
    /// Windows leaves it undefined (the docs), Driver Verifier bug-checks (0xC4).
    MdlMisuse,
    /// `ZwClose` of a handle that is not an open kernel handle (never opened, already closed, or
    /// the value a failed open left behind): bug check 0x93 `INVALID_KERNEL_HANDLE` with Driver
    /// Verifier's handle checks (without them `ZwClose` returns `STATUS_INVALID_HANDLE`).
    InvalidKernelHandle,
}

impl Rule {
    /// The rule's name as tests and reports print it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::IrpCompletedTwice => "IRP_COMPLETED_TWICE",
            Self::IrpCompletedWithCancelRoutine => "IRP_COMPLETED_WITH_CANCEL_ROUTINE",
            Self::IrpCompletedWhileQueued => "IRP_COMPLETED_WHILE_QUEUED",
            Self::IrpCompletedWithPendingStatus => "IRP_COMPLETED_WITH_PENDING_STATUS",
            Self::PendingNotMarked => "PENDING_NOT_MARKED",
            Self::MarkedPendingReturnedOther => "MARKED_PENDING_RETURNED_OTHER",
            Self::ReturnedWithoutCompleting => "RETURNED_WITHOUT_COMPLETING",
            Self::ReturnedStatusMismatch => "RETURNED_STATUS_MISMATCH",
            Self::IrpNeverCompleted => "IRP_NEVER_COMPLETED",
            Self::InformationExceedsBuffer => "INFORMATION_EXCEEDS_BUFFER",
            Self::PoolLeak => "POOL_LEAK",
            Self::PoolBadFree => "POOL_BAD_FREE",
            Self::PoolTagMismatch => "POOL_TAG_MISMATCH",
            Self::PoolBadRequest => "POOL_BAD_REQUEST",
            Self::IrqlTooHigh => "IRQL_TOO_HIGH",
            Self::SpinLockIrqlMismatch => "SPINLOCK_IRQL_MISMATCH",
            Self::SpinLockNotHeld => "SPINLOCK_NOT_HELD",
            Self::SpinLockAlreadyOwned => "SPINLOCK_ALREADY_OWNED",
            Self::IrqlNotRestored => "IRQL_NOT_RESTORED",
            Self::CancelSpinLockNotHeld => "CANCEL_SPINLOCK_NOT_HELD",
            Self::MissingDispatchEntry => "MISSING_DISPATCH_ENTRY",
            Self::NoObjectHeader => "NO_OBJECT_HEADER",
            Self::KsHeaderLeak => "KS_HEADER_LEAK",
            Self::KsHeaderBadFree => "KS_HEADER_BAD_FREE",
            Self::KsQueueMisuse => "KS_QUEUE_MISUSE",
            Self::DeviceInitializingNotCleared => "DEVICE_INITIALIZING_NOT_CLEARED",
            Self::DeviceBadDelete => "DEVICE_BAD_DELETE",
            Self::UnknownObject => "UNKNOWN_OBJECT",
            Self::Unsupported => "UNSUPPORTED",
            Self::ObjectReferenceLeak => "OBJECT_REFERENCE_LEAK",
            Self::DriverIrpMisuse => "DRIVER_IRP_MISUSE",
            Self::FileClosedWithIrpsInFlight => "FILE_CLOSED_WITH_IRPS_IN_FLIGHT",
            Self::WorkItemMisuse => "WORK_ITEM_MISUSE",
            Self::WaitNeverSatisfied => "WAIT_NEVER_SATISFIED",
            Self::MdlNotLocked => "MDL_NOT_LOCKED",
            Self::MdlMisuse => "MDL_MISUSE",
            Self::InvalidKernelHandle => "INVALID_KERNEL_HANDLE",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One recorded violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What happened, with the objects involved.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kshost verifier: {}: {}", self.rule, self.detail)
    }
}
