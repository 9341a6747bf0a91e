//! ksabi against windows-sys 0.61 (generated from Microsoft's Win32/WDK metadata): every type
//! windows-sys has, field by field; constants; GUIDs.
//!
//! Not compared here, and why:
//! - `IO_STACK_LOCATION.Parameters.{Create,Read,Write,DeviceIoControl}` member offsets,
//!   and the members of `.Power` after the first: windows-sys drops the WDK's `POINTER_ALIGNMENT`
//!   (microsoft/windows-rs#4404). The mingw test checks them.
//! - Kernel-only KS types (`KSPIN_DESCRIPTOR`, `KSDISPATCH_TABLE`, ...): not in windows-sys.
//!   The mingw test checks them.
//! - `IRP`/`DEVICE_OBJECT` alignment: the WDK declares `DECLSPEC_ALIGN(16)`; windows-sys does not.
//!   Asserted here as exactly that difference.
#![allow(non_snake_case)]
// Tables of constants: long by nature; values are widened to usize to compare, never narrowed.
#![allow(clippy::too_many_lines, clippy::cast_sign_loss, clippy::cast_possible_truncation)]

use core::mem::{align_of, offset_of, size_of};
use std::cell::Cell;

use ksabi as ours;
use windows_sys::Wdk::Foundation as wf;
use windows_sys::Win32::Media::KernelStreaming as wks;

thread_local! {
    /// Checks made by the current test (each test runs on its own thread).
    static CHECKS: Cell<usize> = const { Cell::new(0) };
}

fn check(what: &str, ours: usize, theirs: usize) {
    CHECKS.with(|c| c.set(c.get() + 1));
    assert_eq!(ours, theirs, "{what}: ksabi {ours:#x}, windows-sys {theirs:#x}");
}

/// Size, alignment, and the offset of each listed field (`ours.path => theirs.path`).
macro_rules! same_layout {
    ($ours:ty, $theirs:ty { $( $of:ident $(. $orest:ident)* => $tf:ident $(. $trest:ident)* ),* $(,)? }) => {{
        check(concat!("size of ", stringify!($ours)), size_of::<$ours>(), size_of::<$theirs>());
        check(concat!("align of ", stringify!($ours)), align_of::<$ours>(), align_of::<$theirs>());
        same_layout!(@fields $ours, $theirs { $( $of $(. $orest)* => $tf $(. $trest)* ),* });
    }};
    (@fields $ours:ty, $theirs:ty { $( $of:ident $(. $orest:ident)* => $tf:ident $(. $trest:ident)* ),* $(,)? }) => {{
        $( check(
            concat!("offset of ", stringify!($ours), ".", stringify!($of $(. $orest)*)),
            offset_of!($ours, $of $(. $orest)*),
            offset_of!($theirs, $tf $(. $trest)*),
        ); )*
    }};
}

/// Same as `same_layout!` for a type the WDK aligns to 16 where windows-sys aligns to 8.
macro_rules! same_layout_wdk_aligned {
    ($ours:ty, $theirs:ty { $($body:tt)* }) => {{
        check(concat!("align of ", stringify!($theirs)), align_of::<$theirs>(), 8);
        check(concat!("align of ", stringify!($ours)), align_of::<$ours>(), 16);
        check(concat!("size of ", stringify!($ours)), size_of::<$ours>(), size_of::<$theirs>().next_multiple_of(16));
        same_layout!(@fields $ours, $theirs { $($body)* });
    }};
}

fn report(test: &str) {
    println!("{test}: {} checks against windows-sys", CHECKS.with(Cell::get));
}

#[test]
fn nt_basic_types() {
    same_layout!(ours::GUID, windows_sys::core::GUID { Data1 => data1, Data2 => data2, Data3 => data3, Data4 => data4 });
    same_layout!(ours::UNICODE_STRING, windows_sys::Win32::Foundation::UNICODE_STRING {
        Length => Length, MaximumLength => MaximumLength, Buffer => Buffer,
    });
    same_layout!(ours::LIST_ENTRY, windows_sys::Win32::System::Kernel::LIST_ENTRY { Flink => Flink, Blink => Blink });
    same_layout!(ours::OBJECT_ATTRIBUTES, windows_sys::Wdk::Foundation::OBJECT_ATTRIBUTES {
        Length => Length, RootDirectory => RootDirectory, ObjectName => ObjectName, Attributes => Attributes,
        SecurityDescriptor => SecurityDescriptor, SecurityQualityOfService => SecurityQualityOfService,
    });
    same_layout!(ours::KEY_VALUE_PARTIAL_INFORMATION, windows_sys::Wdk::System::SystemServices::KEY_VALUE_PARTIAL_INFORMATION {
        TitleIndex => TitleIndex, Type => Type, DataLength => DataLength, Data => Data,
    });
    check(
        "OBJ_CASE_INSENSITIVE",
        ours::OBJ_CASE_INSENSITIVE as usize,
        windows_sys::Win32::Foundation::OBJ_CASE_INSENSITIVE as usize,
    );
    check("KEY_READ", ours::KEY_READ as usize, windows_sys::Win32::System::Registry::KEY_READ as usize);
    check("REG_DWORD", ours::REG_DWORD as usize, windows_sys::Win32::System::Registry::REG_DWORD as usize);
    check("REG_SZ", ours::REG_SZ as usize, windows_sys::Win32::System::Registry::REG_SZ as usize);
    check(
        "KeyValuePartialInformation",
        ours::KeyValuePartialInformation as usize,
        windows_sys::Wdk::System::Registry::KeyValuePartialInformation as usize,
    );
    same_layout!(ours::IO_STATUS_BLOCK, windows_sys::Win32::System::IO::IO_STATUS_BLOCK {
        Status => Anonymous.Status, Information => Information,
    });
    same_layout!(ours::DISPATCHER_HEADER, wf::DISPATCHER_HEADER {
        Lock => Anonymous, SignalState => SignalState, WaitListHead => WaitListHead,
    });
    same_layout!(ours::KEVENT, wf::KEVENT { Header => Header });
    same_layout!(ours::KDPC, wf::KDPC {
        TargetInfoAsUlong => Anonymous, DpcListEntry => DpcListEntry, ProcessorHistory => ProcessorHistory,
        DeferredRoutine => DeferredRoutine, DeferredContext => DeferredContext,
        SystemArgument1 => SystemArgument1, SystemArgument2 => SystemArgument2, DpcData => DpcData,
    });
    check("size of KSPIN_LOCK", size_of::<ours::KSPIN_LOCK>(), size_of::<usize>());
    report("nt_basic_types");
}

