//! What the image, network, volume and system routes share: choosing nodes, calling a
//! node's actor, merging the answers of several nodes, and merging progress streams.
//!
//! Progress (pull, load) from several engines becomes one stream of JSON lines, each line
//! marked with its node as classic Swarm did: `id` and `status` (or `stream`, `error`) start
//! with `node-1: `, so the CLI shows one progress bar per node and layer.

use crate::api::{ApiError, ApiState};
use actix_web::{HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use serde_json::Value;
use shoal_actors::cluster::{ClusterRead, NodeHandle, NodeRead};
use shoal_actors::engine::{local_engine, EngineError, EngineStream, HttpEngine};
use shoal_actors::node::{Health, NodeSnapshot, ObjectCall, ObjectOp, RefreshNode, SyncOffer};
use std::rc::Rc;
use std::time::Duration;

/// Longest progress line kept whole; a longer one is passed on as it is.
const MAX_LINE: usize = 1024 * 1024;
/// How long a change waits for its node to publish it (read-your-writes).
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// The healthy nodes, in the order users see them.
pub fn healthy(read: &ClusterRead) -> impl Iterator<Item = (usize, &NodeRead)> {
    read.nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.snapshot.health == Health::Healthy)
}

pub fn no_node() -> ApiError {
    ApiError::NoNode("no healthy node to send this to".into())
}

/// Asks one node's actor for an engine call; answers the engine's status and body.
pub async fn call(node: &NodeRead, op: ObjectOp) -> Result<(u16, Bytes), ApiError> {
    shoal_actors::metrics::queued("node", &node.handle.addr);
    Ok(node.handle.actor.send(ObjectCall(op)).await??)
}

/// An engine answer as Shoal's: success passes through, an error becomes `ApiError`.
pub fn pass(status: u16, body: Bytes) -> Result<HttpResponse, ApiError> {
    if (200..300).contains(&status) {
        let code = actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::OK);
        Ok(HttpResponse::build(code)
            .content_type("application/json")
            .body(body))
    } else {
        Err(engine_error(status, &body))
    }
}

pub fn engine_error(status: u16, body: &[u8]) -> ApiError {
    ApiError::EngineAnswer {
        status,
        message: shoal_actors::engine::error_message(body),
    }
}

/// What several nodes answered to one question: the successes (status and body) with
/// their node, and the failures (an engine's refusal, or no answer) with theirs.
pub struct Gathered<'a> {
    pub answers: Vec<(&'a NodeRead, u16, Bytes)>,
    pub failures: Vec<(&'a NodeRead, ApiError)>,
}

/// Asks every node of `nodes` at once; `ask` makes one node's call and answers the engine's
/// status and body. A 2xx answer is kept with its node; any other, or a failure to get
/// one, is a failure of that node, logged with `what`.
pub async fn ask_all<'a, F, Fut>(nodes: &[&'a NodeRead], what: &str, ask: F) -> Gathered<'a>
where
    F: Fn(&'a NodeRead) -> Fut,
    Fut: std::future::Future<Output = Result<(u16, Bytes), ApiError>>,
{
    let answers =
        futures_util::future::join_all(nodes.iter().map(|n| async { (*n, ask(n).await) })).await;
    let mut out = Gathered {
        answers: Vec::new(),
        failures: Vec::new(),
    };
    for (node, answer) in answers {
        match answer {
            Ok((status, body)) if (200..300).contains(&status) => {
                out.answers.push((node, status, body))
            }
            Ok((status, body)) => out.failures.push((node, engine_error(status, &body))),
            Err(e) => {
                tracing::warn!(node = %node.name, error = %e, "{what} failed on a node");
                out.failures.push((node, e));
            }
        }
    }
    out
}

impl<'a> Gathered<'a> {
    /// The successes; when there is none, the worst failure ([`worst`]), or `none` when no
    /// node was asked.
    pub fn or_worst(
        self,
        none: impl FnOnce() -> ApiError,
    ) -> Result<Vec<(&'a NodeRead, u16, Bytes)>, ApiError> {
        if self.answers.is_empty() {
            return Err(worst(self.failures.into_iter().map(|(_, e)| e), none));
        }
        Ok(self.answers)
    }
}

/// The first error that is not a 404, else the first error: what a fan-out answers when
/// no node succeeded.
pub fn worst(
    errors: impl IntoIterator<Item = ApiError>,
    not_found: impl FnOnce() -> ApiError,
) -> ApiError {
    let mut first = None;
    for e in errors {
        let is_404 = matches!(&e, ApiError::EngineAnswer { status: 404, .. });
        if !is_404 {
            return e;
        }
        first.get_or_insert(e);
    }
    first.unwrap_or_else(not_found)
}

/// Classic Swarm's `"Node"` object for list entries.
pub fn node_value(node: &NodeRead) -> Value {
    let facts = node.snapshot.facts.as_deref();
    serde_json::json!({
        "ID": facts.map(|f| f.id.clone()).unwrap_or_default(),
        "IP": node.handle.addr.host(),
        "Addr": node.handle.addr.to_string(),
        "Name": node.name,
    })
}

/// `value` (an object) with a `"Node"` field.
pub fn with_node(mut value: Value, node: &NodeRead) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert("Node".into(), node_value(node));
    }
    value
}

