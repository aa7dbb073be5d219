//! Inhibition: a firing alert matching a rule's source matchers mutes the
//! alerts matching its target matchers that agree with it on the `equal`
//! labels (Alertmanager's `inhibit` package).
//!
//! An alert matching both sides of a rule is not inhibited by a source that
//! also matches both sides, so such a rule cannot make alerts mute each
//! other.

use chrono::{DateTime, Utc};

use crate::alert::Alert;
use crate::config::InhibitRule;
use crate::labels::{Fingerprint, LabelSet};
use crate::matcher::matches_all;

/// A label's value; missing reads as empty, as in Go.
fn value<'a>(labels: &'a LabelSet, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

/// The inhibit rules of a config.
#[derive(Clone, Debug, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
}

impl Inhibitor {
    /// Uses these rules.
    pub fn new(rules: &[InhibitRule]) -> Self {
        Inhibitor {
            rules: rules.to_vec(),
        }
    }

    /// The fingerprint of the alert inhibiting `labels`, if any. `sources`
    /// are all known alerts; only those firing at `now` inhibit.
    pub fn inhibited_by<'a>(
        &self,
        labels: &LabelSet,
        sources: impl Iterator<Item = &'a Alert> + Clone,
        now: DateTime<Utc>,
    ) -> Option<Fingerprint> {
        for rule in &self.rules {
            if !matches_all(&rule.target_matchers, labels) {
                continue;
            }
            let two_sided = matches_all(&rule.source_matchers, labels);
            for source in sources.clone() {
                if source.resolved_at(now) || !matches_all(&rule.source_matchers, &source.labels) {
                    continue;
                }
                let equal = rule
                    .equal
                    .iter()
                    .all(|n| value(&source.labels, n) == value(labels, n));
                if !equal {
                    continue;
                }
                if two_sided && matches_all(&rule.target_matchers, &source.labels) {
                    continue;
                }
                return Some(source.fingerprint());
            }
        }
        None
    }
}
