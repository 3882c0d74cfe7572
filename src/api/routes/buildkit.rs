//! BuildKit's entry points (`POST /session`, `POST /grpc`, and `POST /build?version=2`,
//! answered in `images::build`). Shoal relays the classic builder only: a BuildKit relay
//! needs a BuildKit client (buildx) to test against, and none can be installed where Shoal
//! is built. Until then a BuildKit client hears, in Docker's error shape, what works
//! instead, rather than a bare "not found".

use crate::api::error::ApiError;
use actix_web::{web, HttpResponse};

/// What a BuildKit request is told.
pub const USE_CLASSIC_BUILDER: &str = "BuildKit is not supported by shoal, which relays the classic builder only: build with DOCKER_BUILDKIT=0 docker build ... (or your SDK's classic build call, e.g. docker-py's client.images.build)";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/session", web::to(refuse))
        .route("/grpc", web::to(refuse));
}

/// The refusal, a 400 as dockerd's own answer to a BuildKit request it cannot serve.
pub fn refused() -> ApiError {
    ApiError::BadRequest(USE_CLASSIC_BUILDER.to_string())
}

async fn refuse() -> Result<HttpResponse, ApiError> {
    Err(refused())
}
