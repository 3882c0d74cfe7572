//! Image routes that change images or stream them: pull, push, tag, remove, history,
//! save, load, search, commit.
//!
//! Routing (the README's route table has it all):
//! - pull (`POST /images/create`): every healthy node at once, progress merged with each
//!   line marked by its node; a node that fails adds an error line, so the CLI reports it;
//! - tag, remove: every healthy node whose list shows the image (all healthy nodes when
//!   none does: the engine resolves digests and short IDs itself), answers merged;
//! - history, push, save: one node that has the image(s);
//! - load: the tarball is copied to every healthy node as it arrives (the slowest engine
//!   sets the pace, nothing is buffered whole), so a loaded image runs anywhere, as a
//!   pulled one does;
//! - search: one healthy node; commit: the node of the container.

use super::fanout::{
    self, body_stream, call, error_line, healthy, marked_lines, merged_progress, no_node, pass,
    registry_auth, stream_engine, worst,
};
use super::images::ImagePath;
use super::{ApiError, ApiState};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use serde::Deserialize;
use shoal_actors::cluster::{ClusterRead, NodeRead};
use shoal_actors::engine::{
    escape_param, query_escape, EngineAddr, EngineError, EngineStream, HttpEngine, StreamBody,
    StreamRequest,
};
use shoal_actors::node::{NodeActor, NodeSnapshot, ObjectOp, RefreshNode};

/// Copies of a loaded tarball in flight per node.
const LOAD_BUFFER: usize = 8;

/// Does the node's list show `name` (a tag, `repo` meaning `repo:latest`, an ID or ID
/// prefix, or a digest reference)?
pub fn has_image(snapshot: &NodeSnapshot, name: &str) -> bool {
    let bare = name.trim_start_matches("sha256:");
    let with_tag = if name.contains('@') || name.rsplit('/').next().is_some_and(|l| l.contains(':'))
    {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    snapshot.images.iter().any(|img| {
        img.repo_tags.iter().any(|t| *t == with_tag || *t == name)
            || img.repo_digests.iter().any(|d| d == name)
            || (bare.len() >= 4 && img.id.trim_start_matches("sha256:").starts_with(bare))
    })
}

/// Healthy nodes that show `name`; all healthy nodes when none does.
fn image_nodes<'a>(read: &'a ClusterRead, name: &str) -> Vec<&'a NodeRead> {
    let having: Vec<&NodeRead> = healthy(read)
        .map(|(_, n)| n)
        .filter(|n| has_image(&n.snapshot, name))
        .collect();
    if having.is_empty() {
        healthy(read).map(|(_, n)| n).collect()
    } else {
        having
    }
}

fn no_such_image(name: &str) -> impl FnOnce() -> ApiError + '_ {
    move || ApiError::NotFound(format!("No such image: {name}"))
}

/// Sends `RefreshNode` to its nodes when dropped: after a streamed change ends, or when the
/// client hangs up mid-way.
struct RefreshOnDrop(Vec<actix::Addr<NodeActor>>);

impl Drop for RefreshOnDrop {
    fn drop(&mut self) {
        for a in &self.0 {
            let _ = a.try_send(RefreshNode);
        }
    }
}

fn refreshing<S: futures_util::Stream + 'static>(
    s: S,
    nodes: Vec<actix::Addr<NodeActor>>,
) -> impl futures_util::Stream<Item = S::Item> {
    let guard = RefreshOnDrop(nodes);
    s.map(move |x| {
        let _keep = &guard;
        x
    })
}

/// The `repo:tag` a tag request makes.
/// The `repo:tag` a tag or commit request names (`tag` defaults to `latest`), as engines
/// list it; `None` without a `repo`.
fn named_in(q: &[(String, String)]) -> Option<String> {
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullQuery {
    #[serde(default)]
    from_image: Option<String>,
    #[serde(default)]
    from_src: Option<String>,
}

/// `POST /images/create`: pull on every healthy node, progress merged.
pub async fn pull(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<PullQuery>,
) -> Result<HttpResponse, ApiError> {
    if q.from_src.is_some() {
        return Err(ApiError::NotImplemented {
            method: "POST".into(),
            path: "/images/create?fromSrc (import)".into(),
        });
    }
    let image = q.from_image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(ApiError::BadRequest("fromImage is required".into()));
    }
    let read = state.read();
    let nodes: Vec<&NodeRead> = healthy(&read).map(|(_, n)| n).collect();
    if nodes.is_empty() {
        return Err(no_node());
    }
    let path = format!("/images/create?{}", req.query_string());
    let auth = registry_auth(&req);
    let opens = nodes.iter().map(|n| {
        let engine = stream_engine(&state, n);
        let r =
            StreamRequest::new(Method::POST, path.clone()).header("X-Registry-Auth", auth.clone());
        let (name, addr, path) = (n.name.clone(), n.handle.addr.clone(), path.clone());
        async move { (name, open_progress(&engine, r, &addr, &path).await) }
    });
    let opened = futures_util::future::join_all(opens).await;
    merged_answer(opened, &nodes)
}

