//! Answers for requests no route took, as dockerd answers them: `OPTIONS` on any path is
//! 200 with an empty body (a browser's preflight; `cross_site` has already checked the
//! origin), and anything else, an unknown path or a known path with another method, is
//! 404 `page not found`. Only the plugin routes, which a cluster of standalone engines
//! cannot serve as one engine, say so with 501 and the reason, so a client learns why.
//! (Swarm-mode routes answer as a standalone engine does: `swarm`; BuildKit's: `buildkit`.)

use crate::api::error::ApiError;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse};
use shoal_actors::engine::split_api_version;

/// First path segments of Docker Engine API families Shoal does not serve, with why.
const UNSERVED_ROOTS: &[(&str, &str)] = &[(
    "plugins",
    "plugins are installed, enabled and configured on each engine, and one engine's plugin is not the cluster's; manage plugins on the engines directly",
)];

pub async fn unrouted(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if req.method() == Method::OPTIONS {
        return Ok(HttpResponse::Ok().finish());
    }
    let (_, path) = split_api_version(req.path());
    let root = path.trim_start_matches('/').split('/').next().unwrap_or("");
    Err(match UNSERVED_ROOTS.iter().find(|(r, _)| *r == root) {
        Some((_, reason)) => ApiError::NotImplemented {
            method: req.method().to_string(),
            path: path.to_string(),
            reason,
        },
        None => ApiError::NoRoute,
    })
}
