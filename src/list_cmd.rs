//! `shoal list`: the engines a discovery yields, or the nodes of a running Shoal with their
//! health (read from its `/shoal/api/cluster`, the same source as the page; `docker info`
//! and the metrics read the same snapshots).

use crate::cli::ListArgs;
use crate::discovery::{Discovery, DiscoveryError};
use serde::Deserialize;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ListError {
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("cannot ask shoal at {host}: {reason}")]
    Manager { host: String, reason: String },
    #[error("give a DISCOVERY or -H HOST")]
    Nothing,
}

#[derive(Debug, Deserialize)]
struct Cluster {
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
struct Node {
    name: String,
    addr: String,
    health: String,
    containers: Containers,
}

#[derive(Debug, Deserialize)]
struct Containers {
    total: usize,
}

/// The lines `shoal list` prints.
pub fn run(args: &ListArgs) -> Result<Vec<String>, ListError> {
    match (&args.discovery, &args.host) {
        (Some(d), _) => {
            let discovery = Discovery::parse_with_opts(d, &args.discovery_opts)?;
            let addrs = actix_rt::System::new().block_on(async move { discovery.read().await })?;
            Ok(addrs.iter().map(ToString::to_string).collect())
        }
        (None, Some(host)) => {
            let host = host.trim_start_matches("tcp://").to_string();
            let cluster = actix_rt::System::new().block_on(ask(host.clone()))?;
            Ok(cluster
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{}\t{}\t{}\t{} containers",
                        n.name, n.addr, n.health, n.containers.total
                    )
                })
                .collect())
        }
        (None, None) => Err(ListError::Nothing),
    }
}

async fn ask(host: String) -> Result<Cluster, ListError> {
    let fail = |reason: String| ListError::Manager {
        host: host.clone(),
        reason,
    };
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut resp = client
        .get(format!("http://{host}/shoal/api/cluster"))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("status {}", resp.status())));
    }
    resp.json::<Cluster>()
        .limit(64 << 20)
        .await
        .map_err(|e| fail(e.to_string()))
}
