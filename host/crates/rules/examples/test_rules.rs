//! `promtool test rules FILE...` with lookout's runner: same output, same
//! exit code.
//!
//! ```sh
//! cargo run -p lookout-rules --example test_rules -- tests/fixtures/pass.test.yml
//! ```

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let report = lookout_rules::run_unit_test_files(&refs);
    print!("{}", report.stdout());
    eprint!("{}", report.stderr());
    let _ = std::io::stdout().flush();
    std::process::exit(report.exit_code());
}
