//! lookout-rules' integration tests, one binary.

mod promtool;
mod seed_files;