/// Sums prune and `df`-like reports: numbers add up, arrays are joined, `null`s are
/// skipped, anything else keeps the first value seen.
pub fn merge_reports(reports: impl IntoIterator<Item = Value>) -> Value {
    let mut out = serde_json::Map::new();
    for report in reports {
        let Value::Object(map) = report else { continue };
        for (k, v) in map {
            match (out.get_mut(&k), v) {
                (_, Value::Null) => {
                    out.entry(k).or_insert(Value::Null);
                }
                (Some(Value::Number(have)), Value::Number(n)) => {
                    let sum = have.as_i64().unwrap_or(0) + n.as_i64().unwrap_or(0);
                    *have = sum.into();
                }
                (Some(Value::Array(have)), Value::Array(more)) => have.extend(more),
                (Some(slot @ Value::Null), v) => *slot = v,
                (Some(_), _) => {}
                (None, v) => {
                    out.insert(k, v);
                }
            }
        }
    }
    Value::Object(out)
}

/// The client's `X-Registry-Auth`, passed through and never logged.
pub fn registry_auth(req: &HttpRequest) -> Option<String> {
    header(req, "X-Registry-Auth")
}

pub fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// This worker's client of `node`'s engine, for streamed calls.
pub fn stream_engine(state: &ApiState, node: &NodeRead) -> Rc<HttpEngine> {
    local_engine(&node.handle.addr, state.timeouts)
}

/// Waits until `node` publishes a snapshot where `done` holds, asking it to refresh while
/// it does not: a client's next call after a change must see the change. Gives up quietly
/// after `PUBLISH_WAIT` (the change is made; only the lists lag).
pub async fn await_published(node: &NodeHandle, done: impl Fn(&NodeSnapshot) -> bool) {
    let mut rx = node.state.clone();
    let deadline = actix_rt::time::Instant::now() + PUBLISH_WAIT;
    loop {
        if done(&rx.borrow_and_update()) {
            tracing::debug!(node = %node.addr, "change published");
            // And placed with: the next create must see it (a committed image pulls its run
            // to this node).
            let synced = node.actor.send(SyncOffer);
            if tokio::time::timeout_at(deadline, synced).await.is_err() {
                tracing::debug!(node = %node.addr, "offer not delivered in time");
            } else {
                tracing::debug!(node = %node.addr, "offer delivered");
            }
            return;
        }
        // A refresh already under way may have listed before the change: ask again.
        let _ = node.actor.try_send(RefreshNode);
        let step = actix_rt::time::sleep(Duration::from_millis(500));
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = step => {}
        }
        if actix_rt::time::Instant::now() > deadline {
            tracing::debug!(node = %node.addr, "change not published in time");
            return;
        }
    }
}

