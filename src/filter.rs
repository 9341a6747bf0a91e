//! Filter instances: one per `CreateFile` on the device interface.

use ksabi::{DEVICE_OBJECT, IO_NO_INCREMENT, IRP, NTSTATUS, STATUS_NOT_IMPLEMENTED};

use crate::sys;

/// The filter factory's create routine (the device header's create item).
///
/// Filter instances arrive with the driver issue; until then a create is refused plainly.
pub unsafe extern "system" fn dispatch_create(_device: *mut DEVICE_OBJECT, irp: *mut IRP) -> NTSTATUS {
    // SAFETY: KS passes the create IRP it owns; we complete it exactly once.
    unsafe {
        (*irp).IoStatus.Status = STATUS_NOT_IMPLEMENTED;
    }
    // SAFETY: as above.
    unsafe { sys::IofCompleteRequest(irp, IO_NO_INCREMENT) };
    STATUS_NOT_IMPLEMENTED
}
