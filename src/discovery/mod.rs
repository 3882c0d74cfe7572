//! Discovery: which engines form the cluster.
//!
//! `nodes://h1:2375,h2:2375` and `file:///path` (one address a line, `#` comments) list
//! TCP engines, with ranges like `10.0.0.[10:20]:2375`; `unix:///path` is one local engine.
//! A file is read again every `FILE_POLL` and a change reaches the ClusterActor as a new
//! `SetEngines`, so nodes are added and removed without a restart. `etcd://h:2379/prefix`
//! lists the engines `shoal join` registered, followed by a watch (`etcd.rs`).

pub mod etcd;
mod range;

use actix::Addr;
use shoal_actors::cluster::{ClusterActor, SetEngines};
use shoal_actors::engine::{AddrError, EngineAddr};
use shoal_actors::etcd::{EtcdConfig, EtcdError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::watch;

pub use etcd::DiscoveryStatus;
pub use range::expand_ranges;

/// How often a discovery file is read again.
pub const FILE_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    Nodes(Vec<EngineAddr>),
    File(PathBuf),
    Unix(PathBuf),
    Etcd(EtcdConfig),
}

#[derive(Debug, Error, PartialEq)]
pub enum DiscoveryError {
    #[error("unknown discovery {0:?}: use nodes://host:port,..., file:///path, unix:///path or etcd://host:port/prefix")]
    UnknownScheme(String),
    #[error("discovery {0:?} lists no engine")]
    Empty(String),
    #[error("{0}")]
    Addr(#[from] AddrError),
    #[error("bad range in {0:?}: write [first:last] with first <= last, e.g. 10.0.0.[10:20]:2375")]
    Range(String),
    #[error("cannot read discovery file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Etcd(#[from] EtcdError),
    #[error("etcd unreachable: {0}")]
    EtcdDown(String),
    #[error("--discovery-opt applies to etcd:// discovery only")]
    OptsWithoutEtcd,
}

impl Discovery {
    pub fn parse(uri: &str) -> Result<Self, DiscoveryError> {
        let uri = uri.trim();
        if let Some(list) = uri.strip_prefix("nodes://") {
            let addrs = parse_list(list.split(','))?;
            if addrs.is_empty() {
                return Err(DiscoveryError::Empty(uri.to_string()));
            }
            Ok(Discovery::Nodes(addrs))
        } else if let Some(path) = uri.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(DiscoveryError::UnknownScheme(uri.to_string()));
            }
            Ok(Discovery::File(PathBuf::from(path)))
        } else if uri.starts_with("etcd://") {
            Ok(Discovery::Etcd(EtcdConfig::parse(uri)?))
        } else if uri.starts_with("unix://") {
            match uri.parse::<EngineAddr>()? {
                EngineAddr::Unix(p) => Ok(Discovery::Unix(p)),
                EngineAddr::Tcp { .. } => Err(DiscoveryError::UnknownScheme(uri.to_string())),
            }
        } else {
            Err(DiscoveryError::UnknownScheme(uri.to_string()))
        }
    }

    /// `DISCOVERY` with its `--discovery-opt`s (the `kv.*` TLS files of etcd).
    pub fn parse_with_opts(uri: &str, opts: &[String]) -> Result<Self, DiscoveryError> {
        match Self::parse(uri)? {
            Discovery::Etcd(config) => Ok(Discovery::Etcd(config.with_opts(opts)?)),
            _ if !opts.is_empty() => Err(DiscoveryError::OptsWithoutEtcd),
            other => Ok(other),
        }
    }

    /// The engines this discovery lists now.
    pub async fn read(&self) -> Result<Vec<EngineAddr>, DiscoveryError> {
        match self {
            Discovery::Nodes(addrs) => Ok(addrs.clone()),
            Discovery::Unix(p) => Ok(vec![EngineAddr::Unix(p.clone())]),
            Discovery::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| file_error(path, e))?;
                parse_file(&text)
            }
            Discovery::Etcd(config) => etcd::read(config).await,
        }
    }

    /// A discovery whose state can change while Shoal runs reports it here (etcd).
    pub fn status(
        &self,
    ) -> Option<(
        watch::Sender<DiscoveryStatus>,
        watch::Receiver<DiscoveryStatus>,
    )> {
        match self {
            Discovery::Etcd(_) => Some(watch::channel(DiscoveryStatus::default())),
            _ => None,
        }
    }

    /// Sends the list to the cluster now, then again whenever it changes. Errors while
    /// watching keep the last good list (a file being rewritten must not empty the cluster).
    /// etcd follows its keys instead, and reports its link to `status`.
    pub async fn run(
        self,
        cluster: Addr<ClusterActor>,
        first: Vec<EngineAddr>,
        status: Option<watch::Sender<DiscoveryStatus>>,
    ) {
        if let (Discovery::Etcd(config), Some(status)) = (&self, status) {
            if let Err(e) = etcd::run(config.clone(), cluster, first, status).await {
                tracing::error!(error = %e, "etcd discovery stopped");
            }
            return;
        }
        let mut last = first;
        shoal_actors::metrics::queued("cluster", "cluster");
        if cluster.send(SetEngines(last.clone())).await.is_err() {
            return;
        }
        if !matches!(self, Discovery::File(_)) {
            return;
        }
        loop {
            actix_rt::time::sleep(FILE_POLL).await;
            match self.read().await {
                Ok(now) if now != last => {
                    tracing::info!(engines = now.len(), "discovery file changed");
                    last = now;
                    shoal_actors::metrics::queued("cluster", "cluster");
                    if cluster.send(SetEngines(last.clone())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "discovery read failed; keeping the last list")
                }
            }
        }
    }
}

