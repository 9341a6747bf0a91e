//! The emulated backend: kshost with the real ksring driver installed from `inf/ksring.inx`.
//! Requests go through kshost's I/O manager and ks.sys into the driver's code, under kshost's
//! verifier.

use ksabi::{GENERIC_READ, GENERIC_WRITE, GUID};
use kshost::{Machine, Overlapped, Report, Settings, UserBuffer};

use crate::backend::{Backend, Fail, FilterPath, Handle, Io, IoMemory, Pending};

/// The driver's INF, as the emulated machine installs it.
pub const INF: &str = include_str!("../../../inf/ksring.inx");

/// A kshost machine with ksring installed and started.
pub struct Emulated {
    machine: Option<Machine>,
}

impl Emulated {
    /// Boots a machine and installs ksring (`DriverEntry`, `AddDevice`, start, interface enabled).
    ///
    /// # Errors
    /// The install failure, as text.
    pub fn boot() -> Result<Self, String> {
        Self::boot_with(Settings::default())
    }

    /// [`Emulated::boot`] with machine settings (timeouts, debug echo).
    ///
    /// # Errors
    /// The install failure, as text.
    pub fn boot_with(settings: Settings) -> Result<Self, String> {
        Self::boot_with_inf(settings, INF)
    }

    /// [`Emulated::boot_with`] from another INF text (e.g. `INF` with other `Parameters`).
    ///
    /// # Errors
    /// The install failure, as text.
    pub fn boot_with_inf(settings: Settings, inf: &str) -> Result<Self, String> {
        let machine = Machine::with_settings(settings);
        machine.install(inf, ksring::driver_entry).map_err(|e| e.to_string())?;
        Ok(Self { machine: Some(machine) })
    }

    /// The machine (verifier findings, pool use, debug output, fault injection).
    ///
    /// # Panics
    /// After [`Emulated::shutdown`] (which consumes the backend, so never).
    #[must_use]
    pub fn machine(&self) -> &Machine {
        self.machine.as_ref().expect("machine is up until shutdown")
    }

    /// The client process exits (returns, crashes, is killed) with its handles open: every handle
    /// is closed in ascending handle value, as Windows' process rundown does — so filters before
    /// the pins opened through them. The machine and the driver go on; handles held by `Filter`
    /// and `Pin` values are stale afterwards (closing them again fails harmlessly).
    pub fn exit_process(&self) {
        self.machine().exit_process();
    }

    /// Closes what is still open, removes the device, unloads the driver, and reports what the
    /// verifier saw (leaks, IRPs never completed, rule violations).
    ///
    /// # Panics
    /// Never: the machine is only taken here, and this consumes the backend.
    #[must_use]
    pub fn shutdown(mut self) -> Report {
        self.machine.take().expect("machine is up").shutdown()
    }
}

impl Drop for Emulated {
    fn drop(&mut self) {
        if let Some(m) = self.machine.take() {
            // A backend dropped without `shutdown` still tears down cleanly; a panicking test
            // already reports its own failure, so only report here when not unwinding.
            let report = m.shutdown();
            if !std::thread::panicking() {
                report.assert_clean();
            }
        }
    }
}

fn handle(h: kshost::Handle) -> Handle {
    Handle(h.raw())
}

fn host(h: Handle) -> kshost::Handle {
    kshost::Handle::from_raw(h.0)
}

struct Memory(UserBuffer);

impl IoMemory for Memory {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

struct InFlight(Overlapped);

impl Pending for InFlight {
    fn wait(&mut self) -> Io {
        let s = self.0.wait();
        Io { status: s.status, information: s.information }
    }
    fn poll(&mut self) -> Option<Io> {
        self.0.poll().map(|s| Io { status: s.status, information: s.information })
    }
}

impl Backend for Emulated {
    fn name(&self) -> &'static str {
        "emulated"
    }

    fn filters(&self, category: &GUID) -> Vec<FilterPath> {
        self.machine()
            .interfaces(category)
            .into_iter()
            .map(|i| FilterPath { path: i.path, friendly_name: i.friendly_name })
            .collect()
    }

    fn open(&self, path: &str) -> Result<Handle, Fail> {
        self.machine().create_file(path, GENERIC_READ | GENERIC_WRITE).map(handle).map_err(Fail::Status)
    }

    fn create_pin_access(&self, filter: Handle, connect: &[u8], access: u32) -> Result<Handle, Fail> {
        self.machine().ks_create_pin_status(host(filter), connect, access).map(handle).map_err(Fail::Status)
    }

    fn ioctl(&self, h: Handle, code: u32, input: &[u8], output: &mut [u8]) -> Io {
        let s = self.machine().device_io_control(host(h), code, input, output);
        Io { status: s.status, information: s.information }
    }

    fn alloc(&self, len: usize) -> Box<dyn IoMemory> {
        Box::new(Memory(self.machine().alloc_user(len)))
    }

    unsafe fn submit(
        &self,
        h: Handle,
        code: u32,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_len: usize,
    ) -> Box<dyn Pending> {
        // SAFETY: the caller keeps the buffers (from `alloc`) alive until completion.
        let pending = unsafe {
            self.machine().device_io_control_overlapped(host(h), code, input, input_len, output, output_len)
        };
        Box::new(InFlight(pending))
    }

    fn create_event(&self) -> Result<Handle, Fail> {
        Ok(handle(self.machine().create_event()))
    }

    fn cancel(&self, h: Handle) -> Result<(), Fail> {
        self.machine().cancel_io(host(h)).map(|_| ()).map_err(Fail::Status)
    }

    fn close(&self, h: Handle) -> Result<(), Fail> {
        self.machine().close_handle(host(h)).map_err(Fail::Status)
    }
}
