//! `lookout rules test <file>…`: promtool's rule unit-test format, with
//! promtool's output and exit codes (0 all passed, 1 a failure), so CI
//! jobs written for `promtool test rules` run unchanged.

use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum RulesCommand {
    /// Run rule unit tests (`rule_files`, `evaluation_interval`,
    /// `input_series`, `alert_rule_test`, `promql_expr_test`).
    Test {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn run(command: RulesCommand) -> anyhow::Result<()> {
    let RulesCommand::Test { files } = command;
    let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    let report = lookout_rules::run_unit_test_files(&paths);
    print!("{}", report.stdout());
    eprint!("{}", report.stderr());
    match report.exit_code() {
        0 => Ok(()),
        code => Err(super::QuietExit(code as u8).into()),
    }
}
