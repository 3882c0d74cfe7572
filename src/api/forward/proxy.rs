//! The streaming proxy: forwards one HTTP request to the engine that owns its object and
//! streams the engine's answer back.
//!
//! Method, query, body and the end-to-end headers (`Content-Type`, `X-Registry-Auth`, ...)
//! pass through; hop-by-hop headers do not. Bodies are streamed both ways chunk by chunk,
//! never gathered: a `docker cp` of gigabytes costs a few buffers. When the client goes away
//! actix-web drops the answer's body stream, which drops the engine connection with it (awc
//! closes a connection whose body was not read to the end instead of pooling it).
//!
//! Deadlines: connecting has the engine call timeout (`--engine-timeout`, in the awc
//! connector). The wait for the answer's head of a request without a body has the work
//! timeout (`--engine-work-timeout`): what a client asks an engine to do may rightly take
//! it long (a create looking for a log plugin, a remove of a large filesystem), and that
//! says nothing about the engine's health. Routes whose head may come later still (`stop`
//! waits for the container) give their own allowance. Once the head is there, the body has
//! no deadline: `logs -f` may run for days. A request with a body (`PUT .../archive`) is
//! not bounded past connecting, since its upload counts as sending.
//!
//! What ends a call to a frozen engine is its node's health instead: when the node turns
//! unhealthy every connection to the engine is cut (`engine::sever`). A call still waiting
//! for its head then answers 503 naming the node (as one refused for an unhealthy node
//! does); a body already streaming (`logs -f`) ends, the client's connection closed.
//!
//! awc clients are `!Send` and bound to their thread, so each actix-web worker keeps its
//! own client per engine in a thread-local cache (`local_engine`), made with the engine
//! deadlines of `ApiState`.
//!
//! Nothing here logs header values: `X-Registry-Auth` carries credentials.

use crate::api::error::ApiError;
use crate::api::state::ApiState;
use actix::Addr;
use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use awc::error::{PayloadError, SendRequestError};
use bytes::Bytes;
use futures_util::StreamExt;
use shoal_actors::engine::{
    error_message, local_engine, severed_payload, severed_send, split_api_version, EngineAddr,
    EngineError, Severed, Timeouts,
};
use shoal_actors::node::{NodeActor, RefreshNode, SyncContainer};
use std::time::Duration;

/// Largest answer read whole (exec create, prune): these are small JSON documents.
const WHOLE_LIMIT: usize = 16 * 1024 * 1024;

/// A request of this thread's client for `addr` (shared with the streamed calls:
/// `local_engine`; made with `timeouts` on first use) to `path` on the engine.
fn request(
    addr: &EngineAddr,
    timeouts: Timeouts,
    method: Method,
    path: &str,
) -> awc::ClientRequest {
    local_engine(addr, timeouts).request(method, path)
}

/// The node owning a container, and the container's full ID.
pub struct Owner {
    pub addr: EngineAddr,
    pub actor: Addr<NodeActor>,
    pub id: String,
}

/// Resolves a container reference (ID, prefix, name, `/node/name`) with the cluster view.
pub fn resolve(state: &ApiState, reference: &str) -> Result<Owner, ApiError> {
    let found = state.cluster().find_container(reference)?;
    let node = &found.node.handle;
    Ok(Owner {
        addr: node.addr.clone(),
        actor: node.actor.clone(),
        id: found.id,
    })
}

/// [`resolve`], answering only the address and the full ID.
pub fn owner(state: &ApiState, reference: &str) -> Result<(EngineAddr, String), ApiError> {
    resolve(state, reference).map(|o| (o.addr, o.id))
}

/// A path parameter of the matched route (`web::Path` would also see `api_version` under
/// the versioned scope).
pub fn param<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.match_info().get(name).unwrap_or("")
}

