//! Typed access to a KsRing filter and its pins: every property the driver answers, pin
//! creation, state changes, reset. Each call is one request through the [`Backend`].

use core::mem::size_of;

use ksabi::{
    GUID, IOCTL_KS_PROPERTY, IOCTL_KS_RESET_STATE, KSALLOCATOR_FRAMING, KSCOMPONENTID, KSPIN_CINSTANCES,
    KSPIN_INTERFACE, KSPROPERTY_GENERAL_COMPONENTID, KSPROPSETID_Connection, KSPROPSETID_General,
    KSPROPSETID_Pin, KSPROPSETID_Topology, KSRESET, KSSTATE, KSTOPOLOGY_CONNECTION, KsPropertyType, NTSTATUS,
    STATUS_BUFFER_OVERFLOW, STATUS_SUCCESS, connection_property, pin_property, topology_property,
};
use ksring_api::{KSCATEGORY_KSRING, KSPROPSETID_KsRing, KsRingStatistics, ksring_property};

use crate::backend::{Backend, Fail, Handle, Io};
use crate::request::{self, Connect, fixed_items, guid_at, range_items, u32_at};

/// Reads a plain-integer `repr(C)` value from the front of `bytes`.
fn value<T: Copy + Plain>(bytes: &[u8]) -> Option<T> {
    (bytes.len() >= size_of::<T>()).then(|| {
        // SAFETY: `T` is made of integers only (`Plain`), so any bytes are a valid `T`; the read is
        // unaligned and within `bytes`.
        unsafe { bytes.as_ptr().cast::<T>().read_unaligned() }
    })
}

/// Types whose every bit pattern is valid (integers and structures of them, no padding).
///
/// # Safety
/// Implement only for such types.
pub unsafe trait Plain {}
// SAFETY: two u32.
unsafe impl Plain for KSPIN_CINSTANCES {}
// SAFETY: u64 and u32 fields, no padding (checked by the ksring-api layout test).
unsafe impl Plain for KsRingStatistics {}
// SAFETY: six u32.
unsafe impl Plain for KSALLOCATOR_FRAMING {}
// SAFETY: four u32.
unsafe impl Plain for KSTOPOLOGY_CONNECTION {}
// SAFETY: GUIDs (integers) and two u32.
unsafe impl Plain for KSCOMPONENTID {}
// SAFETY: an integer.
unsafe impl Plain for u32 {}

/// Property calls shared by filters and pins.
pub trait Properties {
    /// The backend.
    fn backend(&self) -> &dyn Backend;
    /// The handle.
    fn handle(&self) -> Handle;

    /// `IOCTL_KS_PROPERTY` with a raw request and value buffer.
    fn property(&self, request: &[u8], value: &mut [u8]) -> Io {
        self.backend().ioctl(self.handle(), IOCTL_KS_PROPERTY, request, value)
    }

    /// A GET of a fixed-size value.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    fn get<T: Copy + Plain>(&self, request: &[u8]) -> Result<T, Io> {
        let mut out = vec![0u8; size_of::<T>()];
        let io = self.property(request, &mut out);
        if io.status != STATUS_SUCCESS {
            return Err(io);
        }
        value(&out[..io.information.min(out.len())]).ok_or(io)
    }

    /// A GET of a variable-size value with the KS size protocol: ask with an empty buffer, then
    /// fetch with the size the driver gave.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    fn get_sized(&self, request: &[u8]) -> Result<Vec<u8>, Io> {
        let size = self.property(request, &mut []);
        if size.status != STATUS_BUFFER_OVERFLOW {
            return Err(size);
        }
        let mut out = vec![0u8; size.information];
        let io = self.property(request, &mut out);
        if io.status != STATUS_SUCCESS {
            return Err(io);
        }
        out.truncate(io.information);
        Ok(out)
    }

    /// A SET with a raw value.
    #[must_use]
    fn set(&self, request: &[u8], value: &[u8]) -> Io {
        let mut v = value.to_vec();
        self.property(request, &mut v)
    }

    /// `KSPROPERTY_KSRING_CAPACITY`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    fn capacity(&self) -> Result<u32, Io> {
        self.get(&request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::GET))
    }

    /// Sets `KSPROPERTY_KSRING_CAPACITY`.
    #[must_use]
    fn set_capacity(&self, bytes: u32) -> Io {
        self.set(
            &request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::SET),
            &bytes.to_le_bytes(),
        )
    }

    /// `KSPROPERTY_KSRING_STATISTICS`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    fn statistics(&self) -> Result<KsRingStatistics, Io> {
        self.get(&request::property(KSPROPSETID_KsRing, ksring_property::STATISTICS, KsPropertyType::GET))
    }
}