#[test]
fn wdm_objects() {
    same_layout!(ours::MDL, wf::MDL {
        Next => Next, Size => Size, MdlFlags => MdlFlags, Process => Process,
        MappedSystemVa => MappedSystemVa, StartVa => StartVa, ByteCount => ByteCount, ByteOffset => ByteOffset,
    });
    same_layout_wdk_aligned!(ours::IRP, wf::IRP {
        Type => Type, Size => Size, MdlAddress => MdlAddress, Flags => Flags,
        AssociatedIrp => AssociatedIrp, AssociatedIrp.MasterIrp => AssociatedIrp.MasterIrp,
        AssociatedIrp.IrpCount => AssociatedIrp.IrpCount, AssociatedIrp.SystemBuffer => AssociatedIrp.SystemBuffer,
        ThreadListEntry => ThreadListEntry, IoStatus => IoStatus, IoStatus.Status => IoStatus.Anonymous.Status,
        IoStatus.Information => IoStatus.Information, RequestorMode => RequestorMode,
        PendingReturned => PendingReturned, StackCount => StackCount, CurrentLocation => CurrentLocation,
        Cancel => Cancel, CancelIrql => CancelIrql, ApcEnvironment => ApcEnvironment,
        AllocationFlags => AllocationFlags, UserIosb => Anonymous.UserIosb, UserEvent => UserEvent,
        Overlay => Overlay, Overlay.AsynchronousParameters.UserApcContext => Overlay.AsynchronousParameters.Anonymous2,
        Overlay.AllocationSize => Overlay.AllocationSize,
        CancelRoutine => CancelRoutine, UserBuffer => UserBuffer, Tail => Tail,
        Tail.Overlay.DriverContext => Tail.Overlay.Anonymous1.Anonymous.DriverContext,
        Tail.Overlay.Thread => Tail.Overlay.Thread, Tail.Overlay.AuxiliaryBuffer => Tail.Overlay.AuxiliaryBuffer,
        Tail.Overlay.ListEntry => Tail.Overlay.Anonymous2.ListEntry,
        Tail.Overlay.CurrentStackLocation => Tail.Overlay.Anonymous2.Anonymous.CurrentStackLocation,
        Tail.Overlay.OriginalFileObject => Tail.Overlay.OriginalFileObject,
        Tail.Apc => Tail.Apc, Tail.CompletionKey => Tail.CompletionKey,
    });
    check("size of IRP.Tail", size_of::<ours::IRP_TAIL>(), size_of::<wf::IRP_3>());
    check(
        "size of KAPC",
        size_of::<ours::KAPC>(),
        size_of::<windows_sys::Wdk::System::SystemServices::KAPC>(),
    );
    same_layout!(ours::IO_STACK_LOCATION, wf::IO_STACK_LOCATION {
        MajorFunction => MajorFunction, MinorFunction => MinorFunction, Flags => Flags, Control => Control,
        Parameters => Parameters, Parameters.QuerySecurity.SecurityInformation => Parameters.QuerySecurity.SecurityInformation,
        Parameters.Others.Argument1 => Parameters.Others.Argument1, Parameters.Others.Argument2 => Parameters.Others.Argument2,
        Parameters.Others.Argument3 => Parameters.Others.Argument3, Parameters.Others.Argument4 => Parameters.Others.Argument4,
        Parameters.Power.SystemContext => Parameters.Power.Anonymous,
        DeviceObject => DeviceObject, FileObject => FileObject, CompletionRoutine => CompletionRoutine, Context => Context,
    });
    check(
        "size of IO_STACK_LOCATION.Parameters",
        size_of::<ours::IO_STACK_PARAMETERS>(),
        size_of::<wf::IO_STACK_LOCATION_0>(),
    );
    same_layout!(ours::IO_SECURITY_CONTEXT, wf::IO_SECURITY_CONTEXT {
        SecurityQos => SecurityQos, AccessState => AccessState, DesiredAccess => DesiredAccess,
        FullCreateOptions => FullCreateOptions,
    });
    same_layout!(ours::FILE_OBJECT, wf::FILE_OBJECT {
        Type => Type, Size => Size, DeviceObject => DeviceObject, Vpb => Vpb, FsContext => FsContext,
        FsContext2 => FsContext2, SectionObjectPointer => SectionObjectPointer, PrivateCacheMap => PrivateCacheMap,
        FinalStatus => FinalStatus, RelatedFileObject => RelatedFileObject, LockOperation => LockOperation,
        DeletePending => DeletePending, ReadAccess => ReadAccess, WriteAccess => WriteAccess,
        DeleteAccess => DeleteAccess, SharedRead => SharedRead, SharedWrite => SharedWrite,
        SharedDelete => SharedDelete, Flags => Flags, FileName => FileName, CurrentByteOffset => CurrentByteOffset,
        Waiters => Waiters, Busy => Busy, LastLock => LastLock, Lock => Lock, Event => Event,
        CompletionContext => CompletionContext, IrpListLock => IrpListLock, IrpList => IrpList,
        FileObjectExtension => FileObjectExtension,
    });
    same_layout!(ours::KDEVICE_QUEUE, wf::KDEVICE_QUEUE {
        Type => Type, Size => Size, DeviceListHead => DeviceListHead, Lock => Lock, Busy => Busy,
    });
    check(
        "size of DEVICE_OBJECT.Queue",
        size_of::<ours::DEVICE_OBJECT_QUEUE>(),
        size_of::<wf::DEVICE_OBJECT_0>(),
    );
    same_layout_wdk_aligned!(ours::DEVICE_OBJECT, wf::DEVICE_OBJECT {
        Type => Type, Size => Size, ReferenceCount => ReferenceCount, DriverObject => DriverObject,
        NextDevice => NextDevice, AttachedDevice => AttachedDevice, CurrentIrp => CurrentIrp, Timer => Timer,
        Flags => Flags, Characteristics => Characteristics, Vpb => Vpb, DeviceExtension => DeviceExtension,
        DeviceType => DeviceType, StackSize => StackSize, Queue => Queue, AlignmentRequirement => AlignmentRequirement,
        DeviceQueue => DeviceQueue, Dpc => Dpc, ActiveThreadCount => ActiveThreadCount,
        SecurityDescriptor => SecurityDescriptor, DeviceLock => DeviceLock, SectorSize => SectorSize,
        Spare1 => Spare1, DeviceObjectExtension => DeviceObjectExtension, Reserved => Reserved,
    });
    same_layout!(ours::DRIVER_EXTENSION, wf::DRIVER_EXTENSION {
        DriverObject => DriverObject, AddDevice => AddDevice, Count => Count, ServiceKeyName => ServiceKeyName,
    });
    same_layout!(ours::DRIVER_OBJECT, wf::DRIVER_OBJECT {
        Type => Type, Size => Size, DeviceObject => DeviceObject, Flags => Flags, DriverStart => DriverStart,
        DriverSize => DriverSize, DriverSection => DriverSection, DriverExtension => DriverExtension,
        DriverName => DriverName, HardwareDatabase => HardwareDatabase, FastIoDispatch => FastIoDispatch,
        DriverInit => DriverInit, DriverStartIo => DriverStartIo, DriverUnload => DriverUnload,
        MajorFunction => MajorFunction,
    });
    check("IRP_MJ count", ours::IRP_MJ_COUNT, core::mem::size_of_val(&[0u8; 28]));
    report("wdm_objects");
}

