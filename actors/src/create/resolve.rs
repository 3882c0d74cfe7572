//! Settling a create whose engine went silent (a timeout, a connection broken after the
//! request left): the container may or may not exist on that engine. The client has had
//! its answer already; this runs in the background, on the same thread, until it knows.
//!
//! It asks the node, with back-off, for the container carrying the create's
//! `com.docker.swarm.id` (cluster-unique: the reservation's id). Found: removed when its
//! caller was told the create failed, adopted (the reservation confirmed with its ID)
//! otherwise. Not found: asked again once more after a delay before it counts as absent,
//! because an engine that was frozen may read the create only after the list. Until then
//! the reservation is held, and with it the container's name: no other create can make a
//! second container of that name meanwhile. When the engine stays silent through every
//! attempt the reservation is released and the outcome counted as `unresolved`.

use std::rc::Rc;
use std::time::Duration;

use actix::Addr;

use super::nodes::Nodes;
use super::request::IfLanded;
use crate::metrics;
use crate::scheduler::{CancelPlacement, ConfirmPlacement, NodeId, ReservationId, SchedulerActor};

/// How hard to try.
#[derive(Debug, Clone)]
pub struct ResolveConfig {
    /// Wait before the first look; doubled after each until `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Looks at most, silent or not.
    pub attempts: u32,
    /// Consecutive "not there" answers before the create counts as absent.
    pub absent_checks: u32,
}

impl Default for ResolveConfig {
    /// About eight minutes: 1, 2, 4, 8, 16 s, then every 30 s.
    fn default() -> Self {
        ResolveConfig {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            attempts: 20,
            absent_checks: 2,
        }
    }
}

/// How a silent create ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It had landed; the orphan was removed.
    Removed { container_id: String },
    /// It had landed and was kept.
    Adopted { container_id: String },
    /// It never landed.
    Absent,
    /// The engine stayed silent (or refused the removal) through every attempt.
    Unresolved,
}

impl Resolution {
    /// The metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Resolution::Removed { .. } => "removed",
            Resolution::Adopted { .. } => "adopted",
            Resolution::Absent => "absent",
            Resolution::Unresolved => "unresolved",
        }
    }
}

/// A resolution, as told to whoever listens (`CreateFlow::on_resolved`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub node: NodeId,
    pub swarm_id: String,
    pub resolution: Resolution,
}

/// One silent create to settle.
pub(crate) struct Silent {
    pub nodes: Rc<dyn Nodes>,
    pub node: NodeId,
    pub reservation: ReservationId,
    /// The label the container carries: the reservation's id, or the one a re-created
    /// container keeps.
    pub swarm_id: String,
    pub if_landed: IfLanded,
}

/// Looks until it knows, then settles the reservation and counts the outcome.
pub(crate) async fn resolve(
    silent: Silent,
    scheduler: Addr<SchedulerActor>,
    config: ResolveConfig,
) -> Resolved {
    let swarm_id = silent.swarm_id.clone();
    let mut delay = config.first_delay;
    let mut absent = 0;
    let mut resolution = Resolution::Unresolved;
    for _ in 0..config.attempts {
        actix_rt::time::sleep(delay).await;
        delay = (delay * 2).min(config.max_delay);
        // Looked up each time: the NodeActor may have been restarted meanwhile.
        let Some(node) = silent.nodes.node(&silent.node) else {
            break;
        };
        match node.find(swarm_id.clone()).await {
            Err(e) => {
                absent = 0;
                tracing::debug!(node = %silent.node, error = %e, "silent create: engine still silent");
            }
            Ok(None) => {
                absent += 1;
                if absent >= config.absent_checks {
                    resolution = Resolution::Absent;
                    break;
                }
                delay = config.first_delay;
            }
            Ok(Some(id)) if silent.if_landed == IfLanded::Adopt => {
                resolution = Resolution::Adopted { container_id: id };
                break;
            }
            Ok(Some(id)) => match node.remove(id.clone()).await {
                Ok(()) => {
                    resolution = Resolution::Removed { container_id: id };
                    break;
                }
                Err(e) => {
                    absent = 0;
                    tracing::debug!(node = %silent.node, error = %e, "silent create: removal failed");
                }
            },
        }
    }
    metrics::queued("scheduler", "scheduler");
    let settled = match &resolution {
        Resolution::Adopted { container_id } => scheduler
            .send(ConfirmPlacement {
                reservation: silent.reservation.clone(),
                container_id: container_id.clone(),
            })
            .await
            .is_ok(),
        _ => scheduler
            .send(CancelPlacement {
                reservation: silent.reservation.clone(),
            })
            .await
            .is_ok(),
    };
    if !settled {
        tracing::warn!(node = %silent.node, "silent create: the scheduler is gone");
    }
    metrics::create_resolved(resolution.as_str());
    match &resolution {
        Resolution::Unresolved => tracing::warn!(
            node = %silent.node, swarm_id = %swarm_id,
            "a create the engine did not answer is still unknown; its reservation is released"
        ),
        r => {
            tracing::info!(node = %silent.node, swarm_id = %swarm_id, outcome = r.as_str(), "silent create resolved")
        }
    }
    Resolved {
        node: silent.node,
        swarm_id,
        resolution,
    }
}
