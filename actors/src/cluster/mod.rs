//! The ClusterActor owns the set of nodes and publishes the `ClusterView`.
//!
//! Messages it takes: `SetEngines` (from discovery), `NodeStopped` (from a NodeActor that
//! ended: restarted unless it was removed).

mod actor;
mod index;
mod view;

pub use actor::{ClusterActor, ClusterConfig, SetEngines};
pub use index::ClusterIndex;
pub use view::{
    compare_versions, ClusterRead, ClusterView, Found, NodeHandle, NodeRead, ResolveError,
};
