//! The client side, shaped like Win32: `CreateFile` on an interface path, `KsCreatePin`,
//! `DeviceIoControl` (synchronous and overlapped), `CancelIoEx`, `CloseHandle`. Requests arrive
//! at the driver as user-mode IRPs carrying tagged user addresses ([`crate::usermem`]).
//!
//! Thread-safe: tests drive one machine from several threads.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ksabi::{
    FILE_OBJECT, FILE_READ_ACCESS, FILE_WRITE_ACCESS, GENERIC_READ, GENERIC_WRITE, IO_PARAMETERS_CREATE,
    IO_PARAMETERS_DEVICE_IO_CONTROL, IO_SECURITY_CONTEXT, IO_STACK_PARAMETERS, IRP_MJ_CREATE,
    IRP_MJ_DEVICE_CONTROL, IrpFlags, KSSTRING_Pin, METHOD_BUFFERED, METHOD_NEITHER, NTSTATUS,
    STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_PENDING, STATUS_SUCCESS, UNICODE_STRING, ctl_access, ctl_method, nt_success,
};

use crate::iomgr::{IrpSpec, Request};
use crate::machine::{Enter, Machine, MachineInner};
use crate::objects::{FileBox, FileMeta, IoStatus};
use crate::sync::Locked;
use crate::usermem::to_user;

/// An open handle (a filter or a pin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(u64);

impl Handle {
    /// The handle's number.
    #[must_use]
    pub fn raw(self) -> u64 {
        self.0
    }

    /// A handle from its number (an unknown number is simply an invalid handle).
    #[must_use]
    pub fn from_raw(raw: u64) -> Self {
        Self(raw)
    }
}

/// The handle table of the emulated process: file objects, and events (a handle that is not a
/// file, for tests of drivers that reference handles).
#[derive(Default)]
pub(crate) struct HandleTable {
    next: u64,
    map: HashMap<u64, usize>,
    events: std::collections::HashSet<u64>,
}

/// What a handle refers to.
pub(crate) enum HandleObject {
    /// A file object.
    File(*mut FILE_OBJECT),
    /// An event object.
    Event,
}

impl HandleTable {
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// What `raw` refers to.
    pub(crate) fn resolve(&self, raw: u64) -> Option<HandleObject> {
        if let Some(&f) = self.map.get(&raw) {
            return Some(HandleObject::File(f as *mut FILE_OBJECT));
        }
        self.events.contains(&raw).then_some(HandleObject::Event)
    }

    fn insert(&mut self, file: *mut FILE_OBJECT) -> Handle {
        self.next += 4;
        self.map.insert(self.next, file as usize);
        Handle(self.next)
    }
}

/// A request in flight (`OVERLAPPED`): wait for it, poll it, or read its result.
pub struct Overlapped {
    request: Arc<Request>,
    machine: Arc<MachineInner>,
    immediate: Option<IoStatus>,
}

impl Overlapped {
    /// The result if the request has completed (`GetOverlappedResult(..., FALSE)`).
    #[must_use]
    pub fn poll(&self) -> Option<IoStatus> {
        self.immediate.or_else(|| self.request.peek())
    }

    /// Waits for completion (`GetOverlappedResult(..., TRUE)`), up to the machine's hang timeout;
    /// a request still pending then is reported as [`crate::Rule::IrpNeverCompleted`] and
    /// `STATUS_IO_TIMEOUT` is returned.
    #[must_use]
    pub fn wait(&self) -> IoStatus {
        if let Some(s) = self.immediate {
            return s;
        }
        let _enter = Enter::new(&self.machine);
        crate::iomgr::wait_or_report(&self.machine, &self.request, "an overlapped request")
    }

    /// Waits up to `timeout`; `None` if still pending.
    #[must_use]
    pub fn wait_for(&self, timeout: std::time::Duration) -> Option<IoStatus> {
        self.immediate.or_else(|| self.request.wait(timeout))
    }
}

/// Memory of the emulated process that stays mapped until dropped: what overlapped stream
/// requests point at (header arrays, frame buffers). Buffers given to a synchronous
/// [`Machine::device_io_control`] are mapped for the request only.
pub struct UserBuffer {
    ptr: *mut u8,
    len: usize,
    layout: std::alloc::Layout,
    id: u64,
    machine: Arc<MachineInner>,
}

// SAFETY: the buffer is plain memory owned by this value.
unsafe impl Send for UserBuffer {}
// SAFETY: shared references only read.
unsafe impl Sync for UserBuffer {}

