//! Seed inputs for each harness: well-formed requests the fuzzer mutates from, so it starts deep
//! inside the driver instead of at the first length check. `tests/corpus.rs` writes them to
//! `fuzz/corpus/<target>/` when `KSFUZZ_WRITE_SEEDS=1` and always replays them.

use ksabi::{
    KSPROPSETID_Connection, KSPROPSETID_General, KSPROPSETID_Pin, KSPROPSETID_Topology, KsPropertyType,
    connection_property, pin_property,
};
use ksclient::request::{self, Connect, HEADER_SIZE, Header};
use ksring_api::{KSPROPSETID_KsRing, PIN_INPUT, PIN_OUTPUT, ksring_property};

fn with_prefix(prefix: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(body);
    v
}

/// Seeds for [`crate::pin_create`].
#[must_use]
pub fn pin_create() -> Vec<Vec<u8>> {
    let pcm = request::pcm_format(2, 16, 48_000);
    vec![
        with_prefix(&[0], &Connect::new(PIN_INPUT, request::stream_format()).to_bytes()),
        with_prefix(&[0], &Connect::new(PIN_OUTPUT, pcm.clone()).to_bytes()),
        with_prefix(&[1], &Connect::new(PIN_INPUT, request::stream_format()).to_bytes()),
        with_prefix(&[3], &Connect::new(PIN_INPUT, pcm.clone()).to_bytes()),
        with_prefix(&[4], &Connect::new(PIN_OUTPUT, request::pcm_format(8, 32, 192_000)).to_bytes()),
        with_prefix(&[0], &Connect::new(2, pcm).to_bytes()),
    ]
}

fn structured(
    target: u8,
    set: u8,
    id: u8,
    flags: KsPropertyType,
    pin: u8,
    value_len: u16,
    value: &[u8],
) -> Vec<u8> {
    let mut v = vec![target, 7];
    v.extend_from_slice(&value_len.to_le_bytes());
    v.extend_from_slice(&[3, 0, set, id]);
    #[allow(clippy::cast_possible_truncation)] // flags used are below 0x10000
    v.extend_from_slice(&(flags.bits() as u16).to_le_bytes());
    v.extend_from_slice(&[pin, 0]);
    v.extend_from_slice(value);
    v
}

/// Seeds for [`crate::property`] (set indexes follow its table: Pin, Topology, General,
/// Connection, KsRing, Stream).
#[must_use]
pub fn property() -> Vec<Vec<u8>> {
    let get = KsPropertyType::GET;
    let mut seeds = Vec::new();
    for id in 0..15u8 {
        seeds.push(structured(0, 0, id, get, 0, 256, &[]));
    }
    seeds.push(structured(
        0,
        0,
        4,
        get,
        0,
        256,
        &request::multiple_item(&[request::audio_range(2, (16, 24), (8000, 48000))]),
    ));
    seeds.push(structured(0, 1, 2, get, 0, 64, &[]));
    seeds.push(structured(0, 2, 0, get, 0, 72, &[]));
    seeds.push(structured(0, 4, 1, get, 0, 128, &[]));
    seeds.push(structured(0, 4, 0, KsPropertyType::SET, 0, 4, &8192u32.to_le_bytes()));
    seeds.push(structured(1, 3, 0, KsPropertyType::SET, 0, 4, &2u32.to_le_bytes()));
    seeds.push(structured(2, 3, 2, get, 0, 128, &[]));
    seeds.push(structured(2, 3, 3, get, 0, 24, &[]));
    seeds.push(structured(0, 0, 3, KsPropertyType::BASICSUPPORT, 0, 64, &[]));
    // Raw mode: a request as bytes.
    let mut raw = vec![0, 7, 64, 0, 0, 1, 24];
    raw.extend_from_slice(&request::property(KSPROPSETID_Pin, pin_property::CTYPES, get));
    seeds.push(raw);
    let _ = (KSPROPSETID_Topology, KSPROPSETID_General, KSPROPSETID_Connection, KSPROPSETID_KsRing);
    let _ = (connection_property::STATE, ksring_property::CAPACITY);
    seeds
}

fn headers(list: &[Header]) -> Vec<u8> {
    let mut out = vec![0u8; list.len() * HEADER_SIZE];
    for (i, h) in list.iter().enumerate() {
        #[allow(clippy::cast_possible_truncation)] // 56
        h.write(&mut out, i * HEADER_SIZE, HEADER_SIZE as u32);
    }
    out
}

/// Seeds for [`crate::stream_headers`].
#[must_use]
pub fn stream_headers() -> Vec<Vec<u8>> {
    let w = |used, extent, data| Header { data, data_used: used, frame_extent: extent, ..Header::default() };
    let r = |extent, data| Header { data, frame_extent: extent, ..Header::default() };
    vec![
        with_prefix(&[0, 3, 0], &headers(&[w(100, 100, 0), w(0, 0, 0x100), w(4000, 5000, 0x200)])),
        with_prefix(&[0, 2, 1], &headers(&[w(10, 10, 0)])),
        with_prefix(&[3, 3, 2], &headers(&[r(1000, 0), r(1, 0x400)])),
        with_prefix(&[3, 3, 0], &headers(&[r(64, 0)])),
        with_prefix(&[1, 3, 0], &headers(&[w(8, 8, 0)])),
        // At the end of a chain, where the read may be lent: one header, after a frame; four.
        with_prefix(&[3, 3, 8 | 2], &headers(&[r(4096, 0)])),
        with_prefix(&[3, 3, 8], &headers(&[r(1000, 0), r(64, 0x400), r(1, 0x800), r(3000, 0x1000)])),
    ]
}

/// Seeds for [`crate::sequence`]: (op, arg) pairs.
#[must_use]
pub fn sequence() -> Vec<Vec<u8>> {
    // open; connect input, output; RUN both; write; read; reap; cancel; close
    let stream =
        vec![0, 0, 1, 0, 1, 1, 2, 6, 2, 7, 3, 0x22, 4, 0x23, 9, 0, 3, 0x66, 4, 0x61, 9, 0, 5, 1, 7, 0];
    let reset = vec![0, 0, 1, 0, 1, 1, 2, 6, 2, 7, 3, 0x02, 6, 0, 3, 0x02, 6, 2, 4, 0x21, 9, 0];
    let stop = vec![0, 0, 1, 0, 1, 1, 2, 6, 2, 5, 3, 0x08, 2, 0, 11, 0, 8, 0];
    let two = vec![0, 0, 0, 0, 1, 0x40, 1, 0x41, 2, 0x46, 2, 0x47, 3, 0x42, 4, 0x43, 10, 0x43, 9, 0x40];
    vec![stream, reset, stop, two]
}
