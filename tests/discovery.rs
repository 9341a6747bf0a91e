//! Run-time discovery of the real driver under kshost: every `KSPROPSETID_Pin` id on both pin
//! factories (with the KS size protocol), the topology, the component id, the private set.

mod common;

use std::mem::offset_of;

use ksabi::{
    GUID, KSCATEGORY_DATATRANSFORM, KSDATAFORMAT, KSFILTER_NODE, KSINSTANCE_INDETERMINATE,
    KSINTERFACE_STANDARD_STREAMING, KSINTERFACESETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE,
    KSMEDIUMSETID_Standard, KSPIN_COMMUNICATION_BOTH, KSPIN_DATAFLOW_IN, KSPIN_DATAFLOW_OUT,
    KSPROPERTY_DESCRIPTION, KSPROPERTY_MEMBER_RANGES, KSPROPSETID_Pin, KSPROPSETID_Stream, KsPropertyType,
    NTSTATUS, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_BUFFER_SIZE,
    STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, STATUS_NOT_FOUND, STATUS_PROPSET_NOT_FOUND, STATUS_SUCCESS,
    VT_UI4, pin_property,
};
use ksclient::request::{self, u32_at};
use ksclient::{Filter, Properties};
use ksring_api::{
    DEFAULT_CAPACITY, KSCATEGORY_KSRING, KSPROPSETID_KsRing, KSRING_COMPONENT, KSRING_MANUFACTURER,
    KSRING_NAME, KSRING_PRODUCT, KSRING_VERSION, MAX_CAPACITY, MIN_CAPACITY, PIN_INPUT, PIN_OUTPUT,
    PINCATEGORY_KSRING_INPUT, PINCATEGORY_KSRING_OUTPUT, ksring_property, pcm,
};

fn get(filter: &Filter<'_>, id: u32, pin: u32, out: &mut [u8]) -> ksclient::Io {
    filter.property(&request::pin_property(KSPROPSETID_Pin, id, KsPropertyType::GET, pin), out)
}

#[test]
fn interface_is_found_by_category_with_its_friendly_name() {
    let backend = common::boot();
    let found = ksclient::Backend::filters(&backend, &KSCATEGORY_KSRING);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].friendly_name.as_deref(), Some("KsRing"));
    assert!(found[0].path.ends_with("\\GLOBAL"), "{}", found[0].path);
    backend.shutdown().assert_clean();
}

#[test]
fn every_pin_property_on_both_factories() {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        assert_eq!(f.pin_factories(), Ok(2));
        let standard = vec![(KSINTERFACESETID_Standard, KSINTERFACE_STANDARD_STREAMING, 0)];
        let medium = vec![(KSMEDIUMSETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE, 0)];
        for (pin, flow, category, name) in [
            (PIN_INPUT, KSPIN_DATAFLOW_IN, PINCATEGORY_KSRING_INPUT, "Input"),
            (PIN_OUTPUT, KSPIN_DATAFLOW_OUT, PINCATEGORY_KSRING_OUTPUT, "Output"),
        ] {
            assert_eq!(f.data_flow(pin), Ok(flow.cast_unsigned()));
            assert_eq!(f.communication(pin), Ok(KSPIN_COMMUNICATION_BOTH.cast_unsigned()));
            assert_eq!(f.category(pin), Ok(category));
            assert_eq!(f.name(pin).as_deref(), Ok(name), "the name GUID's text from the INF");
            assert_eq!(f.identifiers(pin, false), Ok(standard.clone()));
            assert_eq!(f.identifiers(pin, true), Ok(medium.clone()));
            assert_eq!(f.instances(pin), Ok((1, 0)));
            assert_eq!(f.global_instances(pin), Ok((KSINSTANCE_INDETERMINATE, 0)));
            assert_eq!(f.necessary_instances(pin), Ok(1));
            let ranges = f.data_ranges(pin, false).unwrap();
            assert_eq!(ranges.len(), 2);
            assert_eq!(ranges[0], request::stream_format(), "the byte-stream range");
            assert_eq!(
                ranges[1],
                request::audio_range(
                    pcm::MAX_CHANNELS,
                    (pcm::MIN_BITS, pcm::MAX_BITS),
                    (pcm::MIN_RATE, pcm::MAX_RATE)
                )
            );
            assert_eq!(f.data_ranges(pin, true).unwrap(), ranges, "no constraints: the ranges themselves");
            assert_eq!(f.proposed_format(pin), Ok(request::stream_format()));
            // Ids the driver has no answer for.
            for id in [pin_property::PHYSICALCONNECTION, 15, pin_property::MODEDATAFORMATS, 99] {
                assert_eq!(get(&f, id, pin, &mut [0; 64]).status, STATUS_NOT_FOUND, "id {id}");
            }
        }
        // A pin id beyond the factories, on every KSP_PIN property.
        for id in [0, 2, 3, 5, 6, 7, 8, 9, 11, 12, 13, 14] {
            assert_eq!(get(&f, id, 2, &mut [0; 128]).status, STATUS_INVALID_PARAMETER, "id {id}");
        }
    }
    backend.shutdown().assert_clean();
}

