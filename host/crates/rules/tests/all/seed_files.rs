//! The rule files lookout must load unchanged (shared/fixtures/seed-configs).

use lookout_promql::Engine;
use lookout_rules::{GroupOptions, GroupState, MemorySeries, Rule, parse_rule_file};

fn seed(name: &str) -> Option<(String, String)> {
    // The repository's shared/ sits beside the main checkout.
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../../../shared/fixtures/seed-configs");
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => Some((t, path.display().to_string())),
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "seed config {} missing in CI: {e}",
                path.display()
            );
            None
        }
    }
}

#[test]
fn alert_rules_parse_and_evaluate() {
    let Some((text, path)) = seed("alert-rules.yml") else {
        return;
    };
    let f = parse_rule_file(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.groups.len(), 1);
    let g = &f.groups[0];
    assert_eq!(
        (g.name.as_str(), g.interval_ms),
        ("protocol_alerts", Some(30_000))
    );
    assert_eq!(g.rules.len(), 8);
    let Rule::Alerting(a) = &g.rules[4] else {
        panic!("alerting")
    };
    assert_eq!(
        (a.name.as_str(), a.for_ms),
        ("LowTreasuryBalance", 3_600_000)
    );
    evaluates_cleanly(&f);
}

#[test]
fn x0tta6bl4_rules_parse_and_evaluate() {
    let Some((text, path)) = seed("x0tta6bl4-alert-rules.yml") else {
        return;
    };
    let f = parse_rule_file(&text, &path).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = f.groups[0].rules.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "HealthCheckFailed",
            "PQCHandshakeFailure",
            "CriticalDependencyMissing",
            "HighErrorRate",
            "HighLatency",
            "HighMemoryUsage",
            "FrequentPodRestarts"
        ]
    );
    evaluates_cleanly(&f);
}

/// Every rule evaluates without error over an empty store and over one
/// where `up` is 0.
fn evaluates_cleanly(f: &lookout_rules::RuleFile) {
    let engine = Engine::default();
    let mut db = MemorySeries::new();
    let up = vec![
        ("__name__".to_string(), "up".to_string()),
        ("instance".to_string(), "i".to_string()),
        ("job".to_string(), "x0tta6bl4".to_string()),
    ];
    for g in &f.groups {
        let mut state = GroupState::new(g.clone(), &f.file, GroupOptions::default());
        for step in 0..3 {
            let ts = step * 60_000;
            db.append(&up, ts, 0.0).unwrap();
            let out = state.eval(&engine, &db, ts);
            assert!(out.errors.is_empty(), "{:?}", out.errors);
        }
    }
}
