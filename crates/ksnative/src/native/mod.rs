//! The NT native program: runtime (entry, heap, panic, output, shutdown), I/O, scenarios.

mod bad_input;
mod graph;
mod io;
mod nt;
mod scenarios;
mod stream;

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicPtr, Ordering};

use ksabi::UNICODE_STRING;

use ksnative::names;
use ksnative::ntuser::{
    CURRENT_PROCESS, PARAMETERS_COMMAND_LINE, PEB_PROCESS_HEAP, PEB_PROCESS_PARAMETERS,
    SE_SHUTDOWN_PRIVILEGE, SHARED_NT_MAJOR_VERSION, SHARED_NT_MINOR_VERSION, SHUTDOWN_REBOOT,
    USER_SHARED_DATA,
};

/// The process heap (from the PEB), for the allocator.
static HEAP: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// The global allocator: the process heap through `RtlAllocateHeap` (16-byte aligned blocks).
struct ProcessHeap;

// SAFETY: RtlAllocateHeap/RtlFreeHeap are thread-safe on the (serialized) process heap; blocks
// are 16-byte aligned on x64, and larger alignments are refused with null.
unsafe impl GlobalAlloc for ProcessHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() > 16 {
            return core::ptr::null_mut();
        }
        // SAFETY: the heap handle comes from the PEB; flags 0.
        unsafe { nt::RtlAllocateHeap(HEAP.load(Ordering::Relaxed), 0, layout.size()) }.cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from `alloc` on the same heap.
        unsafe { nt::RtlFreeHeap(HEAP.load(Ordering::Relaxed), 0, ptr.cast()) };
    }
}

#[global_allocator]
static ALLOCATOR: ProcessHeap = ProcessHeap;

/// The MSVC toolchain references `_fltused` from any object that uses floating point.
// SAFETY: a plain data symbol defined nowhere else in this image.
#[unsafe(no_mangle)]
static _fltused: i32 = 0;

/// Prints one line on the debugger port (at most ~500 bytes: `DbgPrint`'s buffer).
pub fn say(line: &str) {
    let mut bytes: Vec<u8> = line.bytes().filter(|&b| b != 0).take(500).collect();
    bytes.extend_from_slice(b"\n\0");
    // SAFETY: "%s" consumes the one NUL-terminated string passed.
    unsafe { nt::DbgPrint(c"%s".as_ptr(), bytes.as_ptr()) };
}

/// `sayf!("fmt", args...)`.
macro_rules! sayf {
    ($($arg:tt)*) => { $crate::native::say(&alloc::format!($($arg)*)) };
}
pub(crate) use sayf;

/// Milliseconds since an arbitrary point.
pub fn now_ms() -> u64 {
    let (mut counter, mut frequency) = (0i64, 0i64);
    // SAFETY: two valid out pointers.
    unsafe { nt::NtQueryPerformanceCounter(&raw mut counter, &raw mut frequency) };
    let f = u64::try_from(frequency).unwrap_or(1).max(1);
    u64::try_from(counter).unwrap_or(0).saturating_mul(1000) / f
}

/// Sleeps `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    let mut interval = -i64::try_from(ms.saturating_mul(10_000)).unwrap_or(i64::MAX);
    // SAFETY: a valid relative interval.
    unsafe { nt::NtDelayExecution(0, &raw mut interval) };
}

/// The NT version the kernel reports (`KUSER_SHARED_DATA.NtMajorVersion`, `NtMinorVersion`).
pub fn nt_version() -> (u32, u32) {
    let at = |offset: usize| {
        // SAFETY: KUSER_SHARED_DATA is mapped read-only at this address in every process; the
        // fields are aligned ULONGs.
        unsafe { core::ptr::with_exposed_provenance::<u32>(USER_SHARED_DATA + offset).read_volatile() }
    };
    (at(SHARED_NT_MAJOR_VERSION), at(SHARED_NT_MINOR_VERSION))
}