/// Opens a progress stream (pull, load) on one engine: its body when it answered 200.
async fn open_progress(
    engine: &HttpEngine,
    r: StreamRequest,
    addr: &EngineAddr,
    path: &str,
) -> Result<EngineStream, EngineError> {
    match engine.open(r).await {
        Ok(resp) if resp.status == 200 => Ok(resp.body),
        Ok(resp) => Err(resp.into_error(addr, path).await),
        Err(e) => Err(e),
    }
}

/// One answer from the progress streams of several nodes: every line marked with its node,
/// a node that could not start adding one error line (so the CLI exits 1), and an error
/// answer only when no node started.
fn merged_answer(
    opened: Vec<(std::sync::Arc<str>, Result<EngineStream, EngineError>)>,
    nodes: &[&NodeRead],
) -> Result<HttpResponse, ApiError> {
    let (mut parts, mut failed): (Vec<LocalBoxStream<'static, Bytes>>, Vec<_>) =
        (Vec::new(), Vec::new());
    for (name, result) in opened {
        match result {
            Ok(body) => parts.push(marked_lines(name.to_string(), body)),
            Err(e) => failed.push((name, e)),
        }
    }
    if parts.is_empty() {
        let errors = failed.into_iter().map(|(_, e)| ApiError::from(e)).collect();
        return Err(worst(errors, no_node));
    }
    for (name, e) in failed {
        let message = match &e {
            EngineError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        };
        parts.push(Box::pin(stream::once(async move {
            error_line(&name, &message)
        })));
    }
    let actors = nodes.iter().map(|n| n.handle.actor.clone()).collect();
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(refreshing(merged_progress(parts), actors)))
}

/// `POST /images/{name}/push`: from one node that has the image.
pub async fn push(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let node = *image_nodes(&read, &name).first().ok_or_else(no_node)?;
    let engine_path = with_query(
        format!("/images/{}/push", escape_param(&name)),
        req.query_string(),
    );
    let r = StreamRequest::new(Method::POST, engine_path.clone())
        .header("X-Registry-Auth", registry_auth(&req));
    stream_from(&state, node, r, &engine_path).await
}

/// Opens `r` on `node` and streams its answer back as it is.
async fn stream_from(
    state: &ApiState,
    node: &NodeRead,
    r: StreamRequest,
    path: &str,
) -> Result<HttpResponse, ApiError> {
    let resp = stream_engine(state, node).open(r).await?;
    if !(200..300).contains(&resp.status) {
        return Err(resp.into_error(&node.handle.addr, path).await.into());
    }
    let code = actix_web::http::StatusCode::from_u16(resp.status)
        .unwrap_or(actix_web::http::StatusCode::OK);
    let mut out = HttpResponse::build(code);
    if let Some(ct) = &resp.content_type {
        out.content_type(ct.as_str());
    }
    let actors = vec![node.handle.actor.clone()];
    Ok(out.streaming(refreshing(body_stream(resp.body), actors)))
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
}

/// `POST /images/{name}/tag`: on every node that has the image.
pub async fn tag(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let nodes = image_nodes(&read, &name);
    let query = req.query_string().to_string();
    let answers = futures_util::future::join_all(nodes.iter().map(|n| {
        call(
            n,
            ObjectOp::TagImage {
                name: name.clone(),
                query: query.clone(),
            },
        )
    }))
    .await;
    let mut errors = Vec::new();
    let mut ok = None;
    for a in answers {
        match a {
            Ok((s, body)) if (200..300).contains(&s) => ok = Some((s, body)),
            Ok((s, body)) => errors.push(fanout::engine_error(s, &body)),
            Err(e) => errors.push(e),
        }
    }
    let Some((s, body)) = ok else {
        return Err(worst(errors, no_such_image(&name)));
    };
    let q = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let new_tag = named_in(&q).unwrap_or_else(|| ":latest".to_string());
    for n in &nodes {
        let t = new_tag.clone();
        fanout::await_published(&n.handle, move |snap| has_image(snap, &t)).await;
    }
    pass(s, body)
}