#[test]
fn ks_types() {
    same_layout!(ours::KSIDENTIFIER, wks::KSIDENTIFIER {
        Set => Anonymous.Anonymous.Set, Id => Anonymous.Anonymous.Id, Flags => Anonymous.Anonymous.Flags,
    });
    same_layout!(ours::KSP_PIN, wks::KSP_PIN { Property => Property, PinId => PinId, Reserved => Anonymous.Reserved });
    same_layout!(ours::KSP_NODE, wks::KSP_NODE { Property => Property, NodeId => NodeId, Reserved => Reserved });
    same_layout!(ours::KSPRIORITY, wks::KSPRIORITY { PriorityClass => PriorityClass, PrioritySubClass => PrioritySubClass });
    same_layout!(ours::KSPIN_CONNECT, wks::KSPIN_CONNECT {
        Interface => Interface, Medium => Medium, PinId => PinId, PinToHandle => PinToHandle, Priority => Priority,
    });
    same_layout!(ours::KSDATAFORMAT, wks::KSDATAFORMAT {
        FormatSize => Anonymous.FormatSize, Flags => Anonymous.Flags, SampleSize => Anonymous.SampleSize,
        Reserved => Anonymous.Reserved, MajorFormat => Anonymous.MajorFormat, SubFormat => Anonymous.SubFormat,
        Specifier => Anonymous.Specifier,
    });
    same_layout!(ours::KSDATARANGE_AUDIO, wks::KSDATARANGE_AUDIO {
        DataRange => DataRange, MaximumChannels => MaximumChannels, MinimumBitsPerSample => MinimumBitsPerSample,
        MaximumBitsPerSample => MaximumBitsPerSample, MinimumSampleFrequency => MinimumSampleFrequency,
        MaximumSampleFrequency => MaximumSampleFrequency,
    });
    same_layout!(ours::WAVEFORMATEX, windows_sys::Win32::Media::Audio::WAVEFORMATEX {
        wFormatTag => wFormatTag, nChannels => nChannels, nSamplesPerSec => nSamplesPerSec,
        nAvgBytesPerSec => nAvgBytesPerSec, nBlockAlign => nBlockAlign, wBitsPerSample => wBitsPerSample,
        cbSize => cbSize,
    });
    same_layout!(ours::KSMULTIPLE_ITEM, wks::KSMULTIPLE_ITEM { Size => Size, Count => Count });
    same_layout!(ours::KSATTRIBUTE, wks::KSATTRIBUTE { Size => Size, Flags => Flags, Attribute => Attribute });
    same_layout!(ours::KSPIN_CINSTANCES, wks::KSPIN_CINSTANCES { PossibleCount => PossibleCount, CurrentCount => CurrentCount });
    same_layout!(ours::KSTIME, wks::KSTIME { Time => Time, Numerator => Numerator, Denominator => Denominator });
    same_layout!(ours::KSSTREAM_HEADER, wks::KSSTREAM_HEADER {
        Size => Size, TypeSpecificFlags => TypeSpecificFlags, PresentationTime => PresentationTime,
        Duration => Duration, FrameExtent => FrameExtent, DataUsed => DataUsed, Data => Data,
        OptionsFlags => OptionsFlags, Reserved => Reserved,
    });
    same_layout!(ours::KSPROPERTY_MEMBERSHEADER, wks::KSPROPERTY_MEMBERSHEADER {
        MembersFlags => MembersFlags, MembersSize => MembersSize, MembersCount => MembersCount, Flags => Flags,
    });
    same_layout!(ours::KSPROPERTY_BOUNDS_LONG, wks::KSPROPERTY_BOUNDS_LONG {
        UnsignedMinimum => Anonymous2.UnsignedMinimum, UnsignedMaximum => Anonymous2.UnsignedMaximum,
    });
    same_layout!(ours::KSPROPERTY_STEPPING_LONG, wks::KSPROPERTY_STEPPING_LONG {
        SteppingDelta => SteppingDelta, Reserved => Reserved, Bounds => Bounds,
    });
    same_layout!(ours::KSPROPERTY_DESCRIPTION, wks::KSPROPERTY_DESCRIPTION {
        AccessFlags => AccessFlags, DescriptionSize => DescriptionSize, PropTypeSet => PropTypeSet,
        MembersListCount => MembersListCount, Reserved => Reserved,
    });
    same_layout!(ours::KSTOPOLOGY_CONNECTION, wks::KSTOPOLOGY_CONNECTION {
        FromNode => FromNode, FromNodePin => FromNodePin, ToNode => ToNode, ToNodePin => ToNodePin,
    });
    same_layout!(ours::KSTOPOLOGY, wks::KSTOPOLOGY {
        CategoriesCount => CategoriesCount, Categories => Categories, TopologyNodesCount => TopologyNodesCount,
        TopologyNodes => TopologyNodes, TopologyConnectionsCount => TopologyConnectionsCount,
        TopologyConnections => TopologyConnections, TopologyNodesNames => TopologyNodesNames, Reserved => Reserved,
    });
    same_layout!(ours::KSALLOCATOR_FRAMING, wks::KSALLOCATOR_FRAMING {
        OptionsFlags => Anonymous1.OptionsFlags, PoolType => PoolType, Frames => Frames, FrameSize => FrameSize,
        FileAlignment => Anonymous2.FileAlignment, Reserved => Reserved,
    });
    same_layout!(ours::KSCOMPONENTID, wks::KSCOMPONENTID {
        Manufacturer => Manufacturer, Product => Product, Component => Component, Name => Name,
        Version => Version, Revision => Revision,
    });
    report("ks_types");
}

/// Function-pointer types: pointer-sized options of `extern "system"` functions, as in windows-sys.
#[test]
fn function_pointer_types() {
    check("size of PDRIVER_DISPATCH", size_of::<ours::PDRIVER_DISPATCH>(), size_of::<wf::DRIVER_DISPATCH>());
    check("size of PDRIVER_CANCEL", size_of::<ours::PDRIVER_CANCEL>(), size_of::<wf::DRIVER_CANCEL>());
    check("size of PDRIVER_UNLOAD", size_of::<ours::PDRIVER_UNLOAD>(), size_of::<wf::DRIVER_UNLOAD>());
    check(
        "size of PDRIVER_ADD_DEVICE",
        size_of::<ours::PDRIVER_ADD_DEVICE>(),
        size_of::<wf::DRIVER_ADD_DEVICE>(),
    );
    check(
        "size of PIO_COMPLETION_ROUTINE",
        size_of::<ours::PIO_COMPLETION_ROUTINE>(),
        size_of::<wf::PIO_COMPLETION_ROUTINE>(),
    );
    report("function_pointer_types");
}

