//! The kernel objects kshost hands to the driver, each in a box that carries kshost's own
//! bookkeeping right after the real structure (the structure first, so a pointer to it is a
//! pointer to the box). Every box is registered on its machine, so a pointer from the driver is
//! checked before it is trusted.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize};

use ksabi::{
    DEVICE_OBJECT, DRIVER_EXTENSION, DRIVER_OBJECT, FILE_OBJECT, IO_STACK_LOCATION, IRP, LIST_ENTRY, NTSTATUS,
};

use crate::iomgr::{RefCount, Request};

/// Stack locations every IRP gets (enough for the device stacks kshost builds).
pub(crate) const MAX_STACK: usize = 8;

/// Who issued an IRP, and so what happens when it completes.
#[derive(Clone)]
pub(crate) enum Origin {
    /// A client request: the I/O manager copies back and signals the waiter.
    Client(std::sync::Arc<Request>),
    /// kshost's own request (PnP and power IRPs it sends): signal the waiter, copy nothing.
    System(std::sync::Arc<Request>),
    /// The driver's own IRP (`IoAllocateIrp`): nobody waits; the driver takes it back in a
    /// completion routine and frees or reuses it.
    Driver,
}

/// An IRP and its stack locations, followed by kshost's record of it.
#[repr(C)]
pub(crate) struct IrpBox {
    pub irp: IRP,
    pub stack: [IO_STACK_LOCATION; MAX_STACK],
    pub meta: IrpMeta,
    /// References: the dispatch call, the completion, and a canceller while it cancels.
    pub refs: RefCount,
    /// The final status, recorded by the I/O manager's completion.
    pub final_status: std::sync::atomic::AtomicI32,
}

pub(crate) struct IrpMeta {
    pub origin: Origin,
    /// Set by the first completion.
    pub completed: AtomicBool,
    /// The file object the request was issued on (one reference held while the IRP lives).
    pub file: *mut FILE_OBJECT,
    /// The client's output buffer: real address and length (for the copy-back).
    pub user_output: Option<(*mut u8, usize)>,
    /// The KS cancelable queue the IRP is on, if any.
    pub queue: AtomicPtr<LIST_ENTRY>,
    /// A user-mode request's mapped buffers, unmapped when the IRP is freed.
    pub mappings: Vec<(*const u8, u64)>,
    /// Pointer-sized values of the system buffer to put back as they were when it is copied to the
    /// caller: (offset, original) — the `Data` of captured stream headers, tagged for the driver.
    pub restore: std::sync::Mutex<Vec<(usize, usize)>>,
    /// For [`Origin::Driver`] IRPs: whether the driver holds it (allocated, or taken back by a
    /// completion routine) rather than a driver below.
    pub driver_owned: AtomicBool,
    /// For [`Origin::Driver`] IRPs: the file object it was last sent for.
    pub sent_to: AtomicPtr<FILE_OBJECT>,
}

impl Origin {
    /// The request the issuer waits on (none for the driver's own IRPs).
    pub(crate) fn request(&self) -> Option<&std::sync::Arc<Request>> {
        match self {
            Self::Client(r) | Self::System(r) => Some(r),
            Self::Driver => None,
        }
    }
}

// SAFETY: the raw pointers are objects owned by the machine; access is serialised by the I/O
// protocol (one owner of an IRP at a time) and by the machine's locks.
unsafe impl Send for IrpMeta {}
// SAFETY: as above.
unsafe impl Sync for IrpMeta {}

impl IrpBox {
    /// A new IRP with `stack_count` locations, none current yet (`CurrentLocation` one past the end,
    /// as `IoAllocateIrp` leaves it).
    pub(crate) fn new(stack_count: i8, origin: Origin, file: *mut FILE_OBJECT) -> Box<Self> {
        // SAFETY: IRP is a plain C structure of integers, raw pointers, nullable function pointers
        // and unions of those: all-zero is a valid value.
        let irp = unsafe { std::mem::zeroed::<IRP>() };
        // SAFETY: likewise for stack locations.
        let stack = unsafe { std::mem::zeroed::<[IO_STACK_LOCATION; MAX_STACK]>() };
        let mut b = Box::new(Self {
            irp,
            stack,
            meta: IrpMeta {
                origin,
                completed: AtomicBool::new(false),
                file,
                user_output: None,
                queue: AtomicPtr::new(std::ptr::null_mut()),
                mappings: Vec::new(),
                restore: Mutex::new(Vec::new()),
                driver_owned: AtomicBool::new(true),
                sent_to: AtomicPtr::new(std::ptr::null_mut()),
            },
            refs: RefCount(AtomicUsize::new(1)),
            final_status: std::sync::atomic::AtomicI32::new(0),
        });
        let count = stack_count.clamp(1, i8::try_from(MAX_STACK).unwrap_or(i8::MAX));
        b.irp.Type = ksabi::IO_TYPE_IRP;
        let locations = crate::iomgr::location_index(count) + 1;
        b.irp.Size =
            u16::try_from(std::mem::size_of::<IRP>() + std::mem::size_of::<IO_STACK_LOCATION>() * locations)
                .unwrap_or(u16::MAX);
        b.irp.StackCount = count;
        b.irp.CurrentLocation = count + 1;
        let past_end = b.stack.as_mut_ptr().wrapping_add(locations);
        b.irp.Tail.Overlay.CurrentStackLocation = past_end;
        let list = &raw mut b.irp.ThreadListEntry;
        b.irp.ThreadListEntry = LIST_ENTRY { Flink: list, Blink: list };
        b
    }

