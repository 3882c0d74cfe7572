//! The cluster as the HTTP front reads it: every node's latest snapshot, the names shown for
//! nodes, and the resolution of a container reference to its node.
//!
//! `ClusterView` is published by the ClusterActor when the set of nodes changes; each entry
//! holds the node's own watch receiver, so reading the whole cluster costs one borrow per
//! node and no message.

use crate::engine::EngineAddr;
use crate::node::{ContainerEntry, NodeActor, NodeSnapshot};
use actix::Addr;
use std::collections::HashMap;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::watch;

/// One node as the front sees it: its actor and its published state.
#[derive(Clone)]
pub struct NodeHandle {
    pub addr: EngineAddr,
    pub actor: Addr<NodeActor>,
    pub state: watch::Receiver<Arc<NodeSnapshot>>,
}

/// The set of nodes, ordered by address.
#[derive(Clone, Default)]
pub struct ClusterView {
    pub nodes: Vec<NodeHandle>,
}

/// A consistent read of every node, with the name each is shown under.
pub struct ClusterRead {
    pub nodes: Vec<NodeRead>,
}

pub struct NodeRead {
    pub handle: NodeHandle,
    pub snapshot: Arc<NodeSnapshot>,
    /// The engine's name, or `name@address` when several engines share it (cloned machines
    /// do), so names shown to users always tell nodes apart.
    pub name: String,
}

#[derive(Debug, Error, PartialEq)]
pub enum ResolveError {
    #[error("No such container: {0}")]
    NotFound(String),
    /// Docker's own text for a prefix that matches several containers.
    #[error("multiple IDs found with provided prefix: {0}")]
    AmbiguousPrefix(String),
    /// A bare name that several nodes use: the `/node/name` form picks one.
    #[error("container name {name} is used on several nodes ({nodes}); use /<node>/{name}")]
    AmbiguousName { name: String, nodes: String },
}

impl ClusterView {
    pub fn read(&self) -> ClusterRead {
        let snaps: Vec<Arc<NodeSnapshot>> = self
            .nodes
            .iter()
            .map(|n| n.state.borrow().clone())
            .collect();
        let mut counts: HashMap<String, usize> = HashMap::with_capacity(snaps.len());
        let engine_names: Vec<String> = snaps.iter().map(|s| s.engine_name()).collect();
        for n in &engine_names {
            *counts.entry(n.clone()).or_default() += 1;
        }
        let nodes = self
            .nodes
            .iter()
            .zip(snaps)
            .zip(engine_names)
            .map(|((handle, snapshot), engine_name)| {
                let name = if counts.get(&engine_name).copied().unwrap_or(0) > 1 {
                    format!("{engine_name}@{}", handle.addr)
                } else {
                    engine_name
                };
                NodeRead {
                    handle: handle.clone(),
                    snapshot,
                    name,
                }
            })
            .collect::<Vec<NodeRead>>();
        let mut nodes = nodes;
        // Shown by name, as users look for them; the address breaks ties.
        nodes.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.handle.addr.cmp(&b.handle.addr))
        });
        ClusterRead { nodes }
    }
}

impl ClusterRead {
    /// Finds the container `reference` names, as Docker does on one engine (full ID, then
    /// exact name, then unique ID prefix), over all nodes; `/node/name` names a container on
    /// one node. Answers the node's index in `nodes` and the container.
    pub fn resolve_container(
        &self,
        reference: &str,
    ) -> Result<(usize, &ContainerEntry), ResolveError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(ResolveError::NotFound(reference.to_string()));
        }
        // Full ID.
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(e) = n.snapshot.containers.by_id(reference) {
                return Ok((i, e));
            }
        }
        // `/node/name` (or `node/name`).
        let bare = reference.trim_start_matches('/');
        if let Some((node, name)) = bare.split_once('/') {
            return self
                .nodes
                .iter()
                .enumerate()
                .find(|(_, n)| n.name == node)
                .and_then(|(i, n)| n.snapshot.containers.by_name(name).map(|e| (i, e)))
                .ok_or_else(|| ResolveError::NotFound(reference.to_string()));
        }
        // Exact name.
        let named: Vec<(usize, &ContainerEntry)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.snapshot.containers.by_name(bare).map(|e| (i, e)))
            .collect();
        match named.len() {
            1 => return Ok(named[0]),
            0 => {}
            _ => {
                let nodes = named
                    .iter()
                    .map(|(i, _)| self.nodes[*i].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ResolveError::AmbiguousName {
                    name: bare.to_string(),
                    nodes,
                });
            }
        }
        // Unique ID prefix.
        let mut found: Option<(usize, &ContainerEntry)> = None;
        for (i, n) in self.nodes.iter().enumerate() {
            for e in &n.snapshot.containers.entries {
                if e.id().starts_with(reference) {
                    if found.is_some() {
                        return Err(ResolveError::AmbiguousPrefix(reference.to_string()));
                    }
                    found = Some((i, e));
                }
            }
        }
        found.ok_or_else(|| ResolveError::NotFound(reference.to_string()))
    }

    /// The lowest API version among healthy nodes (what every engine can speak).
    pub fn api_version(&self) -> Option<String> {
        self.nodes
            .iter()
            .filter(|n| n.snapshot.health == crate::node::Health::Healthy)
            .filter_map(|n| n.snapshot.facts.as_ref().map(|f| f.api_version.clone()))
            .min_by(|a, b| compare_versions(a, b))
    }
}

/// Compares dotted API versions numerically (`1.9` < `1.41`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a).cmp(&parts(b))
}
