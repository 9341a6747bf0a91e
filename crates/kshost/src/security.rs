//! Who may open a device: the caller's identity against the device stack's security descriptor.
//!
//! Windows: the INF's `HKR,,Security,,"<SDDL>"` in the device's `DDInstall.HW` section is applied
//! by the PnP manager to every device object of the stack after `AddDevice`; without one, the
//! default descriptor gives administrators full access and everyone else read, write and
//! execute. The I/O manager checks an open against the descriptor of the device at the top of the
//! stack — but an open *within the device's namespace* (a trailing name such as a KS reference
//! string, `\GLOBAL`, or a relative pin open) only if the stack has `FILE_DEVICE_SECURE_OPEN`;
//! otherwise "security checks ... are left entirely up to the driver". Sources in `FIDELITY.md`.
//!
//! kshost models the discretionary ACL only: allow and deny ACEs for well-known SID aliases
//! (`SY`, `BA`, `BU`, `AU`, `IU`, `WD`, ...) with generic or file rights, and three callers.

/// The identity a client runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Caller {
    /// `NT AUTHORITY\SYSTEM` (a service).
    LocalSystem,
    /// An elevated member of `BUILTIN\Administrators` (what test harnesses run as).
    #[default]
    Administrator,
    /// An interactive user who is not an administrator (or an unelevated one).
    StandardUser,
}

impl Caller {
    /// The SID aliases in the caller's token.
    fn sids(self) -> &'static [&'static str] {
        match self {
            Self::LocalSystem => &["SY", "BA", "WD", "AU"],
            Self::Administrator => &["BA", "BU", "AU", "IU", "WD"],
            Self::StandardUser => &["BU", "AU", "IU", "WD"],
        }
    }
}

/// Read, write, execute: the generic rights a file open asks for.
const READ: u32 = 1;
const WRITE: u32 = 2;
const EXECUTE: u32 = 4;
const ALL: u32 = READ | WRITE | EXECUTE;

/// One access control entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ace {
    allow: bool,
    rights: u32,
    sid: String,
}

/// A device's discretionary ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dacl {
    aces: Vec<Ace>,
}

impl Dacl {
    /// The default descriptor of a device with no `Security` property: administrators and the
    /// system all access, everyone read, write and execute.
    pub(crate) fn default_for_device() -> Self {
        Self::parse("D:(A;;GA;;;SY)(A;;GA;;;BA)(A;;GRGWGX;;;WD)").unwrap_or(Self { aces: Vec::new() })
    }

    /// Parses the DACL part of an SDDL string (`D:P(A;;GA;;;SY)...`).
    ///
    /// # Errors
    /// What is not understood: another ACE type, an unknown right or SID form.
    pub(crate) fn parse(sddl: &str) -> Result<Self, String> {
        let dacl = sddl.trim().strip_prefix("D:").ok_or_else(|| format!("{sddl:?}: no D: part"))?;
        let body = dacl.trim_start_matches(|c: char| c.is_ascii_uppercase());
        let mut aces = Vec::new();
        for ace in body.split(')').map(|a| a.trim().trim_start_matches('(')).filter(|a| !a.is_empty()) {
            let fields: Vec<&str> = ace.split(';').collect();
            let [kind, _flags, rights, _object, _inherit, sid] = fields.as_slice() else {
                return Err(format!("ACE ({ace}) does not have six fields"));
            };
            let allow = match *kind {
                "A" => true,
                "D" => false,
                other => return Err(format!("ACE type {other:?} is not modelled")),
            };
            aces.push(Ace { allow, rights: parse_rights(rights)?, sid: (*sid).to_ascii_uppercase() });
        }
        Ok(Self { aces })
    }

    /// Whether `caller` may open with `desired_access` (a `CreateFile` access mask): deny entries
    /// that match take away, allow entries grant; every right asked for must be granted.
    pub(crate) fn grants(&self, caller: Caller, desired_access: u32) -> bool {
        let wanted = wanted_rights(desired_access);
        let mut granted = 0;
        let mut denied = 0;
        for ace in self.aces.iter().filter(|a| caller.sids().contains(&a.sid.as_str())) {
            if ace.allow {
                granted |= ace.rights & !denied;
            } else {
                denied |= ace.rights & !granted;
            }
        }
        wanted & !granted == 0
    }
}

