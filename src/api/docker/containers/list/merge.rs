//! The merge of the nodes' pre-sorted runs into the list order.
//!
//! Each node's table keeps its containers in list order (`ContainerTable::list_order`), so
//! the list of the cluster is a k-way merge of those runs, keeping the containers a query
//! wants: a heap of one head per node instead of a sort of every container per request.

use shoal_actors::cluster::ClusterRead;
use shoal_actors::node::{listed_order, ContainerEntry, Ranked};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// One container to list: its node (an index into the read's nodes) and its place in that
/// node's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    pub node: u32,
    pub index: u32,
}

impl Selection {
    pub fn entry<'a>(&self, read: &'a ClusterRead) -> &'a ContainerEntry {
        &read.nodes[self.node as usize].snapshot.containers.entries[self.index as usize]
    }
}

/// One node's containers in list order, as far as the merge got.
struct Run<'a> {
    node: u32,
    order: &'a [Ranked],
    entries: &'a [Arc<ContainerEntry>],
    /// The next position in `order` to look at.
    next: usize,
}

/// The first container of a run not yet listed.
struct Head<'a> {
    rank: Ranked,
    entry: &'a ContainerEntry,
    run: usize,
}

impl PartialEq for Head<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head<'_> {}

impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head<'_> {
    /// Greatest is listed first (the heap pops its greatest).
    fn cmp(&self, other: &Self) -> Ordering {
        listed_order(&other.rank, other.entry, &self.rank, self.entry)
    }
}

impl<'a> Run<'a> {
    /// The next container of this run that `keep` wants, moving past it.
    fn pop(
        &mut self,
        run: usize,
        keep: &mut impl FnMut(usize, &ContainerEntry) -> bool,
    ) -> Option<Head<'a>> {
        while let Some(&rank) = self.order.get(self.next) {
            self.next += 1;
            let entry: &'a ContainerEntry = &self.entries[rank.index as usize];
            if keep(self.node as usize, entry) {
                return Some(Head { rank, entry, run });
            }
        }
        None
    }
}

/// The containers of the nodes `nodes` (indexes into `read.nodes`) that `keep` (given the
/// node's index and the container) wants, in list order, at most `limit` of them.
pub fn merge(
    read: &ClusterRead,
    nodes: impl Iterator<Item = usize>,
    limit: Option<usize>,
    mut keep: impl FnMut(usize, &ContainerEntry) -> bool,
) -> Vec<Selection> {
    let mut runs: Vec<Run> = nodes
        .map(|i| {
            let table = &read.nodes[i].snapshot.containers;
            Run {
                node: u32::try_from(i).unwrap_or(u32::MAX),
                order: table.list_order(),
                entries: &table.entries,
                next: 0,
            }
        })
        .collect();
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for (r, run) in runs.iter_mut().enumerate() {
        if let Some(head) = run.pop(r, &mut keep) {
            heap.push(head);
        }
    }
    let limit = limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(head) = heap.pop() else { break };
        let run = &mut runs[head.run];
        out.push(Selection {
            node: run.node,
            index: head.rank.index,
        });
        if let Some(next) = run.pop(head.run, &mut keep) {
            heap.push(next);
        }
    }
    out
}
