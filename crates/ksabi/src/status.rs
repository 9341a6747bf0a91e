//! `NTSTATUS` values KS drivers return and receive (KS-REFERENCE §5.1), and the success tests.

use crate::NTSTATUS;

/// `NT_SUCCESS`: success and informational codes (0x0..0x7FFFFFFF).
#[must_use]
pub const fn nt_success(status: NTSTATUS) -> bool {
    status >= 0
}

/// `NT_ERROR`: severity "error" (top two bits 11). Warnings (10) are neither success nor error.
#[must_use]
#[allow(clippy::cast_sign_loss)] // the severity is the top two bits of the raw value
pub const fn nt_error(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 3
}

/// `NT_WARNING`: severity "warning" (top two bits 10), e.g. `STATUS_BUFFER_OVERFLOW`.
#[must_use]
#[allow(clippy::cast_sign_loss)] // the severity is the top two bits of the raw value
pub const fn nt_warning(status: NTSTATUS) -> bool {
    (status as u32) >> 30 == 2
}

macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        $( $(#[$doc])* #[allow(clippy::cast_possible_wrap)] pub const $name: NTSTATUS = $value as u32 as i32; )*

        /// The symbolic name of a status this crate defines, for messages and tables.
        #[must_use]
        #[allow(unreachable_patterns)] // aliases such as STATUS_WAIT_0 share a value
        pub const fn status_name(status: NTSTATUS) -> Option<&'static str> {
            match status {
                $( $name => Some(stringify!($name)), )*
                _ => None,
            }
        }
    };
}

statuses! {
    /// The operation succeeded.
    STATUS_SUCCESS = 0x0000_0000;
    /// A wait ended by its timeout (a success code).
    STATUS_TIMEOUT = 0x0000_0102;
    /// The request is pending; completion comes later.
    STATUS_PENDING = 0x0000_0103;
    /// More entries are available.
    STATUS_MORE_ENTRIES = 0x0000_0105;
    /// Used by KS method handlers to say "handled, the helper must complete".
    STATUS_SOME_NOT_MAPPED = 0x0000_0107;
    /// Warning: the buffer is too small; `Information` carries the size needed (size queries).
    STATUS_BUFFER_OVERFLOW = 0x8000_0005;
    /// Warning: the device is busy.
    STATUS_DEVICE_BUSY = 0x8000_0011;
    /// Unspecified failure.
    STATUS_UNSUCCESSFUL = 0xC000_0001;
    /// Not implemented.
    STATUS_NOT_IMPLEMENTED = 0xC000_0002;
    /// An access violation (what a bad pointer raises).
    STATUS_ACCESS_VIOLATION = 0xC000_0005;
    /// Invalid handle.
    STATUS_INVALID_HANDLE = 0xC000_0008;
    /// A parameter is invalid.
    STATUS_INVALID_PARAMETER = 0xC000_000D;
    /// No such device.
    STATUS_NO_SUCH_DEVICE = 0xC000_000E;
    /// The request is not valid for this device or object.
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010;
    /// End of file / end of stream.
    STATUS_END_OF_FILE = 0xC000_0011;
    /// A completion routine keeps the IRP (`IoCompleteRequest` stops walking the stack).
    STATUS_MORE_PROCESSING_REQUIRED = 0xC000_0016;
    /// Access denied.
    STATUS_ACCESS_DENIED = 0xC000_0022;
    /// A request on a file object whose last handle has closed (its cleanup has run). Only a
    /// kernel-mode holder of a reference can send one, so no Win32 mapping is needed.
    STATUS_FILE_CLOSED = 0xC000_0128;
    /// The buffer is too small (an error: no data returned).
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023;
    /// The object type does not match (e.g. a handle to the wrong kind of object).
    STATUS_OBJECT_TYPE_MISMATCH = 0xC000_0024;
    /// No object of that name.
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034;
    /// The name exists already.
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035;
    /// Extended attributes are not supported (ks.sys: a create with EAs and a create parameter).
    STATUS_EAS_NOT_SUPPORTED = 0xC000_004F;
    /// The process's quota does not cover the request.
    STATUS_QUOTA_EXCEEDED = 0xC000_0044;
    /// Out of quota or space.
    STATUS_ALLOTTED_SPACE_EXCEEDED = 0xC000_0099;
    /// Out of memory or another resource.
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009A;
    /// The device is not ready (KS: streaming during a reset).
    STATUS_DEVICE_NOT_READY = 0xC000_00A3;
    /// The operation timed out.
    STATUS_IO_TIMEOUT = 0xC000_00B5;
    /// Not supported.
    STATUS_NOT_SUPPORTED = 0xC000_00BB;
    /// The object has no security descriptor.
    STATUS_NO_SECURITY_ON_OBJECT = 0xC000_00D7;
    /// First parameter invalid.
    STATUS_INVALID_PARAMETER_1 = 0xC000_00EF;
    /// Second parameter invalid.
    STATUS_INVALID_PARAMETER_2 = 0xC000_00F0;
    /// Third parameter invalid (ks.sys: connect `PinId` beyond the factories).
    STATUS_INVALID_PARAMETER_3 = 0xC000_00F1;
    /// Fourth parameter invalid (ks.sys: connect communication the factory lacks).
    STATUS_INVALID_PARAMETER_4 = 0xC000_00F2;
    /// Fifth parameter invalid (ks.sys: connect priority class or subclass 0).
    STATUS_INVALID_PARAMETER_5 = 0xC000_00F3;
    /// Sixth parameter invalid (ks.sys: a connect format with `Reserved` set or wildcard GUIDs).
    STATUS_INVALID_PARAMETER_6 = 0xC000_00F4;
    /// The request was cancelled.
    STATUS_CANCELLED = 0xC000_0120;
    /// The device is in a state that does not allow the request.
    STATUS_INVALID_DEVICE_STATE = 0xC000_0184;
    /// A buffer size is invalid (KS: malformed stream headers).
    STATUS_INVALID_BUFFER_SIZE = 0xC000_0206;
    /// Not found (KS: unknown property id).
    STATUS_NOT_FOUND = 0xC000_0225;
    /// The property, method or event set is not supported.
    STATUS_PROPSET_NOT_FOUND = 0xC000_0230;
    /// No match (KS: connection or intersection mismatch).
    STATUS_NO_MATCH = 0xC000_0272;
}

