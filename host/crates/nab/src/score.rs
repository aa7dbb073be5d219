//! NAB scoring: anomaly windows, the scaled sigmoid, profiles, the
//! probationary period, normalisation and the threshold sweep, with the
//! semantics of `nab/sweeper.py`, `nab/optimizer.py` and `nab/runner.py`
//! (`normalize`) in numenta/NAB.

use std::fmt;

/// Weights of one NAB application profile (`config/profiles.json`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    /// NAB's profile name, for tables.
    pub name: &'static str,
    /// Weight of a window detected at its first point.
    pub tp: f64,
    /// Largest cost of one false positive (one far from any window).
    pub fp: f64,
    /// Cost of one missed window.
    pub fn_: f64,
}

impl Profile {
    /// NAB's `standard` profile: the headline score.
    pub const STANDARD: Profile = Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    };
    /// NAB's `reward_low_FP_rate`: false positives cost twice as much.
    pub const REWARD_LOW_FP: Profile = Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    };
    /// NAB's `reward_low_FN_rate`: missed windows cost twice as much.
    pub const REWARD_LOW_FN: Profile = Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    };
    /// The three profiles NAB reports, standard first.
    pub const ALL: [Profile; 3] = [Self::STANDARD, Self::REWARD_LOW_FP, Self::REWARD_LOW_FN];
}

/// Share of each file (from its start) where detections are ignored: a
/// detector needs data to learn what normal is (NAB's `probationPercent`).
pub const PROBATION_FRACTION: f64 = 0.15;

/// The probation never exceeds `PROBATION_FRACTION` of this many rows, so
/// long files are not mostly probation (`util.getProbationPeriod`: 750 rows).
pub const PROBATION_CAP_ROWS: usize = 5000;

/// Number of leading points whose detections are ignored:
/// `min(floor(0.15 * len), 0.15 * 5000)`, computed in f64 like NAB.
pub fn probation_length(len: usize) -> usize {
    let by_fraction = (PROBATION_FRACTION * len as f64).floor();
    let cap = PROBATION_FRACTION * PROBATION_CAP_ROWS as f64;
    // NAB compares `i >= probation` with a float; ceil keeps that exact
    // should the cap ever be fractional.
    by_fraction.min(cap).ceil() as usize
}

/// NAB's scaled sigmoid of a relative position: about +0.987 at a window's
/// left edge (-1), 0 at its right edge (0), tending to -1 after it, and
/// exactly -1 beyond 3 (`sweeper.scaledSigmoid`).
pub fn scaled_sigmoid(position: f64) -> f64 {
    if position > 3.0 {
        -1.0
    } else {
        2.0 * (1.0 / (1.0 + (5.0 * position).exp())) - 1.0
    }
}

/// An anomaly window: the inclusive index range `[left, right]` of a file's
/// points where a detection counts as a true positive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub left: usize,
    pub right: usize,
}

impl Window {
    /// Points in the window.
    pub fn width(&self) -> usize {
        self.right - self.left + 1
    }
}

/// Why a file's windows cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelError {
    /// `left > right`.
    Reversed { left: usize, right: usize },
    /// The window ends past the file's last point.
    OutOfRange { right: usize, len: usize },
    /// Windows must be sorted and disjoint (NAB merges overlapping ones when
    /// it writes the labels; the sweep assumes it).
    Overlapping { previous_right: usize, left: usize },
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelError::Reversed { left, right } => {
                write!(f, "window starts at index {left} after it ends at {right}")
            }
            LabelError::OutOfRange { right, len } => {
                write!(
                    f,
                    "window ends at index {right} but the file has {len} points"
                )
            }
            LabelError::Overlapping {
                previous_right,
                left,
            } => write!(
                f,
                "window starting at index {left} overlaps or precedes the one ending at {previous_right}"
            ),
        }
    }
}

impl std::error::Error for LabelError {}

/// One file's ground truth: its length and its anomaly windows, sorted and
/// disjoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    len: usize,
    windows: Vec<Window>,
}

