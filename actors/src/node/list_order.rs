//! The containers of one table in the order a container list shows them (newest first, the
//! ID breaking ties), worked out once per table and kept with it.
//!
//! A list of the whole cluster then merges each node's run (a k-way merge) instead of
//! sorting every container of every node for every request: a table is immutable once
//! published, so its order is too, and a node whose containers did not change keeps it.

use super::snapshot::ContainerEntry;
use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

/// One container's place in its table, with the keys it is listed by.
#[derive(Debug, Clone, Copy)]
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

/// Whether container `a` (ranked `ra`) is listed before `b` (`Less`) or after: newest
/// first, as an engine lists; the ID breaks ties so the order is stable. The keys held in
/// the ranks decide almost always (a fleet made in one second has one `Created` for all,
/// but IDs differ in their first bytes), so the IDs are rarely compared.
pub fn listed_order(ra: &Ranked, a: &ContainerEntry, rb: &Ranked, b: &ContainerEntry) -> Ordering {
    rb.created
        .cmp(&ra.created)
        .then(ra.id_head.cmp(&rb.id_head))
        .then_with(|| a.id().cmp(b.id()))
}

/// A memo of a table's list order. A changed table is a clone of the one before, and the
/// clone starts empty.
#[derive(Debug, Default)]
pub struct ListRanks(OnceLock<Box<[Ranked]>>);

impl Clone for ListRanks {
    fn clone(&self) -> Self {
        ListRanks::default()
    }
}

impl ListRanks {
    /// The order of `entries` (the table's own), ranked the first time it is asked for.
    pub fn get_or_rank(&self, entries: &[Arc<ContainerEntry>]) -> &[Ranked] {
        self.0.get_or_init(|| {
            let mut ranks: Vec<Ranked> = entries
                .iter()
                .enumerate()
                .map(|(i, e)| Ranked::of(i, e))
                .collect();
            ranks.sort_unstable_by(|a, b| {
                listed_order(a, &entries[a.index as usize], b, &entries[b.index as usize])
            });
            ranks.into_boxed_slice()
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
    fn order_is_newest_first_then_by_id() {
        let entries = vec![
            entry("bbbbbbbbbb2", 5),
            entry("bbbbbbbbbb1", 5),
            entry("a", 5),
            entry("zz", 9),
            entry("", 5),
            entry("c", 1),
        ];
        let order = ListRanks::default();
        let ids: Vec<&str> = order
            .get_or_rank(&entries)
            .iter()
            .map(|r| entries[r.index as usize].id())
            .collect();
        assert_eq!(ids, ["zz", "", "a", "bbbbbbbbbb1", "bbbbbbbbbb2", "c"]);
        assert!(order.clone().0.get().is_none(), "a clone starts empty");
    }
}
