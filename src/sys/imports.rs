//! The routines ksring imports, with their C signatures (KS-REFERENCE §8.3 for ks.sys).
//!
//! `scripts/cross-build.sh` checks that every routine listed here is in the import table of the
//! cross-built `ksring.sys`, so this list must name exactly what the driver calls.

#![allow(missing_docs)] // each item gets a generated doc line

use core::ffi::c_void;

use ksabi::{
    DEVICE_OBJECT, DRIVER_OBJECT, FILE_OBJECT, GUID, HANDLE, IRP, KEVENT, KIRQL, KPROCESSOR_MODE,
    KSDISPATCH_TABLE, KSIDENTIFIER, KSIRP_REMOVAL_OPERATION, KSLIST_ENTRY_LOCATION, KSOBJECT_CREATE_ITEM,
    KSPIN_CONNECT, KSPIN_DESCRIPTOR, KSPIN_LOCK, KSPROPERTY_SET, KSRESET, KSTOPOLOGY, LIST_ENTRY, MDL,
    NTSTATUS, OBJECT_ATTRIBUTES, PDRIVER_CANCEL, PIO_WORKITEM_ROUTINE, UNICODE_STRING,
};

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
        fn IofCompleteRequest(irp: *mut IRP, priority_boost: i8);
        // `ExAllocatePool2` is not imported: Windows 10 before 2004 and ReactOS lack it, and one
        // missing import refuses the whole image. On the kernel target `sys::ExAllocatePool2`
        // looks it up at `DriverEntry` (kernel.rs); under kshost it is kshost's (host.rs).
        // The caps on ring memory: a driver object extension, read from the service key.
        fn IoAllocateDriverObjectExtension(
            driver: *mut DRIVER_OBJECT,
            client_id: *mut c_void,
            size: u32,
            extension: *mut *mut c_void,
        ) -> NTSTATUS;
        fn IoGetDriverObjectExtension(driver: *mut DRIVER_OBJECT, client_id: *mut c_void) -> *mut c_void;
        fn ZwOpenKey(key: *mut HANDLE, access: u32, attributes: *const OBJECT_ATTRIBUTES) -> NTSTATUS;
        fn ZwQueryValueKey(
            key: HANDLE,
            name: *const UNICODE_STRING,
            class: i32,
            information: *mut c_void,
            length: u32,
            result_length: *mut u32,
        ) -> NTSTATUS;
        fn ZwClose(handle: HANDLE) -> NTSTATUS;
        fn ExFreePoolWithTag(block: *mut c_void, tag: u32);
        fn KeAcquireSpinLockRaiseToDpc(lock: *mut KSPIN_LOCK) -> KIRQL;
        fn KeReleaseSpinLock(lock: *mut KSPIN_LOCK, new_irql: KIRQL);
        // IRP-source pins: a referenced target, IRPs of the driver's own, work items, an event.
        fn ObReferenceObjectByHandle(
            handle: HANDLE,
            desired_access: u32,
            object_type: *mut c_void,
            access_mode: KPROCESSOR_MODE,
            object: *mut *mut c_void,
            handle_information: *mut c_void,
        ) -> NTSTATUS;
        fn ObfReferenceObject(object: *mut c_void) -> isize;
        fn ObfDereferenceObject(object: *mut c_void) -> isize;
        fn IoGetRelatedDeviceObject(file: *mut FILE_OBJECT) -> *mut DEVICE_OBJECT;
        fn IoAllocateIrp(stack_size: i8, charge_quota: u8) -> *mut IRP;
        fn IoFreeIrp(irp: *mut IRP);
        fn IoReuseIrp(irp: *mut IRP, status: NTSTATUS);
        fn IofCallDriver(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS;
        fn IoCancelIrp(irp: *mut IRP) -> u8;
        fn IoReleaseCancelSpinLock(irql: KIRQL);
        fn IoFreeMdl(mdl: *mut MDL);
        fn MmUnlockPages(mdl: *mut MDL);
        fn MmBuildMdlForNonPagedPool(mdl: *mut MDL);
        fn IoAllocateWorkItem(device: *mut DEVICE_OBJECT) -> *mut c_void;
        fn IoQueueWorkItem(item: *mut c_void, routine: PIO_WORKITEM_ROUTINE, queue_type: i32, context: *mut c_void);
        fn IoFreeWorkItem(item: *mut c_void);
        fn KeInitializeEvent(event: *mut KEVENT, event_type: i32, state: u8);
        fn KeSetEvent(event: *mut KEVENT, increment: i32, wait: u8) -> i32;
        fn KeWaitForSingleObject(
            object: *mut c_void,
            wait_reason: i32,
            wait_mode: KPROCESSOR_MODE,
            alertable: u8,
            timeout: *mut i64,
        ) -> NTSTATUS;
    }
    "ks.sys" {
        fn KsSetMajorFunctionHandler(driver: *mut DRIVER_OBJECT, major: u32) -> NTSTATUS;
        fn KsAllocateDeviceHeader(
            header: *mut *mut c_void,
            items_count: u32,
            items: *mut KSOBJECT_CREATE_ITEM,
        ) -> NTSTATUS;
        fn KsFreeDeviceHeader(header: *mut c_void);
        fn KsSetDevicePnpAndBaseObject(header: *mut c_void, pnp: *mut DEVICE_OBJECT, base: *mut DEVICE_OBJECT);
        fn KsDefaultDispatchPnp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS;
        fn KsDefaultDispatchPower(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS;
        fn KsDefaultForwardIrp(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS;
        fn KsAllocateObjectHeader(
            header: *mut *mut c_void,
            items_count: u32,
            items: *mut KSOBJECT_CREATE_ITEM,
            irp: *mut IRP,
            table: *const KSDISPATCH_TABLE,
        ) -> NTSTATUS;
        fn KsFreeObjectHeader(header: *mut c_void);
        fn KsDispatchInvalidDeviceRequest(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS;
        fn KsDefaultDeviceIoCompletion(device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS;
        fn KsValidateConnectRequest(
            irp: *mut IRP,
            descriptors_count: u32,
            descriptors: *const KSPIN_DESCRIPTOR,
            connect: *mut *mut KSPIN_CONNECT,
        ) -> NTSTATUS;
        fn KsPropertyHandler(irp: *mut IRP, sets_count: u32, sets: *const KSPROPERTY_SET) -> NTSTATUS;
        fn KsPinPropertyHandler(
            irp: *mut IRP,
            property: *mut KSIDENTIFIER,
            data: *mut c_void,
            descriptors_count: u32,
            descriptors: *const KSPIN_DESCRIPTOR,
        ) -> NTSTATUS;
        fn KsTopologyPropertyHandler(
            irp: *mut IRP,
            property: *mut KSIDENTIFIER,
            data: *mut c_void,
            topology: *const KSTOPOLOGY,
        ) -> NTSTATUS;
        fn KsProbeStreamIrp(irp: *mut IRP, probe_flags: u32, header_size: u32) -> NTSTATUS;
        fn KsAcquireResetValue(irp: *mut IRP, value: *mut KSRESET) -> NTSTATUS;
        fn KsAddIrpToCancelableQueue(
            queue_head: *mut LIST_ENTRY,
            spin_lock: *mut KSPIN_LOCK,
            irp: *mut IRP,
            location: KSLIST_ENTRY_LOCATION,
            cancel: PDRIVER_CANCEL,
        );
        fn KsRemoveIrpFromCancelableQueue(
            queue_head: *mut LIST_ENTRY,
            spin_lock: *mut KSPIN_LOCK,
            location: KSLIST_ENTRY_LOCATION,
            operation: KSIRP_REMOVAL_OPERATION,
        ) -> *mut IRP;
        fn KsReleaseIrpOnCancelableQueue(irp: *mut IRP, cancel: PDRIVER_CANCEL);
        fn KsRemoveSpecificIrpFromCancelableQueue(irp: *mut IRP);
        fn KsCancelRoutine(device: *mut DEVICE_OBJECT, irp: *mut IRP);
        fn KsCancelIo(queue_head: *mut LIST_ENTRY, spin_lock: *mut KSPIN_LOCK);
    }
}
