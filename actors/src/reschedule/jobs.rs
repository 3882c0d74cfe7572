//! The two jobs of the rescheduler, as plain async functions over the create flow, the
//! nodes and the ledger (so their tests run them against fake engines):
//! - [`move_container`]: claim the move, rebuild the create from the cached inspect, run
//!   it through the create flow (the copy keeps the name and swarm id, never lands on the
//!   failed node), connect the further networks, start it if the original was running,
//!   record it done;
//! - [`clear_stale`]: remove the original a returned node still holds, or, if the engine
//!   refuses, rename it out of the way.

use bytes::Bytes;
use thiserror::Error;

use super::ledger::{Ledger, LedgerError};
use super::plan::Watched;
use super::rebuild::{self, RebuildError};
use super::LABEL_RESCHEDULED_FROM;
use crate::create::{CreateError, CreateFlow, CreateRequest, Nodes};
use crate::engine::EngineError;
use crate::node::ContainerOp;
use crate::scheduler::NodeId;

#[derive(Debug, Error)]
pub enum RescheduleError {
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error("no configuration is known for container {0} (its node failed before Shoal read it)")]
    NoConfig(String),
    #[error("{0}")]
    Rebuild(#[from] RebuildError),
    #[error("{0}")]
    Create(#[from] CreateError),
    #[error("node {0} left the cluster")]
    NodeGone(NodeId),
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// A copy made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub to: NodeId,
    pub container_id: String,
    /// Started (the original was running) and the start succeeded.
    pub started: bool,
    /// Why the copy could not be started or joined to a network, if so: it exists, and is
    /// not made again.
    pub incomplete: Option<String>,
}

/// What a move came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveOutcome {
    Moved(Moved),
    /// The ledger says it is done or being done.
    NotClaimed,
}

/// Moves `container` away from `from` (see the module doc). A failure before the copy
/// exists releases the claim, so a later try may make it.
pub async fn move_container(
    flow: &CreateFlow,
    nodes: &dyn Nodes,
    ledger: &dyn Ledger,
    from: &NodeId,
    container: &Watched,
    inspect: Option<Bytes>,
) -> Result<MoveOutcome, RescheduleError> {
    let swarm_id = container.swarm_id.as_str();
    if !ledger.claim(swarm_id, from).await? {
        return Ok(MoveOutcome::NotClaimed);
    }
    let made = make_copy(flow, from, container, inspect).await;
    let (created, extra_networks) = match made {
        Ok(made) => made,
        Err(e) => {
            if let Err(le) = ledger.release(swarm_id, from).await {
                tracing::warn!(swarm_id, error = %le, "could not release a failed reschedule");
            }
            return Err(e);
        }
    };
    // The copy exists from here on: whatever fails next, it is not made again.
    ledger
        .done(swarm_id, from, &created.node, &created.id)
        .await?;
    let mut moved = Moved {
        to: created.node.clone(),
        container_id: created.id.clone(),
        started: false,
        incomplete: None,
    };
    let Some(node) = nodes.node(&created.node) else {
        moved.incomplete = Some(format!("node {} left the cluster", created.node));
        return Ok(MoveOutcome::Moved(moved));
    };
    for (network, endpoint) in extra_networks {
        let op = ContainerOp::Connect {
            network: network.clone(),
            endpoint,
        };
        if let Err(e) = node.call(created.id.clone(), op).await {
            moved.incomplete = Some(format!("not connected to {network}: {e}"));
        }
    }
    if container.running {
        match node.call(created.id.clone(), ContainerOp::Start).await {
            Ok(()) => moved.started = true,
            Err(e) => moved.incomplete = Some(format!("not started: {e}")),
        }
    }
    Ok(MoveOutcome::Moved(moved))
}

async fn make_copy(
    flow: &CreateFlow,
    from: &NodeId,
    container: &Watched,
    inspect: Option<Bytes>,
) -> Result<(crate::create::Created, Vec<(String, Bytes)>), RescheduleError> {
    let inspect = inspect.ok_or_else(|| RescheduleError::NoConfig(container.id.clone()))?;
    let rebuilt = rebuild::from_inspect(&inspect)?;
    let mut req = CreateRequest::parse(&rebuilt.body, rebuilt.name.as_deref())?.adopt_if_landed();
    req.replace_from(container.swarm_id.clone(), from.clone());
    req.force_label(LABEL_RESCHEDULED_FROM, from.as_str());
    let created = flow.run(req).await?;
    Ok((created, rebuilt.extra_networks))
}

/// What became of a stale original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaleOutcome {
    Removed,
    /// The removal failed; renamed to this.
    Renamed(String),
}

/// Removes the stale original `container` on `node`, or renames it out of the way
/// (`web` → `web-stale-0123456789ab`) when the engine refuses the removal. The move is
/// forgotten by the ledger once the original is removed.
pub async fn clear_stale(
    nodes: &dyn Nodes,
    ledger: &dyn Ledger,
    node_id: &NodeId,
    container: &Watched,
) -> Result<StaleOutcome, RescheduleError> {
    let node = nodes
        .node(node_id)
        .ok_or_else(|| RescheduleError::NodeGone(node_id.clone()))?;
    match node.remove(container.id.clone()).await {
        Ok(()) => {
            ledger.forget(&container.swarm_id, node_id).await?;
            Ok(StaleOutcome::Removed)
        }
        Err(removal) => {
            let short = &container.id[..container.id.len().min(12)];
            let name = format!("{}-stale-{short}", container.name);
            tracing::warn!(node = %node_id, container = %container.id, error = %removal, "stale copy not removed; renaming it");
            node.call(
                container.id.clone(),
                ContainerOp::Rename { name: name.clone() },
            )
            .await?;
            Ok(StaleOutcome::Renamed(name))
        }
    }
}
