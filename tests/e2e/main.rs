//! End-to-end tests: the real `lookout` binary, real wasm plugins built by
//! `cargo xtask build-plugins`, and real servers on 127.0.0.1.

mod acceptance;
mod alerting;
mod bad_input;
mod blackbox_peer;
mod cli;
mod detectors;
mod distribution;
mod dns_probe;
mod embedded_default;
mod grpc_probe;
mod hostile;
mod icmp_probe;
mod languages;
mod node_exporter;
mod notifiers;
mod plugin_state;
mod postgres_exporter;
mod probe_lifecycle;
mod prometheus_peer;
mod query_api;
mod redis_exporter;
mod rules;
mod scrape;
mod support;
mod tsdb_import;
