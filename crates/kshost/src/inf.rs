//! An INF reader: enough of the format to install a KS driver the way Windows' setup does —
//! the model for a hardware id, its install section (with `.NT`/`.NTamd64` decorations), the
//! service, the device interfaces with their `FriendlyName`/`CLSID`, and `MediaCategories` names.
//!
//! Syntax handled: `[sections]`, `key = value` and value-only lines, comma-separated fields with
//! `"quoted"` text (`""` is a quote), `;` comments outside quotes, `\` line continuation,
//! `%token%` substitution from `[Strings]` (`%%` is a percent sign; `%13%`-style directory ids
//! stay as they are), case-insensitive section and key names, `$ARCH$` as stampinf expands it.
//! A malformed INF is an [`InfError`] with a line number, never a panic.

use std::collections::HashMap;
use std::fmt;

use ksabi::GUID;

/// The architecture `$ARCH$` stands for.
const ARCH: &str = "amd64";

/// Why an INF could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfError {
    /// 1-based line, or 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for InfError {}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, InfError> {
    Err(InfError { line, message: message.into() })
}

/// One line of a section.
#[derive(Debug, Clone)]
pub struct Line {
    /// 1-based line number (of the first physical line).
    pub number: usize,
    /// The key, if the line has `key = value` (substituted, case kept).
    pub key: Option<String>,
    /// The fields of the value (substituted, quotes removed).
    pub fields: Vec<String>,
}

/// A parsed INF.
#[derive(Debug, Clone, Default)]
pub struct Inf {
    /// Section name (lower case) → lines, in order.
    sections: HashMap<String, Vec<Line>>,
}

/// A device interface the INF provisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfInterface {
    /// The interface class GUID.
    pub category: GUID,
    /// The reference string.
    pub reference: String,
    /// `HKR,,FriendlyName,,...`.
    pub friendly_name: Option<String>,
    /// `HKR,,CLSID,,...`.
    pub clsid: Option<GUID>,
}

/// What installing the first model of the INF does.
#[derive(Debug, Clone)]
pub struct InstallInfo {
    /// `[Version] Class`.
    pub class: String,
    /// `[Version] ClassGuid`.
    pub class_guid: GUID,
    /// The model's device description.
    pub device_description: String,
    /// The model's hardware id (e.g. `Root\KsRing`).
    pub hardware_id: String,
    /// The install section that applied (with its decoration).
    pub install_section: String,
    /// `Include=` of the install section.
    pub includes: Vec<String>,
    /// `Needs=` of the install section.
    pub needs: Vec<String>,
    /// `AddService` name.
    pub service_name: String,
    /// `ServiceBinary` (as written, e.g. `%13%\ksring.sys`).
    pub service_binary: String,
    /// Interfaces from `.Interfaces`.
    pub interfaces: Vec<InfInterface>,
    /// `MediaCategories` names written by `AddReg`.
    pub media_categories: Vec<(GUID, String)>,
    /// `PnpLockdown`.
    pub pnp_lockdown: bool,
    /// `DefaultDestDir` of `[DestinationDirs]`.
    pub default_dest_dir: Option<String>,
    /// `HKR,,Security,,"<SDDL>"` of the install section's `.HW` `AddReg`: the device's security
    /// descriptor.
    pub security: Option<String>,
    /// `HKR,,DeviceCharacteristics,0x10001,<n>` of the same: characteristics or-ed into every
    /// device object of the stack.
    pub device_characteristics: u32,
    /// `HKR,Parameters,<name>,<flags>,<value>` of the service install section's `AddReg`: values
    /// under the service key's `Parameters`, as (name, `REG_*` type, data): `0x00010001` a
    /// `REG_DWORD`, `0x00000000` (or no flags) a `REG_SZ` (the INF `AddReg` directive's
    /// `FLG_ADDREG_TYPE_DWORD` / `FLG_ADDREG_TYPE_SZ`).
    pub service_parameters: Vec<(String, u32, Vec<u8>)>,
}

