//! WDM objects a KS driver reads and writes directly: IRPs, stack locations, file, device and
//! driver objects, MDLs; the dispatch function types; IRP major codes and flag words.
//!
//! Layouts are x64 (LLP64) and follow the WDK. Where C has anonymous unions that drivers use
//! through one member only, the member is spelled out and the doc comment says so; everything is
//! checked against windows-sys and the mingw-w64 headers by `tests/`.

use core::ffi::c_void;

use crate::{
    BOOLEAN, HANDLE, IO_STATUS_BLOCK, KDPC, KEVENT, KIRQL, KPROCESSOR_MODE, KSPIN_LOCK, LARGE_INTEGER,
    LIST_ENTRY, NTSTATUS, PVOID, UNICODE_STRING,
};

/// `PDRIVER_DISPATCH`: the routine for one IRP major function.
pub type PDRIVER_DISPATCH =
    Option<unsafe extern "system" fn(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS>;
/// `PDRIVER_CANCEL`: called with the cancel spin lock held when an IRP is cancelled.
pub type PDRIVER_CANCEL = Option<unsafe extern "system" fn(device: *mut DEVICE_OBJECT, irp: *mut IRP)>;
/// `PDRIVER_ADD_DEVICE`: PnP found a device for this driver.
pub type PDRIVER_ADD_DEVICE =
    Option<unsafe extern "system" fn(driver: *mut DRIVER_OBJECT, pdo: *mut DEVICE_OBJECT) -> NTSTATUS>;
/// `PDRIVER_UNLOAD`.
pub type PDRIVER_UNLOAD = Option<unsafe extern "system" fn(driver: *mut DRIVER_OBJECT)>;
/// `PDRIVER_INITIALIZE`: `DriverEntry`'s type.
pub type PDRIVER_INITIALIZE = Option<
    unsafe extern "system" fn(driver: *mut DRIVER_OBJECT, registry_path: *mut UNICODE_STRING) -> NTSTATUS,
>;
/// `PDRIVER_STARTIO`.
pub type PDRIVER_STARTIO = Option<unsafe extern "system" fn(device: *mut DEVICE_OBJECT, irp: *mut IRP)>;
/// `PIO_COMPLETION_ROUTINE`: runs as a lower driver completes an IRP this driver sent.
pub type PIO_COMPLETION_ROUTINE =
    Option<unsafe extern "system" fn(device: *mut DEVICE_OBJECT, irp: *mut IRP, context: PVOID) -> NTSTATUS>;
/// `PFAST_IO_DEVICE_CONTROL`.
pub type PFAST_IO_DEVICE_CONTROL = Option<
    unsafe extern "system" fn(
        file: *mut FILE_OBJECT,
        wait: BOOLEAN,
        input: PVOID,
        input_length: u32,
        output: PVOID,
        output_length: u32,
        control_code: u32,
        status: *mut IO_STATUS_BLOCK,
        device: *mut DEVICE_OBJECT,
    ) -> BOOLEAN,
>;
/// `PFAST_IO_READ` (and `PFAST_IO_WRITE`, which has the same shape).
pub type PFAST_IO_READ = Option<
    unsafe extern "system" fn(
        file: *mut FILE_OBJECT,
        offset: *mut LARGE_INTEGER,
        length: u32,
        wait: BOOLEAN,
        lock_key: u32,
        buffer: PVOID,
        status: *mut IO_STATUS_BLOCK,
        device: *mut DEVICE_OBJECT,
    ) -> BOOLEAN,
>;
/// `PFAST_IO_WRITE`.
pub type PFAST_IO_WRITE = PFAST_IO_READ;
/// `PIO_WORKITEM_ROUTINE`: a work item's routine, run at `PASSIVE_LEVEL` on a system thread.
pub type PIO_WORKITEM_ROUTINE = Option<unsafe extern "system" fn(device: *mut DEVICE_OBJECT, context: PVOID)>;

/// `WORK_QUEUE_TYPE`: `DelayedWorkQueue`, for work that may block briefly.
pub const DelayedWorkQueue: i32 = 1;
/// `EVENT_TYPE`: `NotificationEvent` (stays signalled until cleared).
pub const NotificationEvent: i32 = 0;
/// `EVENT_TYPE`: `SynchronizationEvent` (one waiter satisfied, then clear).
pub const SynchronizationEvent: i32 = 1;
/// `KWAIT_REASON`: `Executive`.
pub const Executive: i32 = 0;

/// `MDL`: describes the physical pages behind a virtual buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MDL {
    /// Next MDL of a chain (one per stream-header buffer after `KsProbeStreamIrp`).
    pub Next: *mut MDL,
    /// Size of this MDL including its page array.
    pub Size: i16,
    /// `MDL_*` flags.
    pub MdlFlags: i16,
    /// Owning process (`PEPROCESS`).
    pub Process: PVOID,
    /// System address when `MDL_MAPPED_TO_SYSTEM_VA` or `MDL_SOURCE_IS_NONPAGED_POOL` is set.
    pub MappedSystemVa: PVOID,
    /// Page-aligned start of the described buffer.
    pub StartVa: PVOID,
    /// Length of the described buffer.
    pub ByteCount: u32,
    /// Offset of the buffer in its first page.
    pub ByteOffset: u32,
}

