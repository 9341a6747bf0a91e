//! Scalar NT types and the small structs every other type is built from.

use core::ffi::c_void;

/// `NTSTATUS`: a signed 32-bit status; negative values are errors.
pub type NTSTATUS = i32;
/// `BOOLEAN`: one byte, 0 or 1. Kept as `u8` (not `bool`) because values come from C.
pub type BOOLEAN = u8;
/// `KIRQL`: interrupt request level of the current processor.
pub type KIRQL = u8;
/// `KPROCESSOR_MODE`: `KernelMode` (0) or `UserMode` (1).
pub type KPROCESSOR_MODE = i8;
/// `KSPIN_LOCK`: a `ULONG_PTR` that the kernel spins on.
pub type KSPIN_LOCK = usize;
/// `ACCESS_MASK`: requested or granted access rights.
pub type ACCESS_MASK = u32;
/// `HANDLE`: an opaque object handle.
pub type HANDLE = *mut c_void;
/// `PVOID`.
pub type PVOID = *mut c_void;
/// `LARGE_INTEGER`, whose C definition is a union over one `LONGLONG`.
pub type LARGE_INTEGER = i64;
/// `POOL_FLAGS` of `ExAllocatePool2`: a 64-bit flag word.
pub type POOL_FLAGS = u64;

/// `KernelMode` requestor.
pub const KernelMode: KPROCESSOR_MODE = 0;
/// `UserMode` requestor.
pub const UserMode: KPROCESSOR_MODE = 1;

/// `PASSIVE_LEVEL`.
pub const PASSIVE_LEVEL: KIRQL = 0;
/// `APC_LEVEL`.
pub const APC_LEVEL: KIRQL = 1;
/// `DISPATCH_LEVEL`: spin locks held, no paging, no waits.
pub const DISPATCH_LEVEL: KIRQL = 2;

/// `TRUE` as a `BOOLEAN`.
pub const TRUE: BOOLEAN = 1;
/// `FALSE` as a `BOOLEAN`.
pub const FALSE: BOOLEAN = 0;

/// A GUID in its in-memory (little-endian fields) form.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct GUID {
    /// First 8 hex digits.
    pub Data1: u32,
    /// Next 4 hex digits.
    pub Data2: u16,
    /// Next 4 hex digits.
    pub Data3: u16,
    /// Last 16 hex digits, in text order.
    pub Data4: [u8; 8],
}

/// `GUID_NULL`, which KS also uses as the data-format wildcard.
pub const GUID_NULL: GUID = GUID::from_u128(0);

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

impl GUID {
    /// Builds a GUID from the 128-bit number written in its text form:
    /// `from_u128(0xAAAAAAAA_BBBB_CCCC_DDDD_EEEEEEEEEEEE)` is `{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}`.
    #[must_use]
    #[allow(clippy::cast_possible_truncation)] // each field takes its slice of the 128 bits
    pub const fn from_u128(value: u128) -> Self {
        let tail = (value as u64).to_be_bytes();
        Self {
            Data1: (value >> 96) as u32,
            Data2: (value >> 80) as u16,
            Data3: (value >> 64) as u16,
            Data4: tail,
        }
    }

    /// The 128-bit number of the text form (inverse of [`GUID::from_u128`]).
    #[must_use]
    pub const fn to_u128(&self) -> u128 {
        ((self.Data1 as u128) << 96)
            | ((self.Data2 as u128) << 80)
            | ((self.Data3 as u128) << 64)
            | (u64::from_be_bytes(self.Data4) as u128)
    }

    /// The GUID from its 16 bytes as they lie in memory (little-endian fields, as in a request).
    #[must_use]
    pub const fn from_le_bytes(b: [u8; 16]) -> Self {
        Self {
            Data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Data2: u16::from_le_bytes([b[4], b[5]]),
            Data3: u16::from_le_bytes([b[6], b[7]]),
            Data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }

    /// The 16 bytes of the GUID as they lie in memory (inverse of [`GUID::from_le_bytes`]).
    #[must_use]
    pub const fn to_le_bytes(&self) -> [u8; 16] {
        let a = self.Data1.to_le_bytes();
        let b = self.Data2.to_le_bytes();
        let c = self.Data3.to_le_bytes();
        let d = self.Data4;
        [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]
    }

    /// The braced, upper-case text form as ASCII bytes, e.g. `{146F1A80-4791-11D0-A5D6-28DB04C10000}`.
    #[must_use]
    pub const fn to_braced_ascii(&self) -> [u8; 38] {
        let mut out = [0u8; 38];
        let value = self.to_u128();
        out[0] = b'{';
        out[37] = b'}';
        let mut pos = 1;
        let mut nibble = 0;
        while nibble < 32 {
            if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                out[pos] = b'-';
                pos += 1;
            }
            let shift = 124 - nibble * 4;
            out[pos] = HEX_UPPER[((value >> shift) & 0xF) as usize];
            pos += 1;
            nibble += 1;
        }
        out
    }

