//! `ManageConfig`: the manager's configuration, checked once at start from the command line
//! and passed down by value. Every mistake a user can make here is a one-line error.

use crate::cli::{ManageArgs, TlsArgs};
use crate::discovery::{Discovery, DiscoveryError};
use crate::tls::{ApiTlsFiles, ClientAuth, TlsConfig};
use shoal_actors::cluster::ClusterConfig;
use shoal_actors::engine::tls::EngineTlsFiles;
use shoal_actors::engine::Timeouts;
use shoal_actors::node::NodeConfig;
use shoal_actors::scheduler::{self, SchedulerConfig};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where the default discovery looks for a local engine.
pub const LOCAL_ENGINE: &str = "/var/run/docker.sock";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("no discovery given and {LOCAL_ENGINE} does not exist: pass the engines, e.g. `shoal manage nodes://10.0.0.1:2375,10.0.0.2:2375`, `shoal manage file:///etc/shoal/engines`, or try `shoal manage --sim 3`")]
    NoDefaultEngine,
    #[error("bad -H/--host {0:?}: use host:port, tcp://host:port or unix:///path")]
    Listen(String),
    #[error("--engine-refresh-min-interval ({min:?}) is longer than --engine-refresh-max-interval ({max:?})")]
    RefreshOrder {
        min: std::time::Duration,
        max: std::time::Duration,
    },
    #[error("--sim needs at least 1 engine")]
    NoSimEngines,
    #[error("{0}")]
    Scheduler(#[from] scheduler::SchedulerConfigError),
    #[error("bad --cluster-opt {0:?}: use swarm.overcommit=<ratio> or swarm.createretry=<count>")]
    ClusterOpt(String),
    #[error("{0}")]
    TlsFlags(&'static str),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsConfigError),
    #[error("--authz-policy needs --tlsverify: the policy names clients by their certificates")]
    AuthzWithoutTls,
    #[error("{0}")]
    Authz(#[from] crate::authz::PolicyError),
    #[error("--replication needs an etcd:// discovery: the managers elect their primary in etcd")]
    ReplicationWithoutEtcd,
    #[error("--advertise and --replication-ttl take effect with --replication: add it")]
    ReplicationFlags,
    #[error(
        "bad --advertise {0:?}: use host:port, the address the other managers reach this one at"
    )]
    Advertise(String),
    #[error("--replication-ttl must be at least 2s (etcd's shortest lease)")]
    ReplicationTtl,
}

/// `--replication`, `--advertise`, `--replication-ttl`.
fn replication(
    args: &ManageArgs,
    engines: &EngineSource,
) -> Result<Option<crate::replication::ReplicationConfig>, ConfigError> {
    if !args.replication {
        if args.advertise.is_some() || args.replication_ttl != crate::replication::DEFAULT_TTL {
            return Err(ConfigError::ReplicationFlags);
        }
        return Ok(None);
    }
    if !matches!(engines, EngineSource::Discovery(Discovery::Etcd(_))) {
        return Err(ConfigError::ReplicationWithoutEtcd);
    }
    if args.replication_ttl < std::time::Duration::from_secs(2) {
        return Err(ConfigError::ReplicationTtl);
    }
    let advertise = match &args.advertise {
        None => None,
        Some(a) => {
            let a = a.trim().trim_start_matches("tcp://");
            match a.rsplit_once(':') {
                Some((h, p))
                    if !h.is_empty()
                        && p.parse::<u16>().is_ok_and(|p| p > 0)
                        && !a.contains('/') =>
                {
                    Some(a.to_string())
                }
                _ => return Err(ConfigError::Advertise(a.to_string())),
            }
        }
    };
    Ok(Some(crate::replication::ReplicationConfig {
        advertise,
        ttl: args.replication_ttl,
    }))
}

/// Placement settings: the scheduler's own, the front's retry count, and how long the
/// rescheduler waits on a failed node.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementConfig {
    pub scheduler: SchedulerConfig,
    /// Further nodes tried when an engine fails a create (`swarm.createretry`, default
    /// `DEFAULT_RETRIES`).
    pub create_retry: u32,
    /// `--reschedule-grace`: how long a node stays unhealthy before its
    /// `on-node-failure` containers are moved.
    pub reschedule_grace: std::time::Duration,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            scheduler: SchedulerConfig::default(),
            create_retry: 0,
            reschedule_grace: shoal_actors::reschedule::DEFAULT_GRACE,
        }
    }
}