/// Whether this is the lab's kernel: ReactOS reports NT 5.2 (Windows Server 2003), on which
/// ksring does not run otherwise (it needs NT 6 or later).
pub fn reactos() -> bool {
    nt_version() == (5, 2)
}

/// Ends the process without closing anything (the kernel's process rundown closes the handles).
pub fn terminate(status: i32) -> ! {
    // SAFETY: terminating the current process does not return.
    unsafe { nt::NtTerminateProcess(CURRENT_PROCESS, status) };
    loop {
        sleep_ms(1000);
    }
}

/// Reboots the machine; QEMU (`-no-reboot`) exits.
fn shut_down() -> ! {
    let mut was = 0u8;
    // SAFETY: valid out pointer; smss's children hold the shutdown privilege.
    unsafe { nt::RtlAdjustPrivilege(SE_SHUTDOWN_PRIVILEGE, 1, 0, &raw mut was) };
    // SAFETY: no arguments beyond the action.
    let status = unsafe { nt::NtShutdownSystem(SHUTDOWN_REBOOT) };
    sayf!("KSRING-NATIVE: NtShutdownSystem returned {status:#x}");
    terminate(status)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut text = String::new();
    let _ = write!(text, "FAIL panic: {info}");
    say(&text);
    say("KSRING-NATIVE-PANIC");
    terminate(-1)
}

/// Reads a pointer-sized value at `base + offset`.
///
/// # Safety
/// `base + offset` is a readable, aligned pointer-sized location.
unsafe fn read_ptr(base: *const u8, offset: usize) -> *const u8 {
    #[allow(clippy::cast_ptr_alignment)] // the caller promises an aligned location
    let at = base.wrapping_add(offset).cast::<*const u8>();
    // SAFETY: the caller's promise.
    unsafe { at.read() }
}

/// The entry point smss's process creation calls, with the PEB.
///
/// # Safety
/// Called once by ntdll's process start with the process's PEB.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn NtProcessStartup(peb: *const u8) -> ! {
    // SAFETY: the PEB is mapped and holds the process heap at this offset.
    let heap = unsafe { read_ptr(peb, PEB_PROCESS_HEAP) };
    HEAP.store(heap.cast_mut().cast(), Ordering::Relaxed);
    // SAFETY: the PEB holds the process parameters pointer at this offset.
    let parameters = unsafe { read_ptr(peb, PEB_PROCESS_PARAMETERS) };
    #[allow(clippy::cast_ptr_alignment)] // the parameters block is pointer-aligned
    let line = parameters.wrapping_add(PARAMETERS_COMMAND_LINE).cast::<UNICODE_STRING>();
    // SAFETY: the parameters block holds the command line at this offset.
    let line = unsafe { line.read() };
    let units = usize::from(line.Length / 2);
    // SAFETY: the command line's buffer holds `Length` bytes for the life of the process.
    let line: Vec<u16> = unsafe { core::slice::from_raw_parts(line.Buffer, units) }.to_vec();
    let words = names::words(&line);
    sayf!("KSRING-NATIVE-HELLO {}", String::from_utf16_lossy(&line));
    let (major, minor) = nt_version();
    sayf!(
        "KSRING-NATIVE: the kernel reports NT {major}.{minor}{}",
        if reactos() { " (ReactOS)" } else { "" }
    );
    let mode = words.get(1).copied().unwrap_or(&[]);
    if names::is(mode, "after-exit") {
        scenarios::after_exit();
        say("KSRING-NATIVE-DONE");
        shut_down();
    }
    let only = words.get(2).map(|w| String::from_utf16_lossy(w));
    let exit_with_handles_open = scenarios::run(only.as_deref());
    if exit_with_handles_open {
        say("KSRING-NATIVE: exiting with the filter and pins open");
        terminate(0);
    }
    say("KSRING-NATIVE-DONE");
    shut_down()
}
