//! One emulated Windows: its driver, device stack, interfaces, registry, pool, verifier and
//! handles, and the thread-local context that lets argument-less kernel routines
//! (`ExAllocatePool2`, `KeGetCurrentIrql`...) find the machine they belong to.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ksabi::{
    DEVICE_OBJECT, DRIVER_OBJECT, DeviceFlags, GUID, IRP_MN_QUERY_REMOVE_DEVICE, IRP_MN_REMOVE_DEVICE,
    IRP_MN_START_DEVICE, NTSTATUS, UNICODE_STRING, nt_success,
};

use crate::inf::{Inf, InfError, InstallInfo};
use crate::irql::CancelLock;
use crate::objects::{DeviceBox, DriverBox};
use crate::pool::{Pool, tag_text};
use crate::sync::Locked;
use crate::usermem::UserSpace;
use crate::verifier::{Rule, Violation};

/// `DriverEntry`.
pub type DriverEntry =
    unsafe extern "system" fn(driver: *mut DRIVER_OBJECT, registry_path: *mut UNICODE_STRING) -> NTSTATUS;

/// A registered device interface.
#[derive(Clone, Debug)]
pub struct InterfaceInfo {
    /// The category GUID.
    pub category: GUID,
    /// The reference string (may be empty).
    pub reference: String,
    /// The path a client opens, as `SetupAPI` returns it: `\\?\ROOT#MEDIA#0000#{guid}\reference`.
    pub path: String,
    /// The interface's `FriendlyName` from the INF, if it sets one.
    pub friendly_name: Option<String>,
    /// The interface's `CLSID` from the INF, if it sets one.
    pub clsid: Option<GUID>,
    /// `IoSetDeviceInterfaceState(TRUE)` was called.
    pub enabled: bool,
    pub(crate) pdo: usize,
}

/// Machine settings.
#[derive(Clone, Debug)]
#[allow(clippy::struct_excessive_bools)] // independent switches, as Driver Verifier's options are
pub struct Settings {
    /// How long a synchronous request or a wait may take before kshost reports the IRP as never
    /// completed.
    pub hang_timeout: Duration,
    /// Print `DbgPrint` output to stderr as it happens (also: environment `KSHOST_DEBUG=1`).
    pub echo_debug_output: bool,
    /// Driver Verifier's special pool: every pool block against a guard page, no access after
    /// free; an overrun or a use after free stops the process with the block's tag
    /// (the `special_pool` module). On by default; environment `KSHOST_SPECIAL_POOL=0` turns it off.
    pub special_pool: bool,
    /// A pass-through class upper filter (`ksthunk`, as 64-bit Windows installs above every
    /// Media-class device) attached above the driver's device after `AddDevice`. On by default;
    /// environment `KSHOST_CLASS_FILTER=0` turns it off.
    pub class_upper_filter: bool,
    /// Non-paged pool the client process may be charged (`POOL_FLAG_USE_QUOTA`), in bytes; `None`
    /// for no limit. Over it, a quota allocation fails (`ExAllocatePool2` returns NULL).
    pub process_pool_quota: Option<usize>,
    /// Non-paged pool the whole machine has for the driver, in bytes; `None` for no limit.
    pub pool_limit: Option<usize>,
    /// `KsValidateConnectRequest` as the Windows Server 2003-era ks.sys (`connect.c`) does it:
    /// `FormatSize` is checked against `sizeof(KSDATAFORMAT)` only, not against the create
    /// parameter, so the driver must bound it. Off (the default): as the Windows 10/11 ks.sys does
    /// it, refusing a `FormatSize` beyond the parameter (FIDELITY.md).
    pub ks_connect_format_size_unchecked: bool,
    /// The machine's processors as its system work queues see them: each queue runs at most this
    /// many work items at once, a waiting one not counted (a KQUEUE's concurrency: `worker`
    /// module). `Some(1)`: a uniprocessor, as the ReactOS lab's machine. `None` (the default): no
    /// limit, the host's threads run every item at once. Environment `KSHOST_PROCESSORS=N` sets
    /// `Some(N)` for every machine of a run (a whole test suite as on an N-processor machine).
    pub processors: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        let secs = std::env::var("KSHOST_HANG_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
        Self {
            hang_timeout: Duration::from_secs(secs),
            echo_debug_output: std::env::var_os("KSHOST_DEBUG").is_some(),
            special_pool: std::env::var("KSHOST_SPECIAL_POOL").map_or(true, |v| v != "0"),
            class_upper_filter: std::env::var("KSHOST_CLASS_FILTER").map_or(true, |v| v != "0"),
            process_pool_quota: None,
            pool_limit: None,
            ks_connect_format_size_unchecked: false,
            processors: std::env::var("KSHOST_PROCESSORS")
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|&n| n > 0),
        }
    }
}