impl PlacementConfig {
    pub fn from_args(
        strategy: &str,
        filters: &[String],
        opts: &[String],
    ) -> Result<Self, ConfigError> {
        let mut overcommit = 0.05;
        let mut create_retry = shoal_actors::create::flow::DEFAULT_RETRIES;
        for opt in opts {
            let bad = || ConfigError::ClusterOpt(opt.clone());
            match opt.split_once('=') {
                Some(("swarm.overcommit", v)) => {
                    overcommit = v.trim().parse().map_err(|_| bad())?
                }
                Some(("swarm.createretry", v)) => {
                    create_retry = v.trim().parse().map_err(|_| bad())?
                }
                _ => return Err(bad()),
            }
        }
        let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
        Ok(PlacementConfig {
            scheduler: SchedulerConfig::parse(strategy, &filters, overcommit)?,
            create_retry,
            ..PlacementConfig::default()
        })
    }
}

/// Where the API listens.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenAddr {
    Tcp(String),
    Unix(PathBuf),
}

impl ListenAddr {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        if let Some(p) = s.strip_prefix("unix://") {
            if !p.starts_with('/') {
                return Err(ConfigError::Listen(s.to_string()));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(p)));
        }
        let hp = s.strip_prefix("tcp://").unwrap_or(s);
        match hp.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                Ok(ListenAddr::Tcp(hp.to_string()))
            }
            _ => Err(ConfigError::Listen(s.to_string())),
        }
    }
}

/// Where the engines come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineSource {
    Discovery(Discovery),
    Simulated(usize),
}

/// Which TLS files the flags name, checked for sense before any is read.
fn tls_files(
    args: &TlsArgs,
    engines: &EngineSource,
) -> Result<(Option<ApiTlsFiles>, Option<EngineTlsFiles>), ConfigError> {
    let on = args.tls || args.tlsverify;
    let named = args.tlscacert.is_some() || args.tlscert.is_some() || args.tlskey.is_some();
    if !on && named {
        // Files without the switch would read as protection that is not there.
        return Err(ConfigError::TlsFlags(
            "--tlscacert, --tlscert and --tlskey take effect with --tls or --tlsverify: add one",
        ));
    }
    let api = match (on, &args.tlscert, &args.tlskey) {
        (false, _, _) => None,
        (true, Some(cert), Some(key)) => Some(ApiTlsFiles {
            auth: match (args.tlsverify, &args.tlscacert) {
                (true, Some(_)) => ClientAuth::Required,
                (true, None) => return Err(ConfigError::TlsFlags(
                    "--tlsverify needs --tlscacert: the CA that signs the clients' certificates",
                )),
                (false, Some(_)) => ClientAuth::Optional,
                (false, None) => ClientAuth::None,
            },
            ca: args.tlscacert.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }),
        (true, _, _) => {
            return Err(ConfigError::TlsFlags(
                "--tls and --tlsverify need --tlscert and --tlskey: Shoal's certificate and key",
            ))
        }
    };
    // Engines: TLS as soon as the manager has it (classic Swarm) or --engine-tlscacert asks
    // for it. Simulated engines and a unix-socket engine speak plain HTTP.
    let plain_engines = matches!(
        engines,
        EngineSource::Simulated(_) | EngineSource::Discovery(Discovery::Unix(_))
    );
    let wanted = on || args.engine.ca.is_some() || args.engine.cert.is_some();
    let engine = if !wanted || plain_engines {
        None
    } else {
        let ca = args
            .engine
            .ca
            .clone()
            .or_else(|| args.tlscacert.clone())
            .ok_or(ConfigError::TlsFlags(
                "TLS to engines needs a CA to check them: add --tlscacert or --engine-tlscacert",
            ))?;
        let cert_key = args
            .engine
            .cert_key()
            .or_else(|| args.tlscert.clone().zip(args.tlskey.clone()));
        Some(EngineTlsFiles { ca, cert_key })
    };
    Ok((api, engine))
}

