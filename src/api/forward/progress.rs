//! Streamed calls made from the front's own thread (pull, push, save, load, build) and
//! the progress of several engines merged into one answer.
//!
//! Progress (pull, load) from several engines becomes one stream of JSON lines, each line
//! marked with its node as classic Swarm did: `id` and `status` (or `stream`, `error`) start
//! with `node-1: `, so the CLI shows one progress bar per node and layer.

use crate::api::state::ApiState;
use actix_web::HttpRequest;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use serde_json::Value;
use shoal_actors::cluster::NodeRead;
use shoal_actors::engine::{local_engine, EngineError, EngineStream, HttpEngine};
use std::rc::Rc;

/// Longest progress line kept whole; a longer one is passed on as it is.
const MAX_LINE: usize = 1024 * 1024;

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
}
