//! The front's own refusals over simulated engines, as dockerd answers them: cross-site
//! requests, paths built from client input, body limits and unknown routes.

mod sim_fixture;

use awc::http::Method;
use shoal::api::ApiConfig;
use shoal_sim::EngineConfig;
use sim_fixture::{Answer, SimCluster, Started};

fn two() -> SimCluster {
    SimCluster::new()
        .engine(EngineConfig::new("n1").containers(1))
        .engine(EngineConfig::new("n2").containers(1))
}

/// A request with the given headers and a raw body; the path is sent as written.
async fn raw(
    c: &Started,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut req = c.client.request(method, format!("{}{}", c.base, path));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req
        .send_body(body.to_vec())
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = resp.body().limit(64 << 20).await.expect("body");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body,
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

async fn container_count(c: &Started) -> usize {
    let a = c.get("/containers/json?all=1").await;
    a.json().as_array().map_or(0, Vec::len)
}

#[actix_rt::test]
async fn creates_need_json_as_on_the_engine() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    let before = container_count(&c).await;
    let body = br#"{"Image":"busybox"}"#;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let a = raw(
            &c,
            Method::POST,
            "/v1.41/containers/create",
            &[("content-type", ct)],
            body,
        )
        .await;
        assert_eq!(a.status, 400, "{ct}");
        assert_eq!(
            a.message(),
            format!("Content-Type specified ({ct}) must be 'application/json'")
        );
    }
    let a = raw(
        &c,
        Method::POST,
        "/volumes/create",
        &[("content-type", "text/plain")],
        b"{}",
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(container_count(&c).await, before, "nothing was created");
    let a = raw(
        &c,
        Method::POST,
        "/v1.41/containers/create",
        &[("content-type", "application/json; charset=utf-8")],
        body,
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", a.body);
}

#[actix_rt::test]
async fn browser_origins_are_refused_unless_allowed() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    let evil = [("origin", "http://evil.example")];
    let a = raw(&c, Method::GET, "/_ping", &evil, b"").await;
    assert_eq!(a.status, 403);
    assert!(a.message().contains("--api-cors-header"), "{}", a.message());
    let a = raw(
        &c,
        Method::POST,
        "/v1.41/containers/create",
        &[
            ("origin", "http://evil.example"),
            ("content-type", "application/json"),
        ],
        br#"{"Image":"busybox"}"#,
    )
    .await;
    assert_eq!(a.status, 403);
    // Without `Origin`: no CORS headers, as dockerd without the flag.
    let a = raw(&c, Method::GET, "/_ping", &[], b"").await;
    assert_eq!(a.status, 200);
    assert!(a.headers.get("access-control-allow-origin").is_none());
}

#[actix_rt::test]
async fn the_cors_flag_allows_its_origin_and_answers_preflights() {
    let c = two()
        .api(ApiConfig {
            cors_header: Some("http://ui.local".into()),
            ..Default::default()
        })
        .start()
        .await;
    c.wait_healthy(2).await;
    let ui = [("origin", "http://ui.local")];
    let a = raw(&c, Method::GET, "/v1.41/info", &ui, b"").await;
    assert_eq!(a.status, 200);
    assert_eq!(header(&a, "access-control-allow-origin"), "http://ui.local");
    assert_eq!(
        header(&a, "access-control-allow-methods"),
        "HEAD, GET, POST, DELETE, PUT, OPTIONS"
    );
    let a = raw(
        &c,
        Method::OPTIONS,
        "/v1.41/containers/create",
        &[
            ("origin", "http://ui.local"),
            ("access-control-request-method", "POST"),
        ],
        b"",
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(a.body.is_empty());
    assert_eq!(header(&a, "access-control-allow-origin"), "http://ui.local");
    let a = raw(
        &c,
        Method::GET,
        "/_ping",
        &[("origin", "http://evil.example")],
        b"",
    )
    .await;
    assert_eq!(a.status, 403);
}

#[actix_rt::test]
async fn image_names_that_are_not_references_are_refused() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    let a = raw(&c, Method::GET, "/images/../../info/json", &[], b"").await;
    assert_eq!(a.status, 400);
    assert_eq!(
        a.message(),
        "no such image: ../../info: invalid reference format"
    );
    let a = raw(
        &c,
        Method::POST,
        "/v1.41/images/busybox/../../containers/prune/tag?repo=x",
        &[],
        b"",
    )
    .await;
    assert_eq!(
        (a.status, a.message().as_str()),
        (400, "invalid reference format")
    );
    for (method, path) in [
        (Method::GET, "/images/a%3Fb/json"),
        (Method::GET, "/images/a%23b/history"),
        (Method::DELETE, "/images/a%3Fforce=1"),
        (Method::POST, "/images/a%3Fb/push"),
        (Method::GET, "/images/..%2F..%2Finfo/get"),
    ] {
        let a = raw(&c, method, path, &[], b"").await;
        assert_eq!(a.status, 400, "{path}: {:?}", a.body);
        assert!(a.message().contains("invalid reference format"), "{path}");
    }
    let a = raw(&c, Method::DELETE, "/images/Busybox", &[], b"").await;
    assert_eq!(
        (a.status, a.message().as_str()),
        (
            400,
            "invalid reference format: repository name must be lowercase"
        )
    );
    // A valid reference still reaches the engine, which answers for it.
    let a = c.get("/images/nothing-here:1/json").await;
    assert_eq!(a.status, 404, "{:?}", a.body);
}

#[actix_rt::test]
async fn a_big_create_body_is_taken_as_the_engine_takes_it() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    // 300 KB of labels: dockerd accepts it; the old 256 KiB limit answered 413.
    let labels: serde_json::Map<String, serde_json::Value> = (0..3000)
        .map(|i| (format!("label-{i:05}"), serde_json::json!("x".repeat(90))))
        .collect();
    let body = serde_json::json!({ "Image": "busybox", "Labels": labels }).to_string();
    assert!(body.len() > 300_000);
    let a = raw(
        &c,
        Method::POST,
        "/v1.41/containers/create?name=big",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(a.status, 201, "{:?}", String::from_utf8_lossy(&a.body));
}

#[actix_rt::test]
async fn unknown_routes_and_methods_are_dockerds_404_and_options_200() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    for (method, path) in [
        (Method::GET, "/containers/create/extra"),
        (Method::POST, "/containers/create/extra"),
        (Method::GET, "/containers/../../info"),
        (Method::PUT, "/containers/json"),
        (Method::DELETE, "/v1.41/info"),
        (Method::POST, "/images/json"),
        (Method::GET, "/v1.41/nothing"),
    ] {
        let a = raw(&c, method.clone(), path, &[], b"").await;
        assert_eq!(
            (a.status, a.message().as_str()),
            (404, "page not found"),
            "{method} {path}"
        );
    }
    for path in ["/_ping", "/v1.41/containers/json", "/no/such/thing"] {
        let a = raw(&c, Method::OPTIONS, path, &[], b"").await;
        assert_eq!(a.status, 200, "{path}");
        assert!(a.body.is_empty());
    }
}
