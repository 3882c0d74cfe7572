//! Answers for requests no route took, as dockerd answers them: `OPTIONS` on any path is
//! 200 with an empty body (a browser's preflight; `cross_site` has already checked the
//! origin), and anything else, an unknown path or a known path with another method, is
//! 404 `page not found`. Only the Docker API families Shoal does not serve at all (swarm
//! mode, plugins, sessions) say so with 501, so a client learns why.

use crate::api::error::ApiError;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};
use shoal_actors::engine::split_api_version;

/// First path segments of Docker Engine API families Shoal does not serve.
const UNSERVED_ROOTS: &[&str] = &[
    "swarm",
    "services",
    "nodes",
    "tasks",
    "secrets",
    "configs",
    "plugins",
    "session",
    "distribution",
    "grpc",
];

pub async fn unrouted(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.method() == Method::OPTIONS {
        return Ok(HttpResponse::Ok().finish());
    }
    let (_, path) = split_api_version(req.path());
    let root = path.trim_start_matches('/').split('/').next().unwrap_or("");
    Err(if UNSERVED_ROOTS.contains(&root) {
        ApiError::NotImplemented {
            method: req.method().to_string(),
            path: path.to_string(),
        }
    } else {
        ApiError::NoRoute
    })
}