impl UserBuffer {
    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes owned by this value.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The bytes, mutably. Do not change them while a request the driver may touch them in is in
    /// flight (the same rule as on Windows).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `len` initialised bytes owned by this value, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The address a client puts in requests (e.g. `KSSTREAM_HEADER.Data`).
    #[must_use]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// Bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for UserBuffer {
    fn drop(&mut self) {
        self.machine.user.unmap(self.ptr, self.id);
        // SAFETY: allocated in `Machine::alloc_user` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

impl Machine {
    /// Allocates `len` zeroed bytes of user memory, 16-aligned (`VirtualAlloc`/`HeapAlloc`).
    ///
    /// # Panics
    /// If `len` is absurdly large.
    #[must_use]
    pub fn alloc_user(&self, len: usize) -> UserBuffer {
        let layout = std::alloc::Layout::from_size_align(len.max(1), 16).expect("user buffer size");
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory");
        let _exposed = to_user(ptr);
        let id = self.inner().user.map(ptr, len);
        UserBuffer { ptr, len, layout, id, machine: Arc::clone(self.inner()) }
    }

    /// `CreateFile(path, access, 0, NULL, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL)` on a device
    /// interface path: the create IRP carries `\<reference string>` plus anything after it.
    ///
    /// # Errors
    /// The create's `NTSTATUS` (`STATUS_OBJECT_NAME_NOT_FOUND` for an unknown path).
    pub fn create_file(&self, path: &str, desired_access: u32) -> Result<Handle, NTSTATUS> {
        let m = self.inner();
        let _enter = Enter::new(m);
        let _process = crate::process::ProcessThread::enter(m);
        let (device, name) = {
            let interfaces = m.interfaces.locked();
            let lower = path.to_ascii_lowercase();
            let Some(i) =
                interfaces.iter().find(|i| i.enabled && lower.starts_with(&interface_prefix(&i.path)))
            else {
                return Err(STATUS_OBJECT_NAME_NOT_FOUND);
            };
            // The I/O manager passes the reference string, with a leading backslash, and whatever the
            // caller appended after the interface path.
            let rest = &path[interface_prefix(&i.path).len()..];
            let name =
                if i.reference.is_empty() { rest.to_string() } else { format!("\\{}{rest}", i.reference) };
            // The file object names the device the path names (the PDO); the create goes to the top
            // of its stack.
            (i.pdo as *mut ksabi::DEVICE_OBJECT, name.encode_utf16().collect::<Vec<u16>>())
        };
        // SAFETY: an enabled interface's device is the PDO the install created, a device of this
        // live machine; opens do not run during PnP changes to its stack. No related file object.
        let file = unsafe { open(m, device, std::ptr::null_mut(), name, desired_access) }?;
        Ok(m.handles.locked().insert(file))
    }

    /// `KsCreatePin` from ksuser.dll: opens `KSSTRING_Pin\` + `connect` (a `KSPIN_CONNECT` followed by
    /// its `KSDATAFORMAT`) relative to the filter handle. Returns the Win32 error code as ksuser does
    /// (0 = success).
    ///
    /// # Errors
    /// A non-zero Win32 error code.
    pub fn ks_create_pin(&self, filter: Handle, connect: &[u8], desired_access: u32) -> Result<Handle, u32> {
        self.ks_create_pin_status(filter, connect, desired_access).map_err(crate::status_map::win32_error)
    }

    /// [`Machine::ks_create_pin`] with the `NTSTATUS` (what the kernel `KsCreatePin` returns).
    ///
    /// # Errors
    /// The create's `NTSTATUS`.
    pub fn ks_create_pin_status(
        &self,
        filter: Handle,
        connect: &[u8],
        desired_access: u32,
    ) -> Result<Handle, NTSTATUS> {
        let m = self.inner();
        let _enter = Enter::new(m);
        let _process = crate::process::ProcessThread::enter(m);
        let parent_ref = lookup(m, filter)?;
        let parent = parent_ref.file;
        // Name: the pin create item's name, a backslash, then the raw bytes of the request.
        let mut bytes: Vec<u8> = KSSTRING_Pin.iter().flat_map(|c| c.to_le_bytes()).collect();
        bytes.extend_from_slice(&u16::from(b'\\').to_le_bytes());
        bytes.extend_from_slice(connect);
        if bytes.len() > usize::from(u16::MAX - 1) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let mut name: Vec<u16> =
            bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
        name.shrink_to_fit();
        // SAFETY: `parent` comes from the handle table and this call holds a reference to it
        // (`Referenced`); its create has returned, so no one writes it; only `DeviceObject` is read,
        // through the raw pointer (another thread may be counting a reference in its record).
        let device = unsafe { (*parent).DeviceObject };
        // SAFETY: `device` is the device the live parent was opened on, a device of this machine,
        // whose stack is not changing during an open; `parent_ref` keeps the parent alive for the
        // whole create, which is all the new file object needs of it.
        let file = unsafe { open_with_length(m, device, parent, name, bytes.len(), desired_access) }?;
        Ok(m.handles.locked().insert(file))
    }

    /// `DeviceIoControl`, synchronous: waits for the request (up to the hang timeout). For
    /// `METHOD_NEITHER` codes (every KS IOCTL) the driver sees `input` as `Type3InputBuffer` and
    /// `output` as `UserBuffer`, both user addresses.
    #[must_use]
    pub fn device_io_control(&self, handle: Handle, code: u32, input: &[u8], output: &mut [u8]) -> IoStatus {
        // SAFETY: both slices outlive the call, which waits for the request.
        let pending = unsafe {
            self.device_io_control_overlapped(
                handle,
                code,
                input.as_ptr(),
                input.len(),
                output.as_mut_ptr(),
                output.len(),
            )
        };
        pending.wait()
    }

    /// `DeviceIoControl` with an `OVERLAPPED`: returns at once; the request may still be in the
    /// driver.
    ///
    /// # Safety
    /// `input..input+input_len` must stay readable and `output..output+output_len` writable until
    /// the request completes (the same contract as Win32 overlapped I/O), and any addresses inside
    /// them (stream headers' `Data`) must point into [`UserBuffer`]s that live as long.
    #[must_use]
    pub unsafe fn device_io_control_overlapped(
        &self,
        handle: Handle,
        code: u32,
        input: *const u8,
        input_len: usize,
        output: *mut u8,
        output_len: usize,
    ) -> Overlapped {
        let m = self.inner();
        let _enter = Enter::new(m);
        let _process = crate::process::ProcessThread::enter(m);
        let request = Request::new();
        let done = |status: NTSTATUS| Overlapped {
            request: Arc::clone(&request),
            machine: Arc::clone(m),
            immediate: Some(IoStatus { status, information: 0 }),
        };
        let file_ref = match lookup(m, handle) {
            Ok(f) => f,
            Err(s) => return done(s),
        };
        let file = file_ref.file;
        let (Ok(in_len), Ok(out_len)) = (u32::try_from(input_len), u32::try_from(output_len)) else {
            return done(STATUS_INVALID_PARAMETER);
        };
        // SAFETY: `file_ref` holds a reference to the file object for this call; only the record is
        // referenced.
        let granted = unsafe { FileBox::meta_of(file) }.granted;
        let access = ctl_access(code);
        if (access & FILE_READ_ACCESS != 0 && granted & GENERIC_READ == 0)
            || (access & FILE_WRITE_ACCESS != 0 && granted & GENERIC_WRITE == 0)
        {
            return done(STATUS_ACCESS_DENIED);
        }
        let mut mappings = Vec::new();
        let mut flags = IrpFlags::empty();
        let mut system_buffer = std::ptr::null_mut();
        let (type3, user_buffer) = if ctl_method(code) == METHOD_NEITHER {
            mappings.push((input, m.user.map(input, input_len)));
            mappings.push((output.cast_const(), m.user.map(output, output_len)));
            (to_user(input), to_user(output))
        } else {
            // METHOD_BUFFERED (and the direct methods, treated alike): one system buffer holds the
            // input and receives the output.
            let len = input_len.max(output_len);
            let sb = crate::iomgr::alloc_system_buffer(m, len);
            if input_len > 0 {
                // SAFETY: the caller's input is readable; the buffer holds `len >= input_len` bytes.
                unsafe { std::ptr::copy_nonoverlapping(input, sb, input_len) };
            }
            system_buffer = sb.cast();
            flags = IrpFlags::BUFFERED_IO | IrpFlags::DEALLOCATE_BUFFER;
            if output_len > 0 {
                flags |= IrpFlags::INPUT_OPERATION;
            }
            let _ = METHOD_BUFFERED;
            (0, 0)
        };
        let params = IO_STACK_PARAMETERS {
            DeviceIoControl: IO_PARAMETERS_DEVICE_IO_CONTROL {
                OutputBufferLength: out_len,
                Pad0: 0,
                InputBufferLength: in_len,
                Pad1: 0,
                IoControlCode: code,
                Pad2: 0,
                Type3InputBuffer: type3 as *mut _,
            },
        };
        let spec = IrpSpec {
            major: IRP_MJ_DEVICE_CONTROL,
            minor: 0,
            params,
            file,
            requestor: ksabi::UserMode,
            user_buffer,
            system_buffer,
            flags,
            user_output: Some((output, output_len)),
            mappings,
            initial_status: STATUS_SUCCESS,
        };
        // SAFETY: `file_ref` holds a reference to the file object for this call.
        let device = unsafe { crate::iomgr::related_device(file) };
        // SAFETY: `device` is the top of the live file's stack; `file_ref` holds a reference to the
        // file object for the call (the IRP takes its own); the system buffer is kshost's, and
        // `output` stays writable until completion (this function's contract).
        let returned = unsafe { crate::iomgr::issue(m, device, spec, &request, true) };
        let immediate = (returned != STATUS_PENDING).then(|| request.peek()).flatten();
        Overlapped { request, machine: Arc::clone(m), immediate }
    }

    /// `CancelIoEx(handle, NULL)`: cancels every request in flight on the handle. Returns how many
    /// had a cancel routine to run.
    ///
    /// # Errors
    /// `STATUS_INVALID_HANDLE`.
    pub fn cancel_io(&self, handle: Handle) -> Result<usize, NTSTATUS> {
        let m = self.inner();
        let _enter = Enter::new(m);
        let _process = crate::process::ProcessThread::enter(m);
        let file = lookup(m, handle)?;
        Ok(crate::iomgr::cancel_file_irps(m, file.meta()))
    }

    /// `CreateEvent`: a handle to something that is not a file (tests hand it where a driver
    /// expects a pin's handle).
    #[must_use]
    pub fn create_event(&self) -> Handle {
        let mut t = self.inner().handles.locked();
        t.next += 4;
        let raw = t.next;
        t.events.insert(raw);
        Handle(raw)
    }

    /// `CloseHandle`: the last handle of a file object sends `IRP_MJ_CLEANUP`; `IRP_MJ_CLOSE` follows
    /// when nothing references the object any more (requests in flight, pins of a filter).
    ///
    /// # Errors
    /// `STATUS_INVALID_HANDLE`.
    pub fn close_handle(&self, handle: Handle) -> Result<(), NTSTATUS> {
        let m = self.inner();
        let _enter = Enter::new(m);
        let _process = crate::process::ProcessThread::enter(m);
        if m.handles.locked().events.remove(&handle.0) {
            return Ok(());
        }
        let Some(file) = m.handles.locked().map.remove(&handle.0) else {
            return Err(STATUS_INVALID_HANDLE);
        };
        // SAFETY: the handle was in the table and is now out of it: its reference is this call's to
        // give up.
        unsafe { close_one_handle(m, file as *mut FILE_OBJECT) };
        Ok(())
    }

    /// The process exits with handles open (it returns, crashes or is killed): first each exiting
    /// thread's requests still in flight are cancelled and waited for (thread rundown,
    /// `IoCancelThreadIo`), then the kernel closes every handle in ascending handle value,
    /// whatever the objects are — a filter before the pins opened through it. The machine goes
    /// on; a later call is a new process.
    pub fn exit_process(&self) {
        let m = self.inner();
        let _enter = Enter::new(m);
        {
            let _process = crate::process::ProcessThread::enter(m);
            crate::iomgr::run_down_thread_io(m);
            close_all_handles(m);
        }
        m.process_id.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until every close that a completion deferred to a worker thread has run.
    pub fn settle(&self) {
        crate::worker::flush(self.inner());
    }
}

/// Closes one handle of `file`: cleanup at its last handle, then the handle's reference goes.
///
/// # Safety
/// `file` is the file object of a handle the caller has just taken out of the handle table, so
/// that the handle's reference is the caller's to give up (here).
unsafe fn close_one_handle(m: &Arc<MachineInner>, file: *mut FILE_OBJECT) {
    // SAFETY: the handle just taken out of the table holds a reference to the file object, given
    // up only by `release_file` below; only the record is referenced.
    let f = unsafe { FileBox::meta_of(file) };
    if f.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
        // SAFETY: the handle's reference keeps the file object alive until `release_file` below.
        unsafe { crate::iomgr::cleanup_file(m, file) };
    }
    // SAFETY: gives up the handle's reference (the caller's contract); `file` is not used after.
    unsafe { crate::iomgr::release_file(m, file, true) };
}

/// Closes every open handle as process exit does: in ascending handle value — so a filter, opened
/// before its pins, is closed before them — then waits for deferred closes.
pub(crate) fn close_all_handles(m: &Arc<MachineInner>) {
    m.handles.locked().events.clear();
    let mut handles: Vec<(u64, usize)> = m.handles.locked().map.drain().collect();
    handles.sort_unstable_by_key(|&(raw, _)| raw);
    for (_, f) in handles {
        // SAFETY: every handle was drained out of the table above: each one's reference is given
        // up here, once.
        unsafe { close_one_handle(m, f as *mut FILE_OBJECT) };
    }
    crate::worker::flush(m);
}

/// An interface path without a trailing backslash, lower-cased (for prefix matching).
fn interface_prefix(path: &str) -> String {
    path.to_ascii_lowercase()
}

/// The file object a handle names, referenced for as long as this lives — as the object manager
/// references it for a system call — so that another thread's `CloseHandle` cannot free it while
/// the call uses it.
struct Referenced<'m> {
    m: &'m Arc<MachineInner>,
    file: *mut FILE_OBJECT,
}

impl Referenced<'_> {
    /// kshost's record of the file object: the reference this holds keeps it alive while the
    /// borrow lasts.
    fn meta(&self) -> &FileMeta {
        // SAFETY: `lookup` took a reference to the live file object, dropped only when `self` is;
        // only the record is referenced.
        unsafe { FileBox::meta_of(self.file) }
    }
}

