//! The user address space of the emulated process.
//!
//! Buffers a client passes in a request are *user memory*. The driver must never touch them
//! itself: it gets them captured, probed and mapped by ks.sys (`KsPropertyHandler`,
//! `KsValidateConnectRequest`, `KsProbeStreamIrp`, `KsAcquireResetValue`). To make a violation
//! visible, every user address kshost hands to the driver (`Type3InputBuffer`, `UserBuffer`, the
//! `Data` of captured stream headers) carries bit 62: it is non-canonical on x86-64, so a direct
//! dereference raises a general-protection fault, which [`install_fault_reporter`] names as
//! `USER_BUFFER_DEREFERENCE` before the process dies. Only the kshost capture paths untag them —
//! and only for ranges that are mapped here, the way `ProbeForRead` fails for unmapped addresses.

use crate::sync::Locked;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The tag bit of user addresses.
const USER_TAG: usize = 1 << 62;

/// Tags a real address as a user-mode address.
#[must_use]
pub fn to_user(ptr: *const u8) -> usize {
    if ptr.is_null() { 0 } else { ptr as usize | USER_TAG }
}

/// Whether `addr` is a tagged user-mode address.
#[must_use]
pub fn is_user(addr: usize) -> bool {
    addr & USER_TAG != 0
}

/// The process's mapped ranges (they may overlap: a request's buffer inside a user buffer).
#[derive(Default)]
pub(crate) struct UserSpace {
    /// (start, mapping id) → length.
    ranges: Mutex<BTreeMap<(usize, u64), usize>>,
    next_id: AtomicU64,
}

impl UserSpace {
    /// Maps `len` bytes at `ptr` until [`UserSpace::unmap`] with the returned id.
    pub(crate) fn map(&self, ptr: *const u8, len: usize) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if len > 0 && !ptr.is_null() {
            self.ranges.locked().insert((ptr as usize, id), len);
        }
        id
    }

    pub(crate) fn unmap(&self, ptr: *const u8, id: u64) {
        self.ranges.locked().remove(&(ptr as usize, id));
    }

    /// The real address behind the user range `addr..addr+len`, if all of it is mapped: what
    /// `ProbeForRead`/`ProbeForWrite` check. `len == 0` is valid for any address (as on Windows).
    pub(crate) fn probe(&self, addr: usize, len: usize) -> Option<*mut u8> {
        if len == 0 {
            return Some(std::ptr::without_provenance_mut(addr & !USER_TAG));
        }
        if !is_user(addr) {
            return None;
        }
        let real = addr & !USER_TAG;
        let end = real.checked_add(len)?;
        let ranges = self.ranges.locked();
        let covered = ranges.range(..=(real, u64::MAX)).rev().any(|(&(start, _), &len)| start + len >= end);
        // Recover a pointer with the provenance of the mapped buffer's owner: the client's own
        // allocation, which outlives the mapping (`to_user` exposed it).
        covered.then(|| std::ptr::with_exposed_provenance_mut(real))
    }
}

/// Installs (once per process) a SIGSEGV handler that names general-protection faults — the fault
/// a tagged user address raises — as the verifier rule `USER_BUFFER_DEREFERENCE`, and page faults
/// in special pool as the bug check Windows raises for them, then lets the process die. Other
/// faults go to the previous handler (Rust's stack-overflow guard).
pub fn install_fault_reporter() {
    #[cfg(all(unix, target_arch = "x86_64"))]
    fault::install();
}

#[cfg(all(unix, target_arch = "x86_64"))]
mod fault {
    use std::sync::{Once, OnceLock};

    static INSTALL: Once = Once::new();
    /// The disposition before ours (for faults that are not ours).
    static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

    /// `SI_KERNEL`: the siginfo code of a general-protection fault (no fault address).
    const SI_KERNEL: i32 = 0x80;

    const MESSAGE: &[u8] =
        b"\nkshost verifier: USER_BUFFER_DEREFERENCE: the driver dereferenced a user-mode address \
(a tagged, non-canonical pointer) outside the ks.sys capture paths. On Windows this reads whatever the \
current process has there, or raises an exception Rust cannot catch. Use the captured system buffer or \
the MDL's system address.\n";

