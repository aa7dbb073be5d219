//! lookout-alerting's integration tests: one binary, a module per area.

mod amtool;
mod api;
mod config;
mod dispatcher;
mod routing;
mod seed_configs;
mod support;
mod suppression;