impl Drop for Referenced<'_> {
    fn drop(&mut self) {
        // SAFETY: gives up the reference `lookup` took; `self.file` is not used after the drop.
        unsafe { crate::iomgr::release_file(self.m, self.file, true) };
    }
}

fn lookup(m: &Arc<MachineInner>, handle: Handle) -> Result<Referenced<'_>, NTSTATUS> {
    let handles = m.handles.locked();
    let file = handles.map.get(&handle.0).map(|&f| f as *mut FILE_OBJECT).ok_or(STATUS_INVALID_HANDLE)?;
    // Taken while the handle table is locked: a close removes the handle under the same lock first.
    // SAFETY: the handle named a live file object, and the handle table is still locked: a close removes
    // the handle under the same lock before it drops the handle's reference. Only the record is referenced.
    unsafe { FileBox::meta_of(file) }.refs.fetch_add(1, Ordering::AcqRel);
    Ok(Referenced { m, file })
}

/// [`open_with_length`] with the whole of `name` as the name.
///
/// # Safety
/// As for [`open_with_length`].
unsafe fn open(
    m: &Arc<MachineInner>,
    device: *mut ksabi::DEVICE_OBJECT,
    related: *mut FILE_OBJECT,
    name: Vec<u16>,
    desired_access: u32,
) -> Result<*mut FILE_OBJECT, NTSTATUS> {
    let bytes = name.len() * 2;
    // SAFETY: this function's contract is `open_with_length`'s.
    unsafe { open_with_length(m, device, related, name, bytes, desired_access) }
}

