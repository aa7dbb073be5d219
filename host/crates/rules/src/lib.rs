//! Prometheus recording and alerting rules for lookout, with the semantics
//! of Prometheus 2.42: rule files, group evaluation, alert state,
//! `ALERTS`/`ALERTS_FOR_STATE`, templates, `for` state across restarts, the
//! `/api/v1/rules` and `/api/v1/alerts` JSON, and promtool's rule unit
//! tests.
//!
//! Everything here is I/O free except [`run_unit_tests`] (which reads its
//! test and rule files): the host owns storage, scheduling and sending.
//!
//! ```
//! use lookout_promql::{Engine, STALE_NAN_BITS};
//! use lookout_rules::{GroupOptions, GroupState, MemorySeries, parse_rule_file};
//!
//! let file = parse_rule_file(
//!     r#"
//! groups:
//!   - name: availability
//!     interval: 1m
//!     rules:
//!       - record: job:up:sum
//!         expr: sum by (job) (up)
//!       - alert: JobDown
//!         expr: job:up:sum == 0
//!         for: 2m
//!         labels: { severity: page }
//!         annotations:
//!           summary: "{{ $labels.job }} is down ({{ $value }} up)"
//! "#,
//!     "rules.yml",
//! )
//! .unwrap();
//!
//! // The host's storage; here an in-memory one.
//! let mut db = MemorySeries::new();
//! let up = vec![
//!     ("__name__".to_string(), "up".to_string()),
//!     ("job".to_string(), "api".to_string()),
//! ];
//! let engine = Engine::default();
//! let mut group = GroupState::new(file.groups[0].clone(), &file.file, GroupOptions::default());
//! for minute in 0..4 {
//!     let ts = minute * 60_000;
//!     db.append(&up, ts, 0.0).unwrap();
//!     let out = group.eval(&engine, &db, ts);
//!     assert!(out.errors.is_empty());
//!     // The host appends what the group wrote (rule outputs, ALERTS,
//!     // ALERTS_FOR_STATE, staleness markers), all at `ts`.
//!     for (labels, v) in &out.samples_to_write {
//!         db.append(labels, ts, *v).unwrap();
//!     }
//!     // ... and hands `out.alerts` to the notifier.
//!     if minute == 2 {
//!         let a = &out.alerts[0].alert;
//!         assert_eq!(a.state.as_str(), "firing");
//!         assert_eq!(a.annotations[0].1, "api is down (0 up)");
//!     }
//! }
//! let api = lookout_rules::rules_json(&[&group], lookout_rules::RuleTypeFilter::All);
//! assert_eq!(api["groups"][0]["rules"][1]["state"], "firing");
//! ```
//!
//! # Concepts
//!
//! - **A group evaluates its rules in order at one timestamp.**
//!   [`GroupState::eval`] runs each rule's expression with the
//!   [`lookout_promql::Engine`] at `ts`; a rule sees the host's
//!   [`SeriesSource`](lookout_promql::SeriesSource) **plus** the samples the
//!   earlier rules of the same evaluation produced (layered over it), so a
//!   recording rule's output is visible to the rules after it, as in
//!   Prometheus where each rule's samples are committed before the next
//!   rule runs. The host appends [`GroupEvalOutput::samples_to_write`]
//!   after the call. Groups are independent; the host schedules each every
//!   [`GroupState::interval_ms`] ([`GroupState::eval_timestamp`] gives
//!   Prometheus' slot).
//! - **Staleness.** A series a rule wrote at its previous evaluation and
//!   not at this one gets a staleness marker (value bits
//!   [`lookout_promql::STALE_NAN_BITS`]) in `samples_to_write`, so recorded
//!   series and `ALERTS{alertstate="pending"}` end at once.
//! - **A failing rule** (query error, duplicate label sets after applying
//!   the rule's labels, the group's `limit` exceeded) is reported in
//!   [`GroupEvalOutput::errors`] and in its health; its state stays as it
//!   was and it writes nothing (no staleness markers either).
//!
//! # Alert state
//!
//! See the [`alerting`] module: inactive → pending → firing after `for`;
//! a pending alert whose series is gone is dropped, a firing one resolves
//! (or keeps firing for `keep_firing_for`); resolved alerts are kept and
//! re-sent for 15 minutes. [`GroupEvalOutput::alerts`] are the alerts
//! Prometheus would send to Alertmanager at that evaluation (firing ones
//! at most every `resend_delay`, resolved ones at once), with
//! [`Alert::starts_at_ms`]/[`Alert::ends_at_ms`] as Prometheus fills
//! `startsAt`/`endsAt`. [`GroupEvalOutput::transitions`] lists every state
//! change. The notifier adds external labels, as Prometheus' does.
//!
//! # `for` state across restarts
//!
//! Two ways, same arithmetic ([`restore_active_at`]):
//!
//! - **Snapshot** (lookout's default): the host stores
//!   [`GroupState::persisted_state`] (serde) after evaluations, e.g. in
//!   redb, and after a restart calls [`GroupState::restore`] before the
//!   first evaluation.
//! - **Prometheus' way**: create the group with
//!   [`GroupOptions::awaiting_restore`], evaluate twice, then call
//!   [`GroupState::restore_for_state`], which reads `ALERTS_FOR_STATE` from
//!   the host's storage. Until then no `ALERTS`/`ALERTS_FOR_STATE` samples
//!   are written.
//!
//! Either way an alert that had been pending for `spent` when the old
//! process last evaluated (`downAt`) resumes with its `activeAt` moved
//! forward by the downtime, so only time actually observed counts towards
//! `for`; one that was already firing fires again at the first evaluation
//! that still returns it; one with less than the grace period (10 min) left
//! fires a grace period after the restart. Rules whose `for` is shorter
//! than the grace period, and state older than the outage tolerance (1 h),
//! are not restored ([`RestorePolicy`]).
//!
//! # Templates
//!
//! Labels and annotations of alerting rules are Go templates with
//! `$labels`, `$value`, `$externalLabels`, `$externalURL` and `.Labels`,
//! `.Value`, `.ExternalLabels`, `.ExternalURL` ([`template`] module):
//! Go's `text/template` language (actions with trim markers, comments,
//! pipelines, variables, `if`/`else if`/`range`/`with`/`define`/`template`/
//! `block`/`break`/`continue`), Go's built-in functions (`and or not len
//! index slice print printf println eq ne lt le gt ge html js urlquery`)
//! and Prometheus' (`query first label value strvalue args reReplaceAll
//! safeHtml match title toUpper toLower graphLink tableLink sortByLabel
//! stripPort stripDomain humanize humanize1024 humanizeDuration
//! humanizePercentage humanizeTimestamp toTime pathPrefix externalURL
//! parseDuration`), with values printed as Go's `fmt` prints them.
//!
//! # API
//!
//! [`rules_json`] and [`alerts_json`] build the `data` of
//! `/api/v1/rules` and `/api/v1/alerts` with Prometheus' field names.
//!
//! # promtool unit tests
//!
//! [`run_unit_tests`] runs a `promtool test rules` file (rule files,
//! `evaluation_interval`, `group_eval_order`, `tests[]` with `interval`,
//! `input_series` in the [`notation`], `alert_rule_test`,
//! `promql_expr_test`, `external_labels`, `external_url`) and reports like
//! promtool ([`UnitTestReport::text`], [`UnitTestReport::exit_code`]).
//! `tests/promtool.rs` runs the same files through Debian's promtool 2.42
//! and requires the same verdicts.
//!
//! # Known differences from Prometheus
//!
//! - Subqueries without a step use one minute (lookout-promql's
//!   [`lookout_promql::DEFAULT_SUBQUERY_STEP_MS`]), not the unit test's
//!   `evaluation_interval`.
//! - A storage append failure of a rule's sample (two rules writing one
//!   series at one timestamp) is not reported as the rule's error: the host
//!   appends after the evaluation.
//! - PromQL syntax errors in rule files carry promql-parser's message
//!   (often just `invalid promql query`) instead of Prometheus'
//!   `1:6: parse error: ...`; everything around it (file, line, column,
//!   group, rule) is Prometheus'.
//! - Problems with several labels or annotations of one rule are listed in
//!   name order; Prometheus' order is Go's random map order.
//! - Template regex errors are mapped onto Go's messages for the common
//!   cases only; printing a whole `query` result prints made-up pointer
//!   addresses, as meaningless as Go's real ones.
//! - [`GroupState::eval_timestamp`] spreads groups with its own hash, so a
//!   group's slot differs from the one Prometheus would pick.

pub mod alerting;
mod api;
mod gofmt;
mod group;
#[cfg(test)]
mod group_tests;
pub mod notation;
mod rulefile;
mod source;
pub mod template;
mod unittest;

pub use alerting::{
    ALERTS_FOR_STATE_METRIC, ALERTS_METRIC, Alert, AlertState, RESOLVED_RETENTION_MS, Transition,
};
pub use api::{RuleTypeFilter, alert_json, alerts_json, canonical_query, rules_json};
pub use group::{
    AlertToSend, GroupEvalOutput, GroupOptions, GroupState, PersistedGroupState,
    PersistedRuleState, RestorePolicy, RuleEvalError, RuleHealth, RuleView, restore_active_at,
};
pub use rulefile::{
    AlertingRuleSpec, RecordingRuleSpec, Rule, RuleError, RuleFile, RuleGroup, RuleProblem,
    parse_rule_file,
};
pub use source::{AppendError, MemorySeries};
pub use unittest::{
    FAILURE_EXIT_CODE, FileReport, SUCCESS_EXIT_CODE, UnitTestReport, run_unit_test_files,
    run_unit_tests,
};
