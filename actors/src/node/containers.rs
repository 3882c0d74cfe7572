//! The node's book of its containers: which of several overlapping lists has the last word
//! on each container, what each container reserves, which containers wait to be listed
//! again, and which this node is creating. Pure: the NodeActor asks the engine and hands
//! the answers here, and publishes the table this answers.

use super::listing::ListOrder;
use super::resources::{ContainerResources, Reservation};
use super::snapshot::{ContainerEntry, ContainerTable, NodeSnapshot, ResourceMap};
use bollard_stubs::models::ContainerSummary;
use std::collections::HashSet;
use std::sync::Arc;

/// A container table and what follows from it, ready to publish.
pub(crate) struct ContainersUpdate {
    table: Arc<ContainerTable>,
    resources: Arc<ResourceMap>,
    reserved: Reservation,
}

impl ContainersUpdate {
    pub fn apply(self, s: &mut NodeSnapshot) {
        s.containers = self.table;
        s.resources = self.resources;
        s.reserved = self.reserved;
    }
}

/// A table taken from a list, and the containers in it whose reservations are not known
/// yet (to inspect).
pub(crate) struct Taken {
    pub table: Arc<ContainerTable>,
    pub unknown: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct ContainerBook {
    /// What each known container holds; shared with the published snapshot until changed.
    resources: Arc<ResourceMap>,
    /// Which list has the last word on each container (answers come out of order).
    lists: ListOrder,
    /// Containers this node created whose first list is on its way.
    creating: HashSet<String>,
    /// Containers to list again, for the events that changed them.
    pending: HashSet<String>,
    /// The resources recorded last, shared by the next container that holds the same: the
    /// containers of a node mostly hold alike (no reservation, the default network), and a
    /// copy each was ~100 bytes a container.
    last_resources: Option<Arc<ContainerResources>>,
    /// What the last [`ContainerBook::update`] answered, and what changed since (see there).
    published: Option<Published>,
    touched: Touched,
}

/// The table, resources and reservation sum an update answered last.
#[derive(Debug)]
struct Published {
    table: Arc<ContainerTable>,
    resources: Arc<ResourceMap>,
    reserved: Reservation,
}

/// What changed since the last update: the containers whose listing or resources did
/// (`Few`), or more than that (a full list).
#[derive(Debug, Default)]
enum Touched {
    Few(Vec<String>),
    #[default]
    All,
}

impl Touched {
    fn add(&mut self, id: &str) {
        if let Touched::Few(ids) = self {
            ids.push(id.to_owned());
        }
    }
}

impl ContainerBook {
    /// The number of a list about to be asked for.
    pub fn ask(&mut self) -> u64 {
        self.lists.ask()
    }

    /// A create of container `id` succeeded and its list is on its way: what it reserves is
    /// known from the create body, and its `create` event needs no list of its own.
    pub fn creating(&mut self, id: &str, resources: Option<ContainerResources>) {
        self.creating.insert(id.to_string());
        if let Some(r) = resources {
            let r = self.share(r);
            Arc::make_mut(&mut self.resources).insert(Arc::from(id), r);
            self.touched.add(id);
        }
    }

    /// The list that follows a create was taken.
    pub fn created(&mut self, id: &str) {
        self.creating.remove(id);
    }

    pub fn is_creating(&self, id: &str) -> bool {
        self.creating.contains(id)
    }

    /// What container `id` reserves may have changed (an `update`): inspect it again once
    /// listed.
    pub fn forget_resources(&mut self, id: &str) {
        if self.resources.contains_key(id) {
            Arc::make_mut(&mut self.resources).remove(id);
            self.touched.add(id);
        }
    }

    /// Records what inspects said the containers hold.
    pub fn learned(&mut self, results: Vec<(String, ContainerResources)>) {
        if results.is_empty() {
            return;
        }
        let shared: Vec<_> = results
            .into_iter()
            .map(|(id, r)| {
                self.touched.add(&id);
                (Arc::<str>::from(id), self.share(r))
            })
            .collect();
        Arc::make_mut(&mut self.resources).extend(shared);
    }

    /// `r`, shared with the container recorded last when it holds the same.
    fn share(&mut self, r: ContainerResources) -> Arc<ContainerResources> {
        match &self.last_resources {
            Some(last) if **last == r => last.clone(),
            _ => self.last_resources.insert(Arc::new(r)).clone(),
        }
    }

    /// Puts container `id` on the list to ask for; answers whether it is the first since the
    /// last [`ContainerBook::take_pending`] (then the caller sets the timer).
    pub fn list_later(&mut self, id: String) -> bool {
        let first = self.pending.is_empty();
        self.pending.insert(id);
        first
    }

    /// The containers waiting to be listed again.
    pub fn take_pending(&mut self) -> Vec<String> {
        self.pending.drain().collect()
    }