#[test]
fn size_protocol_on_a_variable_property() {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        let full = 8 + 64 + 88; // KSMULTIPLE_ITEM, the stream range, the audio range
        let io = get(&f, pin_property::DATARANGES, PIN_INPUT, &mut []);
        assert_eq!((io.status, io.information), (STATUS_BUFFER_OVERFLOW, full));
        let mut four = [0u8; 4];
        let io = get(&f, pin_property::DATARANGES, PIN_INPUT, &mut four);
        assert_eq!((io.status, io.information, u32_at(&four, 0)), (STATUS_SUCCESS, 4, Some(160)));
        let mut eight = [0u8; 8];
        let io = get(&f, pin_property::DATARANGES, PIN_INPUT, &mut eight);
        assert_eq!((io.status, io.information), (STATUS_SUCCESS, 8));
        assert_eq!((u32_at(&eight, 0), u32_at(&eight, 4)), (Some(160), Some(2)));
        let mut short = vec![0u8; full - 1];
        assert_eq!(get(&f, pin_property::DATARANGES, PIN_INPUT, &mut short).status, STATUS_BUFFER_TOO_SMALL);
        let mut exact = vec![0u8; full];
        let io = get(&f, pin_property::DATARANGES, PIN_INPUT, &mut exact);
        assert_eq!((io.status, io.information), (STATUS_SUCCESS, full));
        // The name: a NUL-terminated UTF-16 string, also sized.
        let io = get(&f, pin_property::NAME, PIN_OUTPUT, &mut []);
        assert_eq!((io.status, io.information), (STATUS_BUFFER_OVERFLOW, ("Output".len() + 1) * 2));
        assert_eq!(get(&f, pin_property::NAME, PIN_OUTPUT, &mut [0; 4]).status, STATUS_BUFFER_TOO_SMALL);
    }
    backend.shutdown().assert_clean();
}