/// An open KsRing filter. Closed on drop (or explicitly with [`Filter::close`]).
pub struct Filter<'b> {
    backend: &'b dyn Backend,
    handle: Handle,
    open: bool,
}

impl Properties for Filter<'_> {
    fn backend(&self) -> &dyn Backend {
        self.backend
    }
    fn handle(&self) -> Handle {
        self.handle
    }
}

impl<'b> Filter<'b> {
    /// Opens the filter at an interface path.
    ///
    /// # Errors
    /// The open's failure.
    pub fn open(backend: &'b dyn Backend, path: &str) -> Result<Self, Fail> {
        Ok(Self { backend, handle: backend.open(path)?, open: true })
    }

    /// Opens the first KsRing filter the backend finds.
    ///
    /// # Errors
    /// `Fail::Win32(2)` (file not found) when there is none, or the open's failure.
    pub fn open_first(backend: &'b dyn Backend) -> Result<Self, Fail> {
        let path = backend.filters(&KSCATEGORY_KSRING).into_iter().next().ok_or(Fail::Win32(2))?.path;
        Self::open(backend, &path)
    }

    /// Closes the handle.
    ///
    /// # Errors
    /// The close's failure.
    pub fn close(mut self) -> Result<(), Fail> {
        self.open = false;
        self.backend.close(self.handle)
    }

    fn pin_get<T: Copy + Plain>(&self, id: u32, pin: u32) -> Result<T, Io> {
        self.get(&request::pin_property(KSPROPSETID_Pin, id, KsPropertyType::GET, pin))
    }

    fn pin_sized(&self, id: u32, pin: u32) -> Result<Vec<u8>, Io> {
        self.get_sized(&request::pin_property(KSPROPSETID_Pin, id, KsPropertyType::GET, pin))
    }

