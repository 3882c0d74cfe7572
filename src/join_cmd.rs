//! `shoal join --advertise HOST:PORT [--heartbeat 5s] [--ttl 15s] etcd://...`: registers one
//! engine in etcd discovery, as classic Swarm's `swarm join` did.
//!
//! It first checks that a Docker engine answers `/_ping` at the advertised address (a
//! typo must not become a node every manager then reports as down), over TLS with the
//! files `shoal manage` dials engines with (`--engine-tlscacert`, `--engine-tlscert`,
//! `--engine-tlskey`) when the engine serves `--tlsverify`, then holds the key
//! `<prefix>/nodes/HOST:PORT` under a lease of `--ttl`, renewed every `--heartbeat`
//! ([`HeldKey`]). On SIGTERM or SIGINT it revokes the lease, so managers drop the node at
//! once; if the agent dies without that, the key expires with the lease, within the TTL.
//! While etcd is unreachable it keeps retrying, and writes the key again when etcd is back.

use crate::cli::{DiscoveryOptArgs, EngineTlsArgs};
use crate::discovery::{etcd::node_key, Discovery, DiscoveryError};
use clap::Args;
use shoal_actors::engine::tls::{use_engine_tls, EngineTls, EngineTlsFiles, TlsFileError};
use shoal_actors::engine::{Engine, EngineAddr, HttpEngine, Timeouts};
use shoal_actors::etcd::{EtcdError, HeldKey};
use std::time::Duration;
use thiserror::Error;

/// Longest wait for the engine's `/_ping` before joining.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The etcd discovery to join: etcd://h1:2379,h2:2379/prefix.
    #[arg(env = "SHOAL_DISCOVERY")]
    pub discovery: String,

    /// The engine's address as managers reach it (host:port of its Docker API).
    #[arg(long, env = "SHOAL_ADVERTISE", value_name = "HOST:PORT")]
    pub advertise: String,

    /// How often the lease is renewed.
    #[arg(long, env = "SHOAL_HEARTBEAT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub heartbeat: Duration,

    /// How long the key outlives the last renewal (whole seconds, at least 2s).
    #[arg(long, env = "SHOAL_TTL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub ttl: Duration,

    #[command(flatten)]
    pub discovery_opt: DiscoveryOptArgs,

    /// TLS to the engine, for the `/_ping` check (an engine that serves `--tlsverify`).
    #[command(flatten)]
    pub engine_tls: EngineTlsArgs,

    /// Log level: error, warn, info, debug, trace (or a tracing filter directive).
    #[arg(long, env = "SHOAL_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, Error)]
pub enum JoinError {
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("{0}")]
    Etcd(#[from] EtcdError),
    #[error("`shoal join` needs an etcd:// discovery")]
    NotEtcd,
    #[error("bad --advertise {0:?}: use host:port, the engine's Docker API address")]
    Advertise(String),
    #[error(
        "--ttl must be whole seconds, at least 2s, and longer than --heartbeat ({heartbeat:?})"
    )]
    Ttl { heartbeat: Duration },
    #[error("no Docker engine answers at {addr}: {reason}")]
    NoEngine { addr: String, reason: String },
    #[error("--engine-tlscert needs --engine-tlscacert: the CA the engine's certificate is checked against")]
    TlsCa,
    #[error("{0}")]
    Tls(#[from] TlsFileError),
    #[error("cannot wait for signals: {0}")]
    Signal(std::io::Error),
}

/// Joins and holds the key until SIGTERM or SIGINT.
pub fn run(args: JoinArgs) -> Result<(), JoinError> {
    let Discovery::Etcd(config) =
        Discovery::parse_with_opts(&args.discovery, &args.discovery_opt.opts)?
    else {
        return Err(JoinError::NotEtcd);
    };
    let addr = match args
        .advertise
        .trim_start_matches("tcp://")
        .parse::<EngineAddr>()
    {
        Ok(a @ EngineAddr::Tcp { .. }) => a,
        _ => return Err(JoinError::Advertise(args.advertise.clone())),
    };
    if args.ttl < Duration::from_secs(2)
        || args.ttl.subsec_nanos() != 0
        || args.heartbeat.is_zero()
        || args.heartbeat >= args.ttl
    {
        return Err(JoinError::Ttl {
            heartbeat: args.heartbeat,
        });
    }
    let tls = match (&args.engine_tls.ca, args.engine_tls.cert_key()) {
        (None, None) => None,
        (None, Some(_)) => return Err(JoinError::TlsCa),
        (Some(ca), cert_key) => Some(EngineTls::load(&EngineTlsFiles {
            ca: ca.clone(),
            cert_key,
        })?),
    };
    use_engine_tls(tls);
    actix_rt::System::new().block_on(async move {
        ping(&addr).await?;
        let etcd = config.load().await?;
        let key = node_key(&config, &addr.to_string());
        tracing::info!(engine = %addr, key = %key, ttl = ?args.ttl, heartbeat = ?args.heartbeat, "joining etcd discovery");
        let held = HeldKey::start(etcd, key, addr.to_string(), args.ttl, args.heartbeat);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(JoinError::Signal)?;
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!(engine = %addr, "leaving etcd discovery");
        held.release().await;
        Ok(())
    })
}

/// The engine answers `/_ping` at `addr` (over TLS when `use_engine_tls` was given files).
async fn ping(addr: &EngineAddr) -> Result<(), JoinError> {
    let engine = HttpEngine::new(
        addr.clone(),
        Timeouts {
            call: PING_TIMEOUT,
            ..Timeouts::default()
        },
    );
    engine
        .get("/_ping")
        .await
        .map(|_| ())
        .map_err(|e| JoinError::NoEngine {
            addr: addr.to_string(),
            reason: e.to_string(),
        })
}
