//! Which backend a run talks to, and what ending the run means for it.

use ksclient::Backend;
#[cfg(any(not(windows), feature = "emulated"))]
use ksclient::emulated::Emulated;

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