    /// `KSPROPERTY_PIN_CTYPES`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn pin_factories(&self) -> Result<u32, Io> {
        self.get(&request::property(KSPROPSETID_Pin, pin_property::CTYPES, KsPropertyType::GET))
    }

    /// `KSPROPERTY_PIN_DATAFLOW`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn data_flow(&self, pin: u32) -> Result<u32, Io> {
        self.pin_get(pin_property::DATAFLOW, pin)
    }

    /// `KSPROPERTY_PIN_COMMUNICATION`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn communication(&self, pin: u32) -> Result<u32, Io> {
        self.pin_get(pin_property::COMMUNICATION, pin)
    }

    /// `KSPROPERTY_PIN_CINSTANCES`: `(possible, current)`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn instances(&self, pin: u32) -> Result<(u32, u32), Io> {
        self.pin_get::<KSPIN_CINSTANCES>(pin_property::CINSTANCES, pin)
            .map(|c| (c.PossibleCount, c.CurrentCount))
    }

    /// `KSPROPERTY_PIN_GLOBALCINSTANCES`: `(possible, current)`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn global_instances(&self, pin: u32) -> Result<(u32, u32), Io> {
        self.pin_get::<KSPIN_CINSTANCES>(pin_property::GLOBALCINSTANCES, pin)
            .map(|c| (c.PossibleCount, c.CurrentCount))
    }

    /// `KSPROPERTY_PIN_NECESSARYINSTANCES`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn necessary_instances(&self, pin: u32) -> Result<u32, Io> {
        self.pin_get(pin_property::NECESSARYINSTANCES, pin)
    }

    /// `KSPROPERTY_PIN_DATARANGES` (or `CONSTRAINEDDATARANGES` with `constrained`): each range's bytes.
    ///
    /// # Errors
    /// The request's result when it does not succeed; a malformed list as `Information` 0.
    pub fn data_ranges(&self, pin: u32, constrained: bool) -> Result<Vec<Vec<u8>>, Io> {
        let id = if constrained { pin_property::CONSTRAINEDDATARANGES } else { pin_property::DATARANGES };
        let list = self.pin_sized(id, pin)?;
        range_items(&list)
            .map(|v| v.into_iter().map(<[u8]>::to_vec).collect())
            .ok_or(Io { status: ksabi::STATUS_INVALID_BUFFER_SIZE, information: 0 })
    }

    /// `KSPROPERTY_PIN_INTERFACES` (or `MEDIUMS` with `mediums`): `(set, id, flags)` each.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn identifiers(&self, pin: u32, mediums: bool) -> Result<Vec<(GUID, u32, u32)>, Io> {
        let id = if mediums { pin_property::MEDIUMS } else { pin_property::INTERFACES };
        let list = self.pin_sized(id, pin)?;
        let bad = Io { status: ksabi::STATUS_INVALID_BUFFER_SIZE, information: 0 };
        let items = fixed_items(&list, size_of::<KSPIN_INTERFACE>()).ok_or(bad)?;
        items
            .into_iter()
            .map(|b| Some((guid_at(b, 0)?, u32_at(b, 16)?, u32_at(b, 20)?)))
            .collect::<Option<Vec<_>>>()
            .ok_or(bad)
    }

    /// `KSPROPERTY_PIN_CATEGORY`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn category(&self, pin: u32) -> Result<GUID, Io> {
        let mut out = [0u8; 16];
        let io = self.property(
            &request::pin_property(KSPROPSETID_Pin, pin_property::CATEGORY, KsPropertyType::GET, pin),
            &mut out,
        );
        if io.status != STATUS_SUCCESS {
            return Err(io);
        }
        Ok(GUID::from_le_bytes(out))
    }

    /// `KSPROPERTY_PIN_NAME`, from the INF's `MediaCategories`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn name(&self, pin: u32) -> Result<String, Io> {
        let bytes = self.pin_sized(pin_property::NAME, pin)?;
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        Ok(String::from_utf16_lossy(units.strip_suffix(&[0]).unwrap_or(&units)))
    }

    /// `KSPROPERTY_PIN_DATAINTERSECTION` with the client's `ranges`: the format the pin offers.
    ///
    /// # Errors
    /// The request's result when it does not succeed (`STATUS_NO_MATCH`: no common format).
    pub fn intersect(&self, pin: u32, ranges: &[Vec<u8>]) -> Result<Vec<u8>, Io> {
        let mut req =
            request::pin_property(KSPROPSETID_Pin, pin_property::DATAINTERSECTION, KsPropertyType::GET, pin);
        req.extend_from_slice(&request::multiple_item(ranges));
        self.get_sized(&req)
    }

    /// `KSPROPERTY_PIN_PROPOSEDATAFORMAT` set: whether a pin could be made with `format` now.
    #[must_use]
    pub fn propose(&self, pin: u32, format: &[u8]) -> Io {
        self.set(
            &request::pin_property(
                KSPROPSETID_Pin,
                pin_property::PROPOSEDATAFORMAT,
                KsPropertyType::SET,
                pin,
            ),
            format,
        )
    }

    /// `KSPROPERTY_PIN_PROPOSEDATAFORMAT` get: the format a new pin would be offered.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn proposed_format(&self, pin: u32) -> Result<Vec<u8>, Io> {
        self.pin_sized(pin_property::PROPOSEDATAFORMAT, pin)
    }

    /// A topology property that is a `KSMULTIPLE_ITEM` of GUIDs.
    fn guid_list(&self, id: u32) -> Result<Vec<GUID>, Io> {
        let list = self.get_sized(&request::property(KSPROPSETID_Topology, id, KsPropertyType::GET))?;
        let bad = Io { status: ksabi::STATUS_INVALID_BUFFER_SIZE, information: 0 };
        fixed_items(&list, 16)
            .ok_or(bad)?
            .into_iter()
            .map(|b| guid_at(b, 0))
            .collect::<Option<_>>()
            .ok_or(bad)
    }

    /// `KSPROPERTY_TOPOLOGY_CATEGORIES`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn categories(&self) -> Result<Vec<GUID>, Io> {
        self.guid_list(topology_property::CATEGORIES)
    }

    /// `KSPROPERTY_TOPOLOGY_NODES`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn nodes(&self) -> Result<Vec<GUID>, Io> {
        self.guid_list(topology_property::NODES)
    }

    /// `KSPROPERTY_TOPOLOGY_CONNECTIONS`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn connections(&self) -> Result<Vec<KSTOPOLOGY_CONNECTION>, Io> {
        let list = self.get_sized(&request::property(
            KSPROPSETID_Topology,
            topology_property::CONNECTIONS,
            KsPropertyType::GET,
        ))?;
        let bad = Io { status: ksabi::STATUS_INVALID_BUFFER_SIZE, information: 0 };
        fixed_items(&list, size_of::<KSTOPOLOGY_CONNECTION>())
            .ok_or(bad)?
            .into_iter()
            .map(value::<KSTOPOLOGY_CONNECTION>)
            .collect::<Option<_>>()
            .ok_or(bad)
    }

    /// `KSPROPERTY_GENERAL_COMPONENTID`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn component_id(&self) -> Result<KSCOMPONENTID, Io> {
        self.get(&request::property(KSPROPSETID_General, KSPROPERTY_GENERAL_COMPONENTID, KsPropertyType::GET))
    }

    /// `KsCreatePin` with a connection request.
    ///
    /// # Errors
    /// The create's failure.
    pub fn create_pin(&self, connect: &Connect) -> Result<Pin<'b>, Fail> {
        let handle = self.backend.create_pin(self.handle, &connect.to_bytes())?;
        Ok(Pin { backend: self.backend, handle, id: connect.pin_id, open: true })
    }

    /// `KsCreatePin` with a connection request, the handle granting only `access`.
    ///
    /// # Errors
    /// The create's failure.
    pub fn create_pin_access(&self, connect: &Connect, access: u32) -> Result<Pin<'b>, Fail> {
        let handle = self.backend.create_pin_access(self.handle, &connect.to_bytes(), access)?;
        Ok(Pin { backend: self.backend, handle, id: connect.pin_id, open: true })
    }

    /// Creates pin `pin` streaming `format` (standard interface and medium, IRP sink).
    ///
    /// # Errors
    /// The create's failure.
    pub fn connect(&self, pin: u32, format: &[u8]) -> Result<Pin<'b>, Fail> {
        self.create_pin(&Connect::new(pin, format.to_vec()))
    }
}

