//! Streamed calls made from the front's own thread (pull, push, save, load, build) and
//! the progress of several engines merged into one answer.
//!
//! Progress (pull, load, import) from several engines becomes one stream of JSON lines that
//! a client parses as one engine's: the engine's `status`, `stream`, `aux` and `error`
//! texts are kept as written (SDKs look for `Loaded image: ...`), each line gains a `node`
//! object (the `Node` object of list entries) saying which node wrote it, per-layer
//! progress has its `id` marked `node-1: <id>` (so the CLI draws one bar per node and
//! layer), a line several nodes wrote identically is sent once (with the `node` of the
//! first), and errors come last, so the CLI, which stops at the first error, has shown
//! every node's progress; an error's `errorDetail.message`, which the CLI prints, starts
//! with the node's name. A node that could not start or broke off adds an error line of
//! Shoal's own that names it.

use super::fanout::node_value;
use crate::api::state::ApiState;
use actix_web::HttpRequest;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, LocalBoxStream, StreamExt};
use serde_json::Value;
use shoal_actors::cluster::NodeRead;
use shoal_actors::engine::{local_engine, EngineError, EngineStream, HttpEngine};
use std::collections::{HashSet, VecDeque};
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

/// Who wrote a line: the node's name, and the `node` object added to its lines (the
/// `Node` object of list entries).
#[derive(Clone)]
pub struct LineSource {
    pub name: String,
    pub node: Value,
}

impl LineSource {
    pub fn of(node: &NodeRead) -> Self {
        LineSource {
            name: node.name.to_string(),
            node: node_value(node),
        }
    }
}

/// One line of one node's progress, sorted by how the merge treats it.
#[derive(Debug, PartialEq)]
pub enum NodeLine {
    /// Per-layer progress (it has an `id`): passed on at once, its `id` marked with the
    /// node so each node has its own bar.
    Own(Bytes),
    /// Any other line (`status`, `stream`, `aux`): passed on once, however many nodes
    /// write it; `key` is the engine's line as written, `line` what is sent.
    Shared { key: Bytes, line: Bytes },
    /// An error: held until the other nodes are done, then sent last, so a client that
    /// stops at the first error (the CLI does) sees every node's progress first.
    Error(Bytes),
}

fn to_line(map: serde_json::Map<String, Value>) -> Bytes {
    let mut out = serde_json::to_vec(&Value::Object(map)).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// Sorts one engine line and adds its node: the engine's `status`, `stream`, `aux` and
/// `error` stay as written; only `id` is marked (`node-1: <id>`). A line that is not a
/// JSON object passes as it is.
fn node_line(src: &LineSource, line: &[u8]) -> NodeLine {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(line) else {
        let mut raw = BytesMut::from(line);
        raw.extend_from_slice(b"\n");
        return NodeLine::Own(raw.freeze());
    };
    let is_error = map.contains_key("error") || map.contains_key("errorDetail");
    let has_id = matches!(map.get("id"), Some(Value::String(id)) if !id.is_empty());
    if has_id && !is_error {
        if let Some(Value::String(id)) = map.get_mut("id") {
            *id = format!("{}: {id}", src.name);
        }
    }
    map.insert("node".into(), src.node.clone());
    if is_error {
        name_the_node(&mut map, &src.name);
        NodeLine::Error(to_line(map))
    } else if has_id {
        NodeLine::Own(to_line(map))
    } else {
        NodeLine::Shared {
            key: Bytes::copy_from_slice(line),
            line: to_line(map),
        }
    }
}

/// Makes an engine's error line name its node where the CLI reads it: `errorDetail.message`
/// becomes `node-1: <message>` (made from `error` when the engine wrote none); `error`
/// stays as the engine wrote it, for programs that match it.
fn name_the_node(map: &mut serde_json::Map<String, Value>, node: &str) {
    let message = match map.get("errorDetail").and_then(|d| d.get("message")) {
        Some(Value::String(m)) => m.clone(),
        _ => map
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    };
    let detail = map
        .entry("errorDetail")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Value::Object(detail) = detail {
        detail.insert(
            "message".into(),
            Value::String(format!("{node}: {message}")),
        );
    } else {
        *detail = serde_json::json!({ "message": format!("{node}: {message}") });
    }
}

/// Splits one engine's progress stream into lines, each sorted and given its node. An
/// engine that fails mid-stream ends with an error line of Shoal's naming the node, so
/// the client sees which node did not finish.
pub fn node_lines(src: LineSource, body: EngineStream) -> LocalBoxStream<'static, NodeLine> {
    struct St {
        src: LineSource,
        body: Option<EngineStream>,
        buf: BytesMut,
    }
    let st = St {
        src,
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
                return Some((node_line(&st.src, line), st));
            }
            if st.buf.len() > MAX_LINE {
                let all = st.buf.split().freeze();
                return Some((NodeLine::Own(all), st));
            }
            let body = st.body.as_mut()?;
            match body.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    st.body = None;
                    st.buf.clear();
                    let line = error_line(&st.src, &e.to_string());
                    return Some((line, st));
                }
                None => {
                    st.body = None;
                    if st.buf.trim_ascii().is_empty() {
                        return None;
                    }
                    let rest = st.buf.split().freeze();
                    return Some((node_line(&st.src, rest.trim_ascii()), st));
                }
            }
        }
    });
    Box::pin(lines)
}

