//! Why a create failed, and the HTTP status each reason maps to. The front turns it into
//! Docker's `{"message": ...}`; the rescheduler only logs it.

use thiserror::Error;

use crate::engine::EngineError;
use crate::scheduler::{NodeId, ScheduleError};

#[derive(Debug, Error)]
pub enum CreateError {
    /// The request itself is malformed (JSON, name, missing image): 400.
    #[error("{0}")]
    Invalid(String),
    /// The scheduler refused: its own status (400, 409, 422).
    #[error("{0}")]
    Schedule(#[from] ScheduleError),
    /// An engine refused or failed: its status passes through; no answer is a 502.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The chosen node left the cluster between placement and create: 503.
    #[error("node {0} left the cluster")]
    NodeGone(NodeId),
    /// An actor of Shoal's own is gone (shutting down): 500.
    #[error("shoal internal error: {0}")]
    Internal(String),
}

impl CreateError {
    /// The HTTP status of this failure.
    pub fn status(&self) -> u16 {
        match self {
            CreateError::Invalid(_) => 400,
            CreateError::Schedule(e) => e.status(),
            CreateError::Engine(EngineError::Status { status, .. }) => *status,
            CreateError::Engine(_) => 502,
            CreateError::NodeGone(_) => 503,
            CreateError::Internal(_) => 500,
        }
    }

    /// When the node failed (not the request), why, as a metric label: worth another
    /// node. A 4xx is the request's own fault and would fail anywhere.
    pub(crate) fn node_failure(&self) -> Option<&'static str> {
        match self {
            CreateError::Engine(EngineError::Connect { .. }) => Some("connect"),
            CreateError::Engine(EngineError::Timeout { .. }) => Some("timeout"),
            CreateError::Engine(EngineError::Io { .. }) => Some("io"),
            CreateError::Engine(EngineError::Garbage { .. }) => Some("garbage"),
            CreateError::Engine(EngineError::Status { status, .. }) if *status >= 500 => {
                Some("status_5xx")
            }
            CreateError::NodeGone(_) => Some("node_gone"),
            _ => None,
        }
    }
}

impl From<actix::MailboxError> for CreateError {
    fn from(e: actix::MailboxError) -> Self {
        CreateError::Internal(format!("scheduler unavailable: {e}"))
    }
}
