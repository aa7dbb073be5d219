//! PromQL over lookout's time-series engine: the glue between the
//! `lookout-promql` evaluator and the `lookout-tsdb` store, and the request
//! parsing every Prometheus-compatible endpoint shares (times, durations,
//! `match[]` selectors).

use std::sync::Arc;

use lookout_promql::{Engine, QueryError, Value};
use lookout_tsdb::Tsdb;

/// What the query API and the CLI evaluate against.
#[derive(Clone)]
pub struct QueryService {
    tsdb: Arc<Tsdb>,
    engine: Arc<Engine>,
}

struct TsdbSource<'a>(&'a Tsdb);

fn to_tsdb_op(op: lookout_promql::MatchOp) -> lookout_tsdb::MatchOp {
    match op {
        lookout_promql::MatchOp::Equal => lookout_tsdb::MatchOp::Equal,
        lookout_promql::MatchOp::NotEqual => lookout_tsdb::MatchOp::NotEqual,
        lookout_promql::MatchOp::Regex => lookout_tsdb::MatchOp::Regex,
        lookout_promql::MatchOp::NotRegex => lookout_tsdb::MatchOp::NotRegex,
    }
}

fn to_tsdb_matchers(
    matchers: &[lookout_promql::Matcher],
) -> Result<Vec<lookout_tsdb::Matcher>, String> {
    matchers
        .iter()
        .map(|m| {
            lookout_tsdb::Matcher::new(m.name.clone(), to_tsdb_op(m.op), m.value.clone())
                .map_err(|e| e.to_string())
        })
        .collect()
}

impl lookout_promql::SeriesSource for TsdbSource<'_> {
    fn select(
        &self,
        matchers: &[lookout_promql::Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<lookout_promql::Series>, String> {
        let found = self
            .0
            .select(&to_tsdb_matchers(matchers)?, mint, maxt)
            .map_err(|e| e.to_string())?;
        Ok(found
            .into_iter()
            .map(|s| lookout_promql::Series {
                labels: s.labels,
                samples: s.samples.into_iter().map(|p| (p.t, p.v)).collect(),
            })
            .collect())
    }
}

/// Why a metadata request (series, labels, values) failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("{0}")]
    BadData(String),
    #[error("{0}")]
    Internal(String),
}

impl QueryService {
    pub fn new(tsdb: Arc<Tsdb>) -> QueryService {
        QueryService {
            tsdb,
            engine: Arc::new(Engine::default()),
        }
    }

    pub fn tsdb(&self) -> &Arc<Tsdb> {
        &self.tsdb
    }

    pub fn instant(&self, query: &str, t_ms: i64) -> Result<Value, QueryError> {
        self.engine.instant(&TsdbSource(&self.tsdb), query, t_ms)
    }

    /// Evaluates one rule group at `ts_ms` over the stored series.
    pub fn eval_group(
        &self,
        group: &mut lookout_rules::GroupState,
        ts_ms: i64,
    ) -> lookout_rules::GroupEvalOutput {
        group.eval(&self.engine, &TsdbSource(&self.tsdb), ts_ms)
    }

