//! The driver's objects at `FileObject->FsContext` (a filter or a pin), with their lifetime in
//! the types: an object is found from a request on its file object ([`super::irp::Irp::object`],
//! borrowed from the request), freed only by the close of that file object ([`close`]), and what
//! it holds on other objects ([`FileRef`]) is let go with it, after the close has completed.
//! A filter and a pin are told apart by a tag that follows the KS object header (which KS
//! requires to be the first field).

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::{NonNull, null_mut};

use ksabi::{
    FILE_OBJECT, KSDISPATCH_TABLE, KSOBJECT_CREATE_ITEM, NTSTATUS, PDRIVER_DISPATCH,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, nt_success,
};

use super::irp::Irp;
use super::nt::{self, OwnedIrp};
use super::pool::PoolBox;
use super::stream::StreamQueue;
use crate::filter::Filter;
use crate::pin::Pin;
use crate::{ids, sys};

/// An object the driver hangs on a file object.
///
/// # Safety
/// `Self` is `repr(C)` with an [`ObjectPrefix`] as its first field, which `prefix` and
/// `prefix_mut` return, and an `ObjectPrefix` whose `kind` is [`Self::KIND`] is always the start
/// of a `Self` allocated in pool with [`Self::TAG`].
pub unsafe trait FsObject: Sized {
    /// Its pool tag.
    const TAG: u32;
    /// Its `ObjectPrefix::kind`.
    const KIND: u32;

    /// Its first field.
    fn prefix(&self) -> &ObjectPrefix;

    /// Its first field, to set.
    fn prefix_mut(&mut self) -> &mut ObjectPrefix;

    /// The create items of its KS object header (the objects created under it), which live in
    /// the object itself.
    fn create_items(&mut self) -> &mut [KSOBJECT_CREATE_ITEM] {
        &mut []
    }

    /// Calls `each` with each of its request queues, whose list heads point at themselves:
    /// [`create`] initialises them at the object's final address.
    fn queues(&self, each: &mut dyn FnMut(&StreamQueue)) {
        let _ = each;
    }
}

/// `"KsFl"`: the object is a [`Filter`].
pub const KIND_FILTER: u32 = u32::from_le_bytes(*b"KsFl");
/// `"KsPn"`: the object is a [`Pin`].
pub const KIND_PIN: u32 = u32::from_le_bytes(*b"KsPn");

/// The first fields of every object the driver hangs on a file object.
#[repr(C)]
pub struct ObjectPrefix {
    /// `KSOBJECT_HEADER`, allocated by `KsAllocateObjectHeader`; first, as KS requires.
    pub header: *mut c_void,
    /// [`KIND_FILTER`] or [`KIND_PIN`].
    pub kind: u32,
}

// SAFETY: the header pointer is KS' (allocated and freed by it); the driver only hands it back
// to KS. The tag is plain data.
unsafe impl Send for ObjectPrefix {}
// SAFETY: as above.
unsafe impl Sync for ObjectPrefix {}

/// An object's create items (the objects created under it): KS reads them through the object
/// header; the driver writes them only before the object is created.
#[repr(transparent)]
pub struct CreateItems<const N: usize>(pub [KSOBJECT_CREATE_ITEM; N]);

// SAFETY: written before the object (and its header) exist, then only read — by KS; the raw
// pointers are to static names and dispatch routines.
unsafe impl<const N: usize> Send for CreateItems<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> Sync for CreateItems<N> {}

/// A driver object found at a file object.
pub enum Object<'a> {
    /// A filter instance.
    Filter(&'a Filter),
    /// A pin instance.
    Pin(&'a Pin),
}

/// A file object opened on one of this driver's devices, alive for `'a`: its `FsContext` is the
/// driver's (one of its objects, or null), set only by [`create`] and cleared by [`close`].
#[derive(Clone, Copy)]
pub struct File<'a> {
    raw: NonNull<FILE_OBJECT>,
    life: PhantomData<&'a FILE_OBJECT>,
}

impl<'a> File<'a> {
    /// # Safety
    /// `raw` is a file object opened on one of this driver's devices, and stays allocated for
    /// `'a`; the driver's object at its `FsContext` is freed only by the close of that file object,
    /// which does not come within `'a` (a request on it is outstanding, or a reference is held).
    pub(super) unsafe fn new(raw: NonNull<FILE_OBJECT>) -> Self {
        Self { raw, life: PhantomData }
    }

