//! Series sources the rule engine builds: [`MemorySeries`], an in-memory
//! store with Prometheus' append rules (used by the unit-test runner and
//! handy in tests), and the overlay that makes a rule's output visible to
//! the later rules of its group before the host has written it.

use std::collections::BTreeMap;

use lookout_promql::{Labels, MatchOp, Matcher, STALE_NAN_BITS, Series, SeriesSource};
use regex::Regex;

/// Whether `labels` satisfies every matcher (regexes anchored, a missing
/// label is `""`).
pub(crate) fn matches_all(labels: &Labels, matchers: &[(Matcher, Option<Regex>)]) -> bool {
    matchers.iter().all(|(m, re)| {
        let v = labels
            .iter()
            .find(|(n, _)| *n == m.name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        match m.op {
            MatchOp::Equal => v == m.value,
            MatchOp::NotEqual => v != m.value,
            MatchOp::Regex => re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRegex => !re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    })
}

pub(crate) fn compile(matchers: &[Matcher]) -> Result<Vec<(Matcher, Option<Regex>)>, String> {
    matchers
        .iter()
        .map(|m| {
            let re = match m.op {
                MatchOp::Regex | MatchOp::NotRegex => {
                    Some(Regex::new(&format!("^(?s:{})$", m.value)).map_err(|e| e.to_string())?)
                }
                _ => None,
            };
            Ok((m.clone(), re))
        })
        .collect()
}

/// Why [`MemorySeries::append`] refused a sample (Prometheus' storage errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    DuplicateSampleForTimestamp,
}

/// An in-memory series store with Prometheus' append rules: samples of a
/// series arrive in time order; a second sample at the same timestamp is
/// accepted only with the same value bits.
#[derive(Clone, Debug, Default)]
pub struct MemorySeries {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl MemorySeries {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one sample; `labels` must be sorted.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), AppendError> {
        let samples = self.series.entry(labels.clone()).or_default();
        if let Some(&(lt, lv)) = samples.last() {
            if t < lt {
                return Err(AppendError::OutOfOrder);
            }
            if t == lt {
                if lv.to_bits() == v.to_bits() {
                    return Ok(());
                }
                return Err(AppendError::DuplicateSampleForTimestamp);
            }
        }
        samples.push((t, v));
        Ok(())
    }

    /// Every series and its samples.
    pub fn series(&self) -> impl Iterator<Item = (&Labels, &[(i64, f64)])> {
        self.series.iter().map(|(l, s)| (l, s.as_slice()))
    }
}

impl SeriesSource for MemorySeries {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
        let compiled = compile(matchers)?;
        Ok(self
            .series
            .iter()
            .filter(|(l, _)| matches_all(l, &compiled))
            .filter_map(|(l, s)| {
                let samples: Vec<(i64, f64)> = s
                    .iter()
                    .copied()
                    .filter(|(t, _)| (mint..=maxt).contains(t))
                    .collect();
                (!samples.is_empty()).then(|| Series {
                    labels: l.clone(),
                    samples,
                })
            })
            .collect())
    }
}

/// `base` plus the samples written by earlier rules of the evaluation in
/// progress (all at the evaluation timestamp). A sample already in `base` at
/// the same timestamp wins, as a storage refuses a second one.
pub(crate) struct Overlay<'a> {
    pub base: &'a dyn SeriesSource,
    pub written: &'a [(Labels, f64)],
    pub ts: i64,
}

impl SeriesSource for Overlay<'_> {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, String> {
        let mut out = self.base.select(matchers, mint, maxt)?;
        if self.written.is_empty() || !(mint..=maxt).contains(&self.ts) {
            return Ok(out);
        }
        let compiled = compile(matchers)?;
        for (labels, v) in self.written {
            if !matches_all(labels, &compiled) {
                continue;
            }
            match out.iter_mut().find(|s| s.labels == *labels) {
                Some(s) => {
                    let i = s.samples.partition_point(|(t, _)| *t < self.ts);
                    if s.samples.get(i).is_none_or(|(t, _)| *t != self.ts) {
                        s.samples.insert(i, (self.ts, *v));
                    }
                }
                None => out.push(Series {
                    labels: labels.clone(),
                    samples: vec![(self.ts, *v)],
                }),
            }
        }
        Ok(out)
    }
}

/// A staleness marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str) -> Labels {
        vec![("__name__".to_string(), name.to_string())]
    }

    #[test]
    fn append_follows_prometheus_rules() {
        let mut m = MemorySeries::new();
        m.append(&l("a"), 10, 1.0).unwrap();
        assert_eq!(m.append(&l("a"), 5, 1.0), Err(AppendError::OutOfOrder));
        assert_eq!(m.append(&l("a"), 10, 1.0), Ok(()));
        assert_eq!(
            m.append(&l("a"), 10, 2.0),
            Err(AppendError::DuplicateSampleForTimestamp)
        );
    }

    #[test]
    fn overlay_adds_written_samples() {
        let mut m = MemorySeries::new();
        m.append(&l("a"), 0, 1.0).unwrap();
        let written = vec![(l("a"), 2.0), (l("b"), 3.0)];
        let o = Overlay {
            base: &m,
            written: &written,
            ts: 60_000,
        };
        let eq = |v: &str| Matcher {
            name: "__name__".into(),
            op: MatchOp::Equal,
            value: v.into(),
        };
        let a = o.select(&[eq("a")], 0, 60_000).unwrap();
        assert_eq!(a[0].samples, vec![(0, 1.0), (60_000, 2.0)]);
        let b = o.select(&[eq("b")], 0, 60_000).unwrap();
        assert_eq!(b[0].samples, vec![(60_000, 3.0)]);
        assert!(o.select(&[eq("b")], 0, 59_999).unwrap().is_empty());
    }
}