impl Labels {
    pub fn new(len: usize, windows: Vec<Window>) -> Result<Labels, LabelError> {
        let mut previous: Option<Window> = None;
        for w in &windows {
            if w.left > w.right {
                return Err(LabelError::Reversed {
                    left: w.left,
                    right: w.right,
                });
            }
            if w.right >= len {
                return Err(LabelError::OutOfRange {
                    right: w.right,
                    len,
                });
            }
            if let Some(p) = previous
                && w.left <= p.right
            {
                return Err(LabelError::Overlapping {
                    previous_right: p.right,
                    left: w.left,
                });
            }
            previous = Some(*w);
        }
        Ok(Labels { len, windows })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }
}

/// A point after the probation: what detecting it would be worth.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ScorablePoint {
    index: usize,
    /// Index into the file's windows when the point is inside one.
    window: Option<usize>,
    /// NAB's `sweepScore`: a true positive's reward or a false positive's
    /// (negative) cost, profile weights applied.
    weighted: f64,
}

/// NAB's `calcSweepScore` without the probationary points: every point's
/// worth if it were a detection.
fn scorable_points(labels: &Labels, profile: &Profile) -> Vec<ScorablePoint> {
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probation_length(labels.len);
    let windows = &labels.windows;
    let mut points = Vec::with_capacity(labels.len.saturating_sub(probation));
    let mut next_window = 0;
    let mut current: Option<usize> = None;
    let mut previous: Option<Window> = None;
    for i in 0..labels.len {
        if current.is_none() && windows.get(next_window).is_some_and(|w| w.left == i) {
            current = Some(next_window);
            next_window += 1;
        }
        let weighted = match current {
            Some(w) => {
                let win = windows[w];
                // -1 at the left edge, -1/width at the right edge.
                let position = -((win.right - i + 1) as f64) / win.width() as f64;
                scaled_sigmoid(position) * profile.tp / max_tp
            }
            None => {
                let unweighted = match previous {
                    // No window before: as if infinitely far from one.
                    None => -1.0,
                    Some(prev) => {
                        // NAB divides by zero here for a one-point window
                        // (it never has one); treat that as "far away".
                        let position = if prev.width() > 1 {
                            (i - prev.right) as f64 / (prev.width() - 1) as f64
                        } else {
                            f64::INFINITY
                        };
                        scaled_sigmoid(position)
                    }
                };
                unweighted * profile.fp
            }
        };
        if i >= probation {
            points.push(ScorablePoint {
                index: i,
                window: current,
                weighted,
            });
        }
        if let Some(w) = current
            && windows[w].right == i
        {
            previous = Some(windows[w]);
            current = None;
        }
    }
    points
}

/// A score with the counts behind it.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Tally {
    /// Sum of window parts (best detection's reward, or -fn when missed)
    /// and false-positive costs.
    pub raw: f64,
    /// Windows with at least one detection.
    pub detected: usize,
    /// Scored windows without a detection.
    pub missed: usize,
    /// Detections outside every window, after the probation.
    pub false_positives: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.raw += other.raw;
        self.detected += other.detected;
        self.missed += other.missed;
        self.false_positives += other.false_positives;
    }
}

/// NAB's score of one file given boolean detections (`detections[i]` is
/// true when the detector flagged point `i`).
///
/// A window counts only its best (earliest) detection; a window with no
/// point after the probation is not scored at all, as in NAB.
///
/// # Panics
/// When `detections` and `labels` differ in length.
pub fn score_file(labels: &Labels, detections: &[bool], profile: &Profile) -> Tally {
    assert_eq!(
        detections.len(),
        labels.len,
        "one detection flag per labelled point"
    );
    let mut best: Vec<Option<f64>> = vec![None; labels.windows.len()];
    let mut scored = vec![false; labels.windows.len()];
    let mut tally = Tally::default();
    for p in scorable_points(labels, profile) {
        let detected = detections[p.index];
        match p.window {
            Some(w) => {
                scored[w] = true;
                if detected {
                    best[w] = Some(best[w].map_or(p.weighted, |b| b.max(p.weighted)));
                }
            }
            None if detected => {
                tally.raw += p.weighted;
                tally.false_positives += 1;
            }
            None => {}
        }
    }
    for (w, best) in best.iter().enumerate() {
        if !scored[w] {
            continue;
        }
        match best {
            Some(b) => {
                tally.raw += b.max(-profile.fn_);
                tally.detected += 1;
            }
            None => {
                tally.raw -= profile.fn_;
                tally.missed += 1;
            }
        }
    }
    tally
}

