//! `lookout tsdb import openmetrics <file>`: backfill history, the
//! counterpart of `promtool tsdb create-blocks-from openmetrics`, so both
//! systems can be loaded with the same data. Stop `serve` first: the import
//! writes the database directly.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::storage::Storage;

/// Samples per durable commit: large batches are what makes ingest fast.
const IMPORT_BATCH: usize = 10_000;

#[derive(clap::Subcommand)]
pub enum TsdbCommand {
    /// Import samples from a file.
    #[command(subcommand)]
    Import(ImportFormat),
}

#[derive(clap::Subcommand)]
pub enum ImportFormat {
    /// An OpenMetrics text file whose every sample has a timestamp.
    Openmetrics {
        /// The file to import.
        file: PathBuf,
    },
}

pub fn run(command: TsdbCommand, data: &Path) -> anyhow::Result<()> {
    let TsdbCommand::Import(ImportFormat::Openmetrics { file }) = command;
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let scrape = lookout_expfmt::parse(&text, lookout_expfmt::Format::OpenMetrics)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", file.display(), e.line, e.message))?;
    let mut rows: Vec<(lookout_tsdb::Labels, i64, f64)> = Vec::with_capacity(scrape.samples.len());
    for (i, sample) in scrape.samples.into_iter().enumerate() {
        let Some(t) = sample.timestamp_ms else {
            bail!(
                "{}: sample {} ({}) has no timestamp; an import needs one on every sample",
                file.display(),
                i + 1,
                sample.name
            );
        };
        let mut labels = sample.labels;
        labels.push(("__name__".to_string(), sample.name));
        labels.sort();
        rows.push((labels, t, sample.value));
    }
    let storage = Storage::open(data)
        .with_context(|| format!("opening data directory {}", data.display()))?;
    let tsdb = lookout_tsdb::Tsdb::open(storage.database(), lookout_tsdb::Options::default())?;
    let (mut appended, mut refused) = (0usize, 0usize);
    for batch in rows.chunks(IMPORT_BATCH) {
        let outcome = tsdb.append(batch)?;
        appended += outcome.appended;
        refused += outcome.out_of_order + outcome.too_old;
    }
    tsdb.flush()?;
    // Backfilled chunks went straight to the block table, 120 samples
    // each; one chunk per series and block is what live data ends up as.
    tsdb.compact_blocks()?;
    // A bulk load leaves the write-ahead table's freed pages behind: give
    // them back so the file holds what it stores.
    drop(tsdb);
    drop(storage);
    crate::storage::compact(data)?;
    let series: HashSet<&lookout_tsdb::Labels> = rows.iter().map(|(l, _, _)| l).collect();
    let (min, max) = rows
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), (_, t, _)| {
            (lo.min(*t), hi.max(*t))
        });
    let when = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default()
    };
    println!(
        "imported {appended} samples of {} series from {}{}",
        series.len(),
        file.display(),
        if rows.is_empty() {
            String::new()
        } else {
            format!(" ({} .. {})", when(min), when(max))
        }
    );
    if refused > 0 {
        println!("refused {refused} samples: out of order or duplicate timestamps within a series");
    }
    Ok(())
}
