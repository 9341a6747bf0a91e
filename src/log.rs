//! Debug output without allocation and without `core::fmt` (its padding and counting code is a
//! few hundred bytes of a kernel image that prints three kinds of line): a text and, optionally, a
//! status in hex, into a stack buffer, printed as one NUL-terminated line.

use core::ffi::CStr;

/// `DPFLTR_ERROR_LEVEL`: always shown.
pub const LEVEL_ERROR: u32 = 0;
/// `DPFLTR_INFO_LEVEL`: shown when the debug filter mask enables it.
pub const LEVEL_INFO: u32 = 3;

/// A line of at most 255 bytes; longer output is cut, never an error.
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Line {
    fn push(&mut self, s: &[u8]) {
        let room = self.bytes.len() - 1 - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s[..take]);
        self.len += take;
    }

    /// ` 0x` and `value`'s eight hex digits (an `NTSTATUS` as `{:#010x}` shows it).
    fn push_hex(&mut self, value: u32) {
        let mut digits = *b" 0x00000000";
        for (k, d) in digits[3..].iter_mut().enumerate() {
            let nibble = (value >> (28 - 4 * k)) & 0xF;
            *d = b"0123456789abcdef"[nibble as usize];
        }
        self.push(&digits);
    }
}

/// Prints `ksring: <text>[ 0x<value>]` at `level`.
pub fn print(level: u32, text: &str, value: Option<u32>) {
    let mut line = Line { bytes: [0; 256], len: 0 };
    line.push(b"ksring: ");
    line.push(text.as_bytes());
    if let Some(value) = value {
        line.push_hex(value);
    }
    line.push(b"\n");
    // Interior NULs in the text would end the string early; that is acceptable.
    if let Ok(text) = CStr::from_bytes_until_nul(&line.bytes) {
        crate::sys::debug_print(level, text);
    }
}

/// `kdprint!(LEVEL, "text")` or `kdprint!(LEVEL, "text", status)`: one line to the kernel debugger
/// (stderr on the host), the status in hex after the text.
macro_rules! kdprint {
    ($level:expr, $text:expr) => {
        $crate::log::print($level, $text, None)
    };
    ($level:expr, $text:expr, $status:expr) => {
        $crate::log::print($level, $text, Some($status.cast_unsigned()))
    };
}
pub(crate) use kdprint;

#[cfg(test)]
mod tests {
    use super::Line;

    #[test]
    fn a_status_is_eight_hex_digits() {
        let mut line = Line { bytes: [0; 256], len: 0 };
        line.push(b"x failed:");
        line.push_hex(0xC000_009A);
        line.push_hex(0x1);
        assert_eq!(&line.bytes[..line.len], b"x failed: 0xc000009a 0x00000001");
    }

    #[test]
    fn a_long_line_is_cut_and_stays_terminated() {
        let mut line = Line { bytes: [0; 256], len: 0 };
        line.push(&[b'a'; 300]);
        assert_eq!(line.len, 255);
        assert_eq!(line.bytes[255], 0);
    }
}
