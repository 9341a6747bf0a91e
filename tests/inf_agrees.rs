//! `inf/ksring.inx` and the code agree: every GUID, the reference string, the names `KSPROPERTY_PIN_NAME`
//! reads, and the parts of the INF a KS driver package needs (Media class, ks.inf registration,
//! the kernel service, PnP lockdown, the driver directory).

use ksabi::{CLSID_Proxy, GUID, GUID_DEVCLASS_MEDIA};
use kshost::inf::Inf;
use ksring_api::{
    KSCATEGORY_KSRING, KSRING_NAME, PINCATEGORY_KSRING_INPUT, PINCATEGORY_KSRING_OUTPUT,
    PINNAME_KSRING_INPUT, PINNAME_KSRING_OUTPUT, REFERENCE_STRING,
};

const INF: &str = include_str!("../inf/ksring.inx");

fn inf() -> Inf {
    Inf::parse(INF).expect("inf/ksring.inx parses")
}

#[test]
fn the_package_is_a_ks_media_driver() {
    let i = inf().install_info().expect("install info");
    assert_eq!(i.class, "Media");
    assert_eq!(i.class_guid, GUID_DEVCLASS_MEDIA);
    assert!(i.includes.iter().any(|f| f.eq_ignore_ascii_case("ks.inf")), "{:?}", i.includes);
    assert!(i.needs.iter().any(|n| n.eq_ignore_ascii_case("KS.Registration")), "{:?}", i.needs);
    assert!(i.pnp_lockdown);
    assert_eq!(i.default_dest_dir.as_deref(), Some("13"), "the driver store (run from there)");
    assert_eq!(i.hardware_id, "Root\\KsRing");
    assert_eq!(i.service_name, "ksring");
    assert_eq!(i.service_binary, "%13%\\ksring.sys");
    let inf = inf();
    assert_eq!(inf.value("KsRing_Service", "ServiceType"), Some("1"), "kernel driver");
    assert_eq!(inf.value("KsRing_Service", "StartType"), Some("3"), "demand start (PnP)");
    assert_eq!(inf.value("Version", "CatalogFile"), Some("ksring.cat"));
}

#[test]
fn the_interface_is_the_one_the_driver_registers() {
    let i = inf().install_info().unwrap();
    assert_eq!(i.interfaces.len(), 1);
    let iface = &i.interfaces[0];
    assert_eq!(iface.category, KSCATEGORY_KSRING);
    assert_eq!(iface.reference, REFERENCE_STRING, "the filter create item's name");
    assert_eq!(iface.clsid, Some(CLSID_Proxy), "ksproxy for DirectShow clients");
    assert_eq!(iface.friendly_name.as_deref(), Some("KsRing"));
}

#[test]
fn every_guid_the_driver_names_has_its_name_in_the_inf() {
    let i = inf().install_info().unwrap();
    let named = |g: GUID| i.media_categories.iter().find(|(k, _)| *k == g).map(|(_, v)| v.clone());
    for (what, guid) in [
        ("input pin category", PINCATEGORY_KSRING_INPUT),
        ("output pin category", PINCATEGORY_KSRING_OUTPUT),
        ("input pin name", PINNAME_KSRING_INPUT),
        ("output pin name", PINNAME_KSRING_OUTPUT),
        ("component name", KSRING_NAME),
    ] {
        assert!(named(guid).is_some_and(|n| !n.is_empty()), "{what} {guid} has no MediaCategories name");
    }
    assert_eq!(i.media_categories.len(), 5, "no stale names: {:?}", i.media_categories);
}
