//! The one place errors become Docker-shaped HTTP answers: a status and
//! `{"message": "..."}`, as an engine writes them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shoal_actors::cluster::ResolveError;
use shoal_actors::engine::EngineError;
use shoal_actors::scheduler::ScheduleError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// A request Shoal will not serve (a browser's, from an origin not allowed).
    #[error("{0}")]
    Forbidden(String),
    #[error("page not found")]
    NoRoute,
    /// A route a standalone cluster cannot serve; `reason` says why and what to do. The
    /// words "not supported" matter: `docker inspect NAME` tries every object kind and
    /// skips one whose answer says so (it asks `/plugins/NAME/json` too).
    #[error("{method} {path} is not supported by shoal: {reason}")]
    NotImplemented {
        method: String,
        path: String,
        reason: &'static str,
    },
    /// What an engine outside swarm mode answers to swarm-mode routes (and Shoal to
    /// `swarm init`/`join`): 503, so clients read "not in a swarm".
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Resolve(#[from] ResolveError),
    /// An engine answered with an error of its own: its status and message pass through.
    #[error("{message}")]
    EngineAnswer { status: u16, message: String },
    /// An engine could not be reached or answered garbage.
    #[error("{0}")]
    EngineDown(EngineError),
    #[error("no healthy node in the cluster: {0}")]
    NoNode(String),
    #[error("{0}")]
    Schedule(#[from] ScheduleError),
    #[error("shoal internal error: {0}")]
    Internal(String),
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Status {
                status, message, ..
            } => ApiError::EngineAnswer { status, message },
            other => ApiError::EngineDown(other),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::Internal(format!("actor unavailable: {e}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            ApiError::Resolve(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::EngineAnswer { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            ApiError::EngineDown(_) => StatusCode::BAD_GATEWAY,
            ApiError::NoNode(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Schedule(e) => {
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "message": self.to_string() }))
    }
}
