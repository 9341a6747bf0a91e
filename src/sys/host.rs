//! The host build: the driver runs in a user-mode process under kshost.

extern crate std;

use core::ffi::CStr;

/// Where the emulated routines come from.
///
/// PLACEHOLDER until kshost exists (issue 4): each routine aborts if called. No host test calls
/// them; the host build compiles the driver and checks the import signatures.
pub mod exports {
    #![allow(missing_docs, clippy::missing_safety_doc, clippy::missing_panics_doc)]
    use core::ffi::c_void;

    use super::std;

    use ksabi::{DEVICE_OBJECT, DRIVER_OBJECT, GUID, IRP, KSOBJECT_CREATE_ITEM, NTSTATUS, UNICODE_STRING};

    macro_rules! not_yet {
        ($( fn $name:ident($($ty:ty),*) $(-> $ret:ty)?; )*) => {$(
            pub unsafe extern "system" fn $name($(_: $ty),*) $(-> $ret)? {
                std::process::abort()
            }
        )*};
    }

    not_yet! {
        fn IoCreateDevice(*mut DRIVER_OBJECT, u32, *mut UNICODE_STRING, u32, u32, u8, *mut *mut DEVICE_OBJECT) -> NTSTATUS;
        fn IoDeleteDevice(*mut DEVICE_OBJECT);
        fn IoAttachDeviceToDeviceStack(*mut DEVICE_OBJECT, *mut DEVICE_OBJECT) -> *mut DEVICE_OBJECT;
        fn IoDetachDevice(*mut DEVICE_OBJECT);
        fn IoRegisterDeviceInterface(*mut DEVICE_OBJECT, *const GUID, *mut UNICODE_STRING, *mut UNICODE_STRING) -> NTSTATUS;
        fn IoSetDeviceInterfaceState(*mut UNICODE_STRING, u8) -> NTSTATUS;
        fn RtlFreeUnicodeString(*mut UNICODE_STRING);
        fn IofCompleteRequest(*mut IRP, i8);
        fn KsSetMajorFunctionHandler(*mut DRIVER_OBJECT, u32) -> NTSTATUS;
        fn KsAllocateDeviceHeader(*mut *mut c_void, u32, *mut KSOBJECT_CREATE_ITEM) -> NTSTATUS;
        fn KsFreeDeviceHeader(*mut c_void);
        fn KsSetDevicePnpAndBaseObject(*mut c_void, *mut DEVICE_OBJECT, *mut DEVICE_OBJECT);
        fn KsDefaultDispatchPnp(*mut DEVICE_OBJECT, *mut IRP) -> NTSTATUS;
        fn KsDefaultDispatchPower(*mut DEVICE_OBJECT, *mut IRP) -> NTSTATUS;
        fn KsDefaultForwardIrp(*mut DEVICE_OBJECT, *mut IRP) -> NTSTATUS;
    }
}

/// Debug output: to standard error on the host.
pub fn debug_print(level: u32, message: &CStr) {
    std::eprintln!("[ksring:{level}] {}", message.to_string_lossy());
}
