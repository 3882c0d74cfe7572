//! The placer: the pure core of the SchedulerActor. It holds the cluster state and the
//! reservations, and decides: name check, filters in classic order (first with soft
//! expressions enforced, then without), strategy, then the reservation, all in one call
//! with no I/O. The actor owns one and calls it one message at a time; the benchmark
//! drives it directly.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{FilterKind, SchedulerConfig, Strategy};
use super::error::ScheduleError;
use super::filters;
use super::nodeset::NodeSet;
use super::offer::{HostPort, NodeId, Offer};
use super::request::{PlacementRequest, LABEL_SWARM_ID};
use super::state::ClusterState;
use super::strategy;
use crate::shared_list::positional_changes;

/// A reservation's id. Random, 64 hex digits, cluster-unique: the front should use it
/// as the container's `com.docker.swarm.id` (see `PlacementRequest::rewrite_body`), so
/// the node's next offer confirms the reservation even before `ConfirmPlacement`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReservationId(String);

impl ReservationId {
    fn random(rng: &mut StdRng) -> Self {
        let a: u128 = rng.gen();
        let b: u128 = rng.gen();
        Self(format!("{a:032x}{b:032x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scheduler's answer: where to create, and the reservation that holds the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: NodeId,
    pub reservation: ReservationId,
}

/// What a reservation holds until the container shows in an offer or is cancelled.
#[derive(Debug)]
struct Reservation {
    slot: u32,
    cpu: u64,
    mem: u64,
    ports: Vec<HostPort>,
    name: Option<String>,
    container_id: Option<String>,
}

/// One node's numbers as `/info` shows them (pending reservations included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUsage {
    pub node: NodeId,
    pub name: String,
    pub reserved_cpu: u64,
    pub total_cpu: u64,
    pub reserved_memory: u64,
    pub total_memory: u64,
    pub containers: u32,
    pub pending: u32,
}

/// The pure placement engine.
pub struct Placer {
    config: SchedulerConfig,
    state: ClusterState,
    reservations: HashMap<String, Reservation>,
    cand: NodeSet,
    tmp: NodeSet,
    rng: StdRng,
}

impl Placer {
    pub fn new(config: SchedulerConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Self {
            state: ClusterState::new(config.overcommit),
            config,
            reservations: HashMap::new(),
            cand: NodeSet::default(),
            tmp: NodeSet::default(),
            rng,
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Number of nodes known.
    pub fn node_count(&self) -> usize {
        self.state.by_node.len()
    }

    /// Number of reservations in flight.
    pub fn pending(&self) -> usize {
        self.reservations.len()
    }

    /// Installs a node's latest offer. Reservations whose container the offer now shows
    /// (by confirmed ID, or by its `com.docker.swarm.id` label) are dropped: the offer
    /// counts them from now on.
    ///
    /// Only the containers the node's last offer did not show as they are now are looked
    /// at: one it showed was matched then, or at the reservation's confirm (which looks at
    /// the offer it arrives to). Looking at every container was a label lookup per
    /// container of the node per offer, 3 % of a create's CPU at a thousand nodes.
    pub fn update_offer(&mut self, offer: Arc<Offer>) {
        let last = self
            .state
            .by_node
            .get(&offer.node)
            .map(|&s| Arc::clone(&self.state.slot(s).offer));
        let s = self.state.update(Arc::clone(&offer));
        let pending = &self.state.slot(s).pending;
        if pending.is_empty() {
            return;
        }
        let came = match &last {
            Some(last) => positional_changes(&last.containers, &offer.containers).1,
            None => offer.containers.iter().collect(),
        };
        let done: Vec<String> = pending
            .iter()
            .filter(|id| {
                let r = &self.reservations[*id];
                came.iter().any(|c| {
                    r.container_id.as_deref() == Some(c.id.as_str())
                        || c.labels.get(LABEL_SWARM_ID) == Some(*id)
                })
            })
            .cloned()
            .collect();
        for id in done {
            self.release(&id);
        }
    }

    /// Forgets a node and every reservation on it.
    pub fn remove_node(&mut self, node: &NodeId) {
        for id in self.state.remove(node) {
            self.reservations.remove(&id);
        }
    }

    /// Decides and reserves.
    pub fn place(&mut self, req: &PlacementRequest) -> Result<Placement, ScheduleError> {
        self.check_name(req)?;
        let s = self.choose_slot(req)?;
        Ok(self.reserve(s, req))
    }

    /// Decides without reserving (a dry run).
    pub fn choose(&mut self, req: &PlacementRequest) -> Result<NodeId, ScheduleError> {
        self.check_name(req)?;
        let s = self.choose_slot(req)?;
        Ok(self.state.slot(s).offer.node.clone())
    }

    /// Records the created container's ID; drops the reservation at once if the node's
    /// offer already shows it. Returns false for an unknown reservation.
    pub fn confirm(&mut self, reservation: &ReservationId, container_id: &str) -> bool {
        let Some(r) = self.reservations.get_mut(reservation.as_str()) else {
            return false;
        };
        r.container_id = Some(container_id.to_owned());
        let slot = r.slot;
        if self
            .state
            .slot(slot)
            .offer
            .containers
            .iter()
            .any(|c| c.id == container_id)
        {
            self.release(reservation.as_str());
        }
        true
    }

    /// Drops a reservation (the create failed). Returns false for an unknown one.
    pub fn cancel(&mut self, reservation: &ReservationId) -> bool {
        self.release(reservation.as_str())
    }

    /// Per-node reserved and total CPU and memory, by node name.
    pub fn usage(&self) -> Vec<NodeUsage> {
        let mut out: Vec<NodeUsage> = self
            .state
            .by_node
            .values()
            .map(|&s| {
                let slot = self.state.slot(s);
                let n = &self.state.nums[s as usize];
                NodeUsage {
                    node: slot.offer.node.clone(),
                    name: slot.offer.name.clone(),
                    reserved_cpu: n.used_cpu,
                    total_cpu: n.total_cpu,
                    reserved_memory: n.used_mem,
                    total_memory: n.total_mem,
                    containers: n.containers,
                    pending: slot.pending_count,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.node).cmp(&(&b.name, &b.node)));
        out
    }

    fn check_name(&self, req: &PlacementRequest) -> Result<(), ScheduleError> {
        if let Some(name) = &req.name {
            // A name held only on the node a re-created container leaves is its own.
            let holder = self.state.names.get(name).and_then(|v| {
                v.iter().find(|(slot, _)| {
                    req.takes_name_from.as_ref() != Some(&self.state.slot(*slot).offer.node)
                })
            });
            if let Some((_, id)) = holder {
                return Err(ScheduleError::NameConflict {
                    name: name.clone(),
                    id: id.clone(),
                });
            }
        }
        Ok(())
    }

    fn choose_slot(&mut self, req: &PlacementRequest) -> Result<u32, ScheduleError> {
        if self.state.by_node.is_empty() {
            return Err(ScheduleError::NoNodes);
        }
        self.state.ensure_ranks();
        match self.run(req, true) {
            // The soft pass also prefers the nodes that have the image (`locality`).
            Err(e) if req.has_soft() || req.image.is_some() => {
                tracing::debug!(error = %e, "soft pass placed nowhere; placing without it");
                self.run(req, false)
            }
            r => r,
        }
    }

    /// One pass of filters then strategy; `soft`: enforce soft expressions.
    fn run(&mut self, req: &PlacementRequest, soft: bool) -> Result<u32, ScheduleError> {
        let mut cand = std::mem::take(&mut self.cand);
        let mut tmp = std::mem::take(&mut self.tmp);
        let r = self.run_with(req, soft, &mut cand, &mut tmp);
        self.cand = cand;
        self.tmp = tmp;
        r
    }

    fn run_with(
        &mut self,
        req: &PlacementRequest,
        soft: bool,
        cand: &mut NodeSet,
        tmp: &mut NodeSet,
    ) -> Result<u32, ScheduleError> {
        self.filter(req, soft, cand, tmp)?;
        let st = &self.state;
        let pick = strategy::pick(
            self.config.strategy,
            &st.nums,
            cand,
            req.cpu,
            req.memory,
            &mut self.rng,
        );
        pick.ok_or(ScheduleError::NoResources)
    }

    /// The names of the nodes that pass the filters (tests).
    #[cfg(test)]
    pub(crate) fn candidates(
        &mut self,
        req: &PlacementRequest,
        soft: bool,
    ) -> Result<Vec<String>, ScheduleError> {
        self.state.ensure_ranks();
        let (mut cand, mut tmp) = (NodeSet::default(), NodeSet::default());
        self.filter(req, soft, &mut cand, &mut tmp)?;
        let mut names: Vec<String> = cand
            .iter()
            .map(|s| self.state.slot(s).offer.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Runs the filters in order, narrowing `cand` from every live node.
    fn filter(
        &self,
        req: &PlacementRequest,
        soft: bool,
        cand: &mut NodeSet,
        tmp: &mut NodeSet,
    ) -> Result<(), ScheduleError> {
        let st = &self.state;
        cand.copy_from(&st.live);
        // Nodes a create already failed on: out before any filter, so a refusal lists
        // the request's own conditions only.
        for node in &req.avoid {
            if let Some(&s) = st.by_node.get(node) {
                cand.remove(s);
            }
        }
        if cand.is_empty() && !req.avoid.is_empty() {
            return Err(ScheduleError::NoNodes);
        }
        // The implicit node-local rule runs where dependencies are resolved: after the
        // dependency filter, before affinity, whether or not that filter is enabled.
        let mut local_done = false;
        for &f in self.config.filters() {
            if !local_done && f > FilterKind::Dependency {
                local_done = true;
                filters::locality(st, req, soft, cand, tmp);
                if cand.is_empty() {
                    return Err(self.unsatisfiable(req, soft, None));
                }
            }
            match f {
                FilterKind::Health => filters::health(st, cand),
                FilterKind::Port => filters::port(st, req, cand),
                FilterKind::ContainerSlots => filters::container_slots(st, cand),
                FilterKind::Dependency => filters::dependency(st, req, cand, tmp),
                FilterKind::Affinity => filters::affinity(st, req, soft, cand, tmp),
                FilterKind::Constraint => filters::constraint(st, req, soft, cand, tmp),
                FilterKind::Whitelist => filters::whitelist(st, req, cand, tmp),
            }
            if cand.is_empty() {
                if f == FilterKind::Dependency {
                    if let Some(split) = self.split_dependencies(req) {
                        return Err(split);
                    }
                }
                return Err(self.unsatisfiable(req, soft, Some(f)));
            }
        }
        if !local_done {
            filters::locality(st, req, soft, cand, tmp);
            if cand.is_empty() {
                return Err(self.unsatisfiable(req, soft, None));
            }
        }
        Ok(())
    }

    /// The refusal of a request whose dependencies all exist on live nodes but on no one
    /// node together: which node holds each. `None` when that is not why (one is missing,
    /// or the node holding them all was left out by another filter).
    fn split_dependencies(&self, req: &PlacementRequest) -> Option<ScheduleError> {
        let st = &self.state;
        let mut common = st.live.clone();
        let mut placed = Vec::with_capacity(req.dependencies.len());
        for d in &req.dependencies {
            let mut holders = NodeSet::default();
            if let Some(postings) = st.containers.get(d.target.to_lowercase().as_str()) {
                postings
                    .slots()
                    .filter(|&s| st.live.contains(s))
                    .for_each(|s| holders.insert(s));
            }
            if holders.is_empty() {
                return None;
            }
            common.intersect(&holders);
            let mut names: Vec<&str> = holders
                .iter()
                .map(|s| st.slot(s).offer.name.as_str())
                .collect();
            names.sort_unstable();
            placed.push(format!("{} is on {}", d.spelled(), names.join(" and ")));
        }
        common
            .is_empty()
            .then_some(ScheduleError::SplitDependencies { placed })
    }

    /// The request's conditions, as classic Swarm listed them in its refusal.
    fn unsatisfiable(
        &self,
        req: &PlacementRequest,
        soft: bool,
        failed: Option<FilterKind>,
    ) -> ScheduleError {
        let mut conditions = Vec::new();
        if failed == Some(FilterKind::Health) {
            conditions.push("healthy node".to_owned());
        }
        for &f in self.config.filters() {
            match f {
                FilterKind::Health => {}
                FilterKind::Port => conditions.extend(req.ports.iter().map(|p| p.to_string())),
                FilterKind::ContainerSlots => {
                    if failed == Some(FilterKind::ContainerSlots) {
                        conditions.push("available container slots".to_owned());
                    }
                }
                FilterKind::Dependency => {
                    conditions.extend(req.dependencies.iter().map(|d| d.to_string()))
                }
                FilterKind::Affinity => conditions.extend(
                    req.affinities
                        .iter()
                        .filter(|e| soft || !e.soft)
                        .map(|e| e.to_string()),
                ),
                FilterKind::Constraint => conditions.extend(
                    req.constraints
                        .iter()
                        .filter(|e| soft || !e.soft)
                        .map(|e| e.to_string()),
                ),
                FilterKind::Whitelist => {
                    conditions.extend(req.whitelist.iter().map(|e| e.to_string()))
                }
            }
        }
        for n in &req.networks {
            if self.state.networks.contains_key(n.to_lowercase().as_str()) {
                conditions.push(format!("network {n}"));
            }
        }
        for v in &req.volumes {
            if self.state.volumes.contains_key(v.to_lowercase().as_str()) {
                conditions.push(format!("volume {v}"));
            }
        }
        ScheduleError::Unsatisfiable {
            conditions,
            reason: failed.map_or("locality", FilterKind::name),
        }
    }

    fn reserve(&mut self, s: u32, req: &PlacementRequest) -> Placement {
        let id = ReservationId::random(&mut self.rng);
        let ports: Vec<HostPort> = req.ports.iter().map(|p| p.port).collect();
        self.state
            .post_reservation(s, req.name.as_deref(), id.as_str(), &ports, true);
        let slot = self.state.slot_mut(s);
        slot.pending.push(id.0.clone());
        slot.pending_cpu += req.cpu;
        slot.pending_mem += req.memory;
        slot.pending_count += 1;
        let node = slot.offer.node.clone();
        self.state.refresh_nums(s);
        self.reservations.insert(
            id.0.clone(),
            Reservation {
                slot: s,
                cpu: req.cpu,
                mem: req.memory,
                ports,
                name: req.name.clone(),
                container_id: None,
            },
        );
        Placement {
            node,
            reservation: id,
        }
    }

    fn release(&mut self, id: &str) -> bool {
        let Some(r) = self.reservations.remove(id) else {
            return false;
        };
        self.state
            .post_reservation(r.slot, r.name.as_deref(), id, &r.ports, false);
        let slot = self.state.slot_mut(r.slot);
        slot.pending.retain(|p| p != id);
        slot.pending_cpu -= r.cpu;
        slot.pending_mem -= r.mem;
        slot.pending_count -= 1;
        self.state.refresh_nums(r.slot);
        true
    }

    /// The strategy in use.
    pub fn strategy(&self) -> Strategy {
        self.config.strategy
    }
}