/// What a machine found when it was shut down.
#[derive(Debug, Default)]
pub struct Report {
    /// Every violation, in order.
    pub violations: Vec<Violation>,
    /// Everything the driver printed.
    pub debug_output: Vec<String>,
    /// The driver's spin-lock holds over the machine's life: the longest, the 99.9th percentile,
    /// the most bytes copied under one (time at `DISPATCH_LEVEL`).
    pub spin_locks: crate::lockstats::HoldSummary,
}

impl Report {
    /// Whether any violation of `rule` was recorded.
    #[must_use]
    pub fn has(&self, rule: Rule) -> bool {
        self.violations.iter().any(|v| v.rule == rule)
    }

    /// Panics, listing the violations, unless there are none.
    ///
    /// # Panics
    /// If any violation was recorded.
    pub fn assert_clean(&self) {
        assert!(self.violations.is_empty(), "{}", self.describe());
    }

    /// The violations as text.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = format!("{} verifier violation(s):\n", self.violations.len());
        for v in &self.violations {
            let _ = writeln!(s, "  {v}");
        }
        s
    }
}

/// The installed driver and its device stack.
pub(crate) struct Installed {
    pub driver: *mut DRIVER_OBJECT,
    pub pdo: *mut DEVICE_OBJECT,
    pub started: bool,
    pub removed: bool,
}

/// State guarded by one lock: object registries and the installed driver.
#[derive(Default)]
pub(crate) struct Objects {
    pub irps: HashSet<usize>,
    /// IRPs the driver allocated (`IoAllocateIrp`) and has not freed.
    pub driver_irps: HashSet<usize>,
    pub files: HashSet<usize>,
    pub devices: HashSet<usize>,
    pub mdls: HashSet<usize>,
    /// Buffers kshost allocated for captures: address → (layout).
    pub system_buffers: HashMap<usize, std::alloc::Layout>,
    /// KS headers: address → kind ("device"/"object").
    pub ks_headers: HashMap<usize, &'static str>,
    /// Symbolic-link strings handed out by `IoRegisterDeviceInterface`, not yet freed.
    pub link_strings: HashMap<usize, Vec<u16>>,
}

/// The machine's shared state.
pub(crate) struct MachineInner {
    pub settings: Settings,
    pub cancel_lock: CancelLock,
    pub pool: Pool,
    pub user: UserSpace,
    pub objects: Mutex<Objects>,
    pub violations: Mutex<Vec<Violation>>,
    pub debug_output: Mutex<Vec<String>>,
    pub interfaces: Mutex<Vec<InterfaceInfo>>,
    /// `HKLM\SYSTEM\CurrentControlSet\Control\MediaCategories\{guid}` → `Name`.
    pub media_categories: Mutex<HashMap<GUID, String>>,
    pub installed: Mutex<Option<Installed>>,
    pub inf: Mutex<Option<Inf>>,
    pub handles: Mutex<crate::client::HandleTable>,
    /// Driver objects and devices live until the machine goes away.
    pub driver_boxes: Mutex<Vec<usize>>,
    pub device_boxes: Mutex<Vec<usize>>,
    /// References the driver holds through `ObReferenceObjectByHandle`: file object → count.
    pub ob_refs: Mutex<HashMap<usize, usize>>,
    /// Work items the driver has allocated, by the address it holds (an opaque `PIO_WORKITEM`: kshost
    /// never reads through the driver's pointer, it looks the item up here).
    pub work_items: Mutex<HashMap<usize, Arc<crate::workitem::WorkItem>>>,
    /// The next IRP a driver acquires from a KS queue is cancelled right after (a test's way to
    /// place an `IoCancelIrp` from another processor in that window).
    pub cancel_next_acquired: std::sync::atomic::AtomicBool,
    /// IRPs the driver built itself and sent down (`IofCallDriver` of an IRP it allocated).
    pub driver_irps_sent: std::sync::atomic::AtomicU64,
    /// MDLs `KsProbeStreamIrp` built for kernel-mode requests (a driver's own, whose MDLs it did
    /// not chain on itself).
    pub kernel_mdls_built_by_probe: std::sync::atomic::AtomicU64,
    /// The device stack's security descriptor (the INF's `Security`, or the default).
    pub device_dacl: Mutex<crate::security::Dacl>,
    /// Who the client process runs as.
    pub caller: Mutex<crate::security::Caller>,
    /// The registry keys the INF installed, and open kernel key handles.
    pub registry: Mutex<crate::registry::Registry>,
    /// The client process's id: a new one after each `exit_process`.
    pub process_id: std::sync::atomic::AtomicU64,
    /// The client threads' IRP lists (`IopQueueThreadIrp`): every client request issued and not
    /// yet completed, oldest first, whatever became of its handle — what `IoCancelThreadIo` walks
    /// at process exit.
    pub thread_irps: Mutex<Vec<usize>>,
    /// Spin-lock holds: how long, how much copied.
    pub lock_stats: crate::lockstats::LockStats,
    /// Where a test may stop a driver thread between two holds (`Machine::preempt_after_hold`).
    pub preempt: crate::preempt::PreemptPoint,
}

