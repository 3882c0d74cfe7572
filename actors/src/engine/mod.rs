//! Talking to one Docker engine.
//!
//! `addr` says where an engine is; `client` is the HTTP client (TCP or unix socket) with a
//! timeout on every call; `Engine` is the small trait the NodeActor holds, so actor tests can
//! swap in a fake engine that fails on demand; `stream` opens calls whose bodies are streamed
//! both ways (pull progress, save, load, build) from the HTTP front's own thread; `unix` is
//! the awc connector for engines behind a unix socket; `tls` dials TCP engines with TLS when
//! the process was started with it; `conn` is the connection awc speaks over, which makes
//! an answer that runs to the close end with it (never left in a pooled connection);
//! `sever` cuts every connection to an engine when its node turns unhealthy, so work in
//! flight on a frozen engine ends then, not after the work timeout; `budget` bounds the
//! engine connections open at once under the open-file limit, and `pools` closes a
//! client's idle ones when three quarters of the budget are taken.

mod addr;
pub mod budget;
mod client;
pub mod conn;
mod error;
mod path;
mod pools;
mod sever;
mod stream;
pub mod tls;
mod unix;

pub use addr::{AddrError, EngineAddr};
pub use client::{error_message, EngineStream, HttpEngine, Timeouts, NODE_CONNECTIONS};
pub use error::EngineError;
pub use path::{escape_param, split_api_version};
pub use sever::{sever, severed_io, severed_payload, severed_send, Severed};
pub use stream::{local_engine, StreamBody, StreamRequest, StreamResponse};
pub use unix::unix_connector;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;

/// A `POST` to an engine.
#[derive(Debug, Clone, Default)]
pub struct PostRequest {
    pub path: String,
    pub body: Option<Bytes>,
    /// `X-Registry-Auth`, passed through as the client sent it; never logged.
    pub registry_auth: Option<String>,
    /// Work a client asked for (create, pull, ...), which may take minutes: it gets
    /// `Timeouts::long` instead of `Timeouts::call`.
    pub long: bool,
}

impl PostRequest {
    pub fn new(path: impl Into<String>) -> Self {
        PostRequest {
            path: path.into(),
            ..Default::default()
        }
    }

    pub fn json(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    /// Marks the call as work a client asked for (see `long`).
    pub fn work(mut self) -> Self {
        self.long = true;
        self
    }
}

/// Percent-encodes a query value.
pub fn query_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What a NodeActor needs from an engine. Paths are engine API paths without a version
/// prefix (`/info`, `/containers/json?all=1`); the client adds the version it negotiated.
pub trait Engine {
    /// `GET path`, whole body, with the call timeout.
    fn get(&self, path: &str) -> LocalBoxFuture<'static, Result<Bytes, EngineError>>;
    /// `POST path` with a JSON body (or none); answers status and body. `long` calls
    /// (image pulls) run under the pull timeout instead of the call timeout.
    fn post(&self, req: PostRequest) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>>;
    /// `DELETE path`; answers status and body.
    fn delete(&self, path: &str) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>>;
    /// `GET /events?since=...`: the open stream of JSON lines. Only the connection set-up has
    /// the call timeout; the stream then stays open until the engine or Shoal closes it.
    fn events(&self, query: &str) -> LocalBoxFuture<'static, Result<EngineStream, EngineError>>;
    /// The address, for logs and node facts.
    fn addr(&self) -> &EngineAddr;
}
