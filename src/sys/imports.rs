//! The routines ksring imports, with their C signatures (KS-REFERENCE §8.3 for ks.sys).
//!
//! `scripts/cross-build.sh` checks that every routine listed here is in the import table of the
//! cross-built `ksring.sys`, so this list must name exactly what the driver calls.

#![allow(missing_docs)] // each item gets a generated doc line

use core::ffi::c_void;

use ksabi::{DEVICE_OBJECT, DRIVER_OBJECT, GUID, NTSTATUS, UNICODE_STRING};

imports! {
    "ntoskrnl.exe" {
        fn IoCreateDevice(
            driver: *mut DRIVER_OBJECT,
            extension_size: u32,
            name: *mut UNICODE_STRING,
            device_type: u32,
            characteristics: u32,
            exclusive: u8,
            device: *mut *mut DEVICE_OBJECT,
        ) -> NTSTATUS;
        fn IoDeleteDevice(device: *mut DEVICE_OBJECT);
        fn IoAttachDeviceToDeviceStack(source: *mut DEVICE_OBJECT, target: *mut DEVICE_OBJECT) -> *mut DEVICE_OBJECT;
        fn IoDetachDevice(target: *mut DEVICE_OBJECT);
        fn IoRegisterDeviceInterface(
            pdo: *mut DEVICE_OBJECT,
            class: *const GUID,
            reference: *mut UNICODE_STRING,
            symbolic_link: *mut UNICODE_STRING,
        ) -> NTSTATUS;
        fn IoSetDeviceInterfaceState(symbolic_link: *mut UNICODE_STRING, enable: u8) -> NTSTATUS;
        fn RtlFreeUnicodeString(string: *mut UNICODE_STRING);
        fn IofCompleteRequest(irp: *mut ksabi::IRP, priority_boost: i8);
    }
    "ks.sys" {
        fn KsSetMajorFunctionHandler(driver: *mut DRIVER_OBJECT, major: u32) -> NTSTATUS;
        fn KsAllocateDeviceHeader(
            header: *mut *mut c_void,
            items_count: u32,
            items: *mut ksabi::KSOBJECT_CREATE_ITEM,
        ) -> NTSTATUS;
        fn KsFreeDeviceHeader(header: *mut c_void);
        fn KsSetDevicePnpAndBaseObject(header: *mut c_void, pnp: *mut DEVICE_OBJECT, base: *mut DEVICE_OBJECT);
        fn KsDefaultDispatchPnp(device: *mut DEVICE_OBJECT, irp: *mut ksabi::IRP) -> NTSTATUS;
        fn KsDefaultDispatchPower(device: *mut DEVICE_OBJECT, irp: *mut ksabi::IRP) -> NTSTATUS;
        fn KsDefaultForwardIrp(device: *mut DEVICE_OBJECT, irp: *mut ksabi::IRP) -> NTSTATUS;
    }
}
