//! The sequence of one create: place, make what the container needs where it lands,
//! create (pulling the image once if the engine lacks it), then confirm or cancel the
//! reservation; when the node failed rather than the request, try another node.
//!
//! What counts as the node's failure, and what may be tried elsewhere:
//! - cannot connect, or the engine answers 5xx: nothing was created; the reservation is
//!   cancelled and the next try avoids that node (up to `FlowConfig::retries` more);
//! - the engine went silent (timeout, connection broken mid-call): the container may
//!   exist. Its reservation is kept and handed to the resolver (see `resolve`), which
//!   removes or adopts what landed. Another node is tried only for an unnamed create whose
//!   caller wants orphans removed: a named one would need the name its silent twin still
//!   holds, and trying it anyway could leave two containers of one name;
//! - a 4xx is the request's own fault and would fail anywhere: answered as it is.
//!
//! After a try on another node, a scheduler refusal (every node avoided or excluded) is
//! not the interesting answer: the node's failure that led there is.

use std::collections::HashSet;
use std::rc::Rc;

use actix::Addr;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use super::error::CreateError;
use super::nodes::{NodeTarget, Nodes};
use super::request::{CreateRequest, IfLanded};
use super::resolve::{resolve, ResolveConfig, Resolved, Silent};
use crate::engine::{error_message, EngineError};
use crate::metrics;
use crate::scheduler::{
    CancelPlacement, ConfirmPlacement, NodeId, Place, Placement, SchedulerActor,
};

/// How the flow runs; one value from the CLI (`swarm.createretry`).
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Further nodes tried after the first failed (classic Swarm's `swarm.createretry`).
    pub retries: u32,
    pub resolve: ResolveConfig,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            retries: DEFAULT_RETRIES,
            resolve: ResolveConfig::default(),
        }
    }
}

/// `swarm.createretry` when not given: a dead or sick engine costs the client one try,
/// not the create, and two more nodes bound the time a create can take.
pub const DEFAULT_RETRIES: u32 = 2;

/// A created container.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub node: NodeId,
    /// The engine's answer as it is (`{"Id": ..., "Warnings": [...]}`).
    pub answer: Bytes,
}

/// Whether a failed try may have left a container behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    NotCreated,
    Unknown,
}

struct Failed {
    error: CreateError,
    fate: Fate,
}

impl Failed {
    fn before_create(error: impl Into<CreateError>) -> Self {
        Failed {
            error: error.into(),
            fate: Fate::NotCreated,
        }
    }

    /// A create call with no answer: connect failures never reached the engine.
    fn create_call(e: EngineError) -> Self {
        let fate = match e {
            EngineError::Connect { .. } | EngineError::Status { .. } => Fate::NotCreated,
            EngineError::Timeout { .. } | EngineError::Io { .. } | EngineError::Garbage { .. } => {
                Fate::Unknown
            }
        };
        Failed {
            error: e.into(),
            fate,
        }
    }
}

/// Networks and volumes one create made itself, by name.
#[derive(Default)]
struct Made {
    networks: HashSet<String>,
    volumes: HashSet<String>,
}

/// The create flow. Cheap to build per request: it holds the scheduler's address and the
/// nodes it reads.
pub struct CreateFlow {
    scheduler: Addr<SchedulerActor>,
    nodes: Rc<dyn Nodes>,
    config: FlowConfig,
    resolved: Option<mpsc::Sender<Resolved>>,
}

fn no_such_image(status: u16, body: &[u8]) -> bool {
    status == 404 && error_message(body).starts_with("No such image")
}

impl CreateFlow {
    pub fn new(scheduler: Addr<SchedulerActor>, nodes: Rc<dyn Nodes>, config: FlowConfig) -> Self {
        CreateFlow {
            scheduler,
            nodes,
            config,
            resolved: None,
        }
    }

    /// Where to tell how each silent create ended (a rescheduler, tests). Bounded: a
    /// resolution that finds the channel full is logged and counted only.
    #[must_use]
    pub fn on_resolved(mut self, out: mpsc::Sender<Resolved>) -> Self {
        self.resolved = Some(out);
        self
    }

