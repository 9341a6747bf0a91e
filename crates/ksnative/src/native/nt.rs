//! The ntdll routines the native program calls: the only module it imports from.

#![allow(non_snake_case)] // the imported routines keep their C names

use core::ffi::{c_char, c_void};

use ksabi::{HANDLE, IO_STATUS_BLOCK, NTSTATUS, UNICODE_STRING};

use ksnative::ntuser::OBJECT_ATTRIBUTES;

#[link(name = "ntdll.dll", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "C" {
    /// `DbgPrint`, C-variadic: user-mode output reaches the kernel debugger (COM1 in the lab).
    pub fn DbgPrint(format: *const c_char, ...) -> u32;
}

#[link(name = "ntdll.dll", kind = "raw-dylib", modifiers = "+verbatim")]
unsafe extern "system" {
    pub fn NtCreateFile(
        handle: *mut HANDLE,
        access: u32,
        attributes: *mut OBJECT_ATTRIBUTES,
        iosb: *mut IO_STATUS_BLOCK,
        allocation_size: *mut i64,
        file_attributes: u32,
        share: u32,
        disposition: u32,
        options: u32,
        ea: *mut c_void,
        ea_length: u32,
    ) -> NTSTATUS;
    pub fn NtClose(handle: HANDLE) -> NTSTATUS;
    pub fn NtDeviceIoControlFile(
        handle: HANDLE,
        event: HANDLE,
        apc: *mut c_void,
        apc_context: *mut c_void,
        iosb: *mut IO_STATUS_BLOCK,
        code: u32,
        input: *mut c_void,
        input_length: u32,
        output: *mut c_void,
        output_length: u32,
    ) -> NTSTATUS;
    pub fn NtCancelIoFile(handle: HANDLE, iosb: *mut IO_STATUS_BLOCK) -> NTSTATUS;
    pub fn NtCreateEvent(
        handle: *mut HANDLE,
        access: u32,
        attributes: *mut OBJECT_ATTRIBUTES,
        event_type: u32,
        initial_state: u8,
    ) -> NTSTATUS;
    pub fn NtWaitForSingleObject(handle: HANDLE, alertable: u8, timeout: *mut i64) -> NTSTATUS;
    pub fn NtWaitForMultipleObjects(
        count: u32,
        handles: *mut HANDLE,
        wait_type: u32,
        alertable: u8,
        timeout: *mut i64,
    ) -> NTSTATUS;
    pub fn NtOpenDirectoryObject(
        handle: *mut HANDLE,
        access: u32,
        attributes: *mut OBJECT_ATTRIBUTES,
    ) -> NTSTATUS;
    pub fn NtQueryDirectoryObject(
        handle: HANDLE,
        buffer: *mut c_void,
        length: u32,
        single_entry: u8,
        restart: u8,
        context: *mut u32,
        returned: *mut u32,
    ) -> NTSTATUS;
    pub fn NtDelayExecution(alertable: u8, interval: *mut i64) -> NTSTATUS;
    pub fn NtQueryPerformanceCounter(counter: *mut i64, frequency: *mut i64) -> NTSTATUS;
    pub fn RtlAllocateHeap(heap: *mut c_void, flags: u32, size: usize) -> *mut c_void;
    pub fn RtlFreeHeap(heap: *mut c_void, flags: u32, block: *mut c_void) -> u8;
    pub fn NtTerminateProcess(process: HANDLE, status: NTSTATUS) -> NTSTATUS;
    pub fn RtlAdjustPrivilege(privilege: u32, enable: u8, current_thread: u8, enabled: *mut u8) -> NTSTATUS;
    pub fn NtShutdownSystem(action: u32) -> NTSTATUS;
    /// `__chkstk`: the stack probe the compiler calls for frames over 4 KiB.
    pub fn __chkstk();
}

/// A UTF-16 string as a `UNICODE_STRING` (borrowing it).
#[allow(clippy::cast_possible_truncation)] // names are far below 32 KiB characters
pub fn unicode(text: &[u16]) -> UNICODE_STRING {
    let bytes = (text.len() * 2) as u16;
    UNICODE_STRING { Length: bytes, MaximumLength: bytes, Buffer: text.as_ptr().cast_mut() }
}