    /// `FsContext`.
    fn context(self) -> *mut c_void {
        // SAFETY: a file object alive for `'a`; the driver alone writes this field.
        unsafe { (*self.raw.as_ptr()).FsContext }
    }

    /// Hangs `context` at the file object (`FsContext`: a create's object, or null at its close).
    fn set_context(self, context: *mut c_void) {
        // SAFETY: as above; only a create or a close of this file object calls it, which nothing
        // else on the file object runs beside.
        unsafe { (*self.raw.as_ptr()).FsContext = context };
    }

    /// The `T` at the file object, if that is what it holds.
    pub fn object_of<T: FsObject>(self) -> Option<&'a T> {
        // SAFETY: a `T` (`object_ptr`), alive for `'a` (see `new`); shared only.
        self.object_ptr::<T>().map(|object| unsafe { object.as_ref() })
    }

    /// `FsContext` as a `T`, if that is what it holds: the pointer [`create`] put there (with the
    /// rights of the pool block it gave up, which [`take`] takes back).
    fn object_ptr<T: FsObject>(self) -> Option<NonNull<T>> {
        let prefix = NonNull::new(self.context().cast::<ObjectPrefix>())?;
        // SAFETY: the driver stores only objects that start with an `ObjectPrefix` at `FsContext`,
        // alive for `'a` (see `new`); one field is read.
        let kind = unsafe { (*prefix.as_ptr()).kind };
        (kind == T::KIND).then(|| prefix.cast())
    }

    /// The driver's object at the file object, if it has one.
    pub fn object(self) -> Option<Object<'a>> {
        self.object_of::<Filter>().map(Object::Filter).or_else(|| self.object_of::<Pin>().map(Object::Pin))
    }

    /// The parent (`RelatedFileObject`) of a create's file object: opened on the same device
    /// (the I/O manager parses a relative open on the parent's device), alive while the create is.
    pub(super) fn related(self) -> Option<File<'a>> {
        // SAFETY: a file object alive for `'a`.
        let parent = NonNull::new(unsafe { (*self.raw.as_ptr()).RelatedFileObject })?;
        // SAFETY: see above: ours, and the create keeps it alive.
        Some(unsafe { File::new(parent) })
    }

    /// The length of a create's parameter as KS computes it ([`nt::create_parameter_len`]).
    pub fn create_parameter_len(self, class_units: usize) -> usize {
        // SAFETY: a file object alive for `'a`; its name is set at create and not changed after.
        let name = unsafe { (*self.raw.as_ptr()).FileName };
        let bytes = usize::from(name.Length);
        // SAFETY: at least one character is there (`Length >= 2`).
        let first = (bytes >= 2 && !name.Buffer.is_null()).then(|| unsafe { *name.Buffer });
        nt::create_parameter_len(bytes, first, class_units)
    }

    fn as_ptr(self) -> *mut FILE_OBJECT {
        self.raw.as_ptr()
    }
}

/// The file object of a request to one of this driver's devices: one of its own, alive while the
/// request is outstanding (the borrow of `irp`).
pub fn file_of(irp: &OwnedIrp) -> Option<File<'_>> {
    let file = NonNull::new(irp.file_object())?;
    // SAFETY: an `OwnedIrp` is a request sent to one of the driver's devices, and the I/O manager
    // holds its file object until the request completes.
    Some(unsafe { File::new(file) })
}

impl Irp {
    /// The request's file object (see [`file_of`]).
    pub fn file(&self) -> Option<File<'_>> {
        file_of(self.owned())
    }
}

/// A dispatch table with the object's own device-control and close routines; every other routed
/// major is refused (`KsDispatchInvalidDeviceRequest`) and there is no fast I/O.
pub const fn dispatch_table(device_control: PDRIVER_DISPATCH, close: PDRIVER_DISPATCH) -> KSDISPATCH_TABLE {
    KSDISPATCH_TABLE {
        DeviceIoControl: device_control,
        Read: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        Write: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        Flush: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        Close: close,
        QuerySecurity: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        SetSecurity: Some(crate::sys::KsDispatchInvalidDeviceRequest),
        FastDeviceIoControl: None,
        FastRead: None,
        FastWrite: None,
    }
}