impl Drop for Filter<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.backend.close(self.handle);
        }
    }
}

/// An open pin. Closed on drop (or explicitly with [`Pin::close`]).
pub struct Pin<'b> {
    backend: &'b dyn Backend,
    handle: Handle,
    /// The pin factory.
    pub id: u32,
    open: bool,
}

impl Properties for Pin<'_> {
    fn backend(&self) -> &dyn Backend {
        self.backend
    }
    fn handle(&self) -> Handle {
        self.handle
    }
}

impl Pin<'_> {
    /// Closes the handle.
    ///
    /// # Errors
    /// The close's failure.
    pub fn close(mut self) -> Result<(), Fail> {
        self.open = false;
        self.backend.close(self.handle)
    }

    /// `KSPROPERTY_CONNECTION_STATE`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn state(&self) -> Result<KSSTATE, Io> {
        self.get::<u32>(&request::property(
            KSPROPSETID_Connection,
            connection_property::STATE,
            KsPropertyType::GET,
        ))
        .map(u32::cast_signed)
    }

    /// Sets `KSPROPERTY_CONNECTION_STATE`.
    #[must_use]
    pub fn set_state(&self, state: KSSTATE) -> Io {
        self.set(
            &request::property(KSPROPSETID_Connection, connection_property::STATE, KsPropertyType::SET),
            &state.to_le_bytes(),
        )
    }

    /// `KSPROPERTY_CONNECTION_DATAFORMAT`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn data_format(&self) -> Result<Vec<u8>, Io> {
        self.get_sized(&request::property(
            KSPROPSETID_Connection,
            connection_property::DATAFORMAT,
            KsPropertyType::GET,
        ))
    }

    /// Sets `KSPROPERTY_CONNECTION_DATAFORMAT`.
    #[must_use]
    pub fn set_data_format(&self, format: &[u8]) -> Io {
        self.set(
            &request::property(KSPROPSETID_Connection, connection_property::DATAFORMAT, KsPropertyType::SET),
            format,
        )
    }

    /// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING`.
    ///
    /// # Errors
    /// The request's result when it does not succeed.
    pub fn framing(&self) -> Result<KSALLOCATOR_FRAMING, Io> {
        self.get(&request::property(
            KSPROPSETID_Connection,
            connection_property::ALLOCATORFRAMING,
            KsPropertyType::GET,
        ))
    }

    /// `IOCTL_KS_RESET_STATE`.
    #[must_use]
    pub fn reset(&self, value: KSRESET) -> Io {
        self.backend.ioctl(self.handle, IOCTL_KS_RESET_STATE, &value.to_le_bytes(), &mut [])
    }

    /// Cancels every request in flight on the pin (`CancelIoEx`).
    ///
    /// # Errors
    /// An invalid handle.
    pub fn cancel(&self) -> Result<(), Fail> {
        self.backend.cancel(self.handle)
    }
}

impl Drop for Pin<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.backend.close(self.handle);
        }
    }
}

/// The status of a request, for assertions: `Ok(())` on `STATUS_SUCCESS`.
///
/// # Errors
/// The status otherwise.
pub fn check(io: Io) -> Result<(), NTSTATUS> {
    if io.status == STATUS_SUCCESS { Ok(()) } else { Err(io.status) }
}
