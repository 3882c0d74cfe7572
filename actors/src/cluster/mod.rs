//! The ClusterActor owns the set of nodes and publishes the `ClusterView`.
//!
//! Messages it takes: `SetEngines` (from discovery), `NodeStopped` (from a NodeActor that
//! ended: restarted unless it was removed).

mod actor;
mod view;

pub use actor::{ClusterActor, ClusterConfig, SetEngines};
pub use view::{compare_versions, ClusterRead, ClusterView, NodeHandle, NodeRead, ResolveError};
