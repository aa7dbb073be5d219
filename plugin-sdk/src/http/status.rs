//! Sets of accepted HTTP status codes, as probes configure them.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use super::Error;
use crate::FailureReason;

/// The HTTP status codes a probe accepts.
///
/// Deserialises from a JSON list whose items are codes (`200`), classes
/// (`"2xx"`) or inclusive ranges (`"200-299"`), or from one string of such
/// items separated by commas (`"2xx,304"`). The empty set means "any 2xx",
/// as blackbox_exporter's `valid_status_codes` does.
///
/// ```
/// use lookout_plugin_sdk::http::StatusCodes;
///
/// let any_2xx = StatusCodes::default();
/// assert!(any_2xx.contains(204) && !any_2xx.contains(301));
///
/// let codes: StatusCodes = "200, 3xx, 401-403".parse().unwrap();
/// assert!(codes.contains(302) && codes.contains(402) && !codes.contains(404));
/// assert_eq!(codes.to_string(), "200, 300-399, 401-403");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCodes {
    /// Inclusive ranges; a single code is a range of one.
    ranges: Vec<(u16, u16)>,
}

/// Lowest and highest status codes HTTP defines.
const VALID: std::ops::RangeInclusive<u16> = 100..=599;

impl StatusCodes {
    /// The set `{code}` ∪ the set `self`.
    pub fn with_code(mut self, code: u16) -> Self {
        self.ranges.push((code, code));
        self
    }

    /// Whether `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        if self.ranges.is_empty() {
            return (200..=299).contains(&status);
        }
        self.ranges
            .iter()
            .any(|&(low, high)| (low..=high).contains(&status))
    }

    /// `Ok` if `status` is accepted, else an [`Error`] with
    /// [`FailureReason::Status`] saying so ("status 500 not in 200-299").
    pub fn check(&self, status: u16) -> Result<(), Error> {
        if self.contains(status) {
            Ok(())
        } else {
            Err(Error::new(
                FailureReason::Status,
                format!("status {status} not in {self}"),
            ))
        }
    }

    /// Whether the set was left empty (and so means "any 2xx").
    pub fn is_default(&self) -> bool {
        self.ranges.is_empty()
    }

    fn push_item(&mut self, item: &str) -> Result<(), String> {
        let item = item.trim();
        let range = if let Some(class) = item.strip_suffix("xx").or_else(|| item.strip_suffix("XX"))
        {
            let class: u16 = class
                .parse()
                .map_err(|_| format!("invalid status class `{item}`"))?;
            let low = class.saturating_mul(100);
            (low, low.saturating_add(99))
        } else if let Some((low, high)) = item.split_once('-') {
            (parse_code(low)?, parse_code(high)?)
        } else {
            let code = parse_code(item)?;
            (code, code)
        };
        if !VALID.contains(&range.0) || !VALID.contains(&range.1) || range.0 > range.1 {
            return Err(format!(
                "invalid status range `{item}`: expected codes between 100 and 599, low to high"
            ));
        }
        self.ranges.push(range);
        Ok(())
    }
}

fn parse_code(text: &str) -> Result<u16, String> {
    let text = text.trim();
    let code = text
        .parse()
        .map_err(|_| format!("invalid status code `{text}`"))?;
    if VALID.contains(&code) {
        Ok(code)
    } else {
        Err(format!("invalid status code `{code}`: expected 100 to 599"))
    }
}

impl FromStr for StatusCodes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut codes = Self::default();
        for item in text.split(',').filter(|item| !item.trim().is_empty()) {
            codes.push_item(item)?;
        }
        Ok(codes)
    }
}

