//! `lookout tsdb import openmetrics`: backfilled history answers queries.

use std::fmt::Write;

use crate::support::{Lookout, Result, now_secs};

#[test]
fn imported_openmetrics_history_is_queryable() -> Result {
    let lookout = Lookout::new();
    // 20 minutes of a counter growing by 3 per 15 s, and a gauge, ending a minute ago.
    let end = (now_secs() as i64 / 15) * 15 - 60;
    let start = end - 20 * 60;
    let mut om = String::from("# TYPE jobs_done counter\n");
    for (i, t) in (start..=end).step_by(15).enumerate() {
        writeln!(om, "jobs_done_total{{queue=\"mail\"}} {} {t}", 3 * i)?;
    }
    om.push_str("# TYPE queue_depth gauge\n");
    for (i, t) in (start..=end).step_by(15).enumerate() {
        writeln!(om, "queue_depth{{queue=\"mail\"}} {}.5 {t}", i % 7)?;
    }
    om.push_str("# EOF\n");
    let file = lookout.data.path().join("history.om");
    std::fs::write(&file, om)?;
    let out = lookout.ok(&["tsdb", "import", "openmetrics", file.to_str().unwrap()])?;
    assert!(out.contains("imported 162 samples of 2 series"), "{out}");

    let served = lookout.serve("")?;
    let at = |q: &str, t: i64| {
        served.data(&format!(
            "/api/v1/query?query={}&time={t}",
            crate::query_api::encode(q)
        ))
    };
    assert_eq!(at("jobs_done_total", end)?["result"][0]["value"][1], "240");
    assert_eq!(
        at("queue_depth", start + 15)?["result"][0]["value"][1],
        "1.5"
    );
    // 3 per 15 s is 0.2/s; over a window fully inside the data rate is exact.
    let rate: f64 = at("rate(jobs_done_total[5m])", end)?["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()?;
    assert!((rate - 0.2).abs() < 1e-9, "rate {rate}");

    // A file without # EOF, or a sample without a timestamp, is refused with its line.
    std::fs::write(&file, "x_total 1 1700000000\n")?;
    let err = String::from_utf8(
        lookout
            .run(&["tsdb", "import", "openmetrics", file.to_str().unwrap()])
            .stderr,
    )?;
    assert!(err.contains("# EOF"), "{err}");
    Ok(())
}