/// `MDL_MAPPED_TO_SYSTEM_VA`.
pub const MDL_MAPPED_TO_SYSTEM_VA: i16 = 0x0001;
/// `MDL_PAGES_LOCKED`.
pub const MDL_PAGES_LOCKED: i16 = 0x0002;
/// `MDL_SOURCE_IS_NONPAGED_POOL`.
pub const MDL_SOURCE_IS_NONPAGED_POOL: i16 = 0x0004;
/// `MDL_PARTIAL`: built by `IoBuildPartialMdl` from another MDL.
pub const MDL_PARTIAL: i16 = 0x0010;
/// `MDL_MAPPING_CAN_FAIL`: a mapping of the MDL may fail rather than bug-check (ks.sys sets it on
/// every MDL `KsProbeStreamIrp` maps).
pub const MDL_MAPPING_CAN_FAIL: i16 = 0x2000;

/// `IRP.AssociatedIrp`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_ASSOCIATED {
    /// Master IRP of an associated IRP.
    pub MasterIrp: *mut IRP,
    /// Count of associated IRPs of a master.
    pub IrpCount: i32,
    /// System-space buffer (buffered I/O, and KS' captured buffers).
    pub SystemBuffer: PVOID,
}

/// `IRP.Overlay.AsynchronousParameters`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_ASYNC_PARAMETERS {
    /// `UserApcRoutine` (a union with `IssuingProcess` in C).
    pub UserApcRoutine: PVOID,
    /// `UserApcContext`.
    pub UserApcContext: PVOID,
}

/// `IRP.Overlay`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_OVERLAY {
    /// User APC parameters of an asynchronous request.
    pub AsynchronousParameters: IRP_ASYNC_PARAMETERS,
    /// Allocation size of a create request.
    pub AllocationSize: LARGE_INTEGER,
}

/// `IRP.Tail.Overlay`.
///
/// C puts `DriverContext` in a union with `KDEVICE_QUEUE_ENTRY DeviceQueueEntry` (used only by
/// `StartIo` device queues, which KS drivers do not use), and `CurrentStackLocation` in a union
/// with `PacketType`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IRP_TAIL_OVERLAY {
    /// Four pointers the current owner of the IRP may use (KS helpers claim some; KS-REFERENCE §9.12).
    pub DriverContext: [PVOID; 4],
    /// The thread that issued the request (`PETHREAD`).
    pub Thread: PVOID,
    /// Auxiliary buffer.
    pub AuxiliaryBuffer: *mut u8,
    /// Queue link for the current owner (KS cancelable queues use it).
    pub ListEntry: LIST_ENTRY,
    /// The current stack location (what `IoGetCurrentIrpStackLocation` reads).
    pub CurrentStackLocation: *mut IO_STACK_LOCATION,
    /// The file object the request was issued on.
    pub OriginalFileObject: *mut FILE_OBJECT,
}

/// `KAPC`, opaque: present only for the size of `IRP.Tail`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KAPC {
    /// The 0x58 bytes of an x64 `KAPC`.
    pub Opaque: [u64; 11],
}

/// `IRP.Tail`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union IRP_TAIL {
    /// While a driver owns the IRP.
    pub Overlay: IRP_TAIL_OVERLAY,
    /// Used by the I/O manager at completion.
    pub Apc: KAPC,
    /// I/O completion port key.
    pub CompletionKey: PVOID,
}