// SAFETY: the raw pointers inside are objects this machine owns; every access goes through its
// locks or follows the I/O ownership rules the verifier checks.
unsafe impl Send for MachineInner {}
// SAFETY: as above.
unsafe impl Sync for MachineInner {}

thread_local! {
    /// The machines whose code this thread is running, innermost last.
    static CURRENT: RefCell<Vec<Arc<MachineInner>>> = const { RefCell::new(Vec::new()) };
}

/// Makes `machine` the current machine of this thread until dropped.
pub(crate) struct Enter;

impl Enter {
    pub(crate) fn new(machine: &Arc<MachineInner>) -> Self {
        CURRENT.with(|c| c.borrow_mut().push(Arc::clone(machine)));
        Self
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        CURRENT.with(|c| c.borrow_mut().pop());
    }
}

/// The current machine. Kernel routines called with no machine context are a kshost misuse:
/// the process is stopped with a message (they cannot return an error their callers expect).
pub(crate) fn current() -> Arc<MachineInner> {
    CURRENT.with(|c| c.borrow().last().cloned()).unwrap_or_else(|| {
        eprintln!("kshost: a kernel routine was called outside any machine (no driver call in progress on this thread)");
        std::process::abort()
    })
}

/// Runs `f` with the current machine, if the thread is in one (without cloning the `Arc`).
pub(crate) fn with_current(f: impl FnOnce(&MachineInner)) {
    CURRENT.with(|c| {
        if let Some(m) = c.borrow().last() {
            f(m);
        }
    });
}

/// Records a violation on the current machine (or prints it if there is none).
pub(crate) fn violation(rule: Rule, detail: String) {
    let v = Violation { rule, detail };
    match CURRENT.with(|c| c.borrow().last().cloned()) {
        Some(m) => {
            if m.settings.echo_debug_output {
                eprintln!("{v}");
            }
            m.violations.locked().push(v);
        }
        None => eprintln!("{v} (no machine context)"),
    }
}

/// One emulated Windows machine with a KS driver installed from its INF.
///
/// Dropping a machine shuts it down: the device is removed, the driver unloaded, and the test
/// fails if the verifier recorded anything (unless the test already called
/// [`Machine::shutdown`] to inspect the report).
pub struct Machine {
    pub(crate) inner: Arc<MachineInner>,
    shut_down: bool,
}

/// Why installing a driver failed.
#[derive(Debug)]
pub enum InstallError {
    /// The INF could not be read.
    Inf(InfError),
    /// `DriverEntry` failed.
    DriverEntry(NTSTATUS),
    /// `AddDevice` failed.
    AddDevice(NTSTATUS),
    /// The driver set no `AddDevice`.
    NoAddDevice,
    /// `IRP_MN_START_DEVICE` failed.
    Start(NTSTATUS),
    /// A driver is already installed on this machine.
    AlreadyInstalled,
}

impl std::fmt::Display for InstallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inf(e) => write!(f, "INF: {e}"),
            Self::DriverEntry(s) => write!(f, "DriverEntry failed: {}", crate::status_map::describe(*s)),
            Self::AddDevice(s) => write!(f, "AddDevice failed: {}", crate::status_map::describe(*s)),
            Self::NoAddDevice => f.write_str("the driver set no AddDevice routine"),
            Self::Start(s) => write!(f, "IRP_MN_START_DEVICE failed: {}", crate::status_map::describe(*s)),
            Self::AlreadyInstalled => f.write_str("a driver is already installed on this machine"),
        }
    }
}

impl std::error::Error for InstallError {}

impl Default for Machine {
    fn default() -> Self {
        Self::new()
    }
}

