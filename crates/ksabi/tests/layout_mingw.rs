//! ksabi against the mingw-w64 headers: a C probe is generated from the table below, compiled
//! with `x86_64-w64-mingw32-gcc -S` (nothing runs), and every `sizeof`, `_Alignof`, `offsetof` and
//! constant it emits as a `.quad` is compared with ksabi's value.
//!
//! This is the oracle for what windows-sys lacks: the kernel-only KS types (`KSPIN_DESCRIPTOR`,
//! `KSDISPATCH_TABLE`, `KSPROPERTY_ITEM`...), the `POINTER_ALIGNMENT` parameter members of
//! `IO_STACK_LOCATION`, and constants windows-sys does not define.
//!
//! Two translation units: kernel (`ddk/wdm.h`, `ks.h`) and user (`windows.h`, `mmreg.h`, `ks.h`,
//! `ksmedia.h`), because mingw's `ksmedia.h` needs user-mode types.
//!
//! Without the cross compiler (package `gcc-mingw-w64-x86-64`), the test falls back to the reading
//! of the same headers in `../shared/docs/mingw-layout.txt` for the values it covers — except under
//! CI (`CI=true`), where a missing compiler is a failure.
#![allow(non_snake_case)]

use core::mem::{align_of, offset_of, size_of};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use ksabi as ours;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Kernel,
    User,
}

/// One value to compare: the C expression, a label, ksabi's value, and the key of the committed
/// mingw reading that has the same value (if it has it).
struct Probe {
    unit: Unit,
    c_expr: String,
    label: String,
    ours: u64,
    fallback_key: Option<String>,
}

#[derive(Default)]
struct Table(Vec<Probe>);

impl Table {
    fn push(&mut self, unit: Unit, c_expr: String, label: String, ours: usize, fallback_key: Option<String>) {
        self.0.push(Probe { unit, c_expr, label, ours: ours as u64, fallback_key });
    }
}

/// `layout!(table, Unit, RustType as "CType" { field.path, other as "c.path", ... })`: size,
/// alignment and each field's offset. `as "..."` names the C spelling where it differs.
macro_rules! layout {
    ($t:ident, $unit:expr, $ty:ty as $cty:literal { $( $f:ident $(. $r:ident)* $(as $c:literal)? ),* $(,)? }) => {{
        $t.push($unit, format!("sizeof({})", $cty), concat!("size of ", $cty).into(), size_of::<$ty>(), Some(format!("size_{}", $cty)));
        $t.push($unit, format!("_Alignof({})", $cty), concat!("align of ", $cty).into(), align_of::<$ty>(), Some(format!("align_{}", $cty)));
        $(
            let c_path: &str = layout!(@cpath $f $(. $r)* $(as $c)?);
            let fallback = (!c_path.contains('.')).then(|| format!("off_{}__{}", $cty, c_path));
            $t.push(
                $unit,
                format!("offsetof({}, {})", $cty, c_path),
                format!("offset of {}.{}", $cty, c_path),
                offset_of!($ty, $f $(. $r)*),
                fallback,
            );
        )*
    }};
    (@cpath $f:ident $(. $r:ident)* as $c:literal) => { $c };
    (@cpath $f:ident $(. $r:ident)*) => { stringify!($f $(. $r)*) };
}

/// `values!(table, Unit, { RUST_EXPR => "C_EXPR", ... })`: constants.
macro_rules! values {
    ($t:ident, $unit:expr, { $( $ours:expr => $c:literal ),* $(,)? }) => {{
        $( $t.push($unit, $c.to_string(), concat!("value of ", $c).into(), $ours as usize, None); )*
    }};
}

