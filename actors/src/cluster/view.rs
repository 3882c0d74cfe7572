//! The cluster as the HTTP front reads it: every node's latest snapshot, the names shown for
//! nodes, and the resolution of a container reference to its node.
//!
//! `ClusterView` is published by the ClusterActor when the set of nodes changes; each entry
//! holds the node's own watch receiver, so reading the whole cluster costs one borrow per
//! node and no message. What changes rarely (node names, their order, the API version) is
//! worked out once per change (`Layout`) and published with the view: a NodeActor whose
//! name, health or API version changed tells the ClusterActor (`LayoutChanged`), which
//! publishes a view laid out anew. A container is found by its ID through the
//! `ClusterIndex`, so a request about one container does not read every node.
//!
//! Resolving a container for a call is also where a call to an unhealthy node is refused
//! (`ResolveError::NodeUnhealthy`): at once, naming the node, instead of after the engine
//! timeout, for every route that resolves a container.

use super::answer::AnswerMemo;
use super::index::ClusterIndex;
use crate::engine::EngineAddr;
use crate::node::{ContainerEntry, Health, NodeActor, NodeSnapshot};
use crate::scheduler::LABEL_SWARM_ID;
use actix::Addr;
use std::collections::HashMap;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::watch;

/// One node as the front sees it: its actor and its published state.
pub struct NodeHandle {
    pub addr: EngineAddr,
    pub actor: Addr<NodeActor>,
    pub state: watch::Receiver<Arc<NodeSnapshot>>,
}

/// The set of nodes, ordered by address.
#[derive(Default)]
pub struct ClusterView {
    pub nodes: Vec<Arc<NodeHandle>>,
    /// Position in `nodes` of each address (as written: the scheduler's node IDs).
    by_addr: HashMap<String, usize>,
    index: Arc<ClusterIndex>,
    /// The layout when the view was published (see `layout`).
    layout: Arc<Layout>,
    /// The last whole-cluster container list answer (see `answer`).
    pub list_answer: AnswerMemo,
}

/// The node names and order, and the API version, as of one `layout_epoch`.
#[derive(Default)]
struct Layout {
    epoch: u64,
    /// Positions in `nodes`, in the order nodes are shown: by name, then address.
    order: Vec<usize>,
    /// Shown name of each node, by position in `nodes`.
    names: Vec<Arc<str>>,
    api_version: Option<String>,
}

/// A consistent read of every node, with the name each is shown under.
pub struct ClusterRead {
    pub nodes: Vec<NodeRead>,
}

#[derive(Clone)]
pub struct NodeRead {
    pub handle: Arc<NodeHandle>,
    pub snapshot: Arc<NodeSnapshot>,
    /// The engine's name, or `name@address` when several engines share it (cloned machines
    /// do), so names shown to users always tell nodes apart.
    pub name: Arc<str>,
}

/// A container found by reference, with its node.
pub struct Found {
    pub node: NodeRead,
    /// The container's full ID.
    pub id: String,
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
    /// The container's node is unhealthy: a call to it would wait for the engine timeout
    /// and fail. Classic Swarm's words, with the node's address and last error.
    #[error("Container {reference} running on unhealthy node {node} ({addr}): {error}")]
    NodeUnhealthy {
        reference: String,
        node: String,
        addr: String,
        error: String,
    },
}

impl ResolveError {
    /// The HTTP status Docker (or classic Swarm) answers this with.
    pub fn status(&self) -> u16 {
        match self {
            ResolveError::NotFound(_) => 404,
            // Docker answers an ambiguous prefix with its System error kind.
            ResolveError::AmbiguousPrefix(_) => 500,
            ResolveError::AmbiguousName { .. } => 409,
            ResolveError::NodeUnhealthy { .. } => 503,
        }
    }
}

/// Refuses a call about container `reference` on `node` when the node is unhealthy.
fn routable(reference: &str, node: &NodeRead) -> Result<(), ResolveError> {
    if node.snapshot.health != Health::Unhealthy {
        return Ok(());
    }
    Err(ResolveError::NodeUnhealthy {
        reference: reference.to_string(),
        node: node.name.to_string(),
        addr: node.handle.addr.to_string(),
        error: node
            .snapshot
            .last_error
            .clone()
            .unwrap_or_else(|| "no answer".to_string()),
    })
}

