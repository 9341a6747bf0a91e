//! The NT user-mode structures and constants the native program passes to ntdll (x64). Not KS
//! layouts (those are `ksabi`'s); the tests check each against windows-sys.

#![allow(non_camel_case_types, non_snake_case)] // the C names

use core::ffi::c_void;

use ksabi::{HANDLE, UNICODE_STRING};

/// `OBJECT_ATTRIBUTES`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OBJECT_ATTRIBUTES {
    /// `size_of::<OBJECT_ATTRIBUTES>()`.
    pub Length: u32,
    /// The directory (or file, for a relative open) `ObjectName` is relative to.
    pub RootDirectory: HANDLE,
    /// The name.
    pub ObjectName: *mut UNICODE_STRING,
    /// `OBJ_*` flags.
    pub Attributes: u32,
    /// Unused here.
    pub SecurityDescriptor: *mut c_void,
    /// Unused here.
    pub SecurityQualityOfService: *mut c_void,
}

impl OBJECT_ATTRIBUTES {
    /// Attributes for `name`, relative to `root` (null for an absolute name), case-insensitive.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // 48
    pub fn new(root: HANDLE, name: *mut UNICODE_STRING) -> Self {
        Self {
            Length: size_of::<Self>() as u32,
            RootDirectory: root,
            ObjectName: name,
            Attributes: OBJ_CASE_INSENSITIVE,
            SecurityDescriptor: core::ptr::null_mut(),
            SecurityQualityOfService: core::ptr::null_mut(),
        }
    }
}

/// `OBJECT_DIRECTORY_INFORMATION`: one entry `NtQueryDirectoryObject` returns (the strings point
/// into the same buffer).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OBJECT_DIRECTORY_INFORMATION {
    /// The entry's name.
    pub Name: UNICODE_STRING,
    /// Its object type's name (`SymbolicLink`...).
    pub TypeName: UNICODE_STRING,
}

/// Offset of `PEB.ProcessParameters`.
pub const PEB_PROCESS_PARAMETERS: usize = 0x20;
/// Offset of `PEB.ProcessHeap` (`Reserved4[1]` in windows-sys).
pub const PEB_PROCESS_HEAP: usize = 0x30;
/// Offset of `RTL_USER_PROCESS_PARAMETERS.CommandLine` (a `UNICODE_STRING`).
pub const PARAMETERS_COMMAND_LINE: usize = 0x70;

/// `OBJ_CASE_INSENSITIVE`.
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
/// `DIRECTORY_QUERY`.
pub const DIRECTORY_QUERY: u32 = 0x0001;
/// `GENERIC_READ`.
pub const GENERIC_READ: u32 = 0x8000_0000;
/// `GENERIC_WRITE`.
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// `FILE_SHARE_READ | FILE_SHARE_WRITE`.
pub const FILE_SHARE_READ_WRITE: u32 = 0x3;
/// `FILE_OPEN`: open an existing object.
pub const FILE_OPEN: u32 = 1;
/// `FILE_NON_DIRECTORY_FILE`.
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x40;
/// `EVENT_ALL_ACCESS`.
pub const EVENT_ALL_ACCESS: u32 = 0x001F_0003;
/// `NotificationEvent` (manual reset): `NtDeviceIoControlFile` clears it when the request starts.
pub const NOTIFICATION_EVENT: u32 = 0;
/// `WaitAny` for `NtWaitForMultipleObjects`.
pub const WAIT_ANY: u32 = 1;
/// `SE_SHUTDOWN_PRIVILEGE`.
pub const SE_SHUTDOWN_PRIVILEGE: u32 = 19;
/// `ShutdownReboot` (QEMU runs with `-no-reboot`, so it exits).
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `KUSER_SHARED_DATA`'s user-mode address (read-only, mapped in every process).
pub const USER_SHARED_DATA: usize = 0x7FFE_0000;
/// Offset of `KUSER_SHARED_DATA.NtMajorVersion` (a `ULONG`).
pub const SHARED_NT_MAJOR_VERSION: usize = 0x26C;
/// Offset of `KUSER_SHARED_DATA.NtMinorVersion` (a `ULONG`).
pub const SHARED_NT_MINOR_VERSION: usize = 0x270;
/// The process's own handle, `NtCurrentProcess()`.
pub const CURRENT_PROCESS: HANDLE = usize::MAX as HANDLE;

#[cfg(test)]
mod tests {
    use core::mem::offset_of;

    use super::*;
    use windows_sys::Wdk::Foundation as wdk;
    use windows_sys::Win32::System::Threading as thr;

    #[test]
    fn layouts_match_windows_sys() {
        assert_eq!(size_of::<OBJECT_ATTRIBUTES>(), size_of::<wdk::OBJECT_ATTRIBUTES>());
        assert_eq!(
            offset_of!(OBJECT_ATTRIBUTES, RootDirectory),
            offset_of!(wdk::OBJECT_ATTRIBUTES, RootDirectory)
        );
        assert_eq!(offset_of!(OBJECT_ATTRIBUTES, ObjectName), offset_of!(wdk::OBJECT_ATTRIBUTES, ObjectName));
        assert_eq!(offset_of!(OBJECT_ATTRIBUTES, Attributes), offset_of!(wdk::OBJECT_ATTRIBUTES, Attributes));
        assert_eq!(
            offset_of!(OBJECT_ATTRIBUTES, SecurityQualityOfService),
            offset_of!(wdk::OBJECT_ATTRIBUTES, SecurityQualityOfService)
        );
        assert_eq!(PEB_PROCESS_PARAMETERS, offset_of!(thr::PEB, ProcessParameters));
        // Reserved4 is { SubSystemData, ProcessHeap, FastPebLock }.
        assert_eq!(PEB_PROCESS_HEAP, offset_of!(thr::PEB, Reserved4) + size_of::<usize>());
        assert_eq!(PARAMETERS_COMMAND_LINE, offset_of!(thr::RTL_USER_PROCESS_PARAMETERS, CommandLine));
        assert_eq!(size_of::<OBJECT_DIRECTORY_INFORMATION>(), 2 * size_of::<UNICODE_STRING>());
    }

    #[test]
    fn constants_match_windows_sys() {
        use windows_sys::Win32::Foundation as f;
        use windows_sys::Win32::Storage::FileSystem as fs;
        assert_eq!(OBJ_CASE_INSENSITIVE, f::OBJ_CASE_INSENSITIVE);
        assert_eq!(GENERIC_READ, f::GENERIC_READ);
        assert_eq!(GENERIC_WRITE, f::GENERIC_WRITE);
        assert_eq!(FILE_SHARE_READ_WRITE, fs::FILE_SHARE_READ | fs::FILE_SHARE_WRITE);
        assert_eq!(EVENT_ALL_ACCESS, thr::EVENT_ALL_ACCESS);
    }
}
