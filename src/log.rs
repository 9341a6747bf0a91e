//! Debug output without allocation: format into a stack buffer, print one NUL-terminated line.

use core::ffi::CStr;
use core::fmt::{self, Write};

/// `DPFLTR_ERROR_LEVEL`: always shown.
pub const LEVEL_ERROR: u32 = 0;
/// `DPFLTR_INFO_LEVEL`: shown when the debug filter mask enables it.
pub const LEVEL_INFO: u32 = 3;

/// A line of at most 255 bytes; longer output is cut, never an error.
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.len() - 1 - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Formats and prints one line at `level`.
pub fn print(level: u32, args: fmt::Arguments<'_>) {
    let mut line = Line { bytes: [0; 256], len: 0 };
    let _ = line.write_str("ksring: ");
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    // Interior NULs from the formatted text would end the string early; that is acceptable.
    if let Ok(text) = CStr::from_bytes_until_nul(&line.bytes) {
        crate::sys::debug_print(level, text);
    }
}

/// `kdprint!(LEVEL, "fmt", args...)`: one line to the kernel debugger (stderr on the host).
macro_rules! kdprint {
    ($level:expr, $($arg:tt)*) => { $crate::log::print($level, format_args!($($arg)*)) };
}
pub(crate) use kdprint;