impl ClusterView {
    /// The view of `nodes` (in address order), indexed in `index`.
    pub fn new(nodes: Vec<Arc<NodeHandle>>, index: Arc<ClusterIndex>) -> Self {
        let by_addr = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.addr.to_string(), i))
            .collect();
        let mut view = ClusterView {
            nodes,
            by_addr,
            layout: Arc::default(),
            index,
            list_answer: AnswerMemo::default(),
        };
        view.layout = Arc::new(view.lay_out(view.index.layout_epoch()));
        view
    }

    /// Whether a node changed its name, health or API version since this view was laid
    /// out: the ClusterActor then publishes a new view.
    pub fn layout_is_stale(&self) -> bool {
        self.layout.epoch != self.index.layout_epoch()
    }

    /// The layout of the nodes as they are now. Between a node's change and the
    /// ClusterActor's next view (a message away), a read lays the nodes out itself, for
    /// itself: names and the API version are never older than the snapshots read with them.
    fn layout(&self) -> Arc<Layout> {
        let epoch = self.index.layout_epoch();
        if self.layout.epoch == epoch {
            return self.layout.clone();
        }
        Arc::new(self.lay_out(epoch))
    }

    fn lay_out(&self, epoch: u64) -> Layout {
        let snaps: Vec<Arc<NodeSnapshot>> = self
            .nodes
            .iter()
            .map(|n| n.state.borrow().clone())
            .collect();
        let engine_names: Vec<String> = snaps.iter().map(|s| s.engine_name()).collect();
        let mut counts: HashMap<&str, usize> = HashMap::with_capacity(snaps.len());
        for n in &engine_names {
            *counts.entry(n.as_str()).or_default() += 1;
        }
        let names: Vec<Arc<str>> = engine_names
            .iter()
            .zip(&self.nodes)
            .map(|(engine_name, handle)| {
                if counts.get(engine_name.as_str()).copied().unwrap_or(0) > 1 {
                    Arc::from(format!("{engine_name}@{}", handle.addr))
                } else {
                    Arc::from(engine_name.as_str())
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        // Shown by name, as users look for them; the address breaks ties.
        order.sort_by(|&a, &b| {
            names[a]
                .cmp(&names[b])
                .then_with(|| self.nodes[a].addr.cmp(&self.nodes[b].addr))
        });
        let api_version = snaps
            .iter()
            .filter(|s| s.health == Health::Healthy)
            .filter_map(|s| s.facts.as_ref().map(|f| f.api_version.clone()))
            .min_by(|a, b| compare_versions(a, b));
        Layout {
            epoch,
            order,
            names,
            api_version,
        }
    }

    pub fn read(&self) -> ClusterRead {
        let layout = self.layout();
        let nodes = layout
            .order
            .iter()
            .map(|&i| self.node_read(i, &layout))
            .collect();
        ClusterRead { nodes }
    }

    /// Calls `f` with every node's shown name and snapshot, in the order `read` gives, as
    /// long as it answers true; answers whether it always did. Nothing is cloned: for a
    /// check of every node that most often finds what it expects (`ReadKey::matches_view`).
    pub fn visit(&self, mut f: impl FnMut(&Arc<str>, &Arc<NodeSnapshot>) -> bool) -> bool {
        let layout = self.layout();
        layout
            .order
            .iter()
            .all(|&i| f(&layout.names[i], &self.nodes[i].state.borrow()))
    }

    fn node_read(&self, i: usize, layout: &Layout) -> NodeRead {
        let handle = self.nodes[i].clone();
        let snapshot = handle.state.borrow().clone();
        NodeRead {
            handle,
            snapshot,
            name: layout.names[i].clone(),
        }
    }

    /// The lowest API version among healthy nodes (what every engine can speak).
    pub fn api_version(&self) -> Option<String> {
        self.layout().api_version.clone()
    }

    /// The node at `addr` (an `EngineAddr` as written).
    pub fn node(&self, addr: &str) -> Option<NodeRead> {
        let i = *self.by_addr.get(addr)?;
        Some(self.node_read(i, &self.layout()))
    }

    /// Finds the container `reference` names for a call to it, as
    /// [`ClusterRead::resolve_container`] does; a full ID is found through the index without
    /// reading every node.
    pub fn find_container(&self, reference: &str) -> Result<Found, ResolveError> {
        let reference = reference.trim();
        if let Some(node) = self
            .index
            .node_of(reference)
            .and_then(|addr| self.node(&addr.to_string()))
        {
            if node.snapshot.containers.by_id(reference).is_some() {
                routable(reference, &node)?;
                return Ok(Found {
                    node,
                    id: reference.to_string(),
                });
            }
        }
        let mut read = self.read();
        let (i, id) = {
            let (i, e) = read.resolve_container(reference)?;
            (i, e.id().to_string())
        };
        Ok(Found {
            node: read.nodes.swap_remove(i),
            id,
        })
    }
}

impl ClusterRead {
    /// Finds the container `reference` names for a call to it (see `lookup_container`), and
    /// refuses it at once when its node is unhealthy. Answers the node's index in `nodes`
    /// and the container.
    pub fn resolve_container(
        &self,
        reference: &str,
    ) -> Result<(usize, &ContainerEntry), ResolveError> {
        let (i, e) = self.lookup_container(reference)?;
        routable(reference.trim(), &self.nodes[i])?;
        Ok((i, e))
    }

    /// Finds the container `reference` names, as Docker does on one engine (full ID, then
    /// exact name, then unique ID prefix), over all nodes; `/node/name` names a container on
    /// one node. Whatever its node's health: for reading what is known of it.
    pub fn lookup_container(
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
                .find(|(_, n)| *n.name == *node)
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
        if let Some(one) = self.moved_one(&named) {
            return Ok(one);
        }
        match named.len() {
            1 => return Ok(named[0]),
            0 => {}
            _ => {
                let nodes = named
                    .iter()
                    .map(|(i, _)| &*self.nodes[*i].name)
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
}

impl ClusterRead {
    /// Of several containers of one name that share a `com.docker.swarm.id`, the one the
    /// name means: they are one container the rescheduler moved (the original stays on
    /// its failed node until that node returns), so the newest on a live node.
    fn moved_one<'a>(
        &self,
        named: &[(usize, &'a ContainerEntry)],
    ) -> Option<(usize, &'a ContainerEntry)> {
        if named.len() < 2 {
            return None;
        }
        let swarm_id = |e: &ContainerEntry| e.info.labels.get(LABEL_SWARM_ID).cloned();
        let first = swarm_id(named.first()?.1)?;
        if !named
            .iter()
            .all(|(_, e)| swarm_id(e).as_ref() == Some(&first))
        {
            return None;
        }
        named
            .iter()
            .filter(|(i, _)| self.nodes[*i].snapshot.health != Health::Unhealthy)
            .max_by_key(|(_, e)| e.created)
            .copied()
    }
}

/// Compares dotted API versions numerically (`1.9` < `1.41`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(a).cmp(&parts(b))
}