    /// The IRP and its stack for their current owner, beside a shared view of the record
    /// (see [`IrpView`]).
    ///
    /// # Safety
    /// - `irp` points to the `irp` field of an `IrpBox` kshost allocated (`issue`,
    ///   `IoAllocateIrp`) that is not freed during `'a`: it is in the machine's IRP registry and
    ///   stays there (the caller holds one of its references, or owns it and does not release it).
    /// - For `'a` the caller has the IRP to itself: no other reference to the IRP or its stack is
    ///   used, and no other thread or driver routine reads or writes them — the
    ///   caller is its current owner under the I/O protocol (the issuer before `IofCallDriver`, the
    ///   driver routine kshost runs on its behalf, the completing thread between completion
    ///   routines, the holder of the cancel spin lock for `Cancel`/`CancelIrql`), and the reference
    ///   is not used again once the IRP has been handed to driver code.
    ///
    /// The record is only shared: other threads read it at the same time ([`Self::meta_of`],
    /// [`Self::refs_of`]: a close looking for IRPs in flight, a canceller, the dispatch's checks),
    /// so no `&mut` ever covers it once the IRP is issued.
    pub(crate) unsafe fn of<'a>(irp: *mut IRP) -> IrpView<'a> {
        let b = irp.cast::<Self>();
        IrpView {
            // SAFETY: the caller's contract: a live box whose IRP and stack it has to itself; IRP is
            // the first field of the repr(C) box, so the pointer is the box's, and each field is
            // projected through it on its own.
            irp: unsafe { &mut (*b).irp },
            // SAFETY: as above, the stack.
            stack: unsafe { &mut (*b).stack },
            // SAFETY: a live box; the record is immutable once issued but for its atomics and
            // locks, so a shared reference is valid beside other threads' (as for `meta_of`).
            meta: unsafe { &(*b).meta },
            // SAFETY: a live box; an atomic, shared.
            final_status: unsafe { &(*b).final_status },
        }
    }

    /// kshost's record of an IRP, without a reference to the IRP or its stack (which the driver
    /// that holds the IRP may be writing at this moment). Once the IRP is issued its fields are
    /// immutable but for atomics and locks, so a shared reference is valid on any thread.
    ///
    /// # Safety
    /// `irp` points to the `irp` field of an `IrpBox` kshost allocated that is not freed during
    /// `'a` (in the machine's IRP registry, kept there by a reference the caller holds or by the
    /// registry's lock held for `'a`), and it has been issued (its `meta` is no longer written).
    pub(crate) unsafe fn meta_of<'a>(irp: *mut IRP) -> &'a IrpMeta {
        // SAFETY: the caller's contract; the projection goes through the raw pointer, so only
        // `meta` is referenced, never the IRP or its stack.
        unsafe { &(*irp.cast::<Self>()).meta }
    }

    /// The reference count of an IRP, without a reference to the IRP or its stack (see
    /// [`Self::meta_of`]).
    ///
    /// # Safety
    /// As for [`Self::meta_of`]: a live kshost IRP box, not freed during `'a`.
    pub(crate) unsafe fn refs_of<'a>(irp: *mut IRP) -> &'a RefCount {
        // SAFETY: the caller's contract; only the atomic `refs` field is referenced.
        unsafe { &(*irp.cast::<Self>()).refs }
    }
}

/// An IRP as its current owner uses it ([`IrpBox::of`]): the IRP and its stack mutably, kshost's
/// record and final status shared — the record's atomics and locks are read by other threads at
/// the same time, which a `&mut` to the whole box would make undefined behaviour.
pub(crate) struct IrpView<'a> {
    pub irp: &'a mut IRP,
    pub stack: &'a mut [IO_STACK_LOCATION; MAX_STACK],
    pub meta: &'a IrpMeta,
    pub final_status: &'a std::sync::atomic::AtomicI32,
}

