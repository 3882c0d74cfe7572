//! Swarm-mode routes (`/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`)
//! answered as a standalone engine answers them: Shoal is a cluster of standalone
//! engines, never a swarm, and clients branch on these exact answers (a tidy-up's
//! `leave_swarm(force=True)` reads 503 as "nothing to leave"; `docker node ls` prints the
//! message). The texts are dockerd's, checked against an engine not in swarm mode.
//! `swarm init` and `swarm join` would turn an engine into a swarm node behind Shoal's
//! back, so they are refused with the same status and a message that says why.

use crate::api::error::ApiError;
use actix_web::{web, HttpRequest, HttpResponse};
use shoal_actors::engine::split_api_version;

/// dockerd's answer to a swarm-manager route on an engine that is not one.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
/// dockerd's answer to `POST /swarm/leave` on an engine that is in no swarm.
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";
/// Shoal's answer to `swarm init` and `swarm join`.
pub const STANDALONE: &str = "This node is not part of a swarm: shoal is a standalone cluster manager (the model of classic Docker Swarm), not a swarm-mode manager; it cannot init or join a swarm. Run swarm mode on the engines themselves, not through shoal.";

/// First path segments of the swarm-mode API.
const ROOTS: &[&str] = &["swarm", "nodes", "services", "tasks", "secrets", "configs"];

/// Registers every swarm-mode path, any method.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for root in ROOTS {
        cfg.route(&format!("/{root}"), web::to(not_in_swarm))
            .route(&format!("/{root}/{{rest:.*}}"), web::to(not_in_swarm));
    }
}

/// The text a standalone engine answers for `path` (without its version prefix).
fn message(path: &str) -> &'static str {
    match path.trim_end_matches('/') {
        "/swarm/leave" => NOT_IN_A_SWARM,
        "/swarm/init" | "/swarm/join" => STANDALONE,
        _ => NOT_A_MANAGER,
    }
}

async fn not_in_swarm(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let (_, path) = split_api_version(req.path());
    Err(ApiError::Unavailable(message(path).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_follow_the_engine() {
        assert_eq!(message("/swarm"), NOT_A_MANAGER);
        assert_eq!(message("/swarm/leave"), NOT_IN_A_SWARM);
        assert_eq!(message("/swarm/unlockkey"), NOT_A_MANAGER);
        assert_eq!(message("/swarm/init"), STANDALONE);
        assert_eq!(message("/swarm/join/"), STANDALONE);
        assert_eq!(message("/services/x/logs"), NOT_A_MANAGER);
    }
}