/// `IRP`: an I/O request packet. The WDK aligns it to `MEMORY_ALLOCATION_ALIGNMENT` (16).
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct IRP {
    /// `IO_TYPE_IRP` (6).
    pub Type: i16,
    /// Size of the IRP including its stack locations.
    pub Size: u16,
    /// First MDL of the request's buffer(s).
    pub MdlAddress: *mut MDL,
    /// `IRP_*` flags.
    pub Flags: u32,
    /// System buffer or master IRP.
    pub AssociatedIrp: IRP_ASSOCIATED,
    /// Link in the issuing thread's IRP list.
    pub ThreadListEntry: LIST_ENTRY,
    /// The final status and information.
    pub IoStatus: IO_STATUS_BLOCK,
    /// `KernelMode` or `UserMode`: whether buffers must be probed.
    pub RequestorMode: KPROCESSOR_MODE,
    /// Set by `IoCompleteRequest` when a lower driver returned `STATUS_PENDING`.
    pub PendingReturned: BOOLEAN,
    /// Number of stack locations.
    pub StackCount: i8,
    /// Index of the current stack location (1-based, counting down).
    pub CurrentLocation: i8,
    /// Set when the IRP is cancelled.
    pub Cancel: BOOLEAN,
    /// IRQL saved by `IoAcquireCancelSpinLock` for the cancel routine.
    pub CancelIrql: KIRQL,
    /// APC environment.
    pub ApcEnvironment: i8,
    /// Allocation flags.
    pub AllocationFlags: u8,
    /// Where the caller's status block lives (a union with `IoRingContext` in C).
    pub UserIosb: *mut IO_STATUS_BLOCK,
    /// Event signalled at completion.
    pub UserEvent: *mut KEVENT,
    /// APC parameters or allocation size.
    pub Overlay: IRP_OVERLAY,
    /// The cancel routine while the IRP is cancelable; swapped atomically with NULL.
    pub CancelRoutine: PDRIVER_CANCEL,
    /// The caller's buffer (`METHOD_NEITHER` output buffer, user address for user requestors).
    pub UserBuffer: PVOID,
    /// Per-owner scratch space and the stack pointer.
    pub Tail: IRP_TAIL,
}

/// `IO_TYPE_IRP`.
pub const IO_TYPE_IRP: i16 = 6;
/// `IO_TYPE_DEVICE`.
pub const IO_TYPE_DEVICE: i16 = 3;
/// `IO_TYPE_DRIVER`.
pub const IO_TYPE_DRIVER: i16 = 4;
/// `IO_TYPE_FILE`.
pub const IO_TYPE_FILE: i16 = 5;

/// `IO_STACK_LOCATION.Parameters.Create` (x64).
///
/// The WDK declares some members `POINTER_ALIGNMENT` (`DECLSPEC_ALIGN(8)` on x64): such a member
/// starts at the next 8-byte boundary. The `_align*` fields are that padding, spelled out.
/// windows-sys 0.61 omits it, which is why its `Create` and `DeviceIoControl` offsets are wrong
/// (KS-REFERENCE §2.18).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_PARAMETERS_CREATE {
    /// `PIO_SECURITY_CONTEXT`; its `DesiredAccess` is the access the create asks for.
    pub SecurityContext: *mut IO_SECURITY_CONTEXT,
    /// Create options and disposition.
    pub Options: u32,
    /// Padding before the pointer-aligned `FileAttributes`.
    pub Pad0: u32,
    /// File attributes.
    pub FileAttributes: u16,
    /// Share access.
    pub ShareAccess: u16,
    /// Padding before the pointer-aligned `EaLength`.
    pub Pad1: u32,
    /// Length of the extended attributes.
    pub EaLength: u32,
}

/// `IO_SECURITY_CONTEXT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_SECURITY_CONTEXT {
    /// `PSECURITY_QUALITY_OF_SERVICE`.
    pub SecurityQos: PVOID,
    /// `PACCESS_STATE`.
    pub AccessState: PVOID,
    /// The access the caller asked for.
    pub DesiredAccess: u32,
    /// Full create options.
    pub FullCreateOptions: u32,
}

