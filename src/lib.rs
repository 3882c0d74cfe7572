//! The `shoal` daemon: command line, configuration, discovery, the Docker API front, and
//! the server that ties them to the actors of `shoal-actors`.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod api;
pub mod authz;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod docs_cmd;
pub mod join_cmd;
pub mod list_cmd;
pub mod readiness;
pub mod replication;
pub mod server;
pub mod sim_cmd;
pub mod telemetry;
pub mod tls;