impl IrpView<'_> {
    /// The current stack location.
    pub(crate) fn stack_mut(&mut self) -> &mut IO_STACK_LOCATION {
        let i = crate::iomgr::location_index(self.irp.CurrentLocation).min(MAX_STACK - 1);
        &mut self.stack[i]
    }

    /// `Parameters.DeviceIoControl` of the current location.
    pub(crate) fn ioctl(&mut self) -> ksabi::IO_PARAMETERS_DEVICE_IO_CONTROL {
        // SAFETY: every member of the parameter union is plain data of the same 32 bytes; KS
        // routines read this member only for device-control IRPs.
        unsafe { self.stack_mut().Parameters.DeviceIoControl }
    }

    /// `AssociatedIrp.SystemBuffer`.
    pub(crate) fn system_buffer(&self) -> *mut std::ffi::c_void {
        // SAFETY: all members of the union are pointer-sized plain data.
        unsafe { self.irp.AssociatedIrp.SystemBuffer }
    }

    /// `Tail.Overlay`, the live tail member while a driver owns the IRP.
    pub(crate) fn overlay(&mut self) -> &mut ksabi::IRP_TAIL_OVERLAY {
        // SAFETY: kshost IRPs use `Overlay` for as long as they are in the I/O path.
        unsafe { &mut self.irp.Tail.Overlay }
    }
}

impl<'a> IrpView<'a> {
    /// [`Self::stack_mut`] for the whole of `'a` (the view is used for nothing else).
    pub(crate) fn into_stack_location(self) -> &'a mut IO_STACK_LOCATION {
        let i = crate::iomgr::location_index(self.irp.CurrentLocation).min(MAX_STACK - 1);
        &mut self.stack[i]
    }

    /// [`Self::overlay`] for the whole of `'a` (the view is used for nothing else).
    pub(crate) fn into_overlay(self) -> &'a mut ksabi::IRP_TAIL_OVERLAY {
        // SAFETY: kshost IRPs use `Overlay` for as long as they are in the I/O path.
        unsafe { &mut self.irp.Tail.Overlay }
    }
}

/// A file object (an open filter or pin) and kshost's record of it.
#[repr(C)]
pub(crate) struct FileBox {
    pub fo: FILE_OBJECT,
    pub meta: FileMeta,
}

pub(crate) struct FileMeta {
    /// The characters of `FileName` (the structure points into this; never read through here).
    #[allow(dead_code)]
    pub name: Vec<u16>,
    /// References: open handles, IRPs in flight, child file objects, `ObReferenceObject`.
    pub refs: AtomicUsize,
    /// Open handles.
    pub handles: AtomicUsize,
    /// Access granted at create (`GENERIC_READ`/`GENERIC_WRITE` bits).
    pub granted: u32,
    /// IRPs issued on this file object and not yet completed (for `CancelIo`).
    pub pending: Mutex<Vec<usize>>,
    /// Set once `IRP_MJ_CLOSE` has been sent.
    pub closed: AtomicBool,
    /// Whether the create succeeded (a failed create gets no cleanup or close).
    pub created: AtomicBool,
}

impl FileBox {
    // There is no `&mut FileBox` accessor: the record is in use on other threads (references
    // counted, `pending` locked) for as long as the object lives, so kshost reads the
    // `FILE_OBJECT` through the pointer itself (`&*fo`, `(*fo).Field`) and the record through
    // `meta_of`.

    /// kshost's record of a file object, without a reference to the `FILE_OBJECT` (whose
    /// `FsContext` fields belong to the driver). Its fields are immutable after the create but for
    /// atomics and locks, so a shared reference is valid on any thread.
    ///
    /// # Safety
    /// `fo` points to the `fo` field of a `FileBox` kshost allocated that is not freed during
    /// `'a`: in the machine's file registry, kept there by a reference the caller holds or by a
    /// lock (registry, handle table) under which a close cannot free it.
    pub(crate) unsafe fn meta_of<'a>(fo: *mut FILE_OBJECT) -> &'a FileMeta {
        // SAFETY: the caller's contract; the projection goes through the raw pointer, so only
        // `meta` is referenced.
        unsafe { &(*fo.cast::<Self>()).meta }
    }
}

/// A device object and its extension.
#[repr(C)]
pub(crate) struct DeviceBox {
    pub dev: DEVICE_OBJECT,
    pub meta: DeviceMeta,
}