impl Machine {
    /// A new machine with no driver.
    #[must_use]
    pub fn new() -> Self {
        Self::with_settings(Settings::default())
    }

    /// A new machine with the given settings.
    #[must_use]
    pub fn with_settings(settings: Settings) -> Self {
        crate::usermem::install_fault_reporter();
        let (special_pool, quota, pool_limit) =
            (settings.special_pool, settings.process_pool_quota, settings.pool_limit);
        let inner = Arc::new(MachineInner {
            settings,
            cancel_lock: CancelLock::new(),
            pool: Pool::new(special_pool, quota, pool_limit),
            user: UserSpace::default(),
            objects: Mutex::new(Objects::default()),
            violations: Mutex::new(Vec::new()),
            debug_output: Mutex::new(Vec::new()),
            interfaces: Mutex::new(Vec::new()),
            media_categories: Mutex::new(HashMap::new()),
            installed: Mutex::new(None),
            inf: Mutex::new(None),
            handles: Mutex::new(crate::client::HandleTable::default()),
            driver_boxes: Mutex::new(Vec::new()),
            device_boxes: Mutex::new(Vec::new()),
            ob_refs: Mutex::new(HashMap::new()),
            work_items: Mutex::new(HashMap::new()),
            cancel_next_acquired: std::sync::atomic::AtomicBool::new(false),
            driver_irps_sent: std::sync::atomic::AtomicU64::new(0),
            kernel_mdls_built_by_probe: std::sync::atomic::AtomicU64::new(0),
            device_dacl: Mutex::new(crate::security::Dacl::default_for_device()),
            caller: Mutex::new(crate::security::Caller::default()),
            registry: Mutex::new(crate::registry::Registry::default()),
            process_id: std::sync::atomic::AtomicU64::new(1),
            thread_irps: Mutex::new(Vec::new()),
            lock_stats: crate::lockstats::LockStats::default(),
            preempt: crate::preempt::PreemptPoint::default(),
        });
        Self { inner, shut_down: false }
    }

