//! Cross-site requests: what keeps a web page from driving the cluster through a browser
//! that can reach Shoal (a Shoal on `localhost`, a laptop on the cluster's network).
//!
//! A browser lets any page send a "simple" request elsewhere: `GET`, or a `POST` whose
//! `Content-Type` is `text/plain` or a form encoding. Two checks close that door:
//!
//! - **JSON where the engine wants JSON.** The routes whose body dockerd reads as JSON
//!   (create, update, exec create and start, commit, network create/connect/disconnect,
//!   volume create) refuse any other `Content-Type` with the engine's 400 and its words, so
//!   a form post cannot create a container; a `Content-Type: application/json` request from
//!   a page needs a CORS preflight, which the next check refuses.
//! - **Origin.** Browsers mark cross-site requests (and same-site ones other than `GET` and
//!   `HEAD`) with `Origin`; Docker clients never send it. A request with an `Origin` is
//!   refused with 403 unless `--api-cors-header` allows that origin (`*` allows every one).
//!   With the flag set, every answer carries the three `Access-Control-Allow-*` headers
//!   dockerd's flag of the same name writes, and a preflight `OPTIONS` is answered 200 (as
//!   dockerd answers `OPTIONS` on any path, see `fallback`).
//!
//! Hijacked requests (`attach`, upgraded `exec start`) are served by the connection gate
//! before actix-web sees them. Browsers cannot send `Upgrade`, but a plain `POST .../attach`
//! is taken by the gate too: the relay applies [`check_origin`] to it before any engine.

use crate::api::error::ApiError;
use crate::api::state::ApiState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web;
use shoal_actors::engine::split_api_version;

/// dockerd's `Access-Control-Allow-Headers` when CORS is on.
const ALLOW_HEADERS: &str = "Origin, X-Requested-With, Content-Type, Accept, X-Registry-Auth";
/// dockerd's `Access-Control-Allow-Methods` when CORS is on.
const ALLOW_METHODS: &str = "HEAD, GET, POST, DELETE, PUT, OPTIONS";

/// Whether a request from `origin` may be served: only when `--api-cors-header` is `*` or
/// names that origin.
pub fn origin_allowed(cors_header: Option<&str>, origin: &str) -> bool {
    match cors_header {
        None => false,
        Some(allowed) => allowed == "*" || allowed.split(',').any(|a| a.trim() == origin),
    }
}

/// The `Origin` rule as an answer: 403 unless `--api-cors-header` allows `origin`. The
/// routes' guard and the hijack gate both ask it.
pub fn check_origin(cors_header: Option<&str>, origin: &str) -> Result<(), ApiError> {
    if origin_allowed(cors_header, origin) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "cross-origin request from {origin} refused: start shoal with --api-cors-header to allow it"
    )))
}

/// Whether dockerd reads this route's body as JSON (its `CheckForJSON` routes). `path` is
/// without the version prefix.
pub fn needs_json(method: &Method, path: &str) -> bool {
    if method != Method::POST {
        return false;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["containers", "create"] | ["commit"] | ["networks", "create"] | ["volumes", "create"] => {
            true
        }
        ["exec", id, "start"] => !id.is_empty(),
        ["containers", reference @ .., "update" | "exec"] => !reference.is_empty(),
        ["networks", reference @ .., "connect" | "disconnect"] => !reference.is_empty(),
        _ => false,
    }
}

/// dockerd's check: no `Content-Type` is fine for a request without a body; otherwise its
/// media type must be `application/json` (parameters such as `charset` allowed).
pub fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE);
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let Some(value) = content_type else {
        return if has_body { Err(not_json("")) } else { Ok(()) };
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    match text.parse::<actix_web::mime::Mime>() {
        Ok(m) if m.essence_str() == "application/json" => Ok(()),
        _ => Err(not_json(&text)),
    }
}

fn not_json(content_type: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "Content-Type specified ({content_type}) must be 'application/json'"
    ))
}

/// The middleware around every Docker API route: the `Origin` rule, then the JSON rule;
/// with CORS on, the `Access-Control-Allow-*` headers on the answer.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let cors = req
        .app_data::<web::Data<ApiState>>()
        .and_then(|s| s.cors_header.clone());
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        check_origin(cors.as_deref(), &String::from_utf8_lossy(origin.as_bytes()))?;
    }
    let (_, path) = split_api_version(crate::api::routed_path(req.request()));
    if needs_json(req.method(), path) {
        check_json(req.headers())?;
    }
    let mut res = next.call(req).await?;
    if let Some(allowed) = cors.and_then(|c| HeaderValue::from_str(&c).ok()) {
        let headers = res.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                header::HeaderName::from_static(k),
                HeaderValue::from_static(v),
            );
        }
        h
    }

    #[test]
    fn json_routes_are_dockerds() {
        let post = Method::POST;
        for p in [
            "/containers/create",
            "/containers/web/update",
            "/containers/node-1/web/exec",
            "/exec/abc/start",
            "/commit",
            "/networks/create",
            "/networks/net/connect",
            "/networks/net/disconnect",
            "/volumes/create",
        ] {
            assert!(needs_json(&post, p), "{p}");
        }
        for p in [
            "/containers/web/start",
            "/containers/web/kill",
            "/images/create",
            "/auth",
            "/build",
            "/exec/abc/resize",
            "/containers/prune",
            "/containers/update",
        ] {
            assert!(!needs_json(&post, p), "{p}");
        }
        assert!(!needs_json(&Method::GET, "/containers/create"));
    }

    #[test]
    fn only_json_bodies_pass() {
        assert!(check_json(&headers(&[("content-type", "application/json")])).is_ok());
        assert!(check_json(&headers(&[(
            "content-type",
            "application/json; charset=utf-8"
        )]))
        .is_ok());
        assert!(check_json(&headers(&[("content-type", "Application/JSON")])).is_ok());
        assert!(check_json(&headers(&[])).is_ok());
        assert!(check_json(&headers(&[("content-length", "0")])).is_ok());
        let e = check_json(&headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Content-Type specified (text/plain) must be 'application/json'"
        );
        for ct in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "bad;;",
            "application/jsonx",
        ] {
            let h = HeaderMap::from_iter([(header::CONTENT_TYPE, HeaderValue::from_static(ct))]);
            assert!(check_json(&h).is_err(), "{ct}");
        }
        let e = check_json(&headers(&[("content-length", "2")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Content-Type specified () must be 'application/json'"
        );
    }

    #[test]
    fn origins_need_the_flag() {
        assert!(!origin_allowed(None, "http://evil.example"));
        assert!(origin_allowed(Some("*"), "http://evil.example"));
        assert!(origin_allowed(Some("http://ui.local"), "http://ui.local"));
        assert!(!origin_allowed(
            Some("http://ui.local"),
            "http://evil.example"
        ));
        assert!(origin_allowed(
            Some("http://a.local, http://ui.local"),
            "http://ui.local"
        ));
    }
}