/// An error line of Shoal's own (a node that could not start or broke off): its text
/// names the node, and it carries the `node` object as engine lines do.
pub fn error_line(src: &LineSource, message: &str) -> NodeLine {
    let msg = format!("{}: {message}", src.name);
    let mut map = serde_json::Map::new();
    map.insert("errorDetail".into(), serde_json::json!({ "message": msg }));
    map.insert("error".into(), Value::String(msg));
    map.insert("node".into(), src.node.clone());
    NodeLine::Error(to_line(map))
}

/// How many distinct shared lines are remembered to send each once; past it (a very long
/// stream of `stream` lines), lines are sent as they come.
const MAX_SHARED: usize = 10_000;

/// Merges the progress of several nodes into one response body, in arrival order: a
/// shared line once, per-layer lines all, errors last.
pub fn merged_progress(
    parts: Vec<LocalBoxStream<'static, NodeLine>>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    struct St {
        lines: stream::SelectAll<LocalBoxStream<'static, NodeLine>>,
        seen: HashSet<Bytes>,
        errors: VecDeque<Bytes>,
    }
    let st = St {
        lines: stream::select_all(parts),
        seen: HashSet::new(),
        errors: VecDeque::new(),
    };
    stream::unfold(st, |mut st| async move {
        loop {
            match st.lines.next().await {
                Some(NodeLine::Own(line)) => return Some((line, st)),
                Some(NodeLine::Shared { key, line }) => {
                    if st.seen.len() >= MAX_SHARED || st.seen.insert(key) {
                        return Some((line, st));
                    }
                }
                Some(NodeLine::Error(line)) => st.errors.push_back(line),
                None => return st.errors.pop_front().map(|line| (line, st)),
            }
        }
    })
    .map(Ok::<_, actix_web::Error>)
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

    fn src() -> LineSource {
        LineSource {
            name: "node-1".into(),
            node: serde_json::json!({"Name": "node-1"}),
        }
    }

    fn json(line: &Bytes) -> Value {
        serde_json::from_slice(line).unwrap()
    }

    #[test]
    fn engine_texts_stay_and_the_node_is_added() {
        let NodeLine::Own(l) = node_line(&src(), br#"{"status":"Pulling fs layer","id":"abc"}"#)
        else {
            panic!("a layer line is the node's own");
        };
        let v = json(&l);
        assert_eq!(v["id"], "node-1: abc");
        assert_eq!(v["status"], "Pulling fs layer");
        assert_eq!(v["node"]["Name"], "node-1");
        let raw = br#"{"stream":"Loaded image: busybox:latest\n"}"#;
        let NodeLine::Shared { key, line } = node_line(&src(), raw) else {
            panic!("a stream line is shared");
        };
        assert_eq!(&key[..], &raw[..]);
        assert_eq!(json(&line)["stream"], "Loaded image: busybox:latest\n");
        let NodeLine::Error(l) = node_line(
            &src(),
            br#"{"error":"boom","errorDetail":{"message":"boom"}}"#,
        ) else {
            panic!("an error is held");
        };
        let v = json(&l);
        assert_eq!(v["error"], "boom");
        assert_eq!(v["errorDetail"]["message"], "node-1: boom");
        assert_eq!(v["node"]["Name"], "node-1");
        let NodeLine::Error(l) = node_line(&src(), br#"{"error":"bare"}"#) else {
            panic!("an error is held");
        };
        assert_eq!(json(&l)["errorDetail"]["message"], "node-1: bare");
        assert_eq!(
            node_line(&src(), b"not json"),
            NodeLine::Own(Bytes::from_static(b"not json\n"))
        );
    }

    fn body(chunks: &[&'static [u8]]) -> EngineStream {
        let chunks: Vec<Result<Bytes, EngineError>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(stream::iter(chunks))
    }

    #[actix_rt::test]
    async fn split_lines_across_chunks() {
        let b = body(&[
            b"{\"status\":\"a\"}\n{\"sta",
            b"tus\":\"b\"}\n\n{\"status\":\"c\"}",
        ]);
        let lines: Vec<NodeLine> = node_lines(src(), b).collect().await;
        let status: Vec<String> = lines
            .iter()
            .map(|l| match l {
                NodeLine::Shared { line, .. } => json(line)["status"].as_str().unwrap().to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(status, ["a", "b", "c"]);
    }

    #[actix_rt::test]
    async fn shared_lines_once_layers_all_errors_last() {
        let two = LineSource {
            name: "node-2".into(),
            node: serde_json::json!({"Name": "node-2"}),
        };
        let a = node_lines(src(), body(&[b"{\"error\":\"no space\"}\n"]));
        let b = node_lines(
            two,
            body(&[b"{\"status\":\"Loading layer\",\"id\":\"l1\"}\n{\"stream\":\"Loaded image: bb\\n\"}\n"]),
        );
        let c = node_lines(src(), body(&[b"{\"stream\":\"Loaded image: bb\\n\"}\n"]));
        let out: Vec<Value> = merged_progress(vec![a, b, c])
            .map(|l| json(&l.unwrap()))
            .collect()
            .await;
        let loaded = out
            .iter()
            .filter(|v| v["stream"] == "Loaded image: bb\n")
            .count();
        assert_eq!(loaded, 1, "{out:?}");
        assert!(out.iter().any(|v| v["id"] == "node-2: l1"), "{out:?}");
        assert_eq!(out.last().unwrap()["error"], "no space", "{out:?}");
        assert_eq!(out.len(), 3, "{out:?}");
    }
}
