//! Label sets: validation, their stored encoding, and the hasher of the
//! in-memory maps.

use std::hash::{BuildHasherDefault, Hasher};

use crate::bits::{get_uvarint, put_uvarint};
use crate::{Labels, TsdbError};

/// Checks what the API promises about a label set: not empty, names
/// non-empty, sorted and unique, values non-empty (Prometheus drops a label
/// with an empty value; callers go through [`normalize`] first).
pub(crate) fn validate(labels: &Labels) -> Result<(), TsdbError> {
    if labels.is_empty() {
        return Err(TsdbError::InvalidLabels(
            "a series needs at least one label".into(),
        ));
    }
    for (i, (name, value)) in labels.iter().enumerate() {
        if name.is_empty() {
            return Err(TsdbError::InvalidLabels(format!(
                "empty label name in {}",
                display(labels)
            )));
        }
        if value.is_empty() {
            return Err(TsdbError::InvalidLabels(format!(
                "label {name} has an empty value in {}",
                display(labels)
            )));
        }
        if i > 0 && labels[i - 1].0 >= *name {
            return Err(TsdbError::InvalidLabels(if labels[i - 1].0 == *name {
                format!("label name {name} is not unique in {}", display(labels))
            } else {
                format!("labels are not sorted by name in {}", display(labels))
            }));
        }
    }
    Ok(())
}

/// The label set without empty-valued labels, if it has any: a missing
/// label and an empty one are the same thing (as in Prometheus).
pub(crate) fn normalize(labels: &Labels) -> Option<Labels> {
    if labels.iter().all(|(_, v)| !v.is_empty()) {
        return None;
    }
    Some(
        labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .cloned()
            .collect(),
    )
}

/// `{a="1", b="2"}` for error messages.
pub(crate) fn display(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n);
        s.push('=');
        s.push_str(&format!("{v:?}"));
    }
    s.push('}');
    s
}

/// Stored form: for each label, uvarint length + name, uvarint length + value.
pub(crate) fn encode(labels: &Labels, out: &mut Vec<u8>) {
    out.clear();
    for (n, v) in labels {
        put_uvarint(out, n.len() as u64);
        out.extend_from_slice(n.as_bytes());
        put_uvarint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Labels, TsdbError> {
    let corrupt = || TsdbError::Corrupt("stored label set is unreadable".into());
    let mut labels = Vec::new();
    let mut pos = 0;
    let string = |pos: &mut usize| -> Result<String, TsdbError> {
        let len = get_uvarint(bytes, pos).ok_or_else(corrupt)? as usize;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(corrupt)?;
        let s = std::str::from_utf8(&bytes[*pos..end])
            .map_err(|_| corrupt())?
            .to_string();
        *pos = end;
        Ok(s)
    };
    while pos < bytes.len() {
        let name = string(&mut pos)?;
        let value = string(&mut pos)?;
        labels.push((name, value));
    }
    Ok(labels)
}

/// FxHash (rustc's hasher): the id-keyed maps of the hot path hash a `u64`
/// per sample, where SipHash's resistance to chosen keys buys nothing (ids
/// are ours).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = self.hash.wrapping_add(word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash.rotate_left(26)
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn invalid_label_sets_are_refused_with_the_reason() {
        assert!(validate(&l(&[])).is_err());
        let unsorted = validate(&l(&[("b", "1"), ("a", "1")]))
            .unwrap_err()
            .to_string();
        assert!(unsorted.contains("not sorted"), "{unsorted}");
        let dup = validate(&l(&[("a", "1"), ("a", "2")]))
            .unwrap_err()
            .to_string();
        assert!(dup.contains("not unique"), "{dup}");
        assert!(validate(&l(&[("", "1")])).is_err());
        assert!(validate(&l(&[("__name__", "up"), ("job", "x")])).is_ok());
    }

    #[test]
    fn labels_encode_and_decode_including_unicode_and_empty_strings() {
        let labels = l(&[("__name__", "up"), ("é", "ü\"\n"), ("z", "")]);
        let mut bytes = Vec::new();
        encode(&labels, &mut bytes);
        assert_eq!(decode(&bytes).unwrap(), labels);
        assert!(decode(&[5, b'a']).is_err());
    }

    #[test]
    fn normalize_drops_empty_values_only_when_present() {
        assert_eq!(normalize(&l(&[("a", "1")])), None);
        assert_eq!(
            normalize(&l(&[("a", ""), ("b", "1")])),
            Some(l(&[("b", "1")]))
        );
    }
}
