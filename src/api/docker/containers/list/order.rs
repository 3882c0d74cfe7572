//! The containers a list wants, in list order (newest first, then by ID).
//!
//! Each node's table keeps its containers' compact ranks (`ContainerTable::list_order`:
//! `Created` and the ID's first 8 bytes as a number, worked out once per table), so a list
//! picks the ranks it wants into one vector and sorts it, comparing IDs only on a tie. A
//! k-way merge of the nodes' ordered runs (a heap of one head per node) was tried and
//! measured slower whenever the list is not the kept answer: at 1,000 and 5,000 nodes the
//! heap's pops, over entries scattered in memory, cost more than a sort of one contiguous
//! vector of 24-byte keys (28 % of Shoal's CPU in a 5,000-node profile).
//!
//! The whole-cluster list keeps its last order (`AnswerMemo`), and a list that finds a few
//! nodes changed since (at 5,000 engines status texts change ~100 tables a second) works
//! it out from that one (`reordered`): the containers of the unchanged nodes keep their
//! order, only those of the changed nodes are sorted, and the two runs are merged, instead
//! of a sort of every container.

use shoal_actors::cluster::{ClusterRead, Since};
use shoal_actors::node::{listed_order, ContainerEntry, Listed};
use std::cmp::Ordering;

/// The container `l` lists.
pub fn entry<'a>(read: &'a ClusterRead, l: &Listed) -> &'a ContainerEntry {
    &read.nodes[l.node as usize].snapshot.containers.entries[l.index as usize]
}

/// The containers of the nodes `nodes` (indexes into `read.nodes`) that `keep` (given the
/// node's index and the container) wants, unordered.
fn picked(
    read: &ClusterRead,
    nodes: impl Iterator<Item = usize>,
    mut keep: impl FnMut(usize, &ContainerEntry) -> bool,
) -> Vec<Listed> {
    let mut picked = Vec::new();
    for i in nodes {
        let table = &read.nodes[i].snapshot.containers;
        let node = u32::try_from(i).unwrap_or(u32::MAX);
        for rank in table.list_order() {
            if keep(i, &table.entries[rank.index as usize]) {
                picked.push(rank.on(node));
            }
        }
    }
    picked
}

/// The containers of the nodes `nodes` (indexes into `read.nodes`) that `keep` (given the
/// node's index and the container) wants, in list order, at most `limit` of them.
pub fn in_list_order(
    read: &ClusterRead,
    nodes: impl Iterator<Item = usize>,
    limit: Option<usize>,
    keep: impl FnMut(usize, &ContainerEntry) -> bool,
) -> Vec<Listed> {
    let mut picked = picked(read, nodes, keep);
    let order = |a: &Listed, b: &Listed| listed_order(a, b, |l| entry(read, l));
    if let Some(limit) = limit.filter(|&l| l < picked.len()) {
        // The first `limit` only: partitioned around the last of them, then sorted.
        match limit.checked_sub(1) {
            Some(last) => {
                picked.select_nth_unstable_by(last, order);
                picked.truncate(limit);
            }
            None => picked.clear(),
        }
    }
    picked.sort_unstable_by(order);
    picked
}

/// The list `since.order` was, as `read` has it now: the containers of the nodes that did
/// not change, in the order kept, merged with those of the changed nodes that `nodes` and
/// `keep` want (as for `in_list_order`), sorted. `since.order` is of the same nodes at the
/// same positions (the memo's key says so), and an unchanged node has the very table it
/// had, so its containers' places in it still hold.
pub fn reordered(
    read: &ClusterRead,
    since: Since<'_>,
    nodes: impl Fn(usize) -> bool,
    keep: impl FnMut(usize, &ContainerEntry) -> bool,
) -> Vec<Listed> {
    let mut changed = vec![false; read.nodes.len()];
    for &i in since.changed {
        changed[i] = true;
    }
    let order = |a: &Listed, b: &Listed| listed_order(a, b, |l| entry(read, l));
    let mut fresh = picked(
        read,
        since.changed.iter().copied().filter(|&i| nodes(i)),
        keep,
    );
    fresh.sort_unstable_by(order);
    let kept = since.order.iter().filter(|l| !changed[l.node as usize]);
    merged(kept, fresh, order)
}

/// The merge of two runs each in `order`; of two equal items, `a`'s first.
fn merged<'a>(
    a: impl Iterator<Item = &'a Listed>,
    b: Vec<Listed>,
    order: impl Fn(&Listed, &Listed) -> Ordering,
) -> Vec<Listed> {
    // A filter's upper bound is its slice's length: room for all, never grown.
    let (lower, upper) = a.size_hint();
    let mut out = Vec::with_capacity(upper.unwrap_or(lower) + b.len());
    let mut b = b.into_iter().peekable();
    for x in a {
        while let Some(y) = b.next_if(|y| order(y, x) == Ordering::Less) {
            out.push(y);
        }
        out.push(*x);
    }
    out.extend(b);
    out
}

#[cfg(test)]
mod tests {
    use super::merged;
    use shoal_actors::node::Listed;

    fn at(created: i64, node: u32) -> Listed {
        Listed {
            created,
            id_head: 0,
            node,
            index: 0,
        }
    }

    #[test]
    fn a_merge_keeps_both_runs_in_order() {
        let newest_first = |a: &Listed, b: &Listed| b.created.cmp(&a.created);
        let a = [at(9, 0), at(7, 0), at(7, 0), at(3, 0), at(1, 0)];
        let b = vec![at(10, 1), at(7, 1), at(4, 1), at(0, 1)];
        let got: Vec<(i64, u32)> = merged(a.iter(), b, newest_first)
            .iter()
            .map(|l| (l.created, l.node))
            .collect();
        assert_eq!(
            got,
            [
                (10, 1),
                (9, 0),
                (7, 0),
                (7, 0),
                (7, 1),
                (4, 1),
                (3, 0),
                (1, 0),
                (0, 1)
            ]
        );
        assert_eq!(merged([].iter(), vec![at(1, 1)], newest_first), [at(1, 1)]);
        assert_eq!(merged(a[..1].iter(), vec![], newest_first), [at(9, 0)]);
    }
}
