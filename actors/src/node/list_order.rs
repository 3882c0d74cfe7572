//! The keys a container list orders a table's containers by (newest first, the ID
//! breaking ties), worked out once per table and kept with it.
//!
//! A list of the whole cluster picks the ranks it wants into one vector and sorts that
//! (`Listed`, 24 bytes a container, comparing IDs only on a tie), instead of reading
//! `Created` and the ID out of every entry for every request: a table is immutable once
//! published, so its ranks are too, and a node whose containers did not change keeps them.
//! The ranks are kept in the table's own order: every list sorts what it picked, so an
//! order per table would be sorted twice.

use super::snapshot::ContainerEntry;
use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

/// One container's place in its table, with the keys it is listed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranked {
    pub created: i64,
    /// The first 8 bytes of the ID, big-endian: compares as the ID's start does.
    pub id_head: u64,
    /// Index in the table's `entries`.
    pub index: u32,
}

/// The first 8 bytes of `id` as a big-endian number (zeros after a shorter ID, which sorts
/// first as in a string compare).
pub fn id_head(id: &str) -> u64 {
    let mut head = [0u8; 8];
    let n = id.len().min(8);
    head[..n].copy_from_slice(&id.as_bytes()[..n]);
    u64::from_be_bytes(head)
}

impl Ranked {
    fn of(index: usize, e: &ContainerEntry) -> Ranked {
        Ranked {
            created: e.created,
            id_head: id_head(e.id()),
            index: u32::try_from(index).unwrap_or(u32::MAX),
        }
    }
}

impl Ranked {
    /// This container as listed from node `node` (its position in a cluster read).
    pub fn on(&self, node: u32) -> Listed {
        Listed {
            created: self.created,
            id_head: self.id_head,
            node,
            index: self.index,
        }
    }
}

/// One container of a cluster-wide list: its keys, its node (a position in the nodes of a
/// `ClusterRead`) and its index in that node's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub created: i64,
    pub id_head: u64,
    pub node: u32,
    pub index: u32,
}

/// Whether container `a` is listed before `b` (`Less`) or after: newest first, as an
/// engine lists; the ID breaks ties so the order is stable. The keys held in `Listed`
/// decide almost always (a fleet made in one second has one `Created` for all, but IDs
/// differ in their first bytes), so the entries (`entry`, scattered over every node's
/// table: reading them for every comparison was most of what a sort cost) are read only
/// on a tie.
pub fn listed_order<'a>(
    a: &Listed,
    b: &Listed,
    entry: impl Fn(&Listed) -> &'a ContainerEntry,
) -> Ordering {
    b.created
        .cmp(&a.created)
        .then(a.id_head.cmp(&b.id_head))
        .then_with(|| entry(a).id().cmp(entry(b).id()))
}

/// A memo of a table's ranks. A changed table is a clone of the one before, and the clone
/// starts empty.
#[derive(Debug, Default)]
pub struct ListRanks(OnceLock<Box<[Ranked]>>);

impl Clone for ListRanks {
    fn clone(&self) -> Self {
        ListRanks::default()
    }
}

impl ListRanks {
    /// The ranks of `entries` (the table's own), in their order, worked out the first
    /// time they are asked for.
    pub fn get_or_rank(&self, entries: &[Arc<ContainerEntry>]) -> &[Ranked] {
        self.0.get_or_init(|| {
            entries
                .iter()
                .enumerate()
                .map(|(i, e)| Ranked::of(i, e))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::ContainerSummary;

    fn entry(id: &str, created: i64) -> Arc<ContainerEntry> {
        Arc::new(ContainerEntry::new(ContainerSummary {
            id: Some(id.into()),
            created: Some(created),
            ..Default::default()
        }))
    }

    #[test]
    fn ranks_are_the_entries_keys_in_table_order_once_per_table() {
        let entries = vec![entry("bbbbbbbbbb2", 5), entry("zz", 9), entry("", 5)];
        let ranks = ListRanks::default();
        let got = ranks.get_or_rank(&entries).to_vec();
        assert_eq!(
            got,
            [
                Ranked {
                    created: 5,
                    id_head: id_head("bbbbbbbbbb2"),
                    index: 0
                },
                Ranked {
                    created: 9,
                    id_head: u64::from_be_bytes(*b"zz\0\0\0\0\0\0"),
                    index: 1
                },
                Ranked {
                    created: 5,
                    id_head: 0,
                    index: 2
                },
            ]
        );
        // Asked again (a table never changes once published): the same slice, not ranked again.
        assert!(std::ptr::eq(
            ranks.get_or_rank(&[]),
            ranks.get_or_rank(&entries)
        ));
        assert!(ranks.clone().0.get().is_none(), "a clone starts empty");
    }

    #[test]
    fn order_is_newest_first_then_by_id() {
        let entries = vec![
            entry("bbbbbbbbbb2", 5),
            entry("bbbbbbbbbb1", 5),
            entry("a", 5),
            entry("zz", 9),
            entry("", 5),
            entry("c", 1),
        ];
        let ranks = ListRanks::default();
        let mut listed: Vec<Listed> = ranks
            .get_or_rank(&entries)
            .iter()
            .map(|r| r.on(7))
            .collect();
        let e = |l: &Listed| &*entries[l.index as usize];
        listed.sort_unstable_by(|a, b| listed_order(a, b, e));
        let ids: Vec<&str> = listed.iter().map(|l| e(l).id()).collect();
        // `bbbbbbbbbb1` and `bbbbbbbbbb2` share their first 8 bytes: the whole IDs decide.
        assert_eq!(ids, ["zz", "", "a", "bbbbbbbbbb1", "bbbbbbbbbb2", "c"]);
        assert!(listed.iter().all(|l| l.node == 7));
    }
}
