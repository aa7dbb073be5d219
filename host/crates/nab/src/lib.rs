//! The Numenta Anomaly Benchmark's scoring, and lookout's labelled anomaly
//! corpus, for judging detector plugins the way published detectors are
//! judged (NAB standard profile: windowed Gaussian 39.6, Twitter ADVec
//! 47.1, Random Cut Forest 51.7, Numenta HTM about 70).
//!
//! - [`score`]: NAB's method exactly (`nab/sweeper.py`, `optimizer.py`,
//!   `runner.py` of numenta/NAB). Each labelled anomaly has a *window* of
//!   points; a window's earliest detection earns up to `tp` on a scaled
//!   sigmoid (earlier is better), a missed window costs `fn`, a detection
//!   outside windows costs up to `fp` (less when just after a window), the
//!   first 15 % of each file (at most 750 points) is probation and not
//!   scored, and a corpus' total is normalised so that a detector that
//!   never fires scores 0 and one that flags every window at its first
//!   point scores 100. [`score::optimise_threshold`] finds the score
//!   threshold a detector would need to do its best, as NAB's optimiser.
//! - [`corpus`]: a corpus directory (CSV files and NAB's `labels.json`),
//!   `lookout detect`'s CSV output, and a detector's [`corpus::evaluate`].
//! - [`generator`]: the corpus committed in `tests/fixtures/anomaly-corpus/`,
//!   generated deterministically.
//!
//! Everything is I/O free except [`corpus::Corpus::load`] and
//! [`generator::write_corpus`].
//!
//! ```
//! use lookout_nab::score::{Labels, Profile, Window, score_corpus};
//!
//! // 100 points, one anomaly window over points 40..=49.
//! let labels = Labels::new(100, vec![Window { left: 40, right: 49 }]).unwrap();
//! let mut detections = vec![false; 100];
//! detections[40] = true; // at the window's first point: worth tp = 1
//! detections[20] = true; // before any window: costs fp = 0.11
//! let s = score_corpus(&[(&labels, &detections)], &Profile::STANDARD);
//! assert!((s.tally.raw - 0.89).abs() < 1e-9);
//! // null detector -1, perfect +1: 100 * (0.89 + 1) / 2
//! assert!((s.normalised - 94.5).abs() < 1e-9);
//! ```

pub mod corpus;
pub mod generator;
pub mod score;

pub use corpus::{Corpus, CorpusFile, DetectorOutput, Evaluation, evaluate, parse_detector_output};
pub use score::{CorpusScore, Labels, Profile, Tally, ThresholdChoice, Window};
