//! Placement: where a new container goes.
//!
//! A request passes through these files in order:
//! - [`request`]: the create body is read into a [`PlacementRequest`] (expressions
//!   parsed by [`expr`], resources, ports, dependencies, networks, volumes);
//! - [`actor`]: the [`SchedulerActor`] takes `Place` and asks its [`Placer`];
//! - [`placer`]: name check, then the filters ([`filters`], over the indexed
//!   cluster [`state`] built from each node's [`Offer`]), then a strategy
//!   ([`strategy`]), then the reservation;
//! - back in the create flow (`crate::create`): [`PlacementRequest::rewrite_body`]
//!   prepares the body for the engine, and `ConfirmPlacement` / `CancelPlacement` settle
//!   the reservation. A retry on another node adds the failed one to the request's typed
//!   `avoid` set.
//!
//! Errors are one enum, [`ScheduleError`], with the HTTP status each maps to.

pub mod actor;
pub mod config;
pub mod error;
pub mod expr;
mod filters;
mod nodeset;
pub mod offer;
pub mod placer;
pub mod request;
mod state;
mod strategy;

#[cfg(test)]
mod tests;

pub use actor::{
    CancelPlacement, ConfirmPlacement, GetSchedulerInfo, Place, RemoveNode, SchedulerActor,
    SchedulerInfo, UpdateOffer,
};
pub use config::{FilterKind, SchedulerConfig, Strategy};
pub use error::{ScheduleError, SchedulerConfigError};
pub use expr::{Expr, ExprError, ExprKind, Matcher, Op};
pub use offer::{
    container_reservation, cpuset_count, ContainerInfo, HostPort, ImageInfo, NetworkInfo, NodeId,
    Offer, Proto, Scope, NANOS_PER_CPU,
};
pub use placer::{NodeUsage, Placement, Placer, ReservationId};
pub use request::{
    Dependency, DependencyKind, PlacementRequest, PortMode, PortRequest, ReschedulePolicy,
    LABEL_RESCHEDULE, LABEL_SWARM_ID,
};
