//! `NTSTATUS` → Win32 error and readable names: ksabi's tables, with a `String` form for messages.

pub use ksabi::{ERROR_MR_MID_NOT_FOUND, win32_error};

/// `STATUS_X (0x...)`, or the hex value alone.
#[must_use]
pub fn describe(status: ksabi::NTSTATUS) -> String {
    ksabi::StatusText(status).to_string()
}
