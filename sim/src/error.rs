//! The crate's one error type, and the one place it becomes a Docker-shaped answer.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("page not found")]
    PageNotFound,
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameConflict { name: String, id: String },
    #[error("You cannot remove a running container {0}. Stop the container before attempting removal or force remove")]
    RemoveRunning(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
}

impl ResponseError for SimError {
    fn status_code(&self) -> StatusCode {
        match self {
            SimError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            SimError::PageNotFound | SimError::NoSuchContainer(_) | SimError::NoSuchImage(_) => {
                StatusCode::NOT_FOUND
            }
            SimError::NameConflict { .. } | SimError::RemoveRunning(_) | SimError::Conflict(_) => {
                StatusCode::CONFLICT
            }
            SimError::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code())
            .json(serde_json::json!({ "message": self.to_string() }))
    }
}