#[test]
fn constants() {
    use windows_sys::Wdk::Storage::FileSystem as fs;
    use windows_sys::Wdk::System::SystemServices as ss;
    use windows_sys::Win32::Foundation as f;

    use ours::{connection_property as c, pin_property as p, topology_property as t};

    let statuses: &[(&str, i32, i32)] = &[
        ("STATUS_SUCCESS", ours::STATUS_SUCCESS, f::STATUS_SUCCESS),
        ("STATUS_PENDING", ours::STATUS_PENDING, f::STATUS_PENDING),
        ("STATUS_TIMEOUT", ours::STATUS_TIMEOUT, f::STATUS_TIMEOUT),
        ("STATUS_FILE_CLOSED", ours::STATUS_FILE_CLOSED, f::STATUS_FILE_CLOSED),
        ("STATUS_MORE_ENTRIES", ours::STATUS_MORE_ENTRIES, f::STATUS_MORE_ENTRIES),
        ("STATUS_SOME_NOT_MAPPED", ours::STATUS_SOME_NOT_MAPPED, f::STATUS_SOME_NOT_MAPPED),
        ("STATUS_BUFFER_OVERFLOW", ours::STATUS_BUFFER_OVERFLOW, f::STATUS_BUFFER_OVERFLOW),
        ("STATUS_DEVICE_BUSY", ours::STATUS_DEVICE_BUSY, f::STATUS_DEVICE_BUSY),
        ("STATUS_UNSUCCESSFUL", ours::STATUS_UNSUCCESSFUL, f::STATUS_UNSUCCESSFUL),
        ("STATUS_NOT_IMPLEMENTED", ours::STATUS_NOT_IMPLEMENTED, f::STATUS_NOT_IMPLEMENTED),
        ("STATUS_ACCESS_VIOLATION", ours::STATUS_ACCESS_VIOLATION, f::STATUS_ACCESS_VIOLATION),
        ("STATUS_INVALID_HANDLE", ours::STATUS_INVALID_HANDLE, f::STATUS_INVALID_HANDLE),
        ("STATUS_INVALID_PARAMETER", ours::STATUS_INVALID_PARAMETER, f::STATUS_INVALID_PARAMETER),
        ("STATUS_NO_SUCH_DEVICE", ours::STATUS_NO_SUCH_DEVICE, f::STATUS_NO_SUCH_DEVICE),
        (
            "STATUS_MORE_PROCESSING_REQUIRED",
            ours::STATUS_MORE_PROCESSING_REQUIRED,
            f::STATUS_MORE_PROCESSING_REQUIRED,
        ),
        ("STATUS_IO_TIMEOUT", ours::STATUS_IO_TIMEOUT, f::STATUS_IO_TIMEOUT),
        (
            "STATUS_INVALID_DEVICE_REQUEST",
            ours::STATUS_INVALID_DEVICE_REQUEST,
            f::STATUS_INVALID_DEVICE_REQUEST,
        ),
        ("STATUS_END_OF_FILE", ours::STATUS_END_OF_FILE, f::STATUS_END_OF_FILE),
        ("STATUS_ACCESS_DENIED", ours::STATUS_ACCESS_DENIED, f::STATUS_ACCESS_DENIED),
        ("STATUS_BUFFER_TOO_SMALL", ours::STATUS_BUFFER_TOO_SMALL, f::STATUS_BUFFER_TOO_SMALL),
        ("STATUS_OBJECT_TYPE_MISMATCH", ours::STATUS_OBJECT_TYPE_MISMATCH, f::STATUS_OBJECT_TYPE_MISMATCH),
        ("STATUS_OBJECT_NAME_NOT_FOUND", ours::STATUS_OBJECT_NAME_NOT_FOUND, f::STATUS_OBJECT_NAME_NOT_FOUND),
        ("STATUS_OBJECT_NAME_COLLISION", ours::STATUS_OBJECT_NAME_COLLISION, f::STATUS_OBJECT_NAME_COLLISION),
        ("STATUS_QUOTA_EXCEEDED", ours::STATUS_QUOTA_EXCEEDED, f::STATUS_QUOTA_EXCEEDED),
        (
            "STATUS_ALLOTTED_SPACE_EXCEEDED",
            ours::STATUS_ALLOTTED_SPACE_EXCEEDED,
            f::STATUS_ALLOTTED_SPACE_EXCEEDED,
        ),
        (
            "STATUS_INSUFFICIENT_RESOURCES",
            ours::STATUS_INSUFFICIENT_RESOURCES,
            f::STATUS_INSUFFICIENT_RESOURCES,
        ),
        ("STATUS_DEVICE_NOT_READY", ours::STATUS_DEVICE_NOT_READY, f::STATUS_DEVICE_NOT_READY),
        ("STATUS_NOT_SUPPORTED", ours::STATUS_NOT_SUPPORTED, f::STATUS_NOT_SUPPORTED),
        ("STATUS_NO_SECURITY_ON_OBJECT", ours::STATUS_NO_SECURITY_ON_OBJECT, f::STATUS_NO_SECURITY_ON_OBJECT),
        ("STATUS_INVALID_PARAMETER_1", ours::STATUS_INVALID_PARAMETER_1, f::STATUS_INVALID_PARAMETER_1),
        ("STATUS_INVALID_PARAMETER_2", ours::STATUS_INVALID_PARAMETER_2, f::STATUS_INVALID_PARAMETER_2),
        ("STATUS_INVALID_PARAMETER_3", ours::STATUS_INVALID_PARAMETER_3, f::STATUS_INVALID_PARAMETER_3),
        ("STATUS_INVALID_PARAMETER_4", ours::STATUS_INVALID_PARAMETER_4, f::STATUS_INVALID_PARAMETER_4),
        ("STATUS_INVALID_PARAMETER_5", ours::STATUS_INVALID_PARAMETER_5, f::STATUS_INVALID_PARAMETER_5),
        ("STATUS_INVALID_PARAMETER_6", ours::STATUS_INVALID_PARAMETER_6, f::STATUS_INVALID_PARAMETER_6),
        ("STATUS_EAS_NOT_SUPPORTED", ours::STATUS_EAS_NOT_SUPPORTED, f::STATUS_EAS_NOT_SUPPORTED),
        ("STATUS_CANCELLED", ours::STATUS_CANCELLED, f::STATUS_CANCELLED),
        ("STATUS_INVALID_DEVICE_STATE", ours::STATUS_INVALID_DEVICE_STATE, f::STATUS_INVALID_DEVICE_STATE),
        ("STATUS_INVALID_BUFFER_SIZE", ours::STATUS_INVALID_BUFFER_SIZE, f::STATUS_INVALID_BUFFER_SIZE),
        ("STATUS_NOT_FOUND", ours::STATUS_NOT_FOUND, f::STATUS_NOT_FOUND),
        ("STATUS_PROPSET_NOT_FOUND", ours::STATUS_PROPSET_NOT_FOUND, f::STATUS_PROPSET_NOT_FOUND),
        ("STATUS_NO_MATCH", ours::STATUS_NO_MATCH, f::STATUS_NO_MATCH),
    ];
    for &(name, a, b) in statuses {
        check(name, a as u32 as usize, b as u32 as usize);
        assert_eq!(ours::status_name(a), Some(name), "status_name of {name}");
    }

    let u32s: &[(&str, u32, u32)] = &[
        ("IOCTL_KS_PROPERTY", ours::IOCTL_KS_PROPERTY, wks::IOCTL_KS_PROPERTY),
        ("IOCTL_KS_ENABLE_EVENT", ours::IOCTL_KS_ENABLE_EVENT, wks::IOCTL_KS_ENABLE_EVENT),
        ("IOCTL_KS_DISABLE_EVENT", ours::IOCTL_KS_DISABLE_EVENT, wks::IOCTL_KS_DISABLE_EVENT),
        ("IOCTL_KS_METHOD", ours::IOCTL_KS_METHOD, wks::IOCTL_KS_METHOD),
        ("IOCTL_KS_WRITE_STREAM", ours::IOCTL_KS_WRITE_STREAM, wks::IOCTL_KS_WRITE_STREAM),
        ("IOCTL_KS_READ_STREAM", ours::IOCTL_KS_READ_STREAM, wks::IOCTL_KS_READ_STREAM),
        ("IOCTL_KS_RESET_STATE", ours::IOCTL_KS_RESET_STATE, wks::IOCTL_KS_RESET_STATE),
        ("IOCTL_KS_HANDSHAKE", ours::IOCTL_KS_HANDSHAKE, wks::IOCTL_KS_HANDSHAKE),
        ("FILE_DEVICE_KS", ours::FILE_DEVICE_KS, windows_sys::Win32::System::Ioctl::FILE_DEVICE_KS),
        ("FILE_DEVICE_SECURE_OPEN", ours::FILE_DEVICE_SECURE_OPEN, ss::FILE_DEVICE_SECURE_OPEN),
        ("METHOD_NEITHER", ours::METHOD_NEITHER, windows_sys::Win32::System::Ioctl::METHOD_NEITHER),
        ("FILE_READ_ACCESS", ours::FILE_READ_ACCESS, windows_sys::Win32::System::Ioctl::FILE_READ_ACCESS),
        ("FILE_WRITE_ACCESS", ours::FILE_WRITE_ACCESS, windows_sys::Win32::System::Ioctl::FILE_WRITE_ACCESS),
        ("IRP_MJ_CREATE", ours::IRP_MJ_CREATE.into(), ss::IRP_MJ_CREATE),
        ("IRP_MJ_CLOSE", ours::IRP_MJ_CLOSE.into(), ss::IRP_MJ_CLOSE),
        ("IRP_MJ_READ", ours::IRP_MJ_READ.into(), ss::IRP_MJ_READ),
        ("IRP_MJ_WRITE", ours::IRP_MJ_WRITE.into(), ss::IRP_MJ_WRITE),
        ("IRP_MJ_FLUSH_BUFFERS", ours::IRP_MJ_FLUSH_BUFFERS.into(), ss::IRP_MJ_FLUSH_BUFFERS),
        ("IRP_MJ_DEVICE_CONTROL", ours::IRP_MJ_DEVICE_CONTROL.into(), ss::IRP_MJ_DEVICE_CONTROL),
        (
            "IRP_MJ_INTERNAL_DEVICE_CONTROL",
            ours::IRP_MJ_INTERNAL_DEVICE_CONTROL.into(),
            ss::IRP_MJ_INTERNAL_DEVICE_CONTROL,
        ),
        ("IRP_MJ_CLEANUP", ours::IRP_MJ_CLEANUP.into(), ss::IRP_MJ_CLEANUP),
        ("IRP_MJ_QUERY_SECURITY", ours::IRP_MJ_QUERY_SECURITY.into(), ss::IRP_MJ_QUERY_SECURITY),
        ("IRP_MJ_SET_SECURITY", ours::IRP_MJ_SET_SECURITY.into(), ss::IRP_MJ_SET_SECURITY),
        ("IRP_MJ_POWER", ours::IRP_MJ_POWER.into(), ss::IRP_MJ_POWER),
        ("IRP_MJ_SYSTEM_CONTROL", ours::IRP_MJ_SYSTEM_CONTROL.into(), ss::IRP_MJ_SYSTEM_CONTROL),
        ("IRP_MJ_PNP", ours::IRP_MJ_PNP.into(), ss::IRP_MJ_PNP),
        ("IRP_MN_START_DEVICE", ours::IRP_MN_START_DEVICE.into(), ss::IRP_MN_START_DEVICE),
        (
            "IRP_MN_QUERY_REMOVE_DEVICE",
            ours::IRP_MN_QUERY_REMOVE_DEVICE.into(),
            ss::IRP_MN_QUERY_REMOVE_DEVICE,
        ),
        ("IRP_MN_REMOVE_DEVICE", ours::IRP_MN_REMOVE_DEVICE.into(), ss::IRP_MN_REMOVE_DEVICE),
        (
            "IRP_MN_CANCEL_REMOVE_DEVICE",
            ours::IRP_MN_CANCEL_REMOVE_DEVICE.into(),
            ss::IRP_MN_CANCEL_REMOVE_DEVICE,
        ),
        ("IRP_MN_STOP_DEVICE", ours::IRP_MN_STOP_DEVICE.into(), ss::IRP_MN_STOP_DEVICE),
        ("IRP_MN_SURPRISE_REMOVAL", ours::IRP_MN_SURPRISE_REMOVAL.into(), ss::IRP_MN_SURPRISE_REMOVAL),
        ("SL_PENDING_RETURNED", ours::SL_PENDING_RETURNED.into(), ss::SL_PENDING_RETURNED),
        ("SL_INVOKE_ON_CANCEL", ours::SL_INVOKE_ON_CANCEL.into(), ss::SL_INVOKE_ON_CANCEL),
        ("SL_INVOKE_ON_SUCCESS", ours::SL_INVOKE_ON_SUCCESS.into(), ss::SL_INVOKE_ON_SUCCESS),
        ("SL_INVOKE_ON_ERROR", ours::SL_INVOKE_ON_ERROR.into(), ss::SL_INVOKE_ON_ERROR),
        ("IRP_BUFFERED_IO", ours::IrpFlags::BUFFERED_IO.bits(), ss::IRP_BUFFERED_IO),
        ("IRP_DEALLOCATE_BUFFER", ours::IrpFlags::DEALLOCATE_BUFFER.bits(), ss::IRP_DEALLOCATE_BUFFER),
        ("IRP_INPUT_OPERATION", ours::IrpFlags::INPUT_OPERATION.bits(), ss::IRP_INPUT_OPERATION),
        ("IRP_NOCACHE", ours::IrpFlags::NOCACHE.bits(), ss::IRP_NOCACHE),
        ("IRP_PAGING_IO", ours::IrpFlags::PAGING_IO.bits(), ss::IRP_PAGING_IO),
        ("IRP_SYNCHRONOUS_API", ours::IrpFlags::SYNCHRONOUS_API.bits(), ss::IRP_SYNCHRONOUS_API),
        ("IRP_ASSOCIATED_IRP", ours::IrpFlags::ASSOCIATED_IRP.bits(), ss::IRP_ASSOCIATED_IRP),
        ("DO_BUFFERED_IO", ours::DeviceFlags::BUFFERED_IO.bits(), fs::DO_BUFFERED_IO),
        ("DO_EXCLUSIVE", ours::DeviceFlags::EXCLUSIVE.bits(), fs::DO_EXCLUSIVE),
        ("DO_DIRECT_IO", ours::DeviceFlags::DIRECT_IO.bits(), fs::DO_DIRECT_IO),
        ("DO_DEVICE_INITIALIZING", ours::DeviceFlags::DEVICE_INITIALIZING.bits(), fs::DO_DEVICE_INITIALIZING),
        ("DO_POWER_PAGABLE", ours::DeviceFlags::POWER_PAGABLE.bits(), fs::DO_POWER_PAGABLE),
        ("PASSIVE_LEVEL", ours::PASSIVE_LEVEL.into(), ss::PASSIVE_LEVEL),
        ("APC_LEVEL", ours::APC_LEVEL.into(), ss::APC_LEVEL),
        ("DISPATCH_LEVEL", ours::DISPATCH_LEVEL.into(), ss::DISPATCH_LEVEL),
        ("IO_TYPE_IRP", ours::IO_TYPE_IRP as u32, ss::IO_TYPE_IRP),
        ("IO_TYPE_DEVICE", ours::IO_TYPE_DEVICE as u32, ss::IO_TYPE_DEVICE),
        ("IO_TYPE_DRIVER", ours::IO_TYPE_DRIVER as u32, ss::IO_TYPE_DRIVER),
        ("IO_TYPE_FILE", ours::IO_TYPE_FILE as u32, ss::IO_TYPE_FILE),
        ("GENERIC_READ", ours::GENERIC_READ, f::GENERIC_READ),
        ("GENERIC_WRITE", ours::GENERIC_WRITE, f::GENERIC_WRITE),
        ("FILE_READ_DATA", ours::FILE_READ_DATA, windows_sys::Win32::Storage::FileSystem::FILE_READ_DATA),
        ("FILE_WRITE_DATA", ours::FILE_WRITE_DATA, windows_sys::Win32::Storage::FileSystem::FILE_WRITE_DATA),
        ("OBJ_KERNEL_HANDLE", ours::OBJ_KERNEL_HANDLE, f::OBJ_KERNEL_HANDLE),
        ("KSPROPERTY_TYPE_GET", ours::KsPropertyType::GET.bits(), wks::KSPROPERTY_TYPE_GET),
        ("KSPROPERTY_TYPE_SET", ours::KsPropertyType::SET.bits(), wks::KSPROPERTY_TYPE_SET),
        (
            "KSPROPERTY_TYPE_SETSUPPORT",
            ours::KsPropertyType::SETSUPPORT.bits(),
            wks::KSPROPERTY_TYPE_SETSUPPORT,
        ),
        (
            "KSPROPERTY_TYPE_BASICSUPPORT",
            ours::KsPropertyType::BASICSUPPORT.bits(),
            wks::KSPROPERTY_TYPE_BASICSUPPORT,
        ),
        ("KSPROPERTY_TYPE_RELATIONS", ours::KsPropertyType::RELATIONS.bits(), wks::KSPROPERTY_TYPE_RELATIONS),
        (
            "KSPROPERTY_TYPE_SERIALIZESET",
            ours::KsPropertyType::SERIALIZESET.bits(),
            wks::KSPROPERTY_TYPE_SERIALIZESET,
        ),
        (
            "KSPROPERTY_TYPE_UNSERIALIZESET",
            ours::KsPropertyType::UNSERIALIZESET.bits(),
            wks::KSPROPERTY_TYPE_UNSERIALIZESET,
        ),
        (
            "KSPROPERTY_TYPE_SERIALIZERAW",
            ours::KsPropertyType::SERIALIZERAW.bits(),
            wks::KSPROPERTY_TYPE_SERIALIZERAW,
        ),
        (
            "KSPROPERTY_TYPE_UNSERIALIZERAW",
            ours::KsPropertyType::UNSERIALIZERAW.bits(),
            wks::KSPROPERTY_TYPE_UNSERIALIZERAW,
        ),
        (
            "KSPROPERTY_TYPE_SERIALIZESIZE",
            ours::KsPropertyType::SERIALIZESIZE.bits(),
            wks::KSPROPERTY_TYPE_SERIALIZESIZE,
        ),
        (
            "KSPROPERTY_TYPE_DEFAULTVALUES",
            ours::KsPropertyType::DEFAULTVALUES.bits(),
            wks::KSPROPERTY_TYPE_DEFAULTVALUES,
        ),
        ("KSPROPERTY_TYPE_TOPOLOGY", ours::KsPropertyType::TOPOLOGY.bits(), wks::KSPROPERTY_TYPE_TOPOLOGY),
        (
            "KSPROPERTY_TYPE_GETPAYLOADSIZE",
            ours::KsPropertyType::GETPAYLOADSIZE.bits(),
            wks::KSPROPERTY_TYPE_GETPAYLOADSIZE,
        ),
        (
            "KSPROPERTY_TYPE_HIGHPRIORITY",
            ours::KsPropertyType::HIGHPRIORITY.bits(),
            wks::KSPROPERTY_TYPE_HIGHPRIORITY,
        ),
        (
            "KSPROPERTY_TYPE_FSFILTERSCOPE",
            ours::KsPropertyType::FSFILTERSCOPE.bits(),
            wks::KSPROPERTY_TYPE_FSFILTERSCOPE,
        ),
        (
            "KSPROPERTY_TYPE_COPYPAYLOAD",
            ours::KsPropertyType::COPYPAYLOAD.bits(),
            wks::KSPROPERTY_TYPE_COPYPAYLOAD,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_SPLICEPOINT",
            ours::KsStreamOptions::SPLICEPOINT.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_SPLICEPOINT,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_PREROLL",
            ours::KsStreamOptions::PREROLL.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_PREROLL,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_DATADISCONTINUITY",
            ours::KsStreamOptions::DATADISCONTINUITY.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_DATADISCONTINUITY,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_TYPECHANGED",
            ours::KsStreamOptions::TYPECHANGED.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_TYPECHANGED,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_TIMEVALID",
            ours::KsStreamOptions::TIMEVALID.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_TIMEVALID,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_TIMEDISCONTINUITY",
            ours::KsStreamOptions::TIMEDISCONTINUITY.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_TIMEDISCONTINUITY,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_FLUSHONPAUSE",
            ours::KsStreamOptions::FLUSHONPAUSE.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_FLUSHONPAUSE,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_DURATIONVALID",
            ours::KsStreamOptions::DURATIONVALID.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_DURATIONVALID,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM",
            ours::KsStreamOptions::ENDOFSTREAM.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_BUFFEREDTRANSFER",
            ours::KsStreamOptions::BUFFEREDTRANSFER.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_BUFFEREDTRANSFER,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_VRAM_DATA_TRANSFER",
            ours::KsStreamOptions::VRAM_DATA_TRANSFER.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_VRAM_DATA_TRANSFER,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_METADATA",
            ours::KsStreamOptions::METADATA.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_METADATA,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_ENDOFPHOTOSEQUENCE",
            ours::KsStreamOptions::ENDOFPHOTOSEQUENCE.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_ENDOFPHOTOSEQUENCE,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_FRAMEINFO",
            ours::KsStreamOptions::FRAMEINFO.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_FRAMEINFO,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_PERSIST_SAMPLE",
            ours::KsStreamOptions::PERSIST_SAMPLE.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_PERSIST_SAMPLE,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_SAMPLE_PERSISTED",
            ours::KsStreamOptions::SAMPLE_PERSISTED.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_SAMPLE_PERSISTED,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_SECUREBUFFERTRANSFER",
            ours::KsStreamOptions::SECUREBUFFERTRANSFER.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_SECUREBUFFERTRANSFER,
        ),
        (
            "KSSTREAM_HEADER_OPTIONSF_LOOPEDDATA",
            ours::KsStreamOptions::LOOPEDDATA.bits(),
            wks::KSSTREAM_HEADER_OPTIONSF_LOOPEDDATA,
        ),
        ("KSPROBE_STREAMREAD", ours::KsProbe::STREAMREAD.bits(), wks::KSPROBE_STREAMREAD),
        ("KSPROBE_STREAMWRITE", ours::KsProbe::STREAMWRITE.bits(), wks::KSPROBE_STREAMWRITE),
        ("KSPROBE_ALLOCATEMDL", ours::KsProbe::ALLOCATEMDL.bits(), wks::KSPROBE_ALLOCATEMDL),
        ("KSPROBE_PROBEANDLOCK", ours::KsProbe::PROBEANDLOCK.bits(), wks::KSPROBE_PROBEANDLOCK),
        ("KSPROBE_SYSTEMADDRESS", ours::KsProbe::SYSTEMADDRESS.bits(), wks::KSPROBE_SYSTEMADDRESS),
        (
            "KSPROBE_ALLOWFORMATCHANGE",
            ours::KsProbe::ALLOWFORMATCHANGE.bits(),
            wks::KSPROBE_ALLOWFORMATCHANGE,
        ),
        ("KSPROBE_MODIFY", ours::KsProbe::MODIFY.bits(), wks::KSPROBE_MODIFY),
        (
            "KSCREATE_ITEM_SECURITYCHANGED",
            ours::KsCreateItem::SECURITYCHANGED.bits(),
            wks::KSCREATE_ITEM_SECURITYCHANGED,
        ),
        ("KSCREATE_ITEM_WILDCARD", ours::KsCreateItem::WILDCARD.bits(), wks::KSCREATE_ITEM_WILDCARD),
        (
            "KSCREATE_ITEM_NOPARAMETERS",
            ours::KsCreateItem::NOPARAMETERS.bits(),
            wks::KSCREATE_ITEM_NOPARAMETERS,
        ),
        ("KSCREATE_ITEM_FREEONSTOP", ours::KsCreateItem::FREEONSTOP.bits(), wks::KSCREATE_ITEM_FREEONSTOP),
        (
            "KSDATAFORMAT_BIT_ATTRIBUTES",
            ours::KsDataFormatFlags::ATTRIBUTES.bits(),
            1 << wks::KSDATAFORMAT_BIT_ATTRIBUTES,
        ),
        (
            "KSDATAFORMAT_BIT_TEMPORAL_COMPRESSION",
            ours::KsDataFormatFlags::TEMPORAL_COMPRESSION.bits(),
            1 << wks::KSDATAFORMAT_BIT_TEMPORAL_COMPRESSION,
        ),
        (
            "KSDATARANGE_BIT_REQUIRED_ATTRIBUTES",
            ours::KsDataFormatFlags::REQUIRED_ATTRIBUTES.bits(),
            1 << wks::KSDATARANGE_BIT_REQUIRED_ATTRIBUTES,
        ),
        (
            "KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER",
            ours::KsAllocatorRequirements::INPLACE_MODIFIER.bits(),
            wks::KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER,
        ),
        (
            "KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY",
            ours::KsAllocatorRequirements::SYSTEM_MEMORY.bits(),
            wks::KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY,
        ),
        (
            "KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY",
            ours::KsAllocatorRequirements::FRAME_INTEGRITY.bits(),
            wks::KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY,
        ),
        (
            "KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE",
            ours::KsAllocatorRequirements::MUST_ALLOCATE.bits(),
            wks::KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE,
        ),
        (
            "KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY",
            ours::KsAllocatorRequirements::PREFERENCES_ONLY.bits(),
            wks::KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY,
        ),
        (
            "KSINTERFACE_STANDARD_STREAMING",
            ours::KSINTERFACE_STANDARD_STREAMING,
            wks::KSINTERFACE_STANDARD_STREAMING as u32,
        ),
        (
            "KSINTERFACE_STANDARD_LOOPED_STREAMING",
            ours::KSINTERFACE_STANDARD_LOOPED_STREAMING,
            wks::KSINTERFACE_STANDARD_LOOPED_STREAMING as u32,
        ),
        (
            "KSINTERFACE_STANDARD_CONTROL",
            ours::KSINTERFACE_STANDARD_CONTROL,
            wks::KSINTERFACE_STANDARD_CONTROL as u32,
        ),
        ("KSMEDIUM_TYPE_ANYINSTANCE", ours::KSMEDIUM_TYPE_ANYINSTANCE, wks::KSMEDIUM_TYPE_ANYINSTANCE),
        ("KSPRIORITY_LOW", ours::KSPRIORITY_LOW, wks::KSPRIORITY_LOW),
        ("KSPRIORITY_NORMAL", ours::KSPRIORITY_NORMAL, wks::KSPRIORITY_NORMAL),
        ("KSPRIORITY_HIGH", ours::KSPRIORITY_HIGH, wks::KSPRIORITY_HIGH),
        ("KSPRIORITY_EXCLUSIVE", ours::KSPRIORITY_EXCLUSIVE, wks::KSPRIORITY_EXCLUSIVE),
        ("KSPROPERTY_MEMBER_RANGES", ours::KSPROPERTY_MEMBER_RANGES, wks::KSPROPERTY_MEMBER_RANGES),
        (
            "KSPROPERTY_MEMBER_STEPPEDRANGES",
            ours::KSPROPERTY_MEMBER_STEPPEDRANGES,
            wks::KSPROPERTY_MEMBER_STEPPEDRANGES,
        ),
        ("KSPROPERTY_MEMBER_VALUES", ours::KSPROPERTY_MEMBER_VALUES, wks::KSPROPERTY_MEMBER_VALUES),
        ("WAVE_FORMAT_PCM", ours::WAVE_FORMAT_PCM.into(), windows_sys::Win32::Media::Audio::WAVE_FORMAT_PCM),
        (
            "WAVE_FORMAT_EXTENSIBLE",
            ours::WAVE_FORMAT_EXTENSIBLE.into(),
            windows_sys::Win32::Media::KernelStreaming::WAVE_FORMAT_EXTENSIBLE,
        ),
        (
            "KSPROPERTY_GENERAL_COMPONENTID",
            ours::KSPROPERTY_GENERAL_COMPONENTID,
            wks::KSPROPERTY_GENERAL_COMPONENTID as u32,
        ),
    ];
    for &(name, a, b) in u32s {
        check(name, a as usize, b as usize);
    }

    let enums: &[(&str, i32, i32)] = &[
        ("KSSTATE_STOP", ours::KSSTATE_STOP, wks::KSSTATE_STOP),
        ("KSSTATE_ACQUIRE", ours::KSSTATE_ACQUIRE, wks::KSSTATE_ACQUIRE),
        ("KSSTATE_PAUSE", ours::KSSTATE_PAUSE, wks::KSSTATE_PAUSE),
        ("KSSTATE_RUN", ours::KSSTATE_RUN, wks::KSSTATE_RUN),
        ("KSRESET_BEGIN", ours::KSRESET_BEGIN, wks::KSRESET_BEGIN),
        ("KSRESET_END", ours::KSRESET_END, wks::KSRESET_END),
        ("KSPIN_DATAFLOW_IN", ours::KSPIN_DATAFLOW_IN, wks::KSPIN_DATAFLOW_IN),
        ("KSPIN_DATAFLOW_OUT", ours::KSPIN_DATAFLOW_OUT, wks::KSPIN_DATAFLOW_OUT),
        ("KSPIN_COMMUNICATION_NONE", ours::KSPIN_COMMUNICATION_NONE, wks::KSPIN_COMMUNICATION_NONE),
        ("KSPIN_COMMUNICATION_SINK", ours::KSPIN_COMMUNICATION_SINK, wks::KSPIN_COMMUNICATION_SINK),
        ("KSPIN_COMMUNICATION_SOURCE", ours::KSPIN_COMMUNICATION_SOURCE, wks::KSPIN_COMMUNICATION_SOURCE),
        ("KSPIN_COMMUNICATION_BOTH", ours::KSPIN_COMMUNICATION_BOTH, wks::KSPIN_COMMUNICATION_BOTH),
        ("KSPIN_COMMUNICATION_BRIDGE", ours::KSPIN_COMMUNICATION_BRIDGE, wks::KSPIN_COMMUNICATION_BRIDGE),
    ];
    for &(name, a, b) in enums {
        check(name, a as u32 as usize, b as u32 as usize);
    }

    let ids: &[(&str, u32, i32)] = &[
        ("KSPROPERTY_PIN_CINSTANCES", p::CINSTANCES, wks::KSPROPERTY_PIN_CINSTANCES),
        ("KSPROPERTY_PIN_CTYPES", p::CTYPES, wks::KSPROPERTY_PIN_CTYPES),
        ("KSPROPERTY_PIN_DATAFLOW", p::DATAFLOW, wks::KSPROPERTY_PIN_DATAFLOW),
        ("KSPROPERTY_PIN_DATARANGES", p::DATARANGES, wks::KSPROPERTY_PIN_DATARANGES),
        ("KSPROPERTY_PIN_DATAINTERSECTION", p::DATAINTERSECTION, wks::KSPROPERTY_PIN_DATAINTERSECTION),
        ("KSPROPERTY_PIN_INTERFACES", p::INTERFACES, wks::KSPROPERTY_PIN_INTERFACES),
        ("KSPROPERTY_PIN_MEDIUMS", p::MEDIUMS, wks::KSPROPERTY_PIN_MEDIUMS),
        ("KSPROPERTY_PIN_COMMUNICATION", p::COMMUNICATION, wks::KSPROPERTY_PIN_COMMUNICATION),
        ("KSPROPERTY_PIN_GLOBALCINSTANCES", p::GLOBALCINSTANCES, wks::KSPROPERTY_PIN_GLOBALCINSTANCES),
        ("KSPROPERTY_PIN_NECESSARYINSTANCES", p::NECESSARYINSTANCES, wks::KSPROPERTY_PIN_NECESSARYINSTANCES),
        ("KSPROPERTY_PIN_PHYSICALCONNECTION", p::PHYSICALCONNECTION, wks::KSPROPERTY_PIN_PHYSICALCONNECTION),
        ("KSPROPERTY_PIN_CATEGORY", p::CATEGORY, wks::KSPROPERTY_PIN_CATEGORY),
        ("KSPROPERTY_PIN_NAME", p::NAME, wks::KSPROPERTY_PIN_NAME),
        (
            "KSPROPERTY_PIN_CONSTRAINEDDATARANGES",
            p::CONSTRAINEDDATARANGES,
            wks::KSPROPERTY_PIN_CONSTRAINEDDATARANGES,
        ),
        ("KSPROPERTY_PIN_PROPOSEDATAFORMAT", p::PROPOSEDATAFORMAT, wks::KSPROPERTY_PIN_PROPOSEDATAFORMAT),
        ("KSPROPERTY_PIN_PROPOSEDATAFORMAT2", p::PROPOSEDATAFORMAT2, wks::KSPROPERTY_PIN_PROPOSEDATAFORMAT2),
        ("KSPROPERTY_PIN_MODEDATAFORMATS", p::MODEDATAFORMATS, wks::KSPROPERTY_PIN_MODEDATAFORMATS),
        ("KSPROPERTY_CONNECTION_STATE", c::STATE, wks::KSPROPERTY_CONNECTION_STATE),
        ("KSPROPERTY_CONNECTION_PRIORITY", c::PRIORITY, wks::KSPROPERTY_CONNECTION_PRIORITY),
        ("KSPROPERTY_CONNECTION_DATAFORMAT", c::DATAFORMAT, wks::KSPROPERTY_CONNECTION_DATAFORMAT),
        (
            "KSPROPERTY_CONNECTION_ALLOCATORFRAMING",
            c::ALLOCATORFRAMING,
            wks::KSPROPERTY_CONNECTION_ALLOCATORFRAMING,
        ),
        (
            "KSPROPERTY_CONNECTION_PROPOSEDATAFORMAT",
            c::PROPOSEDATAFORMAT,
            wks::KSPROPERTY_CONNECTION_PROPOSEDATAFORMAT,
        ),
        (
            "KSPROPERTY_CONNECTION_ACQUIREORDERING",
            c::ACQUIREORDERING,
            wks::KSPROPERTY_CONNECTION_ACQUIREORDERING,
        ),
        (
            "KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX",
            c::ALLOCATORFRAMING_EX,
            wks::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        ),
        ("KSPROPERTY_CONNECTION_STARTAT", c::STARTAT, wks::KSPROPERTY_CONNECTION_STARTAT),
        ("KSPROPERTY_TOPOLOGY_CATEGORIES", t::CATEGORIES, wks::KSPROPERTY_TOPOLOGY_CATEGORIES),
        ("KSPROPERTY_TOPOLOGY_NODES", t::NODES, wks::KSPROPERTY_TOPOLOGY_NODES),
        ("KSPROPERTY_TOPOLOGY_CONNECTIONS", t::CONNECTIONS, wks::KSPROPERTY_TOPOLOGY_CONNECTIONS),
        ("KSPROPERTY_TOPOLOGY_NAME", t::NAME, wks::KSPROPERTY_TOPOLOGY_NAME),
    ];
    for &(name, a, b) in ids {
        check(name, a as usize, b as u32 as usize);
    }
    check("KsListEntryTail", ours::KsListEntryTail as usize, 0);
    report("constants");
}