    /// Takes a full container list the engine gave (list number `seq`) over `current`:
    /// forgets what containers that are gone held, and answers the table and the containers
    /// to inspect. A container listed alone by a later list keeps what that list said.
    /// `None` when a later full list was already taken.
    pub fn take_full(
        &mut self,
        list: Vec<ContainerSummary>,
        seq: u64,
        current: &Arc<ContainerTable>,
    ) -> Option<Taken> {
        let newer = self.lists.take_full(seq)?;
        self.touched = Touched::All;
        let table = if newer.is_empty() {
            ContainerTable::new(list)
        } else {
            let mut entries: Vec<Arc<ContainerEntry>> = list
                .into_iter()
                .filter(|c| !newer.iter().any(|id| c.id.as_deref() == Some(id.as_str())))
                .map(|c| Arc::new(ContainerEntry::new(c)))
                .collect();
            entries.extend(newer.iter().filter_map(|id| current.shared(id).cloned()));
            ContainerTable::from_entries(entries)
        };
        if self.resources.keys().any(|id| table.by_id(id).is_none()) {
            Arc::make_mut(&mut self.resources).retain(|id, _| table.by_id(id).is_some());
        }
        let unknown = self.without_resources(table.entries.iter().map(|e| e.id()));
        // A refresh that finds every container as it was keeps the table it had: what was
        // worked out from it (its list order, the front's kept list answer) stays good.
        let table = if table.lists_as(current) {
            current.clone()
        } else {
            Arc::new(table)
        };
        Some(Taken { table, unknown })
    }

    /// Takes what list `seq` of the containers `ids` showed over `current` (the engine's ID
    /// filter also matches prefixes: only exact IDs count). Answers the new table and the
    /// containers it changed, or `None` when later lists already had the word on all.
    pub fn take_listed(
        &mut self,
        ids: Vec<String>,
        mut list: Vec<ContainerSummary>,
        seq: u64,
        current: &ContainerTable,
    ) -> Option<(Taken, Vec<String>)> {
        let (mut upserts, mut removals, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for id in ids {
            if !self.lists.take_one(&id, seq) {
                continue;
            }
            let found = list
                .iter()
                .position(|c| c.id.as_deref() == Some(id.as_str()))
                .map(|i| list.swap_remove(i));
            match found {
                Some(summary) => upserts.push(ContainerEntry::new(summary)),
                None => {
                    self.forget_resources(&id);
                    removals.push(id.clone());
                }
            }
            self.touched.add(&id);
            changed.push(id);
        }
        if changed.is_empty() {
            return None;
        }
        let table = Arc::new(current.changed(upserts, &removals));
        let unknown = self.without_resources(
            changed
                .iter()
                .map(String::as_str)
                .filter(|id| table.by_id(id).is_some()),
        );
        Some((Taken { table, unknown }, changed))
    }

    /// The containers among `ids` whose reservations are not known yet.
    fn without_resources<'a>(&self, ids: impl Iterator<Item = &'a str>) -> Vec<String> {
        ids.filter(|id| !self.resources.contains_key(*id))
            .map(str::to_string)
            .collect()
    }

    /// The snapshot fields that follow from a container table: `table` is the last update's
    /// table with the changes this book was told of since (a one-container list, a create,
    /// an inspect), or a full list's.
    ///
    /// The reservation sum is carried forward from the last update over the containers
    /// that changed since, not summed over the table: each create publishes, and summing
    /// was a hash lookup per container of the node, each a cache miss at a thousand nodes
    /// (6 % of a create's CPU). A full list sums again.
    pub fn update(&mut self, table: Arc<ContainerTable>) -> ContainersUpdate {
        let touched = std::mem::replace(&mut self.touched, Touched::Few(Vec::new()));
        let reserved = match (&self.published, touched) {
            (Some(last), Touched::Few(mut ids)) => {
                ids.sort_unstable();
                ids.dedup();
                let held = |t: &ContainerTable, r: &ResourceMap, id: &str| {
                    t.by_id(id).and(r.get(id)).map(|r| r.reservation)
                };
                let mut sum = last.reserved;
                for id in &ids {
                    if let Some(old) = held(&last.table, &last.resources, id) {
                        sum = sum.minus(old);
                    }
                    if let Some(new) = held(&table, &self.resources, id) {
                        sum = sum.plus(new);
                    }
                }
                sum
            }
            _ => self.sum(&table),
        };
        self.published = Some(Published {
            table: table.clone(),
            resources: self.resources.clone(),
            reserved,
        });
        ContainersUpdate {
            table,
            resources: self.resources.clone(),
            reserved,
        }
    }

