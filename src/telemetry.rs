//! Tracing: the subscriber (`--log-level`, `--log-format text|json`) and the middleware
//! that gives every API request a span, a request id (answered in `X-Request-Id`) and its
//! metrics.
//!
//! What a request logs is chosen here and only here: method, route template, path without
//! its query, status, latency, the node that served it and the engine latency. Never a
//! header and never a body, so `X-Registry-Auth`, `Authorization` and the `/auth` body
//! cannot reach the logs from this layer.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use shoal_actors::metrics;
use std::time::Instant;
use tracing::field::Empty;
use tracing::Instrument;

/// The response header that carries the request id (and the request header a caller may
/// set to choose it).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, span fields included.
    Json,
}

/// What the daemon exposes about itself, from the command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObserveConfig {
    /// `--debug`: debug logs, and `/shoal/debug/*` when the API listens on loopback or a
    /// unix socket.
    pub debug: bool,
    /// `--metrics-addr`: also serve `/metrics` there (host:port).
    pub metrics_addr: Option<String>,
}

/// Installs the global subscriber. `level` is a level or an `EnvFilter` directive; a bad one
/// falls back to `info` with a warning rather than refusing to start.
pub fn init(level: &str, format: LogFormat) {
    let (filter, bad) = match tracing_subscriber::EnvFilter::try_new(level) {
        Ok(f) => (f, None),
        Err(e) => (tracing_subscriber::EnvFilter::new("info"), Some(e)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    if let Some(e) = bad {
        tracing::warn!(level, error = %e, "bad --log-level, logging at info");
    }
}

/// The id of one API request, in the request's extensions for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The caller's `X-Request-Id` when it is a sane token (so a proxy in front can correlate),
/// else a fresh random one. Only `[A-Za-z0-9._-]`, at most 64: it goes into logs and
/// headers as it is.
fn request_id(headers: &HeaderMap) -> String {
    if let Some(v) = headers.get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()) {
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            return v.to_string();
        }
    }
    format!("{:016x}", rand::random::<u64>())
}

/// Records, in the current request's span, the node that served it. Handlers call it
/// once they chose or resolved a node.
pub fn record_node(name: &str) {
    tracing::Span::current().record("node", name);
}

/// The middleware: span, request id, metrics, one log line per request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id(req.headers());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = Empty,
        node = Empty,
        engine_ms = Empty,
        status = Empty,
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    // Kept as text: a clone of the request itself would stop the router from taking it.
    let path = req.path().to_string();
    let _in_flight = metrics::api_in_flight();
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let header = HeaderValue::from_str(&id).ok();
    let name = HeaderName::from_static(REQUEST_ID_HEADER);
    match result {
        Ok(res) => {
            let route = match res.request().match_pattern() {
                // `{action}` patterns list their actions: the label names the one taken.
                Some(p) => match res.request().match_info().get("action") {
                    Some(a) => metrics::api_route_label(&p).replace("{action}", a),
                    None => metrics::api_route_label(&p),
                },
                None => metrics::route_template(&path),
            };
            finish(
                &span,
                method.as_str(),
                &route,
                &path,
                res.status().as_u16(),
                elapsed,
            );
            let mut res = res.map_into_boxed_body();
            if let Some(v) = header {
                res.headers_mut().insert(name, v);
            }
            Ok(res)
        }
        // An error from a middleware (the version check) still gets counted and an id:
        // its response is built here, the way actix would have built it.
        Err(e) => {
            let mut resp = e.error_response();
            let route = metrics::route_template(&path);
            finish(
                &span,
                method.as_str(),
                &route,
                &path,
                resp.status().as_u16(),
                elapsed,
            );
            if let Some(v) = header {
                resp.headers_mut().insert(name, v);
            }
            Err(InternalError::from_response(e, resp).into())
        }
    }
}

/// Metrics and the log line of one answered request.
fn finish(
    span: &tracing::Span,
    method: &str,
    route: &str,
    path: &str,
    status: u16,
    elapsed: std::time::Duration,
) {
    metrics::api_request(method, route, status, elapsed);
    span.record("route", route);
    span.record("status", status);
    let ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(path, ms, "request failed");
        } else {
            tracing::debug!(path, ms, "request");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_caller_id_is_kept_anything_else_replaced() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h).len(), 16);
        h.insert(
            HeaderName::from_static(REQUEST_ID_HEADER),
            HeaderValue::from_static("abc-123.x_y"),
        );
        assert_eq!(request_id(&h), "abc-123.x_y");
        h.insert(
            HeaderName::from_static(REQUEST_ID_HEADER),
            HeaderValue::from_static("has space"),
        );
        assert_ne!(request_id(&h), "has space");
        let long = "a".repeat(65);
        h.insert(
            HeaderName::from_static(REQUEST_ID_HEADER),
            HeaderValue::from_str(&long).unwrap(),
        );
        assert_ne!(request_id(&h), long);
    }
}