#[test]
fn guids() {
    use windows_sys::Win32::Devices::DeviceAndDriverInstallation as di;
    let theirs: &[(&str, windows_sys::core::GUID)] = &[
        ("KSPROPSETID_Pin", wks::KSPROPSETID_Pin),
        ("KSPROPSETID_Connection", wks::KSPROPSETID_Connection),
        ("KSPROPSETID_Topology", wks::KSPROPSETID_Topology),
        ("KSPROPSETID_General", wks::KSPROPSETID_General),
        ("KSPROPSETID_Stream", wks::KSPROPSETID_Stream),
        ("KSPROPSETID_StreamInterface", wks::KSPROPSETID_StreamInterface),
        ("KSPROPTYPESETID_General", wks::KSPROPTYPESETID_General),
        ("KSINTERFACESETID_Standard", wks::KSINTERFACESETID_Standard),
        ("KSINTERFACESETID_FileIo", wks::KSINTERFACESETID_FileIo),
        ("KSMEDIUMSETID_Standard", wks::KSMEDIUMSETID_Standard),
        ("KSDATAFORMAT_SPECIFIER_NONE", wks::KSDATAFORMAT_SPECIFIER_NONE),
        ("KSDATAFORMAT_TYPE_STREAM", wks::KSDATAFORMAT_TYPE_STREAM),
        ("KSDATAFORMAT_SUBTYPE_NONE", wks::KSDATAFORMAT_SUBTYPE_NONE),
        ("KSDATAFORMAT_TYPE_AUDIO", wks::KSDATAFORMAT_TYPE_AUDIO),
        ("KSDATAFORMAT_SUBTYPE_PCM", wks::KSDATAFORMAT_SUBTYPE_PCM),
        ("KSDATAFORMAT_SPECIFIER_WAVEFORMATEX", wks::KSDATAFORMAT_SPECIFIER_WAVEFORMATEX),
        ("KSCATEGORY_DATATRANSFORM", wks::KSCATEGORY_DATATRANSFORM),
        ("KSCATEGORY_BRIDGE", wks::KSCATEGORY_BRIDGE),
        ("KSCATEGORY_RENDER", wks::KSCATEGORY_RENDER),
        ("KSCATEGORY_CAPTURE", wks::KSCATEGORY_CAPTURE),
        ("KSCATEGORY_AUDIO", wks::KSCATEGORY_AUDIO),
        ("KSNAME_Filter", wks::KSNAME_Filter),
        ("KSNAME_Pin", wks::KSNAME_Pin),
        ("KSNAME_Clock", wks::KSNAME_Clock),
        ("KSNAME_Allocator", wks::KSNAME_Allocator),
        ("KSNAME_TopologyNode", wks::KSNAME_TopologyNode),
        ("KSEVENTSETID_Connection", wks::KSEVENTSETID_Connection),
        ("KSMEMORY_TYPE_KERNEL_NONPAGED", wks::KSMEMORY_TYPE_KERNEL_NONPAGED),
        ("GUID_DEVCLASS_MEDIA", di::GUID_DEVCLASS_MEDIA),
        ("CLSID_Proxy", wks::CLSID_Proxy),
    ];
    assert_eq!(theirs.len(), ours::guids::ALL.len(), "every ksabi GUID has an oracle entry");
    for &(name, theirs) in theirs {
        let ours = ours::guids::ALL.iter().find(|(n, _)| *n == name).map(|(_, g)| *g);
        let ours = ours.unwrap_or_else(|| panic!("{name} missing from ksabi::guids::ALL"));
        // Field by field: windows-sys' own fields, not a conversion shared with ksabi.
        check(name, ours.Data1 as usize, theirs.data1 as usize);
        check(name, ours.Data2 as usize, theirs.data2 as usize);
        check(name, ours.Data3 as usize, theirs.data3 as usize);
        check(name, usize::from_ne_bytes(ours.Data4), usize::from_ne_bytes(theirs.data4));
    }
    // The create-item names are the braced text of their GUIDs, as windows-sys spells them.
    let spelled = |w: windows_sys::core::PCWSTR| -> Vec<u16> {
        // SAFETY: windows-sys' w! strings are static and NUL-terminated; reading stops at the NUL
        // (these names are 38 characters, well inside the bound of 64).
        let len = (0..64).take_while(|&i| unsafe { *w.wrapping_add(i) } != 0).count();
        // SAFETY: `len` characters precede the NUL.
        unsafe { core::slice::from_raw_parts(w, len) }.to_vec()
    };
    assert_eq!(ours::KSSTRING_Pin.to_vec(), spelled(wks::KSSTRING_Pin));
    assert_eq!(ours::KSSTRING_Filter.to_vec(), spelled(wks::KSSTRING_Filter));
    assert_eq!(ours::KSSTRING_Clock.to_vec(), spelled(wks::KSSTRING_Clock));
    assert_eq!(ours::KSSTRING_Allocator.to_vec(), spelled(wks::KSSTRING_Allocator));
    report("guids");
}