#[derive(Debug, Clone)]
pub struct ManageConfig {
    pub listen: ListenAddr,
    pub engines: EngineSource,
    pub cluster: ClusterConfig,
    pub placement: PlacementConfig,
    pub observe: crate::telemetry::ObserveConfig,
    pub api: crate::api::ApiConfig,
    pub tls: TlsConfig,
    /// `--replication`: one of several managers, see `crate::replication`.
    pub replication: Option<crate::replication::ReplicationConfig>,
}

impl ManageConfig {
    pub fn from_args(args: &ManageArgs) -> Result<Self, ConfigError> {
        Self::from_args_with_local(args, Path::new(LOCAL_ENGINE))
    }

    /// As `from_args`, with the local engine's socket path given (tests use a path that
    /// does not exist).
    pub fn from_args_with_local(args: &ManageArgs, local: &Path) -> Result<Self, ConfigError> {
        if args.engine_refresh_min_interval > args.engine_refresh_max_interval {
            return Err(ConfigError::RefreshOrder {
                min: args.engine_refresh_min_interval,
                max: args.engine_refresh_max_interval,
            });
        }
        let engines = match (&args.sim, &args.discovery) {
            (Some(0), _) => return Err(ConfigError::NoSimEngines),
            (Some(n), _) => EngineSource::Simulated(*n),
            (None, Some(d)) => {
                EngineSource::Discovery(Discovery::parse_with_opts(d, &args.discovery_opt.opts)?)
            }
            _ if !args.discovery_opt.opts.is_empty() => {
                return Err(DiscoveryError::OptsWithoutEtcd.into())
            }
            #[allow(
                clippy::disallowed_methods,
                reason = "start-up: `main` checks the configuration before the runtime starts"
            )]
            (None, None) if local.exists() => {
                EngineSource::Discovery(Discovery::Unix(local.to_path_buf()))
            }
            (None, None) => return Err(ConfigError::NoDefaultEngine),
        };
        let replication = replication(args, &engines)?;
        let (api_tls, engine_tls) = tls_files(&args.tls, &engines)?;
        let tls = TlsConfig::load(
            api_tls.as_ref(),
            engine_tls.as_ref(),
            args.tls.insecure_listen,
        )?;
        let authz = match &args.authz_policy {
            None => None,
            Some(_) if !tls.verifies_clients() => return Err(ConfigError::AuthzWithoutTls),
            Some(path) => Some(crate::authz::AuthzConfig {
                policy: crate::authz::Policy::load(path)?,
                path: path.clone(),
            }),
        };
        Ok(ManageConfig {
            replication,
            tls,
            placement: PlacementConfig {
                reschedule_grace: args.reschedule_grace,
                ..PlacementConfig::from_args(&args.strategy, &args.filters, &args.cluster_opts)?
            },
            listen: ListenAddr::parse(&args.host)?,
            engines,
            cluster: ClusterConfig {
                node: NodeConfig {
                    refresh_min: args.engine_refresh_min_interval,
                    refresh_max: args.engine_refresh_max_interval,
                    failure_retry: args.engine_failure_retry,
                },
                timeouts: Timeouts {
                    call: args.engine_timeout,
                    long: args.engine_work_timeout,
                },
                engine_connections: Some(
                    args.engine_connections
                        .map_or_else(default_engine_connections, |n| {
                            usize::try_from(n).unwrap_or(usize::MAX)
                        }),
                ),
                ..ClusterConfig::default()
            },
            observe: crate::telemetry::ObserveConfig {
                debug: args.debug,
                metrics_addr: args.metrics_addr.clone(),
            },
            api: crate::api::ApiConfig {
                // An empty value is dockerd's "off".
                cors_header: args
                    .api_cors_header
                    .clone()
                    .filter(|c| !c.trim().is_empty()),
                authz,
            },
        })
    }
}

/// The engine connections allowed without `--engine-connections`: four fifths of the
/// open-file limit (`main` has raised the soft limit to the hard one by now), the fifth left
/// for clients, listeners, etcd and files.
fn default_engine_connections() -> usize {
    use rustix::process::{getrlimit, Resource};
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    usize::try_from(limit / 5 * 4).unwrap_or(usize::MAX)
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: their own thread, no runtime to stall"
)]
mod tests;
