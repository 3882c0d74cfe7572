//! The create flow: the one place that owns a container create, from a typed request to
//! an answer. The HTTP front parses `POST /containers/create` into a [`CreateRequest`] and
//! awaits [`CreateFlow::run`]; the rescheduler (`crate::reschedule`: re-create a
//! container of a dead node, keeping its swarm id and name) and the authorization guard
//! (labels and constraints forced onto a create) build or amend the same request and go
//! through the same flow. Nothing here knows HTTP.
//!
//! A create passes through these files in order:
//! - [`request`]: the body, read once: the raw JSON (so fields this build does not model
//!   reach the engine unchanged), the typed body, the [`PlacementRequest`], what a caller
//!   forces onto it, and what to do if a silent create turns out to have landed;
//! - [`flow`]: place (SchedulerActor), make missing networks and volumes where the
//!   container lands, create, pull and create again, confirm or cancel the reservation,
//!   and try another node (a typed avoid set) when the node failed, not the request;
//! - [`resolve`]: a create whose engine went silent is settled in the background by its
//!   `com.docker.swarm.id`: the orphan is removed (its client was told it failed) or
//!   adopted; its reservation (and so its name) is held until then;
//! - [`nodes`]: what the flow needs of the nodes, as two small traits, with the
//!   production side over the cluster view and the NodeActors.
//!
//! Errors are one enum, [`CreateError`], with the HTTP status each maps to.
//!
//! [`PlacementRequest`]: crate::scheduler::PlacementRequest

mod error;
pub mod flow;
pub mod nodes;
pub mod request;
pub mod resolve;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub use error::CreateError;
pub use flow::{CreateFlow, Created, FlowConfig};
pub use nodes::{ClusterNodes, NodeTarget, Nodes};
pub use request::{CreateRequest, IfLanded};
pub use resolve::{Resolution, ResolveConfig, Resolved};