/// The engine path for `tail` (e.g. `/containers/<full id>/start`): the client's API version
/// prefix (the version it negotiated, which every healthy engine speaks) and its query.
pub fn rewrite(original_path: &str, query: &str, tail: &str) -> String {
    let mut out = String::with_capacity(original_path.len() + tail.len() + query.len() + 2);
    out.push_str(split_api_version(original_path).0);
    out.push_str(tail);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// [`rewrite`] for an actix-web request.
pub fn engine_path(req: &HttpRequest, tail: &str) -> String {
    rewrite(req.path(), req.query_string(), tail)
}

/// Headers that belong to one connection, not to the request or answer (RFC 9110 7.6.1),
/// plus the ones the client library sets itself.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "expect"
    )
}

/// One request to forward.
pub struct Forward<'a> {
    pub node: &'a EngineAddr,
    pub req: &'a HttpRequest,
    /// Engine path with version prefix and query.
    pub path: &'a str,
    pub body: web::Payload,
    /// The node and the container to list again once the engine answered (a call that
    /// changed the container).
    pub refresh: Option<(Addr<NodeActor>, String)>,
}

/// An engine's answer whose body is still to be read (never decompressed: it passes on
/// as it came).
type EngineAnswer = awc::ClientResponse<actix_http::encoding::Decoder<actix_http::Payload>>;

/// How long the head of an answer may take; `None`: no limit.
pub type HeadLimit = Option<Duration>;

fn engine_down(addr: &EngineAddr, reason: impl ToString) -> ApiError {
    ApiError::EngineDown(EngineError::Connect {
        addr: addr.to_string(),
        reason: reason.to_string(),
    })
}

/// A call cut because its node turned unhealthy while it was under way (`engine::sever`):
/// 503 naming the node, as a call refused for an unhealthy node is.
fn node_turned_sick(why: &Severed) -> ApiError {
    ApiError::Unavailable(why.to_string())
}

/// Why a request to `addr` got no answer.
fn send_failed(addr: &EngineAddr, e: SendRequestError) -> ApiError {
    match severed_send(&e) {
        Some(why) => node_turned_sick(why),
        None => engine_down(addr, e),
    }
}

/// Why an answer's body could not be read.
fn body_failed(addr: &EngineAddr, e: PayloadError) -> ApiError {
    match severed_payload(&e) {
        Some(why) => node_turned_sick(why),
        None => engine_down(addr, e),
    }
}

