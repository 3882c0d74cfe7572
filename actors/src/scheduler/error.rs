//! The scheduler's one error enum, and how each variant maps to an HTTP status. The
//! front turns it into Docker's `{"message": ...}` at one place.

use super::expr::ExprError;

/// Why a request could not be read or placed.
///
/// Status mapping (see [`ScheduleError::status`]):
/// - 400: the request itself is wrong (bad expression, bad label JSON, bad port).
/// - 409: the container name is taken (Docker's own status and text for this).
/// - 422: the request is well-formed but the cluster cannot take it now (no node
///   satisfies the conditions, no node has the resources, no node at all). Not 404,
///   which the docker CLI reads as "image missing, pull it"; not 409, which clients
///   read as a name conflict; not 5xx, since Shoal itself did not fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    InvalidExpression(#[from] ExprError),
    #[error("invalid label {label}: {reason}")]
    InvalidLabel { label: String, reason: String },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Classic Swarm's words: `invalid reschedule policy: X`, `too many reschedule policies`.
    #[error("{0}")]
    InvalidReschedule(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameConflict { name: String, id: String },
    #[error("Unable to find a node that satisfies the following conditions [{}]", .conditions.join(", "))]
    Unsatisfiable {
        /// The request's conditions, as classic Swarm listed them.
        conditions: Vec<String>,
        /// The filter that left no node (`locality` for the implicit node-local rule).
        reason: &'static str,
    },
    /// Every container depended on (`--volumes-from`, `--link`, `--net container:`) exists,
    /// but no one node holds them all: a container runs on one engine and can only use
    /// that engine's containers. `placed` says where each is (`--volumes-from vol0 is on
    /// node-1`), so the user can see which to move.
    #[error("cannot place: {}; a container can only use containers of one node", .placed.join(", "))]
    SplitDependencies { placed: Vec<String> },
    #[error("no resources available to schedule container")]
    NoResources,
    #[error("no node available in the cluster")]
    NoNodes,
}

impl ScheduleError {
    /// A fixed word for metrics: why the request was refused.
    pub fn reason(&self) -> &'static str {
        match self {
            ScheduleError::InvalidExpression(_)
            | ScheduleError::InvalidLabel { .. }
            | ScheduleError::InvalidRequest(_)
            | ScheduleError::InvalidReschedule(_) => "invalid",
            ScheduleError::NameConflict { .. } => "name_conflict",
            ScheduleError::Unsatisfiable { reason, .. } => reason,
            ScheduleError::SplitDependencies { .. } => "dependency",
            ScheduleError::NoResources => "no_resources",
            ScheduleError::NoNodes => "no_nodes",
        }
    }

    /// The HTTP status the front answers with.
    pub fn status(&self) -> u16 {
        match self {
            ScheduleError::InvalidExpression(_)
            | ScheduleError::InvalidLabel { .. }
            | ScheduleError::InvalidRequest(_)
            | ScheduleError::InvalidReschedule(_) => 400,
            ScheduleError::NameConflict { .. } => 409,
            ScheduleError::Unsatisfiable { .. }
            | ScheduleError::SplitDependencies { .. }
            | ScheduleError::NoResources
            | ScheduleError::NoNodes => 422,
        }
    }
}

/// A bad scheduler configuration: a start-up error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchedulerConfigError {
    #[error("unknown strategy \"{0}\" (expected spread, binpack or random)")]
    UnknownStrategy(String),
    #[error("unknown filter \"{0}\" (expected health, port, containerslots, dependency, affinity, constraint or whitelist)")]
    UnknownFilter(String),
    #[error("invalid overcommit ratio {0} (expected a number from -1 up)")]
    BadOvercommit(f64),
}