#[allow(clippy::too_many_lines)] // one table
fn table() -> Table {
    use Unit::{Kernel as K, User as U};
    let mut t = Table::default();

    layout!(t, K, ours::GUID as "GUID" { Data1, Data2, Data3, Data4 });
    layout!(t, K, ours::UNICODE_STRING as "UNICODE_STRING" { Length, MaximumLength, Buffer });
    layout!(t, K, ours::LIST_ENTRY as "LIST_ENTRY" { Flink, Blink });
    layout!(t, K, ours::OBJECT_ATTRIBUTES as "OBJECT_ATTRIBUTES" {
        Length, RootDirectory, ObjectName, Attributes, SecurityDescriptor, SecurityQualityOfService
    });
    layout!(t, K, ours::KEY_VALUE_PARTIAL_INFORMATION as "KEY_VALUE_PARTIAL_INFORMATION" {
        TitleIndex, Type, DataLength, Data
    });
    layout!(t, K, ours::IO_STATUS_BLOCK as "IO_STATUS_BLOCK" { Status, Information });
    layout!(t, K, ours::KEVENT as "KEVENT" { Header });
    layout!(t, K, ours::DISPATCHER_HEADER as "DISPATCHER_HEADER" { Lock, SignalState, WaitListHead });
    // mingw has the pre-Windows 8 KDPC (LIST_ENTRY link, no ProcessorHistory): same size, same
    // offsets for the members both have. windows-sys checks the current shape.
    layout!(t, K, ours::KDPC as "KDPC" {
        TargetInfoAsUlong as "Type", DpcListEntry, DeferredRoutine, DeferredContext,
        SystemArgument1, SystemArgument2, DpcData,
    });
    layout!(t, K, ours::KSPIN_LOCK as "KSPIN_LOCK" {});
    layout!(t, K, ours::MDL as "MDL" { Next, Size, MdlFlags, Process, MappedSystemVa, StartVa, ByteCount, ByteOffset });

    // IRP and DEVICE_OBJECT: the WDK aligns them to 16, mingw does not; compared separately below.
    irp_and_device_object(&mut t);

    layout!(t, K, ours::IO_STACK_LOCATION as "IO_STACK_LOCATION" {
        MajorFunction, MinorFunction, Flags, Control, Parameters,
        Parameters.Create.SecurityContext, Parameters.Create.Options, Parameters.Create.FileAttributes,
        Parameters.Create.ShareAccess, Parameters.Create.EaLength,
        Parameters.Read.Length, Parameters.Read.Key, Parameters.Read.Flags, Parameters.Read.ByteOffset,
        Parameters.Write.Length, Parameters.Write.Key, Parameters.Write.Flags, Parameters.Write.ByteOffset,
        Parameters.DeviceIoControl.OutputBufferLength, Parameters.DeviceIoControl.InputBufferLength,
        Parameters.DeviceIoControl.IoControlCode, Parameters.DeviceIoControl.Type3InputBuffer,
        Parameters.QuerySecurity.SecurityInformation, Parameters.QuerySecurity.Length,
        Parameters.Power.SystemContext, Parameters.Power.Type, Parameters.Power.State, Parameters.Power.ShutdownType,
        Parameters.Others.Argument1, Parameters.Others.Argument2, Parameters.Others.Argument3, Parameters.Others.Argument4,
        DeviceObject, FileObject, CompletionRoutine, Context,
    });
    layout!(t, K, ours::IO_SECURITY_CONTEXT as "IO_SECURITY_CONTEXT" { SecurityQos, AccessState, DesiredAccess, FullCreateOptions });
    layout!(t, K, ours::FILE_OBJECT as "FILE_OBJECT" {
        Type, Size, DeviceObject, Vpb, FsContext, FsContext2, SectionObjectPointer, PrivateCacheMap,
        FinalStatus, RelatedFileObject, LockOperation, DeletePending, ReadAccess, WriteAccess, DeleteAccess,
        SharedRead, SharedWrite, SharedDelete, Flags, FileName, CurrentByteOffset, Waiters, Busy, LastLock,
        Lock, Event, CompletionContext, IrpListLock, IrpList, FileObjectExtension,
    });
    layout!(t, K, ours::KDEVICE_QUEUE as "KDEVICE_QUEUE" { Type, Size, DeviceListHead, Lock, Busy });
    layout!(t, K, ours::WAIT_CONTEXT_BLOCK as "WAIT_CONTEXT_BLOCK" {});
    layout!(t, K, ours::KAPC as "KAPC" {});
    layout!(t, K, ours::DRIVER_EXTENSION as "DRIVER_EXTENSION" { DriverObject, AddDevice, Count, ServiceKeyName });
    layout!(t, K, ours::DRIVER_OBJECT as "DRIVER_OBJECT" {
        Type, Size, DeviceObject, Flags, DriverStart, DriverSize, DriverSection, DriverExtension, DriverName,
        HardwareDatabase, FastIoDispatch, DriverInit, DriverStartIo, DriverUnload, MajorFunction,
    });

    layout!(t, K, ours::KSIDENTIFIER as "KSIDENTIFIER" { Set, Id, Flags });
    layout!(t, K, ours::KSP_PIN as "KSP_PIN" { Property, PinId, Reserved });
    layout!(t, K, ours::KSP_NODE as "KSP_NODE" { Property, NodeId, Reserved });
    layout!(t, K, ours::KSPRIORITY as "KSPRIORITY" { PriorityClass, PrioritySubClass });
    layout!(t, K, ours::KSPIN_CONNECT as "KSPIN_CONNECT" { Interface, Medium, PinId, PinToHandle, Priority });
    layout!(t, K, ours::KSDATAFORMAT as "KSDATAFORMAT" { FormatSize, Flags, SampleSize, Reserved, MajorFormat, SubFormat, Specifier });
    layout!(t, K, ours::KSDATARANGE as "KSDATARANGE" { FormatSize, Flags, SampleSize, Reserved, MajorFormat, SubFormat, Specifier });
    layout!(t, K, ours::KSMULTIPLE_ITEM as "KSMULTIPLE_ITEM" { Size, Count });
    layout!(t, K, ours::KSATTRIBUTE as "KSATTRIBUTE" { Size, Flags, Attribute });
    layout!(t, K, ours::KSPIN_CINSTANCES as "KSPIN_CINSTANCES" { PossibleCount, CurrentCount });
    layout!(t, K, ours::KSTIME as "KSTIME" { Time, Numerator, Denominator });
    layout!(t, K, ours::KSSTREAM_HEADER as "KSSTREAM_HEADER" {
        Size, TypeSpecificFlags, PresentationTime, Duration, FrameExtent, DataUsed, Data, OptionsFlags, Reserved,
    });
    layout!(t, K, ours::KSPIN_DESCRIPTOR as "KSPIN_DESCRIPTOR" {
        InterfacesCount, Interfaces, MediumsCount, Mediums, DataRangesCount, DataRanges, DataFlow,
        Communication, Category, Name, ConstrainedDataRangesCount, ConstrainedDataRanges,
    });
    layout!(t, K, ours::KSOBJECT_CREATE_ITEM as "KSOBJECT_CREATE_ITEM" { Create, Context, ObjectClass, SecurityDescriptor, Flags });
    layout!(t, K, ours::KSDISPATCH_TABLE as "KSDISPATCH_TABLE" {
        DeviceIoControl, Read, Write, Flush, Close, QuerySecurity, SetSecurity, FastDeviceIoControl, FastRead, FastWrite,
    });
    layout!(t, K, ours::KSPROPERTY_MEMBERSHEADER as "KSPROPERTY_MEMBERSHEADER" { MembersFlags, MembersSize, MembersCount, Flags });
    layout!(t, K, ours::KSPROPERTY_MEMBERSLIST as "KSPROPERTY_MEMBERSLIST" { MembersHeader, Members });
    layout!(t, K, ours::KSPROPERTY_VALUES as "KSPROPERTY_VALUES" { PropTypeSet, MembersListCount, MembersList });
    layout!(t, K, ours::KSPROPERTY_BOUNDS_LONG as "KSPROPERTY_BOUNDS_LONG" { UnsignedMinimum, UnsignedMaximum });
    layout!(t, K, ours::KSPROPERTY_STEPPING_LONG as "KSPROPERTY_STEPPING_LONG" { SteppingDelta, Reserved, Bounds });
    layout!(t, K, ours::KSPROPERTY_DESCRIPTION as "KSPROPERTY_DESCRIPTION" {
        AccessFlags, DescriptionSize, PropTypeSet, MembersListCount, Reserved,
    });
    layout!(t, K, ours::KSPROPERTY_ITEM as "KSPROPERTY_ITEM" {
        PropertyId, GetPropertyHandler, MinProperty, MinData, SetPropertyHandler, Values, RelationsCount,
        Relations, SupportHandler, SerializedSize,
    });
    layout!(t, K, ours::KSFASTPROPERTY_ITEM as "KSFASTPROPERTY_ITEM" { PropertyId, GetPropertyHandler, SetPropertyHandler, Reserved });
    layout!(t, K, ours::KSPROPERTY_SET as "KSPROPERTY_SET" { Set, PropertiesCount, PropertyItem, FastIoCount, FastIoTable });
    layout!(t, K, ours::KSTOPOLOGY_CONNECTION as "KSTOPOLOGY_CONNECTION" { FromNode, FromNodePin, ToNode, ToNodePin });
    layout!(t, K, ours::KSTOPOLOGY as "KSTOPOLOGY" {
        CategoriesCount, Categories, TopologyNodesCount, TopologyNodes, TopologyConnectionsCount,
        TopologyConnections, TopologyNodesNames, Reserved,
    });
    layout!(t, K, ours::KSALLOCATOR_FRAMING as "KSALLOCATOR_FRAMING" { OptionsFlags, PoolType, Frames, FrameSize, FileAlignment, Reserved });
    layout!(t, K, ours::KSCOMPONENTID as "KSCOMPONENTID" { Manufacturer, Product, Component, Name, Version, Revision });

    layout!(t, U, ours::KSDATARANGE_AUDIO as "KSDATARANGE_AUDIO" {
        DataRange, MaximumChannels, MinimumBitsPerSample, MaximumBitsPerSample, MinimumSampleFrequency, MaximumSampleFrequency,
    });
    layout!(t, U, ours::WAVEFORMATEX as "WAVEFORMATEX" {
        wFormatTag, nChannels, nSamplesPerSec, nAvgBytesPerSec, nBlockAlign, wBitsPerSample, cbSize,
    });
    t.push(
        U,
        "sizeof(KSDATAFORMAT_WAVEFORMATEX)".into(),
        "size of KSDATAFORMAT_WAVEFORMATEX".into(),
        ours::KSDATAFORMAT_WAVEFORMATEX_SIZE,
        Some("size_KSDATAFORMAT_WAVEFORMATEX".into()),
    );
    t.push(
        U,
        "offsetof(KSDATAFORMAT_WAVEFORMATEX, WaveFormatEx)".into(),
        "offset of KSDATAFORMAT_WAVEFORMATEX.WaveFormatEx".into(),
        size_of::<ours::KSDATAFORMAT>(),
        None,
    );

    values!(t, K, {
        ours::MDL_MAPPED_TO_SYSTEM_VA => "MDL_MAPPED_TO_SYSTEM_VA",
        ours::MDL_PAGES_LOCKED => "MDL_PAGES_LOCKED",
        ours::MDL_SOURCE_IS_NONPAGED_POOL => "MDL_SOURCE_IS_NONPAGED_POOL",
        ours::MDL_PARTIAL => "MDL_PARTIAL",
        ours::MDL_MAPPING_CAN_FAIL => "MDL_MAPPING_CAN_FAIL",
        ours::IO_NO_INCREMENT => "IO_NO_INCREMENT",
        ours::IRP_MJ_COUNT => "IRP_MJ_MAXIMUM_FUNCTION + 1",
        ours::FILE_DEVICE_KS => "FILE_DEVICE_KS",
        ours::FILE_DEVICE_SECURE_OPEN => "FILE_DEVICE_SECURE_OPEN",
        ours::OBJ_CASE_INSENSITIVE => "OBJ_CASE_INSENSITIVE",
        ours::OBJ_KERNEL_HANDLE => "OBJ_KERNEL_HANDLE",
        ours::KEY_READ => "KEY_READ",
        ours::REG_DWORD => "REG_DWORD",
        ours::REG_SZ => "REG_SZ",
        ours::KeyValuePartialInformation => "KeyValuePartialInformation",
        ours::KSINSTANCE_INDETERMINATE => "KSINSTANCE_INDETERMINATE",
        ours::KSFILTER_NODE => "KSFILTER_NODE",
        ours::KsListEntryTail => "KsListEntryTail",
        ours::KsListEntryHead => "KsListEntryHead",
        ours::KsAcquireOnly => "KsAcquireOnly",
        ours::KsAcquireAndRemove => "KsAcquireAndRemove",
        ours::KsAcquireOnlySingleItem => "KsAcquireOnlySingleItem",
        ours::KsAcquireAndRemoveOnlySingleItem => "KsAcquireAndRemoveOnlySingleItem",
        ours::KsProbe::STREAMWRITEMODIFY.bits() => "KSPROBE_STREAMWRITEMODIFY",
        ours::KsProbe::STREAMREAD.bits() => "KSPROBE_STREAMREAD",
        ours::KsDataFormatFlags::ATTRIBUTES.bits() => "KSDATAFORMAT_ATTRIBUTES",
        ours::KsDataFormatFlags::TEMPORAL_COMPRESSION.bits() => "KSDATAFORMAT_TEMPORAL_COMPRESSION",
        ours::KsDataFormatFlags::ATTRIBUTES.bits() => "KSDATARANGE_ATTRIBUTES",
        ours::KsDataFormatFlags::REQUIRED_ATTRIBUTES.bits() => "KSDATARANGE_REQUIRED_ATTRIBUTES",
        ours::KsAllocatorRequirements::SYSTEM_MEMORY.bits() => "KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY",
        ours::KsStreamOptions::ENDOFSTREAM.bits() => "KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM",
        ours::KSSTATE_RUN => "KSSTATE_RUN",
        ours::KSRESET_END => "KSRESET_END",
        ours::KSPIN_COMMUNICATION_BOTH => "KSPIN_COMMUNICATION_BOTH",
        ours::KSPIN_DATAFLOW_OUT => "KSPIN_DATAFLOW_OUT",
        ours::IOCTL_KS_READ_STREAM => "IOCTL_KS_READ_STREAM",
        ours::IOCTL_KS_WRITE_STREAM => "IOCTL_KS_WRITE_STREAM",
        ours::IOCTL_KS_PROPERTY => "IOCTL_KS_PROPERTY",
        ours::IOCTL_KS_RESET_STATE => "IOCTL_KS_RESET_STATE",
        ours::SL_PENDING_RETURNED => "SL_PENDING_RETURNED",
        ours::DeviceFlags::POWER_PAGABLE.bits() => "DO_POWER_PAGABLE",
        ours::DeviceFlags::DEVICE_INITIALIZING.bits() => "DO_DEVICE_INITIALIZING",
    });
    values!(t, U, {
        ours::VT_UI4 => "VT_UI4",
        ours::VT_UI8 => "VT_UI8",
        ours::VT_I4 => "VT_I4",
        ours::VT_ILLEGAL => "VT_ILLEGAL",
        ours::WAVE_FORMAT_PCM => "WAVE_FORMAT_PCM",
        ours::WAVE_FORMAT_EXTENSIBLE => "WAVE_FORMAT_EXTENSIBLE",
    });
    t
}