#[test]
fn data_intersection_offers_a_format_per_client_range() {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        let wildcard = request::data_format(64, GUID::from_u128(0), GUID::from_u128(0), GUID::from_u128(0));
        assert_eq!(
            f.intersect(PIN_INPUT, &[wildcard]),
            Ok(request::stream_format()),
            "a wildcard gets the stream"
        );
        let narrow = request::audio_range(2, (16, 24), (44_100, 48_000));
        assert_eq!(
            f.intersect(PIN_OUTPUT, std::slice::from_ref(&narrow)),
            Ok(request::pcm_format(2, 24, 48_000))
        );
        let impossible = request::audio_range(2, (12, 12), (44_100, 48_000));
        assert_eq!(
            f.intersect(PIN_INPUT, std::slice::from_ref(&impossible)).map_err(|io| io.status),
            Err(STATUS_NO_MATCH)
        );
        // The first range the pin can satisfy wins.
        assert_eq!(f.intersect(PIN_INPUT, &[impossible, narrow]), Ok(request::pcm_format(2, 24, 48_000)));
        let video = request::data_format(64, GUID::from_u128(0x1234), GUID::from_u128(0), GUID::from_u128(0));
        assert_eq!(f.intersect(PIN_INPUT, &[video]).map_err(|io| io.status), Err(STATUS_NO_MATCH));
        // The offer is exactly what a pin can be created with.
        let offer = f.intersect(PIN_OUTPUT, &[request::audio_range(8, (8, 32), (8_000, 192_000))]).unwrap();
        let pin = f.connect(PIN_OUTPUT, &offer).expect("the offered format connects");
        // With the output connected as PCM, the input is offered only that format.
        assert_eq!(
            f.intersect(PIN_INPUT, &[request::stream_format()]).map_err(|io| io.status),
            Err(STATUS_NO_MATCH)
        );
        // F7: ks.sys' KsPinDataIntersection answers a stream or wildcard range from the pin's
        // stream range by itself; ksring answers itself, with the peer's format.
        let wildcard = request::data_format(64, GUID::from_u128(0), GUID::from_u128(0), GUID::from_u128(0));
        assert_eq!(
            f.intersect(PIN_INPUT, &[wildcard]),
            Ok(offer.clone()),
            "a wildcard gets the peer's format"
        );
        assert_eq!(
            f.intersect(PIN_INPUT, &[request::audio_range(8, (8, 32), (8_000, 192_000))]),
            Ok(offer.clone())
        );
        assert_eq!(f.proposed_format(PIN_INPUT), Ok(offer.clone()));
        assert_eq!(f.propose(PIN_INPUT, &offer).status, STATUS_SUCCESS);
        assert_eq!(f.propose(PIN_INPUT, &request::stream_format()).status, STATUS_NO_MATCH);
        assert_eq!(f.propose(PIN_INPUT, &request::pcm_format(2, 16, 44_100)).status, STATUS_NO_MATCH);
        drop(pin);
        assert_eq!(f.propose(PIN_INPUT, &request::stream_format()).status, STATUS_SUCCESS);
    }
    backend.shutdown().assert_clean();
}

#[test]
fn topology_component_and_private_set() {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        assert_eq!(f.categories(), Ok(vec![KSCATEGORY_KSRING, KSCATEGORY_DATATRANSFORM]));
        assert_eq!(f.nodes(), Ok(vec![]));
        let c = f.connections().unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].FromNode, c[0].FromNodePin, c[0].ToNode, c[0].ToNodePin),
            (KSFILTER_NODE, PIN_INPUT, KSFILTER_NODE, PIN_OUTPUT)
        );
        let id = f.component_id().unwrap();
        assert_eq!(
            (id.Manufacturer, id.Product, id.Component, id.Name, id.Version),
            (KSRING_MANUFACTURER, KSRING_PRODUCT, KSRING_COMPONENT, KSRING_NAME, KSRING_VERSION)
        );
        assert_eq!(f.capacity(), Ok(DEFAULT_CAPACITY));
        let stats = common::stats(&f);
        assert_eq!(
            (stats.capacity, stats.bytes_in, stats.pending_reads),
            (0, 0, 0),
            "no ring before ACQUIRE"
        );

        // BASICSUPPORT of the capacity: GET and SET, a ULONG in [MIN, MAX].
        let req =
            request::property(KSPROPSETID_KsRing, ksring_property::CAPACITY, KsPropertyType::BASICSUPPORT);
        let io = f.property(&req, &mut []);
        let size = size_of::<KSPROPERTY_DESCRIPTION>() + 16 + 8;
        assert_eq!((io.status, io.information), (STATUS_BUFFER_OVERFLOW, size));
        let mut d = vec![0u8; size];
        assert_eq!(f.property(&req, &mut d).status, STATUS_SUCCESS);
        let access = (KsPropertyType::GET | KsPropertyType::SET | KsPropertyType::BASICSUPPORT).bits();
        assert_eq!(u32_at(&d, 0), Some(access));
        assert_eq!(u32_at(&d, 8 + 16), Some(VT_UI4), "PropTypeSet.Id");
        assert_eq!(u32_at(&d, 0x28), Some(KSPROPERTY_MEMBER_RANGES));
        assert_eq!((u32_at(&d, 0x38), u32_at(&d, 0x3C)), (Some(MIN_CAPACITY), Some(MAX_CAPACITY)));

        // Sets and ids the filter does not have.
        let req = request::property(KSPROPSETID_Stream, 0, KsPropertyType::GET);
        assert_eq!(f.property(&req, &mut [0; 8]).status, STATUS_PROPSET_NOT_FOUND);
        let req = request::property(KSPROPSETID_KsRing, 7, KsPropertyType::GET);
        assert_eq!(f.property(&req, &mut [0; 8]).status, STATUS_NOT_FOUND);
        let req = request::property(KSPROPSETID_KsRing, ksring_property::STATISTICS, KsPropertyType::SET);
        assert_eq!(f.property(&req, &mut [0; 128]).status, STATUS_NOT_FOUND, "statistics are read-only");
    }
    backend.shutdown().assert_clean();
}