/// The I/O manager's access check of an open: against the security descriptor of the device
/// stack, for an open of the device itself, or — only when the stack has
/// `FILE_DEVICE_SECURE_OPEN`, checked at its top — for an open in its namespace (a trailing name
/// such as a reference string, or a relative open such as a pin's).
///
/// # Safety
/// `device` is a device object of this live machine (device boxes live as long as it does), and
/// no PnP change attaches or detaches a device on its stack during the call.
unsafe fn check_access(
    m: &MachineInner,
    device: *mut ksabi::DEVICE_OBJECT,
    related: *mut FILE_OBJECT,
    name_bytes: usize,
    desired_access: u32,
) -> Result<(), NTSTATUS> {
    // SAFETY: the caller's contract: a device of this live machine, its stack not changing.
    let top = unsafe { crate::iomgr::top_of_stack(device) };
    // SAFETY: a device of this machine's stack.
    let secure = unsafe { (*top).Characteristics } & ksabi::FILE_DEVICE_SECURE_OPEN != 0;
    let in_namespace = name_bytes > 0 || !related.is_null();
    if in_namespace && !secure {
        return Ok(()); // left to the driver
    }
    let caller = *m.caller.locked();
    if m.device_dacl.locked().grants(caller, desired_access) { Ok(()) } else { Err(STATUS_ACCESS_DENIED) }
}