/// `100 * (raw - null) / (perfect - null)`: 0 for a detector that never
/// fires, 100 for one that flags every window at its first point. NaN when
/// the corpus has no window (nothing to normalise by).
pub fn normalise(raw: f64, null: f64, perfect: f64) -> f64 {
    if perfect == null {
        return f64::NAN;
    }
    100.0 * (raw - null) / (perfect - null)
}

/// The normalisation's end points for a corpus under one profile: the raw
/// score of a detector that never fires, and `tp` times the number of
/// windows (NAB counts every labelled window in the perfect score, even one
/// hidden by the probation).
pub fn null_and_perfect<'a>(
    files: impl IntoIterator<Item = &'a Labels>,
    profile: &Profile,
) -> (f64, f64) {
    let mut null = 0.0;
    let mut windows = 0;
    for labels in files {
        null += score_file(labels, &vec![false; labels.len], profile).raw;
        windows += labels.windows.len();
    }
    (null, profile.tp * windows as f64)
}

/// A corpus scored under one profile.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CorpusScore {
    pub tally: Tally,
    /// NAB's normalised score (see [`normalise`]).
    pub normalised: f64,
}

/// NAB's score of a corpus given each file's boolean detections (the
/// detector's own verdicts, or scores cut at a threshold).
///
/// # Panics
/// When a file's detections and labels differ in length.
pub fn score_corpus(files: &[(&Labels, &[bool])], profile: &Profile) -> CorpusScore {
    let mut tally = Tally::default();
    for (labels, detections) in files {
        tally += score_file(labels, detections, profile);
    }
    let (null, perfect) = null_and_perfect(files.iter().map(|(l, _)| *l), profile);
    CorpusScore {
        tally,
        normalised: normalise(tally.raw, null, perfect),
    }
}

/// The threshold that maximises a corpus' score, as NAB's optimiser finds
/// it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThresholdChoice {
    /// Points whose score is `>= threshold` are detections; `None` when
    /// detecting nothing scores best.
    pub threshold: Option<f64>,
    pub score: CorpusScore,
}

/// NAB's threshold optimisation (`optimizer.optimizeThreshold` over
/// `sweeper.calcScoreByThreshold`): every distinct score value is tried as
/// a threshold (a point is a detection when its score is `>=` it), plus
/// "detect nothing"; the best corpus score wins, the highest threshold on
/// ties. NaN scores (a detector warming up) are never detections.
///
/// One sort of all scored points, then one pass in descending score order
/// that keeps the total up to date: O(n log n) for n points.
///
/// # Panics
/// When a file's scores and labels differ in length.
pub fn optimise_threshold(files: &[(&Labels, &[f64])], profile: &Profile) -> ThresholdChoice {
    struct Candidate {
        score: f64,
        /// Index into `parts`, or `None` outside windows.
        window: Option<usize>,
        weighted: f64,
    }
    let mut candidates = Vec::new();
    // Each scored window's part of the total: -fn until detected, then its
    // best detection's reward. NAB's `scoreParts`.
    let mut parts: Vec<f64> = Vec::new();
    let mut total_windows = 0;
    for (labels, scores) in files {
        assert_eq!(scores.len(), labels.len, "one score per labelled point");
        let mut part_of_window: Vec<Option<usize>> = vec![None; labels.windows.len()];
        for p in scorable_points(labels, profile) {
            let window = p.window.map(|w| {
                *part_of_window[w].get_or_insert_with(|| {
                    parts.push(-profile.fn_);
                    parts.len() - 1
                })
            });
            let score = scores[p.index];
            if !score.is_nan() {
                candidates.push(Candidate {
                    score,
                    window,
                    weighted: p.weighted,
                });
            }
        }
        total_windows += labels.windows.len();
    }
    let perfect = profile.tp * total_windows as f64;
    let null: f64 = parts.iter().sum();

    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut detected = vec![false; parts.len()];
    let mut tally = Tally {
        raw: null,
        detected: 0,
        missed: parts.len(),
        false_positives: 0,
    };
    let mut best = (None, tally);
    let mut i = 0;
    while i < candidates.len() {
        let threshold = candidates[i].score;
        // All points with this score become detections together.
        while i < candidates.len() && candidates[i].score == threshold {
            let c = &candidates[i];
            match c.window {
                Some(w) => {
                    if !detected[w] {
                        detected[w] = true;
                        tally.detected += 1;
                        tally.missed -= 1;
                    }
                    let improved = parts[w].max(c.weighted);
                    tally.raw += improved - parts[w];
                    parts[w] = improved;
                }
                None => {
                    tally.raw += c.weighted;
                    tally.false_positives += 1;
                }
            }
            i += 1;
        }
        if tally.raw > best.1.raw {
            best = (Some(threshold), tally);
        }
    }
    ThresholdChoice {
        threshold: best.0,
        score: CorpusScore {
            tally: best.1,
            normalised: normalise(best.1.raw, null, perfect),
        },
    }
}