/// A format is ksring's by its GUIDs and its body together: a valid `WAVEFORMATEX` under GUIDs
/// other than PCM's is refused, on a filter with no pins (nothing else to disagree with).
#[test]
fn proposed_formats_need_the_pcm_guids_for_a_waveformatex_body() {
    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        let good = request::pcm_format(2, 16, 48_000);
        assert_eq!(f.propose(PIN_INPUT, &good).status, STATUS_SUCCESS);
        for (what, at) in [
            ("major format", offset_of!(KSDATAFORMAT, MajorFormat)),
            ("subformat", offset_of!(KSDATAFORMAT, SubFormat)),
            ("specifier", offset_of!(KSDATAFORMAT, Specifier)),
        ] {
            let mut other = good.clone();
            other[at] ^= 1;
            assert_eq!(f.propose(PIN_INPUT, &other).status, STATUS_NO_MATCH, "another {what}");
        }
    }
    backend.shutdown().assert_clean();
}

/// `DATAINTERSECTION` walks the client's `KSMULTIPLE_ITEM` of ranges as ks.sys'
/// `KsPinDataIntersectionEx` does: each range within the list's `Size` and the request, 8-byte
/// steps between ranges but not after the last, attribute lists skipped (and checked) after a
/// range that says it has one. Each list below is sent raw, `Size` and `Count` as written.
/// What a `DATAINTERSECTION` gets: the offered format, or the status.
type Offer = Result<Vec<u8>, NTSTATUS>;

