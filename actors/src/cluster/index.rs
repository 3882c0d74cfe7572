//! What the front needs to route a request without reading every node: which node holds
//! each container, and a counter of the changes that rename nodes or change the cluster's
//! API version. NodeActors keep it up to date as they publish.
//!
//! At a thousand nodes, reading every node's snapshot for each `start` or `inspect` (and
//! naming and sorting every node for each versioned request) cost more than the rest of the
//! request. With this, finding a container by its full ID is one hash lookup, and the node
//! names and the API version are worked out again only when they can have changed.
//!
//! It is an index, not the truth: a hit is checked against the node's snapshot, and a miss
//! falls back to reading every node, so a change that is published but not yet indexed is
//! never lost.

use crate::engine::EngineAddr;
use crate::node::{ContainerTable, NodeSnapshot};
use crate::shared_list::positional_changes;
use foldhash::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct ClusterIndex {
    containers: RwLock<Containers>,
    layout_epoch: AtomicU64,
}

/// Container → node, kept small because it has an entry per container of the cluster
/// (150,000 at 5,000 × 30). A key is a 64-bit digest of the ID and a value a node's number,
/// 12 bytes an entry instead of an ID `String` and an `EngineAddr` with its own host
/// `String` (~150 bytes with the allocator's rounding). Two IDs with one digest (about one
/// chance in 10^9 at 150,000 containers) cost nothing but a fallback: the index then names
/// the wrong node for one of them, the hit is checked against that node's snapshot, and the
/// miss reads every node, as for an ID not yet indexed.
#[derive(Debug, Default)]
struct Containers {
    by_id: HashMap<u64, u32>,
    /// Node numbers: a node keeps its number for the life of the process (a restarted
    /// node is the same address), so an entry never names a node that was renumbered. The
    /// table grows with the addresses ever seen, a few bytes each.
    nodes: Vec<EngineAddr>,
    numbers: HashMap<EngineAddr, u32>,
    digest: foldhash::quality::RandomState,
}

impl Containers {
    fn digest(&self, id: &str) -> u64 {
        self.digest.hash_one(id)
    }

    fn number(&mut self, addr: &EngineAddr) -> u32 {
        if let Some(&n) = self.numbers.get(addr) {
            return n;
        }
        let n = self.nodes.len() as u32;
        self.nodes.push(addr.clone());
        self.numbers.insert(addr.clone(), n);
        n
    }
}

impl ClusterIndex {
    /// The node that last published container `id` (a full ID).
    pub fn node_of(&self, id: &str) -> Option<EngineAddr> {
        let map = self.containers.read().unwrap_or_else(|p| p.into_inner());
        let n = *map.by_id.get(&map.digest(id))?;
        map.nodes.get(n as usize).cloned()
    }

    /// Counts the changes to node names, health and API versions (see `published`).
    pub fn layout_epoch(&self) -> u64 {
        self.layout_epoch.load(Ordering::Acquire)
    }

    /// Follows node `addr` going from snapshot `old` to `new`; answers whether the layout
    /// (names, health, API versions) changed.
    pub fn published(&self, addr: &EngineAddr, old: &NodeSnapshot, new: &NodeSnapshot) -> bool {
        let facts_changed = match (&old.facts, &new.facts) {
            (Some(a), Some(b)) => {
                a.name != b.name || a.api_version != b.api_version || a.id != b.id
            }
            (None, None) => false,
            _ => true,
        };
        let layout_changed = facts_changed || old.health != new.health;
        if layout_changed {
            self.layout_epoch.fetch_add(1, Ordering::AcqRel);
        }
        if !std::sync::Arc::ptr_eq(&old.containers, &new.containers) {
            self.containers_changed(addr, &old.containers, &new.containers);
        }
        layout_changed
    }

    fn containers_changed(&self, addr: &EngineAddr, old: &ContainerTable, new: &ContainerTable) {
        let (was, is) = positional_changes(&old.entries, &new.entries);
        let added: Vec<&str> = is
            .iter()
            .map(|e| e.id())
            .filter(|id| old.by_id(id).is_none())
            .collect();
        let gone: Vec<&str> = was
            .iter()
            .map(|e| e.id())
            .filter(|id| new.by_id(id).is_none())
            .collect();
        if added.is_empty() && gone.is_empty() {
            return;
        }
        let mut map = self.containers.write().unwrap_or_else(|p| p.into_inner());
        let node = map.number(addr);
        for id in gone {
            let key = map.digest(id);
            if map.by_id.get(&key) == Some(&node) {
                map.by_id.remove(&key);
            }
        }
        for id in added {
            let key = map.digest(id);
            map.by_id.insert(key, node);
        }
    }

    /// Forgets the containers of a node that stopped (a restarted node indexes them again).
    pub fn forget(&self, addr: &EngineAddr, table: &ContainerTable) {
        self.containers_changed(addr, table, &ContainerTable::default());
        self.layout_epoch.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Health;
    use bollard_stubs::models::ContainerSummary;
    use std::sync::Arc;

    fn snapshot(addr: &EngineAddr, ids: &[&str]) -> NodeSnapshot {
        let mut s = NodeSnapshot::pending(addr.clone());
        s.containers = Arc::new(ContainerTable::new(
            ids.iter()
                .map(|id| ContainerSummary {
                    id: Some(id.to_string()),
                    names: Some(vec![format!("/{id}")]),
                    ..Default::default()
                })
                .collect(),
        ));
        s
    }

    #[test]
    fn follows_containers_and_layout_changes() {
        let (a, b) = (
            "10.0.0.1:2375".parse::<EngineAddr>().unwrap(),
            "10.0.0.2:2375".parse::<EngineAddr>().unwrap(),
        );
        let ix = ClusterIndex::default();
        let empty = NodeSnapshot::pending(a.clone());
        let one = snapshot(&a, &["c1", "c2"]);
        ix.published(&a, &empty, &one);
        assert_eq!(ix.node_of("c1"), Some(a.clone()));
        let epoch = ix.layout_epoch();

        // c2 moves to b (as when b lists it first): a dropping it later must not unindex it.
        let on_b = snapshot(&b, &["c2"]);
        ix.published(&b, &NodeSnapshot::pending(b.clone()), &on_b);
        let two = snapshot(&a, &["c1"]);
        ix.published(&a, &one, &two);
        assert_eq!(ix.node_of("c2"), Some(b.clone()));
        assert_eq!(
            ix.layout_epoch(),
            epoch,
            "containers alone do not change the layout"
        );

        let mut healthy = snapshot(&a, &["c1"]);
        healthy.health = Health::Healthy;
        ix.published(&a, &two, &healthy);
        assert!(ix.layout_epoch() > epoch);

        ix.forget(&a, &healthy.containers);
        assert_eq!(ix.node_of("c1"), None);
        assert_eq!(ix.node_of("c2"), Some(b));
    }
}
