//! A tiny pure-KS filter used to test kshost itself (not ksring): one pin factory (a byte-stream
//! IRP sink), properties from `KSPROPSETID_Pin`, reads that pend on a KS cancelable queue until a
//! write completes them, cancel, cleanup, close ordering.
//!
//! Written like a C KS driver: statics for the descriptor tables, `FsContext` structures that
//! start with the object header, everything through kshost's exported kernel routines.
#![allow(
    non_snake_case,
    dead_code,
    clippy::missing_safety_doc,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block,
    clippy::borrow_as_ptr,
    clippy::cast_possible_truncation
)]

use std::ffi::c_void;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicUsize, Ordering};

use ksabi::*;
use kshost::exports::*;

/// Makes a C-style static table `Sync`.
pub struct Table<T>(pub T);
// SAFETY: the tables are read-only after construction.
unsafe impl<T> Sync for Table<T> {}

pub const TINY_CATEGORY: GUID = GUID::from_u128(0x11111111_2222_3333_4444_555555555555);
pub const TINY_PIN_NAME: GUID = GUID::from_u128(0x66666666_7777_8888_9999_AAAAAAAAAAAA);
pub const TAG: u32 = u32::from_le_bytes(*b"Tiny");
/// What the last filter create saw: the device it was dispatched to, its file object's
/// `DeviceObject`, and `IoGetRelatedDeviceObject` of that file object (addresses).
pub static CREATE_DEVICES: std::sync::Mutex<(usize, usize, usize)> = std::sync::Mutex::new((0, 0, 0));
/// A client handle the test hands the driver for `bug::OB_REFERENCE_LEAK`.
pub static CLIENT_HANDLE: AtomicUsize = AtomicUsize::new(0);

pub const INF: &str = r#"
[Version]
Signature = "$WINDOWS NT$"
Class = Media
ClassGuid = {4d36e96c-e325-11ce-bfc1-08002be10318}
Provider = %P%
PnpLockdown = 1
[Manufacturer]
%P% = Tiny, NT$ARCH$
[Tiny.NT$ARCH$]
%Desc% = TinyInstall, Root\Tiny
[TinyInstall.NT]
Include = ks.inf
Needs = KS.Registration
AddReg = TinyNames
[TinyNames]
HKLM,%MediaCategories%\%PinName%,Name,,"Tiny input"
[TinyInstall.NT.Interfaces]
AddInterface = %Category%,"GLOBAL",TinyInterface
[TinyInterface]
AddReg = TinyInterface.AddReg
[TinyInterface.AddReg]
HKR,,FriendlyName,,"Tiny filter"
[TinyInstall.NT.Services]
AddService = tiny, 0x00000002, TinyService
[TinyService]
ServiceType = 1
StartType = 3
ErrorControl = 1
ServiceBinary = %13%\tiny.sys
[Strings]
P = "kshost tests"
Desc = "Tiny KS filter"
Category = "{11111111-2222-3333-4444-555555555555}"
PinName = "{66666666-7777-8888-9999-aaaaaaaaaaaa}"
MediaCategories = "SYSTEM\CurrentControlSet\Control\MediaCategories"
"#;

static GLOBAL_NAME: [u16; 6] = [b'G' as u16, b'L' as u16, b'O' as u16, b'B' as u16, b'A' as u16, b'L' as u16];

static STREAM_RANGE: Table<KSDATARANGE> = Table(KSDATARANGE {
    FormatSize: 64,
    Flags: 0,
    SampleSize: 0,
    Reserved: 0,
    MajorFormat: KSDATAFORMAT_TYPE_STREAM,
    SubFormat: KSDATAFORMAT_SUBTYPE_NONE,
    Specifier: KSDATAFORMAT_SPECIFIER_NONE,
});
static RANGES: Table<[*const KSDATARANGE; 1]> = Table([&STREAM_RANGE.0]);
pub static PINS: Table<[KSPIN_DESCRIPTOR; 1]> = Table([KSPIN_DESCRIPTOR {
    InterfacesCount: 0,
    Interfaces: std::ptr::null(),
    MediumsCount: 0,
    Mediums: std::ptr::null(),
    DataRangesCount: 1,
    DataRanges: RANGES.0.as_ptr(),
    DataFlow: KSPIN_DATAFLOW_IN,
    Communication: KSPIN_COMMUNICATION_SINK,
    Category: &TINY_PIN_NAME,
    Name: &TINY_PIN_NAME,
    ConstrainedDataRangesCount: 0,
    ConstrainedDataRanges: std::ptr::null(),
}]);

