//! The routing tree: which routes (and so receivers) an alert goes to, and
//! the options each route has after inheritance.
//!
//! Semantics of Alertmanager's `dispatch/route.go`: an alert that matches a
//! node descends into the first matching child; a child with `continue:
//! true` lets the following siblings be tried too; a node none of whose
//! children match takes the alert itself. Options are inherited from the
//! parent unless set (`mute_time_intervals` and `active_time_intervals` are
//! *not* inherited).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::RouteConfig;
use crate::config::locate::Path;
use crate::labels::{LabelSet, is_legacy_label_name, is_valid_label_name};
use crate::matcher::{MatchType, Matcher, matchers_string, parse_matchers};

/// Alertmanager's default `group_wait`.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
/// Alertmanager's default `group_interval`.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Index of a node of a [`RouteTree`] (pre-order; the root is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteId(pub usize);

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which labels make up a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// `group_by: ['...']`: every label (one group per alert).
    All,
    /// These labels (none: one group for the whole route).
    Labels(BTreeSet<String>),
}

impl GroupBy {
    /// The group labels of an alert.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => labels
                .iter()
                .filter(|(k, _)| names.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// A route's options after inheritance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOpts {
    /// Receiver name.
    pub receiver: String,
    /// Grouping.
    pub group_by: GroupBy,
    /// Wait before the first notification of a new group.
    pub group_wait: Duration,
    /// Wait between notifications of a group about changes.
    pub group_interval: Duration,
    /// Wait before re-sending an unchanged notification.
    pub repeat_interval: Duration,
    /// Names of intervals during which this route is muted (own, not
    /// inherited).
    pub mute_time_intervals: Vec<String>,
    /// Names of intervals outside of which this route is muted (own, not
    /// inherited).
    pub active_time_intervals: Vec<String>,
}

/// One node of the tree.
#[derive(Clone, Debug)]
pub struct RouteNode {
    /// Parent node (none for the root).
    pub parent: Option<RouteId>,
    /// Children in config order.
    pub children: Vec<RouteId>,
    /// `match`, `match_re` and `matchers` together, sorted as Alertmanager
    /// sorts them.
    pub matchers: Vec<Matcher>,
    /// `continue:`.
    pub continue_matching: bool,
    /// Effective options.
    pub opts: RouteOpts,
    /// Alertmanager's `Route.Key()`: the matchers of every node from the
    /// root, joined by `/` (`{}/{severity="critical"}`).
    pub key: String,
    /// Alertmanager's `Route.ID()`: the key plus each node's index among its
    /// siblings (`{}/{severity="critical"}/0`), unique per node.
    pub id: String,
}

/// The compiled routing tree.
#[derive(Clone, Debug)]
pub struct RouteTree {
    nodes: Vec<RouteNode>,
    config: RouteConfig,
}

impl RouteTree {
    /// The root.
    pub fn root(&self) -> RouteId {
        RouteId(0)
    }

    /// A node.
    pub fn node(&self, id: RouteId) -> &RouteNode {
        &self.nodes[id.0]
    }

    /// All nodes in pre-order.
    pub fn nodes(&self) -> impl Iterator<Item = (RouteId, &RouteNode)> {
        self.nodes.iter().enumerate().map(|(i, n)| (RouteId(i), n))
    }

    /// The routes an alert with these labels goes to, in tree order.
    pub fn match_routes(&self, labels: &LabelSet) -> Vec<RouteId> {
        self.match_from(self.root(), labels)
    }

    fn match_from(&self, id: RouteId, labels: &LabelSet) -> Vec<RouteId> {
        let node = self.node(id);
        if !node.matchers.iter().all(|m| m.matches_labels(labels)) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &node.children {
            let matches = self.match_from(*child, labels);
            let matched = !matches.is_empty();
            all.extend(matches);
            if matched && !self.node(*child).continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(id);
        }
        all
    }

    /// The routing tree as written (for re-serialising the config).
    pub fn config(&self) -> &RouteConfig {
        &self.config
    }

    /// Every receiver name used in the tree.
    pub fn receivers(&self) -> BTreeSet<&str> {
        self.nodes
            .iter()
            .map(|n| n.opts.receiver.as_str())
            .collect()
    }

    /// Finds a node by Alertmanager's route id string.
    pub fn by_id(&self, id: &str) -> Option<RouteId> {
        self.nodes.iter().position(|n| n.id == id).map(RouteId)
    }

    /// Compiles a validated route config. `path` is where the root route sits
    /// in the document (for error locations).
    pub(crate) fn compile(config: &RouteConfig, path: &Path) -> Result<RouteTree, (Path, String)> {
        let mut tree = RouteTree {
            nodes: Vec::new(),
            config: config.clone(),
        };
        let defaults = RouteOpts {
            receiver: String::new(),
            group_by: GroupBy::Labels(BTreeSet::new()),
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        };
        tree.add(config, None, &defaults, path, None)?;
        Ok(tree)
    }

