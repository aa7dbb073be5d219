//! Silences: matchers plus a time window during which matching alerts are
//! not notified (Alertmanager's `silence` package and the v2 API's rules
//! for creating, updating and expiring them).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::labels::{LabelSet, is_valid_label_name};
use crate::matcher::{MatchType, Matcher, compile_anchored};
use crate::timeutil::delta;

/// How long an expired silence is kept (Alertmanager's `--data.retention`
/// default), so it can still be listed and re-created from.
pub const SILENCE_RETENTION: Duration = Duration::from_secs(120 * 3600);

/// A matcher in the API's JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// `=~` / `!~`.
    pub is_regex: bool,
    /// `=` / `=~` (default true).
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

impl ApiMatcher {
    /// The operator.
    pub fn kind(&self) -> MatchType {
        match (self.is_equal, self.is_regex) {
            (true, false) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (false, true) => MatchType::NotRegexp,
        }
    }

    /// From a parsed matcher.
    pub fn from_matcher(m: &Matcher) -> Self {
        ApiMatcher {
            name: m.name.clone(),
            value: m.value.clone(),
            is_regex: m.kind.is_regex(),
            is_equal: m.kind.is_equal(),
        }
    }
}

/// A silence as posted to `POST /api/v2/silences` (`postableSilence`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    /// Set to update (or replace) an existing silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What it silences.
    pub matchers: Vec<ApiMatcher>,
    /// Start (moved to now when in the past for a new silence).
    #[serde(with = "crate::timeutil::api_time")]
    pub starts_at: DateTime<Utc>,
    /// End.
    #[serde(with = "crate::timeutil::api_time")]
    pub ends_at: DateTime<Utc>,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// A stored silence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// UUID.
    pub id: String,
    /// What it silences (all must match).
    pub matchers: Vec<ApiMatcher>,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Author.
    pub created_by: String,
    /// Why.
    pub comment: String,
}

/// A silence's state at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Now within `[startsAt, endsAt]`.
    Active,
    /// Starts later.
    Pending,
    /// Ended.
    Expired,
}

impl SilenceState {
    /// `active`, `pending` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Active => "active",
            SilenceState::Pending => "pending",
            SilenceState::Expired => "expired",
        }
    }
}

impl Silence {
    /// State at `now`.
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now > self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }

    /// The matchers, compiled. Stored silences were validated, so this only
    /// fails for a snapshot edited by hand.
    pub fn compiled_matchers(&self) -> Vec<Matcher> {
        self.matchers
            .iter()
            .filter_map(|m| Matcher::new(m.kind(), &m.name, &m.value).ok())
            .collect()
    }

    /// Whether every matcher matches the labels.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let compiled = self.compiled_matchers();
        compiled.len() == self.matchers.len() && compiled.iter().all(|m| m.matches_labels(labels))
    }
}

/// Why a silence was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    /// No silence has that id (the API answers 404).
    #[error("silence not found")]
    NotFound,
    /// The silence is not valid (the API answers 400).
    #[error("{0}")]
    Invalid(String),
}

/// The silences, keyed by id, with their matchers compiled once.
#[derive(Clone, Debug, Default)]
pub struct Silences {
    silences: BTreeMap<String, Silence>,
    compiled: BTreeMap<String, Vec<Matcher>>,
}

/// A silence with its state, as the API lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedSilence<'a> {
    /// The silence.
    pub silence: &'a Silence,
    /// Its state.
    pub state: SilenceState,
}

/// What [`Silences::snapshot`] saves.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilencesSnapshot {
    /// Every stored silence.
    pub silences: Vec<Silence>,
}

impl Silences {
    /// No silences.
    pub fn new() -> Self {
        Silences::default()
    }