/// `IO_STACK_LOCATION.Parameters.Read` / `.Write` (x64: `Key` is pointer-aligned, `Flags` follows).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_PARAMETERS_READ_WRITE {
    /// Bytes to transfer.
    pub Length: u32,
    /// Padding before the pointer-aligned `Key`.
    pub Pad0: u32,
    /// Key.
    pub Key: u32,
    /// Flags (x64 only).
    pub Flags: u32,
    /// Byte offset.
    pub ByteOffset: LARGE_INTEGER,
}

/// `IO_STACK_LOCATION.Parameters.DeviceIoControl` (x64: each `ULONG` is pointer-aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_PARAMETERS_DEVICE_IO_CONTROL {
    /// Length of the output buffer (`Irp->UserBuffer` for `METHOD_NEITHER`).
    pub OutputBufferLength: u32,
    /// Padding before the pointer-aligned `InputBufferLength`.
    pub Pad0: u32,
    /// Length of the input buffer.
    pub InputBufferLength: u32,
    /// Padding before the pointer-aligned `IoControlCode`.
    pub Pad1: u32,
    /// The control code.
    pub IoControlCode: u32,
    /// Padding before `Type3InputBuffer`.
    pub Pad2: u32,
    /// The caller's input buffer (`METHOD_NEITHER`: an unprobed caller address).
    pub Type3InputBuffer: PVOID,
}

/// `IO_STACK_LOCATION.Parameters.QuerySecurity`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_PARAMETERS_QUERY_SECURITY {
    /// `SECURITY_INFORMATION`.
    pub SecurityInformation: u32,
    /// Padding before the pointer-aligned `Length`.
    pub Pad0: u32,
    /// Length.
    pub Length: u32,
}

/// `IO_STACK_LOCATION.Parameters.Power` (each member after the first is pointer-aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_PARAMETERS_POWER {
    /// System context (a union with `SystemPowerStateContext` in C).
    pub SystemContext: u32,
    /// Padding before `Type`.
    pub Pad0: u32,
    /// `POWER_STATE_TYPE`.
    pub Type: i32,
    /// Padding before `State`.
    pub Pad1: u32,
    /// `POWER_STATE`.
    pub State: i32,
    /// Padding before `ShutdownType`.
    pub Pad2: u32,
    /// `POWER_ACTION`.
    pub ShutdownType: i32,
}

/// `IO_STACK_LOCATION.Parameters.Others`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_PARAMETERS_OTHERS {
    /// First argument.
    pub Argument1: PVOID,
    /// Second argument.
    pub Argument2: PVOID,
    /// Third argument.
    pub Argument3: PVOID,
    /// Fourth argument.
    pub Argument4: PVOID,
}

/// `IO_STACK_LOCATION.Parameters`: the members a KS driver meets (all 32 bytes on x64).
#[repr(C)]
#[derive(Clone, Copy)]
pub union IO_STACK_PARAMETERS {
    /// `IRP_MJ_CREATE`.
    pub Create: IO_PARAMETERS_CREATE,
    /// `IRP_MJ_READ`.
    pub Read: IO_PARAMETERS_READ_WRITE,
    /// `IRP_MJ_WRITE`.
    pub Write: IO_PARAMETERS_READ_WRITE,
    /// `IRP_MJ_DEVICE_CONTROL`.
    pub DeviceIoControl: IO_PARAMETERS_DEVICE_IO_CONTROL,
    /// `IRP_MJ_QUERY_SECURITY`.
    pub QuerySecurity: IO_PARAMETERS_QUERY_SECURITY,
    /// `IRP_MJ_POWER`.
    pub Power: IO_PARAMETERS_POWER,
    /// Any other major function.
    pub Others: IO_PARAMETERS_OTHERS,
}

/// `IO_STACK_LOCATION`: one driver's view of an IRP.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IO_STACK_LOCATION {
    /// `IRP_MJ_*`.
    pub MajorFunction: u8,
    /// `IRP_MN_*`.
    pub MinorFunction: u8,
    /// `SL_*` request flags.
    pub Flags: u8,
    /// `SL_PENDING_RETURNED` and the `SL_INVOKE_ON_*` completion-routine flags.
    pub Control: u8,
    /// Request parameters.
    pub Parameters: IO_STACK_PARAMETERS,
    /// The device this location belongs to.
    pub DeviceObject: *mut DEVICE_OBJECT,
    /// The file object of the request.
    pub FileObject: *mut FILE_OBJECT,
    /// Completion routine set by the driver above.
    pub CompletionRoutine: PIO_COMPLETION_ROUTINE,
    /// Its context.
    pub Context: PVOID,
}