/// Pin instances currently open (the CINSTANCES property).
static PIN_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Deliberate bugs, for the verifier's tests: which one the driver commits (0: none).
pub static BREAK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The bugs [`BREAK`] selects.
pub mod bug {
    pub const COMPLETE_TWICE: u32 = 1;
    pub const COMPLETE_WITH_CANCEL_ROUTINE: u32 = 2;
    pub const COMPLETE_WHILE_QUEUED: u32 = 3;
    pub const COMPLETE_WITH_PENDING_STATUS: u32 = 4;
    pub const PENDING_NOT_MARKED: u32 = 5;
    pub const MARKED_RETURNED_OTHER: u32 = 6;
    pub const RETURN_WITHOUT_COMPLETING: u32 = 7;
    pub const STATUS_MISMATCH: u32 = 8;
    pub const NEVER_COMPLETE: u32 = 9;
    pub const INFORMATION_EXCEEDS: u32 = 10;
    pub const POOL_LEAK: u32 = 11;
    pub const POOL_DOUBLE_FREE: u32 = 12;
    pub const POOL_TAG_MISMATCH: u32 = 13;
    pub const POOL_BAD_REQUEST: u32 = 14;
    pub const PASSIVE_CALL_AT_DISPATCH: u32 = 15;
    pub const SPINLOCK_WRONG_IRQL: u32 = 16;
    pub const SPINLOCK_NOT_HELD: u32 = 17;
    pub const IRQL_NOT_RESTORED: u32 = 18;
    pub const CANCEL_LOCK_NOT_HELD: u32 = 19;
    pub const MISSING_DISPATCH_ENTRY: u32 = 20;
    pub const NO_OBJECT_HEADER: u32 = 21;
    pub const KS_HEADER_LEAK: u32 = 22;
    pub const KS_HEADER_DOUBLE_FREE: u32 = 23;
    pub const KS_QUEUE_MISUSE: u32 = 24;
    pub const DEVICE_INITIALIZING: u32 = 25;
    pub const DEVICE_DOUBLE_DELETE: u32 = 26;
    pub const UNKNOWN_IRP: u32 = 27;
    pub const FAST_IO_ROUTING: u32 = 28;
    pub const USER_BUFFER_DEREFERENCE: u32 = 29;
    pub const OB_REFERENCE_LEAK: u32 = 30;
    pub const FREE_FOREIGN_IRP: u32 = 31;
    pub const WORK_ITEM_LEAK: u32 = 32;
    pub const WAIT_FOREVER: u32 = 33;
    pub const SEND_AND_FORGET: u32 = 34;
    pub const MAP_UNLOCKED_MDL: u32 = 35;
    pub const CLOSE_INVALID_HANDLE: u32 = 36;
    pub const DELETE_ATTACHED: u32 = 37;
    /// With [`super::OWN_CANCEL_ROUTINE`]: a write completes the held read even when
    /// `IoSetCancelRoutine(NULL)` returned NULL (its cancel routine is running and completes it too).
    pub const COMPLETE_DESPITE_CANCEL: u32 = 38;
    /// With [`super::OWN_CANCEL_ROUTINE`]: a read is held without checking `Cancel` after its
    /// cancel routine is set (one cancelled just before stays held until the handle closes).
    pub const NO_CANCEL_RECHECK: u32 = 39;
    // Special pool (the process dies at the fault; run in a child).
    pub const POOL_OVERRUN: u32 = 40;
    pub const POOL_USE_AFTER_FREE: u32 = 41;
    // A spin lock acquired twice by one thread (the process stops; run in a child).
    pub const SPINLOCK_TWICE: u32 = 42;
}

fn broken(b: u32) -> bool {
    BREAK.load(Ordering::SeqCst) == b
}

static FDO: std::sync::atomic::AtomicPtr<DEVICE_OBJECT> = std::sync::atomic::AtomicPtr::new(null_mut());
static STASHED: std::sync::atomic::AtomicPtr<IRP> = std::sync::atomic::AtomicPtr::new(null_mut());

/// Reads are held by the driver itself — one at a time, with a cancel routine of its own — instead
/// of on a KS queue (the pattern of a request a driver keeps off any queue while it waits).
pub static OWN_CANCEL_ROUTINE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `IoSetCancelRoutine`: an atomic swap of the IRP's `CancelRoutine` (a WDK inline, not an export).
unsafe fn set_cancel_routine(irp: *mut IRP, routine: PDRIVER_CANCEL) -> PDRIVER_CANCEL {
    unsafe {
        let slot = &*(&raw mut (*irp).CancelRoutine).cast::<std::sync::atomic::AtomicPtr<c_void>>();
        let new = routine.map_or(null_mut(), |r| r as *mut c_void);
        let old = slot.swap(new, Ordering::SeqCst);
        (!old.is_null()).then(|| {
            std::mem::transmute::<*mut c_void, unsafe extern "system" fn(*mut DEVICE_OBJECT, *mut IRP)>(old)
        })
    }
}

fn pin_of(irp: *mut IRP) -> *mut Pin {
    unsafe { (*(*stack(irp)).FileObject).FsContext.cast::<Pin>() }
}

/// Holds a read with the driver's own cancel routine (Microsoft's pattern: set it, then check
/// `Cancel`; if the routine was taken back, the request was cancelled before it was set).
unsafe fn hold_read(irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let pin = pin_of(irp);
        let irql = KeAcquireSpinLockRaiseToDpc(&mut (*pin).lock);
        if !(*pin).held.is_null() {
            KeReleaseSpinLock(&mut (*pin).lock, irql);
            return complete(irp, STATUS_DEVICE_BUSY, 0);
        }
        (*(*irp).Tail.Overlay.CurrentStackLocation).Control |= SL_PENDING_RETURNED;
        (*pin).held = irp;
        set_cancel_routine(irp, Some(held_read_cancel));
        if (*irp).Cancel != 0 && !broken(bug::NO_CANCEL_RECHECK) && set_cancel_routine(irp, None).is_some() {
            (*pin).held = null_mut();
            KeReleaseSpinLock(&mut (*pin).lock, irql);
            complete(irp, STATUS_CANCELLED, 0);
            return STATUS_PENDING;
        }
        KeReleaseSpinLock(&mut (*pin).lock, irql);
        STATUS_PENDING
    }
}