fn file_error(path: &Path, e: std::io::Error) -> DiscoveryError {
    DiscoveryError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// The addresses in the order given, each once. The seen set keeps a re-read of a file of
/// 5,000 engines linear (a search of the list so far was 12.5 M comparisons a read).
fn parse_list<'a>(items: impl Iterator<Item = &'a str>) -> Result<Vec<EngineAddr>, DiscoveryError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for item in items.map(str::trim).filter(|s| !s.is_empty()) {
        for expanded in expand_ranges(item)? {
            let addr = expanded.parse::<EngineAddr>()?;
            if seen.insert(addr.clone()) {
                out.push(addr);
            }
        }
    }
    Ok(out)
}

/// One address a line; `#` starts a comment; blank lines are skipped.
pub fn parse_file(text: &str) -> Result<Vec<EngineAddr>, DiscoveryError> {
    parse_list(text.lines().map(|l| l.split('#').next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str, p: u16) -> EngineAddr {
        EngineAddr::Tcp {
            host: h.into(),
            port: p,
        }
    }

    #[test]
    fn nodes_list_with_a_range() {
        let d = Discovery::parse("nodes://h1:2375, 10.0.0.[1:3]:2376").unwrap();
        assert_eq!(
            d,
            Discovery::Nodes(vec![
                tcp("h1", 2375),
                tcp("10.0.0.1", 2376),
                tcp("10.0.0.2", 2376),
                tcp("10.0.0.3", 2376)
            ])
        );
    }

    #[test]
    fn file_lines_comments_and_duplicates() {
        let text = "# engines\nh1:1 # first\n\n  h2:2\nh1:1\nn[8:9]:3\n";
        assert_eq!(
            parse_file(text).unwrap(),
            vec![tcp("h1", 1), tcp("h2", 2), tcp("n8", 3), tcp("n9", 3)]
        );
    }

    #[test]
    fn unix_and_file_schemes() {
        assert_eq!(
            Discovery::parse("unix:///var/run/docker.sock").unwrap(),
            Discovery::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            Discovery::parse("file:///etc/shoal/engines").unwrap(),
            Discovery::File("/etc/shoal/engines".into())
        );
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(
            Discovery::parse("consul://x"),
            Err(DiscoveryError::UnknownScheme(_))
        ));
        assert!(matches!(
            Discovery::parse("nodes://"),
            Err(DiscoveryError::Empty(_))
        ));
        assert!(matches!(
            Discovery::parse("nodes://h"),
            Err(DiscoveryError::Addr(_))
        ));
        assert!(matches!(
            Discovery::parse("nodes://h[3:1]:1"),
            Err(DiscoveryError::Range(_))
        ));
        assert!(matches!(
            Discovery::parse("file://relative"),
            Err(DiscoveryError::UnknownScheme(_))
        ));
    }

    #[test]
    fn etcd_with_its_options() {
        let opts = ["kv.cacertfile=/ca.pem".to_string()];
        match Discovery::parse_with_opts("etcd://h1:2379,h2:2379/shoal", &opts).unwrap() {
            Discovery::Etcd(c) => {
                assert_eq!(c.endpoints, ["h1:2379", "h2:2379"]);
                assert_eq!(c.prefix, "/shoal");
                assert_eq!(
                    etcd::node_key(&c, "10.0.0.1:2375"),
                    "/shoal/nodes/10.0.0.1:2375"
                );
                assert!(c.tls.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Discovery::parse_with_opts("nodes://h:1", &opts),
            Err(DiscoveryError::OptsWithoutEtcd)
        );
        assert!(matches!(
            Discovery::parse("etcd://h:port/p"),
            Err(DiscoveryError::Etcd(_))
        ));
    }

    #[test]
    fn etcd_keys_that_are_not_engines_are_skipped() {
        use shoal_actors::etcd::{Link, PrefixView};
        let view = PrefixView {
            entries: ["10.0.0.1:2375", "garbage", "h:2376", "/x"]
                .iter()
                .map(|k| (k.to_string(), Vec::new()))
                .collect(),
            revision: 7,
            link: Link::Up,
        };
        assert_eq!(
            etcd::engines(&view),
            vec![tcp("10.0.0.1", 2375), tcp("h", 2376)]
        );
    }

    #[actix_rt::test]
    async fn a_missing_file_is_a_read_error() {
        let d = Discovery::parse("file:///nonexistent/shoal-engines").unwrap();
        let e = d.read().await.unwrap_err();
        assert!(e
            .to_string()
            .starts_with("cannot read discovery file /nonexistent/shoal-engines"));
    }
}
