//! Run-time discovery of the real driver under kshost: every `KSPROPSETID_Pin` id on both pin
//! factories (with the KS size protocol), the topology, the component id, the private set.

mod common;

use ksabi::{
    GUID, KSCATEGORY_DATATRANSFORM, KSFILTER_NODE, KSINSTANCE_INDETERMINATE, KSINTERFACE_STANDARD_STREAMING,
    KSINTERFACESETID_Standard, KSMEDIUM_TYPE_ANYINSTANCE, KSMEDIUMSETID_Standard, KSPIN_COMMUNICATION_BOTH,
    KSPIN_DATAFLOW_IN, KSPIN_DATAFLOW_OUT, KSPROPERTY_DESCRIPTION, KSPROPERTY_MEMBER_RANGES, KSPROPSETID_Pin,
    KSPROPSETID_Stream, KsPropertyType, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
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