/// Sends the request and waits for the head of the answer.
async fn send(
    node: &EngineAddr,
    req: &HttpRequest,
    path: &str,
    body: web::Payload,
    head_limit: HeadLimit,
) -> Result<EngineAnswer, ApiError> {
    let mut out = request(node, timeouts(req), req.method().clone(), path).no_decompress();
    // Straight into the request's map: the names and values are valid already, so the
    // conversions and checks of `append_header` would only cost time.
    let headers = out.headers_mut();
    for (name, value) in req.headers() {
        if !hop_by_hop(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let length: Option<u64> = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let chunked = req
        .headers()
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let (sent, limit) = match (length, chunked) {
        (Some(n), _) if n > 0 => (out.send_body(SizedStream::new(n, body)), None),
        (_, true) => (out.send_stream(body), None),
        _ => (out.send(), head_limit),
    };
    let answered = match limit {
        Some(limit) => actix_rt::time::timeout(limit, sent).await.map_err(|_| {
            ApiError::EngineDown(EngineError::Timeout {
                addr: node.to_string(),
                path: path.split('?').next().unwrap_or(path).to_string(),
                secs: limit.as_secs_f64(),
            })
        })?,
        None => sent.await,
    };
    answered.map_err(|e| send_failed(node, e))
}

/// Forwards a request and streams the answer back.
pub async fn forward(f: Forward<'_>) -> Result<HttpResponse, ApiError> {
    let limit = Some(work_timeout(f.req));
    forward_with(f, limit).await
}

/// The engine deadlines, from the state the route table gives every handler.
fn timeouts(req: &HttpRequest) -> Timeouts {
    req.app_data::<web::Data<ApiState>>()
        .map(|s| s.timeouts)
        .unwrap_or_default()
}

/// The engine call timeout: how long a node may take to list a container again.
fn call_timeout(req: &HttpRequest) -> Duration {
    timeouts(req).call
}

/// The default head deadline of a forwarded request: the work timeout.
fn work_timeout(req: &HttpRequest) -> Duration {
    timeouts(req).long
}

/// [`forward`] with an explicit head deadline.
pub async fn forward_with(f: Forward<'_>, head_limit: HeadLimit) -> Result<HttpResponse, ApiError> {
    let answer = send(f.node, f.req, f.path, f.body, head_limit).await?;
    let Some((node, id)) = f.refresh else {
        return Ok(stream_answer(f.req.method(), answer));
    };
    // The call changed the container: the node lists its containers again before the
    // client sees the end of the answer, so the client's next `ps` or `inspect` shows the
    // change (a `run --rm` waits for the removal, then lists).
    let limit = call_timeout(f.req);
    let (status, headers) = (answer.status(), answer.headers().clone());
    let sync = Sync {
        node,
        addr: f.node.clone(),
        id,
        limit,
    };
    if bodiless(f.req.method(), status, &headers) {
        sync.run().await;
        return Ok(answer_head(status, &headers).finish());
    }
    let body = last_after_sync(answer, sync);
    Ok(stream_response(f.req.method(), status, &headers, body))
}

/// Passes `body` on, but holds its last chunk until the node has listed its containers
/// again: clients act on the last bytes (the CLI decodes `wait`'s `{"StatusCode":0}` and
/// moves on without waiting for the end of the stream), so those must come after the sync.
fn last_after_sync<S>(
    body: S,
    sync: Sync,
) -> impl futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>>
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + 'static,
{
    let start = (Box::pin(body), None::<Bytes>, Some(sync));
    futures_util::stream::unfold(start, |(mut body, mut held, mut pending)| async move {
        loop {
            match body.next().await {
                Some(Ok(chunk)) => match held.replace(chunk) {
                    Some(previous) => return Some((Ok(previous), (body, held, pending))),
                    None => continue,
                },
                Some(Err(e)) => return Some((Err(e), (body, held, pending))),
                None => {
                    if let Some(sync) = pending.take() {
                        sync.run().await;
                    }
                    return held.take().map(|last| (Ok(last), (body, None, None)));
                }
            }
        }
    })
}

/// A container to list again on its node after a call changed it.
struct Sync {
    node: Addr<NodeActor>,
    addr: EngineAddr,
    id: String,
    limit: Duration,
}

impl Sync {
    /// Has the node list the container again, and waits (up to `limit`) until it published
    /// it. A node that does not answer in time leaves it to its event stream.
    async fn run(self) {
        shoal_actors::metrics::queued("node", &self.addr);
        let asked = self.node.send(SyncContainer { id: self.id });
        if actix_rt::time::timeout(self.limit, asked).await.is_err() {
            tracing::debug!("container not synced in time, the engine's events will do");
        }
    }
}

/// Asks a node to refresh now; a full mailbox is fine, the node's event stream will tell it.
pub fn refresh(node: &Addr<NodeActor>) {
    if let Err(e) = node.try_send(RefreshNode) {
        tracing::debug!(error = %e, "refresh not queued, the engine's events will do");
    }
}

/// Copies status and end-to-end headers of an engine answer.
fn answer_head(status: StatusCode, headers: &HeaderMap) -> actix_web::HttpResponseBuilder {
    let mut out = HttpResponse::build(status);
    for (name, value) in headers {
        if !hop_by_hop(name) {
            out.append_header((name.clone(), value.clone()));
        }
    }
    out
}

/// The engine's answer as an actix-web response whose body is the engine's body stream.
/// The head is copied from the answer as it is, not from a copy of its header map.
fn stream_answer(method: &Method, answer: EngineAnswer) -> HttpResponse {
    let status = answer.status();
    let mut out = answer_head(status, answer.headers());
    if bodiless(method, status, answer.headers()) {
        return out.finish();
    }
    match content_length(answer.headers()) {
        Some(n) => out.body(SizedStream::new(n, answer)),
        None => out.streaming(answer),
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// An answer that has no body to pass on.
fn bodiless(method: &Method, status: StatusCode, headers: &HeaderMap) -> bool {
    *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || content_length(headers) == Some(0)
}

/// The client's answer: the engine's status and headers, and `body` streamed.
fn stream_response<S>(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body: S,
) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + 'static,
{
    let mut out = answer_head(status, headers);
    if bodiless(method, status, headers) {
        return out.finish();
    }
    match content_length(headers) {
        Some(n) => out.body(SizedStream::new(n, body)),
        None => out.streaming(body),
    }
}

/// Forwards a request and reads the whole (small) answer, for handlers that look into it.
pub async fn exchange(
    node: &EngineAddr,
    req: &HttpRequest,
    path: &str,
    body: web::Payload,
) -> Result<(StatusCode, HeaderMap, Bytes), ApiError> {
    let limit = work_timeout(req);
    let mut answer = send(node, req, path, body, Some(limit)).await?;
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = actix_rt::time::timeout(limit, answer.body().limit(WHOLE_LIMIT))
        .await
        .map_err(|_| engine_down(node, "answer body timed out"))?
        .map_err(|e| body_failed(node, e))?;
    Ok((status, headers, bytes))
}

/// A whole answer read by [`exchange`], passed on as it came.
pub fn whole_answer(status: StatusCode, headers: &HeaderMap, body: Bytes) -> HttpResponse {
    answer_head(status, headers).body(body)
}

/// `GET path` on an engine, within the call timeout: answers whether it said 2xx (used to
/// find an unknown exec).
pub async fn probe(node: &EngineAddr, path: &str, timeouts: Timeouts) -> Result<bool, ApiError> {
    let limit = timeouts.call;
    let asked = request(node, timeouts, Method::GET, path).send();
    let mut answer = actix_rt::time::timeout(limit, asked)
        .await
        .map_err(|_| engine_down(node, "timed out"))?
        .map_err(|e| send_failed(node, e))?;
    // Read the small body so the connection goes back to the pool.
    let _ = actix_rt::time::timeout(limit, answer.body().limit(WHOLE_LIMIT)).await;
    Ok(answer.status().is_success())
}

/// `POST path` with no body on one engine, whole JSON answer within `limit` (prune on
/// every node).
pub async fn post_whole(
    node: &EngineAddr,
    path: &str,
    timeouts: Timeouts,
    limit: Duration,
) -> Result<Bytes, ApiError> {
    let asked = request(node, timeouts, Method::POST, path);
    let call = async {
        let mut answer = asked.send().await.map_err(|e| send_failed(node, e))?;
        let status = answer.status();
        let body = answer
            .body()
            .limit(WHOLE_LIMIT)
            .await
            .map_err(|e| body_failed(node, e))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(ApiError::EngineAnswer {
                status: status.as_u16(),
                message: error_message(&body),
            })
        }
    };
    actix_rt::time::timeout(limit, call)
        .await
        .map_err(|_| engine_down(node, "timed out"))?
}

/// Drains a request body nobody will read (keeps the connection usable).
pub async fn drain(mut body: web::Payload) {
    while let Some(Ok(_)) = body.next().await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_version_prefix_and_the_query() {
        assert_eq!(
            rewrite("/v1.41/containers/web/start", "", "/containers/abc/start"),
            "/v1.41/containers/abc/start"
        );
        assert_eq!(
            rewrite(
                "/containers/web/logs",
                "follow=1&tail=5",
                "/containers/abc/logs"
            ),
            "/containers/abc/logs?follow=1&tail=5"
        );
        assert_eq!(
            rewrite(
                "/v1.24/containers/node-1/web/archive",
                "path=%2Fetc",
                "/containers/abc/archive"
            ),
            "/v1.24/containers/abc/archive?path=%2Fetc"
        );
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        for h in ["connection", "transfer-encoding", "upgrade", "host"] {
            assert!(hop_by_hop(&HeaderName::from_static(h)));
        }
        for h in ["content-type", "x-registry-auth", "user-agent"] {
            assert!(!hop_by_hop(&HeaderName::from_static(h)));
        }
    }
}