/// IRP and `DEVICE_OBJECT`: same offsets as mingw; alignment 16 where mingw has 8, and the size
/// rounded up to that alignment.
fn irp_and_device_object(t: &mut Table) {
    use Unit::Kernel as K;
    let mut inner = Table::default();
    layout!(inner, K, ours::IRP as "IRP" {
        Type, Size, MdlAddress, Flags, AssociatedIrp, AssociatedIrp.MasterIrp, AssociatedIrp.IrpCount,
        AssociatedIrp.SystemBuffer, ThreadListEntry, IoStatus, IoStatus.Status, IoStatus.Information,
        RequestorMode, PendingReturned, StackCount, CurrentLocation, Cancel, CancelIrql, ApcEnvironment,
        AllocationFlags, UserIosb, UserEvent, Overlay, Overlay.AsynchronousParameters.UserApcRoutine,
        Overlay.AsynchronousParameters.UserApcContext, Overlay.AllocationSize, CancelRoutine, UserBuffer,
        Tail, Tail.Overlay.DriverContext, Tail.Overlay.Thread, Tail.Overlay.AuxiliaryBuffer,
        Tail.Overlay.ListEntry, Tail.Overlay.CurrentStackLocation, Tail.Overlay.OriginalFileObject,
        Tail.Apc, Tail.CompletionKey,
    });
    layout!(inner, K, ours::DEVICE_OBJECT as "DEVICE_OBJECT" {
        Type, Size, ReferenceCount, DriverObject, NextDevice, AttachedDevice, CurrentIrp, Timer, Flags,
        Characteristics, Vpb, DeviceExtension, DeviceType, StackSize, Queue, Queue.ListEntry, Queue.Wcb,
        AlignmentRequirement, DeviceQueue, Dpc, ActiveThreadCount, SecurityDescriptor, DeviceLock,
        SectorSize, Spare1, DeviceObjectExtension, Reserved,
    });
    for probe in inner.0 {
        if probe.c_expr.starts_with("_Alignof") {
            // The WDK's DECLSPEC_ALIGN(MEMORY_ALLOCATION_ALIGNMENT) is missing from mingw.
            assert_eq!(probe.ours, 16, "{}: ksabi carries the WDK's 16-byte alignment", probe.label);
            t.0.push(Probe {
                ours: 8,
                label: format!("{} (mingw, without the WDK's 16)", probe.label),
                ..probe
            });
        } else if probe.c_expr.starts_with("sizeof") {
            let c_expr = format!("(({}) + 15) / 16 * 16", probe.c_expr);
            t.0.push(Probe {
                c_expr,
                label: format!("{} rounded up to 16", probe.label),
                fallback_key: None,
                ..probe
            });
        } else {
            t.0.push(probe);
        }
    }
}