// SAFETY: `Pin` is `repr(C)` with its `ObjectPrefix` first (checked below); only `pin.rs` makes
// `KIND_PIN` objects, in pool blocks tagged `TAG_PIN`.
unsafe impl FsObject for Pin {
    const TAG: u32 = ids::TAG_PIN;
    const KIND: u32 = KIND_PIN;

    fn prefix(&self) -> &ObjectPrefix {
        &self.prefix
    }

    fn prefix_mut(&mut self) -> &mut ObjectPrefix {
        &mut self.prefix
    }
}

// SAFETY: as for `Pin`: `filter.rs` makes `KIND_FILTER` objects, tagged `TAG_FILTER`.
unsafe impl FsObject for Filter {
    const TAG: u32 = ids::TAG_FILTER;
    const KIND: u32 = KIND_FILTER;

    fn prefix(&self) -> &ObjectPrefix {
        &self.prefix
    }

    fn prefix_mut(&mut self) -> &mut ObjectPrefix {
        &mut self.prefix
    }

    fn create_items(&mut self) -> &mut [KSOBJECT_CREATE_ITEM] {
        &mut self.create_items.0
    }

    fn queues(&self, each: &mut dyn FnMut(&StreamQueue)) {
        each(&self.writes);
        each(&self.reads);
    }
}

const _: () = assert!(core::mem::offset_of!(Pin, prefix) == 0 && core::mem::offset_of!(Filter, prefix) == 0);

/// Allocates `value` in non-paged pool, sets up its queues, gives it a KS object header (its
/// create items, `dispatch` for its requests) and hangs it at the create IRP's file object, where KS and [`Irp::object`]
/// find it. On failure `value` is dropped (and what it held let go).
///
/// # Errors
/// `STATUS_INSUFFICIENT_RESOURCES`, or what `KsAllocateObjectHeader` returned.
pub fn create<T: FsObject>(irp: &Irp, value: T, dispatch: &'static KSDISPATCH_TABLE) -> Result<(), NTSTATUS> {
    let Some(file) = irp.file() else {
        return Err(STATUS_INVALID_PARAMETER);
    };
    let mut object = PoolBox::new(T::TAG, value).ok_or(STATUS_INSUFFICIENT_RESOURCES)?;
    object.queues(&mut |queue| {
        // SAFETY: at its final address (a pool block: it does not move), not used by anyone yet.
        unsafe { queue.init() };
    });
    let items = object.create_items();
    #[allow(clippy::cast_possible_truncation)] // a few items
    let (count, items) = (items.len() as u32, items.as_mut_ptr());
    let header = &raw mut object.prefix_mut().header;
    // SAFETY: the header slot of our object (first in it: `FsObject`); the create items live in
    // it and the dispatch table is static, both as long as the header (freed at the close, before
    // the object); the create IRP we own. On failure the object is dropped and freed.
    let status = unsafe { sys::KsAllocateObjectHeader(header, count, items, irp.as_raw(), dispatch) };
    if !nt_success(status) {
        return Err(status);
    }
    // KS finds the object header first in FsContext; the block is freed by the close ([`take`]).
    file.set_context(PoolBox::into_raw(object).as_ptr().cast());
    Ok(())
}

/// `IRP_MJ_CLOSE` of an object's file object — the last request it gets: runs `last_use` on the
/// object, frees it ([`take`]), completes the IRP, and only then drops what the object held (a
/// [`FileRef`]'s dereference may close another object, e.g. a pin's filter).
/// `STATUS_INVALID_PARAMETER` if the file object holds no `T`.
pub fn close<T: FsObject>(irp: Irp, last_use: impl FnOnce(&T)) -> NTSTATUS {
    let Some((file, object)) = irp.file().and_then(|file| Some((file, file.object_ptr::<T>()?))) else {
        return irp.complete(STATUS_INVALID_PARAMETER, 0);
    };
    // SAFETY: the `T` at the close IRP's file object (`object_ptr`), alive until `take` below;
    // shared only, for the call.
    last_use(unsafe { object.as_ref() });
    // SAFETY: the object of the close IRP's file object, and the close is the last request on
    // it: nothing else refers to it (`last_use`'s borrow has ended).
    let value = unsafe { take(file, object) };
    let status = irp.complete(STATUS_SUCCESS, 0);
    drop(value);
    status
}

