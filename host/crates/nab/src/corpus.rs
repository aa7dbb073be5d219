//! A labelled corpus on disk (NAB's layout: CSV files of `timestamp,value`
//! and a `labels.json` of windows by timestamps), a detector's output for
//! one file, and a detector's evaluation over the corpus.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::score::{
    CorpusScore, LabelError, Labels, Profile, Tally, ThresholdChoice, Window, optimise_threshold,
    score_corpus, score_file,
};

/// Name of the labels file in a corpus directory (NAB's
/// `labels/combined_windows.json` format).
pub const LABELS_FILE: &str = "labels.json";

/// Why a corpus could not be loaded.
#[derive(Debug)]
pub enum CorpusError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    LabelsJson(serde_json::Error),
    Csv {
        file: String,
        line: usize,
        reason: String,
    },
    /// A window's timestamp is not one of the file's.
    UnknownTimestamp {
        file: String,
        timestamp: String,
    },
    DuplicateTimestamp {
        file: String,
        timestamp: String,
    },
    Window {
        file: String,
        source: LabelError,
    },
}

impl fmt::Display for CorpusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorpusError::Read { path, .. } => write!(f, "reading {}", path.display()),
            CorpusError::LabelsJson(_) => write!(
                f,
                "{LABELS_FILE} is not an object of file name to [[start, end], ...] timestamps"
            ),
            CorpusError::Csv { file, line, reason } => write!(f, "{file}:{line}: {reason}"),
            CorpusError::UnknownTimestamp { file, timestamp } => write!(
                f,
                "{file}: window timestamp `{timestamp}` is not a row of the file"
            ),
            CorpusError::DuplicateTimestamp { file, timestamp } => {
                write!(f, "{file}: timestamp `{timestamp}` appears twice")
            }
            CorpusError::Window { file, .. } => write!(f, "{file}: bad window"),
        }
    }
}

impl std::error::Error for CorpusError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CorpusError::Read { source, .. } => Some(source),
            CorpusError::LabelsJson(e) => Some(e),
            CorpusError::Window { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One labelled series.
#[derive(Clone, Debug, PartialEq)]
pub struct CorpusFile {
    /// File name inside the corpus directory, the key in `labels.json`.
    pub name: String,
    /// As written in the file: detectors must echo them exactly.
    pub timestamps: Vec<String>,
    pub values: Vec<f64>,
    pub labels: Labels,
}

impl CorpusFile {
    /// A file from its CSV text and its windows as `[start, end]`
    /// timestamps (inclusive).
    pub fn parse(
        name: &str,
        csv: &str,
        windows: &[[String; 2]],
    ) -> Result<CorpusFile, CorpusError> {
        let (timestamps, values) =
            parse_series_csv(csv).map_err(|(line, reason)| CorpusError::Csv {
                file: name.to_string(),
                line,
                reason,
            })?;
        let mut index = HashMap::with_capacity(timestamps.len());
        for (i, t) in timestamps.iter().enumerate() {
            if index.insert(t.as_str(), i).is_some() {
                return Err(CorpusError::DuplicateTimestamp {
                    file: name.to_string(),
                    timestamp: t.clone(),
                });
            }
        }
        let find = |t: &String| {
            index
                .get(t.as_str())
                .copied()
                .ok_or_else(|| CorpusError::UnknownTimestamp {
                    file: name.to_string(),
                    timestamp: t.clone(),
                })
        };
        let mut parsed = Vec::with_capacity(windows.len());
        for [start, end] in windows {
            parsed.push(Window {
                left: find(start)?,
                right: find(end)?,
            });
        }
        let labels =
            Labels::new(timestamps.len(), parsed).map_err(|source| CorpusError::Window {
                file: name.to_string(),
                source,
            })?;
        Ok(CorpusFile {
            name: name.to_string(),
            timestamps,
            values,
            labels,
        })
    }
}

/// A labelled corpus: every file listed in `labels.json`, in name order.
#[derive(Clone, Debug, PartialEq)]
pub struct Corpus {
    pub files: Vec<CorpusFile>,
}

impl Corpus {
    /// Reads `dir/labels.json` and each CSV file it names.
    pub fn load(dir: &Path) -> Result<Corpus, CorpusError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| CorpusError::Read { path, source })
        };
        let windows = parse_labels_json(&read(dir.join(LABELS_FILE))?)?;
        let mut files = Vec::with_capacity(windows.len());
        for (name, windows) in &windows {
            files.push(CorpusFile::parse(name, &read(dir.join(name))?, windows)?);
        }
        Ok(Corpus { files })
    }

    /// Points in the whole corpus.
    pub fn points(&self) -> usize {
        self.files.iter().map(|f| f.timestamps.len()).sum()
    }

    /// Labelled windows in the whole corpus.
    pub fn windows(&self) -> usize {
        self.files.iter().map(|f| f.labels.windows().len()).sum()
    }
}