    /// Creates or updates a silence and returns its id.
    ///
    /// As Alertmanager: an existing silence (`id` set) is changed in place
    /// when its matchers are unchanged and the change does not rewrite its
    /// past (an active silence keeps its start and cannot end in the past; a
    /// pending one cannot start in the past); otherwise a new silence is
    /// created and the old one expired.
    pub fn set(
        &mut self,
        posted: PostableSilence,
        now: DateTime<Utc>,
    ) -> Result<String, SilenceError> {
        if posted.starts_at >= posted.ends_at {
            return Err(SilenceError::Invalid(
                "Failed to create silence: start time must be before end time".into(),
            ));
        }
        if posted.ends_at < now {
            return Err(SilenceError::Invalid(
                "Failed to create silence: end time can't be in the past".into(),
            ));
        }
        validate(&posted.matchers)
            .map_err(|e| SilenceError::Invalid(format!("invalid silence: {e}")))?;

        let prev = match posted.id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => Some(
                self.silences
                    .get(id)
                    .cloned()
                    .ok_or(SilenceError::NotFound)?,
            ),
            None => None,
        };
        if let Some(prev) = &prev
            && can_update(prev, &posted, now)
        {
            let s = self
                .silences
                .get_mut(&prev.id)
                .ok_or(SilenceError::NotFound)?;
            s.starts_at = posted.starts_at;
            s.ends_at = posted.ends_at;
            s.created_by = posted.created_by;
            s.comment = posted.comment;
            s.updated_at = now;
            return Ok(prev.id.clone());
        }
        let id = new_uuid();
        let silence = Silence {
            id: id.clone(),
            matchers: posted.matchers,
            starts_at: posted.starts_at.max(now),
            ends_at: posted.ends_at,
            updated_at: now,
            created_by: posted.created_by,
            comment: posted.comment,
        };
        if let Some(prev) = prev
            && prev.state(now) != SilenceState::Expired
        {
            self.expire(&prev.id, now)?;
        }
        self.insert(silence);
        Ok(id)
    }

    fn insert(&mut self, silence: Silence) {
        self.compiled
            .insert(silence.id.clone(), silence.compiled_matchers());
        self.silences.insert(silence.id.clone(), silence);
    }

    /// Ends a silence now (a pending one never starts). Expiring an expired
    /// silence is a no-op.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), SilenceError> {
        let s = self.silences.get_mut(id).ok_or(SilenceError::NotFound)?;
        match s.state(now) {
            SilenceState::Expired => return Ok(()),
            SilenceState::Active => s.ends_at = now,
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        Ok(())
    }

    /// A silence by id.
    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.silences.get(id)
    }

    /// All silences with their state, in the API's order: active by end,
    /// then pending by start, then expired by end, latest first.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<ListedSilence<'_>> {
        let mut out: Vec<ListedSilence<'_>> = self
            .silences
            .values()
            .map(|s| ListedSilence {
                silence: s,
                state: s.state(now),
            })
            .collect();
        out.sort_by(|a, b| {
            use SilenceState::*;
            match (a.state, b.state) {
                (Active, Active) => a.silence.ends_at.cmp(&b.silence.ends_at),
                (Pending, Pending) => a.silence.starts_at.cmp(&b.silence.starts_at),
                (Expired, Expired) => b.silence.ends_at.cmp(&a.silence.ends_at),
                (x, y) => x.cmp(&y),
            }
        });
        out
    }

    /// Ids of the active silences matching `labels` (empty: not silenced).
    pub fn mutes(&self, labels: &LabelSet, now: DateTime<Utc>) -> Vec<String> {
        self.silences
            .values()
            .filter(|s| {
                s.state(now) == SilenceState::Active
                    && self.compiled.get(&s.id).is_some_and(|ms| {
                        ms.len() == s.matchers.len() && ms.iter().all(|m| m.matches_labels(labels))
                    })
            })
            .map(|s| s.id.clone())
            .collect()
    }

    /// Drops silences that ended more than [`SILENCE_RETENTION`] ago;
    /// returns how many.
    pub fn gc(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.silences.len();
        let retention = delta(SILENCE_RETENTION);
        self.silences.retain(|_, s| s.ends_at + retention > now);
        let silences = &self.silences;
        self.compiled.retain(|id, _| silences.contains_key(id));
        before - self.silences.len()
    }

    /// Number of stored silences.
    pub fn len(&self) -> usize {
        self.silences.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.silences.is_empty()
    }

    /// Everything, for persisting.
    pub fn snapshot(&self) -> SilencesSnapshot {
        SilencesSnapshot {
            silences: self.silences.values().cloned().collect(),
        }
    }

    /// Rebuilds from a snapshot.
    pub fn restore(snapshot: SilencesSnapshot) -> Self {
        let mut out = Silences::new();
        for s in snapshot.silences {
            out.insert(s);
        }
        out
    }
}

fn validate(matchers: &[ApiMatcher]) -> Result<(), String> {
    if matchers.is_empty() {
        return Err("at least one matcher required".into());
    }
    let mut all_match_empty = true;
    for (i, m) in matchers.iter().enumerate() {
        if !is_valid_label_name(&m.name) {
            return Err(format!(
                "invalid label matcher {i}: invalid label name {:?}",
                m.name
            ));
        }
        if m.is_regex {
            compile_anchored(&m.value).map_err(|e| {
                format!(
                    "invalid label matcher {i}: invalid regular expression {:?}: {e}",
                    m.value
                )
            })?;
        }
        let compiled = Matcher::new(m.kind(), &m.name, &m.value).map_err(|e| e.to_string())?;
        all_match_empty &= compiled.matches_empty();
    }
    if all_match_empty {
        return Err("at least one matcher must not match the empty string".into());
    }
    Ok(())
}