/// `DELETE /images/{name}`: on every node that has it; the reports are merged.
pub async fn remove(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let nodes = image_nodes(&read, &name);
    let query = req.query_string().to_string();
    let answers = futures_util::future::join_all(nodes.iter().map(|n| {
        let op = ObjectOp::RemoveImage {
            name: name.clone(),
            query: query.clone(),
        };
        async move { (*n, call(n, op).await) }
    }))
    .await;
    let mut merged: Vec<serde_json::Value> = Vec::new();
    let mut errors = Vec::new();
    let mut removed_any = false;
    for (node, a) in answers {
        match a {
            Ok((s, body)) if (200..300).contains(&s) => {
                removed_any = true;
                let items: Vec<serde_json::Value> =
                    serde_json::from_slice(&body).unwrap_or_default();
                for item in items {
                    if !merged.contains(&item) {
                        merged.push(item);
                    }
                }
            }
            Ok((404, body)) => errors.push(fanout::engine_error(404, &body)),
            Ok((s, body)) => errors.push(ApiError::EngineAnswer {
                status: s,
                message: format!(
                    "{}: {}",
                    node.name,
                    shoal_actors::engine::error_message(&body)
                ),
            }),
            Err(e) => errors.push(e),
        }
    }
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

/// `GET /images/{name}/history`: from one node that has it.
pub async fn history(
    state: web::Data<ApiState>,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let mut errors = Vec::new();
    for n in image_nodes(&read, &name).into_iter().take(3) {
        match call(n, ObjectOp::ImageHistory { name: name.clone() }).await {
            Ok((200, body)) => return pass(200, body),
            Ok((s, body)) => errors.push(fanout::engine_error(s, &body)),
            Err(e) => errors.push(e),
        }
    }
    Err(worst(errors, no_such_image(&name)))
}

/// `GET /images/get?names=..`: a tarball from one node that has all the images (or the
/// most of them; the engine reports what it lacks).
pub async fn save_many(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let names: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v.clone())
        .collect();
    save(
        &state,
        &names,
        with_query("/images/get".into(), req.query_string()),
    )
    .await
}

/// `GET /images/{name}/get`.
pub async fn save_one(
    state: web::Data<ApiState>,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let engine_path = format!("/images/{}/get", escape_param(&name));
    save(&state, std::slice::from_ref(&name), engine_path).await
}

async fn save(state: &ApiState, names: &[String], path: String) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let node = healthy(&read)
        .map(|(_, n)| n)
        .max_by_key(|n| {
            let count = names.iter().filter(|x| has_image(&n.snapshot, x)).count();
            // Ties go to the first node in the order users see.
            (count, std::cmp::Reverse(n.name.clone()))
        })
        .ok_or_else(no_node)?;
    if let Some(missing) = names.iter().find(|x| !has_image(&node.snapshot, x)) {
        if !names.iter().any(|x| has_image(&node.snapshot, x)) {
            return Err(ApiError::NotFound(format!("No such image: {missing}")));
        }
    }
    let r = StreamRequest::new(Method::GET, path.clone());
    stream_from(state, node, r, &path).await
}

/// `POST /images/load`: the tarball goes to every healthy node as it arrives.
pub async fn load(
    state: web::Data<ApiState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let nodes: Vec<&NodeRead> = healthy(&read).map(|(_, n)| n).collect();
    if nodes.is_empty() {
        return Err(no_node());
    }
    let path = with_query("/images/load".into(), req.query_string());
    let content_type = fanout::header(&req, "Content-Type");
    let mut senders = Vec::new();
    let mut opens = Vec::new();
    for n in &nodes {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(LOAD_BUFFER);
        senders.push(tx);
        let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let r = StreamRequest::new(Method::POST, path.clone())
            .header("Content-Type", content_type.clone())
            .body(StreamBody::Stream(Box::pin(body)));
        let engine = stream_engine(&state, n);
        let (name, addr, path) = (n.name.clone(), n.handle.addr.clone(), path.clone());
        opens.push(async move { (name, open_progress(&engine, r, &addr, &path).await) });
    }
    // Copies each chunk to every engine still reading; one that stopped is left out.
    actix_rt::spawn(async move {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            let mut open = Vec::with_capacity(senders.len());
            for tx in senders {
                let c = match &chunk {
                    Ok(b) => Ok(b.clone()),
                    Err(e) => Err(std::io::Error::other(e.to_string())),
                };
                if tx.send(c).await.is_ok() {
                    open.push(tx);
                }
            }
            senders = open;
            if failed || senders.is_empty() {
                break;
            }
        }
    });
    let opened = futures_util::future::join_all(opens).await;
    merged_answer(opened, &nodes)
}

/// `GET /images/search`: one healthy node asks the registry.
pub async fn search(
    state: web::Data<ApiState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let (_, node) = healthy(&read).next().ok_or_else(no_node)?;
    let (s, body) = call(
        node,
        ObjectOp::SearchImages {
            query: req.query_string().to_string(),
        },
    )
    .await?;
    pass(s, body)
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

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::ImageSummary;
    use shoal_actors::engine::EngineAddr;
    use std::sync::Arc;

    #[test]
    fn image_references_match_like_an_engine() {
        let mut snap = NodeSnapshot::pending(EngineAddr::Tcp {
            host: "h".into(),
            port: 1,
        });
        snap.images = Arc::new(vec![ImageSummary {
            id: "sha256:abcdef123".into(),
            repo_tags: vec!["busybox:latest".into(), "localhost:5000/bb:v1".into()],
            repo_digests: vec!["bb@sha256:99".into()],
            ..Default::default()
        }]);
        for yes in [
            "busybox",
            "busybox:latest",
            "localhost:5000/bb:v1",
            "abcd",
            "sha256:abcdef",
            "bb@sha256:99",
        ] {
            assert!(has_image(&snap, yes), "{yes}");
        }
        for no in ["busy", "localhost:5000/bb", "abc", "ubuntu"] {
            assert!(!has_image(&snap, no), "{no}");
        }
    }
}
