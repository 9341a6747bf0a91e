//! Names: the command line, interface links, the pin create name.

use alloc::vec::Vec;

use ksabi::{GUID, KSSTRING_Pin};

/// The words of a command line (UTF-16, split at spaces and tabs), as UTF-16 slices.
#[must_use]
pub fn words(line: &[u16]) -> Vec<&[u16]> {
    line.split(|&c| c == u16::from(b' ') || c == u16::from(b'\t')).filter(|w| !w.is_empty()).collect()
}

/// `word` equals the ASCII text `text` (exactly).
#[must_use]
pub fn is(word: &[u16], text: &str) -> bool {
    word.len() == text.len() && word.iter().zip(text.bytes()).all(|(&w, t)| w == u16::from(t))
}

fn lower(c: u16) -> u16 {
    if (u16::from(b'A')..=u16::from(b'Z')).contains(&c) { c + 32 } else { c }
}

/// Whether the object name `name` (from `\GLOBAL??`) is a device interface link of `class`: it
/// holds the class GUID in braces, in any letter case (`Root#KsRing#0000#{bc7386a2-...}`).
#[must_use]
pub fn is_interface_of(name: &[u16], class: &GUID) -> bool {
    let braced = class.to_braced_utf16();
    name.windows(braced.len()).any(|w| w.iter().zip(&braced).all(|(&a, &b)| lower(a) == lower(b)))
}

/// The path a client opens for an interface link `name` found in `\GLOBAL??` and a reference
/// string: `\??\` + name + `\` + reference.
#[must_use]
pub fn interface_path(name: &[u16], reference: &str) -> Vec<u16> {
    let mut path: Vec<u16> = "\\??\\".encode_utf16().collect();
    path.extend_from_slice(name);
    path.push(u16::from(b'\\'));
    path.extend(reference.encode_utf16());
    path
}

/// The name `KsCreatePin` opens relative to the filter: `KSSTRING_Pin`, a backslash, then the
/// `KSPIN_CONNECT` + format bytes as they are (two bytes per UTF-16 unit, zero-padded to even).
#[must_use]
pub fn pin_create_name(connect: &[u8]) -> Vec<u16> {
    let mut name: Vec<u16> = KSSTRING_Pin.to_vec();
    name.push(u16::from(b'\\'));
    name.extend(connect.chunks(2).map(|c| u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)])));
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksring_api::KSCATEGORY_KSRING;

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn command_line_words() {
        let line = utf16("ksnative  run\t\\GLOBAL ");
        let w = words(&line);
        assert_eq!(w.len(), 3);
        assert!(is(w[1], "run"));
        assert!(!is(w[1], "ru"));
        assert!(is(w[2], "\\GLOBAL"));
    }

    #[test]
    fn interface_links() {
        let link = utf16("Root#KsRing#0000#{bc7386a2-ff61-46a7-8034-9b51685d7953}");
        assert!(is_interface_of(&link, &KSCATEGORY_KSRING));
        assert!(!is_interface_of(
            &utf16("Root#KsRing#0000#{bc7386a2-ff61-46a7-8034-9b51685d7954}"),
            &KSCATEGORY_KSRING
        ));
        assert_eq!(
            String::from_utf16(&interface_path(&link, "GLOBAL")).unwrap(),
            "\\??\\Root#KsRing#0000#{bc7386a2-ff61-46a7-8034-9b51685d7953}\\GLOBAL"
        );
    }

    #[test]
    fn pin_create_names() {
        let name = pin_create_name(&[1, 2, 3]);
        assert_eq!(String::from_utf16(&name[..39]).unwrap(), "{146F1A80-4791-11D0-A5D6-28DB04C10000}\\");
        assert_eq!(&name[39..], &[0x0201, 0x0003]);
    }
}
