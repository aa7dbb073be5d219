//! The host's key-value interface: state a plugin writes is there on its
//! next invocation and after a restart, and goes away with the plugin.

use crate::support::{Lookout, Result};

fn counter(lookout: &Lookout) -> Result<f64> {
    let out = lookout.ok(&[
        "run",
        "hostile",
        "--target",
        "x",
        "--config",
        r#"{"mode":"kv"}"#,
    ])?;
    let line = out
        .lines()
        .find(|l| l.starts_with("hostile_kv_counter "))
        .ok_or_else(|| anyhow::anyhow!("no counter in {out}"))?;
    Ok(line.split_whitespace().nth(1).unwrap().parse()?)
}

#[test]
fn plugin_state_persists_and_is_removed_with_the_plugin() -> Result {
    let lookout = Lookout::new();
    lookout.install("lookout_fixture_hostile")?;
    // Each `lookout run` is a new process: the counter lives in the database.
    assert_eq!(counter(&lookout)?, 1.0);
    assert_eq!(counter(&lookout)?, 2.0);
    assert_eq!(counter(&lookout)?, 3.0);
    lookout.ok(&["plugin", "remove", "hostile"])?;
    lookout.install("lookout_fixture_hostile")?;
    assert_eq!(counter(&lookout)?, 1.0, "state must not outlive the plugin");
    Ok(())
}