    /// The braced, upper-case text form as UTF-16 code units (no NUL), as KS create-item names use it.
    #[must_use]
    pub const fn to_braced_utf16(&self) -> [u16; 38] {
        let ascii = self.to_braced_ascii();
        let mut out = [0u16; 38];
        let mut i = 0;
        while i < 38 {
            out[i] = ascii[i] as u16;
            i += 1;
        }
        out
    }

    /// Parses the text form, with or without braces, in any letter case.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let inner = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(text);
        let bytes = inner.as_bytes();
        if bytes.len() != 36 {
            return None;
        }
        let mut value: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return None;
                }
                continue;
            }
            let digit = char::from(b).to_digit(16)?;
            value = (value << 4) | u128::from(digit);
        }
        Some(Self::from_u128(value))
    }
}

impl core::fmt::Debug for GUID {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl core::fmt::Display for GUID {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = self.to_braced_ascii();
        // The array holds only ASCII hex digits, dashes and braces.
        f.write_str(core::str::from_utf8(&text).unwrap_or("{?}"))
    }
}

/// `UNICODE_STRING`: a counted UTF-16 string; `Length` and `MaximumLength` are in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UNICODE_STRING {
    /// Bytes in use, without any terminating NUL.
    pub Length: u16,
    /// Bytes allocated at `Buffer`.
    pub MaximumLength: u16,
    /// The characters.
    pub Buffer: *mut u16,
}

/// `LIST_ENTRY`: a doubly linked list link.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct LIST_ENTRY {
    /// Next entry (the head when last).
    pub Flink: *mut LIST_ENTRY,
    /// Previous entry (the head when first).
    pub Blink: *mut LIST_ENTRY,
}

/// `IO_STATUS_BLOCK`: the final status of an I/O request and its count of bytes.
///
/// C declares the first member as `union { NTSTATUS Status; PVOID Pointer; }`; drivers only use
/// `Status`, which occupies the low half of that pointer-sized slot.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct IO_STATUS_BLOCK {
    /// The completion status.
    pub Status: NTSTATUS,
    /// Upper half of the `Pointer` member of the C union.
    pub PointerHighHalf: u32,
    /// Request-dependent: bytes transferred, or the size needed.
    pub Information: usize,
}

/// `DISPATCHER_HEADER`, the common head of kernel dispatcher objects (events, timers...).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DISPATCHER_HEADER {
    /// Type/lock word (a union of bytes and a `LONG` in C).
    pub Lock: i32,
    /// Signalled state.
    pub SignalState: i32,
    /// Threads waiting on the object.
    pub WaitListHead: LIST_ENTRY,
}

/// `KEVENT`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KEVENT {
    /// The dispatcher header.
    pub Header: DISPATCHER_HEADER,
}

/// `KDPC`: a deferred procedure call object (opaque to ksring; here for the layout of `DEVICE_OBJECT`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KDPC {
    /// Type, importance, number (a union in C).
    pub TargetInfoAsUlong: u32,
    /// `SINGLE_LIST_ENTRY DpcListEntry`.
    pub DpcListEntry: PVOID,
    /// Processor history bitmap.
    pub ProcessorHistory: usize,
    /// The routine to run.
    pub DeferredRoutine: PVOID,
    /// Its context.
    pub DeferredContext: PVOID,
    /// First argument.
    pub SystemArgument1: PVOID,
    /// Second argument.
    pub SystemArgument2: PVOID,
    /// Kernel bookkeeping.
    pub DpcData: PVOID,
}

/// `OBJECT_ATTRIBUTES`: what `ZwOpenKey` (and other `Zw*` opens) is told to open.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OBJECT_ATTRIBUTES {
    /// `sizeof(OBJECT_ATTRIBUTES)`.
    pub Length: u32,
    /// A handle the name is relative to, or null.
    pub RootDirectory: crate::HANDLE,
    /// The object's name.
    pub ObjectName: *mut UNICODE_STRING,
    /// `OBJ_*` flags.
    pub Attributes: u32,
    /// Unused here (null).
    pub SecurityDescriptor: *mut core::ffi::c_void,
    /// Unused here (null).
    pub SecurityQualityOfService: *mut core::ffi::c_void,
}

/// `KEY_VALUE_PARTIAL_INFORMATION`: a registry value's type and data (`Data` runs on for
/// `DataLength` bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KEY_VALUE_PARTIAL_INFORMATION {
    /// Unused.
    pub TitleIndex: u32,
    /// `REG_*` type.
    pub Type: u32,
    /// Bytes of data.
    pub DataLength: u32,
    /// The first byte of the data.
    pub Data: [u8; 1],
}

/// `OBJ_CASE_INSENSITIVE`.
pub const OBJ_CASE_INSENSITIVE: u32 = 0x0000_0040;
/// `KEY_READ`.
pub const KEY_READ: u32 = 0x0002_0019;
/// `REG_DWORD`.
pub const REG_DWORD: u32 = 4;
/// `REG_SZ`.
pub const REG_SZ: u32 = 1;
/// `KeyValuePartialInformation` (`KEY_VALUE_INFORMATION_CLASS`).
pub const KeyValuePartialInformation: i32 = 2;
