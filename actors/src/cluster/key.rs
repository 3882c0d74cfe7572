//! The identity of what a memo was worked out from: for every node of a [`ClusterRead`], in
//! the order read, one shared part of its snapshot (the snapshot itself for `/info`, its
//! container table for a container list), whether the node is down, and the name it is
//! shown under.
//!
//! Parts are held weakly: a memo keeps nothing of the cluster alive, and a part's
//! allocation (not its contents) outlives it only so that its address cannot be taken by a
//! newer part while the key compares with it. A node publishes a new `Arc` whenever the
//! part changes, so the same address means the same contents.
//!
//! Besides "is this the same cluster", a key says which nodes changed (`changed`), so a
//! memo can work out again only what those nodes contribute.

use super::view::{ClusterRead, ClusterView};
use crate::node::{Health, NodeSnapshot};
use std::sync::{Arc, Weak};

/// The part of a node's snapshot a memo depends on.
pub type Part<T> = fn(&Arc<NodeSnapshot>) -> &Arc<T>;

struct NodeKey<T> {
    part: Weak<T>,
    down: bool,
    name: Arc<str>,
}

/// See the module docs.
pub struct ReadKey<T> {
    part: Part<T>,
    nodes: Vec<NodeKey<T>>,
}

fn down(s: &NodeSnapshot) -> bool {
    s.health == Health::Unhealthy
}

impl<T> ReadKey<T> {
    /// The key of `read`, by the part `part` picks of each node.
    pub fn of(read: &ClusterRead, part: Part<T>) -> Self {
        let nodes = read
            .nodes
            .iter()
            .map(|n| NodeKey {
                part: Arc::downgrade(part(&n.snapshot)),
                down: down(&n.snapshot),
                name: n.name.clone(),
            })
            .collect();
        ReadKey { part, nodes }
    }

    fn node_is(&self, k: &NodeKey<T>, s: &Arc<NodeSnapshot>) -> bool {
        std::ptr::eq(k.part.as_ptr(), Arc::as_ptr((self.part)(s))) && k.down == down(s)
    }

    /// Whether `read` holds what this key was taken of.
    pub fn matches(&self, read: &ClusterRead) -> bool {
        self.same_nodes(read)
            && self
                .nodes
                .iter()
                .zip(&read.nodes)
                .all(|(k, n)| self.node_is(k, &n.snapshot))
    }

    /// Whether `view` holds now what this key was taken of: as `matches` on a read of it,
    /// without the read (a clone of every node's handle, snapshot and name, and their
    /// drop, was a tenth of what `/info` cost at a thousand nodes).
    pub fn matches_view(&self, view: &ClusterView) -> bool {
        let mut keys = self.nodes.iter();
        view.visit(|name, s| {
            keys.next().is_some_and(|k| {
                self.node_is(k, s) && (Arc::ptr_eq(&k.name, name) || k.name == *name)
            })
        }) && keys.next().is_none()
    }

    /// Whether `read` has the same nodes, under the same names, in the same order.
    fn same_nodes(&self, read: &ClusterRead) -> bool {
        self.nodes.len() == read.nodes.len()
            && self
                .nodes
                .iter()
                .zip(&read.nodes)
                .all(|(k, n)| Arc::ptr_eq(&k.name, &n.name) || k.name == n.name)
    }

    /// The positions of the nodes of `read` whose part or health changed since this key
    /// was taken, or `None` when the nodes themselves (their number, order or names) did.
    pub fn changed(&self, read: &ClusterRead) -> Option<Vec<usize>> {
        if !self.same_nodes(read) {
            return None;
        }
        Some(
            self.nodes
                .iter()
                .zip(&read.nodes)
                .enumerate()
                .filter(|(_, (k, n))| !self.node_is(k, &n.snapshot))
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// Bytes the key holds.
    pub fn held(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<NodeKey<T>>()
    }
}