pub(crate) struct DeviceMeta {
    /// The extension's storage (16-byte units, so it is 16-aligned like pool).
    pub extension: Box<[u128]>,
    pub deleted: AtomicBool,
    /// The device this one is attached to (`IoAttachDeviceToDeviceStack`).
    pub lower: AtomicPtr<DEVICE_OBJECT>,
}

impl DeviceBox {
    /// The box of a device object pointer.
    ///
    /// # Safety
    /// - `dev` points to the `dev` field of a `DeviceBox` kshost allocated (`IoCreateDevice`);
    ///   device boxes live until the machine is dropped (`IoDeleteDevice` only marks them), so
    ///   any device of a live machine is valid for `'a`.
    /// - For `'a` no other reference to any part of the box is used, and no other thread or driver
    ///   routine writes the `DEVICE_OBJECT` (kshost and the driver change device objects only in
    ///   PnP-serialised paths: creation, `AddDevice`, attach, detach, delete).
    pub(crate) unsafe fn of<'a>(dev: *mut DEVICE_OBJECT) -> &'a mut Self {
        // SAFETY: the caller's contract; DEVICE_OBJECT is the first field of the repr(C) box, so
        // the pointer is the box's.
        unsafe { &mut *dev.cast::<Self>() }
    }

    /// kshost's record of a device, without a reference to the `DEVICE_OBJECT` (its fields after
    /// creation are atomics and the extension's storage, which only the driver touches, through
    /// `DeviceExtension`).
    ///
    /// # Safety
    /// `dev` points to the `dev` field of a `DeviceBox` kshost allocated (valid until the machine
    /// is dropped), and the caller does not use the returned `extension` slice.
    pub(crate) unsafe fn meta_of<'a>(dev: *mut DEVICE_OBJECT) -> &'a DeviceMeta {
        // SAFETY: the caller's contract; only `meta` is referenced.
        unsafe { &(*dev.cast::<Self>()).meta }
    }
}

/// A driver object with its extension and name.
#[repr(C)]
pub(crate) struct DriverBox {
    pub drv: DRIVER_OBJECT,
    pub ext: DRIVER_EXTENSION,
    /// The characters of `DriverName` (the structure points into this; never read through here).
    #[allow(dead_code)]
    pub name: Vec<u16>,
    /// Majors routed through KS by `KsSetMajorFunctionHandler`.
    pub ks_routed: Mutex<Vec<u8>>,
    /// `IoAllocateDriverObjectExtension` storage: client id → zeroed block (16-byte aligned).
    pub extensions: Mutex<Vec<(usize, Box<[u128]>)>>,
}

impl DriverBox {
    /// The box of a driver object pointer.
    ///
    /// # Safety
    /// - `drv` points to the `drv` field of a `DriverBox` kshost allocated
    ///   (`create_driver_object`); driver boxes live until the machine is dropped.
    /// - For `'a` no other reference to any part of the box is used, and no other thread or driver
    ///   routine writes the `DRIVER_OBJECT` (the driver fills it in `DriverEntry`; kshost changes it
    ///   only while creating it and in PnP-serialised paths).
    pub(crate) unsafe fn of<'a>(drv: *mut DRIVER_OBJECT) -> &'a mut Self {
        // SAFETY: the caller's contract; DRIVER_OBJECT is the first field of the repr(C) box, so
        // the pointer is the box's.
        unsafe { &mut *drv.cast::<Self>() }
    }
}

/// The outcome of an I/O request as the issuer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoStatus {
    /// Final `NTSTATUS` (what `OVERLAPPED.Internal` holds on Windows).
    pub status: NTSTATUS,
    /// `IoStatus.Information` (`OVERLAPPED.InternalHigh`; the bytes returned).
    pub information: usize,
}

impl IoStatus {
    /// Whether the status is a success code (warnings such as `STATUS_BUFFER_OVERFLOW` are not).
    #[must_use]
    pub fn is_success(&self) -> bool {
        ksabi::nt_success(self.status)
    }

    /// The Win32 error a Win32 caller sees (`GetLastError` after `DeviceIoControl`), 0 on success.
    #[must_use]
    pub fn win32_error(&self) -> u32 {
        crate::status_map::win32_error(self.status)
    }
}

/// `IoGetCurrentIrpStackLocation`.
///
/// # Safety
/// As for [`IrpBox::of`], for the duration of the call: a live kshost IRP the caller owns.
pub(crate) unsafe fn current_stack(irp: *mut IRP) -> *mut IO_STACK_LOCATION {
    // SAFETY: the caller's contract is `IrpBox::of`'s.
    unsafe { IrpBox::of(irp) }.overlay().CurrentStackLocation
}
