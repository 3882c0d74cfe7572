//! Container routes that belong to one container, forwarded to the node that owns it:
//! start, stop, kill, restart, pause, unpause, rename, update, wait, resize, logs, stats,
//! top, changes, export, archive (GET, HEAD, PUT) and `DELETE /containers/{id}`; plus
//! `POST /containers/prune`, which runs on every healthy node and sums the answers.
//!
//! `{id}` is resolved with the cluster view (full ID, name, `/node/name`, ID prefix) and
//! replaced by the full ID before the engine sees it, so the engine never has to guess and
//! a bare name that two nodes use is refused here with a hint instead of hitting either.
//! After a call that changes the container the owning NodeActor is told `RefreshNode`, so
//! lists show the change at once (its event stream would tell it a moment later).
//!
//! `POST /containers/{id}/attach` is not here: it is a hijacked connection (`hijack`).

use crate::api::forward::proxy::{self, param, Forward, HeadLimit};
use crate::api::{ApiError, ApiState};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use shoal_actors::engine::escape_param;
use std::time::Duration;

/// Actions of `POST /containers/{id}/<action>` forwarded as they are.
pub const POST_ACTIONS: &[&str] = &[
    "start", "stop", "kill", "restart", "pause", "unpause", "rename", "update", "wait", "resize",
];
/// Actions of `GET /containers/{id}/<action>`.
pub const GET_ACTIONS: &[&str] = &["logs", "stats", "top", "changes", "export", "archive"];

/// Actions after which the container is not what it was.
/// `wait` counts: it ends when the container exited or (`--rm`) was removed, and the
/// client's next call must see that.
fn changes_state(action: &str) -> bool {
    matches!(
        action,
        "start" | "stop" | "kill" | "restart" | "pause" | "unpause" | "rename" | "update" | "wait"
    )
}

/// Time `docker stop` waits when the client does not say, before the engine kills; the
/// container may have its own longer `StopTimeout`, so this is generous.
const UNSAID_STOP_WAIT: Duration = Duration::from_secs(60);
/// Removal of a container with a large filesystem takes a while.
const REMOVE_WAIT: Duration = Duration::from_secs(120);
/// Prune removes many containers on every node.
const PRUNE_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize)]
struct StopQuery {
    #[serde(default)]
    t: Option<String>,
}

/// The head deadline of `action`: the call timeout, plus what the engine may wait on
/// purpose (`stop` and `restart` wait `t` seconds for the container; `t=-1` forever).
fn head_limit(action: &str, query: &str, call: Duration) -> HeadLimit {
    match action {
        "stop" | "restart" => {
            let t = web::Query::<StopQuery>::from_query(query)
                .ok()
                .and_then(|q| q.t.clone())
                .and_then(|t| t.parse::<i64>().ok());
            match t {
                Some(t) if t < 0 => None,
                Some(t) => Some(call + Duration::from_secs(t as u64)),
                None => Some(call + UNSAID_STOP_WAIT),
            }
        }
        _ => Some(call),
    }
}

/// The last path segment: the action of `/containers/{id}/<action>`.
fn action_of(req: &HttpRequest) -> &str {
    req.path().rsplit('/').next().unwrap_or("")
}

/// `POST|GET|HEAD|PUT /containers/{id}/<action>`.
pub async fn action(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let action = action_of(&req).to_string();
    let owner = proxy::resolve(&state, param(&req, "id"))?;
    let target = proxy::engine_path(
        &req,
        &format!("/containers/{}/{action}", escape_param(&owner.id)),
    );
    let limit = head_limit(&action, req.query_string(), state.timeouts.call);
    let refresh = changes_state(&action).then(|| (owner.actor.clone(), owner.id.clone()));
    proxy::forward_with(
        Forward {
            node: &owner.addr,
            req: &req,
            path: &target,
            body,
            refresh,
        },
        limit,
    )
    .await
}

