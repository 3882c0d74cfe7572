//! `ManageConfig`: the manager's configuration, checked once at start from the command line
//! and passed down by value. Every mistake a user can make here is a one-line error.

use crate::cli::ManageArgs;
use crate::discovery::{Discovery, DiscoveryError};
use shoal_actors::cluster::ClusterConfig;
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
    Scheduler(#[from] scheduler::ConfigError),
    #[error("bad --cluster-opt {0:?}: use swarm.overcommit=<ratio> or swarm.createretry=<count>")]
    ClusterOpt(String),
}

/// Placement settings: the scheduler's own, and the front's retry count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlacementConfig {
    pub scheduler: SchedulerConfig,
    /// Further nodes tried when an engine fails a create (`swarm.createretry`, default
    /// `DEFAULT_RETRIES`).
    pub create_retry: u32,
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

#[derive(Debug, Clone)]
pub struct ManageConfig {
    pub listen: ListenAddr,
    pub engines: EngineSource,
    pub cluster: ClusterConfig,
    pub placement: PlacementConfig,
    pub observe: crate::telemetry::ObserveConfig,
    pub api: crate::api::ApiConfig,
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
            (None, Some(d)) => EngineSource::Discovery(Discovery::parse(d)?),
            #[allow(
                clippy::disallowed_methods,
                reason = "start-up: `main` checks the configuration before the runtime starts"
            )]
            (None, None) if local.exists() => {
                EngineSource::Discovery(Discovery::Unix(local.to_path_buf()))
            }
            (None, None) => return Err(ConfigError::NoDefaultEngine),
        };
        Ok(ManageConfig {
            placement: PlacementConfig::from_args(
                &args.strategy,
                &args.filters,
                &args.cluster_opts,
            )?,
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
                    ..Timeouts::default()
                },
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
            },
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: their own thread, no runtime to stall"
)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(line: &[&str]) -> ManageArgs {
        let mut full = vec!["shoal", "manage"];
        full.extend_from_slice(line);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Manage(a) => *a,
            other => panic!("not manage: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c =
            ManageConfig::from_args_with_local(&args(&["nodes://h:1"]), Path::new("/nonexistent"))
                .unwrap();
        assert_eq!(c.listen, ListenAddr::Tcp("127.0.0.1:2375".into()));
        assert_eq!(
            c.cluster.node.refresh_min,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            c.cluster.node.refresh_max,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(c.cluster.node.failure_retry, 3);
        assert_eq!(c.api.cors_header, None);
    }

    #[test]
    fn cors_header_is_dockerds_flag() {
        let none = Path::new("/nonexistent");
        let c = |line: &[&str]| ManageConfig::from_args_with_local(&args(line), none).unwrap();
        let on = c(&["--api-cors-header", "http://ui.local", "nodes://h:1"]);
        assert_eq!(on.api.cors_header.as_deref(), Some("http://ui.local"));
        assert_eq!(
            c(&["--api-cors-header=", "nodes://h:1"]).api.cors_header,
            None
        );
    }

    #[test]
    fn no_discovery_uses_the_local_engine_or_says_what_to_pass() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        std::fs::write(&sock, b"").unwrap();
        let c = ManageConfig::from_args_with_local(&args(&[]), &sock).unwrap();
        assert_eq!(c.engines, EngineSource::Discovery(Discovery::Unix(sock)));
        let e =
            ManageConfig::from_args_with_local(&args(&[]), Path::new("/nonexistent")).unwrap_err();
        assert!(e.to_string().contains("shoal manage nodes://"), "{e}");
    }

    #[test]
    fn bad_flags_are_errors() {
        let none = Path::new("/nonexistent");
        assert!(
            ManageConfig::from_args_with_local(&args(&["-H", "nowhere", "nodes://h:1"]), none)
                .is_err()
        );
        assert!(ManageConfig::from_args_with_local(&args(&["--sim", "0"]), none).is_err());
        assert!(ManageConfig::from_args_with_local(
            &args(&["--engine-refresh-min-interval", "2m", "nodes://h:1"]),
            none
        )
        .is_err());
        assert!(Cli::try_parse_from(["shoal", "manage", "--engine-failure-retry", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["shoal", "manage", "--engine-refresh-min-interval", "soon"])
                .is_err()
        );
        for bad in [
            vec!["--strategy", "fastest", "nodes://h:1"],
            vec!["--filter", "colour", "nodes://h:1"],
            vec!["--cluster-opt", "swarm.overcommit=lots", "nodes://h:1"],
            vec!["--cluster-opt", "swarm.unknown=1", "nodes://h:1"],
        ] {
            assert!(
                ManageConfig::from_args_with_local(&args(&bad), none).is_err(),
                "{bad:?}"
            );
        }
        let ok = ManageConfig::from_args_with_local(
            &args(&[
                "--strategy",
                "binpack",
                "--filter",
                "health",
                "--filter",
                "port",
                "--cluster-opt",
                "swarm.createretry=2",
                "nodes://h:1",
            ]),
            none,
        )
        .unwrap();
        assert_eq!(ok.placement.create_retry, 2);
        let default = PlacementConfig::from_args("spread", &[], &[]).unwrap();
        assert_eq!(default.create_retry, 2);
        let none = PlacementConfig::from_args("spread", &[], &["swarm.createretry=0".into()]);
        assert_eq!(none.unwrap().create_retry, 0);
        assert_eq!(ok.placement.scheduler.filters().len(), 2);
        assert_eq!(
            ListenAddr::parse("unix:///run/shoal.sock").unwrap(),
            ListenAddr::Unix("/run/shoal.sock".into())
        );
    }
}
