//! Plugin runtime figures: invocation overhead of the noop probe (fresh
//! instance from `InstancePre`, and a reused instance), loading a plugin
//! from the compile cache, first compile and a `describe` call per plugin
//! (Rust, and the Python, JavaScript and C ones), and resident memory per
//! loaded idle plugin. Run with `cargo xtask bench` (builds the plugins first).
//!
//! Prints medians and tails; docs/PERFORMANCE.md records the latest run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lookout::model::{Grants, Limits};
use lookout::runtime::{Allocation, Invocation, Runtime};
use lookout::storage::Storage;

mod support;
use support::{sha256, wasm};

struct Stats {
    samples: Vec<Duration>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s[((s.len() - 1) as f64 * p) as usize]
    }
    fn line(&self, what: &str) {
        println!(
            "{what:<48} median {:>9.2} µs   p90 {:>9.2} µs   p99 {:>9.2} µs   (n={})",
            self.pct(0.5).as_secs_f64() * 1e6,
            self.pct(0.9).as_secs_f64() * 1e6,
            self.pct(0.99).as_secs_f64() * 1e6,
            self.samples.len()
        );
    }
}

/// (RSS, PSS) of this process in bytes. PSS splits pages shared between
/// mappings (every load of one cached artifact maps the same file), so it
/// is the fairer per-plugin figure; RSS counts each mapping in full.
fn memory_bytes() -> (u64, u64) {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("Rss:"), field("Pss:"))
}

async fn invocation_overhead(runtime: &Runtime, allocation: &str) {
    let bytes = std::fs::read(wasm("lookout_plugin_noop")).expect("noop plugin");
    let plugin = runtime
        .prepare("noop", &bytes, &sha256(&bytes))
        .expect("prepare noop");
    let grants = Grants::default();
    let limits = Limits::default();
    let inv = Invocation {
        job: "bench",
        target: "t",
        config: "{}",
        grants: &grants,
        limits: &limits,
    };
    for _ in 0..200 {
        runtime.probe(&plugin, &inv).await.expect("noop probe");
    }
    let mut fresh = Stats {
        samples: Vec::new(),
    };
    for _ in 0..5000 {
        let t = Instant::now();
        let r = runtime.probe(&plugin, &inv).await.expect("noop probe");
        fresh.samples.push(t.elapsed());
        assert!(r.success);
    }
    fresh.line(&format!("noop invocation, fresh instance ({allocation})"));

    let mut warm = runtime
        .warm_probe(&plugin, &inv)
        .await
        .expect("warm instance");
    let mut reused = Stats {
        samples: Vec::new(),
    };
    for _ in 0..5000 {
        let t = Instant::now();
        warm.probe("t", "{}").await.expect("warm probe");
        reused.samples.push(t.elapsed());
    }
    reused.line(&format!("noop invocation, reused instance ({allocation})"));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let cache = dir.path().join("cache");

    // `LOOKOUT_BENCH_PROFILE=1`: only fresh-instance invocations, long
    // enough for `perf record` to see where their time goes.
    if std::env::var_os("LOOKOUT_BENCH_PROFILE").is_some() {
        let runtime =
            Runtime::with_allocation(&cache, storage.clone(), Some(Allocation::Pooling)).unwrap();
        let bytes = std::fs::read(wasm("lookout_plugin_noop")).unwrap();
        let plugin = runtime.prepare("noop", &bytes, &sha256(&bytes)).unwrap();
        let (grants, limits) = (Grants::default(), Limits::default());
        let inv = Invocation {
            job: "bench",
            target: "t",
            config: "{}",
            grants: &grants,
            limits: &limits,
        };
        for _ in 0..200_000 {
            runtime.probe(&plugin, &inv).await.unwrap();
        }
        return;
    }
    println!("lookout runtime benchmark (release build, wasmtime 48)\n");
    let pooled = Runtime::with_allocation(&cache, storage.clone(), Some(Allocation::Pooling))
        .expect("pooling runtime");
    invocation_overhead(&pooled, "pooling").await;
    let on_demand = Runtime::with_allocation(&cache, storage.clone(), Some(Allocation::OnDemand))
        .expect("on-demand runtime");
    invocation_overhead(&on_demand, "on-demand").await;

    // First compile vs. load from the compile cache, per first-party
    // plugin and per language the plugins are written in.
    println!();
    for (language, stem) in [
        ("Rust", "lookout_plugin_noop"),
        ("Rust", "lookout_plugin_http"),
        ("Rust", "lookout_plugin_tcp"),
        ("Python (componentize-py)", "health"),
        ("JavaScript (ComponentizeJS)", "statuspage"),
        ("C (wasi-libc)", "load"),
    ] {
        let bytes = std::fs::read(wasm(stem)).unwrap();
        let digest = sha256(&bytes);
        let mut compile = Stats {
            samples: Vec::new(),
        };
        // Seconds each for the large interpreters' components.
        let compiles = if bytes.len() > 4 << 20 { 3 } else { 5 };
        for _ in 0..compiles {
            let _ = std::fs::remove_file(pooled.cache_path(&digest));
            let t = Instant::now();
            pooled.prepare(stem, &bytes, &digest).unwrap();
            compile.samples.push(t.elapsed());
        }
        let path = wasm(stem);
        let mut cached = Stats {
            samples: Vec::new(),
        };
        for _ in 0..200 {
            let t = Instant::now();
            pooled.load(stem, &path, &digest).unwrap();
            cached.samples.push(t.elapsed());
        }
        // An invocation (`describe`) on a fresh instance: what each
        // scheduled run pays on top, interpreters' start included.
        let plugin = pooled.load(stem, &path, &digest).unwrap();
        let mut describe = Stats {
            samples: Vec::new(),
        };
        for _ in 0..50 {
            let t = Instant::now();
            pooled.describe(&plugin).await.unwrap();
            describe.samples.push(t.elapsed());
        }
        println!("{stem} ({language}): {} bytes", bytes.len());
        compile.line("  first compile (and cache write)");
        cached.line("  load from compile cache (+ pre-link)");
        describe.line("  describe, fresh instance");
    }

    // Resident memory of loaded, idle plugins: many loads of each plugin,
    // kept alive, as a host with many installed plugins holds them.
    println!();
    const COPIES: usize = 100;
    let mut kept = Vec::new();
    let before = memory_bytes();
    for stem in [
        "lookout_plugin_noop",
        "lookout_plugin_http",
        "lookout_plugin_tcp",
    ] {
        let bytes = std::fs::read(wasm(stem)).unwrap();
        let digest = sha256(&bytes);
        for _ in 0..COPIES {
            kept.push(pooled.load(stem, &wasm(stem), &digest).unwrap());
        }
    }
    let after = memory_bytes();
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / kept.len() as f64 / 1024.0;
    println!(
        "memory per loaded idle plugin: RSS {:.1} KiB, PSS {:.1} KiB ({} loads of 3 plugins; RSS {:.1} → {:.1} MiB)",
        per(after.0, before.0),
        per(after.1, before.1),
        kept.len(),
        before.0 as f64 / 1048576.0,
        after.0 as f64 / 1048576.0
    );
    drop(kept);
    let _ = Arc::strong_count(&storage);
}
