//! `etcd://h1:2379,h2:2379/prefix`: the engines are the keys under `<prefix>/nodes/`, each
//! `<prefix>/nodes/<host:port>` written by `shoal join` and held by its lease.
//!
//! The manager follows them with a [`PrefixWatch`] (one `get`, then a watch from the next
//! revision: no polling, nothing missed) and sends the ClusterActor the whole list each
//! time it changes, as the other discoveries do. While etcd is unreachable the last list
//! stays (the nodes keep being served), the log and `docker info` say so, and the next
//! sync brings whatever changed meanwhile.

use super::DiscoveryError;
use actix::Addr;
use shoal_actors::cluster::{ClusterActor, SetEngines};
use shoal_actors::engine::EngineAddr;
use shoal_actors::etcd::{EtcdConfig, Link, PrefixView, PrefixWatch};
use std::collections::BTreeSet;
use tokio::sync::watch;

/// The folder of engine keys under the prefix.
pub const NODES: &str = "nodes";

/// What `docker info` shows of a discovery that can fail while Shoal runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DiscoveryStatus {
    /// `etcd://h1:2379/prefix`.
    pub source: String,
    /// `connected (revision 42)`, `connecting`, `unreachable since ...: error`.
    pub state: String,
    /// Said under `Warnings` while the discovery cannot be followed.
    pub warning: Option<String>,
}

/// The key of an engine: `<prefix>/nodes/<addr>`.
pub fn node_key(config: &EtcdConfig, addr: &str) -> String {
    config.key(&format!("{NODES}/{addr}"))
}

/// The engines a view lists; keys that are not `host:port` are skipped.
pub fn engines(view: &PrefixView) -> Vec<EngineAddr> {
    view.entries
        .keys()
        .filter_map(|k| match k.parse::<EngineAddr>() {
            Ok(a @ EngineAddr::Tcp { .. }) => Some(a),
            _ => {
                tracing::debug!(key = %k, "etcd node key is not host:port; skipped");
                None
            }
        })
        .collect()
}

/// The engines listed now (for `shoal list`): one `get`.
pub async fn read(config: &EtcdConfig) -> Result<Vec<EngineAddr>, DiscoveryError> {
    let etcd = config.load().await?;
    let watch = PrefixWatch::start(etcd, config.key(NODES));
    let mut view = watch.view();
    loop {
        let now = view.borrow_and_update().clone();
        match &now.link {
            Link::Up => return Ok(engines(&now)),
            Link::Down { error, .. } => return Err(DiscoveryError::EtcdDown(error.clone())),
            Link::Connecting => {}
        }
        if view.changed().await.is_err() {
            return Ok(Vec::new());
        }
    }
}

/// The engines listed at start, so the first view (and readiness) counts them; empty,
/// with a warning, when etcd does not answer within [`START_WAIT`].
pub async fn read_at_start(config: &EtcdConfig) -> Vec<EngineAddr> {
    match tokio::time::timeout(START_WAIT, read(config)).await {
        Ok(Ok(engines)) => engines,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "etcd unreachable at start: serving no engine until it answers");
            Vec::new()
        }
        Err(_) => {
            tracing::warn!(wait = ?START_WAIT, "etcd did not answer at start: serving no engine until it does");
            Vec::new()
        }
    }
}

/// How long the manager waits for etcd's list at start before serving without it.
pub const START_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Follows the engine keys until the cluster stops, sending `SetEngines` on each change
/// (`first`, the list read at start, at once) and publishing the link's state to
/// `status`.
pub async fn run(
    config: EtcdConfig,
    cluster: Addr<ClusterActor>,
    first: Vec<EngineAddr>,
    status: watch::Sender<DiscoveryStatus>,
) -> Result<(), DiscoveryError> {
    let source = format!("etcd://{}{}", config.endpoints.join(","), config.prefix);
    let etcd = config.load().await?;
    let mut sent: Option<BTreeSet<EngineAddr>> = None;
    if !first.is_empty() {
        let set = first.iter().cloned().collect();
        shoal_actors::metrics::queued("cluster", "cluster");
        if cluster.send(SetEngines(first)).await.is_err() {
            return Ok(());
        }
        sent = Some(set);
    }
    let watch = PrefixWatch::start(etcd, config.key(NODES));
    let mut view = watch.view();
    loop {
        let now = view.borrow_and_update().clone();
        status.send_replace(describe(&source, &now));
        // Only a synced view is a list of engines: while etcd is down the last one stays.
        if now.link == Link::Up {
            let list = engines(&now);
            let set: BTreeSet<EngineAddr> = list.iter().cloned().collect();
            if sent.as_ref() != Some(&set) {
                tracing::info!(
                    engines = list.len(),
                    revision = now.revision,
                    "etcd discovery: engines changed"
                );
                shoal_actors::metrics::queued("cluster", "cluster");
                if cluster.send(SetEngines(list)).await.is_err() {
                    return Ok(());
                }
                sent = Some(set);
            }
        }
        if view.changed().await.is_err() {
            return Ok(());
        }
    }
}

fn describe(source: &str, view: &PrefixView) -> DiscoveryStatus {
    let (state, warning) = match &view.link {
        Link::Connecting => ("connecting".to_string(), None),
        Link::Up => (format!("connected (revision {})", view.revision), None),
        Link::Down { since, error } => {
            let since = humantime::format_rfc3339_seconds(*since);
            (
                format!("unreachable since {since}: {error}"),
                Some(format!(
                    "etcd discovery {source} is unreachable since {since} ({error}): serving the {} engines known then; joins and leaves are seen when etcd answers again",
                    view.entries.len()
                )),
            )
        }
    };
    DiscoveryStatus {
        source: source.to_string(),
        state,
        warning,
    }
}