/// Undoes a create whose object is already at the file object but whose connection is then
/// refused: frees the object and drops what it held; the caller completes the create.
pub fn abandon<T: FsObject>(irp: &Irp) {
    if let Some(file) = irp.file()
        && let Some(object) = file.object_ptr::<T>()
    {
        // SAFETY: made by this create, not yet known to anyone else (the create has not completed).
        drop(unsafe { take(file, object) });
    }
}

/// Takes the object back from its file object: frees its KS object header and clears `FsContext`;
/// returns the object, still in its pool block, which is dropped and freed when the caller drops
/// it (after completing the close: its fields' drops may close other objects).
///
/// # Safety
/// `object` is the `T` at `file`, as [`File::object_ptr`] read it (the pointer [`create`] gave
/// up), which nothing else refers to any more (its create or close runs).
unsafe fn take<T: FsObject>(file: File<'_>, object: NonNull<T>) -> PoolBox<T> {
    // SAFETY: the caller's promise: the block `create` gave up, taken back once.
    let object = unsafe { PoolBox::from_raw(object, T::TAG) };
    // SAFETY: allocated at the object's create; freed once, here.
    unsafe { sys::KsFreeObjectHeader(object.prefix().header) };
    // The object goes away now.
    file.set_context(null_mut());
    object
}

/// A reference on a file object (`ObfReferenceObject`), dropped with the value
/// (`ObfDereferenceObject`, at `PASSIVE_LEVEL`: the last reference sends the file object's
/// close inline).
pub struct FileRef {
    file: NonNull<FILE_OBJECT>,
}

// SAFETY: a referenced kernel object: any thread may drop the reference.
unsafe impl Send for FileRef {}
// SAFETY: as above; `&FileRef` gives no access.
unsafe impl Sync for FileRef {}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: the reference taken when the value was made, dropped once.
        unsafe { sys::ObfDereferenceObject(self.file.as_ptr().cast()) };
    }
}

impl FileRef {
    /// The driver's object at the file object, which lives at least as long as this reference
    /// (the object is freed at the file object's close, which comes after its last reference).
    pub fn object(&self) -> Option<Object<'_>> {
        // SAFETY: a referenced file object; one of this driver's (every `FileRef` is made from a
        // request to the driver's device), so its `FsContext` holds one of its objects or none.
        unsafe { File::new(self.file) }.object()
    }
}

/// A reference on a file object that holds a `T`: the `T` lives at least as long (it is freed at
/// the file object's close, which comes after the last reference).
pub struct Held<T: FsObject> {
    object: NonNull<T>,
    _file: FileRef,
}

// SAFETY: shares a `&T` across threads (`T: Sync`); the reference may be dropped on any thread.
unsafe impl<T: FsObject + Sync> Send for Held<T> {}
// SAFETY: as above.
unsafe impl<T: FsObject + Sync> Sync for Held<T> {}

impl<T: FsObject> Held<T> {
    /// The object.
    pub fn get(&self) -> &T {
        // SAFETY: found at the referenced file object when `self` was made; alive as said above.
        unsafe { self.object.as_ref() }
    }
}

impl Irp {
    /// A reference on the parent (`RelatedFileObject`) of a create request's file object, if it
    /// holds a `T` — a pin's filter: the I/O manager keeps no reference past the create.
    pub fn hold_parent<T: FsObject>(&self) -> Option<Held<T>> {
        let parent = self.file()?.related()?;
        let object = NonNull::from(parent.object_of::<T>()?);
        Some(Held { object, _file: FileRef::new(parent) })
    }

    /// A reference on the request's file object, which keeps its object (a pin, a filter) alive
    /// past the request's completion.
    pub fn reference_file(&self) -> Option<FileRef> {
        Some(FileRef::new(self.file()?))
    }
}

impl FileRef {
    /// Takes a reference on `file` (one of the driver's).
    fn new(file: File<'_>) -> Self {
        // SAFETY: a valid file object; the reference is dropped with the `FileRef`.
        unsafe { sys::ObfReferenceObject(file.as_ptr().cast()) };
        Self { file: file.raw }
    }
}