/// Creates a file object named `name` (`name_bytes` long) on `device` — the named device, the PDO
/// of an interface, as Windows records it in `FILE_OBJECT.DeviceObject` — and sends
/// `IRP_MJ_CREATE` to the top of its stack.
///
/// # Safety
/// `device` is a device object of this live machine whose stack no PnP change alters during the
/// call; `related` is null or a kshost file object kept alive by a reference the caller holds
/// until this returns (the new object keeps the pointer but no reference, as on Windows).
pub(crate) unsafe fn open_with_length(
    m: &Arc<MachineInner>,
    device: *mut ksabi::DEVICE_OBJECT,
    related: *mut FILE_OBJECT,
    mut name: Vec<u16>,
    name_bytes: usize,
    desired_access: u32,
) -> Result<*mut FILE_OBJECT, NTSTATUS> {
    // SAFETY: the caller's contract: a device of this live machine, its stack not changing.
    unsafe { check_access(m, device, related, name_bytes, desired_access) }?;
    // SAFETY: FILE_OBJECT is a C structure for which all-zero is valid.
    let fo = unsafe { std::mem::zeroed::<FILE_OBJECT>() };
    let length = u16::try_from(name_bytes).map_err(|_| STATUS_INVALID_PARAMETER)?;
    let buffer = if name.is_empty() { std::ptr::null_mut() } else { name.as_mut_ptr() };
    let mut b = Box::new(FileBox {
        fo,
        meta: FileMeta {
            name,
            refs: 1.into(),
            handles: 0.into(),
            granted: desired_access,
            pending: std::sync::Mutex::new(Vec::new()),
            closed: false.into(),
            created: false.into(),
        },
    });
    b.fo.Type = ksabi::IO_TYPE_FILE;
    b.fo.Size = i16::try_from(std::mem::size_of::<FILE_OBJECT>()).unwrap_or(i16::MAX);
    b.fo.DeviceObject = device;
    b.fo.RelatedFileObject = related;
    b.fo.ReadAccess = u8::from(desired_access & GENERIC_READ != 0);
    b.fo.WriteAccess = u8::from(desired_access & GENERIC_WRITE != 0);
    b.fo.FileName = UNICODE_STRING { Length: length, MaximumLength: length, Buffer: buffer };
    let file: *mut FILE_OBJECT = Box::into_raw(b).cast();
    // The related file object is not referenced: Windows' I/O manager keeps the pointer but no
    // reference, so a driver that needs its parent after the create references it itself
    // (FIDELITY.md, "File objects").
    m.objects.locked().files.insert(file as usize);
    let mut security = IO_SECURITY_CONTEXT {
        SecurityQos: std::ptr::null_mut(),
        AccessState: std::ptr::null_mut(),
        DesiredAccess: desired_access,
        FullCreateOptions: 0,
    };
    let params = IO_STACK_PARAMETERS {
        Create: IO_PARAMETERS_CREATE {
            SecurityContext: &raw mut security,
            Options: 1 << 24, // FILE_OPEN disposition
            Pad0: 0,
            FileAttributes: 0,
            ShareAccess: 0,
            Pad1: 0,
            EaLength: 0,
        },
    };
    let spec = IrpSpec::bufferless(IRP_MJ_CREATE, 0, params, file, ksabi::UserMode, STATUS_SUCCESS);
    let request = Request::new();
    // SAFETY: the caller's contract: a device of this live machine, its stack not changing.
    let top = unsafe { crate::iomgr::top_of_stack(device) };
    // SAFETY: `top` is a device of this live machine; the create's own reference (the count of 1
    // the box was made with) keeps the new file object alive for the IRP; no buffers.
    let _ = unsafe { crate::iomgr::issue(m, top, spec, &request, true) };
    let result = crate::iomgr::wait_or_report(m, &request, "IRP_MJ_CREATE");
    // SAFETY: the create's own reference keeps the file object alive until it becomes the
    // handle's or `release_file` drops it below; only the record is referenced.
    let f = unsafe { FileBox::meta_of(file) };
    if nt_success(result.status) {
        f.created.store(true, Ordering::Release);
        f.handles.store(1, Ordering::Release);
        // The create's own reference becomes the handle's.
        Ok(file)
    } else {
        // A failed create is neither cleaned up nor closed.
        // SAFETY: gives up the create's own reference; `file` is not used after.
        unsafe { crate::iomgr::release_file(m, file, true) };
        Err(result.status)
    }
}