    pub fn range(
        &self,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<Value, QueryError> {
        self.engine
            .range(&TsdbSource(&self.tsdb), query, start_ms, end_ms, step_ms)
    }

    /// Whether evaluating `query` over `steps` steps reads few enough
    /// samples (selected series × samples per step × steps) to run on the
    /// caller's thread rather than be handed to another: the hand-off costs
    /// more than such a query. Unknown costs are not cheap.
    pub fn is_cheap(&self, query: &str, steps: u64) -> bool {
        const CHEAP_SAMPLE_READS: u64 = 50_000;
        let Some(selectors) = lookout_promql::selector_weights(query) else {
            return false;
        };
        let mut reads = 0u64;
        for (matchers, per_step) in selectors {
            let Ok(matchers) = to_tsdb_matchers(&matchers) else {
                return false;
            };
            let Ok(series) = self.tsdb.count_series(&matchers) else {
                return false;
            };
            reads = reads.saturating_add(
                (series as u64)
                    .saturating_mul(per_step)
                    .saturating_mul(steps),
            );
        }
        reads <= CHEAP_SAMPLE_READS
    }

    /// The stored samples in `[mint, maxt]` of the series `expr` selects, when
    /// `expr` is a plain series selector (no offset, no `@`); `None` for any
    /// other expression. Detectors read a selector's samples as stored, each
    /// once, instead of its value at every evaluation step.
    pub fn raw_samples(
        &self,
        expr: &str,
        mint: i64,
        maxt: i64,
    ) -> Option<Result<Vec<lookout_promql::Series>, String>> {
        use promql_parser::parser::Expr;
        match promql_parser::parser::parse(expr) {
            Ok(Expr::VectorSelector(s)) if s.offset.is_none() && s.at.is_none() => {}
            _ => return None,
        }
        let sets = match parse_selector(expr) {
            Ok(sets) => sets,
            Err(e) => return Some(Err(e)),
        };
        let mut out: Vec<lookout_promql::Series> = Vec::new();
        for set in &sets {
            match self.tsdb.select(set, mint, maxt) {
                Ok(found) => out.extend(found.into_iter().map(|s| lookout_promql::Series {
                    labels: s.labels,
                    samples: s.samples.into_iter().map(|p| (p.t, p.v)).collect(),
                })),
                Err(e) => return Some(Err(e.to_string())),
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out.dedup_by(|a, b| a.labels == b.labels);
        Some(Ok(out))
    }

    /// Parses `match[]` selectors (`up`, `{job="x"}`) into matcher sets,
    /// one set per alternative (`or` inside braces makes several).
    pub fn parse_selectors(
        selectors: &[String],
    ) -> Result<Vec<Vec<lookout_tsdb::Matcher>>, LookupError> {
        let mut sets = Vec::new();
        for text in selectors {
            sets.extend(parse_selector(text).map_err(LookupError::BadData)?);
        }
        Ok(sets)
    }

    /// Series matching any of the selector sets, de-duplicated and sorted.
    pub fn series(
        &self,
        sets: &[Vec<lookout_tsdb::Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<lookout_tsdb::Labels>, LookupError> {
        let mut out = Vec::new();
        for set in sets {
            out.extend(
                self.tsdb
                    .series(set, mint, maxt)
                    .map_err(|e| LookupError::Internal(e.to_string()))?,
            );
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub fn label_names(
        &self,
        sets: &[Vec<lookout_tsdb::Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, LookupError> {
        self.union(sets, |m| self.tsdb.label_names(m, mint, maxt))
    }

    pub fn label_values(
        &self,
        name: &str,
        sets: &[Vec<lookout_tsdb::Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>, LookupError> {
        self.union(sets, |m| self.tsdb.label_values(name, m, mint, maxt))
    }

    /// Runs `lookup` for each selector set (or once with none) and merges.
    fn union(
        &self,
        sets: &[Vec<lookout_tsdb::Matcher>],
        lookup: impl Fn(&[lookout_tsdb::Matcher]) -> Result<Vec<String>, lookout_tsdb::TsdbError>,
    ) -> Result<Vec<String>, LookupError> {
        let mut out = Vec::new();
        if sets.is_empty() {
            out = lookup(&[]).map_err(|e| LookupError::Internal(e.to_string()))?;
        }
        for set in sets {
            out.extend(lookup(set).map_err(|e| LookupError::Internal(e.to_string()))?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// One `match[]` selector: a vector selector and nothing else, as
/// Prometheus requires; each returned set must match something non-empty.
fn parse_selector(text: &str) -> Result<Vec<Vec<lookout_tsdb::Matcher>>, String> {
    use promql_parser::label::MatchOp as P;
    use promql_parser::parser::Expr;
    let expr = promql_parser::parser::parse(text)
        .map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
    let Expr::VectorSelector(selector) = expr else {
        return Err(format!(
            "invalid parameter \"match[]\": {text:?} is not a series selector"
        ));
    };
    let convert = |m: &promql_parser::label::Matcher| {
        let op = match &m.op {
            P::Equal => lookout_tsdb::MatchOp::Equal,
            P::NotEqual => lookout_tsdb::MatchOp::NotEqual,
            P::Re(_) => lookout_tsdb::MatchOp::Regex,
            P::NotRe(_) => lookout_tsdb::MatchOp::NotRegex,
        };
        lookout_tsdb::Matcher::new(m.name.clone(), op, m.value.clone()).map_err(|e| e.to_string())
    };
    let mut alternatives = vec![selector.matchers.matchers.clone()];
    alternatives.extend(selector.matchers.or_matchers.iter().cloned());
    let mut sets = Vec::new();
    for alternative in alternatives
        .iter()
        .filter(|a| !a.is_empty() || selector.name.is_some())
    {
        let mut set: Vec<lookout_tsdb::Matcher> =
            alternative.iter().map(convert).collect::<Result<_, _>>()?;
        if let Some(name) = &selector.name {
            set.push(
                lookout_tsdb::Matcher::new("__name__", lookout_tsdb::MatchOp::Equal, name.clone())
                    .map_err(|e| e.to_string())?,
            );
        }
        if set.iter().all(|m| m.matches("")) {
            return Err(format!(
                "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher: {text}"
            ));
        }
        sets.push(set);
    }
    Ok(sets)
}

/// A time parameter as Prometheus' API takes it: Unix seconds (possibly
/// fractional) or RFC 3339. Returns ms since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    Err(format!("cannot parse {text:?} to a valid timestamp"))
}

/// A duration parameter as Prometheus' API takes it: seconds (possibly
/// fractional) or a Prometheus duration (`15s`, `1m30s`). Returns ms.
pub fn parse_step(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    crate::config::parse_duration(text)
        .map(|d| d.as_millis() as i64)
        .map_err(|_| format!("cannot parse {text:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_steps_parse_like_prometheus() {
        assert_eq!(parse_time("1700000000.5").unwrap(), 1_700_000_000_500);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert!(
            parse_time("yesterday")
                .unwrap_err()
                .contains("valid timestamp")
        );
        assert_eq!(parse_step("15").unwrap(), 15_000);
        assert_eq!(parse_step("0.5").unwrap(), 500);
        assert_eq!(parse_step("1m").unwrap(), 60_000);
        assert!(parse_step("fast").is_err());
    }
}
