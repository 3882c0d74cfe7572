//! The SchedulerActor: one actor, one decision at a time. That is the correctness
//! argument: a decision and its reservation happen in one handler, so two concurrent
//! creates can never book the same CPU, memory, host port or name. Each decision is a
//! few microseconds of pure work (see `bench/examples/placement_bench.rs`), never an await.
//!
//! Takes: [`UpdateOffer`] and [`RemoveNode`] from NodeActors / the ClusterActor;
//! [`Place`], [`ConfirmPlacement`], [`CancelPlacement`] from the create flow and
//! [`GetSchedulerInfo`] from the HTTP front.

use std::sync::Arc;
use std::time::Instant;

use crate::metrics;

use actix::{Actor, Context, Handler, Message};

use super::config::{FilterKind, SchedulerConfig, Strategy};
use super::error::ScheduleError;
use super::offer::{NodeId, Offer};
use super::placer::{NodeUsage, Placement, Placer, ReservationId};
use super::request::PlacementRequest;

/// Mailbox capacity: creates from many clients queue here (with back-pressure on
/// `send`), each served in microseconds.
/// Every node sends an offer after each change; at start-up thousands arrive at once.
const MAILBOX: usize = 65_536;

/// Owns the [`Placer`]; see the module docs.
pub struct SchedulerActor {
    placer: Placer,
}

impl SchedulerActor {
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            placer: Placer::new(config),
        }
    }
}

impl Actor for SchedulerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        tracing::info!(strategy = %self.placer.strategy(), "scheduler started");
    }
}

// ---------------------------------------------------------------------------------

/// A node's latest resource offer. Sent by its NodeActor after every refresh and every
/// change; replaces the previous offer. No reply.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct UpdateOffer(pub Arc<Offer>);

impl Handler<UpdateOffer> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, msg: UpdateOffer, _: &mut Context<Self>) {
        let _m = metrics::handling("scheduler", "scheduler", "UpdateOffer");
        self.placer.update_offer(msg.0);
        metrics::scheduler_reservations(self.placer.pending());
    }
}

// ---------------------------------------------------------------------------------

/// A node left the cluster. Sent by the ClusterActor; its offer and every reservation
/// on it are dropped. No reply.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RemoveNode(pub NodeId);

impl Handler<RemoveNode> for SchedulerActor {
    type Result = ();

    fn handle(&mut self, msg: RemoveNode, _: &mut Context<Self>) {
        let _m = metrics::handling("scheduler", "scheduler", "RemoveNode");
        self.placer.remove_node(&msg.0);
        metrics::scheduler_reservations(self.placer.pending());
    }
}

// ---------------------------------------------------------------------------------

/// Where should this container go? Sent by the create flow for each try of a create.
/// Replies with the chosen node and a reservation (CPU, memory, host ports and name are
/// booked from this moment), or the refusal.
#[derive(Debug, Message)]
#[rtype(result = "Result<Placement, ScheduleError>")]
pub struct Place(pub PlacementRequest);

impl Handler<Place> for SchedulerActor {
    type Result = Result<Placement, ScheduleError>;

    fn handle(&mut self, msg: Place, _: &mut Context<Self>) -> Self::Result {
        let _m = metrics::handling("scheduler", "scheduler", "Place");
        let span = tracing::debug_span!("schedule", name = msg.0.name.as_deref().unwrap_or(""));
        let _entered = span.enter();
        let started = Instant::now();
        let r = self.placer.place(&msg.0);
        match &r {
            Ok(p) => {
                metrics::scheduler_placed(started.elapsed());
                tracing::debug!(node = %p.node, "placed");
            }
            Err(e) => {
                metrics::scheduler_refused(started.elapsed(), e.reason());
                tracing::debug!(error = %e, "placement refused");
            }
        }
        metrics::scheduler_reservations(self.placer.pending());
        r
    }
}

// ---------------------------------------------------------------------------------

/// The engine created the container. Sent by the create flow (and its resolver, for a
/// silent create it adopts). The reservation stays until
/// the node's offer shows the container (at once if it already does). Replies false for
/// an unknown reservation.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct ConfirmPlacement {
    pub reservation: ReservationId,
    pub container_id: String,
}

impl Handler<ConfirmPlacement> for SchedulerActor {
    type Result = bool;

    fn handle(&mut self, msg: ConfirmPlacement, _: &mut Context<Self>) -> bool {
        let _m = metrics::handling("scheduler", "scheduler", "ConfirmPlacement");
        self.placer.confirm(&msg.reservation, &msg.container_id)
    }
}

// ---------------------------------------------------------------------------------

/// The create failed: release what the reservation held. Sent by the create flow.
/// Replies false for an unknown reservation.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct CancelPlacement {
    pub reservation: ReservationId,
}

impl Handler<CancelPlacement> for SchedulerActor {
    type Result = bool;

    fn handle(&mut self, msg: CancelPlacement, _: &mut Context<Self>) -> bool {
        let _m = metrics::handling("scheduler", "scheduler", "CancelPlacement");
        let known = self.placer.cancel(&msg.reservation);
        metrics::scheduler_reservations(self.placer.pending());
        known
    }
}

// ---------------------------------------------------------------------------------

/// What `/info` shows of the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerInfo {
    pub strategy: Strategy,
    pub filters: Vec<FilterKind>,
    /// Per node, by name: reserved / total CPU and memory, pending reservations included.
    pub nodes: Vec<NodeUsage>,
}

/// Strategy, filters and per-node reservations. Sent by the HTTP front for `/info`.
#[derive(Debug, Message)]
#[rtype(result = "SchedulerInfo")]
pub struct GetSchedulerInfo;

impl Handler<GetSchedulerInfo> for SchedulerActor {
    type Result = actix::MessageResult<GetSchedulerInfo>;

    fn handle(&mut self, _: GetSchedulerInfo, _: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(SchedulerInfo {
            strategy: self.placer.strategy(),
            filters: self.placer.config().filters().to_vec(),
            nodes: self.placer.usage(),
        })
    }
}
