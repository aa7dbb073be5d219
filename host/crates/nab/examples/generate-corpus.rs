//! Writes lookout's labelled anomaly corpus into
//! `tests/fixtures/anomaly-corpus/` (or the directory given as the only
//! argument): `cargo run -p lookout-nab --example generate-corpus`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/anomaly-corpus")
        });
    lookout_nab::generator::write_corpus(&dir)?;
    println!("wrote {}", dir.canonicalize()?.display());
    Ok(())
}