    /// The reservations of `table`'s containers, summed over the table.
    fn sum(&self, table: &ContainerTable) -> Reservation {
        table
            .entries
            .iter()
            .filter_map(|e| self.resources.get(e.id()))
            .fold(Reservation::default(), |sum, r| sum.plus(r.reservation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str) -> ContainerSummary {
        ContainerSummary {
            id: Some(id.into()),
            names: Some(vec![format!("/{id}")]),
            ..Default::default()
        }
    }

    fn resources(memory: i64) -> ContainerResources {
        ContainerResources {
            reservation: Reservation {
                nano_cpus: 0,
                memory,
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_full_list_keeps_what_a_later_one_container_list_said() {
        let mut b = ContainerBook::default();
        let full = b.ask();
        let one = b.ask();
        let empty = ContainerTable::default();
        let (taken, changed) = b
            .take_listed(vec!["x".into()], vec![summary("x")], one, &empty)
            .unwrap();
        assert_eq!(changed, vec!["x".to_string()]);
        assert_eq!(taken.unknown, vec!["x".to_string()]);
        // The older full list did not show x yet: x stays.
        let taken = b.take_full(vec![summary("a")], full, &taken.table).unwrap();
        assert!(taken.table.by_id("x").is_some() && taken.table.by_id("a").is_some());
    }

    #[test]
    fn a_full_list_that_finds_nothing_changed_keeps_the_table() {
        let mut b = ContainerBook::default();
        let seq = b.ask();
        let first = b
            .take_full(vec![summary("a"), summary("b")], seq, &Arc::default())
            .unwrap()
            .table;
        let seq = b.ask();
        let same = b
            .take_full(vec![summary("b"), summary("a")], seq, &first)
            .unwrap()
            .table;
        assert!(
            Arc::ptr_eq(&first, &same),
            "the same containers, the same table"
        );
        let mut stopped = summary("b");
        stopped.status = Some("Exited (0) 1 second ago".into());
        let seq = b.ask();
        let changed = b
            .take_full(vec![summary("a"), stopped], seq, &first)
            .unwrap()
            .table;
        assert!(!Arc::ptr_eq(&first, &changed), "a status changed");
        let seq = b.ask();
        let fewer = b
            .take_full(vec![summary("a")], seq, &changed)
            .unwrap()
            .table;
        assert!(!Arc::ptr_eq(&changed, &fewer) && fewer.len() == 1);
    }

    #[test]
    fn reservations_follow_the_table() {
        let mut b = ContainerBook::default();
        b.creating("a", Some(resources(64)));
        assert!(b.is_creating("a"));
        b.learned(vec![("b".into(), resources(32))]);
        let seq = b.ask();
        let taken = b
            .take_full(vec![summary("a"), summary("c")], seq, &Arc::default())
            .unwrap();
        assert_eq!(
            taken.unknown,
            vec!["c".to_string()],
            "b is gone, a is known"
        );
        let update = b.update(taken.table);
        assert_eq!(update.reserved.memory, 64);
        assert!(!update.resources.contains_key("b"));
        b.created("a");
        assert!(!b.is_creating("a"));
    }

    /// The sum carried forward from update to update is the sum over the table, through
    /// every mix of creates, inspects, forgotten reservations and partial and full lists.
    #[test]
    fn the_carried_reservation_sum_is_the_tables() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(16);
        let mut b = ContainerBook::default();
        let mut current: Arc<ContainerTable> = Arc::default();
        let id = |k: u32| format!("c{k}");
        let mut updates = 0;
        for _ in 0..5_000 {
            let k = rng.gen_range(0..12u32);
            let table = match rng.gen_range(0..6) {
                0 => {
                    b.creating(&id(k), Some(resources(rng.gen_range(0..4) << 20)));
                    None
                }
                1 => {
                    b.learned(vec![(id(k), resources(rng.gen_range(0..4) << 20))]);
                    Some(current.clone())
                }
                2 => {
                    b.forget_resources(&id(k));
                    None
                }
                3 | 4 => {
                    let ids: Vec<String> = (0..rng.gen_range(1..4))
                        .map(|_| id(rng.gen_range(0..12)))
                        .collect();
                    let listed = ids
                        .iter()
                        .filter(|_| rng.gen_bool(0.7))
                        .map(|i| summary(i))
                        .collect();
                    let seq = b.ask();
                    b.take_listed(ids, listed, seq, &current)
                        .map(|(t, _)| t.table)
                }
                _ => {
                    let listed = (0..12)
                        .filter(|_| rng.gen_bool(0.5))
                        .map(|k| summary(&id(k)))
                        .collect();
                    let seq = b.ask();
                    b.take_full(listed, seq, &current).map(|t| t.table)
                }
            };
            if let Some(table) = table {
                let update = b.update(table);
                let expect = b.sum(&update.table);
                assert_eq!(update.reserved, expect, "after {updates} updates");
                current = update.table;
                updates += 1;
            }
        }
        assert!(updates > 2_000, "{updates}");
    }

    #[test]
    fn alike_resources_are_shared() {
        let mut b = ContainerBook::default();
        b.learned(vec![
            ("a".into(), resources(0)),
            ("b".into(), resources(0)),
            ("c".into(), resources(8)),
        ]);
        b.creating("d", Some(resources(8)));
        let r = &b.resources;
        assert!(Arc::ptr_eq(&r["a"], &r["b"]) && Arc::ptr_eq(&r["c"], &r["d"]));
        assert!(!Arc::ptr_eq(&r["a"], &r["c"]));
        assert_eq!(r["c"].reservation.memory, 8);
    }

    #[test]
    fn pending_lists_are_batched() {
        let mut b = ContainerBook::default();
        assert!(b.list_later("a".into()));
        assert!(!b.list_later("b".into()));
        let mut ids = b.take_pending();
        ids.sort();
        assert_eq!(ids, vec!["a".to_string(), "b".to_string()]);
        assert!(b.list_later("c".into()));
    }
}
