//! Engine calls whose bodies are streams: pull and push progress, `save`, `load`, `build`.
//!
//! Bulk bytes go straight between the client's connection and the engine's, never through
//! a mailbox (DESIGN: "data through streams"). awc clients and actix-web payloads are bound
//! to their thread, so these calls run on the HTTP worker that took the request, with a
//! client of that worker's own (`local_engine`), never on the NodeActor's arbiter.
//!
//! Only opening the call is timed (`Timeouts::long`: a build may read its whole context
//! before it answers); the body then flows until one side closes. A client that hangs up
//! drops the response stream, which drops the engine connection.

use super::{Engine, EngineAddr, EngineError, EngineStream, HttpEngine, Timeouts};
use awc::http::Method;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{LocalBoxStream, StreamExt};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// What a streamed call sends.
pub enum StreamBody {
    Empty,
    Bytes(Bytes),
    /// Sent chunked as it arrives (a build context, an image tarball).
    Stream(LocalBoxStream<'static, Result<Bytes, std::io::Error>>),
}

/// A call whose answer is read as a stream.
pub struct StreamRequest {
    pub method: Method,
    /// Engine path with query, without a version prefix.
    pub path: String,
    /// Headers passed through (`Content-Type`, `X-Registry-Auth`, `X-Registry-Config`).
    /// Their values are never logged.
    pub headers: Vec<(&'static str, String)>,
    pub body: StreamBody,
}

impl StreamRequest {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        StreamRequest {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: StreamBody::Empty,
        }
    }

    pub fn header(mut self, name: &'static str, value: Option<String>) -> Self {
        if let Some(v) = value {
            self.headers.push((name, v));
        }
        self
    }

    pub fn body(mut self, body: StreamBody) -> Self {
        self.body = body;
        self
    }
}

/// The engine's status, content type and body stream.
pub struct StreamResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: EngineStream,
}

impl StreamResponse {
    /// Reads a (short) error body whole: a failed call answers JSON, not a stream.
    pub async fn into_error(self, addr: &EngineAddr, path: &str) -> EngineError {
        let mut body = self.body;
        let mut bytes = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > 64 * 1024 {
                break;
            }
        }
        EngineError::Status {
            addr: addr.to_string(),
            path: path.to_string(),
            status: self.status,
            message: super::error_message(&bytes),
        }
    }
}

thread_local! {
    /// One client per engine per HTTP worker thread, made on first use.
    static LOCAL: RefCell<HashMap<EngineAddr, Rc<HttpEngine>>> = RefCell::new(HashMap::new());
}

/// This thread's client of `addr`. Must be called on an actix thread (an HTTP worker).
pub fn local_engine(addr: &EngineAddr, timeouts: Timeouts) -> Rc<HttpEngine> {
    LOCAL.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= LOCAL_LIMIT && !m.contains_key(addr) {
            // Nodes that left: start again rather than grow without bound.
            m.clear();
        }
        m.entry(addr.clone())
            .or_insert_with(|| Rc::new(HttpEngine::new(addr.clone(), timeouts)))
            .clone()
    })
}

/// Engines remembered per worker thread before the cache is emptied.
const LOCAL_LIMIT: usize = 8192;

impl HttpEngine {
    /// Opens a call and answers as soon as the engine sent its status and headers.
    pub fn open(
        &self,
        r: StreamRequest,
    ) -> LocalBoxFuture<'static, Result<StreamResponse, EngineError>> {
        let addr = self.addr().to_string();
        let path = r.path;
        let limit = self.timeouts.long;
        let mut req = self.request(r.method, &path);
        for (name, value) in r.headers {
            req = req.insert_header((name, value));
        }
        Box::pin(async move {
            let sent = match r.body {
                StreamBody::Empty => req.send(),
                StreamBody::Bytes(b) => req.send_body(b),
                StreamBody::Stream(s) => req.send_stream(s),
            };
            let resp = super::client::answer_head(&addr, &path, limit, sent).await?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body =
                resp.map(move |chunk| chunk.map_err(|e| super::client::body_error(&addr, e)));
            Ok(StreamResponse {
                status,
                content_type,
                body: Box::pin(body),
            })
        })
    }
}