    /// The `SIGSEGV` handler.
    ///
    /// # Safety
    /// Called only by the kernel as an `SA_SIGINFO` handler: `info` is the fault's valid siginfo.
    unsafe extern "C" fn on_segv(sig: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let code = unsafe { (*info).si_code };
        let ours = if code == SI_KERNEL {
            // SAFETY: write(2) is async-signal-safe; the message is a static byte string.
            unsafe { libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len()) };
            true
        } else {
            // SAFETY: as above.
            let info = unsafe { &*info };
            // SAFETY: a page fault's siginfo carries the faulting address.
            let addr = unsafe { info.si_addr() } as usize;
            crate::special_pool::describe_fault(addr).is_some_and(|f| {
                report_special_pool(addr, &f);
                true
            })
        };
        // Hand over to the previous disposition (default: die with SIGSEGV).
        let (handler, flags) = PREVIOUS.get().map_or((libc::SIG_DFL, 0), |p| (p.sa_sigaction, p.sa_flags));
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN || ours {
            // SAFETY: restoring the default action; returning re-executes the faulting instruction,
            // which now terminates the process with SIGSEGV.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        } else if flags & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed as an SA_SIGINFO handler with this signature.
            let f: extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(handler) };
            f(sig, info, context);
        } else {
            // SAFETY: a plain handler takes the signal number.
            let f: extern "C" fn(i32) = unsafe { std::mem::transmute(handler) };
            f(sig);
        }
    }

    /// Writes the special-pool finding without allocating (we are in a signal handler): the bug
    /// check Windows raises, the address, and the block with its tag.
    fn report_special_pool(addr: usize, f: &crate::special_pool::FaultInfo) {
        let mut line = Line::default();
        line.text(b"\nkshost verifier: SPECIAL_POOL: ");
        line.text(f.name.as_bytes());
        line.text(b" (bug check 0x");
        line.hex(f.bug_check as usize);
        line.text(b"): the driver touched 0x");
        line.hex(addr);
        line.text(if f.bug_check == 0xD5 {
            b" in freed pool block 0x"
        } else {
            b" past the end of pool block 0x"
        });
        line.hex(f.start);
        line.text(b" of 0x");
        line.hex(f.size);
        line.text(b" bytes tagged '");
        for b in f.tag.to_le_bytes() {
            line.text(&[if b.is_ascii_graphic() { b } else { b'.' }]);
        }
        line.text(b"'\n");
        // SAFETY: write(2) is async-signal-safe; the bytes are on this stack.
        unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
    }

    /// A fixed-size line built without allocation.
    struct Line {
        buf: [u8; 256],
        len: usize,
    }

    impl Default for Line {
        fn default() -> Self {
            Self { buf: [0; 256], len: 0 }
        }
    }

    impl Line {
        fn text(&mut self, bytes: &[u8]) {
            for &b in bytes {
                if self.len < self.buf.len() {
                    self.buf[self.len] = b;
                    self.len += 1;
                }
            }
        }

        fn hex(&mut self, value: usize) {
            let digits = (usize::BITS - value.leading_zeros()).div_ceil(4).max(1);
            for i in (0..digits).rev() {
                let d = (value >> (i * 4)) & 0xF;
                self.text(&[b"0123456789abcdef"[d]]);
            }
        }
    }

    pub(super) fn install() {
        INSTALL.call_once(|| {
            // SAFETY: zeroed sigaction is a valid starting point; fields are set below.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            let handler: unsafe extern "C" fn(i32, *mut libc::siginfo_t, *mut libc::c_void) = on_segv;
            action.sa_sigaction = handler as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: the mask field belongs to `action`.
            unsafe { libc::sigemptyset(&raw mut action.sa_mask) };
            // SAFETY: zeroed sigaction is valid; it receives the old disposition.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: runs once, with valid structures.
            unsafe { libc::sigaction(libc::SIGSEGV, &raw const action, &raw mut old) };
            let _ = PREVIOUS.set(old);
        });
    }
}