/// Rewrites one progress line with its node's name.
fn mark_line(node: &str, line: &[u8]) -> Bytes {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(line) else {
        return Bytes::copy_from_slice(line);
    };
    let mark = |v: &mut Value| {
        if let Value::String(s) = v {
            *s = format!("{node}: {s}");
        }
    };
    if let Some(id) = map.get_mut("id") {
        mark(id);
    } else if let Some(status) = map.get_mut("status") {
        mark(status);
    }
    if let Some(s) = map.get_mut("stream") {
        mark(s);
    }
    if let Some(e) = map.get_mut("error") {
        mark(e);
    }
    if let Some(Value::Object(detail)) = map.get_mut("errorDetail") {
        if let Some(m) = detail.get_mut("message") {
            mark(m);
        }
    }
    let mut out = serde_json::to_vec(&Value::Object(map)).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// Splits one engine's progress stream into lines and marks each with the node's name.
/// An engine that fails mid-stream ends with an error line of its own, so the client sees
/// which node did not finish.
pub fn marked_lines(node: String, body: EngineStream) -> LocalBoxStream<'static, Bytes> {
    struct St {
        node: String,
        body: Option<EngineStream>,
        buf: BytesMut,
    }
    let st = St {
        node,
        body: Some(body),
        buf: BytesMut::new(),
    };
    let lines = stream::unfold(st, |mut st| async move {
        loop {
            if let Some(pos) = st.buf.iter().position(|&b| b == b'\n') {
                let line = st.buf.split_to(pos + 1);
                let line = &line[..line.len() - 1];
                if line.trim_ascii().is_empty() {
                    continue;
                }
                return Some((mark_line(&st.node, line), st));
            }
            if st.buf.len() > MAX_LINE {
                let all = st.buf.split().freeze();
                return Some((all, st));
            }
            let body = st.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    st.body = None;
                    st.buf.clear();
                    let line = error_line(&st.node, &e.to_string());
                    return Some((line, st));
                }
                None => {
                    st.body = None;
                    if st.buf.trim_ascii().is_empty() {
                        return None;
                    }
                    let rest = st.buf.split().freeze();
                    return Some((mark_line(&st.node, rest.trim_ascii()), st));
                }
            }
        }
    });
    Box::pin(lines)
}

/// A progress line that tells the client one node failed.
pub fn error_line(node: &str, message: &str) -> Bytes {
    let msg = format!("{node}: {message}");
    let mut out =
        serde_json::to_vec(&serde_json::json!({ "errorDetail": { "message": msg }, "error": msg }))
            .unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// Merges the marked progress of several nodes into one response body, in arrival order.
pub fn merged_progress(
    parts: Vec<LocalBoxStream<'static, Bytes>>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    stream::select_all(parts).map(Ok::<_, actix_web::Error>)
}

/// An engine's body stream as a response body.
pub fn body_stream(
    body: EngineStream,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    body.map(|r: Result<Bytes, EngineError>| r.map_err(actix_web::error::ErrorBadGateway))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_carry_the_node() {
        let l = mark_line("node-1", br#"{"status":"Pulling fs layer","id":"abc"}"#);
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["id"], "node-1: abc");
        assert_eq!(v["status"], "Pulling fs layer");
        let l = mark_line("n", br#"{"status":"Digest: x"}"#);
        assert!(String::from_utf8_lossy(&l).contains("\"n: Digest: x\""));
        let l = mark_line("n", br#"{"error":"boom","errorDetail":{"message":"boom"}}"#);
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["error"], "n: boom");
        assert_eq!(v["errorDetail"]["message"], "n: boom");
        assert_eq!(&mark_line("n", b"not json")[..], b"not json");
    }

    #[actix_rt::test]
    async fn split_lines_across_chunks() {
        let chunks: Vec<Result<Bytes, EngineError>> = vec![
            Ok(Bytes::from_static(b"{\"status\":\"a\"}\n{\"sta")),
            Ok(Bytes::from_static(b"tus\":\"b\"}\n\n{\"status\":\"c\"}")),
        ];
        let body: EngineStream = Box::pin(stream::iter(chunks));
        let lines: Vec<Bytes> = marked_lines("x".into(), body).collect().await;
        let text: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).trim().to_string())
            .collect();
        assert_eq!(
            text,
            [
                r#"{"status":"x: a"}"#,
                r#"{"status":"x: b"}"#,
                r#"{"status":"x: c"}"#
            ]
        );
    }

    #[test]
    fn reports_sum_and_join() {
        let a = serde_json::json!({"ImagesDeleted":[{"Deleted":"a"}],"SpaceReclaimed":5});
        let b = serde_json::json!({"ImagesDeleted":null,"SpaceReclaimed":7});
        let c = serde_json::json!({"ImagesDeleted":[{"Deleted":"c"}],"SpaceReclaimed":1});
        let m = merge_reports([a, b, c]);
        assert_eq!(m["SpaceReclaimed"], 13);
        assert_eq!(m["ImagesDeleted"].as_array().unwrap().len(), 2);
    }
}