/// Boolean detections of `scores` cut at `threshold` (`>=`; NaN never).
pub fn detections_at(scores: &[f64], threshold: Option<f64>) -> Vec<bool> {
    match threshold {
        Some(t) => scores.iter().map(|s| *s >= t).collect(),
        None => vec![false; scores.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    /// One file of `len` points with the given inclusive windows.
    fn labels(len: usize, windows: &[(usize, usize)]) -> Labels {
        Labels::new(
            len,
            windows
                .iter()
                .map(|&(left, right)| Window { left, right })
                .collect(),
        )
        .unwrap()
    }

    fn flags(len: usize, at: &[usize]) -> Vec<bool> {
        let mut d = vec![false; len];
        for &i in at {
            d[i] = true;
        }
        d
    }

    /// sigmoid(-1)/sigmoid(-1) rescaling makes the left edge exactly 1.
    const MAX_TP: f64 = 0.986_614_298_151_430_2; // 2/(1+e^-5) - 1

    #[test]
    fn scaled_sigmoid_matches_nab_docstring() {
        // 2*sigmoid(5) - 1 = 2/(1+e^-5) - 1 = 0.98661
        assert!(close(scaled_sigmoid(-1.0), MAX_TP));
        // 2*sigmoid(2.5) - 1 = 0.84828
        assert!((scaled_sigmoid(-0.5) - 0.848_283_639_957_5).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(0.0), 0.0);
        assert!(close(scaled_sigmoid(1.0), -MAX_TP));
        // Beyond 3 the sigmoid is cut to exactly -1.
        assert_eq!(scaled_sigmoid(3.000_001), -1.0);
        assert!(scaled_sigmoid(3.0) > -1.0);
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probation_length(0), 0);
        assert_eq!(probation_length(100), 15);
        assert_eq!(probation_length(4000), 600); // floor(600.0)
        assert_eq!(probation_length(4001), 600); // floor(600.15)
        assert_eq!(probation_length(5000), 750);
        assert_eq!(probation_length(100_000), 750); // min(15000, 750)
    }

    #[test]
    fn true_positive_at_first_index_of_window_is_one() {
        // 100 points, probation 15; window [40, 49] (width 10).
        // Detection at 40: position = -(49 - 40 + 1)/10 = -1,
        // weighted = sigmoid(-1)/sigmoid(-1) * tp = 1.
        let l = labels(100, &[(40, 49)]);
        let t = score_file(&l, &flags(100, &[40]), &Profile::STANDARD);
        assert!(close(t.raw, 1.0));
        assert_eq!((t.detected, t.missed, t.false_positives), (1, 0, 0));
    }

    #[test]
    fn true_positive_at_last_index_of_window() {
        // Window [40, 49]; detection at 49: position = -(49 - 49 + 1)/10 = -0.1,
        // scaled_sigmoid(-0.1) = 2/(1+e^-0.5) - 1 = 0.244918662...,
        // weighted = 0.244918662 / 0.986614298 = 0.24824155...
        let l = labels(100, &[(40, 49)]);
        let t = score_file(&l, &flags(100, &[49]), &Profile::STANDARD);
        let expected = (2.0 / (1.0 + (-0.5f64).exp()) - 1.0) / MAX_TP;
        assert!(close(t.raw, expected));
        assert!((t.raw - 0.248_241_55).abs() < 1e-6);
        assert_eq!(t.detected, 1);
    }

    #[test]
    fn two_detections_in_one_window_count_once_the_earliest() {
        // Window [40, 49]; detections at 45 and 41.
        // 41: position -(49-41+1)/10 = -0.9 → (2/(1+e^-4.5)-1)/MAX_TP = 0.978026…/0.986614… = 0.991295…
        // 45: position -0.5 → 0.848284/0.986614 = 0.859793… (ignored: only the best counts)
        let l = labels(100, &[(40, 49)]);
        let t = score_file(&l, &flags(100, &[41, 45]), &Profile::STANDARD);
        let expected = (2.0 / (1.0 + (-4.5f64).exp()) - 1.0) / MAX_TP;
        assert!(close(t.raw, expected));
        assert!((t.raw - 0.991_295).abs() < 1e-6);
        assert_eq!((t.detected, t.false_positives), (1, 0));
    }

    #[test]
    fn false_positive_before_any_window_costs_the_full_fp_weight() {
        // No window before index 20: unweighted -1, weighted -1 * 0.11.
        // The window [40, 49] is missed: -1. Total -1.11.
        let l = labels(100, &[(40, 49)]);
        let t = score_file(&l, &flags(100, &[20]), &Profile::STANDARD);
        assert!(close(t.raw, -0.11 - 1.0));
        assert_eq!((t.detected, t.missed, t.false_positives), (0, 1, 1));
        // Without windows at all: exactly -fp (NAB's testOneFalsePositiveNoWindow).
        let none = labels(100, &[]);
        let t = score_file(&none, &flags(100, &[20]), &Profile::STANDARD);
        assert!(close(t.raw, -0.11));
    }

    #[test]
    fn false_positive_just_after_a_window_costs_little() {
        // Window [40, 49] detected at 40 (+1). FP at 50:
        // position = |49 - 50| / (10 - 1) = 1/9,
        // scaled_sigmoid(1/9) = 2/(1+e^(5/9)) - 1 = -0.270847…, × 0.11 = -0.0297932…
        // Total 1 - 0.0297932 = 0.9702068…
        let l = labels(100, &[(40, 49)]);
        let t = score_file(&l, &flags(100, &[40, 50]), &Profile::STANDARD);
        let fp = (2.0 / (1.0 + (5.0f64 / 9.0).exp()) - 1.0) * 0.11;
        assert!((fp + 0.029_793_2).abs() < 1e-6);
        assert!(close(t.raw, 1.0 + fp));
        assert_eq!((t.detected, t.false_positives), (1, 1));
    }

    #[test]
    fn false_positive_more_than_three_widths_after_costs_the_full_fp_weight() {
        // Window [40, 49]; FP at 90: position = 41/9 = 4.56 > 3 → -1, × 0.11.
        // The window is missed (-1). Total -1.11.
        let l = labels(100, &[(40, 49)]);
        let t = score_file(&l, &flags(100, &[90]), &Profile::STANDARD);
        assert!(close(t.raw, -1.11));
        // At exactly 3 widths (index 49 + 27 = 76): position 3 is not > 3,
        // 2/(1+e^15) - 1 = -0.99999939…, almost the full cost.
        let t = score_file(&l, &flags(100, &[76]), &Profile::STANDARD);
        let expected = -1.0 + (2.0 / (1.0 + 15f64.exp()) - 1.0) * 0.11;
        assert!(close(t.raw, expected));
        assert!(t.raw > -1.11);
    }

    #[test]
    fn a_later_false_positive_is_measured_from_the_nearest_preceding_window() {
        // Windows [20, 29] and [60, 69]; FP at 72 is 3 after the second:
        // position 3/9 → 2/(1+e^(5/3)) - 1 = -0.682262…, × 0.11 = -0.0750488…
        // Both windows missed: -2.
        let l = labels(100, &[(20, 29), (60, 69)]);
        let t = score_file(&l, &flags(100, &[72]), &Profile::STANDARD);
        let fp = (2.0 / (1.0 + (5.0f64 / 3.0).exp()) - 1.0) * 0.11;
        assert!(close(t.raw, -2.0 + fp));
        assert!((fp + 0.075_048_8).abs() < 1e-6);
    }

    #[test]
    fn probation_ignores_detections() {
        // 100 points: probation 15 (indices 0..=14). A detection at 14 is
        // ignored (would be an FP of -0.11); one at 15 counts.
        let l = labels(100, &[(40, 49)]);
        let t = score_file(&l, &flags(100, &[0, 14]), &Profile::STANDARD);
        assert!(close(t.raw, -1.0));
        assert_eq!(t.false_positives, 0);
        let t = score_file(&l, &flags(100, &[15]), &Profile::STANDARD);
        assert!(close(t.raw, -1.11));
    }

    #[test]
    fn a_window_inside_the_probation_is_not_scored() {
        // Window [2, 8] lies in the probation (15 points): NAB drops it
        // from the file's score parts, so it is neither missed nor detected.
        let l = labels(100, &[(2, 8), (40, 49)]);
        let t = score_file(&l, &flags(100, &[3]), &Profile::STANDARD);
        assert!(close(t.raw, -1.0));
        assert_eq!((t.detected, t.missed), (0, 1));
        // ... but it still counts as a window in the perfect score.
        let (null, perfect) = null_and_perfect([&l], &Profile::STANDARD);
        assert!(close(null, -1.0));
        assert!(close(perfect, 2.0));
    }

    #[test]
    fn missed_window_costs_fn_under_each_profile() {
        let l = labels(100, &[(40, 49)]);
        let none = vec![false; 100];
        assert!(close(score_file(&l, &none, &Profile::STANDARD).raw, -1.0));
        assert!(close(
            score_file(&l, &none, &Profile::REWARD_LOW_FP).raw,
            -1.0
        ));
        assert!(close(
            score_file(&l, &none, &Profile::REWARD_LOW_FN).raw,
            -2.0
        ));
        // A false positive far from windows under low-FP costs 0.22.
        let t = score_file(&l, &flags(100, &[20]), &Profile::REWARD_LOW_FP);
        assert!(close(t.raw, -1.22));
    }

    #[test]
    fn nab_test_scoring_all_metrics() {
        // NAB's tests/integration/scorer_test.py testScoringAllMetrics: 100
        // points, no probation there (we have 15, windows are later), fp
        // weight 1, windows [30, 34] and [65, 69], detections at 30, 31, 37.
        // 30 → +1 (31 ignored); 65..69 missed → -1; 37: position 3/4,
        // 2/(1+e^3.75) - 1 = -0.954045 → total -0.9540 (NAB asserts -0.9540).
        let l = labels(100, &[(30, 34), (65, 69)]);
        let profile = Profile {
            name: "nab-test",
            tp: 1.0,
            fp: 1.0,
            fn_: 1.0,
        };
        let t = score_file(&l, &flags(100, &[30, 31, 37]), &profile);
        assert!((t.raw - (-0.9540)).abs() < 5e-5, "{}", t.raw);
        assert_eq!((t.detected, t.missed, t.false_positives), (1, 1, 1));
    }

    #[test]
    fn normalisation_of_null_and_perfect() {
        // Two files, three windows; standard profile: null = -3, perfect = 3.
        let a = labels(100, &[(20, 29), (60, 69)]);
        let b = labels(200, &[(100, 119)]);
        let none_a = vec![false; 100];
        let none_b = vec![false; 200];
        let null = score_corpus(&[(&a, &none_a), (&b, &none_b)], &Profile::STANDARD);
        assert!(close(null.tally.raw, -3.0));
        assert!(close(null.normalised, 0.0));
        // Perfect: every window's first point.
        let pa = flags(100, &[20, 60]);
        let pb = flags(200, &[100]);
        let perfect = score_corpus(&[(&a, &pa), (&b, &pb)], &Profile::STANDARD);
        assert!(close(perfect.tally.raw, 3.0));
        assert!(close(perfect.normalised, 100.0));
        // One of three windows found at its first point, nothing else:
        // raw = 1 - 2 = -1 → 100 * (-1 + 3) / (3 + 3) = 33.33…
        let first = flags(100, &[20]);
        let one = score_corpus(&[(&a, &first), (&b, &none_b)], &Profile::STANDARD);
        assert!(close(one.normalised, 100.0 / 3.0));
        // Low-FN: null = -6, perfect = 3; same detections: 1 - 4 = -3 → 100*3/9.
        let one = score_corpus(&[(&a, &first), (&b, &none_b)], &Profile::REWARD_LOW_FN);
        assert!(close(one.normalised, 100.0 / 3.0));
    }

    #[test]
    fn normalising_a_corpus_without_windows_is_undefined() {
        let l = labels(100, &[]);
        let d = vec![false; 100];
        assert!(
            score_corpus(&[(&l, &d)], &Profile::STANDARD)
                .normalised
                .is_nan()
        );
    }

    #[test]
    fn sweep_picks_the_best_threshold() {
        // 100 points, window [40, 49]. Scores: 0.9 at 20 (FP before any
        // window, -0.11), 0.8 at 42 (TP, position -0.8), 0.5 at 70 (FP
        // 21/9 = 2.33 widths after: 2/(1+e^11.67)-1 ≈ -0.99998, × 0.11),
        // 0.3 everywhere else. Thresholds tried:
        //   none → -1 (window missed)
        //   0.9  → -1 - 0.11 = -1.11
        //   0.8  → -0.11 + sig(-0.8)/MAX_TP = -0.11 + 0.964028/0.986614 = 0.867107…
        //   0.5  → 0.867107 - 0.109998 = 0.757109…
        //   0.3  → every point: window best is its first point (+1), many FPs.
        // Best: 0.8.
        let l = labels(100, &[(40, 49)]);
        let mut scores = vec![0.3; 100];
        scores[20] = 0.9;
        scores[42] = 0.8;
        scores[70] = 0.5;
        let choice = optimise_threshold(&[(&l, &scores)], &Profile::STANDARD);
        assert_eq!(choice.threshold, Some(0.8));
        let expected = -0.11 + (2.0 / (1.0 + (-4.0f64).exp()) - 1.0) / MAX_TP;
        assert!(close(choice.score.tally.raw, expected));
        assert!((choice.score.tally.raw - 0.867_106_84).abs() < 1e-6);
        assert_eq!(
            (
                choice.score.tally.detected,
                choice.score.tally.missed,
                choice.score.tally.false_positives
            ),
            (1, 0, 1)
        );
        // normalised: 100 * (0.867107 + 1) / (1 + 1) = 93.355…
        assert!(close(
            choice.score.normalised,
            100.0 * (expected + 1.0) / 2.0
        ));
        // The sweep agrees with scoring the cut detections directly.
        let direct = score_corpus(
            &[(&l, &detections_at(&scores, choice.threshold))],
            &Profile::STANDARD,
        );
        assert!(close(direct.tally.raw, choice.score.tally.raw));
    }

    #[test]
    fn sweep_prefers_detecting_nothing_when_everything_costs() {
        // No windows: any detection only costs; the best is "none", score 0 raw.
        let l = labels(100, &[]);
        let scores: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let choice = optimise_threshold(&[(&l, &scores)], &Profile::STANDARD);
        assert_eq!(choice.threshold, None);
        assert_eq!(choice.score.tally.raw, 0.0);
    }

    #[test]
    fn sweep_never_detects_nan_and_keeps_the_highest_threshold_on_ties() {
        // Window [40, 49]; NaN everywhere but 41 (0.7) and 45 (0.6). At 0.6
        // the window's best is still 41's: same score as at 0.7, and the
        // higher threshold is kept like NAB's stable sort does.
        let l = labels(100, &[(40, 49)]);
        let mut scores = vec![f64::NAN; 100];
        scores[41] = 0.7;
        scores[45] = 0.6;
        let choice = optimise_threshold(&[(&l, &scores)], &Profile::STANDARD);
        assert_eq!(choice.threshold, Some(0.7));
        assert_eq!(choice.score.tally.false_positives, 0);
    }

    #[test]
    fn sweep_matches_brute_force_over_every_threshold() {
        // A pseudo-random two-file case: for each candidate threshold the
        // direct scoring must give the same raw score as the sweep's best.
        let a = labels(300, &[(60, 89), (200, 229)]);
        let b = labels(150, &[(100, 119)]);
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % 50) as f64 / 10.0
        };
        let sa: Vec<f64> = (0..300).map(|_| next()).collect();
        let sb: Vec<f64> = (0..150).map(|_| next()).collect();
        let choice = optimise_threshold(&[(&a, &sa), (&b, &sb)], &Profile::STANDARD);
        let mut thresholds: Vec<Option<f64>> = sa.iter().chain(&sb).map(|s| Some(*s)).collect();
        thresholds.push(None);
        let best = thresholds
            .iter()
            .map(|t| {
                score_corpus(
                    &[(&a, &detections_at(&sa, *t)), (&b, &detections_at(&sb, *t))],
                    &Profile::STANDARD,
                )
                .tally
                .raw
            })
            .fold(f64::NEG_INFINITY, f64::max);
        assert!((best - choice.score.tally.raw).abs() < 1e-9);
    }

    #[test]
    fn agrees_with_nab_sweeper_py() {
        // Expected values printed by numenta/NAB's nab/sweeper.py (run
        // unmodified, Python 3) on: 200 points, probation 0.15, windows
        // [50, 69], [120, 129], [180, 199], scores ((i * 37) mod 101) / 100;
        // optimizer best = max over calcScoreByThreshold, and scoreDataSet
        // at threshold 0.5.
        let l = labels(200, &[(50, 69), (120, 129), (180, 199)]);
        let scores: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64 / 100.0).collect();
        for (profile, best, at_half) in [
            (Profile::STANDARD, 2.2954319776144847, -3.203649907826862),
            (
                Profile::REWARD_LOW_FP,
                1.9107902797663017,
                -9.403479407834865,
            ),
        ] {
            let choice = optimise_threshold(&[(&l, &scores)], &profile);
            assert_eq!(choice.threshold, Some(0.97));
            assert!((choice.score.tally.raw - best).abs() < 1e-12);
            let half = score_file(&l, &detections_at(&scores, Some(0.5)), &profile);
            assert!((half.raw - at_half).abs() < 1e-12);
        }
    }

    #[test]
    fn labels_reject_bad_windows() {
        let w = |left, right| Window { left, right };
        assert_eq!(
            Labels::new(10, vec![w(5, 4)]),
            Err(LabelError::Reversed { left: 5, right: 4 })
        );
        assert_eq!(
            Labels::new(10, vec![w(5, 10)]),
            Err(LabelError::OutOfRange { right: 10, len: 10 })
        );
        assert_eq!(
            Labels::new(10, vec![w(2, 5), w(5, 7)]),
            Err(LabelError::Overlapping {
                previous_right: 5,
                left: 5
            })
        );
    }

    #[test]
    fn one_point_window_makes_following_false_positives_far() {
        // NAB would divide by zero (width - 1 = 0); we cost them fully.
        let l = labels(100, &[(40, 40)]);
        let t = score_file(&l, &flags(100, &[40, 41]), &Profile::STANDARD);
        assert!(close(t.raw, 1.0 - 0.11));
    }
}
