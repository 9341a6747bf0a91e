//! The shared machine and the invariants every harness checks.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use ksabi::{NTSTATUS, StatusText, status_name};
use ksclient::emulated::Emulated;

/// One machine for the whole fuzzing process (booting per input would cost more than the input),
/// used by one input at a time.
pub struct World {
    /// The machine with ksring installed.
    pub backend: Emulated,
    /// Pool the driver holds with nothing open (the device's own allocations).
    baseline: usize,
}

static WORLD: OnceLock<Mutex<World>> = OnceLock::new();

fn pool(backend: &Emulated) -> usize {
    backend.machine().pool_in_use().iter().map(|(_, size, _)| size).sum()
}

/// The machine, for one input.
///
/// # Panics
/// If ksring does not install.
pub fn world() -> MutexGuard<'static, World> {
    WORLD
        .get_or_init(|| {
            // A request that never completes is a finding; do not wait long for it.
            let settings =
                kshost::Settings { hang_timeout: Duration::from_secs(5), ..kshost::Settings::default() };
            let backend = Emulated::boot_with(settings).expect("ksring installs");
            let baseline = pool(&backend);
            Mutex::new(World { backend, baseline })
        })
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

impl World {
    /// With everything the input opened closed: the verifier is silent and the pool is back to
    /// where it started.
    ///
    /// # Panics
    /// On a verifier finding or a leak (that is the point).
    pub fn assert_clean(&self, what: &str) {
        self.backend.machine().settle();
        let v = self.backend.machine().violations();
        assert!(
            v.is_empty(),
            "{what}: kshost's verifier: {}",
            v.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        );
        let now = pool(&self.backend);
        assert_eq!(now, self.baseline, "{what}: pool {now} bytes, {} with nothing open", self.baseline);
    }
}

/// A status must be one ksring or ks.sys defines (never garbage, never `STATUS_PENDING` from a
/// completed request).
///
/// # Panics
/// Otherwise.
pub fn assert_defined(what: &str, status: NTSTATUS) {
    assert!(
        status_name(status).is_some() && status != ksabi::STATUS_PENDING,
        "{what}: undefined status {}",
        StatusText(status)
    );
}

/// Reads bytes off the front of the input.
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    /// The next byte (0 when the input is exhausted).
    pub fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    /// The next little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &[u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    /// Whatever is left.
    pub fn rest(&mut self) -> &[u8] {
        std::mem::take(&mut self.0)
    }
}
