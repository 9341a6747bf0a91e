//! Names the driver shares with its INF and its clients: GUIDs, the reference string, pool tags.
//!
//! `tests/inf_agrees.rs` checks that `inf/ksring.inx` names the same values.

#![allow(non_upper_case_globals)] // KS spells set names KSPROPSETID_Xxx

use ksabi::GUID;

/// The device-interface category KsRing filters register under (the INF's `AddInterface`).
pub const KSCATEGORY_KSRING: GUID = GUID::from_u128(0xBC7386A2_FF61_46A7_8034_9B51685D7953);

/// The reference string of the device interface: opening `<interface path>` sends `\GLOBAL`.
pub const REFERENCE_STRING: &str = "GLOBAL";

/// Category of the input pin factory (name under MediaCategories in the INF).
pub const PINCATEGORY_KSRING_INPUT: GUID = GUID::from_u128(0x9D9903BD_7B2E_4CDB_BE92_CA48AD1233F9);
/// Category of the output pin factory.
pub const PINCATEGORY_KSRING_OUTPUT: GUID = GUID::from_u128(0xBD97E003_0F08_402E_8796_1CCE89511EAC);
/// Name GUID of the input pin factory.
pub const PINNAME_KSRING_INPUT: GUID = GUID::from_u128(0x99D2811A_AA06_4D2F_B0A3_DE874BA7C511);
/// Name GUID of the output pin factory.
pub const PINNAME_KSRING_OUTPUT: GUID = GUID::from_u128(0x38C1D992_84EB_4757_9EE5_9C0A461E7AB3);

/// `KSCOMPONENTID.Manufacturer`.
pub const KSRING_MANUFACTURER: GUID = GUID::from_u128(0x03D49F0E_4CA3_408E_A85C_2F80407B0E45);
/// `KSCOMPONENTID.Product`.
pub const KSRING_PRODUCT: GUID = GUID::from_u128(0xA1111ECB_1DDF_413A_A80B_31FEF2895B4E);
/// `KSCOMPONENTID.Component`.
pub const KSRING_COMPONENT: GUID = GUID::from_u128(0x17BF0F18_CD0E_4689_842F_BDAF9537C674);
/// `KSCOMPONENTID.Name` (its text is under MediaCategories in the INF).
pub const KSRING_NAME: GUID = GUID::from_u128(0xBCEEC3BC_77CA_4C6B_80C6_E365909C5338);

/// ksring's private property set: ring capacity and statistics.
pub const KSPROPSETID_KsRing: GUID = GUID::from_u128(0xEE23D318_3919_4925_A16A_5CA6AA7FCB4E);

/// Pool tag of the device-level allocations: `"KsRD"` as `!poolused` shows it.
pub const TAG_DEVICE: u32 = u32::from_le_bytes(*b"KsRD");
/// Pool tag of filter instances.
pub const TAG_FILTER: u32 = u32::from_le_bytes(*b"KsRF");
/// Pool tag of pin instances.
pub const TAG_PIN: u32 = u32::from_le_bytes(*b"KsRP");
/// Pool tag of ring storage.
pub const TAG_RING: u32 = u32::from_le_bytes(*b"KsRR");
