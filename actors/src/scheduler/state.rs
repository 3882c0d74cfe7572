//! The scheduler's view of the cluster: the latest offer per node, the per-node numbers
//! a strategy weighs (kept dense, one `Nums` per slot), and the indexes the filters look
//! up (engine label value → nodes, image → nodes, container name → nodes, ...).
//!
//! Nodes live in stable slots (a removed node frees its slot for the next), so indexes
//! and bitsets name nodes by a `u32`. Indexes are updated per offer: the old offer is
//! un-indexed, the new one indexed, in one pass each; a decision only looks things up.

use crate::shared_list::positional_changes;
use foldhash::HashMap;
use std::sync::Arc;

use super::nodeset::NodeSet;
use super::offer::{ContainerInfo, HostPort, NodeId, Offer, Scope};
use crate::node::Health;

/// slot → how many entries of this key the slot holds (several containers can share a
/// label value, and a reservation adds its own).
///
/// Most keys (a container's ID, short ID and name) are on one node only, so one posting is
/// kept inline: a `Vec` of one would be an allocation per key, three a container. The
/// slots come out in the order a plain list would give (added order, a removal moves the
/// last one into its place).
#[derive(Debug, Clone)]
pub(crate) enum Postings {
    One((u32, u32)),
    Many(Vec<(u32, u32)>),
}

impl Default for Postings {
    fn default() -> Self {
        Postings::Many(Vec::new())
    }
}

impl Postings {
    fn add(&mut self, slot: u32) {
        match self {
            Postings::One((s, n)) if *s == slot => *n += 1,
            Postings::One(first) => *self = Postings::Many(vec![*first, (slot, 1)]),
            Postings::Many(v) if v.is_empty() => *self = Postings::One((slot, 1)),
            Postings::Many(v) => match v.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, n)) => *n += 1,
                None => v.push((slot, 1)),
            },
        }
    }

    /// Returns true when the list is left empty.
    fn remove(&mut self, slot: u32) -> bool {
        match self {
            Postings::One((s, n)) => {
                if *s == slot {
                    *n -= 1;
                    if *n == 0 {
                        *self = Postings::default();
                    }
                }
            }
            Postings::Many(v) => {
                if let Some(i) = v.iter().position(|(s, _)| *s == slot) {
                    v[i].1 -= 1;
                    if v[i].1 == 0 {
                        v.swap_remove(i);
                    }
                }
            }
        }
        self.as_slice().is_empty()
    }

    fn as_slice(&self) -> &[(u32, u32)] {
        match self {
            Postings::One(p) => std::slice::from_ref(p),
            Postings::Many(v) => v,
        }
    }

    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.as_slice().iter().map(|(s, _)| *s)
    }
}

/// Whether two offers of a node agree on everything `index_node` indexes.
fn same_node_part(a: &Offer, b: &Offer) -> bool {
    a.name == b.name
        && a.engine_id == b.engine_id
        && a.addr == b.addr
        && a.facts == b.facts
        && a.ports == b.ports
        && a.images == b.images
        && a.networks == b.networks
        && a.volumes == b.volumes
}

/// key (lowercased) → nodes. Keys are `Box<str>`, 8 bytes less than a `String` an entry
/// (an index holds three keys a container).
pub(crate) type Index = HashMap<Box<str>, Postings>;

fn post(idx: &mut Index, key: &str, slot: u32, add: bool) {
    let key = key.to_lowercase();
    if add {
        idx.entry(key.into_boxed_str()).or_default().add(slot);
    } else if let Some(p) = idx.get_mut(key.as_str()) {
        if p.remove(slot) {
            idx.remove(key.as_str());
        }
    }
}

/// The numbers a strategy weighs, per slot, with pending reservations included.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Nums {
    /// Totals, nano-CPUs and bytes, raised by the overcommit ratio.
    pub total_cpu: u64,
    pub total_mem: u64,
    /// `100 / total`, so weighing is a multiply (0 when the total is 0).
    pub cpu_k: f64,
    pub mem_k: f64,
    /// Reserved by the node's containers plus in-flight reservations.
    pub used_cpu: u64,
    pub used_mem: u64,
    pub containers: u32,
    /// Position of the node's name in name order (tie-break).
    pub rank: u32,
    pub healthy: bool,
}

