//! Label-set operations on sorted [`Labels`], with Prometheus' conventions:
//! a label with an empty value does not exist.

use crate::Labels;

pub(crate) const METRIC_NAME: &str = "__name__";
pub(crate) const BUCKET_LABEL: &str = "le";

/// The value of `name`, `""` when absent.
pub(crate) fn get<'a>(labels: &'a Labels, name: &str) -> &'a str {
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => &labels[i].1,
        Err(_) => "",
    }
}

/// Sets `name` to `value`, keeping the order; an empty value deletes.
pub(crate) fn set(labels: &mut Labels, name: &str, value: &str) {
    if value.is_empty() {
        del(labels, name);
        return;
    }
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => labels[i].1 = value.to_string(),
        Err(i) => labels.insert(i, (name.to_string(), value.to_string())),
    }
}

pub(crate) fn del(labels: &mut Labels, name: &str) {
    if let Ok(i) = labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        labels.remove(i);
    }
}

pub(crate) fn without_name(labels: &Labels) -> Labels {
    labels
        .iter()
        .filter(|(n, _)| n != METRIC_NAME)
        .cloned()
        .collect()
}

/// The labels named in `names` (Prometheus' `Keep`, `BytesWithLabels`).
pub(crate) fn keep(labels: &Labels, names: &[String]) -> Labels {
    labels
        .iter()
        .filter(|(n, _)| names.iter().any(|k| k == n))
        .cloned()
        .collect()
}

/// The labels not named in `names` (Prometheus' `Del`).
pub(crate) fn drop(labels: &Labels, names: &[String]) -> Labels {
    labels
        .iter()
        .filter(|(n, _)| !names.iter().any(|k| k == n))
        .cloned()
        .collect()
}

/// The labels not named in `names` and not the metric name
/// (Prometheus' `BytesWithoutLabels`/`HashWithoutLabels`).
pub(crate) fn drop_with_name(labels: &Labels, names: &[String]) -> Labels {
    labels
        .iter()
        .filter(|(n, _)| n != METRIC_NAME && !names.iter().any(|k| k == n))
        .cloned()
        .collect()
}

/// Prometheus' `labels.String()`: `{a="1", b="x"}` with Go quoting.
pub(crate) fn to_string(labels: &Labels) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n);
        s.push('=');
        s.push_str(&go_quote(v));
    }
    s.push('}');
    s
}

/// Go's `strconv.Quote` for the characters label values contain.
pub(crate) fn go_quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\x07' => s.push_str("\\a"),
            '\x08' => s.push_str("\\b"),
            '\x0c' => s.push_str("\\f"),
            '\x0b' => s.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Prometheus' label name syntax (`model.LabelName.IsValid`).
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

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
    fn set_keeps_order_and_empty_deletes() {
        let mut x = l(&[("a", "1"), ("c", "3")]);
        set(&mut x, "b", "2");
        assert_eq!(x, l(&[("a", "1"), ("b", "2"), ("c", "3")]));
        set(&mut x, "a", "");
        assert_eq!(x, l(&[("b", "2"), ("c", "3")]));
        assert_eq!(get(&x, "c"), "3");
        assert_eq!(get(&x, "z"), "");
    }

    #[test]
    fn strings_quote_like_go() {
        assert_eq!(
            to_string(&l(&[("__name__", "up"), ("a", "x\"y")])),
            "{__name__=\"up\", a=\"x\\\"y\"}"
        );
        assert!(is_valid_name("le_1"));
        assert!(!is_valid_name("1le"));
        assert!(!is_valid_name(""));
    }
}