/// `{"file.csv": [["start", "end"], ...]}`, sorted by file name.
pub fn parse_labels_json(text: &str) -> Result<BTreeMap<String, Vec<[String; 2]>>, CorpusError> {
    serde_json::from_str(text).map_err(CorpusError::LabelsJson)
}

/// Timestamps (verbatim) and values of a `timestamp,value` CSV; the header
/// is optional. Errors carry the 1-based line.
pub fn parse_series_csv(text: &str) -> Result<(Vec<String>, Vec<f64>), (usize, String)> {
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || (n == 0 && line == "timestamp,value") {
            continue;
        }
        let (t, v) = line
            .split_once(',')
            .ok_or_else(|| (n + 1, "expected `timestamp,value`".to_string()))?;
        let v: f64 = v
            .trim()
            .parse()
            .map_err(|_| (n + 1, format!("value `{v}` is not a number")))?;
        timestamps.push(t.to_string());
        values.push(v);
    }
    Ok((timestamps, values))
}

/// Why a detector's output for a file cannot be scored.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputError {
    /// The first line is not `timestamp,value,score,anomaly`.
    Header(String),
    Row {
        line: usize,
        reason: String,
    },
    /// Rows must echo the input's timestamps in order.
    TimestampMismatch {
        line: usize,
        expected: String,
        found: String,
    },
    RowCount {
        expected: usize,
        found: usize,
    },
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::Header(h) => write!(
                f,
                "expected the header `{DETECTOR_OUTPUT_HEADER}`, found `{h}`"
            ),
            OutputError::Row { line, reason } => write!(f, "line {line}: {reason}"),
            OutputError::TimestampMismatch {
                line,
                expected,
                found,
            } => write!(
                f,
                "line {line}: timestamp `{found}` where the input has `{expected}`"
            ),
            OutputError::RowCount { expected, found } => {
                write!(f, "{found} rows for an input of {expected}")
            }
        }
    }
}

impl std::error::Error for OutputError {}

/// First line of `lookout detect`'s CSV output.
pub const DETECTOR_OUTPUT_HEADER: &str = "timestamp,value,score,anomaly";

/// A detector's per-point output for one file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DetectorOutput {
    /// Higher is more anomalous; NaN while the detector warms up.
    pub scores: Vec<f64>,
    /// The detector's own verdicts at its configured sensitivity.
    pub anomalies: Vec<bool>,
}

/// Parses `lookout detect`'s CSV (`timestamp,value,score,anomaly`, one row
/// per input row) and checks it echoes `timestamps`, the input's, in order.
pub fn parse_detector_output(
    text: &str,
    timestamps: &[String],
) -> Result<DetectorOutput, OutputError> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let header = lines.next().unwrap_or_default();
    if header != DETECTOR_OUTPUT_HEADER {
        return Err(OutputError::Header(header.to_string()));
    }
    let mut out = DetectorOutput {
        scores: Vec::with_capacity(timestamps.len()),
        anomalies: Vec::with_capacity(timestamps.len()),
    };
    for (n, line) in lines.enumerate() {
        let line_no = n + 2;
        if line.is_empty() {
            continue;
        }
        let row_error = |reason: String| OutputError::Row {
            line: line_no,
            reason,
        };
        let fields: Vec<&str> = line.split(',').collect();
        let [timestamp, _value, score, anomaly] = fields[..] else {
            return Err(row_error(format!("{} fields, expected 4", fields.len())));
        };
        let row = out.scores.len();
        match timestamps.get(row) {
            Some(expected) if expected == timestamp => {}
            Some(expected) => {
                return Err(OutputError::TimestampMismatch {
                    line: line_no,
                    expected: expected.clone(),
                    found: timestamp.to_string(),
                });
            }
            None => {
                return Err(OutputError::RowCount {
                    expected: timestamps.len(),
                    found: text
                        .lines()
                        .skip(1)
                        .filter(|l| !l.trim().is_empty())
                        .count(),
                });
            }
        }
        // Rust's parser takes `NaN`, `inf` and `-inf` as written by the CLI.
        let score: f64 = score
            .parse()
            .map_err(|_| row_error(format!("score `{score}` is not a number")))?;
        let anomaly = match anomaly {
            "0" => false,
            "1" => true,
            other => return Err(row_error(format!("anomaly `{other}` is not 0 or 1"))),
        };
        out.scores.push(score);
        out.anomalies.push(anomaly);
    }
    if out.scores.len() != timestamps.len() {
        return Err(OutputError::RowCount {
            expected: timestamps.len(),
            found: out.scores.len(),
        });
    }
    Ok(out)
}