/// GUID text round trip (the parser the INF reader and the harness use).
#[test]
fn guid_text_round_trip() {
    for &(name, guid) in ours::guids::ALL {
        let text = guid.to_string();
        assert_eq!(ours::GUID::parse(&text), Some(guid), "{name}");
        assert_eq!(ours::GUID::parse(&text.to_lowercase()), Some(guid), "{name} lower case");
        assert_eq!(ours::GUID::parse(&text[1..37]), Some(guid), "{name} without braces");
    }
    assert_eq!(ours::GUID::parse("{146F1A80-4791-11D0-A5D6-28DB04C1000}"), None, "too short");
    assert_eq!(ours::GUID::parse("{146F1A80+4791-11D0-A5D6-28DB04C10000}"), None, "bad separator");
    assert_eq!(ours::GUID::parse("{146F1A80-4791-11D0-A5D6-28DB04C1000G}"), None, "bad digit");
}

/// `GUID::to_le_bytes`/`from_le_bytes` are the GUID's bytes in memory: compared with the bytes of
/// windows-sys' own `GUID` values (its struct layout, not ksabi's).
#[test]
fn guid_memory_bytes() {
    let theirs =
        [wks::KSPROPSETID_Pin, wks::KSDATAFORMAT_TYPE_AUDIO, wks::KSDATAFORMAT_SPECIFIER_WAVEFORMATEX];
    let ours_list =
        [ours::KSPROPSETID_Pin, ours::KSDATAFORMAT_TYPE_AUDIO, ours::KSDATAFORMAT_SPECIFIER_WAVEFORMATEX];
    for (theirs, ours) in theirs.iter().zip(ours_list) {
        // SAFETY: windows-sys' GUID is a 16-byte repr(C) struct of integers, readable as bytes.
        let bytes: [u8; 16] = unsafe { core::mem::transmute_copy(theirs) };
        assert_eq!(ours.to_le_bytes(), bytes);
        assert_eq!(ours::GUID::from_le_bytes(bytes), ours);
    }
}
