//! The ClusterActor owns the set of nodes and publishes the `ClusterView`.
//!
//! Messages it takes: `SetEngines` (from discovery), `NodeStopped` (from a NodeActor that
//! ended: restarted unless it was removed), `LayoutChanged` (a node's name, health or API
//! version changed).

mod actor;
mod answer;
mod index;
mod key;
mod view;

#[cfg(test)]
mod tests;

pub use actor::{ClusterActor, ClusterConfig, EngineMaker, SetEngines};
pub use answer::{AnswerMemo, Lookup, Since};
pub use index::ClusterIndex;
pub use key::{Part, ReadKey};
pub use view::{
    compare_versions, ClusterRead, ClusterView, Found, NodeHandle, NodeRead, ResolveError,
};
