//! `NTSTATUS` → Win32 error, as `RtlNtStatusToDosError` maps them (KS-REFERENCE §5.1 from Wine's
//! `dlls/ntdll/error.c`; `STATUS_NO_SUCH_DEVICE`, `STATUS_IO_TIMEOUT` and
//! `STATUS_INVALID_DEVICE_STATE` from wepoll's NTSTATUS table), and readable names for messages.

use ksabi::{
    NTSTATUS, STATUS_ACCESS_DENIED, STATUS_ACCESS_VIOLATION, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_CANCELLED, STATUS_DEVICE_BUSY, STATUS_DEVICE_NOT_READY, STATUS_END_OF_FILE,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER_1,
    STATUS_INVALID_PARAMETER_2, STATUS_IO_TIMEOUT, STATUS_MORE_ENTRIES, STATUS_NO_MATCH,
    STATUS_NO_SECURITY_ON_OBJECT, STATUS_NO_SUCH_DEVICE, STATUS_NOT_FOUND, STATUS_NOT_IMPLEMENTED,
    STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_COLLISION, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_OBJECT_TYPE_MISMATCH, STATUS_PENDING, STATUS_PROPSET_NOT_FOUND, STATUS_SUCCESS,
    STATUS_UNSUCCESSFUL, nt_success, status_name,
};

/// `ERROR_MR_MID_NOT_FOUND`: what `RtlNtStatusToDosError` returns for a status it does not know.
pub const ERROR_MR_MID_NOT_FOUND: u32 = 317;

/// The Win32 error a caller sees for `status` (0 for success codes).
#[must_use]
pub fn win32_error(status: NTSTATUS) -> u32 {
    match status {
        STATUS_SUCCESS => 0,
        STATUS_PENDING => 997,                                       // ERROR_IO_PENDING
        STATUS_MORE_ENTRIES | STATUS_BUFFER_OVERFLOW => 234,         // ERROR_MORE_DATA
        STATUS_DEVICE_BUSY => 170,                                   // ERROR_BUSY
        STATUS_UNSUCCESSFUL => 31,                                   // ERROR_GEN_FAILURE
        STATUS_NOT_IMPLEMENTED | STATUS_INVALID_DEVICE_REQUEST => 1, // ERROR_INVALID_FUNCTION
        STATUS_ACCESS_VIOLATION => 998,                              // ERROR_NOACCESS
        STATUS_INVALID_HANDLE | STATUS_OBJECT_TYPE_MISMATCH => 6,    // ERROR_INVALID_HANDLE
        STATUS_INVALID_PARAMETER | STATUS_INVALID_PARAMETER_1 | STATUS_INVALID_PARAMETER_2 => 87, // ERROR_INVALID_PARAMETER
        STATUS_END_OF_FILE => 38,                                  // ERROR_HANDLE_EOF
        STATUS_ACCESS_DENIED => 5,                                 // ERROR_ACCESS_DENIED
        STATUS_BUFFER_TOO_SMALL => 122,                            // ERROR_INSUFFICIENT_BUFFER
        STATUS_OBJECT_NAME_NOT_FOUND | STATUS_NO_SUCH_DEVICE => 2, // ERROR_FILE_NOT_FOUND
        STATUS_OBJECT_NAME_COLLISION => 183,                       // ERROR_ALREADY_EXISTS
        STATUS_INSUFFICIENT_RESOURCES => 1450,                     // ERROR_NO_SYSTEM_RESOURCES
        STATUS_DEVICE_NOT_READY => 21,                             // ERROR_NOT_READY
        STATUS_IO_TIMEOUT => 121,                                  // ERROR_SEM_TIMEOUT
        STATUS_NOT_SUPPORTED => 50,                                // ERROR_NOT_SUPPORTED
        STATUS_NO_SECURITY_ON_OBJECT => 1350,                      // ERROR_NO_SECURITY_ON_OBJECT
        STATUS_CANCELLED => 995,                                   // ERROR_OPERATION_ABORTED
        STATUS_INVALID_DEVICE_STATE => 22,                         // ERROR_BAD_COMMAND
        STATUS_INVALID_BUFFER_SIZE => 1784,                        // ERROR_INVALID_USER_BUFFER
        STATUS_NOT_FOUND => 1168,                                  // ERROR_NOT_FOUND
        STATUS_PROPSET_NOT_FOUND => 1170,                          // ERROR_SET_NOT_FOUND
        STATUS_NO_MATCH => 1169,                                   // ERROR_NO_MATCH
        s if nt_success(s) => 0,
        _ => ERROR_MR_MID_NOT_FOUND,
    }
}

/// `STATUS_X (0x...)`, or the hex value alone.
#[must_use]
pub fn describe(status: NTSTATUS) -> String {
    match status_name(status) {
        Some(name) => format!("{name} ({:#010x})", status.cast_unsigned()),
        None => format!("{:#010x}", status.cast_unsigned()),
    }
}
