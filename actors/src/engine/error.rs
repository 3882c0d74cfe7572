//! Why an engine call failed. Every variant ends up as an unhealthy mark on the node that
//! made the call, never as a failure of another node.

use thiserror::Error;

#[derive(Debug, Error, Clone)]
pub enum EngineError {
    #[error("cannot connect to engine {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("engine {addr} did not answer {path} within {secs:.1}s")]
    Timeout {
        addr: String,
        path: String,
        secs: f64,
    },
    #[error("engine {addr} answered {path} with status {status}: {message}")]
    Status {
        addr: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error(
        "engine {addr} answered {path} with something that is not the expected JSON: {reason}"
    )]
    Garbage {
        addr: String,
        path: String,
        reason: String,
    },
    #[error("engine {addr}: {reason}")]
    Io { addr: String, reason: String },
}

impl EngineError {
    /// The engine's own status code, when it answered with one.
    pub fn status(&self) -> Option<u16> {
        match self {
            EngineError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
