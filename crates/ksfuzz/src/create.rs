//! `pin_create`: arbitrary `KsCreatePin` blobs.

use ksabi::{
    KSPIN_CONNECT, STATUS_DEVICE_BUSY, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, STATUS_OBJECT_TYPE_MISMATCH,
    StatusText,
};
use ksclient::{Backend, Fail, Filter, Properties, request};
use ksring::format::Format;
use ksring_api::{PIN_INPUT, PIN_OUTPUT};

use crate::checks::{Input, assert_defined, world};

/// The statuses a pin creation may fail with.
const REFUSALS: &[i32] = &[
    STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_PARAMETER,
    // ks.sys' KsValidateConnectRequest: interface/medium flags, pin id, communication, priority,
    // format Reserved or wildcards.
    ksabi::STATUS_INVALID_PARAMETER_1,
    ksabi::STATUS_INVALID_PARAMETER_2,
    ksabi::STATUS_INVALID_PARAMETER_3,
    ksabi::STATUS_INVALID_PARAMETER_4,
    ksabi::STATUS_INVALID_PARAMETER_5,
    ksabi::STATUS_INVALID_PARAMETER_6,
    STATUS_NO_MATCH,
    STATUS_DEVICE_BUSY,
    STATUS_INSUFFICIENT_RESOURCES,
    // PinToHandle (an IRP-source connection): not a handle, not a file, not a pin of another filter.
    STATUS_INVALID_HANDLE,
    STATUS_OBJECT_TYPE_MISMATCH,
];

/// Input: one byte of setup (which pins already exist, with which format), then the blob.
///
/// Invariants: a refusal has one of `REFUSALS`; a success means the blob's format is one the
/// driver's own parser accepts, the pin reports exactly that format, and it was an IRP-sink
/// connection to a free factory (the world has one filter, so any `PinToHandle` — a random value,
/// or by chance the filter's or a pin's handle — is refused); everything closes back to the
/// baseline.
///
/// # Panics
/// When an invariant breaks.
pub fn pin_create(data: &[u8]) {
    let w = world();
    let b = &w.backend;
    let mut input = Input(data);
    let setup = input.byte();
    let blob = input.rest().to_vec();
    {
        let f = Filter::open_first(b).expect("filter");
        let peer_format =
            if setup & 2 == 0 { request::stream_format() } else { request::pcm_format(2, 16, 48_000) };
        let _peer = (setup & 1 != 0).then(|| f.connect(PIN_OUTPUT, &peer_format).expect("peer pin"));
        let _same = (setup & 4 != 0).then(|| f.connect(PIN_INPUT, &peer_format).expect("input pin"));
        match b.create_pin(f.handle(), &blob) {
            Ok(pin) => {
                let connect_size = size_of::<KSPIN_CONNECT>();
                let format = Format::parse(&blob[connect_size..])
                    .or_else(|_| {
                        // The blob may carry bytes beyond FormatSize: parse exactly FormatSize.
                        let size =
                            u32::from_le_bytes(blob[connect_size..connect_size + 4].try_into().unwrap())
                                as usize;
                        Format::parse(&blob[connect_size..connect_size + size])
                    })
                    .expect("a pin was created with a format the driver's parser refuses");
                let id = u32::from_le_bytes(blob[48..52].try_into().unwrap());
                assert!(id == PIN_INPUT || id == PIN_OUTPUT, "pin id {id} was created");
                assert!(blob[56..64].iter().all(|&x| x == 0), "an IRP-source pin was created");
                let taken = (id == PIN_OUTPUT && setup & 1 != 0) || (id == PIN_INPUT && setup & 4 != 0);
                assert!(!taken, "a second pin of factory {id} was created");
                let mut got = vec![0u8; 256];
                let req = request::property(ksabi::KSPROPSETID_Connection, 2, ksabi::KsPropertyType::GET);
                let io = b.ioctl(pin, ksabi::IOCTL_KS_PROPERTY, &req, &mut got);
                assert_eq!(io.status, 0, "DATAFORMAT of a new pin");
                assert_eq!(&got[..io.information], format.encode().as_bytes(), "the pin's format");
                b.close(pin).expect("close pin");
            }
            Err(Fail::Status(s)) => {
                assert_defined("pin create", s);
                assert!(REFUSALS.contains(&s), "pin create refused with {}", StatusText(s));
            }
            Err(Fail::Win32(e)) => panic!("emulated create gave Win32 error {e}"),
        }
    }
    w.assert_clean("pin_create");
}