    fn add(
        &mut self,
        cr: &RouteConfig,
        parent: Option<RouteId>,
        inherited: &RouteOpts,
        path: &Path,
        sibling_index: Option<usize>,
    ) -> Result<RouteId, (Path, String)> {
        let mut opts = inherited.clone();
        if let Some(r) = cr.receiver.as_deref().filter(|r| !r.is_empty()) {
            opts.receiver = r.to_string();
        }
        if let Some(list) = &cr.group_by {
            let gp = path.key("group_by");
            let mut names = BTreeSet::new();
            let mut all = false;
            for (i, name) in list.iter().enumerate() {
                if name == "..." {
                    all = true;
                    continue;
                }
                if !is_valid_label_name(name) {
                    return Err((
                        gp.index(i),
                        format!("invalid label name {name:?} in group_by list"),
                    ));
                }
                if !names.insert(name.clone()) {
                    return Err((
                        gp.index(i),
                        format!("duplicated label {name:?} in group_by"),
                    ));
                }
            }
            if all && !names.is_empty() {
                return Err((
                    gp,
                    "cannot have wildcard group_by (`...`) and other labels at the same time"
                        .into(),
                ));
            }
            opts.group_by = if all {
                GroupBy::All
            } else {
                GroupBy::Labels(names)
            };
        }
        if let Some(d) = cr.group_wait {
            opts.group_wait = d;
        }
        if let Some(d) = cr.group_interval {
            if d.is_zero() {
                return Err((
                    path.key("group_interval"),
                    "group_interval cannot be zero".into(),
                ));
            }
            opts.group_interval = d;
        }
        if let Some(d) = cr.repeat_interval {
            if d.is_zero() {
                return Err((
                    path.key("repeat_interval"),
                    "repeat_interval cannot be zero".into(),
                ));
            }
            opts.repeat_interval = d;
        }
        opts.mute_time_intervals = cr.mute_time_intervals.clone().unwrap_or_default();
        opts.active_time_intervals = cr.active_time_intervals.clone().unwrap_or_default();

        let matchers = compile_route_matchers(cr, path)?;

        let parent_node = parent.map(|p| self.node(p));
        let key = match parent_node {
            Some(p) => format!("{}/{}", p.key, matchers_string(&matchers)),
            None => matchers_string(&matchers),
        };
        let id_string = match (parent_node, sibling_index) {
            (Some(p), Some(i)) => format!("{}/{}/{}", p.id, matchers_string(&matchers), i),
            _ => matchers_string(&matchers),
        };
        let id = RouteId(self.nodes.len());
        self.nodes.push(RouteNode {
            parent,
            children: Vec::new(),
            matchers,
            continue_matching: cr.continue_matching,
            opts: opts.clone(),
            key,
            id: id_string,
        });
        for (i, child) in cr.routes.iter().enumerate() {
            let child_id = self.add(
                child,
                Some(id),
                &opts,
                &path.key("routes").index(i),
                Some(i),
            )?;
            self.nodes[id.0].children.push(child_id);
        }
        Ok(id)
    }
}

/// `match` (equality), `match_re` (anchored regex) and `matchers`, sorted.
fn compile_route_matchers(cr: &RouteConfig, path: &Path) -> Result<Vec<Matcher>, (Path, String)> {
    let mut out = compile_legacy_matchers(
        cr.match_.as_ref(),
        cr.match_re.as_ref(),
        path,
        "match",
        "match_re",
    )?;
    if let Some(lines) = &cr.matchers {
        out.extend(compile_matcher_lines(lines, &path.key("matchers"))?);
    }
    out.sort();
    Ok(out)
}

/// `match:`/`match_re:` style maps (also `source_match`/`target_match`).
pub(crate) fn compile_legacy_matchers(
    eq: Option<&BTreeMap<String, String>>,
    re: Option<&BTreeMap<String, String>>,
    path: &Path,
    eq_key: &str,
    re_key: &str,
) -> Result<Vec<Matcher>, (Path, String)> {
    let mut out = Vec::new();
    for (name, value) in eq.into_iter().flatten() {
        if !is_legacy_label_name(name) {
            return Err((
                path.key(eq_key).key(name),
                format!("invalid label name {name:?}"),
            ));
        }
        out.push(
            Matcher::new(MatchType::Equal, name, value)
                .map_err(|e| (path.key(eq_key).key(name), e.to_string()))?,
        );
    }
    for (name, value) in re.into_iter().flatten() {
        let at = path.key(re_key).key(name);
        if !is_legacy_label_name(name) {
            return Err((at, format!("invalid label name {name:?}")));
        }
        out.push(Matcher::new(MatchType::Regexp, name, value).map_err(|e| (at, e.to_string()))?);
    }
    Ok(out)
}

/// A `matchers:` list: each line may hold several matchers.
pub(crate) fn compile_matcher_lines(
    lines: &[String],
    path: &Path,
) -> Result<Vec<Matcher>, (Path, String)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let ms = parse_matchers(line).map_err(|e| (path.index(i), e.to_string()))?;
        out.extend(ms);
    }
    out.sort();
    Ok(out)
}
