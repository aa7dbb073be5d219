//! End-to-end tests: the real `lookout` binary, real wasm plugins built by
//! `cargo xtask build-plugins`, and real servers on 127.0.0.1.

mod acceptance;
mod alerting;
mod bad_input;
mod cli;
mod hostile;
mod notifiers;
mod plugin_state;
mod probe_lifecycle;
mod prometheus_peer;
mod query_api;
mod rules;
mod scrape;
mod support;
mod tsdb_import;
