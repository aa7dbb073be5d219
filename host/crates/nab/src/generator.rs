//! lookout's labelled anomaly corpus, generated deterministically: twelve
//! series of 4,000 points at a 5-minute step (2026-01-01 00:00:00 UTC
//! onwards, about 14 days, so daily and weekly cycles exist), each with
//! 0–4 known anomalies, labelled with NAB's windows.
//!
//! The committed copy lives in `tests/fixtures/anomaly-corpus/`; a test
//! checks that [`generate`] reproduces it byte for byte. Regenerate with
//! `cargo run -p lookout-nab --example generate-corpus` after changing this
//! file.

use std::collections::BTreeMap;
use std::f64::consts::TAU;
use std::fmt::Write as _;
use std::path::Path;

/// Points per file.
pub const POINTS: usize = 4000;
/// Seconds between points (NAB's real-world files are mostly 5-minute).
pub const STEP_SECONDS: i64 = 300;
/// 2026-01-01 00:00:00 UTC, a Thursday.
pub const START_UNIX: i64 = 1_767_225_600;
/// Share of a file covered by its windows together (NAB's labeler: 10 %).
pub const WINDOW_FRACTION: f64 = 0.10;

const DAY_SECONDS: i64 = 86_400;
/// Day of the week of `START_UNIX`, Monday = 0.
const START_WEEKDAY: i64 = 3;

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, good enough for test
/// data, and identical on every platform.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal, Box-Muller (one of the pair; simple and stateless).
    fn gaussian(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
    }
}

/// Seconds since the start of the file.
fn elapsed(i: usize) -> i64 {
    i as i64 * STEP_SECONDS
}

/// Time of day of point `i` as a fraction of a day.
fn day_phase(i: usize) -> f64 {
    (elapsed(i) % DAY_SECONDS) as f64 / DAY_SECONDS as f64
}

/// A working day's shape, about -1 (04:00) to +0.7 (mid-afternoon): a
/// daily sine with a second harmonic so the peak is broader than the
/// trough, like user traffic.
fn diurnal(phase: f64) -> f64 {
    0.8 * (TAU * (phase - 0.375)).sin() + 0.2 * (2.0 * TAU * (phase - 0.3)).sin()
}

/// Multiplier for weekends: 1 on working days, easing smoothly down to
/// 0.7 at Sunday 00:00 and back (no step at midnight to be mistaken for a
/// level shift).
fn weekly(i: usize) -> f64 {
    let days = (elapsed(i) as f64 / DAY_SECONDS as f64 + START_WEEKDAY as f64) % 7.0;
    if days < 5.0 {
        1.0
    } else {
        1.0 - 0.3 * (0.5 - 0.5 * (TAU * (days - 5.0) / 2.0).cos())
    }
}

/// Poisson-like noise for a count rate: its spread grows with the level.
fn counting_noise(rng: &mut Rng, level: f64, scale: f64) -> f64 {
    (level + scale * level.max(0.0).sqrt() * rng.gaussian()).max(0.0)
}

/// A series of the corpus, how it is built and where its anomalies are.
struct Spec {
    name: &'static str,
    seed: u64,
    /// What the series imitates, for the README.
    story: &'static str,
    /// Index of each anomaly's start and what happens there.
    anomalies: &'static [(usize, &'static str)],
    decimals: usize,
    build: fn(&mut Rng, &[usize]) -> Vec<f64>,
}

fn series(f: impl FnMut(usize) -> f64) -> Vec<f64> {
    (0..POINTS).map(f).collect()
}