#[test]
#[allow(clippy::too_many_lines)] // one table
fn intersection_lists_are_walked_as_ks_walks_them() {
    const ATTRIBUTES: u32 = 0x2; // KSDATARANGE_ATTRIBUTES
    let flagged = |mut range: Vec<u8>, flags: u32| {
        range[offset_of!(KSDATAFORMAT, Flags)..][..4].copy_from_slice(&flags.to_le_bytes());
        range
    };
    let stream = request::stream_format;
    let video =
        || request::data_format(64, GUID::from_u128(0x7669_6473), GUID::from_u128(1), GUID::from_u128(2));
    // An attribute list: a KSMULTIPLE_ITEM saying `size`, in `len` bytes.
    let attributes = |size: u32, len: usize| {
        let mut a = vec![0u8; len];
        a[..4].copy_from_slice(&size.to_le_bytes());
        a
    };
    // `Count` ranges laid end to end, unpadded; `Size` as given (None: the bytes there are).
    let list = |size: Option<usize>, count: u32, parts: &[Vec<u8>]| {
        let body = parts.concat();
        let size = u32::try_from(size.unwrap_or(8 + body.len())).unwrap();
        [&size.to_le_bytes()[..], &count.to_le_bytes(), &body].concat()
    };
    // A range with the PCM GUIDs (not a KSDATARANGE_AUDIO: no bounds), `len` bytes saying `size`.
    let pcm_range = |size: u32, len: usize| {
        let mut r = request::pcm_format(2, 16, 48_000)[..64].to_vec();
        r.resize(len, 0);
        r[..4].copy_from_slice(&size.to_le_bytes());
        r
    };
    let odd = || pcm_range(68, 68); // a range whose length is not a multiple of 8
    let best_pcm = request::pcm_format(8, 32, 192_000);

    let backend = common::boot();
    {
        let f = Filter::open_first(&backend).unwrap();
        let offer = |list: Vec<u8>| {
            let mut req = request::pin_property(
                KSPROPSETID_Pin,
                pin_property::DATAINTERSECTION,
                KsPropertyType::GET,
                PIN_INPUT,
            );
            req.extend_from_slice(&list);
            let mut out = vec![0u8; 128];
            let io = f.property(&req, &mut out);
            out.truncate(io.information);
            if io.status == STATUS_SUCCESS { Ok(out) } else { Err(io.status) }
        };
        let cases: Vec<(&str, Vec<u8>, Offer)> = vec![
            (
                "Size below the list header: the request's length bounds it",
                list(Some(0), 1, &[stream()]),
                Ok(stream()),
            ),
            (
                "Size below the header, a range then short of its 8-byte step",
                list(Some(0), 2, &[odd()]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
            (
                "a range more ranges follow must be followed by its padding",
                list(None, 2, &[odd()]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
            ("the last range needs no padding", list(None, 1, &[odd()]), Ok(best_pcm.clone())),
            (
                "a range with a specifier whose FormatSize is below a KSDATARANGE",
                list(None, 1, &[pcm_range(16, 64)]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
            (
                "a range beyond Size, inside the request",
                list(Some(8 + 64), 1, &[odd()]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
            (
                "a plain KSDATARANGE with the PCM GUIDs gets the richest PCM format",
                list(None, 1, &[pcm_range(64, 64)]),
                Ok(best_pcm.clone()),
            ),
            (
                "ranges after a matching range with attributes are not looked at",
                list(None, 3, &[flagged(stream(), ATTRIBUTES), attributes(8, 8), video()]),
                Ok(stream()),
            ),
            (
                "an attribute list shorter than its header",
                list(None, 2, &[flagged(stream(), ATTRIBUTES), attributes(4, 8)]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
            (
                "an attribute list beyond Size, inside the request",
                list(Some(8 + 64 + 8), 2, &[flagged(stream(), ATTRIBUTES), attributes(16, 16)]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
            (
                "an attribute list with entries",
                list(None, 2, &[flagged(stream(), ATTRIBUTES), attributes(16, 16)]),
                Ok(stream()),
            ),
            (
                "an attribute list longer than its range",
                list(None, 2, &[flagged(stream(), ATTRIBUTES), attributes(72, 72)]),
                Ok(stream()),
            ),
            (
                "a range with attributes that does not match, then one that does",
                list(None, 3, &[flagged(video(), ATTRIBUTES), attributes(8, 8), stream()]),
                Ok(stream()),
            ),
            (
                "the last attribute list needs no padding",
                list(None, 2, &[flagged(stream(), ATTRIBUTES), attributes(12, 12)]),
                Ok(stream()),
            ),
            (
                "an attribute list more ranges follow must be followed by its padding",
                list(None, 3, &[flagged(stream(), ATTRIBUTES), attributes(12, 12)]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
            (
                "an attribute list ending exactly at Size, more ranges announced",
                list(None, 3, &[flagged(stream(), ATTRIBUTES), attributes(8, 8)]),
                Ok(stream()),
            ),
            (
                "a second range beyond Size after a first that does not match",
                list(Some(8 + 64 + 32), 2, &[video(), stream()]),
                Err(STATUS_INVALID_BUFFER_SIZE),
            ),
        ];
        for (what, list, expected) in cases {
            assert_eq!(offer(list), expected, "{what}");
        }
    }
    backend.shutdown().assert_clean();
}