/// The `CancelIrql` the held read's cancel routine last found.
pub static LAST_CANCEL_IRQL: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(u8::MAX);

/// The held read's cancel routine: lets go of the cancel spin lock, unlinks the read under the
/// pin's lock (a completing thread that found its cancel routine gone left it there), completes it.
unsafe extern "system" fn held_read_cancel(_device: *mut DEVICE_OBJECT, irp: *mut IRP) {
    unsafe {
        // Its context first: once the lock is let go, a (buggy) completing thread may complete it.
        let pin = pin_of(irp);
        LAST_CANCEL_IRQL.store((*irp).CancelIrql, Ordering::SeqCst);
        IoReleaseCancelSpinLock((*irp).CancelIrql);
        let irql = KeAcquireSpinLockRaiseToDpc(&mut (*pin).lock);
        if (*pin).held == irp {
            (*pin).held = null_mut();
        }
        KeReleaseSpinLock(&mut (*pin).lock, irql);
        complete(irp, STATUS_CANCELLED, 0);
    }
}

/// Takes the held read to complete it: `None` if there is none, or if its cancel routine has
/// been taken (it is running, and completes the read: left where it is for it to unlink).
unsafe fn take_held_read(pin: *mut Pin) -> Option<*mut IRP> {
    unsafe {
        let irql = KeAcquireSpinLockRaiseToDpc(&mut (*pin).lock);
        let irp = (*pin).held;
        let ours = !irp.is_null()
            && (set_cancel_routine(irp, None).is_some() || broken(bug::COMPLETE_DESPITE_CANCEL));
        if ours {
            (*pin).held = null_mut();
        }
        KeReleaseSpinLock(&mut (*pin).lock, irql);
        ours.then_some(irp)
    }
}

static FILTER_TABLE_WITHOUT_IOCTL: Table<KSDISPATCH_TABLE> = Table(KSDISPATCH_TABLE {
    DeviceIoControl: None,
    Read: Some(KsDispatchInvalidDeviceRequest),
    Write: Some(KsDispatchInvalidDeviceRequest),
    Flush: Some(KsDispatchInvalidDeviceRequest),
    Close: Some(filter_close),
    QuerySecurity: Some(KsDispatchInvalidDeviceRequest),
    SetSecurity: Some(KsDispatchInvalidDeviceRequest),
    FastDeviceIoControl: None,
    FastRead: None,
    FastWrite: None,
});

/// Pin cleanups that found requests still queued (and cancelled them).
pub static CLEANUPS_WITH_QUEUED: AtomicUsize = AtomicUsize::new(0);

/// The closes the driver saw, in order.
pub static CLOSES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

#[repr(C)]
struct DeviceExt {
    header: *mut c_void,
    lower: *mut DEVICE_OBJECT,
    link: UNICODE_STRING,
    items: [KSOBJECT_CREATE_ITEM; 1],
}

#[repr(C)]
struct Filter {
    header: *mut c_void,
    items: [KSOBJECT_CREATE_ITEM; 1],
}

#[repr(C)]
struct Pin {
    header: *mut c_void,
    queue: LIST_ENTRY,
    lock: KSPIN_LOCK,
    /// The read held with the driver's own cancel routine ([`OWN_CANCEL_ROUTINE`]), under `lock`.
    held: *mut IRP,
}

static FILTER_TABLE: Table<KSDISPATCH_TABLE> = Table(KSDISPATCH_TABLE {
    DeviceIoControl: Some(filter_ioctl),
    Read: Some(KsDispatchInvalidDeviceRequest),
    Write: Some(KsDispatchInvalidDeviceRequest),
    Flush: Some(KsDispatchInvalidDeviceRequest),
    Close: Some(filter_close),
    QuerySecurity: Some(KsDispatchInvalidDeviceRequest),
    SetSecurity: Some(KsDispatchInvalidDeviceRequest),
    FastDeviceIoControl: None,
    FastRead: None,
    FastWrite: None,
});

static PIN_TABLE: Table<KSDISPATCH_TABLE> = Table(KSDISPATCH_TABLE {
    DeviceIoControl: Some(pin_ioctl),
    Read: Some(KsDispatchInvalidDeviceRequest),
    Write: Some(KsDispatchInvalidDeviceRequest),
    Flush: Some(KsDispatchInvalidDeviceRequest),
    Close: Some(pin_close),
    QuerySecurity: Some(KsDispatchInvalidDeviceRequest),
    SetSecurity: Some(KsDispatchInvalidDeviceRequest),
    FastDeviceIoControl: None,
    FastRead: None,
    FastWrite: None,
});

static PIN_ITEMS: Table<[KSPROPERTY_ITEM; 4]> = Table([
    item(pin_property::CINSTANCES, Some(get_cinstances), 32, 8),
    item(pin_property::CTYPES, Some(pin_generic), 24, 4),
    item(pin_property::DATARANGES, Some(pin_generic), 32, 0),
    item(pin_property::NAME, Some(pin_generic), 32, 0),
]);
static PROPERTY_SETS: Table<[KSPROPERTY_SET; 1]> = Table([KSPROPERTY_SET {
    Set: &KSPROPSETID_Pin,
    PropertiesCount: 4,
    PropertyItem: PIN_ITEMS.0.as_ptr(),
    FastIoCount: 0,
    FastIoTable: std::ptr::null(),
}]);

