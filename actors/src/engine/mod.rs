//! Talking to one Docker engine.
//!
//! `addr` says where an engine is; `client` is the HTTP client (TCP or unix socket) with a
//! timeout on every call; `Engine` is the small trait the NodeActor holds, so actor tests can
//! swap in a fake engine that fails on demand.

mod addr;
mod client;
mod error;

pub use addr::{AddrError, EngineAddr};
pub use client::{error_message, http_client, EngineStream, HttpEngine, Timeouts};
pub use error::EngineError;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;

/// What a NodeActor needs from an engine. Paths are engine API paths without a version
/// prefix (`/info`, `/containers/json?all=1`); the client adds the version it negotiated.
pub trait Engine {
    /// `GET path`, whole body, with the call timeout.
    fn get(&self, path: &str) -> LocalBoxFuture<'static, Result<Bytes, EngineError>>;
    /// `POST path` with a JSON body (or none); answers status and body.
    fn post(
        &self,
        path: &str,
        body: Option<Bytes>,
    ) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>>;
    /// `DELETE path`; answers status and body.
    fn delete(&self, path: &str) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>>;
    /// `GET /events?since=...`: the open stream of JSON lines. Only the connection set-up has
    /// the call timeout; the stream then stays open until the engine or Shoal closes it.
    fn events(&self, query: &str) -> LocalBoxFuture<'static, Result<EngineStream, EngineError>>;
    /// The address, for logs and node facts.
    fn addr(&self) -> &EngineAddr;
}