/// A detector scored on a corpus the ways `cargo xtask eval-detectors`
/// reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The detector's own verdicts, per profile in [`Profile::ALL`] order.
    pub verdicts: [CorpusScore; 3],
    /// Standard profile, threshold on the scores chosen by NAB's optimiser.
    pub best: ThresholdChoice,
    /// Standard profile, own verdicts, per file in corpus order.
    pub per_file: Vec<Tally>,
}

impl Evaluation {
    pub fn standard(&self) -> &CorpusScore {
        &self.verdicts[0]
    }
}

/// Scores one detector's outputs (one per corpus file, in corpus order).
///
/// # Panics
/// When `outputs` does not match the corpus file for file and row for row
/// ([`parse_detector_output`] checks the rows).
pub fn evaluate(corpus: &Corpus, outputs: &[DetectorOutput]) -> Evaluation {
    assert_eq!(
        outputs.len(),
        corpus.files.len(),
        "one output per corpus file"
    );
    let verdicts: Vec<(&Labels, &[bool])> = corpus
        .files
        .iter()
        .zip(outputs)
        .map(|(f, o)| (&f.labels, o.anomalies.as_slice()))
        .collect();
    let scores: Vec<(&Labels, &[f64])> = corpus
        .files
        .iter()
        .zip(outputs)
        .map(|(f, o)| (&f.labels, o.scores.as_slice()))
        .collect();
    Evaluation {
        verdicts: Profile::ALL.map(|p| score_corpus(&verdicts, &p)),
        best: optimise_threshold(&scores, &Profile::STANDARD),
        per_file: verdicts
            .iter()
            .map(|(l, d)| score_file(l, d, &Profile::STANDARD))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(i: usize) -> String {
        format!("2026-01-01 {:02}:{:02}:00", i / 12, (i % 12) * 5)
    }

    /// A 100-point file with one window [40, 49].
    fn file() -> CorpusFile {
        let mut csv = String::from("timestamp,value\n");
        for i in 0..100 {
            csv.push_str(&format!("{},{}.5\n", ts(i), i));
        }
        CorpusFile::parse("a.csv", &csv, &[[ts(40), ts(49)]]).unwrap()
    }

    fn output_csv(scores: &[(usize, &str, &str)], len: usize) -> String {
        let mut out = String::from("timestamp,value,score,anomaly\n");
        for i in 0..len {
            let (s, a) = scores
                .iter()
                .find(|(at, _, _)| *at == i)
                .map(|(_, s, a)| (*s, *a))
                .unwrap_or(("NaN", "0"));
            out.push_str(&format!("{},{}.5,{s},{a}\n", ts(i), i));
        }
        out
    }

    #[test]
    fn windows_map_timestamps_to_inclusive_indices() {
        let f = file();
        assert_eq!(
            f.labels.windows(),
            &[Window {
                left: 40,
                right: 49
            }]
        );
        assert_eq!(f.timestamps[0], "2026-01-01 00:00:00");
        assert_eq!(f.values[99], 99.5);
    }

    #[test]
    fn series_csv_header_is_optional_and_errors_name_the_line() {
        let (t, v) =
            parse_series_csv("2026-01-01 00:00:00,1\r\n2026-01-01 00:05:00,2.5\n").unwrap();
        assert_eq!(t, ["2026-01-01 00:00:00", "2026-01-01 00:05:00"]);
        assert_eq!(v, [1.0, 2.5]);
        assert_eq!(
            parse_series_csv("timestamp,value\nx,1\ny,oops\n")
                .unwrap_err()
                .0,
            3
        );
    }

    #[test]
    fn window_timestamps_must_be_rows() {
        let csv = format!("{},1\n{},2\n", ts(0), ts(1));
        let err = CorpusFile::parse("b.csv", &csv, &[[ts(0), ts(7)]]).unwrap_err();
        assert!(
            matches!(err, CorpusError::UnknownTimestamp { ref timestamp, .. } if *timestamp == ts(7))
        );
        let err = CorpusFile::parse("b.csv", &csv, &[[ts(1), ts(0)]]).unwrap_err();
        assert!(matches!(err, CorpusError::Window { .. }));
    }

    #[test]
    fn labels_json_is_nab_combined_windows() {
        let l = parse_labels_json(r#"{"b.csv": [], "a.csv": [["x", "y"]]}"#).unwrap();
        assert_eq!(l.keys().collect::<Vec<_>>(), ["a.csv", "b.csv"]);
        assert_eq!(l["a.csv"], [["x".to_string(), "y".to_string()]]);
        assert!(parse_labels_json(r#"{"a.csv": [["x"]]}"#).is_err());
    }

    #[test]
    fn detector_output_parses_nan_scores_and_verdicts() {
        let f = file();
        let out = parse_detector_output(
            &output_csv(&[(40, "3.5", "1"), (41, "0.25", "0")], 100),
            &f.timestamps,
        )
        .unwrap();
        assert!(out.scores[0].is_nan());
        assert_eq!(out.scores[40], 3.5);
        assert!(out.anomalies[40] && !out.anomalies[41]);
        assert_eq!(out.anomalies.iter().filter(|a| **a).count(), 1);
    }

    #[test]
    fn detector_output_must_echo_the_input() {
        let f = file();
        let good = output_csv(&[], 100);
        // Header.
        let err =
            parse_detector_output(&good.replacen("score", "s", 1), &f.timestamps).unwrap_err();
        assert!(matches!(err, OutputError::Header(_)));
        // A timestamp reformatted by the detector.
        let bad = good.replacen("2026-01-01 00:05:00", "2026-01-01T00:05:00Z", 1);
        assert_eq!(
            parse_detector_output(&bad, &f.timestamps).unwrap_err(),
            OutputError::TimestampMismatch {
                line: 3,
                expected: ts(1),
                found: "2026-01-01T00:05:00Z".into()
            }
        );
        // Too few rows.
        let short: String = good.lines().take(50).map(|l| format!("{l}\n")).collect();
        assert_eq!(
            parse_detector_output(&short, &f.timestamps).unwrap_err(),
            OutputError::RowCount {
                expected: 100,
                found: 49
            }
        );
        // Too many rows.
        let long = format!("{good}2026-01-02 00:00:00,1,0,0\n");
        assert!(matches!(
            parse_detector_output(&long, &f.timestamps).unwrap_err(),
            OutputError::RowCount {
                expected: 100,
                found: 101
            }
        ));
        // Verdicts other than 0/1.
        let bad = good.replacen(",NaN,0\n", ",NaN,yes\n", 1);
        assert!(matches!(
            parse_detector_output(&bad, &f.timestamps).unwrap_err(),
            OutputError::Row { line: 2, .. }
        ));
    }

    #[test]
    fn evaluation_scores_verdicts_and_sweeps_scores() {
        // Verdict at 45 (TP, position -0.5), score ranking puts 40 first:
        // own verdicts: 0.859793 → standard normalised 100*(0.859793+1)/2;
        // sweep: threshold 9 at index 40 → +1 → 100.
        let corpus = Corpus {
            files: vec![file()],
        };
        let out = parse_detector_output(
            &output_csv(&[(40, "9", "0"), (45, "5", "1"), (20, "1", "0")], 100),
            &corpus.files[0].timestamps,
        )
        .unwrap();
        let e = evaluate(&corpus, &[out]);
        let tp = 0.859_792_566_909_783_7;
        assert!((e.standard().tally.raw - tp).abs() < 1e-9);
        assert!((e.standard().normalised - 100.0 * (tp + 1.0) / 2.0).abs() < 1e-9);
        // Low-FN: null -2, perfect 1: 100 * (0.859793 + 2) / 3.
        assert!((e.verdicts[2].normalised - 100.0 * (tp + 2.0) / 3.0).abs() < 1e-9);
        assert_eq!(e.best.threshold, Some(9.0));
        assert!((e.best.score.normalised - 100.0).abs() < 1e-9);
        assert_eq!(e.per_file.len(), 1);
        assert_eq!(e.per_file[0].detected, 1);
    }
}