/// `SL_PENDING_RETURNED` in `IO_STACK_LOCATION.Control` (set by `IoMarkIrpPending`).
pub const SL_PENDING_RETURNED: u8 = 0x01;
/// `SL_INVOKE_ON_CANCEL`.
pub const SL_INVOKE_ON_CANCEL: u8 = 0x20;
/// `SL_INVOKE_ON_SUCCESS`.
pub const SL_INVOKE_ON_SUCCESS: u8 = 0x40;
/// `SL_INVOKE_ON_ERROR`.
pub const SL_INVOKE_ON_ERROR: u8 = 0x80;

/// `FILE_OBJECT`: one open instance (a KS filter or pin).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FILE_OBJECT {
    /// `IO_TYPE_FILE`.
    pub Type: i16,
    /// Size of the structure.
    pub Size: i16,
    /// The device opened.
    pub DeviceObject: *mut DEVICE_OBJECT,
    /// Volume parameter block.
    pub Vpb: PVOID,
    /// Driver context; KS requires a structure whose first field is the `KSOBJECT_HEADER`.
    pub FsContext: PVOID,
    /// Second driver context.
    pub FsContext2: PVOID,
    /// `PSECTION_OBJECT_POINTERS`.
    pub SectionObjectPointer: PVOID,
    /// Cache manager state.
    pub PrivateCacheMap: PVOID,
    /// Final status.
    pub FinalStatus: NTSTATUS,
    /// The parent (a pin's filter) for relative opens.
    pub RelatedFileObject: *mut FILE_OBJECT,
    /// Lock operation flag.
    pub LockOperation: BOOLEAN,
    /// Delete pending.
    pub DeletePending: BOOLEAN,
    /// Opened for read.
    pub ReadAccess: BOOLEAN,
    /// Opened for write.
    pub WriteAccess: BOOLEAN,
    /// Opened for delete.
    pub DeleteAccess: BOOLEAN,
    /// Shared read.
    pub SharedRead: BOOLEAN,
    /// Shared write.
    pub SharedWrite: BOOLEAN,
    /// Shared delete.
    pub SharedDelete: BOOLEAN,
    /// `FO_*` flags.
    pub Flags: u32,
    /// The name below the device: `\GLOBAL`, or `{KSSTRING_Pin}\` + connect blob.
    pub FileName: UNICODE_STRING,
    /// Current byte offset.
    pub CurrentByteOffset: LARGE_INTEGER,
    /// Waiters.
    pub Waiters: u32,
    /// Busy.
    pub Busy: u32,
    /// Last lock.
    pub LastLock: PVOID,
    /// Lock event.
    pub Lock: KEVENT,
    /// Completion event.
    pub Event: KEVENT,
    /// `PIO_COMPLETION_CONTEXT`.
    pub CompletionContext: PVOID,
    /// IRP list lock.
    pub IrpListLock: KSPIN_LOCK,
    /// IRP list.
    pub IrpList: LIST_ENTRY,
    /// Extension.
    pub FileObjectExtension: PVOID,
}

/// `KDEVICE_QUEUE`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDEVICE_QUEUE {
    /// Type.
    pub Type: i16,
    /// Size.
    pub Size: i16,
    /// Queue head.
    pub DeviceListHead: LIST_ENTRY,
    /// Lock.
    pub Lock: KSPIN_LOCK,
    /// `Busy` (a union with a `Hint` bitfield in C).
    pub Busy: BOOLEAN,
}

/// `WAIT_CONTEXT_BLOCK`, opaque: present only for the size of `DEVICE_OBJECT.Queue`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct WAIT_CONTEXT_BLOCK {
    /// The 0x48 bytes of an x64 `WAIT_CONTEXT_BLOCK`.
    pub Opaque: [u64; 9],
}

/// `DEVICE_OBJECT.Queue`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union DEVICE_OBJECT_QUEUE {
    /// List link.
    pub ListEntry: LIST_ENTRY,
    /// Wait context block.
    pub Wcb: WAIT_CONTEXT_BLOCK,
}