/// One node's slot.
#[derive(Debug)]
pub(crate) struct Slot {
    pub offer: Arc<Offer>,
    /// Reservations in flight on this node, by id.
    pub pending: Vec<String>,
    pub pending_cpu: u64,
    pub pending_mem: u64,
    pub pending_count: u32,
    /// Engine label `containerslots=N`.
    pub slots_limit: Option<u32>,
}

/// The cluster as the scheduler sees it.
#[derive(Debug, Default)]
pub(crate) struct ClusterState {
    pub slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    pub by_node: HashMap<NodeId, u32>,
    pub live: NodeSet,
    pub healthy: NodeSet,
    /// Nodes whose container slots are all taken.
    pub full: NodeSet,
    pub nums: Vec<Nums>,
    ranks_dirty: bool,
    overcommit: f64,

    /// Node name, engine ID and address → nodes (`node==`, whitelist).
    pub node_keys: Index,
    /// Engine label key (and the facts `storagedriver`, ...) → value → nodes.
    pub labels: HashMap<String, Index>,
    pub ports: HashMap<HostPort, Postings>,
    /// Container name, ID and short ID (lowercased) → nodes; reserved names too.
    pub containers: Index,
    /// Exact container name → (slot, container or reservation id): names are
    /// cluster-unique.
    pub names: HashMap<String, Vec<(u32, String)>>,
    /// Image ID, short ID, repo:tag and repo → nodes.
    pub images: Index,
    /// Container label key → value → nodes.
    pub clabels: HashMap<String, Index>,
    /// Local-scope network name and ID → nodes.
    pub networks: Index,
    /// Volume name → nodes.
    pub volumes: Index,
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

impl ClusterState {
    pub fn new(overcommit: f64) -> Self {
        Self {
            overcommit,
            ..Self::default()
        }
    }

    pub fn slot(&self, s: u32) -> &Slot {
        self.slots[s as usize].as_ref().expect("live slot")
    }

    pub fn slot_mut(&mut self, s: u32) -> &mut Slot {
        self.slots[s as usize].as_mut().expect("live slot")
    }

    /// Installs a node's latest offer; returns its slot.
    pub fn update(&mut self, offer: Arc<Offer>) -> u32 {
        let s = match self.by_node.get(&offer.node) {
            Some(&s) => {
                let old = Arc::clone(&self.slot(s).offer);
                self.reindex(s, &old, &offer);
                if old.name != offer.name {
                    self.ranks_dirty = true;
                }
                let slot = self.slot_mut(s);
                slot.offer = Arc::clone(&offer);
                s
            }
            None => {
                let s = self.free.pop().unwrap_or(self.slots.len() as u32);
                self.index(s, &offer, true);
                let slot = Slot {
                    offer: Arc::clone(&offer),
                    pending: Vec::new(),
                    pending_cpu: 0,
                    pending_mem: 0,
                    pending_count: 0,
                    slots_limit: None,
                };
                if s as usize == self.slots.len() {
                    self.slots.push(Some(slot));
                    self.nums.push(Nums::default());
                } else {
                    self.slots[s as usize] = Some(slot);
                }
                for set in [&mut self.live, &mut self.healthy, &mut self.full] {
                    set.grow(self.slots.len());
                }
                self.by_node.insert(offer.node.clone(), s);
                self.live.insert(s);
                self.ranks_dirty = true;
                s
            }
        };
        let oc = self.overcommit;
        let grow = |total: u64| total.saturating_add((total as f64 * oc) as u64);
        let limit = offer
            .facts
            .labels
            .get("containerslots")
            .and_then(|v| v.trim().parse::<u32>().ok());
        self.slot_mut(s).slots_limit = limit;
        let n = &mut self.nums[s as usize];
        n.total_cpu = grow(u64::from(offer.facts.ncpu) * super::offer::NANOS_PER_CPU);
        n.total_mem = grow(offer.facts.mem_total);
        let k = |t: u64| if t == 0 { 0.0 } else { 100.0 / t as f64 };
        n.cpu_k = k(n.total_cpu);
        n.mem_k = k(n.total_mem);
        n.healthy = offer.health == Health::Healthy;
        self.healthy.set(s, n.healthy);
        self.refresh_nums(s);
        s
    }