const fn item(id: u32, get: PFNKSHANDLER, min_property: u32, min_data: u32) -> KSPROPERTY_ITEM {
    KSPROPERTY_ITEM {
        PropertyId: id,
        GetPropertyHandler: get,
        MinProperty: min_property,
        MinData: min_data,
        SetPropertyHandler: None,
        Values: std::ptr::null(),
        RelationsCount: 0,
        Relations: std::ptr::null(),
        SupportHandler: None,
        SerializedSize: 0,
    }
}

fn stack(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    unsafe { (*irp).Tail.Overlay.CurrentStackLocation }
}

unsafe fn complete(irp: *mut IRP, status: NTSTATUS, information: usize) -> NTSTATUS {
    unsafe {
        (*irp).IoStatus.Status = status;
        (*irp).IoStatus.Information = information;
        IofCompleteRequest(irp, 0);
    }
    status
}

pub unsafe extern "system" fn DriverEntry(
    driver: *mut DRIVER_OBJECT,
    _path: *mut UNICODE_STRING,
) -> NTSTATUS {
    PIN_COUNT.store(0, Ordering::SeqCst);
    unsafe {
        if broken(bug::FAST_IO_ROUTING) {
            KsSetMajorFunctionHandler(driver, 0x8000_0000 | u32::from(IRP_MJ_DEVICE_CONTROL));
        }
        for major in [IRP_MJ_CREATE, IRP_MJ_CLOSE, IRP_MJ_DEVICE_CONTROL] {
            KsSetMajorFunctionHandler(driver, u32::from(major));
        }
        (*driver).MajorFunction[IRP_MJ_PNP as usize] = Some(dispatch_pnp);
        (*driver).MajorFunction[IRP_MJ_POWER as usize] = Some(KsDefaultDispatchPower);
        (*driver).MajorFunction[IRP_MJ_CLEANUP as usize] = Some(dispatch_cleanup);
        (*driver).DriverUnload = Some(unload);
        (*(*driver).DriverExtension).AddDevice = Some(add_device);
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn unload(_driver: *mut DRIVER_OBJECT) {
    if broken(bug::DEVICE_DOUBLE_DELETE) {
        unsafe { IoDeleteDevice(FDO.load(Ordering::SeqCst)) };
    }
}

unsafe extern "system" fn add_device(driver: *mut DRIVER_OBJECT, pdo: *mut DEVICE_OBJECT) -> NTSTATUS {
    unsafe {
        let mut fdo = null_mut();
        let status =
            IoCreateDevice(driver, size_of::<DeviceExt>() as u32, null_mut(), FILE_DEVICE_KS, 0, 0, &mut fdo);
        if !nt_success(status) {
            return status;
        }
        let ext = (*fdo).DeviceExtension.cast::<DeviceExt>();
        ext.write(DeviceExt {
            header: null_mut(),
            lower: null_mut(),
            link: UNICODE_STRING { Length: 0, MaximumLength: 0, Buffer: null_mut() },
            items: [KSOBJECT_CREATE_ITEM {
                Create: Some(filter_create),
                Context: null_mut(),
                ObjectClass: UNICODE_STRING {
                    Length: 12,
                    MaximumLength: 12,
                    Buffer: GLOBAL_NAME.as_ptr().cast_mut(),
                },
                SecurityDescriptor: null_mut(),
                Flags: 0,
            }],
        });
        KsAllocateDeviceHeader(&mut (*ext).header, 1, (*ext).items.as_mut_ptr());
        (*ext).lower = IoAttachDeviceToDeviceStack(fdo, pdo);
        if broken(bug::DELETE_ATTACHED) {
            // A failed AddDevice that deletes its device without detaching it first.
            KsFreeDeviceHeader((*ext).header);
            IoDeleteDevice(fdo);
            return ksabi::STATUS_UNSUCCESSFUL;
        }
        KsSetDevicePnpAndBaseObject((*ext).header, (*ext).lower, fdo);
        let mut reference =
            UNICODE_STRING { Length: 12, MaximumLength: 12, Buffer: GLOBAL_NAME.as_ptr().cast_mut() };
        IoRegisterDeviceInterface(pdo, &TINY_CATEGORY, &mut reference, &mut (*ext).link);
        FDO.store(fdo, Ordering::SeqCst);
        if !broken(bug::DEVICE_INITIALIZING) {
            (*fdo).Flags &= !DeviceFlags::DEVICE_INITIALIZING.bits();
        }
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn dispatch_pnp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let ext = (*device).DeviceExtension.cast::<DeviceExt>();
        match (*stack(irp)).MinorFunction {
            IRP_MN_START_DEVICE => {
                IoSetDeviceInterfaceState(&mut (*ext).link, 1);
            }
            IRP_MN_REMOVE_DEVICE => {
                IoSetDeviceInterfaceState(&mut (*ext).link, 0);
                RtlFreeUnicodeString(&mut (*ext).link);
            }
            _ => {}
        }
        KsDefaultDispatchPnp(device, irp)
    }
}

unsafe extern "system" fn filter_create(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let file = (*stack(irp)).FileObject;
        *CREATE_DEVICES.lock().unwrap() =
            (device as usize, (*file).DeviceObject as usize, IoGetRelatedDeviceObject(file) as usize);
        let filter = ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<Filter>(), TAG).cast::<Filter>();
        if filter.is_null() {
            return complete(irp, STATUS_INSUFFICIENT_RESOURCES, 0);
        }
        filter.write(Filter {
            header: null_mut(),
            items: [KSOBJECT_CREATE_ITEM {
                Create: Some(pin_create),
                Context: null_mut(),
                ObjectClass: UNICODE_STRING {
                    Length: 76,
                    MaximumLength: 76,
                    Buffer: KSSTRING_Pin.as_ptr().cast_mut(),
                },
                SecurityDescriptor: null_mut(),
                Flags: 0,
            }],
        });
        if broken(bug::POOL_LEAK) {
            let _leaked = ExAllocatePool2(POOL_FLAG_NON_PAGED, 100, u32::from_le_bytes(*b"Leak"));
        }
        if broken(bug::POOL_BAD_REQUEST) {
            let _refused = ExAllocatePool2(0, 100, TAG);
        }
        let table =
            if broken(bug::MISSING_DISPATCH_ENTRY) { &FILTER_TABLE_WITHOUT_IOCTL.0 } else { &FILTER_TABLE.0 };
        let status =
            KsAllocateObjectHeader(&mut (*filter).header, 1, (*filter).items.as_mut_ptr(), irp, table);
        if !nt_success(status) {
            ExFreePoolWithTag(filter.cast(), TAG);
            return complete(irp, status, 0);
        }
        if broken(bug::NO_OBJECT_HEADER) {
            // Forgets FsContext: KS will not find the object header.
            KsFreeObjectHeader((*filter).header);
            ExFreePoolWithTag(filter.cast(), TAG);
            return complete(irp, STATUS_SUCCESS, 0);
        }
        (*(*stack(irp)).FileObject).FsContext = filter.cast();
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn filter_close(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let filter = (*(*stack(irp)).FileObject).FsContext.cast::<Filter>();
        CLOSES.lock().unwrap().push("filter");
        if !broken(bug::KS_HEADER_LEAK) {
            KsFreeObjectHeader((*filter).header);
        }
        if broken(bug::KS_HEADER_DOUBLE_FREE) {
            KsFreeObjectHeader((*filter).header);
        }
        let tag = if broken(bug::POOL_TAG_MISMATCH) { u32::from_le_bytes(*b"Oops") } else { TAG };
        ExFreePoolWithTag(filter.cast(), tag);
        if broken(bug::POOL_DOUBLE_FREE) {
            ExFreePoolWithTag(filter.cast(), TAG);
        }
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn filter_ioctl(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        if (*stack(irp)).Parameters.DeviceIoControl.IoControlCode != IOCTL_KS_PROPERTY {
            return KsDefaultDeviceIoCompletion(device, irp);
        }
        if let Some(status) = filter_ioctl_bugs(irp) {
            return status;
        }
        let status = KsPropertyHandler(irp, 1, PROPERTY_SETS.0.as_ptr());
        let information = (*irp).IoStatus.Information;
        complete(irp, status, information)
    }
}

/// The bugs that stop the process (special pool, a recursive spin lock); `true` if one ran.
unsafe fn fatal_bugs() -> bool {
    unsafe {
        let mut lock: KSPIN_LOCK = 0;
        match BREAK.load(Ordering::SeqCst) {
            bug::SPINLOCK_TWICE => {
                let irql = KeAcquireSpinLockRaiseToDpc(&raw mut lock);
                let _ = KeAcquireSpinLockRaiseToDpc(&raw mut lock);
                KeReleaseSpinLock(&raw mut lock, irql);
                true
            }
            bug::POOL_OVERRUN => {
                let block =
                    ExAllocatePool2(POOL_FLAG_NON_PAGED, 48, u32::from_le_bytes(*b"Ovr1")).cast::<u8>();
                block.add(48).write_volatile(1);
                true
            }
            bug::POOL_USE_AFTER_FREE => {
                let block =
                    ExAllocatePool2(POOL_FLAG_NON_PAGED, 48, u32::from_le_bytes(*b"Uaf1")).cast::<u8>();
                ExFreePoolWithTag(block.cast(), u32::from_le_bytes(*b"Uaf1"));
                let _ = block.read_volatile();
                true
            }
            _ => false,
        }
    }
}

/// The bugs committed while handling a filter's property request; `Some(status)` if the request
/// was (mis)handled here.
unsafe fn filter_ioctl_bugs(irp: *mut IRP) -> Option<NTSTATUS> {
    unsafe {
        if fatal_bugs() {
            return None;
        }
        let mut lock: KSPIN_LOCK = 0;
        let mut other: KSPIN_LOCK = 0;
        match BREAK.load(Ordering::SeqCst) {
            bug::COMPLETE_TWICE => {
                complete(irp, STATUS_SUCCESS, 0);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::COMPLETE_WITH_CANCEL_ROUTINE => {
                (*irp).CancelRoutine = Some(KsCancelRoutine);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::COMPLETE_WITH_PENDING_STATUS => {
                complete(irp, STATUS_PENDING, 0);
                Some(STATUS_PENDING)
            }
            bug::MARKED_RETURNED_OTHER => {
                (*(*irp).Tail.Overlay.CurrentStackLocation).Control |= SL_PENDING_RETURNED;
                complete(irp, STATUS_SUCCESS, 0);
                Some(STATUS_SUCCESS)
            }
            bug::RETURN_WITHOUT_COMPLETING => Some(STATUS_SUCCESS),
            bug::OB_REFERENCE_LEAK => {
                // References the client's own filter handle and never lets go.
                let mut object = null_mut();
                let handle = CLIENT_HANDLE.load(Ordering::SeqCst) as HANDLE;
                let status = ObReferenceObjectByHandle(
                    handle,
                    0,
                    file_object_type(),
                    UserMode,
                    &mut object,
                    null_mut(),
                );
                Some(complete(irp, status, 0))
            }
            bug::FREE_FOREIGN_IRP => {
                // Frees an IRP the I/O manager built (only IoAllocateIrp's may be freed).
                IoFreeIrp(irp);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::WORK_ITEM_LEAK => {
                let _leaked = IoAllocateWorkItem((*stack(irp)).DeviceObject);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            // Closes the handle a failed ZwOpenKey left (null): not an open handle.
            bug::CLOSE_INVALID_HANDLE => Some((ZwClose(null_mut()), complete(irp, STATUS_SUCCESS, 0)).1),
            bug::WAIT_FOREVER => {
                // Waits, without a timeout, for an event nothing will set.
                let mut event: KEVENT = std::mem::zeroed();
                KeInitializeEvent(&mut event, NotificationEvent, 0);
                KeWaitForSingleObject((&raw mut event).cast(), Executive, KernelMode, 0, null_mut());
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::STATUS_MISMATCH => {
                complete(irp, STATUS_SUCCESS, 0);
                Some(STATUS_UNSUCCESSFUL)
            }
            bug::INFORMATION_EXCEEDS => {
                // Claims more bytes than the caller's buffer holds, after KS captured the request
                // (so the I/O manager would copy them back).
                let status = KsPropertyHandler(irp, 1, PROPERTY_SETS.0.as_ptr());
                Some(complete(irp, status, 4096))
            }
            bug::PASSIVE_CALL_AT_DISPATCH => {
                let irql = KeAcquireSpinLockRaiseToDpc(&mut lock);
                let status = KsPropertyHandler(irp, 1, PROPERTY_SETS.0.as_ptr());
                KeReleaseSpinLock(&mut lock, irql);
                Some(complete(irp, status, 0))
            }
            bug::SPINLOCK_WRONG_IRQL => {
                let first = KeAcquireSpinLockRaiseToDpc(&mut lock);
                let second = KeAcquireSpinLockRaiseToDpc(&mut other);
                KeReleaseSpinLock(&mut lock, first); // back to PASSIVE while `other` is held
                KeReleaseSpinLock(&mut other, second);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::SPINLOCK_NOT_HELD => {
                KeReleaseSpinLock(&mut lock, PASSIVE_LEVEL);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::IRQL_NOT_RESTORED => {
                let _ = KeAcquireSpinLockRaiseToDpc(&mut lock);
                // Completing at DISPATCH_LEVEL is allowed; returning at it is not.
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::CANCEL_LOCK_NOT_HELD => {
                IoReleaseCancelSpinLock(PASSIVE_LEVEL);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::UNKNOWN_IRP => {
                let mut fake: IRP = std::mem::zeroed();
                IofCompleteRequest(&mut fake, 0);
                Some(complete(irp, STATUS_SUCCESS, 0))
            }
            bug::USER_BUFFER_DEREFERENCE => {
                // Reads the caller's request directly instead of the captured copy.
                let request = (*stack(irp)).Parameters.DeviceIoControl.Type3InputBuffer.cast::<u8>();
                let first = std::ptr::read_volatile(request);
                Some(complete(irp, STATUS_SUCCESS, usize::from(first)))
            }
            _ => None,
        }
    }
}

unsafe extern "system" fn pin_generic(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    unsafe { KsPinPropertyHandler(irp, request, data, 1, PINS.0.as_ptr()) }
}

unsafe extern "system" fn get_cinstances(
    irp: *mut IRP,
    request: *mut KSIDENTIFIER,
    data: *mut c_void,
) -> NTSTATUS {
    unsafe {
        if (*request.cast::<KSP_PIN>()).PinId != 0 {
            return STATUS_INVALID_PARAMETER;
        }
        data.cast::<KSPIN_CINSTANCES>().write(KSPIN_CINSTANCES {
            PossibleCount: 1,
            CurrentCount: PIN_COUNT.load(Ordering::SeqCst) as u32,
        });
        (*irp).IoStatus.Information = 8;
    }
    STATUS_SUCCESS
}

unsafe extern "system" fn pin_create(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let mut connect: *mut KSPIN_CONNECT = null_mut();
        let status = KsValidateConnectRequest(irp, 1, PINS.0.as_ptr(), &mut connect);
        if !nt_success(status) {
            return complete(irp, status, 0);
        }
        if PIN_COUNT.fetch_add(1, Ordering::SeqCst) != 0 {
            PIN_COUNT.fetch_sub(1, Ordering::SeqCst);
            return complete(irp, STATUS_DEVICE_BUSY, 0);
        }
        let pin = ExAllocatePool2(POOL_FLAG_NON_PAGED, size_of::<Pin>(), TAG).cast::<Pin>();
        pin.write(Pin {
            header: null_mut(),
            queue: LIST_ENTRY { Flink: null_mut(), Blink: null_mut() },
            lock: 0,
            held: null_mut(),
        });
        (*pin).queue = LIST_ENTRY { Flink: &mut (*pin).queue, Blink: &mut (*pin).queue };
        let status = KsAllocateObjectHeader(&mut (*pin).header, 0, null_mut(), irp, &PIN_TABLE.0);
        if !nt_success(status) {
            ExFreePoolWithTag(pin.cast(), TAG);
            PIN_COUNT.fetch_sub(1, Ordering::SeqCst);
            return complete(irp, status, 0);
        }
        (*(*stack(irp)).FileObject).FsContext = pin.cast();
        // The pin keeps its filter: the I/O manager holds no reference on the related file object.
        ObfReferenceObject((*(*stack(irp)).FileObject).RelatedFileObject.cast());
        complete(irp, STATUS_SUCCESS, 0)
    }
}

unsafe extern "system" fn pin_close(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let file = (*stack(irp)).FileObject;
        let pin = (*file).FsContext.cast::<Pin>();
        let filter_file = (*file).RelatedFileObject;
        CLOSES.lock().unwrap().push("pin");
        KsFreeObjectHeader((*pin).header);
        ExFreePoolWithTag(pin.cast(), TAG);
        PIN_COUNT.fetch_sub(1, Ordering::SeqCst);
        let status = complete(irp, STATUS_SUCCESS, 0);
        ObfDereferenceObject(filter_file.cast());
        status
    }
}

/// Cleanup of a pin: cancel what is queued (the canonical pattern: otherwise the close never comes).
unsafe extern "system" fn dispatch_cleanup(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let file = (*stack(irp)).FileObject;
        if !(*file).RelatedFileObject.is_null() {
            let pin = (*file).FsContext.cast::<Pin>();
            let head = &raw mut (*pin).queue;
            if (*pin).queue.Flink != head {
                CLEANUPS_WITH_QUEUED.fetch_add(1, Ordering::SeqCst);
            }
            KsCancelIo(&mut (*pin).queue, &mut (*pin).lock);
            if let Some(read) = take_held_read(pin) {
                complete(read, STATUS_CANCELLED, 0);
            }
        }
        complete(irp, STATUS_SUCCESS, 0)
    }
}

/// Reads pend on the queue; a write completes the oldest pending read with its data.
/// The completion routine of `bug::SEND_AND_FORGET`'s own request: keeps the IRP.
unsafe extern "system" fn keep_own_irp(
    _device: *mut DEVICE_OBJECT,
    _irp: *mut IRP,
    _context: *mut c_void,
) -> NTSTATUS {
    STATUS_MORE_PROCESSING_REQUIRED
}

unsafe extern "system" fn pin_ioctl(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    unsafe {
        let pin = (*(*stack(irp)).FileObject).FsContext.cast::<Pin>();
        match (*stack(irp)).Parameters.DeviceIoControl.IoControlCode {
            IOCTL_KS_READ_STREAM if broken(bug::SEND_AND_FORGET) && (*irp).RequestorMode == KernelMode => {
                // The driver's own request (below): left pending for good.
                (*(*irp).Tail.Overlay.CurrentStackLocation).Control |= SL_PENDING_RETURNED;
                STATUS_PENDING
            }
            IOCTL_KS_READ_STREAM => {
                if broken(bug::SEND_AND_FORGET) {
                    // Sends a request of its own to the same pin and holds no reference on the pin's
                    // file object while it is in flight.
                    let own = IoAllocateIrp((*device).StackSize, 0);
                    let next = (*own).Tail.Overlay.CurrentStackLocation.sub(1);
                    (*next).MajorFunction = IRP_MJ_DEVICE_CONTROL;
                    (*next).Parameters.DeviceIoControl.IoControlCode = IOCTL_KS_READ_STREAM;
                    (*next).FileObject = (*stack(irp)).FileObject;
                    (*next).CompletionRoutine = Some(keep_own_irp);
                    (*next).Control = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
                    (*own).RequestorMode = KernelMode;
                    IofCallDriver(device, own);
                }
                let flags = KsProbe::ALLOCATEMDL | KsProbe::PROBEANDLOCK | KsProbe::SYSTEMADDRESS;
                let status = KsProbeStreamIrp(irp, flags.bits(), 0);
                if !nt_success(status) {
                    return complete(irp, status, 0);
                }
                if broken(bug::MAP_UNLOCKED_MDL) {
                    // Maps every MDL of the chain itself, trusting that KS locked them all.
                    let mut mdl = (*irp).MdlAddress;
                    while !mdl.is_null() {
                        MmMapLockedPagesSpecifyCache(mdl, KernelMode, 1, null_mut(), 0, 16);
                        mdl = (*mdl).Next;
                    }
                }
                if broken(bug::KS_QUEUE_MISUSE) {
                    KsReleaseIrpOnCancelableQueue(irp, None);
                }
                if OWN_CANCEL_ROUTINE.load(Ordering::SeqCst) {
                    return hold_read(irp);
                }
                if broken(bug::NEVER_COMPLETE) {
                    (*(*irp).Tail.Overlay.CurrentStackLocation).Control |= SL_PENDING_RETURNED;
                    STASHED.store(irp, Ordering::SeqCst);
                    return STATUS_PENDING;
                }
                if !broken(bug::PENDING_NOT_MARKED) {
                    (*(*irp).Tail.Overlay.CurrentStackLocation).Control |= SL_PENDING_RETURNED;
                }
                KsAddIrpToCancelableQueue(&mut (*pin).queue, &mut (*pin).lock, irp, KsListEntryTail, None);
                if broken(bug::COMPLETE_WHILE_QUEUED) {
                    // Completes it although the queue still owns it.
                    let got = KsRemoveIrpFromCancelableQueue(
                        &mut (*pin).queue,
                        &mut (*pin).lock,
                        KsListEntryHead,
                        KsAcquireOnly,
                    );
                    complete(got, STATUS_SUCCESS, 0);
                }
                STATUS_PENDING
            }
            IOCTL_KS_WRITE_STREAM => {
                let flags = KsProbe::STREAMWRITE
                    | KsProbe::ALLOCATEMDL
                    | KsProbe::PROBEANDLOCK
                    | KsProbe::SYSTEMADDRESS;
                let status = KsProbeStreamIrp(irp, flags.bits(), 0);
                if !nt_success(status) {
                    return complete(irp, status, 0);
                }
                let wh = (*irp).AssociatedIrp.SystemBuffer.cast::<KSSTREAM_HEADER>();
                let used = (*wh).DataUsed as usize;
                let src = if (*irp).MdlAddress.is_null() {
                    null_mut()
                } else {
                    (*(*irp).MdlAddress).MappedSystemVa.cast::<u8>()
                };
                let read = if OWN_CANCEL_ROUTINE.load(Ordering::SeqCst) {
                    take_held_read(pin).unwrap_or(null_mut())
                } else {
                    KsRemoveIrpFromCancelableQueue(
                        &mut (*pin).queue,
                        &mut (*pin).lock,
                        KsListEntryHead,
                        KsAcquireAndRemove,
                    )
                };
                if read.is_null() {
                    return complete(irp, STATUS_DEVICE_NOT_READY, 0);
                }
                let rh = (*read).AssociatedIrp.SystemBuffer.cast::<KSSTREAM_HEADER>();
                let n = used.min((*rh).FrameExtent as usize);
                if n > 0 {
                    std::ptr::copy_nonoverlapping(src, (*(*read).MdlAddress).MappedSystemVa.cast::<u8>(), n);
                }
                (*rh).DataUsed = n as u32;
                (*rh).OptionsFlags = (*wh).OptionsFlags;
                complete(read, STATUS_SUCCESS, size_of::<KSSTREAM_HEADER>());
                complete(irp, STATUS_SUCCESS, n)
            }
            _ => KsDefaultDeviceIoCompletion(device, irp),
        }
    }
}

/// A `KSPIN_CONNECT` + byte-stream `KSDATAFORMAT`, as a client builds it.
pub fn connect_blob(pin_id: u32) -> Vec<u8> {
    let connect = KSPIN_CONNECT {
        Interface: KSPIN_INTERFACE {
            Set: KSINTERFACESETID_Standard,
            Id: KSINTERFACE_STANDARD_STREAMING,
            Flags: 0,
        },
        Medium: KSPIN_MEDIUM { Set: KSMEDIUMSETID_Standard, Id: KSMEDIUM_TYPE_ANYINSTANCE, Flags: 0 },
        PinId: pin_id,
        PinToHandle: null_mut(),
        Priority: KSPRIORITY { PriorityClass: KSPRIORITY_NORMAL, PrioritySubClass: 1 },
    };
    let format = KSDATAFORMAT {
        FormatSize: 64,
        Flags: 0,
        SampleSize: 0,
        Reserved: 0,
        MajorFormat: KSDATAFORMAT_TYPE_STREAM,
        SubFormat: KSDATAFORMAT_SUBTYPE_NONE,
        Specifier: KSDATAFORMAT_SPECIFIER_NONE,
    };
    let mut v = Vec::new();
    v.extend_from_slice(bytes_of(&connect));
    v.extend_from_slice(bytes_of(&format));
    v
}

pub fn bytes_of<T>(v: &T) -> &[u8] {
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(v).cast::<u8>(), size_of::<T>()) }
}

/// A property request (`KSP_PIN`) as bytes.
pub fn ksp_pin(set: GUID, id: u32, flags: KsPropertyType, pin: u32) -> Vec<u8> {
    let p =
        KSP_PIN { Property: KSIDENTIFIER { Set: set, Id: id, Flags: flags.bits() }, PinId: pin, Reserved: 0 };
    bytes_of(&p).to_vec()
}

/// A stream header for a buffer of `extent` bytes of which `used` are data.
pub fn stream_header(data: *mut u8, extent: u32, used: u32, options: u32) -> KSSTREAM_HEADER {
    KSSTREAM_HEADER {
        Size: size_of::<KSSTREAM_HEADER>() as u32,
        TypeSpecificFlags: 0,
        PresentationTime: KSTIME { Time: 0, Numerator: 1, Denominator: 1 },
        Duration: 0,
        FrameExtent: extent,
        DataUsed: used,
        Data: data.cast(),
        OptionsFlags: options,
        Reserved: 0,
    }
}
