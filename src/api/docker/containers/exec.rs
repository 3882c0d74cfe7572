//! Exec routes. An exec ID means nothing outside the engine that made it, so
//! `POST /containers/{id}/exec` records `exec ID → node` in the `ExecRegistry`
//! (`RecordExec`) and `/exec/{id}/...` asks it (`LocateExec`). The registry is a cache, not
//! a truth Shoal could lose: an exec it does not know (Shoal restarted, or the entry aged
//! out) is looked for on every healthy node with `GET /exec/{id}/json`, and the answer
//! recorded.
//!
//! Routes: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (detached or not upgraded;
//! the upgraded one is a hijack, see `hijack`), `POST /exec/{id}/resize`,
//! `GET /exec/{id}/json`.

use crate::api::error::ApiError;
use crate::api::exec_registry::{LocateExec, RecordExec};
use crate::api::forward::proxy::{self, Forward};
use crate::api::state::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use shoal_actors::engine::{escape_param, EngineAddr};

/// The node holding exec `id`: from the registry, else by asking every healthy node.
pub async fn locate(state: &ApiState, id: &str) -> Result<EngineAddr, ApiError> {
    if let Some(node) = state.execs.send(LocateExec { id: id.to_string() }).await? {
        return Ok(node);
    }
    let read = state.read();
    let candidates: Vec<EngineAddr> = read
        .nodes
        .iter()
        .filter(|n| n.snapshot.health == shoal_actors::node::Health::Healthy)
        .map(|n| n.handle.addr.clone())
        .collect();
    let path = format!("/exec/{}/json", escape_param(id));
    let timeouts = state.timeouts;
    let asks = candidates.iter().map(|addr| {
        let path = path.clone();
        async move {
            proxy::probe(addr, &path, timeouts)
                .await
                .map(|ok| (ok, addr))
        }
    });
    for answer in futures_util::future::join_all(asks).await {
        if let Ok((true, addr)) = answer {
            state
                .execs
                .send(RecordExec {
                    id: id.to_string(),
                    node: addr.clone(),
                })
                .await?;
            return Ok(addr.clone());
        }
    }
    Err(ApiError::NotFound(format!("No such exec instance: {id}")))
}

/// `POST /containers/{id}/exec`: creates on the container's node, then records the exec.
pub async fn create(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (node, full_id) = proxy::owner(&state, proxy::param(&req, "id"))?;
    let target = proxy::engine_path(
        &req,
        &format!("/containers/{}/exec", escape_param(&full_id)),
    );
    let (status, headers, bytes) = proxy::exchange(&node, &req, &target, body).await?;
    if status.is_success() {
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(rename = "Id")]
            id: String,
        }
        if let Ok(created) = serde_json::from_slice::<Created>(&bytes) {
            state
                .execs
                .send(RecordExec {
                    id: created.id,
                    node: node.clone(),
                })
                .await?;
        }
    }
    Ok(proxy::whole_answer(status, &headers, bytes))
}

/// `POST /exec/{id}/start` without an upgrade, `POST /exec/{id}/resize`,
/// `GET /exec/{id}/json`: forwarded to the exec's node as they are.
pub async fn forward(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = (proxy::param(&req, "id"), proxy::param(&req, "action"));
    let node = locate(&state, id).await?;
    let target = proxy::engine_path(&req, &format!("/exec/{}/{action}", escape_param(id)));
    proxy::forward(Forward {
        node: &node,
        req: &req,
        path: &target,
        body,
        refresh: None,
    })
    .await
}