const SPECS: &[Spec] = &[
    Spec {
        name: "spikes_1.csv",
        seed: 0x5EED_0001,
        story: "API latency (ms): 120 ± 25 daily cycle, noise σ 4",
        anomalies: &[
            (1350, "single-point spike +90 ms"),
            (2420, "single-point spike +40 ms"),
            (3480, "single-point spike +140 ms"),
        ],
        decimals: 1,
        build: |rng, at| {
            let extra = [90.0, 40.0, 140.0];
            series(|i| {
                let spike = at.iter().position(|a| *a == i).map_or(0.0, |k| extra[k]);
                120.0 + 25.0 * diurnal(day_phase(i)) + 4.0 * rng.gaussian() + spike
            })
        },
    },
    Spec {
        name: "spikes_2.csv",
        seed: 0x5EED_0002,
        story: "requests per second: 800 with daily and weekly cycles, Poisson-like noise",
        anomalies: &[
            (1000, "burst ×1.9 for 4 points"),
            (1900, "burst ×1.6 for 6 points"),
            (2750, "burst ×2.3 for 3 points"),
            (3600, "burst ×1.5 for 5 points"),
        ],
        decimals: 1,
        build: |rng, at| {
            let bursts = [(4, 1.9), (6, 1.6), (3, 2.3), (5, 1.5)];
            series(|i| {
                let mut level = 800.0 * (1.0 + 0.45 * diurnal(day_phase(i))) * weekly(i);
                for (start, (len, factor)) in at.iter().zip(bursts) {
                    if (*start..start + len).contains(&i) {
                        level *= factor;
                    }
                }
                counting_noise(rng, level, 1.2)
            })
        },
    },
    Spec {
        name: "level_shift_1.csv",
        seed: 0x5EED_0003,
        story: "resident memory (MiB): 2048 ± 30 daily cycle, noise σ 12",
        anomalies: &[
            (1500, "level shift up +90 MiB (a deploy with bigger caches)"),
            (3000, "level shift back down −90 MiB (rolled back)"),
        ],
        decimals: 1,
        build: |rng, at| {
            series(|i| {
                let shift = if (at[0]..at[1]).contains(&i) {
                    90.0
                } else {
                    0.0
                };
                2048.0 + 30.0 * diurnal(day_phase(i)) + 12.0 * rng.gaussian() + shift
            })
        },
    },
    Spec {
        name: "level_shift_2.csv",
        seed: 0x5EED_0004,
        story: "queue consumer throughput (msg/s): 300 with a daily cycle, Poisson-like noise",
        anomalies: &[(2100, "level shift down to 65 % and stays (a consumer lost)")],
        decimals: 1,
        build: |rng, at| {
            series(|i| {
                let lost = if i >= at[0] { 0.65 } else { 1.0 };
                counting_noise(rng, 300.0 * (1.0 + 0.3 * diurnal(day_phase(i))) * lost, 0.8)
            })
        },
    },
    Spec {
        name: "trend_change_1.csv",
        seed: 0x5EED_0005,
        story: "disk used (GiB): 400 growing 0.004 per point, small daily cycle, noise σ 0.25",
        anomalies: &[(2300, "growth becomes six times steeper (+0.02 per point)")],
        decimals: 2,
        build: |rng, at| {
            series(|i| {
                let faster = i.saturating_sub(at[0]) as f64 * 0.02;
                400.0
                    + 0.004 * i as f64
                    + faster
                    + 0.3 * diurnal(day_phase(i))
                    + 0.25 * rng.gaussian()
            })
        },
    },
    Spec {
        name: "trend_change_2.csv",
        seed: 0x5EED_0006,
        story: "rack inlet temperature (°C): 24 ± 0.8 daily cycle, noise σ 0.15",
        anomalies: &[
            (1400, "starts climbing 0.004 °C per point (cooling fault)"),
            (2700, "turns to cooling 0.004 °C per point (repaired)"),
        ],
        decimals: 2,
        build: |rng, at| {
            let rate = 0.004;
            series(|i| {
                let drift = if i < at[0] {
                    0.0
                } else if i < at[1] {
                    rate * (i - at[0]) as f64
                } else {
                    (rate * (at[1] - at[0]) as f64 - rate * (i - at[1]) as f64).max(0.0)
                };
                24.0 + 0.8 * diurnal(day_phase(i)) + drift + 0.15 * rng.gaussian()
            })
        },
    },
    Spec {
        name: "seasonality_break_1.csv",
        seed: 0x5EED_0007,
        story: "CPU utilisation (%) of a batch host: 35 ± 20 daily cycle, noise σ 2.5",
        anomalies: &[(
            2138,
            "daily cycle moves 8 hours later (jobs rescheduled); no jump at the break",
        )],
        decimals: 1,
        build: |rng, at| {
            series(|i| {
                let shift = if i >= at[0] { 8.0 / 24.0 } else { 0.0 };
                (35.0 + 20.0 * diurnal(day_phase(i) + shift) + 2.5 * rng.gaussian())
                    .clamp(0.0, 100.0)
            })
        },
    },
    Spec {
        name: "seasonality_break_2.csv",
        seed: 0x5EED_0008,
        story: "page views per minute: 500 with daily (±50 %) and weekly cycles, Poisson-like noise",
        anomalies: &[(
            2567,
            "daily swing shrinks to ±10 % (a cache flattens the load); no jump at the break",
        )],
        decimals: 1,
        build: |rng, at| {
            series(|i| {
                let swing = if i >= at[0] { 0.1 } else { 0.5 };
                counting_noise(
                    rng,
                    500.0 * (1.0 + swing * diurnal(day_phase(i))) * weekly(i),
                    1.0,
                )
            })
        },
    },
    Spec {
        name: "variance_change_1.csv",
        seed: 0x5EED_0009,
        story: "response time (ms): 45 ± 6 daily cycle, noise σ 1.5",
        anomalies: &[(
            1900,
            "noise σ quadruples to 6 and stays (a noisy neighbour)",
        )],
        decimals: 2,
        build: |rng, at| {
            series(|i| {
                let sigma = if i >= at[0] { 6.0 } else { 1.5 };
                45.0 + 6.0 * diurnal(day_phase(i)) + sigma * rng.gaussian()
            })
        },
    },
    Spec {
        name: "variance_change_2.csv",
        seed: 0x5EED_000A,
        story: "sensor reading: 50 ± 3 daily cycle, noise σ 2",
        anomalies: &[
            (1500, "noise σ drops to 0.2 (sensor stuck, over-smoothed)"),
            (1800, "noise σ back to 2 (sensor recovered)"),
            (3100, "noise σ rises to 5 and stays"),
        ],
        decimals: 2,
        build: |rng, at| {
            series(|i| {
                let sigma = if (at[0]..at[1]).contains(&i) {
                    0.2
                } else if i >= at[2] {
                    5.0
                } else {
                    2.0
                };
                50.0 + 3.0 * diurnal(day_phase(i)) + sigma * rng.gaussian()
            })
        },
    },
    Spec {
        name: "noise_1.csv",
        seed: 0x5EED_000B,
        story: "gauge: 70 ± 10 daily cycle, Gaussian noise σ 2",
        anomalies: &[],
        decimals: 2,
        build: |rng, _| series(|i| 70.0 + 10.0 * diurnal(day_phase(i)) + 2.0 * rng.gaussian()),
    },
    Spec {
        name: "noise_2.csv",
        seed: 0x5EED_000C,
        story: "request rate: 1200 with daily and weekly cycles, a slow random-walk drift and Poisson-like noise",
        anomalies: &[],
        decimals: 1,
        build: |rng, _| {
            let mut drift = 0.0;
            series(|i| {
                drift += 0.6 * rng.gaussian();
                let level = 1200.0 * (1.0 + 0.4 * diurnal(day_phase(i))) * weekly(i) + drift;
                counting_noise(rng, level, 1.0)
            })
        },
    },
];

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time; proleptic Gregorian
/// calendar (Hinnant's `civil_from_days`).
pub fn format_timestamp(unix: i64) -> String {
    let days = unix.div_euclid(DAY_SECONDS);
    let secs = unix.rem_euclid(DAY_SECONDS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Timestamp of point `i` of every corpus file.
fn timestamp(i: usize) -> String {
    format_timestamp(START_UNIX + elapsed(i))
}

/// NAB's windows (`labeler.applyWindows`): each anomaly gets
/// `int(0.10 * len / anomalies)` points centred on it, clipped to the file.
pub fn nab_windows(len: usize, anomalies: &[usize]) -> Vec<(usize, usize)> {
    if anomalies.is_empty() {
        return Vec::new();
    }
    let length = (WINDOW_FRACTION * len as f64 / anomalies.len() as f64) as usize;
    let half = length / 2;
    anomalies
        .iter()
        .map(|a| (a.saturating_sub(half), (a + half).min(len - 1)))
        .collect()
}

/// One generated file.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedFile {
    pub name: &'static str,
    /// The CSV text, header `timestamp,value`.
    pub csv: String,
    /// Inclusive `[start, end]` timestamps of each window.
    pub windows: Vec<[String; 2]>,
}

/// Values with `decimals` digits, never `-0`.
fn format_value(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.bytes().all(|b| b == b'0' || b == b'.') => rest.to_string(),
        _ => s,
    }
}

