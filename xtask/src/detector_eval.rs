//! `cargo xtask eval-detectors [--plugins a,b,...] [--corpus DIR] [--per-file]`:
//! every detector plugin run over the labelled corpus
//! (`tests/fixtures/anomaly-corpus/`) through `lookout detect`, and scored
//! with the Numenta Anomaly Benchmark's method (`lookout-nab`): the NAB
//! standard-profile score of the detector's own verdicts, the best score
//! any threshold on its scores could reach (NAB's optimiser) and that
//! threshold, window and false-positive counts, the low-FP and low-FN
//! profiles, the ratio to the rolling z-score baseline, and time per point.
//!
//! A detector that fails to install or run is reported after the table and
//! fails the job; the others are still scored. All scoring logic lives (and
//! is tested) in `lookout-nab`; this file runs processes and prints.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lookout_nab::{Corpus, Evaluation, evaluate, parse_detector_output};

/// Detector plugins shipped with lookout, baseline first; their files are
/// `lookout_plugin_<name>.wasm`.
const DETECTORS: &[&str] = &["zscore", "mad", "ewma", "seasonal", "kmeans", "forecast"];

/// The detector the others must beat (NAB's windowed Gaussian scored 39.6).
const BASELINE: &str = "zscore";

/// A detector gets this long for one 4,000-point file: far beyond what any
/// should need, but bounded so a hung plugin cannot hang the run.
const DETECT_TIMEOUT: Duration = Duration::from_secs(300);

/// How often a running `lookout detect` is checked for exit: small next to
/// a file's run time, so wall time stays accurate.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Linux reports child CPU time in USER_HZ ticks, 100 per second.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, PartialEq)]
struct Options {
    /// `None`: every detector of `DETECTORS` present in the wasm directory.
    plugins: Option<Vec<String>>,
    corpus: PathBuf,
    per_file: bool,
}

const USAGE: &str =
    "usage: cargo xtask eval-detectors [--plugins a,b,...] [--corpus DIR] [--per-file]";

fn parse_args(args: &[String], default_corpus: PathBuf) -> anyhow::Result<Options> {
    let mut options = Options {
        plugins: None,
        corpus: default_corpus,
        per_file: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .with_context(|| format!("{flag} needs a value; {USAGE}"))
        };
        match flag {
            "--plugins" => {
                let names: Vec<String> = value()?
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect();
                if names.is_empty() {
                    bail!("--plugins lists no plugin; {USAGE}");
                }
                options.plugins = Some(names);
            }
            "--corpus" => options.corpus = PathBuf::from(value()?),
            "--per-file" if inline.is_none() => options.per_file = true,
            _ => bail!("unknown argument `{arg}`; {USAGE}"),
        }
    }
    Ok(options)
}

fn plugin_file(wasm_dir: &Path, name: &str) -> PathBuf {
    wasm_dir.join(format!("lookout_plugin_{name}.wasm"))
}

/// The plugins to evaluate, each with its wasm file.
fn select_plugins(
    wasm_dir: &Path,
    requested: Option<&[String]>,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    match requested {
        Some(names) => names
            .iter()
            .map(|n| {
                let file = plugin_file(wasm_dir, n);
                if file.is_file() {
                    Ok((n.clone(), file))
                } else {
                    bail!("--plugins: {} does not exist", file.display())
                }
            })
            .collect(),
        None => {
            let found: Vec<(String, PathBuf)> = DETECTORS
                .iter()
                .map(|n| (n.to_string(), plugin_file(wasm_dir, n)))
                .filter(|(_, f)| f.is_file())
                .collect();
            if found.is_empty() {
                bail!(
                    "no detector plugin in {}: expected lookout_plugin_{{{}}}.wasm",
                    wasm_dir.display(),
                    DETECTORS.join(",")
                );
            }
            Ok(found)
        }
    }
}

