//! The safe layer between the driver's logic and the NT/KS ABI (issue 14): the raw arguments KS
//! and the I/O manager hand the driver become types that carry their rules, so that the logic
//! modules above need no `unsafe`. With [`crate::sys`] (the imports) it is where the driver's
//! `unsafe` lives.
//!
//! - [`device`]: the raw entry points (`DriverEntry`, `AddDevice`, PnP) and the device object.
//! - [`driver`]: the driver object's typed extensions, registry keys.
//! - [`irp`]: an owned request ([`irp::Irp`]), consumed by completing it; safe dispatch routines.
//! - [`object`]: the filter and pin objects at `FsContext`: found from a request, freed by the
//!   close of their file object, with what they hold ([`object::FileRef`]) let go after it.
//! - [`outbound`]: what an IRP source needs to send requests of its own: the target, the
//!   request, the work item, the count of what still runs.
//! - [`pool`]: non-paged pool as owning types (one owner, or counted references).
//! - [`property`]: property requests — one shim turns a `KSPROPERTY_ITEM` handler into a safe
//!   function of a [`property::Request`] and a [`property::Value`].
//! - [`stream`]: stream requests, from probe to queue to completion, and their cancel-safe queue.
//! - [`tables`]: the driver's static KS tables (`Table`, property items).
//! - [`sync`]: a spin lock that owns its data.

pub mod device;
pub mod driver;
pub mod irp;
pub mod nt;
pub mod object;
pub mod outbound;
pub mod pool;
pub mod property;
pub mod ring_memory;
pub mod stream;
pub mod sync;
pub mod tables;