const KERNEL_PRELUDE: &str = "#include <ddk/wdm.h>\n#include <ks.h>\n#include <stddef.h>\n";
const USER_PRELUDE: &str =
    "#include <windows.h>\n#include <mmreg.h>\n#include <ks.h>\n#include <ksmedia.h>\n#include <stddef.h>\n";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Compiles one unit to assembly and reads back the `.quad` emitted for each probe.
fn compile(probes: &[&Probe], prelude: &str, dir: &Path, name: &str) -> Vec<u64> {
    let mut source = String::from(prelude);
    for (i, p) in probes.iter().enumerate() {
        writeln!(source, "const unsigned long long v{i} = (unsigned long long)({});", p.c_expr).unwrap();
    }
    let c_file = dir.join(format!("{name}.c"));
    std::fs::write(&c_file, &source).unwrap();
    let out = Command::new(MINGW_GCC).args(["-S", "-O0", "-o", "-"]).arg(&c_file).output().unwrap();
    assert!(
        out.status.success(),
        "{MINGW_GCC} failed on {}:\n{}",
        c_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let asm = String::from_utf8(out.stdout).unwrap();
    let mut values = HashMap::new();
    let mut label: Option<usize> = None;
    for line in asm.lines() {
        let line = line.trim();
        if let Some(n) = line.strip_prefix('v').and_then(|l| l.strip_suffix(':')) {
            label = n.parse().ok();
        } else if let (Some(i), Some(v)) = (label, line.strip_prefix(".quad")) {
            values.insert(i, v.trim().parse::<u64>().unwrap());
            label = None;
        } else if let (Some(i), Some("8")) = (label, line.strip_prefix(".space").map(str::trim)) {
            // A zero value is emitted as eight bytes of zeroes.
            values.insert(i, 0);
            label = None;
        }
    }
    (0..probes.len())
        .map(|i| *values.get(&i).unwrap_or_else(|| panic!("no value for {}", probes[i].c_expr)))
        .collect()
}

fn compiler_available() -> bool {
    Command::new(MINGW_GCC).arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn layouts_and_constants_match_mingw_headers() {
    let table = table();
    if !compiler_available() {
        assert!(
            std::env::var("CI").is_err(),
            "{MINGW_GCC} is required in CI (apt-get install gcc-mingw-w64-x86-64)"
        );
        fallback(&table);
        return;
    }
    let dir = std::env::temp_dir().join(format!("ksabi-mingw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    for (unit, prelude, name) in
        [(Unit::Kernel, KERNEL_PRELUDE, "kernel"), (Unit::User, USER_PRELUDE, "user")]
    {
        let probes: Vec<&Probe> = table.0.iter().filter(|p| p.unit == unit).collect();
        let theirs = compile(&probes, prelude, &dir, name);
        for (p, theirs) in probes.iter().zip(theirs) {
            if p.ours != theirs {
                failures
                    .push(format!("{}: ksabi {:#x}, mingw {theirs:#x}   [{}]", p.label, p.ours, p.c_expr));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    println!("{} values compared with mingw-w64 headers compiled by {MINGW_GCC}", table.0.len());
}

/// The committed reading of the same headers (a subset of the probes).
fn fallback(table: &Table) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/docs/mingw-layout.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no {MINGW_GCC} and no {}: {e}", path.display()));
    let reading: HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k, v.trim().parse().ok()?)))
        .collect();
    let mut compared = 0;
    for p in &table.0 {
        if let Some(theirs) = p.fallback_key.as_deref().and_then(|k| reading.get(k)) {
            assert_eq!(p.ours, *theirs, "{} (from {})", p.label, path.display());
            compared += 1;
        }
    }
    assert!(compared > 50, "the committed reading covered only {compared} values");
    println!(
        "{MINGW_GCC} not installed: compared {compared} of {} values with {}",
        table.0.len(),
        path.display()
    );
}
