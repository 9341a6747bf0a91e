//! Which backend a run talks to, and what ending the run means for it.

use ksclient::Backend;
#[cfg(any(not(windows), feature = "emulated"))]
use ksclient::emulated::Emulated;

/// Spin-lock holds of the driver: the longest, the 99.9th percentile, the most bytes copied
/// under one.
#[derive(Clone, Copy, Debug)]
pub struct Holds {
    pub max: std::time::Duration,
    pub p999: std::time::Duration,
    pub max_bytes: u64,
}

/// The backend of this run.
pub enum Session {
    /// kshost running the real driver.
    #[cfg(any(not(windows), feature = "emulated"))]
    Emulated(Emulated),
    /// The installed driver.
    #[cfg(windows)]
    Windows(ksclient::win32::Windows),
}

impl Session {
    /// The emulated machine, or the installed driver.
    pub fn open(emulated: bool) -> Result<Self, String> {
        if emulated {
            return Self::emulated();
        }
        #[cfg(windows)]
        {
            Ok(Self::Windows(ksclient::win32::Windows::new()))
        }
        #[cfg(not(windows))]
        {
            Err("there is no installed driver off Windows: add --emulated to run the driver under kshost"
                .into())
        }
    }

    #[cfg(any(not(windows), feature = "emulated"))]
    fn emulated() -> Result<Self, String> {
        let settings = kshost::Settings::default();
        Emulated::boot_with(settings)
            .map(Self::Emulated)
            .map_err(|e| format!("installing the driver in kshost: {e}"))
    }

    #[cfg(all(windows, not(feature = "emulated")))]
    fn emulated() -> Result<Self, String> {
        Err("this ksctl was built without the emulated backend (cargo build -p ksctl --features emulated)"
            .into())
    }

    /// The backend to send requests through.
    pub fn backend(&self) -> &dyn Backend {
        match self {
            #[cfg(any(not(windows), feature = "emulated"))]
            Self::Emulated(e) => e,
            #[cfg(windows)]
            Self::Windows(w) => w,
        }
    }

    /// Forgets the spin-lock holds measured so far (emulated only).
    pub fn reset_spin_lock_holds(&self) {
        match self {
            #[cfg(any(not(windows), feature = "emulated"))]
            Self::Emulated(e) => e.machine().reset_spin_lock_holds(),
            #[cfg(windows)]
            Self::Windows(_) => {}
        }
    }

    /// The driver's spin-lock holds since the last reset, as kshost measured them (emulated
    /// only: on Windows, DPC/ISR time comes from `xperf`/WPA).
    #[allow(clippy::unnecessary_wraps)] // None on the Windows backend
    pub fn spin_lock_holds(&self) -> Option<Holds> {
        match self {
            #[cfg(any(not(windows), feature = "emulated"))]
            Self::Emulated(e) => {
                let h = e.machine().spin_lock_holds();
                Some(Holds { max: h.max, p999: h.p999, max_bytes: h.max_bytes })
            }
            #[cfg(windows)]
            Self::Windows(_) => None,
        }
    }

    /// Ends the run. Emulated: closes everything, removes the device, unloads the driver, and
    /// fails if kshost's verifier saw anything (a leak, an IRP never completed, a rule broken).
    pub fn finish(self) -> Result<(), String> {
        match self {
            #[cfg(any(not(windows), feature = "emulated"))]
            Self::Emulated(e) => {
                let report = e.shutdown();
                if report.violations.is_empty() {
                    Ok(())
                } else {
                    Err(format!("kshost's verifier found problems:\n{}", report.describe()))
                }
            }
            #[cfg(windows)]
            Self::Windows(_) => Ok(()),
        }
    }
}
