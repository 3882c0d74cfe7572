//! What the rescheduler should do now, decided from a picture of the cluster alone (pure:
//! tested without actors or engines).
//!
//! Containers are grouped by `com.docker.swarm.id`: one swarm id is one container, though
//! a move leaves it on two nodes for a while. For each group:
//! - no member on a live node (healthy or pending), and the newest member's node down past
//!   the grace period, with the `on-node-failure` policy: move it from there;
//! - a member on a live node: nothing to move (that is how a restarted Shoal knows a move
//!   was done: it rebuilds from the labels alone);
//! - several members on healthy nodes, the newest a copy Shoal made (it carries
//!   `com.docker.swarm.rescheduled-from`): the others are stale originals of a node that
//!   came back, to remove.
//!
//! Groups with a job in flight, or waiting to try again, are left alone.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::node::Health;
use crate::scheduler::NodeId;

/// One node as the rescheduler sees it.
#[derive(Debug, Clone)]
pub struct SeenNode {
    pub id: NodeId,
    pub health: Health,
    /// How long it has been unhealthy, as the rescheduler saw it.
    pub down_for: Option<Duration>,
    /// Its containers that carry a swarm id and the policy (the actor reads no others).
    pub containers: Vec<Watched>,
}

/// One container that carries a `com.docker.swarm.id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub id: String,
    /// Without the `/`.
    pub name: String,
    pub image: String,
    pub swarm_id: String,
    /// Running (or paused, restarting) when its node last answered.
    pub running: bool,
    /// The engine's `Created`, seconds.
    pub created: i64,
    /// Its reschedule policy is `on-node-failure`.
    pub on_node_failure: bool,
    /// The node it was moved from, when Shoal made it as a copy.
    pub rescheduled_from: Option<String>,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create `container` again elsewhere.
    Move { from: NodeId, container: Watched },
    /// `container` on `node` is the stale original of `keeper` (on `keeper_node`).
    RemoveStale {
        node: NodeId,
        container: Watched,
        keeper_node: NodeId,
        keeper_id: String,
    },
}

/// Decides. `busy`: swarm ids to leave alone this time.
pub fn plan(nodes: &[SeenNode], grace: Duration, busy: &HashSet<String>) -> Vec<Action> {
    let mut groups: BTreeMap<&str, Vec<(&SeenNode, &Watched)>> = BTreeMap::new();
    for n in nodes {
        for c in &n.containers {
            groups.entry(&c.swarm_id).or_default().push((n, c));
        }
    }
    let mut out = Vec::new();
    for (swarm_id, members) in groups {
        if busy.contains(swarm_id) {
            continue;
        }
        let live: Vec<(&SeenNode, &Watched)> = members
            .iter()
            .filter(|(n, _)| n.health != Health::Unhealthy)
            .copied()
            .collect();
        if live.is_empty() {
            let Some((node, c)) = newest(&members) else {
                continue;
            };
            if c.on_node_failure && node.down_for.is_some_and(|d| d >= grace) {
                out.push(Action::Move {
                    from: node.id.clone(),
                    container: c.clone(),
                });
            }
            continue;
        }
        let healthy: Vec<(&SeenNode, &Watched)> = live
            .into_iter()
            .filter(|(n, _)| n.health == Health::Healthy)
            .collect();
        let Some((keeper_node, keeper)) = newest(&healthy) else {
            continue;
        };
        if keeper.rescheduled_from.is_none() {
            continue;
        }
        for (n, c) in &healthy {
            if c.id != keeper.id && c.on_node_failure {
                out.push(Action::RemoveStale {
                    node: n.id.clone(),
                    container: (*c).clone(),
                    keeper_node: keeper_node.id.clone(),
                    keeper_id: keeper.id.clone(),
                });
            }
        }
    }
    out
}

