//! The INF reader: the project's real INF, and malformed INFs that must give a clear error (with
//! a line number where there is one), never a panic.

use ksabi::GUID;
use kshost::inf::Inf;

fn ksring_inx() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../inf/ksring.inx"))
        .expect("inf/ksring.inx")
}

#[test]
fn reads_the_ksring_inf() {
    let inf = Inf::parse(&ksring_inx()).unwrap();
    let info = inf.install_info().unwrap();
    assert_eq!(info.class, "Media");
    assert_eq!(info.class_guid, ksabi::GUID_DEVCLASS_MEDIA);
    assert_eq!(info.hardware_id, "Root\\KsRing");
    assert_eq!(info.install_section, "KsRing_Device.NT");
    assert_eq!(info.service_name, "ksring");
    assert_eq!(info.service_binary, "%13%\\ksring.sys");
    assert_eq!(info.includes, ["ks.inf"]);
    assert_eq!(info.needs, ["KS.Registration"]);
    assert!(info.pnp_lockdown);
    assert_eq!(info.default_dest_dir.as_deref(), Some("13"));
    assert_eq!(info.interfaces.len(), 1);
    assert_eq!(info.interfaces[0].reference, "GLOBAL");
    assert_eq!(info.interfaces[0].friendly_name.as_deref(), Some("KsRing"));
    assert_eq!(info.interfaces[0].clsid, Some(ksabi::CLSID_Proxy));
    assert_eq!(info.media_categories.len(), 5);
}

const MINIMAL: &str = r#"
[Version]
Signature = "$WINDOWS NT$"
Class = Media
ClassGuid = {4d36e96c-e325-11ce-bfc1-08002be10318}
[Manufacturer]
%M% = Models
[Models]
%D% = Install, Root\X
[Install]
[Install.Services]
AddService = x, 2, Svc
[Svc]
ServiceType = 1
ServiceBinary = %13%\x.sys
[Strings]
M = "m"
D = "d ""quoted"" ; not a comment"
"#;

#[test]
fn minimal_inf_with_quotes_and_plain_sections() {
    let info = Inf::parse(MINIMAL).unwrap().install_info().unwrap();
    assert_eq!(info.device_description, "d \"quoted\" ; not a comment");
    assert_eq!(info.install_section, "Install");
    assert!(info.interfaces.is_empty());
}

#[test]
fn continuation_lines_and_comments() {
    let text = MINIMAL.replace("AddService = x, 2, Svc", "AddService = x, \\\n   2, Svc ; trailing comment");
    let info = Inf::parse(&text).unwrap().install_info().unwrap();
    assert_eq!(info.service_name, "x");
}

fn error_of(text: &str) -> kshost::inf::InfError {
    match Inf::parse(text).and_then(|inf| inf.install_info()) {
        Ok(_) => panic!("accepted a malformed INF:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn malformed_infs_are_errors() {
    let cases: &[(&str, String, &str)] = &[
        ("no [Version]", MINIMAL.replace("[Version]", "[Verzion]"), "no [Version]"),
        ("line outside a section", format!("Orphan = 1\n{MINIMAL}"), "outside any section"),
        ("unterminated quote", MINIMAL.replace("M = \"m\"", "M = \"m"), "unterminated quote"),
        ("undefined string", MINIMAL.replace("%M% = Models", "%Nope% = Models"), "undefined string"),
        ("bad section header", MINIMAL.replace("[Svc]", "[Svc"), "section header"),
        (
            "bad ClassGuid",
            MINIMAL.replace("{4d36e96c-e325-11ce-bfc1-08002be10318}", "{4d36e96c}"),
            "ClassGuid",
        ),
        ("bad signature", MINIMAL.replace("$WINDOWS NT$", "$DOS$"), "Signature"),
        ("no models section", MINIMAL.replace("[Models]", "[Modelz]"), "no models section"),
        ("no install section", MINIMAL.replace("[Install]\n", "[Inztall]\n"), "install section"),
        ("no services", MINIMAL.replace("[Install.Services]", "[Install.Zervices]"), "Services"),
        ("not a kernel driver", MINIMAL.replace("ServiceType = 1", "ServiceType = 16"), "ServiceType"),
        ("no service binary", MINIMAL.replace("ServiceBinary", "ServiceBinari"), "ServiceBinary"),
        ("continued to the end", format!("{MINIMAL}\n[X]\nA = 1 \\"), "continued line"),
        (
            "bad AddInterface GUID",
            format!("{MINIMAL}\n[Install.Interfaces]\nAddInterface = {{nope}}, \"GLOBAL\", If\n[If]\n"),
            "not a GUID",
        ),
        (
            "missing interface AddReg section",
            format!(
                "{MINIMAL}\n[Install.Interfaces]\nAddInterface = {{4d36e96c-e325-11ce-bfc1-08002be10318}}, \"G\", If\n[If]\nAddReg = Missing\n"
            ),
            "[Missing] is missing",
        ),
    ];
    for (what, text, needle) in cases {
        let e = error_of(text);
        assert!(e.to_string().contains(needle), "{what}: {e} (wanted {needle:?})");
    }
    // Line numbers point at the offending line.
    let e = error_of(&MINIMAL.replace("ServiceType = 1", "ServiceType = 16"));
    assert!(e.line > 0, "{e:?}");
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: every prefix and a byte-flipped copy of the real INF.
    let text = ksring_inx();
    for end in (0..text.len()).step_by(7) {
        if text.is_char_boundary(end) {
            let _ = Inf::parse(&text[..end]).and_then(|i| i.install_info());
        }
    }
    let mut bytes = text.into_bytes();
    for i in (0..bytes.len()).step_by(13) {
        bytes[i] = bytes[i].wrapping_add(31);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = Inf::parse(s).and_then(|i| i.install_info());
        }
    }
    let _ = GUID::parse("{}");
}

#[test]
fn status_to_win32_mapping() {
    use ksabi::*;
    use kshost::status_map::win32_error;
    for (status, win32) in [
        (STATUS_SUCCESS, 0),
        (STATUS_PENDING, 997),
        (STATUS_BUFFER_OVERFLOW, 234),
        (STATUS_INVALID_PARAMETER, 87),
        (STATUS_INVALID_DEVICE_REQUEST, 1),
        (STATUS_BUFFER_TOO_SMALL, 122),
        (STATUS_NOT_FOUND, 1168),
        (STATUS_PROPSET_NOT_FOUND, 1170),
        (STATUS_NO_MATCH, 1169),
        (STATUS_CANCELLED, 995),
        (STATUS_DEVICE_NOT_READY, 21),
        (STATUS_INVALID_BUFFER_SIZE, 1784),
        (STATUS_ACCESS_DENIED, 5),
        (STATUS_INVALID_DEVICE_STATE, 22),
        (STATUS_END_OF_FILE, 38),
    ] {
        assert_eq!(win32_error(status), win32, "{}", kshost::status_map::describe(status));
    }
    assert_eq!(win32_error(0xC0DE_0001_u32.cast_signed()), kshost::status_map::ERROR_MR_MID_NOT_FOUND);
}