/// `DEVICE_OBJECT`. The WDK aligns it to `MEMORY_ALLOCATION_ALIGNMENT` (16), which rounds its
/// size from 0x148 to 0x150.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct DEVICE_OBJECT {
    /// `IO_TYPE_DEVICE`.
    pub Type: i16,
    /// Size including the extension.
    pub Size: u16,
    /// Reference count.
    pub ReferenceCount: i32,
    /// The driver that created it.
    pub DriverObject: *mut DRIVER_OBJECT,
    /// Next device of the same driver.
    pub NextDevice: *mut DEVICE_OBJECT,
    /// The device attached above this one.
    pub AttachedDevice: *mut DEVICE_OBJECT,
    /// Current IRP (`StartIo`).
    pub CurrentIrp: *mut IRP,
    /// `PIO_TIMER`.
    pub Timer: PVOID,
    /// `DO_*` flags.
    pub Flags: u32,
    /// `FILE_*` characteristics.
    pub Characteristics: u32,
    /// Volume parameter block.
    pub Vpb: PVOID,
    /// The driver's per-device storage; a KS driver's starts with its `KSDEVICE_HEADER`.
    pub DeviceExtension: PVOID,
    /// `FILE_DEVICE_*`.
    pub DeviceType: u32,
    /// Stack locations IRPs sent to this device need.
    pub StackSize: i8,
    /// Device queue link.
    pub Queue: DEVICE_OBJECT_QUEUE,
    /// Buffer alignment requirement.
    pub AlignmentRequirement: u32,
    /// Device queue.
    pub DeviceQueue: KDEVICE_QUEUE,
    /// DPC for ISR.
    pub Dpc: KDPC,
    /// Active thread count.
    pub ActiveThreadCount: u32,
    /// `PSECURITY_DESCRIPTOR`.
    pub SecurityDescriptor: PVOID,
    /// Device lock event.
    pub DeviceLock: KEVENT,
    /// Sector size.
    pub SectorSize: u16,
    /// Spare.
    pub Spare1: u16,
    /// `PDEVOBJ_EXTENSION`.
    pub DeviceObjectExtension: PVOID,
    /// Reserved.
    pub Reserved: PVOID,
}

/// `DRIVER_EXTENSION`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DRIVER_EXTENSION {
    /// Back pointer.
    pub DriverObject: *mut DRIVER_OBJECT,
    /// The PnP `AddDevice` routine.
    pub AddDevice: PDRIVER_ADD_DEVICE,
    /// Reinitialisation count.
    pub Count: u32,
    /// Service key name.
    pub ServiceKeyName: UNICODE_STRING,
}

/// Number of IRP major function codes (`IRP_MJ_MAXIMUM_FUNCTION + 1`).
pub const IRP_MJ_COUNT: usize = 28;

/// `DRIVER_OBJECT`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DRIVER_OBJECT {
    /// `IO_TYPE_DRIVER`.
    pub Type: i16,
    /// Size.
    pub Size: i16,
    /// First device created by this driver.
    pub DeviceObject: *mut DEVICE_OBJECT,
    /// Flags.
    pub Flags: u32,
    /// Image base.
    pub DriverStart: PVOID,
    /// Image size.
    pub DriverSize: u32,
    /// Loader entry.
    pub DriverSection: PVOID,
    /// The extension holding `AddDevice`.
    pub DriverExtension: *mut DRIVER_EXTENSION,
    /// `\Driver\<name>`.
    pub DriverName: UNICODE_STRING,
    /// Registry path of the hardware database.
    pub HardwareDatabase: *mut UNICODE_STRING,
    /// `PFAST_IO_DISPATCH`.
    pub FastIoDispatch: PVOID,
    /// `DriverEntry`.
    pub DriverInit: PDRIVER_INITIALIZE,
    /// `StartIo`.
    pub DriverStartIo: PDRIVER_STARTIO,
    /// Unload routine; NULL makes the driver unloadable only at reboot.
    pub DriverUnload: PDRIVER_UNLOAD,
    /// One dispatch routine per IRP major function.
    pub MajorFunction: [PDRIVER_DISPATCH; IRP_MJ_COUNT],
}