/// The newest member of a group (a copy wins a tie: it was made after its original).
fn newest<'a>(m: &[(&'a SeenNode, &'a Watched)]) -> Option<(&'a SeenNode, &'a Watched)> {
    m.iter()
        .max_by_key(|(_, c)| (c.created, c.rescheduled_from.is_some()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, swarm: &str, created: i64, from: Option<&str>) -> Watched {
        Watched {
            id: id.into(),
            name: "web".into(),
            image: "busybox".into(),
            swarm_id: swarm.into(),
            running: true,
            created,
            on_node_failure: true,
            rescheduled_from: from.map(str::to_owned),
        }
    }

    fn node(id: &str, health: Health, down_s: Option<u64>, containers: Vec<Watched>) -> SeenNode {
        SeenNode {
            id: NodeId::new(id),
            health,
            down_for: down_s.map(Duration::from_secs),
            containers,
        }
    }

    const GRACE: Duration = Duration::from_secs(30);

    #[test]
    fn a_container_moves_once_its_node_is_down_past_the_grace_period() {
        let busy = HashSet::new();
        let mut a = node(
            "a",
            Health::Unhealthy,
            Some(29),
            vec![c("c1", "s1", 10, None)],
        );
        let mut off = c("c2", "s2", 10, None);
        off.on_node_failure = false;
        a.containers.push(off);
        let b = node("b", Health::Healthy, None, vec![]);
        assert!(plan(&[a.clone(), b.clone()], GRACE, &busy).is_empty());
        a.down_for = Some(GRACE);
        let actions = plan(&[a.clone(), b.clone()], GRACE, &busy);
        assert_eq!(
            actions,
            vec![Action::Move {
                from: NodeId::new("a"),
                container: c("c1", "s1", 10, None)
            }],
            "only the container with the policy"
        );
        let busy = HashSet::from(["s1".to_string()]);
        assert!(plan(&[a, b], GRACE, &busy).is_empty(), "a job in flight");
    }

    #[test]
    fn a_copy_on_a_live_node_means_done_and_a_returned_original_is_stale() {
        let busy = HashSet::new();
        let copy = c("c9", "s1", 20, Some("a"));
        let a_down = node(
            "a",
            Health::Unhealthy,
            Some(600),
            vec![c("c1", "s1", 10, None)],
        );
        let b = node("b", Health::Healthy, None, vec![copy.clone()]);
        assert!(
            plan(&[a_down, b.clone()], GRACE, &busy).is_empty(),
            "moved already (as a restarted Shoal sees it)"
        );
        let a_back = node("a", Health::Healthy, None, vec![c("c1", "s1", 10, None)]);
        assert_eq!(
            plan(&[a_back, b], GRACE, &busy),
            vec![Action::RemoveStale {
                node: NodeId::new("a"),
                container: c("c1", "s1", 10, None),
                keeper_node: NodeId::new("b"),
                keeper_id: "c9".into(),
            }]
        );
    }

    #[test]
    fn duplicates_shoal_did_not_make_are_left_alone() {
        let busy = HashSet::new();
        let a = node("a", Health::Healthy, None, vec![c("c1", "s1", 10, None)]);
        let b = node("b", Health::Healthy, None, vec![c("c2", "s1", 20, None)]);
        assert!(plan(&[a, b], GRACE, &busy).is_empty());
    }

    #[test]
    fn a_copy_whose_node_fails_too_moves_from_there_not_from_the_first_node() {
        let busy = HashSet::new();
        let a = node(
            "a",
            Health::Unhealthy,
            Some(600),
            vec![c("c1", "s1", 10, None)],
        );
        let b = node(
            "b",
            Health::Unhealthy,
            Some(60),
            vec![c("c9", "s1", 20, Some("a"))],
        );
        let cn = node("c", Health::Healthy, None, vec![]);
        assert_eq!(
            plan(&[a, b, cn], GRACE, &busy),
            vec![Action::Move {
                from: NodeId::new("b"),
                container: c("c9", "s1", 20, Some("a"))
            }]
        );
    }
}