/// A service's name, binary and `Parameters` values.
type ServiceInfo = (String, String, Vec<(String, u32, Vec<u8>)>);

const MEDIA_CATEGORIES: &str = "system\\currentcontrolset\\control\\mediacategories\\";

impl Inf {
    /// Parses INF text (UTF-8, or UTF-16LE with a byte-order mark decoded by the caller).
    ///
    /// # Errors
    /// An [`InfError`] for lines outside sections, unterminated quotes or section headers,
    /// undefined `%tokens%`, or a missing `[Version]`.
    pub fn parse(text: &str) -> Result<Self, InfError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // What stampinf does to an .inx: `$ARCH$` becomes the target architecture everywhere.
        let expanded = text.replace("$ARCH$", ARCH);
        let text = expanded.as_str();
        let mut raw: Vec<(usize, Option<String>, String)> = Vec::new(); // (line, section, text)
        let mut declared: Vec<String> = Vec::new();
        let mut section: Option<String> = None;
        let mut pending = String::new();
        let mut pending_line = 0;
        for (i, physical) in text.lines().enumerate() {
            let number = i + 1;
            let without_comment =
                strip_comment(physical).map_err(|m| InfError { line: number, message: m })?;
            let trimmed = without_comment.trim();
            if pending.is_empty() {
                pending_line = number;
            }
            if let Some(body) = trimmed.strip_suffix('\\').filter(|_| !trimmed.ends_with("\\\\")) {
                pending.push_str(body);
                continue;
            }
            pending.push_str(trimmed);
            let logical = std::mem::take(&mut pending);
            if logical.is_empty() {
                continue;
            }
            if let Some(rest) = logical.strip_prefix('[') {
                let Some(name) = rest.strip_suffix(']') else {
                    return err(pending_line, format!("section header without ']': {logical}"));
                };
                let name = name.trim().to_ascii_lowercase();
                declared.push(name.clone());
                section = Some(name);
                continue;
            }
            if section.is_none() {
                return err(pending_line, format!("line outside any section: {logical}"));
            }
            raw.push((pending_line, section.clone(), logical));
        }
        if !pending.is_empty() {
            return err(pending_line, "the file ends inside a continued line");
        }
        // [Strings] first: substitution needs it.
        let mut strings: HashMap<String, String> = HashMap::new();
        for (number, sect, text) in &raw {
            if sect.as_deref() == Some("strings") {
                let (key, value) = split_key(text).map_err(|m| InfError { line: *number, message: m })?;
                let Some(key) = key else {
                    return err(*number, "a [Strings] line needs key = value");
                };
                let fields = split_fields(&value).map_err(|m| InfError { line: *number, message: m })?;
                strings.insert(key.to_ascii_lowercase(), fields.join(","));
            }
        }
        let mut inf = Self::default();
        for name in declared {
            inf.sections.entry(name).or_default(); // empty sections exist too
        }
        for (number, sect, text) in raw {
            let sect = sect.unwrap_or_default();
            let (key, value) = split_key(&text).map_err(|m| InfError { line: number, message: m })?;
            let key = key
                .map(|k| substitute(&k, &strings))
                .transpose()
                .map_err(|m| InfError { line: number, message: m })?;
            let fields = if sect == "strings" {
                split_fields(&value).map_err(|m| InfError { line: number, message: m })?
            } else {
                split_fields(&value)
                    .and_then(|f| f.iter().map(|x| substitute(x, &strings)).collect())
                    .map_err(|m| InfError { line: number, message: m })?
            };
            inf.sections.entry(sect).or_default().push(Line { number, key, fields });
        }
        if !inf.sections.contains_key("version") {
            return err(0, "no [Version] section");
        }
        Ok(inf)
    }

    /// The lines of a section (case-insensitive), if it exists.
    #[must_use]
    pub fn section(&self, name: &str) -> Option<&[Line]> {
        self.sections.get(&name.to_ascii_lowercase()).map(Vec::as_slice)
    }

    /// The first value of `key` in `section`.
    #[must_use]
    pub fn value(&self, section: &str, key: &str) -> Option<&str> {
        self.section(section)?
            .iter()
            .find(|l| l.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key)))
            .and_then(|l| l.fields.first().map(String::as_str))
    }

    fn values<'a>(&'a self, section: &str, key: &'a str) -> impl Iterator<Item = &'a Line> + 'a {
        self.section(section)
            .unwrap_or(&[])
            .iter()
            .filter(move |l| l.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key)))
    }

    fn require(&self, name: &str, line: usize) -> Result<&[Line], InfError> {
        self.section(name).ok_or_else(|| InfError { line, message: format!("section [{name}] is missing") })
    }

    /// What installing the INF's first model does.
    ///
    /// # Errors
    /// An [`InfError`] naming the missing or malformed piece.
    pub fn install_info(&self) -> Result<InstallInfo, InfError> {
        let version = self.require("Version", 0)?;
        let line_of = |key: &str| {
            version.iter().find(|l| l.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key)))
        };
        let signature = self.value("Version", "Signature").unwrap_or_default();
        if !signature.eq_ignore_ascii_case("$WINDOWS NT$") && !signature.eq_ignore_ascii_case("$Chicago$") {
            return err(line_of("Signature").map_or(0, |l| l.number), format!("bad Signature {signature:?}"));
        }
        let class = self
            .value("Version", "Class")
            .ok_or(InfError { line: 0, message: "[Version] has no Class".into() })?;
        let class_guid_text = self.value("Version", "ClassGuid").unwrap_or_default();
        let class_guid = GUID::parse(class_guid_text).ok_or_else(|| InfError {
            line: line_of("ClassGuid").map_or(0, |l| l.number),
            message: format!("ClassGuid {class_guid_text:?} is not a GUID"),
        })?;
        let pnp_lockdown = self.value("Version", "PnpLockdown") == Some("1");

        let manufacturer = self.require("Manufacturer", 0)?;
        let mfg =
            manufacturer.first().ok_or(InfError { line: 0, message: "[Manufacturer] is empty".into() })?;
        let models_base =
            mfg.fields.first().ok_or(InfError { line: mfg.number, message: "no models section".into() })?;
        let models_name = mfg.fields[1..]
            .iter()
            .map(|d| format!("{models_base}.{}", d.replace("$ARCH$", ARCH)))
            .chain(std::iter::once(models_base.clone()))
            .find(|n| self.section(n).is_some())
            .ok_or_else(|| InfError {
                line: mfg.number,
                message: format!("no models section for {models_base}"),
            })?;
        let models = self.require(&models_name, mfg.number)?;
        let model = models
            .first()
            .ok_or(InfError { line: mfg.number, message: format!("[{models_name}] is empty") })?;
        let device_description = model.key.clone().unwrap_or_default();
        let [install, hardware_id, ..] = model.fields.as_slice() else {
            return err(model.number, "a model line needs an install section and a hardware id");
        };
        let install_section = [format!("{install}.NT{ARCH}"), format!("{install}.NT"), install.clone()]
            .into_iter()
            .find(|n| self.section(n).is_some())
            .ok_or_else(|| InfError {
                line: model.number,
                message: format!("install section {install} is missing"),
            })?;
        let list = |key: &str| -> Vec<String> {
            self.values(&install_section, key)
                .flat_map(|l| l.fields.iter().cloned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let includes = list("Include");
        let needs = list("Needs");

        let media_categories = self.media_categories(&list("AddReg"))?;

        let (service_name, service_binary, service_parameters) =
            self.service(&install_section, model.number)?;
        let (security, device_characteristics) = self.hardware_settings(&install_section)?;

        let interfaces = self.interfaces(&install_section)?;

        Ok(InstallInfo {
            class: class.to_string(),
            class_guid,
            device_description,
            hardware_id: hardware_id.clone(),
            install_section,
            includes,
            needs,
            service_name,
            service_binary,
            interfaces,
            media_categories,
            pnp_lockdown,
            default_dest_dir: self.value("DestinationDirs", "DefaultDestDir").map(str::to_string),
            security,
            device_characteristics,
            service_parameters,
        })
    }

    /// `Security` and `DeviceCharacteristics` written by the `.HW` section's `AddReg`.
    fn hardware_settings(&self, install_section: &str) -> Result<(Option<String>, u32), InfError> {
        let mut security = None;
        let mut characteristics = 0;
        for addreg in self.values(&format!("{install_section}.HW"), "AddReg").flat_map(|l| l.fields.clone()) {
            for reg in self.require(&addreg, 0)? {
                let f = &reg.fields;
                if f.len() < 5 || !f[0].eq_ignore_ascii_case("HKR") || !f[1].is_empty() {
                    continue;
                }
                if f[2].eq_ignore_ascii_case("Security") {
                    security = Some(f[4].clone());
                } else if f[2].eq_ignore_ascii_case("DeviceCharacteristics") {
                    characteristics |= dword(&f[4]).ok_or_else(|| InfError {
                        line: reg.number,
                        message: format!("DeviceCharacteristics {:?} is not a number", f[4]),
                    })?;
                }
            }
        }
        Ok((security, characteristics))
    }

    /// `MediaCategories` names the install section's `AddReg` sections write.
    fn media_categories(&self, addregs: &[String]) -> Result<Vec<(GUID, String)>, InfError> {
        let mut media_categories = Vec::new();
        for addreg in addregs {
            for line in self.require(addreg, 0)? {
                let f = &line.fields;
                let guid = (f.len() >= 5
                    && f[0].eq_ignore_ascii_case("HKLM")
                    && f[2].eq_ignore_ascii_case("Name"))
                .then(|| f[1].to_ascii_lowercase().strip_prefix(MEDIA_CATEGORIES).and_then(GUID::parse))
                .flatten();
                if let Some(guid) = guid {
                    media_categories.push((guid, f[4].clone()));
                }
            }
        }

        Ok(media_categories)
    }

    /// The service's name, binary (`.Services`) and `Parameters` DWORD values.
    fn service(&self, install_section: &str, line: usize) -> Result<ServiceInfo, InfError> {
        let services_section = format!("{install_section}.Services");
        let services = self.require(&services_section, line)?;
        let service = services
            .iter()
            .find(|l| l.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("AddService")))
            .ok_or(InfError { line: 0, message: format!("[{services_section}] has no AddService") })?;
        let [service_name, _flags, binary_section, ..] = service.fields.as_slice() else {
            return err(service.number, "AddService needs name, flags, section");
        };
        let service_binary = self
            .value(binary_section, "ServiceBinary")
            .ok_or_else(|| InfError {
                line: service.number,
                message: format!("[{binary_section}] has no ServiceBinary"),
            })?
            .to_string();
        if self.value(binary_section, "ServiceType") != Some("1") {
            return err(service.number, format!("[{binary_section}] ServiceType must be 1 (kernel driver)"));
        }
        let mut parameters = Vec::new();
        for addreg in self.values(binary_section, "AddReg").flat_map(|l| l.fields.clone()) {
            for reg in self.require(&addreg, service.number)? {
                let f = &reg.fields;
                if f.len() >= 5 && f[0].eq_ignore_ascii_case("HKR") && f[1].eq_ignore_ascii_case("Parameters")
                {
                    let flags = f[3].trim();
                    let value = if flags.is_empty() || dword(flags) == Some(0) {
                        // REG_SZ: UTF-16LE with its terminating NUL, as the registry stores it.
                        let text = f[4].trim_matches('"');
                        let data = text.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect();
                        (ksabi::REG_SZ, data)
                    } else {
                        let n = dword(&f[4]).filter(|_| dword(flags) == Some(0x0001_0001)).ok_or_else(
                            || InfError {
                                line: reg.number,
                                message: format!(
                                    "Parameters value {:?} (flags {flags}) is neither a DWORD nor a string",
                                    f[4]
                                ),
                            },
                        )?;
                        (ksabi::REG_DWORD, n.to_le_bytes().to_vec())
                    };
                    parameters.push((f[2].clone(), value.0, value.1));
                }
            }
        }

        Ok((service_name.clone(), service_binary, parameters))
    }

    /// The interfaces of `.Interfaces`, with their `FriendlyName` and `CLSID`.
    fn interfaces(&self, install_section: &str) -> Result<Vec<InfInterface>, InfError> {
        let mut interfaces = Vec::new();
        for line in self.values(&format!("{install_section}.Interfaces"), "AddInterface") {
            let [guid, reference, section, ..] = line.fields.as_slice() else {
                return err(line.number, "AddInterface needs class GUID, reference string, section");
            };
            let category = GUID::parse(guid).ok_or_else(|| InfError {
                line: line.number,
                message: format!("AddInterface class {guid:?} is not a GUID"),
            })?;
            let mut iface =
                InfInterface { category, reference: reference.clone(), friendly_name: None, clsid: None };
            for addreg in self.values(section, "AddReg").flat_map(|l| l.fields.clone()) {
                for reg in self.require(&addreg, line.number)? {
                    let f = &reg.fields;
                    if f.len() >= 5 && f[0].eq_ignore_ascii_case("HKR") && f[1].is_empty() {
                        if f[2].eq_ignore_ascii_case("FriendlyName") {
                            iface.friendly_name = Some(f[4].clone());
                        } else if f[2].eq_ignore_ascii_case("CLSID") {
                            iface.clsid = Some(GUID::parse(&f[4]).ok_or_else(|| InfError {
                                line: reg.number,
                                message: format!("CLSID {:?} is not a GUID", f[4]),
                            })?);
                        }
                    }
                }
            }
            interfaces.push(iface);
        }

        Ok(interfaces)
    }
}