/// `DELETE /containers/{id}`.
pub async fn remove(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let owner = proxy::resolve(&state, param(&req, "id"))?;
    let target = proxy::engine_path(&req, &format!("/containers/{}", escape_param(&owner.id)));
    proxy::forward_with(
        Forward {
            node: &owner.addr,
            req: &req,
            path: &target,
            body,
            refresh: Some((owner.actor.clone(), owner.id.clone())),
        },
        Some(state.timeouts.call + REMOVE_WAIT),
    )
    .await
}

/// One engine's prune answer.
#[derive(Debug, Default, Deserialize, serde::Serialize, PartialEq)]
pub struct Pruned {
    #[serde(rename = "ContainersDeleted", default)]
    pub containers_deleted: Option<Vec<String>>,
    #[serde(rename = "SpaceReclaimed", default)]
    pub space_reclaimed: u64,
}

/// Sums the prune answers of several engines, as one engine would have answered.
pub fn sum_pruned(answers: impl IntoIterator<Item = Pruned>) -> Pruned {
    let mut total = Pruned::default();
    for a in answers {
        if let Some(ids) = a.containers_deleted {
            total
                .containers_deleted
                .get_or_insert_with(Vec::new)
                .extend(ids);
        }
        total.space_reclaimed += a.space_reclaimed;
    }
    total
}

/// `POST /containers/prune`: on every healthy node at once, answers summed. A node that
/// fails is logged and left out; only when every node fails is the answer an error.
pub async fn prune(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let nodes: Vec<_> = read
        .nodes
        .iter()
        .filter(|n| n.snapshot.health == shoal_actors::node::Health::Healthy)
        .map(|n| {
            (
                n.handle.addr.clone(),
                n.handle.actor.clone(),
                n.name.clone(),
            )
        })
        .collect();
    if nodes.is_empty() {
        return Err(ApiError::NoNode("nothing to prune on".to_string()));
    }
    let target = proxy::engine_path(&req, "/containers/prune");
    let limit = state.timeouts.call + PRUNE_WAIT;
    let calls = nodes.iter().map(|(addr, _, _)| {
        let target = target.clone();
        async move { proxy::post_whole(addr, &target, limit).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    let mut summed = Vec::new();
    let mut first_error = None;
    for ((addr, actor, name), answer) in nodes.iter().zip(answers) {
        proxy::refresh(actor);
        match answer.and_then(|b| {
            serde_json::from_slice::<Pruned>(&b)
                .map_err(|e| ApiError::Internal(format!("prune answer of {addr}: {e}")))
        }) {
            Ok(p) => summed.push(p),
            Err(e) => {
                tracing::warn!(node = %name, error = %e, "prune failed on a node");
                first_error.get_or_insert(e);
            }
        }
    }
    match (summed.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(HttpResponse::Ok().json(sum_pruned(summed))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_waits_as_long_as_asked() {
        let call = Duration::from_secs(10);
        assert_eq!(
            head_limit("stop", "t=3", call),
            Some(Duration::from_secs(13))
        );
        assert_eq!(head_limit("restart", "t=-1", call), None);
        assert_eq!(head_limit("stop", "", call), Some(call + UNSAID_STOP_WAIT));
        assert_eq!(head_limit("start", "t=99", call), Some(call));
    }

    #[test]
    fn prune_answers_add_up() {
        let total = sum_pruned([
            Pruned {
                containers_deleted: Some(vec!["a".into()]),
                space_reclaimed: 5,
            },
            Pruned {
                containers_deleted: None,
                space_reclaimed: 0,
            },
            Pruned {
                containers_deleted: Some(vec!["b".into(), "c".into()]),
                space_reclaimed: 7,
            },
        ]);
        assert_eq!(
            total.containers_deleted,
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(total.space_reclaimed, 12);
        let json = serde_json::to_value(sum_pruned([])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ContainersDeleted": null, "SpaceReclaimed": 0})
        );
    }
}