    /// Removes a node; returns its pending reservation ids (now void).
    pub fn remove(&mut self, node: &NodeId) -> Vec<String> {
        let Some(s) = self.by_node.remove(node) else {
            return Vec::new();
        };
        let old = Arc::clone(&self.slot(s).offer);
        self.index(s, &old, false);
        let slot = self.slots[s as usize].take().expect("live slot");
        for set in [&mut self.live, &mut self.healthy, &mut self.full] {
            set.remove(s);
        }
        self.nums[s as usize] = Nums::default();
        self.free.push(s);
        self.ranks_dirty = true;
        slot.pending
    }

    /// Recomputes a slot's used numbers and its "full" bit from offer + pending.
    pub fn refresh_nums(&mut self, s: u32) {
        let slot = self.slots[s as usize].as_ref().expect("live slot");
        let n = &mut self.nums[s as usize];
        n.used_cpu = slot.offer.reserved_cpu + slot.pending_cpu;
        n.used_mem = slot.offer.reserved_memory + slot.pending_mem;
        n.containers = slot.offer.containers.len() as u32 + slot.pending_count;
        let full = slot.slots_limit.is_some_and(|l| n.containers >= l);
        self.full.set(s, full);
    }

    /// Re-ranks nodes by name (then address) when membership or names changed.
    pub fn ensure_ranks(&mut self) {
        if !self.ranks_dirty {
            return;
        }
        let mut order: Vec<(&str, &str, u32)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .map(|s| (&*s.offer.name, s.offer.node.as_str(), i as u32))
            })
            .collect();
        order.sort_unstable();
        let ranks: Vec<(u32, u32)> = order
            .iter()
            .enumerate()
            .map(|(r, (_, _, s))| (*s, r as u32))
            .collect();
        for (s, r) in ranks {
            self.nums[s as usize].rank = r;
        }
        self.ranks_dirty = false;
    }

    /// Adds a reserved name (and its port bookings) to the indexes.
    pub fn post_reservation(
        &mut self,
        s: u32,
        name: Option<&str>,
        id: &str,
        ports: &[HostPort],
        add: bool,
    ) {
        if let Some(name) = name {
            post(&mut self.containers, name, s, add);
            self.post_name(name, s, id, add);
        }
        for p in ports {
            self.post_port(*p, s, add);
        }
    }

    fn post_name(&mut self, name: &str, s: u32, id: &str, add: bool) {
        if add {
            self.names
                .entry(name.to_owned())
                .or_default()
                .push((s, id.to_owned()));
        } else if let Some(v) = self.names.get_mut(name) {
            if let Some(i) = v.iter().position(|(vs, vid)| *vs == s && vid == id) {
                v.swap_remove(i);
            }
            if v.is_empty() {
                self.names.remove(name);
            }
        }
    }

    fn post_port(&mut self, p: HostPort, s: u32, add: bool) {
        if add {
            self.ports.entry(p).or_default().add(s);
        } else if let Some(list) = self.ports.get_mut(&p) {
            if list.remove(s) {
                self.ports.remove(&p);
            }
        }
    }

    /// Indexes (or un-indexes) everything an offer says.
    fn index(&mut self, s: u32, o: &Offer, add: bool) {
        self.index_node(s, o, add);
        for c in &o.containers {
            self.index_container(s, c, add);
        }
    }

    /// Moves the indexes from a node's old offer to its new one, touching only what
    /// changed: a node's offer follows each of its changes (a create, a start), and
    /// re-indexing all its containers each time cost a busy node's creates O(containers).
    fn reindex(&mut self, s: u32, old: &Offer, new: &Offer) {
        if !same_node_part(old, new) {
            self.index_node(s, old, false);
            self.index_node(s, new, true);
        }
        let (was, is) = positional_changes(&old.containers, &new.containers);
        let mut before: HashMap<&str, &Arc<ContainerInfo>> =
            was.into_iter().map(|c| (c.id.as_str(), c)).collect();
        for c in is {
            match before.remove(c.id.as_str()) {
                Some(o) if Arc::ptr_eq(o, c) || o == c => {}
                Some(o) => {
                    self.index_container(s, o, false);
                    self.index_container(s, c, true);
                }
                None => self.index_container(s, c, true),
            }
        }
        for gone in before.into_values() {
            self.index_container(s, gone, false);
        }
    }

    /// Indexes (or un-indexes) one container of a node.
    fn index_container(&mut self, s: u32, c: &ContainerInfo, add: bool) {
        post(&mut self.containers, &c.id, s, add);
        if c.id.len() > 12 {
            post(&mut self.containers, short(&c.id), s, add);
        }
        for n in c.plain_names() {
            post(&mut self.containers, n, s, add);
            self.post_name(n, s, &c.id, add);
        }
        for (k, v) in &c.labels {
            let idx = self.clabels.entry(k.clone()).or_default();
            post(idx, v, s, add);
            if idx.is_empty() {
                self.clabels.remove(k);
            }
        }
    }

    /// Indexes (or un-indexes) what an offer says of the node itself: its keys, labels and
    /// facts, host ports, images, networks and volumes.
    fn index_node(&mut self, s: u32, o: &Offer, add: bool) {
        for key in [&o.name, &o.engine_id, &o.addr] {
            if !key.is_empty() {
                post(&mut self.node_keys, key, s, add);
            }
        }
        let facts = [
            ("storagedriver", &o.facts.storage_driver),
            ("kernelversion", &o.facts.kernel_version),
            ("operatingsystem", &o.facts.operating_system),
            ("ostype", &o.facts.os_type),
        ];
        let labels = o.facts.labels.iter().map(|(k, v)| (k.as_str(), v));
        for (k, v) in facts.into_iter().chain(labels) {
            if v.is_empty() {
                continue;
            }
            let idx = self.labels.entry(k.to_owned()).or_default();
            post(idx, v, s, add);
            if idx.is_empty() {
                self.labels.remove(k);
            }
        }
        for p in &o.ports {
            self.post_port(*p, s, add);
        }
        for img in o.images.iter() {
            post(&mut self.images, &img.id, s, add);
            if let Some(bare) = img.id.strip_prefix("sha256:") {
                post(&mut self.images, bare, s, add);
            }
            post(&mut self.images, short(&img.id), s, add);
            for tag in &img.repo_tags {
                post(&mut self.images, tag, s, add);
                if let Some((repo, t)) = tag.rsplit_once(':') {
                    if !t.contains('/') {
                        post(&mut self.images, repo, s, add);
                    }
                }
            }
        }
        for n in o.networks.iter().filter(|n| n.scope == Scope::Local) {
            post(&mut self.networks, &n.name, s, add);
            if !n.id.is_empty() {
                post(&mut self.networks, &n.id, s, add);
            }
        }
        for v in o.volumes.iter() {
            post(&mut self.volumes, v, s, add);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Postings;

    /// The list `Postings` stands for: what it held before it kept one posting inline.
    fn reference_add(v: &mut Vec<(u32, u32)>, slot: u32) {
        match v.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, n)) => *n += 1,
            None => v.push((slot, 1)),
        }
    }

    fn reference_remove(v: &mut Vec<(u32, u32)>, slot: u32) -> bool {
        if let Some(i) = v.iter().position(|(s, _)| *s == slot) {
            v[i].1 -= 1;
            if v[i].1 == 0 {
                v.swap_remove(i);
            }
        }
        v.is_empty()
    }

    #[test]
    fn postings_hold_what_a_plain_list_holds_in_its_order() {
        let mut p = Postings::default();
        let mut reference = Vec::new();
        // A fixed pseudo-random walk over four slots: adds, removes, removals of slots
        // not held, emptying and refilling.
        let mut x: u32 = 7;
        for _ in 0..2_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let slot = (x >> 16) % 4;
            if (x >> 8).is_multiple_of(3) {
                assert_eq!(p.remove(slot), reference_remove(&mut reference, slot));
            } else {
                p.add(slot);
                reference_add(&mut reference, slot);
            }
            assert_eq!(p.as_slice(), reference.as_slice());
            let slots: Vec<u32> = p.slots().collect();
            let want: Vec<u32> = reference.iter().map(|(s, _)| *s).collect();
            assert_eq!(slots, want);
        }
        assert!(matches!(Postings::default(), Postings::Many(ref v) if v.is_empty()));
        let mut one = Postings::default();
        one.add(3);
        assert!(matches!(one, Postings::One((3, 1))), "one node: no list");
        assert!(one.remove(3));
    }
}