// ---- NTSTATUS -> Win32 ----------------------------------------------------------------------------
// As `RtlNtStatusToDosError` maps them (KS-REFERENCE §5.1 from Wine's `dlls/ntdll/error.c`;
// `STATUS_NO_SUCH_DEVICE`, `STATUS_IO_TIMEOUT` and `STATUS_INVALID_DEVICE_STATE` from wepoll's
// NTSTATUS table). What a Win32 caller sees from `GetLastError` after a failed request.

/// `ERROR_MR_MID_NOT_FOUND`: what `RtlNtStatusToDosError` returns for a status it does not know.
pub const ERROR_MR_MID_NOT_FOUND: u32 = 317;

/// The Win32 error a caller sees for `status` (0 for success codes).
#[must_use]
pub const fn win32_error(status: NTSTATUS) -> u32 {
    match status {
        STATUS_SUCCESS => 0,
        STATUS_PENDING => 997,                                       // ERROR_IO_PENDING
        STATUS_MORE_ENTRIES | STATUS_BUFFER_OVERFLOW => 234,         // ERROR_MORE_DATA
        STATUS_DEVICE_BUSY => 170,                                   // ERROR_BUSY
        STATUS_UNSUCCESSFUL => 31,                                   // ERROR_GEN_FAILURE
        STATUS_NOT_IMPLEMENTED | STATUS_INVALID_DEVICE_REQUEST => 1, // ERROR_INVALID_FUNCTION
        STATUS_ACCESS_VIOLATION => 998,                              // ERROR_NOACCESS
        STATUS_INVALID_HANDLE | STATUS_OBJECT_TYPE_MISMATCH => 6,    // ERROR_INVALID_HANDLE
        STATUS_INVALID_PARAMETER
        | STATUS_INVALID_PARAMETER_1
        | STATUS_INVALID_PARAMETER_2
        | STATUS_INVALID_PARAMETER_3
        | STATUS_INVALID_PARAMETER_4
        | STATUS_INVALID_PARAMETER_5
        | STATUS_INVALID_PARAMETER_6 => 87, // ERROR_INVALID_PARAMETER
        STATUS_EAS_NOT_SUPPORTED => 282,                             // ERROR_EAS_NOT_SUPPORTED
        STATUS_END_OF_FILE => 38,                                    // ERROR_HANDLE_EOF
        STATUS_ACCESS_DENIED => 5,                                   // ERROR_ACCESS_DENIED
        STATUS_BUFFER_TOO_SMALL => 122,                              // ERROR_INSUFFICIENT_BUFFER
        STATUS_OBJECT_NAME_NOT_FOUND | STATUS_NO_SUCH_DEVICE => 2,   // ERROR_FILE_NOT_FOUND
        STATUS_OBJECT_NAME_COLLISION => 183,                         // ERROR_ALREADY_EXISTS
        STATUS_INSUFFICIENT_RESOURCES => 1450,                       // ERROR_NO_SYSTEM_RESOURCES
        STATUS_QUOTA_EXCEEDED => 1816,                               // ERROR_NOT_ENOUGH_QUOTA
        STATUS_DEVICE_NOT_READY => 21,                               // ERROR_NOT_READY
        STATUS_IO_TIMEOUT => 121,                                    // ERROR_SEM_TIMEOUT
        STATUS_NOT_SUPPORTED => 50,                                  // ERROR_NOT_SUPPORTED
        STATUS_NO_SECURITY_ON_OBJECT => 1350,                        // ERROR_NO_SECURITY_ON_OBJECT
        STATUS_CANCELLED => 995,                                     // ERROR_OPERATION_ABORTED
        STATUS_INVALID_DEVICE_STATE => 22,                           // ERROR_BAD_COMMAND
        STATUS_INVALID_BUFFER_SIZE => 1784,                          // ERROR_INVALID_USER_BUFFER
        STATUS_NOT_FOUND => 1168,                                    // ERROR_NOT_FOUND
        STATUS_PROPSET_NOT_FOUND => 1170,                            // ERROR_SET_NOT_FOUND
        STATUS_NO_MATCH => 1169,                                     // ERROR_NO_MATCH
        s if nt_success(s) => 0,
        _ => ERROR_MR_MID_NOT_FOUND,
    }
}

/// Formats a status as `STATUS_X (0x...)`, or the hex value alone when it has no name here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusText(pub NTSTATUS);

impl core::fmt::Display for StatusText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match status_name(self.0) {
            Some(name) => write!(f, "{name} ({:#010x})", self.0.cast_unsigned()),
            None => write!(f, "{:#010x}", self.0.cast_unsigned()),
        }
    }
}
