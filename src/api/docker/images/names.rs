//! Image routes that add or remove an image's names: tag, remove, commit, and what they
//! share with the other image routes (which nodes show a name).
//!
//! Tag and remove go to every healthy node whose list shows the image (all healthy nodes
//! when none does: the engine resolves digests and short IDs itself), and their answers
//! are merged; commit goes to the container's node. Each waits until the nodes publish
//! the change, so the client's next `docker images` or `run` sees it.

use super::{has_image, image_nodes, no_such_image, ImagePath};
use crate::api::error::ApiError;
use crate::api::forward::fanout::{self, ask_all, call, pass, worst, Gathered};
use crate::api::state::ApiState;
use actix_web::{web, HttpRequest, HttpResponse};
use shoal_actors::cluster::{ClusterRead, NodeRead};
use shoal_actors::engine::query_escape;
use shoal_actors::node::ObjectOp;

/// The `repo:tag` a tag or commit request names (`tag` defaults to `latest`), as engines
/// list it; `None` without a `repo`.
pub(super) fn named_in(q: &[(String, String)]) -> Option<String> {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let repo = get("repo").filter(|r| !r.is_empty())?;
    let tag = get("tag").filter(|t| !t.is_empty()).unwrap_or("latest");
    // Newer clients send the canonical name; engines list the familiar one.
    let repo = repo
        .strip_prefix("docker.io/library/")
        .or_else(|| repo.strip_prefix("docker.io/"))
        .unwrap_or(repo);
    Some(format!("{repo}:{tag}"))
}

/// Asks every healthy node that shows `name` (every healthy node when none does: the
/// engine resolves digests and short IDs itself) to run `op`; answers whom it asked.
async fn ask_image_nodes<'a>(
    read: &'a ClusterRead,
    name: &str,
    what: &str,
    op: impl Fn() -> ObjectOp,
) -> (Vec<&'a NodeRead>, Gathered<'a>) {
    let nodes = image_nodes(read, name);
    let gathered = ask_all(&nodes, what, |n| call(n, op())).await;
    (nodes, gathered)
}

/// `POST /images/{name}/tag`: on every node that has the image.
pub async fn tag(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let query = req.query_string();
    let (nodes, gathered) = ask_image_nodes(&read, &name, "tag", || ObjectOp::TagImage {
        name: name.clone(),
        query: query.to_string(),
    })
    .await;
    let tagged = gathered.or_worst(no_such_image(&name))?;
    let Some((_, status, body)) = tagged.into_iter().next() else {
        return Err(no_such_image(&name)());
    };
    let q = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let new_tag = named_in(&q).unwrap_or_else(|| ":latest".to_string());
    for n in &nodes {
        let t = new_tag.clone();
        fanout::await_published(&n.handle, move |snap| has_image(snap, &t)).await;
    }
    pass(status, body)
}

/// `DELETE /images/{name}`: on every node that has it; the reports are merged.
pub async fn remove(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let query = req.query_string();
    let (nodes, gathered) =
        ask_image_nodes(&read, &name, "image remove", || ObjectOp::RemoveImage {
            name: name.clone(),
            query: query.to_string(),
        })
        .await;
    let mut merged: Vec<serde_json::Value> = Vec::new();
    for (_, _, body) in &gathered.answers {
        let items: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap_or_default();
        for item in items {
            if !merged.contains(&item) {
                merged.push(item);
            }
        }
    }
    let removed_any = !gathered.answers.is_empty();
    // An engine's refusal other than 404 says which node refused.
    let errors: Vec<ApiError> = gathered
        .failures
        .into_iter()
        .map(|(node, e)| match e {
            ApiError::EngineAnswer { status, message } if status != 404 => ApiError::EngineAnswer {
                status,
                message: format!("{}: {message}", node.name),
            },
            e => e,
        })
        .collect();
    // A node that refused (a container uses the image there) is worth reporting even when
    // others removed it: the image is not gone from the cluster.
    let refused = errors
        .iter()
        .any(|e| !matches!(e, ApiError::EngineAnswer { status: 404, .. }));
    if removed_any && !refused {
        for n in &nodes {
            let gone = name.clone();
            fanout::await_published(&n.handle, move |s| !has_image(s, &gone)).await;
        }
        return Ok(HttpResponse::Ok().json(merged));
    }
    Err(worst(errors, no_such_image(&name)))
}

/// `POST /commit?container=..`: on the container's node, with the reference made the
/// engine's full ID (the cluster's `/node/name` form means nothing to an engine).
pub async fn commit(
    state: web::Data<ApiState>,
    q: web::Query<Vec<(String, String)>>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let reference = q
        .iter()
        .find(|(k, _)| k == "container")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if !body.trim_ascii().is_empty() {
        serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?;
    }
    let read = state.read();
    let (i, entry) = read.resolve_container(&reference)?;
    let id = entry.id().to_string();
    let query = q
        .iter()
        .map(|(k, v)| {
            let v = if k == "container" { &id } else { v };
            format!("{}={}", query_escape(k), query_escape(v))
        })
        .collect::<Vec<_>>()
        .join("&");
    let node = &read.nodes[i];
    let (s, answer) = call(node, ObjectOp::Commit { query, body }).await?;
    if (200..300).contains(&s) {
        let new_id = serde_json::from_slice::<serde_json::Value>(&answer)
            .ok()
            .and_then(|v| v["Id"].as_str().map(str::to_string))
            .unwrap_or_default();
        // The engine tags the image after making it, and a list between the two shows
        // it untagged: wait for the name the client gave, which the next `run` asks for.
        let name = named_in(&q);
        if !new_id.is_empty() {
            fanout::await_published(&node.handle, move |s| {
                s.images.iter().any(|i| i.id == new_id)
                    && name.as_deref().is_none_or(|n| has_image(s, n))
            })
            .await;
        }
    }
    pass(s, answer)
}