impl fmt::Display for StatusCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ranges.is_empty() {
            return f.write_str("200-299");
        }
        for (i, &(low, high)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodesVisitor;

        impl<'de> Visitor<'de> for CodesVisitor {
            type Value = StatusCodes;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a list of status codes, classes ("2xx") or ranges ("200-299")"#)
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<StatusCodes, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, code: u64) -> Result<StatusCodes, E> {
                let mut codes = StatusCodes::default();
                codes.push_item(&code.to_string()).map_err(E::custom)?;
                Ok(codes)
            }

            fn visit_i64<E: de::Error>(self, code: i64) -> Result<StatusCodes, E> {
                Err(E::custom(format!(
                    "invalid status code `{code}`: expected 100 to 599"
                )))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusCodes, A::Error> {
                let mut codes = StatusCodes::default();
                while let Some(item) = seq.next_element::<Item>()? {
                    codes.ranges.extend(item.0.ranges);
                }
                Ok(codes)
            }
        }

        /// One list item: a code, a class or a range.
        struct Item(StatusCodes);

        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ItemVisitor;

                impl<'de> Visitor<'de> for ItemVisitor {
                    type Value = Item;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(r#"a status code, class ("2xx") or range ("200-299")"#)
                    }

                    fn visit_str<E: de::Error>(self, text: &str) -> Result<Item, E> {
                        CodesVisitor.visit_str(text).map(Item)
                    }

                    fn visit_u64<E: de::Error>(self, code: u64) -> Result<Item, E> {
                        CodesVisitor.visit_u64(code).map(Item)
                    }

                    fn visit_i64<E: de::Error>(self, code: i64) -> Result<Item, E> {
                        CodesVisitor.visit_i64(code).map(Item)
                    }
                }

                deserializer.deserialize_any(ItemVisitor)
            }
        }

        deserializer.deserialize_any(CodesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_json(json: &str) -> Result<StatusCodes, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_means_any_2xx() {
        for codes in [
            StatusCodes::default(),
            from_json("[]").unwrap(),
            from_json(r#""""#).unwrap(),
        ] {
            assert!(codes.is_default());
            assert!(codes.contains(200) && codes.contains(299));
            assert!(!codes.contains(199) && !codes.contains(300) && !codes.contains(500));
            assert_eq!(codes.to_string(), "200-299");
        }
    }

    #[test]
    fn check_explains_refusals() {
        assert_eq!(StatusCodes::default().check(204), Ok(()));
        let error = StatusCodes::default().check(500).unwrap_err();
        assert_eq!(error.reason(), FailureReason::Status);
        assert_eq!(error.message(), "status 500 not in 200-299");
        let error = StatusCodes::default()
            .with_code(301)
            .check(302)
            .unwrap_err();
        assert_eq!(error.message(), "status 302 not in 301");
    }

    #[test]
    fn blackbox_style_integer_lists() {
        let codes = from_json("[200, 204, 301]").unwrap();
        assert!(codes.contains(204) && codes.contains(301));
        assert!(!codes.contains(201));
        assert_eq!(codes.to_string(), "200, 204, 301");
    }

    #[test]
    fn classes_and_ranges() {
        let codes = from_json(r#"["2xx", "401-403", 500]"#).unwrap();
        for accepted in [200, 250, 299, 401, 402, 403, 500] {
            assert!(codes.contains(accepted), "{accepted}");
        }
        for refused in [199, 300, 400, 404, 501] {
            assert!(!codes.contains(refused), "{refused}");
        }
        assert_eq!(codes.to_string(), "200-299, 401-403, 500");
        assert_eq!(
            from_json(r#""3XX, 200""#).unwrap().to_string(),
            "300-399, 200"
        );
        assert_eq!(from_json("404").unwrap().to_string(), "404");
    }

    #[test]
    fn invalid_items_are_reported() {
        for (json, expected) in [
            ("[99]", "invalid status code `99`"),
            ("[600]", "invalid status code `600`"),
            ("[-1]", "invalid status code `-1`"),
            (r#"["7xx"]"#, "invalid status range `7xx`"),
            (r#"["x"]"#, "invalid status code `x`"),
            (r#"["299-200"]"#, "invalid status range `299-200`"),
            (r#"["abxx"]"#, "invalid status class `abxx`"),
            (r#"["9999xx"]"#, "invalid status range `9999xx`"),
            ("[true]", "a status code, class"),
            ("{}", "a list of status codes"),
        ] {
            let error = from_json(json).expect_err(json);
            assert!(error.contains(expected), "{json}: {error}");
        }
    }
}