    /// Runs the whole create. On success the reservation is confirmed; on failure it is
    /// cancelled, or held by the resolver when the engine went silent.
    pub async fn run(&self, req: CreateRequest) -> Result<Created, CreateError> {
        let mut placement = req.placement().clone();
        let mut tries_left = self.config.retries;
        let mut last_failure: Option<CreateError> = None;
        // Networks and volumes this create made on nodes it then left: they exist, but
        // not where the container will land.
        let mut made = Made::default();
        loop {
            metrics::queued("scheduler", "scheduler");
            let placed = match self.scheduler.send(Place(placement.clone())).await? {
                Ok(placed) => placed,
                Err(refused) => return Err(last_failure.unwrap_or(refused.into())),
            };
            let failed = match self.attempt(&req, &placed, &mut made).await {
                Ok(created) => {
                    self.confirm(&placed, &created.id);
                    return Ok(created);
                }
                Err(failed) => failed,
            };
            match failed.fate {
                Fate::NotCreated => self.cancel(&placed).await,
                Fate::Unknown => self.resolve_later(&req, &placed),
            }
            let may_retry = failed.fate == Fate::NotCreated
                || (req.name().is_none() && req.if_landed() == IfLanded::Remove);
            let reason = match failed.error.node_failure() {
                Some(reason) if may_retry && tries_left > 0 => reason,
                _ => return Err(failed.error),
            };
            tries_left -= 1;
            metrics::create_retried(reason);
            tracing::warn!(node = %placed.node, error = %failed.error, "create failed, trying another node");
            placement.avoid.insert(placed.node.clone());
            last_failure = Some(failed.error);
        }
    }

    /// One try on the placed node.
    async fn attempt(
        &self,
        req: &CreateRequest,
        placed: &Placement,
        made: &mut Made,
    ) -> Result<Created, Failed> {
        let node = self
            .nodes
            .node(&placed.node)
            .ok_or_else(|| Failed::before_create(CreateError::NodeGone(placed.node.clone())))?;
        self.ensure_objects(&*node, req, made)
            .await
            .map_err(Failed::before_create)?;
        let body = req.engine_body(req.swarm_id(placed.reservation.as_str()));
        let name = req.name().map(str::to_owned);
        let mut answer = node
            .create(name.clone(), body.clone())
            .await
            .map_err(Failed::create_call)?;
        if let (Some(image), true) = (req.image(), no_such_image(answer.0, &answer.1)) {
            node.pull(image.to_owned(), req.auth())
                .await
                .map_err(Failed::before_create)?;
            answer = node.create(name, body).await.map_err(Failed::create_call)?;
        }
        match answer {
            (201, body) => Ok(Created {
                id: serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("Id").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default(),
                node: placed.node.clone(),
                answer: body,
            }),
            (status, body) => Err(Failed::before_create(EngineError::Status {
                addr: placed.node.to_string(),
                path: "/containers/create".into(),
                status,
                message: error_message(&body),
            })),
        }
    }

    /// Creates on `node` the networks and volumes the container needs that exist on no
    /// node yet (or only where an earlier try of this create made them), so they exist
    /// where it lands.
    async fn ensure_objects(
        &self,
        node: &dyn NodeTarget,
        req: &CreateRequest,
        made: &mut Made,
    ) -> Result<(), EngineError> {
        let placement = req.placement();
        for net in &placement.networks {
            if made.networks.contains(net) || !self.nodes.network_exists(net) {
                node.create_network(net.clone()).await?;
                made.networks.insert(net.clone());
            }
        }
        for vol in &placement.volumes {
            if made.volumes.contains(vol) || !self.nodes.volume_exists(vol) {
                node.create_volume(vol.clone()).await?;
                made.volumes.insert(vol.clone());
            }
        }
        Ok(())
    }

    /// Not waited for: the answer does not depend on it, and until it arrives the
    /// reservation still counts, which can only be too careful. Nor is its reply: waiting
    /// for it in the background woke this thread once more per create, for nothing (a
    /// scheduler that is gone has no reservations left to confirm).
    fn confirm(&self, placed: &Placement, container_id: &str) {
        let msg = ConfirmPlacement {
            reservation: placed.reservation.clone(),
            container_id: container_id.to_owned(),
        };
        metrics::queued("scheduler", "scheduler");
        self.scheduler.do_send(msg);
    }

    async fn cancel(&self, placed: &Placement) {
        metrics::queued("scheduler", "scheduler");
        let cancel = CancelPlacement {
            reservation: placed.reservation.clone(),
        };
        if self.scheduler.send(cancel).await.is_err() {
            tracing::warn!("the scheduler is gone; placement not cancelled");
        }
    }

    /// Hands a silent create to the resolver, in the background.
    fn resolve_later(&self, req: &CreateRequest, placed: &Placement) {
        let silent = Silent {
            nodes: self.nodes.clone(),
            node: placed.node.clone(),
            reservation: placed.reservation.clone(),
            swarm_id: req.swarm_id(placed.reservation.as_str()).to_owned(),
            if_landed: req.if_landed(),
        };
        let scheduler = self.scheduler.clone();
        let config = self.config.resolve.clone();
        let out = self.resolved.clone();
        actix_rt::spawn(async move {
            let resolved = resolve(silent, scheduler, config).await;
            if let Some(out) = out {
                if out.try_send(resolved).is_err() {
                    tracing::debug!("resolution listener full or gone");
                }
            }
        });
    }
}