/// `IRP_MJ_CREATE`.
pub const IRP_MJ_CREATE: u8 = 0x00;
/// `IRP_MJ_CLOSE`.
pub const IRP_MJ_CLOSE: u8 = 0x02;
/// `IRP_MJ_READ`.
pub const IRP_MJ_READ: u8 = 0x03;
/// `IRP_MJ_WRITE`.
pub const IRP_MJ_WRITE: u8 = 0x04;
/// `IRP_MJ_FLUSH_BUFFERS`.
pub const IRP_MJ_FLUSH_BUFFERS: u8 = 0x09;
/// `IRP_MJ_DEVICE_CONTROL`.
pub const IRP_MJ_DEVICE_CONTROL: u8 = 0x0E;
/// `IRP_MJ_INTERNAL_DEVICE_CONTROL`.
pub const IRP_MJ_INTERNAL_DEVICE_CONTROL: u8 = 0x0F;
/// `IRP_MJ_CLEANUP`.
pub const IRP_MJ_CLEANUP: u8 = 0x12;
/// `IRP_MJ_QUERY_SECURITY`.
pub const IRP_MJ_QUERY_SECURITY: u8 = 0x14;
/// `IRP_MJ_SET_SECURITY`.
pub const IRP_MJ_SET_SECURITY: u8 = 0x15;
/// `IRP_MJ_POWER`.
pub const IRP_MJ_POWER: u8 = 0x16;
/// `IRP_MJ_SYSTEM_CONTROL`.
pub const IRP_MJ_SYSTEM_CONTROL: u8 = 0x17;
/// `IRP_MJ_PNP`.
pub const IRP_MJ_PNP: u8 = 0x1B;

/// `IRP_MN_START_DEVICE`.
pub const IRP_MN_START_DEVICE: u8 = 0x00;
/// `IRP_MN_QUERY_REMOVE_DEVICE`.
pub const IRP_MN_QUERY_REMOVE_DEVICE: u8 = 0x01;
/// `IRP_MN_REMOVE_DEVICE`.
pub const IRP_MN_REMOVE_DEVICE: u8 = 0x02;
/// `IRP_MN_CANCEL_REMOVE_DEVICE`.
pub const IRP_MN_CANCEL_REMOVE_DEVICE: u8 = 0x03;
/// `IRP_MN_STOP_DEVICE`.
pub const IRP_MN_STOP_DEVICE: u8 = 0x04;
/// `IRP_MN_SURPRISE_REMOVAL`.
pub const IRP_MN_SURPRISE_REMOVAL: u8 = 0x17;

/// `FILE_DEVICE_KS`.
pub const FILE_DEVICE_KS: u32 = 0x2F;
/// `FILE_DEVICE_SECURE_OPEN`: the device's security descriptor also guards opens in its namespace
/// (a trailing name, a relative open).
pub const FILE_DEVICE_SECURE_OPEN: u32 = 0x0000_0100;

/// `IO_NO_INCREMENT`: priority boost passed to `IoCompleteRequest`.
pub const IO_NO_INCREMENT: i8 = 0;

/// `GENERIC_READ`.
pub const GENERIC_READ: u32 = 0x8000_0000;
/// `GENERIC_WRITE`.
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// `FILE_READ_DATA` (what `GENERIC_READ` maps to for the access check of `FILE_READ_ACCESS` IOCTLs).
pub const FILE_READ_DATA: u32 = 0x0001;
/// `FILE_WRITE_DATA`.
pub const FILE_WRITE_DATA: u32 = 0x0002;

/// `POOL_FLAG_USE_QUOTA`: charge the allocation to the current process's pool quota.
pub const POOL_FLAG_USE_QUOTA: u64 = 0x0000_0000_0000_0001;
/// `POOL_FLAG_UNINITIALIZED`: do not zero the allocation.
pub const POOL_FLAG_UNINITIALIZED: u64 = 0x0000_0000_0000_0002;
/// `POOL_FLAG_NON_PAGED`: non-paged, non-executable pool.
pub const POOL_FLAG_NON_PAGED: u64 = 0x0000_0000_0000_0040;
/// `POOL_FLAG_PAGED`: paged pool.
pub const POOL_FLAG_PAGED: u64 = 0x0000_0000_0000_0100;

/// `PAGE_SIZE` on x64.
pub const PAGE_SIZE: usize = 4096;

/// `OBJ_KERNEL_HANDLE`.
pub const OBJ_KERNEL_HANDLE: u32 = 0x0000_0200;

/// An opaque `PEPROCESS`/`PETHREAD`/object pointer.
pub type POBJECT = *mut c_void;

/// Placeholder for handles that are never valid.
pub const INVALID_HANDLE_VALUE: HANDLE = usize::MAX as HANDLE;
