//! `POST /containers/create`: read the body, ask the SchedulerActor where the container
//! goes, make what it needs on that node (its image, a network or volume that exists
//! nowhere yet), create it there, and settle the reservation.
//!
//! The body is read twice on purpose: typed (bollard's `ContainerCreateBody`) for the
//! placement, and as raw JSON for the engine, so fields this build does not model still
//! reach the engine unchanged. Only `Env` and `Labels` are rewritten (Shoal's placement
//! entries move from the env to the `com.docker.swarm.*` labels).

use super::{ApiError, ApiState};
use actix_web::{web, HttpRequest, HttpResponse};
use bollard_stubs::models::ContainerCreateBody;
use serde::Deserialize;
use serde_json::Value;
use shoal_actors::engine::{error_message, EngineError};
use shoal_actors::metrics::queued;
use shoal_actors::node::{CreateContainer, CreateNetwork, CreateVolume, NodeActor, PullImage};
use shoal_actors::scheduler::{
    CancelPlacement, ConfirmPlacement, Expr, ExprKind, Place, PlacementRequest,
};

#[derive(Debug, Deserialize)]
pub struct CreateQuery {
    #[serde(default)]
    name: Option<String>,
}

/// Docker's rule for container names.
fn valid_name(name: &str) -> bool {
    let name = name.strip_prefix('/').unwrap_or(name);
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The body for the engine: the client's JSON with Shoal's rewrite of `Env` and `Labels`.
fn engine_body(
    raw: &Value,
    typed: &ContainerCreateBody,
    req: &PlacementRequest,
    swarm_id: &str,
) -> bytes::Bytes {
    let mut rewritten = typed.clone();
    req.rewrite_body(&mut rewritten, swarm_id);
    let mut out = raw.clone();
    if let Value::Object(map) = &mut out {
        map.insert(
            "Env".into(),
            serde_json::to_value(&rewritten.env).unwrap_or(Value::Null),
        );
        map.insert(
            "Labels".into(),
            serde_json::to_value(&rewritten.labels).unwrap_or(Value::Null),
        );
    }
    bytes::Bytes::from(out.to_string())
}

/// Creates on `node` the networks and volumes the container needs that exist on no node.
async fn ensure_objects(
    state: &ApiState,
    node: &actix::Addr<NodeActor>,
    req: &PlacementRequest,
) -> Result<(), ApiError> {
    if req.networks.is_empty() && req.volumes.is_empty() {
        return Ok(());
    }
    let read = state.read();
    for net in &req.networks {
        let exists = read.nodes.iter().any(|n| {
            n.snapshot
                .networks
                .iter()
                .any(|x| x.name == *net || x.id == *net)
        });
        if !exists {
            node.send(CreateNetwork { name: net.clone() }).await??;
        }
    }
    for vol in &req.volumes {
        let exists = read
            .nodes
            .iter()
            .any(|n| n.snapshot.volumes.iter().any(|x| x.name == *vol));
        if !exists {
            node.send(CreateVolume { name: vol.clone() }).await??;
        }
    }
    Ok(())
}

fn no_such_image(status: u16, body: &[u8]) -> bool {
    status == 404 && error_message(body).starts_with("No such image")
}

/// Creates on the placed node, pulling the image there once when the engine lacks it.
async fn create_on(
    node: &actix::Addr<NodeActor>,
    name: Option<String>,
    body: bytes::Bytes,
    image: Option<&str>,
    registry_auth: Option<String>,
) -> Result<(u16, bytes::Bytes), ApiError> {
    let first = node
        .send(CreateContainer {
            name: name.clone(),
            body: body.clone(),
        })
        .await??;
    match (image, no_such_image(first.0, &first.1)) {
        (Some(image), true) => {
            node.send(PullImage {
                image: image.to_string(),
                registry_auth,
            })
            .await??;
            Ok(node.send(CreateContainer { name, body }).await??)
        }
        _ => Ok(first),
    }
}

pub async fn create(
    state: web::Data<ApiState>,
    q: web::Query<CreateQuery>,
    http: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let raw: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    if !raw.is_object() {
        return Err(ApiError::BadRequest(
            "invalid JSON: the body must be an object".into(),
        ));
    }
    let typed: ContainerCreateBody = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::BadRequest(format!("invalid create body: {e}")))?;
    if let Some(name) = q.name.as_deref().filter(|n| !n.is_empty()) {
        if !valid_name(name) {
            return Err(ApiError::BadRequest(format!(
                "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
    }
    if typed.image.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::BadRequest(
            "config cannot be empty in order to create a container".into(),
        ));
    }
    let mut request = PlacementRequest::from_create(&typed, q.name.as_deref())?;
    let registry_auth = http
        .headers()
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let name = q.name.clone().filter(|n| !n.is_empty());
    let mut tries_left = state.create_retry;
    loop {
        queued("scheduler", "scheduler");
        let placement = state.scheduler.send(Place(request.clone())).await??;
        let node = state.cluster().node(placement.node.as_str());
        let outcome = match node.map(|n| n.handle.actor.clone()) {
            None => Err(ApiError::NoNode(format!(
                "node {} left the cluster",
                placement.node
            ))),
            Some(node) => {
                // No refresh of the node after a create: the NodeActor lists the new
                // container alone and records it before answering. A full refresh here
                // cost six engine calls per create.
                async {
                    ensure_objects(&state, &node, &request).await?;
                    let body = engine_body(&raw, &typed, &request, placement.reservation.as_str());
                    create_on(
                        &node,
                        name.clone(),
                        body,
                        typed.image.as_deref(),
                        registry_auth.clone(),
                    )
                    .await
                }
                .await
            }
        };
        match outcome {
            Ok((201, answer)) => {
                let id = serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|v| v.get("Id").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                // Not waited for: the answer does not depend on it, and until it arrives
                // the reservation still counts, which can only be too careful.
                queued("scheduler", "scheduler");
                state.scheduler.do_send(ConfirmPlacement {
                    reservation: placement.reservation,
                    container_id: id,
                });
                return Ok(HttpResponse::Created()
                    .content_type("application/json")
                    .body(answer));
            }
            other => {
                queued("scheduler", "scheduler");
                state
                    .scheduler
                    .send(CancelPlacement {
                        reservation: placement.reservation,
                    })
                    .await?;
                let failure = match other {
                    Ok((status, answer)) => ApiError::from(EngineError::Status {
                        addr: placement.node.to_string(),
                        path: "/containers/create".into(),
                        status,
                        message: error_message(&answer),
                    }),
                    Err(e) => e,
                };
                // Only a node's own failure is worth another node: a 4xx is the request's.
                let node_failed = matches!(&failure, ApiError::EngineDown(_) | ApiError::NoNode(_))
                    || matches!(&failure, ApiError::EngineAnswer { status, .. } if *status >= 500);
                if tries_left == 0 || !node_failed {
                    return Err(failure);
                }
                tries_left -= 1;
                tracing::warn!(node = %placement.node, error = %failure, "create failed, trying another node");
                let avoid = Expr::parse(ExprKind::Constraint, &format!("node!={}", placement.node))
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
                request.constraints.push(avoid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn docker_name_rule() {
        for ok in ["web", "/web", "a1", "web_1.x-y"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "w", "_web", "-x", "we b", "a/b", "é1"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