/// The rights an SDDL rights field names: generic (`GA`, `GR`, `GW`, `GX`), file (`FA`, `FR`,
/// `FW`, `FX`), or a hexadecimal mask.
fn parse_rights(text: &str) -> Result<u32, String> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        let mask = u32::from_str_radix(hex, 16).map_err(|e| format!("rights {text:?}: {e}"))?;
        return Ok(wanted_rights(mask));
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(format!("rights {text:?}"));
    }
    bytes.chunks(2).try_fold(0, |acc, pair| {
        Ok(acc
            | match pair {
                b"GA" | b"FA" => ALL,
                b"GR" | b"FR" => READ,
                b"GW" | b"FW" => WRITE,
                b"GX" | b"FX" => EXECUTE,
                _ => return Err(format!("right {:?} is not modelled", String::from_utf8_lossy(pair))),
            })
    })
}

/// The generic rights an access mask needs: `GENERIC_*`, `FILE_ALL_ACCESS`, or the file-specific
/// read/write bits.
fn wanted_rights(mask: u32) -> u32 {
    const GENERIC_ALL: u32 = 0x1000_0000;
    const GENERIC_EXECUTE: u32 = 0x2000_0000;
    const GENERIC_WRITE: u32 = 0x4000_0000;
    const GENERIC_READ: u32 = 0x8000_0000;
    const FILE_READ: u32 = 0x0001 | 0x0008 | 0x0080; // data, EA, attributes
    const FILE_WRITE: u32 = 0x0002 | 0x0004 | 0x0010 | 0x0100;
    const FILE_EXECUTE: u32 = 0x0020;
    let mut r = 0;
    if mask & GENERIC_ALL != 0 || mask & 0x001F_01FF == 0x001F_01FF {
        r |= ALL;
    }
    if mask & (GENERIC_READ | FILE_READ) != 0 {
        r |= READ;
    }
    if mask & (GENERIC_WRITE | FILE_WRITE) != 0 {
        r |= WRITE;
    }
    if mask & (GENERIC_EXECUTE | FILE_EXECUTE) != 0 {
        r |= EXECUTE;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ_WRITE: u32 = 0x8000_0000 | 0x4000_0000;

    #[test]
    fn administrators_and_system_only() {
        let d = Dacl::parse("D:P(A;;GA;;;SY)(A;;GA;;;BA)").unwrap();
        assert!(d.grants(Caller::LocalSystem, READ_WRITE));
        assert!(d.grants(Caller::Administrator, READ_WRITE));
        assert!(!d.grants(Caller::StandardUser, READ_WRITE));
        assert!(!d.grants(Caller::StandardUser, 0x8000_0000));
    }

    #[test]
    fn widened_for_users_read_only() {
        let d = Dacl::parse("D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GR;;;BU)").unwrap();
        assert!(d.grants(Caller::StandardUser, 0x8000_0000));
        assert!(!d.grants(Caller::StandardUser, READ_WRITE));
    }

    #[test]
    fn deny_entries_take_precedence_in_order() {
        let d = Dacl::parse("D:(D;;GW;;;BU)(A;;GA;;;WD)").unwrap();
        assert!(!d.grants(Caller::StandardUser, READ_WRITE));
        assert!(d.grants(Caller::StandardUser, 0x8000_0000));
        assert!(d.grants(Caller::LocalSystem, READ_WRITE), "SYSTEM is not in BU");
    }

    #[test]
    fn the_default_lets_everyone_read_and_write() {
        assert!(Dacl::default_for_device().grants(Caller::StandardUser, READ_WRITE));
    }

    #[test]
    fn what_is_not_modelled_is_an_error() {
        assert!(Dacl::parse("O:BAD:P(A;;GA;;;SY)").is_err(), "owner part first");
        assert!(Dacl::parse("D:(OA;;GA;;;SY)").is_err());
        assert!(Dacl::parse("D:(A;;ZZ;;;SY)").is_err());
        assert!(Dacl::parse("D:(A;;GA;;SY)").is_err());
    }
}
