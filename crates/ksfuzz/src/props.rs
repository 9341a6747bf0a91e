//! `property`: arbitrary property (and other control) requests on a filter or a pin.

use ksabi::{
    GUID, IOCTL_KS_ENABLE_EVENT, IOCTL_KS_METHOD, IOCTL_KS_PROPERTY, IOCTL_KS_RESET_STATE,
    KSPROPSETID_Connection, KSPROPSETID_General, KSPROPSETID_Pin, KSPROPSETID_Stream, KSPROPSETID_Topology,
    KsPropertyType, nt_success,
};
use ksclient::conformance::rig;
use ksclient::{Backend, Properties, request};
use ksring_api::KSPROPSETID_KsRing;

use crate::checks::{Input, assert_defined, world};

const SETS: [GUID; 6] = [
    KSPROPSETID_Pin,
    KSPROPSETID_Topology,
    KSPROPSETID_General,
    KSPROPSETID_Connection,
    KSPROPSETID_KsRing,
    KSPROPSETID_Stream,
];

/// Input: target (filter, input or output pin), control code, value length, the pins' state, a
/// mode byte, then either a structured request (set from a table, id, flags, pin id, tail) or raw
/// request bytes, then the value bytes for a SET.
///
/// Invariants: a defined status; a success never reports more bytes than the value buffer holds;
/// a request that is not a SET (or a reset) changes nothing a client can see; the verifier stays
/// silent; everything closes back to the baseline.
///
/// # Panics
/// When an invariant breaks.
pub fn property(data: &[u8]) {
    let w = world();
    let b = &w.backend;
    let mut input = Input(data);
    let target = input.byte() % 3;
    let code = match input.byte() % 8 {
        0 => IOCTL_KS_METHOD,
        1 => IOCTL_KS_ENABLE_EVENT,
        2 => IOCTL_KS_RESET_STATE,
        _ => IOCTL_KS_PROPERTY,
    };
    let value_len = usize::from(input.u16() % 2048);
    let state = i32::from(input.byte() % 4);
    let mode = input.byte();
    let request = if mode & 1 == 0 {
        let set = SETS[usize::from(input.byte()) % SETS.len()];
        let id = u32::from(input.byte() % 20);
        let flags = KsPropertyType::from_bits_retain(u32::from(input.u16()) & 0x3FF);
        let pin = u32::from(input.byte() % 4);
        let mut r = request::pin_property(set, id, flags, pin);
        let tail = usize::from(input.byte());
        r.extend_from_slice(input.take(tail));
        r
    } else {
        let len = usize::from(input.byte());
        input.take(len).to_vec()
    };
    let mut value = input.rest().to_vec();
    value.resize(value_len, 0);
    {
        let Ok(r) = rig(b, &request::stream_format(), state) else { panic!("rig") };
        let handle = [r.filter.handle(), r.input.handle(), r.output.handle()][usize::from(target)];
        let snapshot = || {
            (
                r.filter.statistics(),
                r.input.state(),
                r.output.state(),
                r.filter.capacity(),
                r.input.data_format(),
            )
        };
        let before = snapshot();
        let io = b.ioctl(handle, code, &request, &mut value);
        assert_defined("property", io.status);
        if nt_success(io.status) {
            assert!(io.information <= value_len, "success with Information {} > {value_len}", io.information);
        }
        let flags = request.get(20..24).map_or(0, |f| u32::from_le_bytes(f.try_into().unwrap()));
        let may_change = code == IOCTL_KS_RESET_STATE || flags & KsPropertyType::SET.bits() != 0;
        if !may_change {
            assert_eq!(snapshot(), before, "a request that sets nothing changed something");
        }
        // A reset left open would hold stream requests off; end it.
        let _ = (r.input.reset(ksabi::KSRESET_END), r.output.reset(ksabi::KSRESET_END));
    }
    w.assert_clean("property");
}