fn can_update(prev: &Silence, posted: &PostableSilence, now: DateTime<Utc>) -> bool {
    if prev.matchers != posted.matchers {
        return false;
    }
    match prev.state(now) {
        SilenceState::Active => {
            prev.starts_at.timestamp() == posted.starts_at.timestamp() && posted.ends_at >= now
        }
        SilenceState::Pending => posted.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// A random (version 4) UUID, as Alertmanager's silence ids.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: fall back to time and a counter, hashed.
        use sha2::{Digest, Sha256};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = Sha256::new();
        h.update(
            Utc::now()
                .timestamp_nanos_opt()
                .unwrap_or_default()
                .to_le_bytes(),
        );
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        b.copy_from_slice(&h.finalize()[..16]);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn eq(name: &str, value: &str) -> ApiMatcher {
        ApiMatcher {
            name: name.into(),
            value: value.into(),
            is_regex: false,
            is_equal: true,
        }
    }

    fn post(matchers: Vec<ApiMatcher>, start: i64, end: i64) -> PostableSilence {
        PostableSilence {
            id: None,
            matchers,
            starts_at: t(start),
            ends_at: t(end),
            created_by: "me".into(),
            comment: "maintenance".into(),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn uuid_shape() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_uuid());
    }

    #[test]
    fn states_and_muting() {
        let mut s = Silences::new();
        let id = s.set(post(vec![eq("job", "api")], 100, 200), t(0)).unwrap();
        let api = labels(&[("job", "api"), ("alertname", "Down")]);
        assert_eq!(s.get(&id).unwrap().state(t(50)), SilenceState::Pending);
        assert!(s.mutes(&api, t(50)).is_empty());
        assert_eq!(s.mutes(&api, t(100)), vec![id.clone()]);
        assert_eq!(s.mutes(&api, t(200)), vec![id.clone()], "end is inclusive");
        assert!(s.mutes(&api, t(201)).is_empty());
        assert!(s.mutes(&labels(&[("job", "db")]), t(150)).is_empty());
    }

    #[test]
    fn new_silence_in_the_past_starts_now() {
        let mut s = Silences::new();
        let id = s.set(post(vec![eq("a", "b")], -100, 100), t(0)).unwrap();
        assert_eq!(s.get(&id).unwrap().starts_at, t(0));
    }

    #[test]
    fn refuses_invalid_silences() {
        let mut s = Silences::new();
        let err = |r: Result<String, SilenceError>| r.unwrap_err().to_string();
        assert!(err(s.set(post(vec![], 0, 10), t(0))).contains("at least one matcher required"));
        assert!(
            err(s.set(post(vec![eq("a", "")], 0, 10), t(0)))
                .contains("must not match the empty string")
        );
        assert!(
            err(s.set(post(vec![eq("a", "b")], 10, 10), t(0)))
                .contains("start time must be before end time")
        );
        assert!(
            err(s.set(post(vec![eq("a", "b")], -20, -10), t(0)))
                .contains("end time can't be in the past")
        );
        let mut bad = eq("a", "(");
        bad.is_regex = true;
        assert!(err(s.set(post(vec![bad], 0, 10), t(0))).contains("invalid regular expression"));
        let mut p = post(vec![eq("a", "b")], 0, 10);
        p.id = Some("nope".into());
        assert_eq!(s.set(p, t(0)), Err(SilenceError::NotFound));
    }

    #[test]
    fn update_in_place_or_replace() {
        let mut s = Silences::new();
        let id = s.set(post(vec![eq("a", "b")], 0, 100), t(0)).unwrap();
        // Extending an active silence keeps the id.
        let mut p = post(vec![eq("a", "b")], 0, 500);
        p.id = Some(id.clone());
        assert_eq!(s.set(p, t(10)).unwrap(), id);
        assert_eq!(s.get(&id).unwrap().ends_at, t(500));
        // Changing matchers replaces it and expires the old one.
        let mut p = post(vec![eq("a", "c")], 0, 500);
        p.id = Some(id.clone());
        let new = s.set(p, t(20)).unwrap();
        assert_ne!(new, id);
        assert_eq!(s.get(&id).unwrap().state(t(21)), SilenceState::Expired);
        assert_eq!(s.get(&new).unwrap().starts_at, t(20));
    }

    #[test]
    fn expire_list_order_and_gc() {
        let mut s = Silences::new();
        let a = s.set(post(vec![eq("a", "1")], 0, 300), t(0)).unwrap();
        let b = s.set(post(vec![eq("a", "2")], 0, 200), t(0)).unwrap();
        let p = s.set(post(vec![eq("a", "3")], 500, 600), t(0)).unwrap();
        s.expire(&p, t(10)).unwrap();
        let order: Vec<&str> = s
            .list(t(20))
            .iter()
            .map(|l| l.silence.id.as_str())
            .collect();
        assert_eq!(order, vec![b.as_str(), a.as_str(), p.as_str()]);
        assert_eq!(s.get(&p).unwrap().state(t(20)), SilenceState::Expired);
        assert_eq!(s.gc(t(20)), 0);
        assert_eq!(
            s.gc(t(10) + delta(SILENCE_RETENTION) + TimeDelta::seconds(1)),
            1
        );
        let restored = Silences::restore(s.snapshot());
        assert_eq!(restored.len(), 2);
    }
}