    /// Installs a driver the way `pnputil /add-driver x.inf /install` plus `devgen /add` would:
    /// reads the INF (service binary, root hardware id, interfaces and their `FriendlyName`/`CLSID`,
    /// `MediaCategories` names), runs `DriverEntry`, creates the root-enumerated PDO, calls
    /// `AddDevice`, and starts the device.
    ///
    /// `entry` stands for the image the INF's service loads (kshost cannot load a `.sys`).
    ///
    /// # Errors
    /// [`InstallError`] if the INF is malformed or the driver fails a step.
    pub fn install(&self, inf_text: &str, entry: DriverEntry) -> Result<(), InstallError> {
        let _enter = Enter::new(&self.inner);
        if self.inner.installed.locked().is_some() {
            return Err(InstallError::AlreadyInstalled);
        }
        let inf = Inf::parse(inf_text).map_err(InstallError::Inf)?;
        let install = inf.install_info().map_err(InstallError::Inf)?;
        self.inner
            .media_categories
            .locked()
            .extend(install.media_categories.iter().map(|(g, n)| (*g, n.clone())));
        *self.inner.inf.locked() = Some(inf);

        {
            let service = crate::registry::service_key(&install.service_name);
            let mut reg = self.inner.registry.locked();
            reg.set_values(&service, &[]);
            // `Parameters` exists only if the INF writes something there: an AddReg section with
            // no `HKR,Parameters,...` entry creates no subkey (INF AddReg Directive: each entry
            // creates the subkey it names), so a driver must cope with its absence.
            if !install.service_parameters.is_empty() {
                reg.set_values(&format!("{service}\\parameters"), &install.service_parameters);
            }
        }
        let driver = crate::iomgr::create_driver_object(&self.inner, &install.service_name);
        let mut registry_path = crate::iomgr::unicode_owned(&format!(
            "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\{}",
            install.service_name
        ));
        let status = crate::iomgr::call_guarded("DriverEntry", || {
            // SAFETY: a fresh driver object and a registry path that outlive the call.
            unsafe { entry(driver, &raw mut registry_path.0) }
        });
        if !nt_success(status) {
            return Err(InstallError::DriverEntry(status));
        }
        let pdo = crate::iomgr::create_root_pdo(&self.inner, &install.hardware_id);
        *self.inner.installed.locked() = Some(Installed { driver, pdo, started: false, removed: false });
        {
            let mut ifaces = self.inner.interfaces.locked();
            for i in &install.interfaces {
                // Provisioned by the INF; the driver registers and enables them.
                ifaces.push(InterfaceInfo {
                    category: i.category,
                    reference: i.reference.clone(),
                    path: interface_path(&install.hardware_id, i.category, &i.reference),
                    friendly_name: i.friendly_name.clone(),
                    clsid: i.clsid,
                    enabled: false,
                    pdo: 0,
                });
            }
        }
        // SAFETY: `driver` is the driver object this install created; `DriverEntry` has returned, so
        // nothing else uses it now.
        let extension = unsafe { crate::objects::DriverBox::of(driver) }.drv.DriverExtension;
        // SAFETY: the extension of our own driver object; DriverEntry has returned.
        let add_device = unsafe { (*extension).AddDevice };
        let Some(add_device) = add_device else {
            return Err(InstallError::NoAddDevice);
        };
        let status = crate::iomgr::call_guarded("AddDevice", || {
            // SAFETY: valid driver object and PDO.
            unsafe { add_device(driver, pdo) }
        });
        if !nt_success(status) {
            return Err(InstallError::AddDevice(status));
        }
        // SAFETY: the PDO this install created; `AddDevice` has returned, so the stack is not
        // changing.
        let top = unsafe { crate::iomgr::top_of_stack(pdo) };
        // SAFETY: `top` is a registered device of this machine.
        let flags = DeviceFlags::from_bits_retain(unsafe { (*top).Flags });
        if flags.contains(DeviceFlags::DEVICE_INITIALIZING) {
            violation(
                Rule::DeviceInitializingNotCleared,
                "AddDevice returned with DO_DEVICE_INITIALIZING set".into(),
            );
        }
        if self.inner.settings.class_upper_filter && top != pdo {
            // SAFETY: the PDO this install created; the install is the PnP path, so its stack is
            // not changing but here.
            unsafe { crate::class_filter::attach(&self.inner, pdo) };
        }
        // SAFETY: as above: the PDO this install created, on the PnP path.
        unsafe { self.apply_device_properties(pdo, &install) }?;
        // SAFETY: the PDO this install created, its stack built (`AddDevice`, the class filter).
        let top = unsafe { crate::iomgr::top_of_stack(pdo) };
        // SAFETY: the top of the stack this install built, on the install's PnP path.
        let status = unsafe { crate::iomgr::send_pnp(&self.inner, top, IRP_MN_START_DEVICE) };
        if !nt_success(status) {
            return Err(InstallError::Start(status));
        }
        if let Some(i) = self.inner.installed.locked().as_mut() {
            i.started = true;
        }
        Ok(())
    }

    /// What the PnP manager does between `AddDevice` and the start: the stack-wide
    /// characteristics (`FILE_DEVICE_SECURE_OPEN`) of any device object or of the INF's
    /// `DeviceCharacteristics` are set on every device object of the stack, and the INF's
    /// `Security` descriptor (or the default one) applies to all of them.
    ///
    /// # Safety
    /// `pdo` is a device object of this machine (device boxes live as long as it does), and the
    /// caller is the install's PnP path: nothing else reads or writes the devices of its stack.
    unsafe fn apply_device_properties(
        &self,
        pdo: *mut DEVICE_OBJECT,
        install: &InstallInfo,
    ) -> Result<(), InstallError> {
        const STACK_WIDE: u32 = ksabi::FILE_DEVICE_SECURE_OPEN;
        let mut stack = Vec::new();
        let mut d = pdo;
        while !d.is_null() {
            stack.push(d);
            // SAFETY: the caller's contract: `pdo` and the devices attached above it are devices of
            // this live machine; one field is read through the raw pointer.
            d = unsafe { (*d).AttachedDevice };
        }
        let above_pdo = stack.iter().skip(1);
        // SAFETY: as above.
        let from_drivers = above_pdo.fold(0, |acc, &d| acc | unsafe { (*d).Characteristics });
        let wide = (from_drivers | install.device_characteristics) & STACK_WIDE;
        for &d in &stack {
            // SAFETY: as above; PnP is not running anything else on the stack now.
            unsafe { (*d).Characteristics |= wide };
        }
        if let Some(sddl) = &install.security {
            let dacl = crate::security::Dacl::parse(sddl)
                .map_err(|e| InstallError::Inf(InfError { line: 0, message: format!("Security: {e}") }))?;
            *self.inner.device_dacl.locked() = dacl;
        }
        Ok(())
    }

