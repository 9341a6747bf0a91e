//! Compile-time proof, on a Windows build with the WDK, that ksabi's WDM types match the WDK
//! headers as `wdk-sys` binds them. `wdk-sys` has no KS bindings (it does not include `ks.h`), so
//! the KS types are checked by the host tests against windows-sys and mingw-w64 instead.
//!
//! Only named top-level members are compared: bindgen names anonymous unions `__bindgen_anon_N`,
//! and those members are covered by the sizes and the offsets of their neighbours.

use core::mem::{align_of, offset_of, size_of};

use wdk_sys as wdk;

macro_rules! same_layout {
    ($ours:ty, $theirs:ty $(, $field:ident)* $(,)?) => {
        const _: () = {
            assert!(size_of::<$ours>() == size_of::<$theirs>(), concat!("size of ", stringify!($ours)));
            assert!(align_of::<$ours>() == align_of::<$theirs>(), concat!("alignment of ", stringify!($ours)));
            $( assert!(
                offset_of!($ours, $field) == offset_of!($theirs, $field),
                concat!("offset of ", stringify!($ours), ".", stringify!($field))
            ); )*
        };
    };
}

same_layout!(crate::GUID, wdk::GUID, Data1, Data2, Data3, Data4);
same_layout!(crate::UNICODE_STRING, wdk::UNICODE_STRING, Length, MaximumLength, Buffer);
same_layout!(
    crate::OBJECT_ATTRIBUTES,
    wdk::OBJECT_ATTRIBUTES,
    Length,
    RootDirectory,
    ObjectName,
    Attributes,
    SecurityDescriptor,
    SecurityQualityOfService
);
same_layout!(
    crate::KEY_VALUE_PARTIAL_INFORMATION,
    wdk::KEY_VALUE_PARTIAL_INFORMATION,
    TitleIndex,
    Type,
    DataLength,
    Data
);
same_layout!(crate::LIST_ENTRY, wdk::LIST_ENTRY, Flink, Blink);
same_layout!(crate::IO_STATUS_BLOCK, wdk::IO_STATUS_BLOCK, Information);
same_layout!(crate::KEVENT, wdk::KEVENT, Header);
same_layout!(crate::KDPC, wdk::KDPC, DpcListEntry, ProcessorHistory, DeferredRoutine, DeferredContext);
same_layout!(
    crate::MDL,
    wdk::MDL,
    Next,
    Size,
    MdlFlags,
    Process,
    MappedSystemVa,
    StartVa,
    ByteCount,
    ByteOffset
);
same_layout!(
    crate::IRP,
    wdk::IRP,
    Type,
    Size,
    MdlAddress,
    Flags,
    AssociatedIrp,
    ThreadListEntry,
    IoStatus,
    RequestorMode,
    PendingReturned,
    StackCount,
    CurrentLocation,
    Cancel,
    CancelIrql,
    ApcEnvironment,
    AllocationFlags,
    UserEvent,
    Overlay,
    CancelRoutine,
    UserBuffer,
    Tail,
);
same_layout!(
    crate::IO_STACK_LOCATION,
    wdk::IO_STACK_LOCATION,
    MajorFunction,
    MinorFunction,
    Flags,
    Control,
    Parameters,
    DeviceObject,
    FileObject,
    CompletionRoutine,
    Context,
);
same_layout!(
    crate::FILE_OBJECT,
    wdk::FILE_OBJECT,
    Type,
    Size,
    DeviceObject,
    Vpb,
    FsContext,
    FsContext2,
    SectionObjectPointer,
    PrivateCacheMap,
    FinalStatus,
    RelatedFileObject,
    LockOperation,
    DeletePending,
    ReadAccess,
    WriteAccess,
    DeleteAccess,
    SharedRead,
    SharedWrite,
    SharedDelete,
    Flags,
    FileName,
    CurrentByteOffset,
    Waiters,
    Busy,
    LastLock,
    Lock,
    Event,
    CompletionContext,
    IrpListLock,
    IrpList,
    FileObjectExtension,
);
same_layout!(
    crate::DEVICE_OBJECT,
    wdk::DEVICE_OBJECT,
    Type,
    Size,
    ReferenceCount,
    DriverObject,
    NextDevice,
    AttachedDevice,
    CurrentIrp,
    Timer,
    Flags,
    Characteristics,
    Vpb,
    DeviceExtension,
    DeviceType,
    StackSize,
    Queue,
    AlignmentRequirement,
    DeviceQueue,
    Dpc,
    ActiveThreadCount,
    SecurityDescriptor,
    DeviceLock,
    SectorSize,
    Spare1,
    DeviceObjectExtension,
    Reserved,
);
same_layout!(crate::DRIVER_EXTENSION, wdk::DRIVER_EXTENSION, DriverObject, AddDevice, Count, ServiceKeyName);
same_layout!(
    crate::DRIVER_OBJECT,
    wdk::DRIVER_OBJECT,
    Type,
    Size,
    DeviceObject,
    Flags,
    DriverStart,
    DriverSize,
    DriverSection,
    DriverExtension,
    DriverName,
    HardwareDatabase,
    FastIoDispatch,
    DriverInit,
    DriverStartIo,
    DriverUnload,
    MajorFunction,
);

const _: () = {
    assert!(crate::POOL_FLAG_NON_PAGED == wdk::POOL_FLAG_NON_PAGED as u64);
    assert!(crate::POOL_FLAG_PAGED == wdk::POOL_FLAG_PAGED as u64);
    assert!(crate::POOL_FLAG_UNINITIALIZED == wdk::POOL_FLAG_UNINITIALIZED as u64);
    assert!(crate::POOL_FLAG_USE_QUOTA == wdk::POOL_FLAG_USE_QUOTA as u64);
    assert!(crate::FILE_DEVICE_SECURE_OPEN == wdk::FILE_DEVICE_SECURE_OPEN);
    assert!(crate::IRP_MJ_PNP as u32 == wdk::IRP_MJ_PNP);
    assert!(crate::IRP_MJ_DEVICE_CONTROL as u32 == wdk::IRP_MJ_DEVICE_CONTROL);
    assert!(crate::SL_PENDING_RETURNED as u32 == wdk::SL_PENDING_RETURNED);
    assert!(crate::STATUS_PENDING == wdk::STATUS_PENDING);
    assert!(crate::STATUS_CANCELLED == wdk::STATUS_CANCELLED);
};