/// Under `name`, so `lookout detect <name>` finds it whatever name the
/// plugin gives itself.
fn install(lookout: &Path, data: &Path, wasm: &Path, name: &str) -> anyhow::Result<()> {
    let out = Command::new(lookout)
        .arg("--data")
        .arg(data)
        .args(["plugin", "install"])
        .arg(wasm)
        .args(["--name", name])
        .output()
        .with_context(|| format!("running {}", lookout.display()))?;
    if !out.status.success() {
        bail!(
            "installing {}: {}",
            wasm.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// CPU seconds (user + system) of this process' waited-for children.
fn children_cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command's closing ')': cutime and cstime are the
    // 14th and 15th (fields 16 and 17 of proc(5)).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc/self/stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks = fields[13].parse::<f64>()? + fields[14].parse::<f64>()?;
    Ok(ticks / TICKS_PER_SECOND)
}

/// What one `lookout detect` run cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Cost {
    wall: Duration,
    cpu_seconds: f64,
}

/// `lookout detect <name> --csv <file>`: its stdout, and what it cost.
fn detect(lookout: &Path, data: &Path, name: &str, csv: &Path) -> anyhow::Result<(String, Cost)> {
    let cpu_before = children_cpu_seconds()?;
    let started = Instant::now();
    let mut child = Command::new(lookout)
        .arg("--data")
        .arg(data)
        .args(["detect", name, "--csv"])
        .arg(csv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", lookout.display()))?;
    // Drained on threads so a full pipe can never stall the child.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            pipe.read_to_end(&mut buf).map(|_| buf)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > DETECT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{name} on {}: no result within {DETECT_TIMEOUT:?}",
                csv.display()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let wall = started.elapsed();
    let cpu_seconds = children_cpu_seconds()? - cpu_before;
    let stdout = stdout.join().expect("reader thread")?;
    let stderr = stderr.join().expect("reader thread")?;
    if !status.success() {
        bail!(
            "lookout detect {name} --csv {} failed with {status}: {}",
            csv.display(),
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    let stdout = String::from_utf8(stdout).context("detector output is not UTF-8")?;
    Ok((stdout, Cost { wall, cpu_seconds }))
}

/// One detector's evaluation and what it cost over the whole corpus.
struct DetectorRun {
    name: String,
    evaluation: Evaluation,
    cost: Cost,
}

pub fn run(lookout: &Path, wasm: &Path, args: &[String]) -> anyhow::Result<()> {
    let options = parse_args(
        args,
        crate::workspace_root().join("tests/fixtures/anomaly-corpus"),
    )?;
    let corpus = Corpus::load(&options.corpus)
        .with_context(|| format!("loading the corpus in {}", options.corpus.display()))?;
    let plugins = select_plugins(wasm, options.plugins.as_deref())?;
    let data = tempfile::tempdir()?;
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for (name, file) in &plugins {
        // One broken detector must not hide the others' results.
        match run_detector(lookout, data.path(), &options.corpus, &corpus, name, file) {
            Ok(run) => runs.push(run),
            Err(e) => failures.push(format!("{name}: {e:#}")),
        }
    }
    print!("{}", report(&options.corpus, &corpus, &runs));
    if options.per_file {
        print!("{}", per_file_report(&corpus, &runs));
    }
    if !failures.is_empty() {
        bail!(
            "{} detector(s) failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// Installs a plugin into `data` and runs it over every corpus file (`dir`
/// holds the corpus' CSV files).
fn run_detector(
    lookout: &Path,
    data: &Path,
    dir: &Path,
    corpus: &Corpus,
    name: &str,
    wasm: &Path,
) -> anyhow::Result<DetectorRun> {
    eprintln!("  {name}: installing {}", wasm.display());
    install(lookout, data, wasm, name)?;
    let mut outputs = Vec::with_capacity(corpus.files.len());
    let mut cost = Cost::default();
    for f in &corpus.files {
        let (text, c) = detect(lookout, data, name, &dir.join(&f.name))?;
        cost.wall += c.wall;
        cost.cpu_seconds += c.cpu_seconds;
        outputs.push(
            parse_detector_output(&text, &f.timestamps)
                .with_context(|| format!("output of {name} on {}", f.name))?,
        );
    }
    eprintln!(
        "  {name}: {} files in {:.2?}",
        corpus.files.len(),
        cost.wall
    );
    Ok(DetectorRun {
        name: name.to_string(),
        evaluation: evaluate(corpus, &outputs),
        cost,
    })
}

/// `a / baseline`, or `n/a` when the baseline is missing or not positive
/// (a ratio to a negative or zero score says nothing).
fn ratio(value: f64, baseline: Option<f64>) -> String {
    match baseline {
        Some(b) if b > 0.0 && value.is_finite() => format!("{:.2}", value / b),
        _ => "n/a".into(),
    }
}

/// Ten significant-ish digits: enough to tell apart the scores of a
/// detector that outputs probabilities like 0.99999126, short enough for a
/// table.
fn threshold(t: Option<f64>) -> String {
    let Some(t) = t else {
        return "none".into();
    };
    let s = format!("{t:.9}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The main table and its legend.
fn report(dir: &Path, corpus: &Corpus, runs: &[DetectorRun]) -> String {
    let baseline = runs.iter().find(|r| r.name == BASELINE);
    let points = corpus.points() as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nNAB scores on {}: {} files, {} points, {} anomaly windows\n",
        dir.display(),
        corpus.files.len(),
        corpus.points(),
        corpus.windows()
    );
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>4} {:>4} {:>4} {:>8} {:>8} {:>8}  {:<14} {:>9} {:>9} {:>10} {:>9}",
        "detector",
        "standard",
        "TP",
        "FP",
        "FN",
        "low-FP",
        "low-FN",
        "best",
        "best threshold",
        "std/base",
        "best/base",
        "wall µs/pt",
        "CPU µs/pt"
    );
    for r in runs {
        let e = &r.evaluation;
        let std = e.standard();
        let _ = writeln!(
            out,
            "{:<10} {:>8.1} {:>4} {:>4} {:>4} {:>8.1} {:>8.1} {:>8.1}  {:<14} {:>9} {:>9} {:>10.2} {:>9.2}",
            r.name,
            std.normalised,
            std.tally.detected,
            std.tally.false_positives,
            std.tally.missed,
            e.verdicts[1].normalised,
            e.verdicts[2].normalised,
            e.best.score.normalised,
            threshold(e.best.threshold),
            ratio(
                std.normalised,
                baseline.map(|b| b.evaluation.standard().normalised)
            ),
            ratio(
                e.best.score.normalised,
                baseline.map(|b| b.evaluation.best.score.normalised)
            ),
            r.cost.wall.as_secs_f64() * 1e6 / points,
            r.cost.cpu_seconds * 1e6 / points,
        );
    }
    let _ = writeln!(
        out,
        "\nNormalised NAB scores: a detector that never fires scores 0, one that flags every window at its\n\
         first point 100 (published standard-profile scores on NAB itself: windowed Gaussian 39.6,\n\
         Twitter ADVec 47.1, Random Cut Forest 51.7, Numenta HTM ~70).\n\
         standard, low-FP, low-FN: the detector's own verdicts (its default sensitivity) under NAB's\n\
         profiles (FP weight 0.11 / 0.22 / 0.11, FN weight 1 / 1 / 2). TP: windows detected; FP: detections\n\
         outside windows after the 15 % probation; FN: windows missed (standard profile, own verdicts).\n\
         best: standard profile with the threshold on the score column (score >= threshold, NaN never)\n\
         that NAB's optimiser picks. std/base, best/base: ratio to {BASELINE} (n/a when it is absent or <= 0).\n\
         Time: the whole `lookout detect` process per file (start-up, plugin instantiation, CSV in and out)\n\
         over the corpus' points; CPU is the children's user + system time (/proc/self/stat cutime + cstime)."
    );
    out
}

/// Per file and detector: the standard raw score of its own verdicts and
/// windows detected / missed / false positives.
fn per_file_report(corpus: &Corpus, runs: &[DetectorRun]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "\nPer file, standard profile, own verdicts: raw score (TP/FN/FP)\n\n{:<26} {:>7}",
        "file", "windows"
    );
    for r in runs {
        let _ = write!(out, " {:>20}", r.name);
    }
    out.push('\n');
    for (i, f) in corpus.files.iter().enumerate() {
        let _ = write!(out, "{:<26} {:>7}", f.name, f.labels.windows().len());
        for r in runs {
            let t = r.evaluation.per_file[i];
            let cell = format!(
                "{:.2} ({}/{}/{})",
                t.raw, t.detected, t.missed, t.false_positives
            );
            let _ = write!(out, " {cell:>20}");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookout_nab::DetectorOutput;
    use lookout_nab::corpus::CorpusFile;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    /// A stand-in for `lookout` (POSIX sh + awk): `plugin install` succeeds,
    /// `detect` scores each point with its value and flags values over
    /// 1000, or fails for the plugin named `broken`.
    const FAKE_LOOKOUT: &str = r#"#!/bin/sh
# argv: --data DIR plugin install FILE --name NAME | --data DIR detect NAME --csv FILE
case "$3" in
  plugin) exit 0 ;;
  detect)
    if [ "$4" = broken ]; then echo "detector exploded" >&2; exit 1; fi
    exec awk -F, 'NR == 1 { print "timestamp,value,score,anomaly"; next }
                  { print $1 "," $2 "," $2 "," ($2 > 1000 ? 1 : 0) }' "$6" ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
"#;

    fn fake_lookout(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("lookout");
        std::fs::write(&path, FAKE_LOOKOUT).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn runs_each_plugin_over_every_corpus_file_through_the_cli() {
        let tmp = tempfile::tempdir().unwrap();
        let lookout = fake_lookout(tmp.path());
        let dir = crate::workspace_root().join("tests/fixtures/anomaly-corpus");
        let corpus = Corpus::load(&dir).unwrap();
        let data = tempfile::tempdir().unwrap();
        let run = run_detector(
            &lookout,
            data.path(),
            &dir,
            &corpus,
            "valueonly",
            &tmp.path().join("unused.wasm"),
        )
        .unwrap();
        // What the fake prints, computed in-process: the evaluation must be
        // the same, so timestamps, scores and verdicts went through intact.
        let expected: Vec<DetectorOutput> = corpus
            .files
            .iter()
            .map(|f| DetectorOutput {
                scores: f.values.clone(),
                anomalies: f.values.iter().map(|v| *v > 1000.0).collect(),
            })
            .collect();
        assert_eq!(run.name, "valueonly");
        assert_eq!(run.evaluation, evaluate(&corpus, &expected));
        assert_eq!(run.evaluation.per_file.len(), corpus.files.len());
        assert!(run.cost.wall > Duration::ZERO);
        assert!(run.cost.cpu_seconds >= 0.0);
    }

    #[test]
    fn a_failing_detector_is_reported_with_its_stderr() {
        let tmp = tempfile::tempdir().unwrap();
        let lookout = fake_lookout(tmp.path());
        let dir = crate::workspace_root().join("tests/fixtures/anomaly-corpus");
        let corpus = Corpus::load(&dir).unwrap();
        let data = tempfile::tempdir().unwrap();
        let err = run_detector(
            &lookout,
            data.path(),
            &dir,
            &corpus,
            "broken",
            &tmp.path().join("unused.wasm"),
        )
        .err()
        .expect("the detector fails");
        let message = format!("{err:#}");
        assert!(message.contains("lookout detect broken"), "{message}");
        assert!(message.contains("detector exploded"), "{message}");
    }

    #[test]
    fn arguments() {
        let default = PathBuf::from("corpus");
        assert_eq!(
            parse_args(&[], default.clone()).unwrap(),
            Options {
                plugins: None,
                corpus: default.clone(),
                per_file: false
            }
        );
        let o = parse_args(
            &strings(&["--plugins", "zscore, mad", "--corpus=/c", "--per-file"]),
            default.clone(),
        )
        .unwrap();
        assert_eq!(o.plugins, Some(strings(&["zscore", "mad"])));
        assert_eq!(o.corpus, PathBuf::from("/c"));
        assert!(o.per_file);
        assert!(parse_args(&strings(&["--plugins"]), default.clone()).is_err());
        assert!(parse_args(&strings(&["--plugins", ","]), default.clone()).is_err());
        assert!(parse_args(&strings(&["--bogus"]), default).is_err());
    }

    #[test]
    fn default_selection_is_the_detectors_present() {
        let dir = tempfile::tempdir().unwrap();
        assert!(select_plugins(dir.path(), None).is_err());
        std::fs::write(plugin_file(dir.path(), "mad"), b"").unwrap();
        std::fs::write(plugin_file(dir.path(), "zscore"), b"").unwrap();
        std::fs::write(plugin_file(dir.path(), "tcp"), b"").unwrap();
        let names: Vec<String> = select_plugins(dir.path(), None)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["zscore", "mad"]);
        assert!(select_plugins(dir.path(), Some(&strings(&["ewma"]))).is_err());
        assert_eq!(
            select_plugins(dir.path(), Some(&strings(&["mad"]))).unwrap()[0].1,
            plugin_file(dir.path(), "mad")
        );
    }

    #[test]
    fn ratios_only_against_a_positive_baseline() {
        assert_eq!(ratio(50.0, Some(25.0)), "2.00");
        assert_eq!(ratio(50.0, Some(-3.0)), "n/a");
        assert_eq!(ratio(50.0, None), "n/a");
        assert_eq!(threshold(None), "none");
        assert_eq!(threshold(Some(0.5)), "0.5");
        assert_eq!(threshold(Some(3.0)), "3");
        assert_eq!(threshold(Some(0.9999912642183045)), "0.999991264");
        assert_eq!(threshold(Some(-2.25)), "-2.25");
    }

    #[test]
    fn report_shows_each_detector_against_the_baseline() {
        // 100 points, one window [40, 49]: zscore flags 45 (0.8598 raw →
        // 92.99), mad flags 40 (+1 → 100): mad / zscore = 1.08.
        let mut csv = String::from("timestamp,value\n");
        for i in 0..100 {
            csv.push_str(&format!("t{i},1\n"));
        }
        let file = CorpusFile::parse("a.csv", &csv, &[["t40".into(), "t49".into()]]).unwrap();
        let corpus = Corpus { files: vec![file] };
        let run = |name: &str, at: usize| {
            let mut out = DetectorOutput {
                scores: vec![0.0; 100],
                anomalies: vec![false; 100],
            };
            out.scores[at] = 1.0;
            out.anomalies[at] = true;
            DetectorRun {
                name: name.into(),
                evaluation: evaluate(&corpus, &[out]),
                cost: Cost {
                    wall: Duration::from_millis(1),
                    cpu_seconds: 0.0005,
                },
            }
        };
        let runs = [run("zscore", 45), run("mad", 40)];
        let text = report(Path::new("corpus"), &corpus, &runs);
        let zscore = text.lines().find(|l| l.starts_with("zscore")).unwrap();
        let mad = text.lines().find(|l| l.starts_with("mad")).unwrap();
        assert!(
            zscore.contains("93.0") && zscore.contains("1.00"),
            "{zscore}"
        );
        assert!(mad.contains("100.0") && mad.contains("1.08"), "{mad}");
        // 1 ms over 100 points = 10 µs per point; 0.5 ms CPU = 5.
        assert!(mad.contains("10.00") && mad.contains("5.00"), "{mad}");
        let per_file = per_file_report(&corpus, &runs);
        assert!(
            per_file.contains("0.86 (1/0/0)") && per_file.contains("1.00 (1/0/0)"),
            "{per_file}"
        );
    }
}