    /// Every spin-lock hold of the driver so far: count, longest, 99.9th percentile, most bytes
    /// copied under one hold.
    #[must_use]
    pub fn spin_lock_holds(&self) -> crate::lockstats::HoldSummary {
        self.inner.lock_stats.overall()
    }

    /// The same per lock (by address), longest hold first.
    #[must_use]
    pub fn spin_lock_holds_per_lock(&self) -> Vec<(usize, crate::lockstats::HoldSummary)> {
        self.inner.lock_stats.per_lock()
    }

    /// Forgets the spin-lock holds measured so far (e.g. between benchmark runs).
    pub fn reset_spin_lock_holds(&self) {
        self.inner.lock_stats.reset();
    }

    /// Non-paged pool charged to the current client process (`POOL_FLAG_USE_QUOTA`), in bytes.
    #[must_use]
    pub fn pool_charged_to_process(&self) -> usize {
        self.inner.pool.charged(self.inner.process_id.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// `DEVICE_OBJECT.Characteristics` of each device of the installed stack, PDO first.
    #[must_use]
    pub fn device_stack_characteristics(&self) -> Vec<u32> {
        let Some(pdo) = self.inner.installed.locked().as_ref().map(|i| i.pdo) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut d = pdo;
        while !d.is_null() {
            // SAFETY: devices of this machine's stack, alive until it goes.
            out.push(unsafe { (*d).Characteristics });
            // SAFETY: as above.
            d = unsafe { (*d).AttachedDevice };
        }
        out
    }

    /// Device objects the installed driver has created and not deleted (its `DriverObject`'s
    /// device list): after a failed `AddDevice`, none may be left — the PnP manager unloads a
    /// driver with no device, and one left behind would keep it loaded with nothing using it.
    #[must_use]
    pub fn driver_devices(&self) -> usize {
        let Some(driver) = self.inner.installed.locked().as_ref().map(|i| i.driver) else {
            return 0;
        };
        // SAFETY: the installed driver object, a driver box of this machine, alive until it goes.
        let mut d = unsafe { (*driver).DeviceObject };
        let mut n = 0;
        while !d.is_null() {
            n += 1;
            // SAFETY: a device on the driver's list: a device box of this machine.
            d = unsafe { (*d).NextDevice };
        }
        n
    }

    /// The identity the client process runs as from now on (default: an elevated administrator).
    pub fn set_caller(&self, caller: crate::security::Caller) {
        *self.inner.caller.locked() = caller;
    }

    /// Device interfaces of `category` that are enabled (`SetupDiGetClassDevs` with
    /// `DIGCF_PRESENT | DIGCF_DEVICEINTERFACE`).
    #[must_use]
    pub fn interfaces(&self, category: &GUID) -> Vec<InterfaceInfo> {
        self.inner
            .interfaces
            .locked()
            .iter()
            .filter(|i| i.enabled && i.category == *category)
            .cloned()
            .collect()
    }

    /// Everything the driver printed so far.
    #[must_use]
    pub fn debug_output(&self) -> Vec<String> {
        self.inner.debug_output.locked().clone()
    }

    /// Violations recorded so far.
    #[must_use]
    pub fn violations(&self) -> Vec<Violation> {
        self.inner.violations.locked().clone()
    }

    /// Pool blocks the driver has allocated and not freed: (address, size, tag text).
    #[must_use]
    pub fn pool_in_use(&self) -> Vec<(usize, usize, String)> {
        self.inner.pool.live().into_iter().map(|(a, b)| (a, b.size, tag_text(b.tag))).collect()
    }

    /// How many IRPs the driver has built itself and sent down (an IRP source's requests): what
    /// a test counts to see how much one request carries, as an IRP trace would on Windows.
    #[must_use]
    pub fn driver_irps_sent(&self) -> u64 {
        self.inner.driver_irps_sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many MDLs `KsProbeStreamIrp` has built for kernel-mode requests (an IRP source's): none
    /// when the sender chains MDLs of its own on each request (ks.sys then builds none).
    #[must_use]
    pub fn kernel_mdls_built_by_probe(&self) -> u64 {
        self.inner.kernel_mdls_built_by_probe.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pool allocations made so far.
    #[must_use]
    pub fn pool_allocations(&self) -> u64 {
        self.inner.pool.allocation_count()
    }

    /// Low-resources simulation: the next `n` pool allocations succeed, the one after fails.
    pub fn fail_pool_allocation_after(&self, n: u64) {
        self.inner.pool.fail_after(Some(n));
    }

    /// The next IRP the driver acquires from a KS cancelable queue (`KsRemoveIrpFromCancelableQueue`
    /// with an *acquire* operation) is cancelled as soon as it is acquired — as if `IoCancelIrp`
    /// ran on another processor just then. `IoCancelIrp` finds no cancel routine and only sets
    /// `Cancel`; the driver's `KsReleaseIrpOnCancelableQueue` then runs its cancel routine.
    pub fn cancel_next_acquired_irp(&self) {
        self.inner.cancel_next_acquired.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Ends any low-resources simulation.
    pub fn stop_failing_pool_allocations(&self) {
        self.inner.pool.fail_after(None);
    }

    /// Removes the device (`IRP_MN_QUERY_REMOVE_DEVICE`, `IRP_MN_REMOVE_DEVICE`) and unloads the
    /// driver, then checks for leaks: pool, KS headers, interface strings, IRPs still in flight.
    /// Open handles are closed first (as process exit would).
    #[must_use = "the report holds the violations; call assert_clean() on it"]
    pub fn shutdown(mut self) -> Report {
        self.shut_down = true;
        self.do_shutdown()
    }

    fn do_shutdown(&self) -> Report {
        let _enter = Enter::new(&self.inner);
        crate::client::close_all_handles(&self.inner);
        let installed = self.inner.installed.locked().take();
        if let Some(inst) = installed {
            // SAFETY: the installed PDO, a device of this live machine; PnP is serialised here.
            let top = unsafe { crate::iomgr::top_of_stack(inst.pdo) };
            if inst.started && !inst.removed {
                // SAFETY: the top of the installed stack, a device of this live machine; the
                // shutdown is the PnP path (the install was taken out of `installed` above).
                let status = unsafe { crate::iomgr::send_pnp(&self.inner, top, IRP_MN_QUERY_REMOVE_DEVICE) };
                if nt_success(status) {
                    // SAFETY: as above; the query succeeded, so the driver expects the remove.
                    unsafe { crate::iomgr::send_pnp(&self.inner, top, IRP_MN_REMOVE_DEVICE) };
                }
            }
            self.check_removal_leaks();
            // SAFETY: the driver object is ours.
            if let Some(unload) = unsafe { (*inst.driver).DriverUnload } {
                crate::iomgr::call_guarded("DriverUnload", || {
                    // SAFETY: the driver's own unload routine with its driver object.
                    unsafe { unload(inst.driver) }
                });
            }
            self.check_unload_leaks();
        }
        Report {
            violations: self.inner.violations.locked().clone(),
            debug_output: self.inner.debug_output.locked().clone(),
            spin_locks: self.inner.lock_stats.overall(),
        }
    }

    fn check_removal_leaks(&self) {
        let objects = self.inner.objects.locked();
        for (&addr, kind) in &objects.ks_headers {
            violation(
                Rule::KsHeaderLeak,
                format!("KS {kind} header {addr:#x} still allocated after IRP_MN_REMOVE_DEVICE"),
            );
        }
        for &irp in &objects.irps {
            if objects.driver_irps.contains(&irp) {
                continue; // the driver's own, reported at unload if still allocated
            }
            violation(Rule::IrpNeverCompleted, format!("IRP {irp:#x} still outstanding at device removal"));
        }
        for &fo in &objects.files {
            violation(
                Rule::IrpNeverCompleted,
                format!("file object {fo:#x} never closed (an IRP holds it?)"),
            );
        }
        for (&addr, s) in &objects.link_strings {
            let text = String::from_utf16_lossy(s);
            violation(
                Rule::PoolLeak,
                format!("interface link string {addr:#x} ({text}) never freed with RtlFreeUnicodeString"),
            );
        }
    }

    fn check_unload_leaks(&self) {
        crate::worker::flush(&self.inner);
        crate::ob::check_leaks(&self.inner);
        crate::workitem::check_leaks(&self.inner);
        for (handle, key) in self.inner.registry.locked().open_handles() {
            violation(
                Rule::ObjectReferenceLeak,
                format!("registry key handle {handle:#x} ({key}) never closed (at unload)"),
            );
        }
        for &irp in &self.inner.objects.locked().driver_irps {
            violation(
                Rule::DriverIrpMisuse,
                format!("IRP {irp:#x} from IoAllocateIrp never freed (at unload)"),
            );
        }
        for &mdl in &self.inner.objects.locked().mdls {
            // The owner of a request frees the MDLs the target's probe chained on it (ks.sys' own
            // requests do, in their completion): one left is pool and locked pages lost.
            violation(
                Rule::PoolLeak,
                format!("MDL {mdl:#x} that KsProbeStreamIrp built never freed with IoFreeMdl (at unload)"),
            );
        }
        for (addr, block) in self.inner.pool.live() {
            violation(
                Rule::PoolLeak,
                format!(
                    "{} bytes of pool tagged '{}' at {addr:#x} still allocated at driver unload",
                    block.size,
                    tag_text(block.tag)
                ),
            );
        }
    }

    pub(crate) fn inner(&self) -> &Arc<MachineInner> {
        &self.inner
    }

    /// Sends `IRP_MN_QUERY_REMOVE_DEVICE` and `IRP_MN_REMOVE_DEVICE` now (the device must have no
    /// open handles, as PnP requires). Returns the remove status.
    ///
    /// # Errors
    /// The query's status if it failed, or `STATUS_DEVICE_BUSY` if handles are open.
    pub fn remove_device(&self) -> Result<(), NTSTATUS> {
        let _enter = Enter::new(&self.inner);
        if !self.inner.handles.locked().is_empty() {
            return Err(ksabi::STATUS_DEVICE_BUSY);
        }
        let (pdo, ok) = {
            let inst = self.inner.installed.locked();
            match inst.as_ref() {
                Some(i) if i.started && !i.removed => (i.pdo, true),
                _ => (std::ptr::null_mut(), false),
            }
        };
        if !ok {
            return Err(ksabi::STATUS_NO_SUCH_DEVICE);
        }
        // SAFETY: the installed PDO (checked above), a device of this live machine; PnP is
        // serialised here.
        let top = unsafe { crate::iomgr::top_of_stack(pdo) };
        // SAFETY: the top of the installed, started stack, a device of this live machine, on the
        // remove's PnP path.
        let status = unsafe { crate::iomgr::send_pnp(&self.inner, top, IRP_MN_QUERY_REMOVE_DEVICE) };
        if !nt_success(status) {
            return Err(status);
        }
        // SAFETY: as above; the query succeeded, so the driver expects the remove.
        unsafe { crate::iomgr::send_pnp(&self.inner, top, IRP_MN_REMOVE_DEVICE) };
        if let Some(i) = self.inner.installed.locked().as_mut() {
            i.removed = true;
        }
        self.inner.interfaces.locked().iter_mut().for_each(|i| i.enabled = false);
        Ok(())
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        let report = self.do_shutdown();
        // Not while unwinding from another failure: that would abort the test process.
        assert!(std::thread::panicking() || report.violations.is_empty(), "{}", report.describe());
    }
}

impl Drop for MachineInner {
    fn drop(&mut self) {
        for addr in self.driver_boxes.get_mut().unwrap().drain(..) {
            // SAFETY: allocated by create_driver_object with Box::into_raw; freed once here.
            drop(unsafe { Box::from_raw(addr as *mut DriverBox) });
        }
        for addr in self.device_boxes.get_mut().unwrap().drain(..) {
            // SAFETY: allocated by IoCreateDevice with Box::into_raw; freed once here.
            drop(unsafe { Box::from_raw(addr as *mut DeviceBox) });
        }
        for (addr, layout) in self.objects.get_mut().unwrap().system_buffers.drain() {
            // SAFETY: allocated with this layout by a capture and not freed by a completion.
            unsafe { std::alloc::dealloc(addr as *mut u8, layout) };
        }
    }
}

/// The path `SetupAPI` returns for an interface of a root-enumerated device.
pub(crate) fn interface_path(hardware_id: &str, category: GUID, reference: &str) -> String {
    let enumerator = hardware_id.split('\\').next().unwrap_or("ROOT").to_ascii_uppercase();
    let mut path = format!("\\\\?\\{enumerator}#MEDIA#0000#{}", category.to_string().to_ascii_lowercase());
    if !reference.is_empty() {
        path.push('\\');
        path.push_str(reference);
    }
    path
}

/// Device objects are checked against the registry before use.
pub(crate) fn known_device(m: &MachineInner, dev: *mut DEVICE_OBJECT) -> bool {
    m.objects.locked().devices.contains(&(dev as usize))
}

/// Marks a device as deleted (its box lives until the machine goes away).
///
/// # Safety
/// `dev` is a device object kshost created on a live machine (as for [`DeviceBox::meta_of`]).
pub(crate) unsafe fn mark_deleted(dev: *mut DEVICE_OBJECT) -> bool {
    // SAFETY: the caller's contract; only the record's atomic is referenced.
    !unsafe { DeviceBox::meta_of(dev) }.deleted.swap(true, Ordering::AcqRel)
}
