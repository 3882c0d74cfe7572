//! Shoal's etcd layer: the one place that talks to etcd, shared by discovery (`etcd://`),
//! `shoal join`, and what later needs etcd (election, the rescheduler's records).
//!
//! Three pieces, each its own file:
//! - [`EtcdConfig`] (`config.rs`): `etcd://h1:2379,h2:2379/prefix` and the
//!   `kv.cacertfile` / `kv.certfile` / `kv.keyfile` options, checked once; `load` reads the
//!   TLS files (a start-up error when they are bad) into an [`Etcd`], whose `connect` dials
//!   (a network error, worth retrying).
//! - [`HeldKey`] (`lease.rs`): a key held by a lease that a task keeps alive, granted and
//!   written again when the lease is lost (etcd down past the TTL), revoked on release.
//!   [`keep_alive`] is the one-lease loop under it, for whoever holds a lease of its own
//!   (an election campaign).
//! - [`PrefixWatch`] (`watch.rs`): every key under a prefix, published as a snapshot
//!   through a `watch` channel: one `get`, then a watch from the revision after it, so no
//!   change between the two is missed; on any failure it says etcd is unreachable, keeps
//!   the last snapshot, and syncs again (`get` + watch) when etcd answers.
//!
//! Every unary call is bounded by [`CALL_TIMEOUT`]; streams are watched by HTTP/2
//! keep-alive pings, so a dead etcd is noticed within seconds even when nothing changes.

mod config;
mod lease;
mod watch;

pub use config::{Etcd, EtcdConfig, EtcdTlsFiles, DEFAULT_PREFIX};
pub use etcd_client::Client;
pub use lease::{keep_alive, HeldKey, KeyState};
pub use watch::{Link, PrefixView, PrefixWatch};

use std::time::Duration;
use thiserror::Error;

/// Longest wait for one unary call (get, put, grant, revoke, keep-alive answer).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait to open a connection to one endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// HTTP/2 ping interval and answer deadline on etcd connections: how soon a silent etcd
/// (host gone, network cut) is noticed by an open watch or keep-alive stream.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// First and longest wait between two attempts to reach etcd again.
pub const RETRY_MIN: Duration = Duration::from_millis(200);
pub const RETRY_MAX: Duration = Duration::from_secs(2);

#[derive(Debug, Error, Clone, PartialEq)]
pub enum EtcdError {
    #[error("bad etcd discovery {uri:?}: {reason} (use etcd://host:2379[,host:2379...]/prefix)")]
    Uri { uri: String, reason: String },
    #[error(
        "bad --discovery-opt {0:?}: use kv.cacertfile=PATH, kv.certfile=PATH or kv.keyfile=PATH"
    )]
    Opt(String),
    #[error("{0}")]
    TlsFlags(&'static str),
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
    #[error("etcd at {endpoints}: {reason}")]
    Unreachable { endpoints: String, reason: String },
    #[error("etcd at {endpoints} did not answer within {CALL_TIMEOUT:?}")]
    Timeout { endpoints: String },
    #[error("etcd lease {0:x} expired")]
    LeaseLost(i64),
    #[error("etcd watch ended: {0}")]
    WatchEnded(String),
}

/// The next wait of a retry loop: doubled, up to [`RETRY_MAX`].
pub(crate) fn backoff(now: Duration) -> Duration {
    (now * 2).clamp(RETRY_MIN, RETRY_MAX)
}
