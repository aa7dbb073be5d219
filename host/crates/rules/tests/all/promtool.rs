//! The same promtool test files through Debian's `promtool test rules`
//! (Prometheus 2.42) and through lookout's runner: both must agree on
//! pass/fail, and on every line they print.

use std::path::{Path, PathBuf};
use std::process::Command;

use lookout_rules::{FAILURE_EXIT_CODE, SUCCESS_EXIT_CODE, run_unit_tests};

fn fixture(name: &str) -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("tests/fixtures")
    .join(name)
}

struct PromtoolRun {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs promtool, or `None` when it is not installed (outside CI).
fn promtool(file: &Path) -> Option<PromtoolRun> {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    match Command::new(&bin)
        .args(["test", "rules"])
        .arg(file)
        .output()
    {
        Ok(out) => Some(PromtoolRun {
            code: out.status.code().expect("promtool exited"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // CI must compare against the real thing, never skip silently.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is required in CI (apt-get install prometheus)"
            );
            eprintln!("promtool not installed: only lookout's side is checked");
            None
        }
        Err(e) => panic!("running {bin}: {e}"),
    }
}

/// Prometheus lists the series of a "found duplicate series" error in Go
/// map order, which changes from run to run: compare those lists as sets.
fn unordered_series_lists(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(": [{") {
        let (head, tail) = rest.split_at(start + 3);
        out.push_str(head);
        let Some(end) = tail.find("}]") else {
            rest = tail;
            break;
        };
        let mut items: Vec<&str> = tail[..end + 1].split("}, {").collect();
        items
            .iter_mut()
            .for_each(|i| *i = i.trim_start_matches('{').trim_end_matches('}'));
        items.sort_unstable();
        out.push('{');
        out.push_str(&items.join("}, {"));
        out.push('}');
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

fn check(name: &str, expect_code: i32) {
    let file = fixture(name);
    let ours = run_unit_tests(&file);
    assert_eq!(
        ours.exit_code(),
        expect_code,
        "lookout on {name}:\n{}",
        ours.text()
    );
    if let Some(theirs) = promtool(&file) {
        assert_eq!(
            theirs.code, expect_code,
            "promtool on {name}:\n{}{}",
            theirs.stdout, theirs.stderr
        );
        assert_eq!(
            unordered_series_lists(&ours.stdout()),
            unordered_series_lists(&theirs.stdout),
            "stdout of {name}"
        );
        assert_eq!(
            unordered_series_lists(&ours.stderr()),
            unordered_series_lists(&theirs.stderr),
            "stderr of {name}"
        );
    }
}

#[test]
fn passing_file_passes_in_both() {
    check("pass.test.yml", SUCCESS_EXIT_CODE);
}

#[test]
fn failing_file_fails_alike_in_both() {
    check("fail.test.yml", FAILURE_EXIT_CODE);
}

/// Every other `fail-*.test.yml` fails on purpose so that its report shows
/// alert states, rendered templates, notation errors and runner edge
/// cases, which must read exactly as promtool's.
#[test]
fn every_fixture_reports_like_promtool() {
    let dir = fixture("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".test.yml"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let code = if name.starts_with("pass") {
            SUCCESS_EXIT_CODE
        } else {
            FAILURE_EXIT_CODE
        };
        check(&name, code);
    }
}