/// Removes a `;` comment (outside quotes).
fn strip_comment(line: &str) -> Result<&str, String> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => return Ok(&line[..i]),
            _ => {}
        }
    }
    if quoted { Err(format!("unterminated quote: {line}")) } else { Ok(line) }
}

/// Splits `key = value` at the first `=` outside quotes.
fn split_key(text: &str) -> Result<(Option<String>, String), String> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '=' if !quoted => {
                let key = text[..i].trim();
                if key.is_empty() {
                    return Err(format!("empty key: {text}"));
                }
                return Ok((Some(unquote(key)), text[i + 1..].trim().to_string()));
            }
            _ => {}
        }
    }
    Ok((None, text.to_string()))
}

/// Splits a value into comma-separated fields, removing quotes (`""` inside quotes is `"`).
fn split_fields(value: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field).trim().to_string()),
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quote: {value}"));
    }
    if !value.is_empty() || !fields.is_empty() {
        fields.push(field.trim().to_string());
    }
    Ok(fields)
}

fn unquote(s: &str) -> String {
    split_fields(s).ok().and_then(|f| f.into_iter().next()).unwrap_or_else(|| s.to_string())
}

/// Replaces `%token%` with its `[Strings]` value; `%%` is `%`; numeric dirids stay.
fn substitute(text: &str, strings: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('%') else {
            return Err(format!("unterminated %token in {text:?}"));
        };
        let token = &after[..end];
        if token.is_empty() {
            out.push('%');
        } else if token.chars().all(|c| c.is_ascii_digit()) {
            out.push('%');
            out.push_str(token);
            out.push('%');
        } else {
            let value = strings
                .get(&token.to_ascii_lowercase())
                .ok_or_else(|| format!("undefined string %{token}%"))?;
            out.push_str(value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A DWORD as an INF writes it: decimal or `0x` hexadecimal.
fn dword(text: &str) -> Option<u32> {
    let t = text.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}
