//! Image routes that move image bytes or progress between the client and the engines:
//! pull, import, push, save, load.
//!
//! - pull (`POST /images/create`): every healthy node at once, progress merged with each
//!   line marked by its node; a node that fails adds an error line, so the CLI reports it;
//! - push, save: one node that has the image(s), its stream passed on as it is;
//! - load, and import (`POST /images/create?fromSrc=-`): the tarball is copied to every
//!   healthy node as it arrives (the slowest engine sets the pace, nothing is buffered
//!   whole), so a loaded image runs anywhere, as a pulled one does; an import from a URL
//!   (`fromSrc=<url>`) is asked of every node, each fetching the URL itself.

use super::{has_image, image_nodes, ImagePath};
use crate::api::error::ApiError;
use crate::api::forward::fanout::{healthy, no_node, worst};
use crate::api::forward::progress::{
    self, body_stream, error_line, merged_progress, node_lines, registry_auth, stream_engine,
    LineSource, NodeLine,
};
use crate::api::state::ApiState;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use serde::Deserialize;
use shoal_actors::cluster::NodeRead;
use shoal_actors::engine::{
    escape_param, EngineAddr, EngineError, EngineStream, HttpEngine, StreamBody, StreamRequest,
};
use shoal_actors::node::{NodeActor, RefreshNode};

/// Copies of a loaded tarball in flight per node.
const LOAD_BUFFER: usize = 8;

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullQuery {
    #[serde(default)]
    from_image: Option<String>,
    #[serde(default)]
    from_src: Option<String>,
}

/// `POST /images/create`: pull (`fromImage`) or import (`fromSrc`) on every healthy node,
/// progress merged.
pub async fn pull(
    state: web::Data<ApiState>,
    req: HttpRequest,
    q: web::Query<PullQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    match q.from_src.as_deref() {
        // The tarball is the body: every node gets a copy, as `load` does.
        Some("-") => return copy_to_all(&state, &req, payload).await,
        // Every node fetches the URL itself, as it pulls an image itself.
        Some(_) => return open_on_all(&state, &req).await,
        None => {}
    }
    let image = q.from_image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(ApiError::BadRequest("fromImage is required".into()));
    }
    open_on_all(&state, &req).await
}

/// Opens the request's path and query, without a body, on every healthy node, with the
/// client's registry credentials; their progress merged.
async fn open_on_all(state: &ApiState, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let nodes: Vec<&NodeRead> = healthy(&read).map(|(_, n)| n).collect();
    if nodes.is_empty() {
        return Err(no_node());
    }
    let path = with_query(unversioned(req), req.query_string());
    let auth = registry_auth(req);
    let opens = nodes.iter().map(|n| {
        let engine = stream_engine(state, n);
        let r =
            StreamRequest::new(Method::POST, path.clone()).header("X-Registry-Auth", auth.clone());
        let (src, addr, path) = (LineSource::of(n), n.handle.addr.clone(), path.clone());
        async move { (src, open_progress(&engine, r, &addr, &path).await) }
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

/// One answer from the progress streams of several nodes (merged as `progress` says), a
/// node that could not start adding one error line (so the CLI exits 1), and an error
/// answer only when no node started.
fn merged_answer(
    opened: Vec<(LineSource, Result<EngineStream, EngineError>)>,
    nodes: &[&NodeRead],
) -> Result<HttpResponse, ApiError> {
    let (mut parts, mut failed): (Vec<LocalBoxStream<'static, NodeLine>>, Vec<_>) =
        (Vec::new(), Vec::new());
    for (src, result) in opened {
        match result {
            Ok(body) => parts.push(node_lines(src, body)),
            Err(e) => failed.push((src, e)),
        }
    }
    if parts.is_empty() {
        let errors: Vec<ApiError> = failed.into_iter().map(|(_, e)| ApiError::from(e)).collect();
        return Err(worst(errors, no_node));
    }
    for (src, e) in failed {
        let message = match &e {
            EngineError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        };
        parts.push(Box::pin(stream::once(
            async move { error_line(&src, &message) },
        )));
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

/// `GET /distribution/{name}/json`: the registry's manifest facts, asked by one healthy
/// node (they all ask the same registry), with the client's credentials.
pub async fn distribution(
    state: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<ImagePath>,
) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner().reference()?;
    let read = state.read();
    let (_, node) = healthy(&read).next().ok_or_else(no_node)?;
    let engine_path = format!("/distribution/{}/json", escape_param(&name));
    let r = StreamRequest::new(Method::GET, engine_path.clone())
        .header("X-Registry-Auth", registry_auth(&req));
    let resp = stream_engine(&state, node).open(r).await?;
    if !(200..300).contains(&resp.status) {
        return Err(resp
            .into_error(&node.handle.addr, &engine_path)
            .await
            .into());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body_stream(resp.body)))
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

/// The request's path without its `/v1.xx` prefix, as the other engine calls are made.
fn unversioned(req: &HttpRequest) -> String {
    shoal_actors::engine::split_api_version(req.path())
        .1
        .to_string()
}

fn with_query(path: String, query: &str) -> String {
    if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    }
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
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    copy_to_all(&state, &req, payload).await
}

/// Sends the request (its path, query and `Content-Type`) to every healthy node, its body
/// copied to each as it arrives; their progress merged.
async fn copy_to_all(
    state: &ApiState,
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let read = state.read();
    let nodes: Vec<&NodeRead> = healthy(&read).map(|(_, n)| n).collect();
    if nodes.is_empty() {
        return Err(no_node());
    }
    let path = with_query(unversioned(req), req.query_string());
    let content_type = progress::header(req, "Content-Type");
    let mut senders = Vec::new();
    let mut opens = Vec::new();
    for n in &nodes {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(LOAD_BUFFER);
        senders.push(tx);
        let body = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let r = StreamRequest::new(Method::POST, path.clone())
            .header("Content-Type", content_type.clone())
            .body(StreamBody::Stream(Box::pin(body)));
        let engine = stream_engine(state, n);
        let (src, addr, path) = (LineSource::of(n), n.handle.addr.clone(), path.clone());
        opens.push(async move { (src, open_progress(&engine, r, &addr, &path).await) });
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
