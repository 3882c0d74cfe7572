//! Container routes that belong to one container, forwarded to the node that owns it:
//! start, stop, kill, restart, pause, unpause, rename, update, wait, resize, logs, stats,
//! top, changes, export, archive (GET, HEAD, PUT) and `DELETE /containers/{id}`.
//!
//! `{id}` is resolved with the cluster view (full ID, name, `/node/name`, ID prefix) and
//! replaced by the full ID before the engine sees it, so the engine never has to guess and
//! a bare name that two nodes use is refused here with a hint instead of hitting either.
//! After a call that changes the container the owning NodeActor is told `RefreshNode`, so
//! lists show the change at once (its event stream would tell it a moment later).
//!
//! `POST /containers/{id}/attach` is not here: it is a hijacked connection (`hijack`).

use crate::api::error::ApiError;
use crate::api::forward::proxy::{self, param, Forward, HeadLimit};
use crate::api::state::ApiState;
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

#[derive(Debug, Deserialize)]
struct StopQuery {
    #[serde(default)]
    t: Option<String>,
}

/// The head deadline of `action`: the work timeout (`work`), plus what the engine may wait
/// on purpose (`stop` and `restart` wait `t` seconds for the container; `t=-1` forever).
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
    crate::api::routed_path(req)
        .rsplit('/')
        .next()
        .unwrap_or("")
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
    let limit = head_limit(&action, req.query_string(), state.timeouts.long);
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

/// `DELETE /containers/{id}`, and `DELETE /containers/{parent}/{alias}?link=1`, which
/// removes the link `alias` of container `parent` (`docker rm --link /web/db`). Without
/// `link` a name with a `/` is a node-qualified name (`node-1/web`); with it the last part
/// is the alias, and the engine is asked by the parent's own name there, since it resolves
/// a link by its name (`/web/db`), not by an ID.
pub async fn remove(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let reference = param(&req, "id");
    let (owner, engine_ref) = match link_of(req.query_string(), reference) {
        Some((parent, alias)) => {
            let found = state.cluster().find_container(parent)?;
            let name = found
                .node
                .snapshot
                .containers
                .by_id(&found.id)
                .map(|c| c.name().to_string())
                .unwrap_or_else(|| found.id.clone());
            let owner = proxy::Owner {
                addr: found.node.handle.addr.clone(),
                actor: found.node.handle.actor.clone(),
                id: found.id,
            };
            (
                owner,
                format!("{}/{}", escape_param(&name), escape_param(alias)),
            )
        }
        None => {
            let owner = proxy::resolve(&state, reference)?;
            let id = escape_param(&owner.id);
            (owner, id)
        }
    };
    let target = proxy::engine_path(&req, &format!("/containers/{engine_ref}"));
    let answer = proxy::forward_with(
        Forward {
            node: &owner.addr,
            req: &req,
            path: &target,
            body,
            refresh: Some((owner.actor.clone(), owner.id.clone())),
        },
        Some(state.timeouts.long),
    )
    .await?;
    if engine_ref.contains('/') {
        // A removed link changes the child's names too: the node lists itself again.
        proxy::refresh(&owner.actor);
    }
    Ok(answer)
}

/// The parent and alias of a link removal: `link` is true (Docker's rule for a boolean
/// query value) and the reference is `parent/alias` (a leading `/` allowed).
pub(crate) fn link_of<'a>(query: &str, reference: &'a str) -> Option<(&'a str, &'a str)> {
    let link = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "link")
        .map(|(_, v)| v.to_ascii_lowercase())?;
    if matches!(link.as_str(), "" | "0" | "no" | "false" | "none") {
        return None;
    }
    let (parent, alias) = reference.trim_start_matches('/').rsplit_once('/')?;
    (!parent.is_empty() && !alias.is_empty()).then_some((parent, alias))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_removal_names_its_parent_and_alias() {
        assert_eq!(link_of("link=1", "/web/db"), Some(("web", "db")));
        assert_eq!(link_of("link=True&v=0", "web/db"), Some(("web", "db")));
        assert_eq!(
            link_of("link=1", "/node-1/web/db"),
            Some(("node-1/web", "db"))
        );
        assert_eq!(link_of("", "node-1/web"), None);
        assert_eq!(link_of("link=0", "web/db"), None);
        assert_eq!(link_of("link=1", "web"), None);
        assert_eq!(link_of("link=1", "web/"), None);
    }

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
}
