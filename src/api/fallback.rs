//! Answers for paths no handler took: 501 naming the route when it is part of the Docker
//! Engine API (later work adds it), 404 `page not found` otherwise, as the engine answers.

use super::ApiError;
use actix_web::HttpRequest;
use shoal_actors::engine::split_api_version;

/// First path segments of the Docker Engine API.
const ENGINE_API_ROOTS: &[&str] = &[
    "containers",
    "images",
    "networks",
    "volumes",
    "exec",
    "build",
    "events",
    "system",
    "swarm",
    "services",
    "nodes",
    "tasks",
    "secrets",
    "configs",
    "plugins",
    "session",
    "distribution",
    "auth",
    "commit",
    "grpc",
];

pub async fn unrouted(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    let (_, path) = split_api_version(req.path());
    let root = path.trim_start_matches('/').split('/').next().unwrap_or("");
    Err(if ENGINE_API_ROOTS.contains(&root) {
        ApiError::NotImplemented {
            method: req.method().to_string(),
            path: path.to_string(),
        }
    } else {
        ApiError::NoRoute
    })
}
