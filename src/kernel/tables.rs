//! The driver's static KS tables (descriptors, property sets) as Rust statics: C-style tables of
//! pointers to other statics, which Rust does not let a `static` hold without a promise.

use core::ffi::c_void;
use core::ptr::null;

use ksabi::{IRP, KSIDENTIFIER, KSPROPERTY_ITEM, KSPROPERTY_VALUES, NTSTATUS, PFNKSHANDLER};

/// Makes a C-style table of pointers `Sync`: these statics are never written.
#[repr(transparent)]
pub struct Table<T>(pub T);

// SAFETY: read-only after compilation: `T: Copy` rules out interior mutability (`UnsafeCell` is
// not `Copy`), and the raw pointers inside point at other such statics.
unsafe impl<T: Copy> Sync for Table<T> {}

/// A raw property handler, as [`crate::kernel::property::property_handlers`] makes them.
pub type Handler = unsafe extern "system" fn(*mut IRP, *mut KSIDENTIFIER, *mut c_void) -> NTSTATUS;

/// A `KSPROPERTY_ITEM`: property `id` with its handlers, minimum request and value sizes, and
/// the values (ranges, defaults) `KSPROPERTY_TYPE_BASICSUPPORT` reports, if any.
#[allow(clippy::cast_possible_truncation)] // structure sizes
#[must_use]
pub const fn property_item(
    id: u32,
    get: Option<Handler>,
    set: Option<Handler>,
    min_property: usize,
    min_data: usize,
    values: Option<&'static Table<KSPROPERTY_VALUES>>,
) -> KSPROPERTY_ITEM {
    let get: PFNKSHANDLER = get;
    let values: *const KSPROPERTY_VALUES = match values {
        Some(v) => &raw const v.0,
        None => null(),
    };
    KSPROPERTY_ITEM {
        PropertyId: id,
        GetPropertyHandler: get,
        MinProperty: min_property as u32,
        MinData: min_data as u32,
        SetPropertyHandler: set,
        Values: values,
        RelationsCount: 0,
        Relations: null(),
        SupportHandler: None,
        SerializedSize: 0,
    }
}