/// Every corpus file, in name order.
pub fn generate() -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = SPECS
        .iter()
        .map(|spec| {
            let at: Vec<usize> = spec.anomalies.iter().map(|(i, _)| *i).collect();
            let values = (spec.build)(&mut Rng(spec.seed), &at);
            let mut csv = String::with_capacity(POINTS * 28);
            csv.push_str("timestamp,value\n");
            for (i, v) in values.iter().enumerate() {
                let _ = writeln!(csv, "{},{}", timestamp(i), format_value(*v, spec.decimals));
            }
            let windows = nab_windows(POINTS, &at)
                .into_iter()
                .map(|(l, r)| [timestamp(l), timestamp(r)])
                .collect();
            GeneratedFile {
                name: spec.name,
                csv,
                windows,
            }
        })
        .collect();
    files.sort_by_key(|f| f.name);
    files
}

/// `labels.json`: NAB's `combined_windows.json` format, files in name order.
pub fn labels_json(files: &[GeneratedFile]) -> String {
    let map: BTreeMap<&str, &Vec<[String; 2]>> =
        files.iter().map(|f| (f.name, &f.windows)).collect();
    let mut text = serde_json::to_string_pretty(&map).expect("strings serialise");
    text.push('\n');
    text
}

/// The corpus directory's README: what each file holds and how it was made.
pub fn readme() -> String {
    let mut specs: Vec<&Spec> = SPECS.iter().collect();
    specs.sort_by_key(|s| s.name);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# lookout's labelled anomaly corpus\n\n\
         Generated by `host/crates/nab/src/generator.rs` (do not edit by hand): \
         {n} series of {POINTS} points at a {step}-minute step from {start} UTC \
         (about {days:.1} days, so daily and weekly cycles exist), each a base level, \
         a daily shape (a sine with a second harmonic; on some files a smooth \
         weekend dip too) and Gaussian noise from a seeded splitmix64 + Box-Muller \
         generator, with 0–4 injected anomalies. No anomaly is in the first 15 % \
         of a file (NAB's probation).\n\n\
         Regenerate after changing the generator with \
         `cargo run -p lookout-nab --example generate-corpus`; the test \
         `generator::tests::committed_corpus_is_reproducible` fails while the \
         committed files differ from what the generator writes.\n\n\
         `labels.json` is in NAB's `combined_windows.json` format: per file, the \
         inclusive `[start, end]` timestamps of each anomaly window. As in NAB's \
         labeler, a file's windows together cover 10 % of it (`int(0.10 × {POINTS} / \
         anomalies)` points each), centred on each anomaly's first point. Files \
         without anomalies have no windows and measure false positives only. \
         `cargo xtask eval-detectors` scores every detector plugin on this \
         corpus with NAB's method (`lookout-nab`).\n",
        n = SPECS.len(),
        step = STEP_SECONDS / 60,
        start = timestamp(0),
        days = (POINTS as i64 * STEP_SECONDS) as f64 / DAY_SECONDS as f64,
    );
    let _ = writeln!(out, "| file | series | anomalies (first point) |");
    let _ = writeln!(out, "|---|---|---|");
    for spec in specs {
        let anomalies = if spec.anomalies.is_empty() {
            "none".to_string()
        } else {
            spec.anomalies
                .iter()
                .map(|(i, what)| format!("{} (#{i}): {what}", timestamp(*i)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let _ = writeln!(out, "| `{}` | {} | {anomalies} |", spec.name, spec.story);
    }
    out
}

/// Every file of the corpus directory, by name, as the generator writes it.
pub fn corpus_files() -> Vec<(String, String)> {
    let files = generate();
    let mut out: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.name.to_string(), f.csv.clone()))
        .collect();
    out.push((crate::corpus::LABELS_FILE.to_string(), labels_json(&files)));
    out.push(("README.md".to_string(), readme()));
    out
}

/// Writes the corpus into `dir` (created if missing).
pub fn write_corpus(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in corpus_files() {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Corpus;
    use crate::score::{Profile, probation_length, score_corpus};

    fn committed_dir() -> std::path::PathBuf {
        Path::new(&manifest_dir()).join("../../../tests/fixtures/anomaly-corpus")
    }

    #[test]
    fn committed_corpus_is_reproducible() {
        let dir = committed_dir();
        for (name, text) in corpus_files() {
            let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_else(|e| {
                panic!(
                    "{}/{name}: {e}; run `cargo run -p lookout-nab --example generate-corpus`",
                    dir.display()
                )
            });
            assert!(
                committed == text,
                "{name} differs from what the generator writes; run `cargo run -p lookout-nab --example generate-corpus`"
            );
        }
        // No stale file left behind by an older generator.
        let expected: Vec<String> = corpus_files().into_iter().map(|(n, _)| n).collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(expected.contains(&name), "{name} is not generated");
        }
    }

    #[test]
    fn corpus_follows_nab_conventions() {
        let corpus = Corpus::load(&committed_dir()).unwrap();
        assert_eq!(corpus.files.len(), 12);
        assert_eq!(corpus.points(), 12 * POINTS);
        let probation = probation_length(POINTS);
        for (file, spec) in corpus.files.iter().zip({
            let mut s: Vec<&Spec> = SPECS.iter().collect();
            s.sort_by_key(|s| s.name);
            s
        }) {
            assert_eq!(file.name, spec.name);
            assert!((0..=4).contains(&spec.anomalies.len()));
            let windows = file.labels.windows();
            assert_eq!(windows.len(), spec.anomalies.len());
            for (w, (at, _)) in windows.iter().zip(spec.anomalies) {
                // Centred on the anomaly, after the probation, 10 % of the
                // file shared between the windows.
                assert_eq!(at - w.left, w.right - at, "{}", file.name);
                assert!(w.left >= probation, "{} window in probation", file.name);
                let width = (400 / spec.anomalies.len()) / 2 * 2 + 1;
                assert_eq!(w.width(), width, "{}", file.name);
            }
            assert!(file.values.iter().all(|v| v.is_finite()));
        }
        // Both kinds of files exist: with and without anomalies.
        assert!(corpus.files.iter().any(|f| f.labels.windows().is_empty()));
        assert_eq!(corpus.windows(), 3 + 4 + 2 + 1 + 1 + 2 + 1 + 1 + 1 + 3);
        // Perfect detections (each window's first point) score 100, none 0.
        let perfect: Vec<Vec<bool>> = corpus
            .files
            .iter()
            .map(|f| {
                let mut d = vec![false; f.timestamps.len()];
                for w in f.labels.windows() {
                    d[w.left] = true;
                }
                d
            })
            .collect();
        let files: Vec<_> = corpus
            .files
            .iter()
            .zip(&perfect)
            .map(|(f, d)| (&f.labels, d.as_slice()))
            .collect();
        assert!((score_corpus(&files, &Profile::STANDARD).normalised - 100.0).abs() < 1e-9);
        let none = vec![false; POINTS];
        let files: Vec<_> = corpus
            .files
            .iter()
            .map(|f| (&f.labels, none.as_slice()))
            .collect();
        assert_eq!(score_corpus(&files, &Profile::STANDARD).normalised, 0.0);
    }

    #[test]
    fn corpus_fits_the_size_budget() {
        let bytes: usize = corpus_files().iter().map(|(_, t)| t.len()).sum();
        assert!(bytes < 1_500_000, "{bytes} bytes");
    }

    #[test]
    fn injected_anomalies_are_visible_in_the_values() {
        // Guards the builders against an anomaly silently not being applied.
        let files = generate();
        let values = |name: &str| -> Vec<f64> {
            let f = files.iter().find(|f| f.name == name).unwrap();
            crate::corpus::parse_series_csv(&f.csv).unwrap().1
        };
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let sd = |v: &[f64]| {
            let m = mean(v);
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
        };
        let spikes = values("spikes_1.csv");
        assert!(spikes[1350] - spikes[1349] > 60.0);
        let shift = values("level_shift_1.csv");
        assert!(mean(&shift[1500..3000]) - mean(&shift[..1500]) > 80.0);
        let lost = values("level_shift_2.csv");
        assert!(mean(&lost[2100..]) < 0.75 * mean(&lost[..2100]));
        let var = values("variance_change_1.csv");
        // Differences remove the daily cycle; their spread grows ×4.
        let diffs = |v: &[f64]| v.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>();
        assert!(sd(&diffs(&var[1900..])) > 3.0 * sd(&diffs(&var[..1900])));
        let stuck = values("variance_change_2.csv");
        assert!(sd(&diffs(&stuck[1500..1800])) < 0.2 * sd(&diffs(&stuck[..1500])));
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(format_timestamp(START_UNIX), "2026-01-01 00:00:00");
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(format_timestamp(951_825_600), "2000-02-29 12:00:00");
        // Last point: 3999 × 300 s = 1,199,700 s = 13 d + 76,500 s (21 h 15 min).
        assert_eq!(timestamp(POINTS - 1), "2026-01-14 21:15:00");
    }

    #[test]
    fn windows_follow_nab_labeler() {
        // 4000 points, 3 anomalies: int(400/3) = 133 points, 66 each side.
        assert_eq!(
            nab_windows(4000, &[1350, 2420, 3480]),
            [(1284, 1416), (2354, 2486), (3414, 3546)]
        );
        // One anomaly: 400 → 200 each side; clipped at the end of the file.
        assert_eq!(nab_windows(4000, &[3900]), [(3700, 3999)]);
        assert!(nab_windows(4000, &[]).is_empty());
    }

    #[test]
    fn values_never_print_negative_zero() {
        assert_eq!(format_value(-0.001, 2), "0.00");
        assert_eq!(format_value(-0.01, 2), "-0.01");
        assert_eq!(format_value(12.345, 1), "12.3");
    }

    /// Read at run time: a build cache shared between checkouts keeps the
    /// compile-time path of whichever checkout built it first.
    fn manifest_dir() -> std::ffi::OsString {
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
    }
}
