//! Label sets, their fingerprints and their text forms, as Prometheus'
//! `model.LabelSet` has them.
//!
//! Fingerprints must be bit-for-bit those of `prometheus/common`
//! (`LabelSet.Fingerprint`: 64-bit FNV-1a over the sorted pairs, each name
//! and value followed by the byte 0xff) so that `amtool` and the Alertmanager
//! UI show the same alert ids for lookout as for Alertmanager.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of labels (or annotations): names to values, kept sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// FNV-1a 64-bit offset basis (`hashNew()` in prometheus/common).
const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
/// FNV-1a 64-bit prime.
const FNV_PRIME: u64 = 1_099_511_628_211;
/// Separates names and values in the hashed byte stream; it cannot occur in
/// valid UTF-8.
const SEPARATOR: u8 = 0xff;

/// The 64-bit identity of a label set, printed as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    /// Fingerprint of a label set, exactly as `model.LabelSet.Fingerprint()`.
    pub fn of(labels: &LabelSet) -> Self {
        let mut hash = FNV_OFFSET;
        let mut add = |bytes: &[u8]| {
            for b in bytes {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(FNV_PRIME);
            }
        };
        // BTreeMap iterates in byte order of the names, as Go's sort.Strings.
        for (name, value) in labels {
            add(name.as_bytes());
            add(&[SEPARATOR]);
            add(value.as_bytes());
            add(&[SEPARATOR]);
        }
        Fingerprint(hash)
    }

    /// Parses 16 (or fewer) hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        u64::from_str_radix(text, 16).ok().map(Fingerprint)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Fingerprint::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid fingerprint {text:?}")))
    }
}

/// `model.LabelSet.String()`: `{a="1", b="2"}` with Go-quoted values. This
/// is the tail of every group key.
pub fn label_set_string(labels: &LabelSet) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
        out.push('=');
        out.push_str(&go_quote(value));
    }
    out.push('}');
    out
}

/// `model.LabelSet.Before`: shorter sets first, then the first differing
/// pair over the merged sorted names decides.
pub fn label_set_before(a: &LabelSet, b: &LabelSet) -> bool {
    if a.len() != b.len() {
        return a.len() < b.len();
    }
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    for name in names {
        let Some(av) = a.get(name) else { return true };
        let Some(bv) = b.get(name) else { return false };
        if av != bv {
            return av < bv;
        }
    }
    false
}

/// Legacy Prometheus label name (`^[a-zA-Z_][a-zA-Z0-9_]*$`), required by
/// `match`, `match_re`, `source_match` and `target_match` keys.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Label name as Alertmanager ≥ 0.27 accepts by default (UTF-8 mode): any
/// non-empty string.
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// Go's `strconv.Quote`: double quotes, backslash escapes, `\u` for what Go
/// does not consider printable.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Control, separator (other than
/// ' ') and format characters are escaped.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{180e}'
        | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
        | '\u{feff}' | '\u{fff9}'..='\u{fffb}' | '\u{e000}'..='\u{f8ff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_fingerprint_is_the_fnv_offset() {
        assert_eq!(Fingerprint::of(&LabelSet::new()).0, FNV_OFFSET);
        assert_eq!(
            Fingerprint::of(&LabelSet::new()).to_string(),
            "cbf29ce484222325"
        );
    }

    #[test]
    fn fingerprint_matches_prometheus_common() {
        // The vector of prometheus/common's TestMetricToFingerprint.
        let fp = Fingerprint::of(&ls(&[
            ("name", "garland, briggs"),
            ("fear", "love is not enough"),
        ]));
        assert_eq!(fp.0, 5_799_056_148_416_392_346);
        assert_eq!(fp.to_string(), "507a62d79ee76c9a");
    }

    #[test]
    fn label_set_string_is_go_formatted() {
        assert_eq!(
            label_set_string(&ls(&[("b", "x\"y"), ("a", "1")])),
            r#"{a="1", b="x\"y"}"#
        );
        assert_eq!(label_set_string(&LabelSet::new()), "{}");
        assert_eq!(go_quote("a\u{0}b\u{a0}"), r#""a\x00b\u00a0""#);
    }

    #[test]
    fn before_orders_by_size_then_pairs() {
        assert!(label_set_before(
            &ls(&[("a", "1")]),
            &ls(&[("a", "1"), ("b", "1")])
        ));
        assert!(label_set_before(&ls(&[("a", "1")]), &ls(&[("a", "2")])));
        assert!(!label_set_before(&ls(&[("a", "2")]), &ls(&[("a", "1")])));
        // Go's quirk: the set missing the first merged name sorts first.
        assert!(!label_set_before(&ls(&[("a", "1")]), &ls(&[("b", "1")])));
        assert!(label_set_before(&ls(&[("b", "1")]), &ls(&[("a", "1")])));
    }
}
