//! KS I/O control codes (KS-REFERENCE §3.1), computed with `CTL_CODE` as the headers do.

use crate::FILE_DEVICE_KS;

/// `METHOD_BUFFERED`.
pub const METHOD_BUFFERED: u32 = 0;
/// `METHOD_NEITHER`: buffers reach the driver as raw caller addresses (every KS IOCTL).
pub const METHOD_NEITHER: u32 = 3;
/// `FILE_ANY_ACCESS`.
pub const FILE_ANY_ACCESS: u32 = 0;
/// `FILE_READ_ACCESS`: the handle must have been opened for reading.
pub const FILE_READ_ACCESS: u32 = 1;
/// `FILE_WRITE_ACCESS`: the handle must have been opened for writing.
pub const FILE_WRITE_ACCESS: u32 = 2;

/// `CTL_CODE(DeviceType, Function, Method, Access)`.
#[must_use]
pub const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// The transfer method of a control code (low two bits).
#[must_use]
pub const fn ctl_method(code: u32) -> u32 {
    code & 3
}

/// The required access of a control code (bits 14..16).
#[must_use]
pub const fn ctl_access(code: u32) -> u32 {
    (code >> 14) & 3
}

/// `IOCTL_KS_PROPERTY`: request in the input buffer, value in the output buffer (GET and SET).
pub const IOCTL_KS_PROPERTY: u32 = ctl_code(FILE_DEVICE_KS, 0x000, METHOD_NEITHER, FILE_ANY_ACCESS);
/// `IOCTL_KS_ENABLE_EVENT`.
pub const IOCTL_KS_ENABLE_EVENT: u32 = ctl_code(FILE_DEVICE_KS, 0x001, METHOD_NEITHER, FILE_ANY_ACCESS);
/// `IOCTL_KS_DISABLE_EVENT`.
pub const IOCTL_KS_DISABLE_EVENT: u32 = ctl_code(FILE_DEVICE_KS, 0x002, METHOD_NEITHER, FILE_ANY_ACCESS);
/// `IOCTL_KS_METHOD`.
pub const IOCTL_KS_METHOD: u32 = ctl_code(FILE_DEVICE_KS, 0x003, METHOD_NEITHER, FILE_ANY_ACCESS);
/// `IOCTL_KS_WRITE_STREAM`: the header array is the *output* buffer.
pub const IOCTL_KS_WRITE_STREAM: u32 = ctl_code(FILE_DEVICE_KS, 0x004, METHOD_NEITHER, FILE_WRITE_ACCESS);
/// `IOCTL_KS_READ_STREAM`: the header array is the output buffer.
pub const IOCTL_KS_READ_STREAM: u32 = ctl_code(FILE_DEVICE_KS, 0x005, METHOD_NEITHER, FILE_READ_ACCESS);
/// `IOCTL_KS_RESET_STATE`: a `KSRESET` in the input buffer.
pub const IOCTL_KS_RESET_STATE: u32 = ctl_code(FILE_DEVICE_KS, 0x006, METHOD_NEITHER, FILE_ANY_ACCESS);
/// `IOCTL_KS_HANDSHAKE`.
pub const IOCTL_KS_HANDSHAKE: u32 = ctl_code(FILE_DEVICE_KS, 0x007, METHOD_NEITHER, FILE_ANY_ACCESS);
