//! End-to-end tests: real HTTP against a running fleet.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use shoal_sim::{EngineConfig, Fault, FleetOptions, SimFleet};

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish()
}

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let mut r = client()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("send");
    let body = r.body().limit(16 << 20).await.expect("body");
    (
        r.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn post(addr: std::net::SocketAddr, path: &str, body: Option<&str>) -> (u16, Value) {
    let req = client().post(format!("http://{addr}{path}"));
    let mut r = match body {
        Some(b) => {
            req.insert_header(("Content-Type", "application/json"))
                .send_body(b.to_string())
                .await
        }
        None => req.send().await,
    }
    .expect("send");
    let body = r.body().await.expect("body");
    (
        r.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn delete(addr: std::net::SocketAddr, path: &str) -> (u16, Value) {
    let mut r = client()
        .delete(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("send");
    let body = r.body().await.expect("body");
    (
        r.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

async fn three() -> SimFleet {
    let engines = (0..3)
        .map(|i| {
            EngineConfig::new(format!("node-{i}"))
                .label("zone", if i == 0 { "a" } else { "b" })
                .ncpu(i + 1)
                .containers(3)
        })
        .collect();
    SimFleet::start(engines, FleetOptions::default())
        .await
        .expect("start")
}

#[actix_rt::test]
async fn three_engines_answer_ping_info_version() {
    let fleet = three().await;
    for (i, addr) in fleet.addrs().into_iter().enumerate() {
        let r = client()
            .head(format!("http://{addr}/_ping"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().get("api-version").unwrap(), "1.41");
        assert_eq!(r.headers().get("ostype").unwrap(), "linux");
        assert_eq!(r.headers().get("docker-experimental").unwrap(), "false");
        assert_eq!(
            r.headers().get("cache-control").unwrap(),
            "no-cache, no-store, must-revalidate"
        );
        assert_eq!(r.headers().get("pragma").unwrap(), "no-cache");
        let mut r = client()
            .get(format!("http://{addr}/v1.41/_ping"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.body().await.unwrap(), "OK");

        let (s, info) = get(addr, "/v1.41/info").await;
        assert_eq!(s, 200);
        assert_eq!(info["Name"], format!("node-{i}"));
        assert_eq!(info["NCPU"], i as i64 + 1);
        assert_eq!(info["Labels"][0], if i == 0 { "zone=a" } else { "zone=b" });
        assert_eq!(info["Containers"], 3);
        assert_eq!(info["ContainersRunning"], 2);
        assert_eq!(info["ContainersStopped"], 1);
        assert_eq!(info["OSType"], "linux");
        assert_eq!(info["Driver"], "overlay2");
        assert_eq!(info["ID"].as_str().unwrap().split(':').count(), 12);

        let (_, v) = get(addr, "/version").await;
        assert_eq!(v["ApiVersion"], "1.41");
        let (s, v) = get(addr, "/v1.41/nope").await;
        assert_eq!((s, v["message"].as_str()), (404, Some("page not found")));
        let (_, nets) = get(addr, "/networks").await;
        assert_eq!(nets.as_array().unwrap().len(), 3);
        let (_, vols) = get(addr, "/volumes").await;
        assert_eq!(vols, serde_json::json!({"Volumes": [], "Warnings": null}));
    }
    fleet.stop().await;
}

#[actix_rt::test]
async fn container_lifecycle_codes_and_errors() {
    let fleet = three().await;
    let a = fleet.addr(0);
    let spec = r#"{"Image":"busybox","Cmd":["sleep","1"],"Labels":{"app":"web"},"Env":["X=1"],
                   "HostConfig":{"Memory":10000000,"NanoCpus":500000000,"NetworkMode":"host",
                   "PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}"#;
    let (s, v) = post(a, "/v1.41/containers/create?name=web", Some(spec)).await;
    assert_eq!(s, 201, "{v}");
    let id = v["Id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 64);
    assert_eq!(v["Warnings"], serde_json::json!([]));

    let (s, v) = post(a, "/v1.41/containers/create?name=web", Some(spec)).await;
    assert_eq!(s, 409);
    assert_eq!(
        v["message"],
        format!("Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")
    );
    let (s, v) = post(a, "/containers/create", Some(r#"{"Image":"busybox:nope"}"#)).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (404, Some("No such image: busybox:nope"))
    );
    let (s, _) = post(a, "/containers/create", Some(r#"{"Image":"#)).await;
    assert_eq!(s, 400);

    let (s, v) = get(a, "/v1.41/containers/web/json").await;
    assert_eq!(s, 200);
    assert_eq!(v["Id"], id);
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["HostConfig"]["Memory"], 10000000);
    assert_eq!(v["HostConfig"]["NanoCpus"], 500000000);
    assert_eq!(
        v["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        "8080"
    );
    assert_eq!(v["Config"]["Labels"]["app"], "web");
    assert_eq!(v["Config"]["Env"][0], "X=1");
    assert_eq!(v["Path"], "sleep");
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));

    assert_eq!(
        post(a, &format!("/containers/{}/start", &id[..10]), None)
            .await
            .0,
        204
    );
    assert_eq!(post(a, "/containers/web/start", None).await.0, 304);
    assert_eq!(
        get(a, "/containers/web/json").await.1["State"]["Running"],
        true
    );
    let (s, v) = delete(a, "/containers/web").await;
    assert_eq!(s, 409);
    assert_eq!(
        v["message"],
        format!("You cannot remove a running container {id}. Stop the container before attempting removal or force remove")
    );
    assert_eq!(post(a, "/containers/web/stop?t=1", None).await.0, 204);
    assert_eq!(post(a, "/containers/web/stop", None).await.0, 304);
    let (_, v) = get(a, "/containers/web/json").await;
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(
        post(a, "/containers/web/wait", None).await.1["StatusCode"],
        143
    );
    assert_eq!(delete(a, "/v1.41/containers/web?force=1").await.0, 204);
    let (s, v) = get(a, "/containers/web/json").await;
    assert_eq!(
        (s, v["message"].as_str()),
        (404, Some("No such container: web"))
    );
    assert_eq!(fleet.engine(0).container_count(), 3);

    // force removal of a running container
    let id = fleet.engine(0).create_container("f", "busybox:latest", &[]);
    assert!(fleet.engine(0).start_container(&id));
    assert_eq!(delete(a, "/containers/f?force=true").await.0, 204);
    fleet.stop().await;
}

/// `GET /containers/{id}/top` answers as dockerd 20.10 does (checked against the real
/// daemon): one process row for a running container, 409 naming the full ID for a stopped
/// one, 404 naming the reference for an unknown one; each answer logs a `top` event.
#[actix_rt::test]
async fn top_answers_like_dockerd() {
    let fleet = three().await;
    let a = fleet.addr(0);
    let e = fleet.engine(0);
    let id = e.create_container("topped", "busybox:latest", &[]);
    assert!(e.start_container(&id));
    let mut events = e.subscribe();

    let (s, v) = get(a, &format!("/v1.41/containers/{}/top", &id[..12])).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["Titles"],
        serde_json::json!(["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"])
    );
    let rows = v["Processes"].as_array().expect("Processes");
    assert_eq!(rows.len(), 1, "{v}");
    let row = rows[0].as_array().expect("a row");
    assert_eq!(row.len(), 8, "{v}");
    assert!(row.iter().all(Value::is_string), "every cell a string: {v}");
    let pid = get(a, "/containers/topped/json").await.1["State"]["Pid"].clone();
    assert_eq!(row[1], pid.to_string(), "{v}");
    assert_eq!(row[7], "sh", "the command as created: {v}");
    let ev = events.try_recv().expect("a top event");
    assert_eq!(
        (ev.action.as_str(), ev.actor.id.as_str()),
        ("top", id.as_str())
    );

    let (s, v) = get(a, "/containers/topped/top?ps_args=aux").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Titles"][0], "USER");
    assert_eq!(v["Titles"][10], "COMMAND");
    assert_eq!(v["Processes"][0].as_array().map(Vec::len), Some(11));

    assert!(e.stop_container(&id));
    let (s, v) = get(a, "/containers/topped/top").await;
    assert_eq!(
        (s, v["message"].as_str()),
        (409, Some(format!("Container {id} is not running").as_str()))
    );
    let (s, v) = get(a, "/containers/nope/top").await;
    assert_eq!(
        (s, v["message"].as_str()),
        (404, Some("No such container: nope"))
    );
    fleet.stop().await;
}

#[actix_rt::test]
async fn list_filters() {
    let fleet = three().await;
    let e = fleet.engine(1);
    let a = e.addr();
    let web = e.create_container("web", "busybox", &[("app", "web"), ("tier", "front")]);
    e.start_container(&web);
    e.create_container("db", "alpine:3", &[("app", "db")]);

    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["Names"][0].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = get(a, "/containers/json").await;
    assert_eq!(v.as_array().unwrap().len(), 3); // 2 pre-created running + web
    assert_eq!(names(&v)[0], "/web"); // newest first
    let (_, v) = get(a, "/containers/json?all=1").await;
    assert_eq!(v.as_array().unwrap().len(), 5);
    assert_eq!(v[0]["State"], "created");
    assert_eq!(v[0]["Status"], "Created");
    let q = |f: &str| format!("/containers/json?all=1&filters={}", urlencode(f));
    assert_eq!(
        names(&get(a, &q(r#"{"label":["app=web"]}"#)).await.1),
        vec!["/web"]
    );
    assert_eq!(
        names(&get(a, &q(r#"{"label":["app"]}"#)).await.1),
        vec!["/db", "/web"]
    );
    assert_eq!(
        names(&get(a, &q(r#"{"label":{"tier=front":true}}"#)).await.1),
        vec!["/web"]
    );
    assert_eq!(
        names(&get(a, &q(r#"{"name":["db"]}"#)).await.1),
        vec!["/db"]
    );
    assert_eq!(
        names(&get(a, &q(r#"{"status":["created"]}"#)).await.1),
        vec!["/db"]
    );
    assert_eq!(
        get(a, &q(r#"{"status":["exited"]}"#))
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        names(&get(a, &q(r#"{"ancestor":["alpine:3"]}"#)).await.1),
        vec!["/db"]
    );
    assert_eq!(
        names(
            &get(a, &q(&format!(r#"{{"id":["{}"]}}"#, &web[..8])))
                .await
                .1
        ),
        vec!["/web"]
    );
    assert_eq!(
        get(a, "/containers/json?limit=2")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(get(a, "/containers/json?filters=nope").await.0, 400);

    let (s, imgs) = get(a, "/images/json").await;
    assert_eq!(s, 200);
    assert_eq!(imgs.as_array().unwrap().len(), 2);
    let (s, img) = get(a, "/images/alpine:3/json").await;
    assert_eq!(s, 200);
    let iid = img["Id"].as_str().unwrap();
    assert_eq!(
        get(a, &format!("/images/{}/json", &iid[7..19])).await.0,
        200
    );
    assert_eq!(get(a, "/images/busybox/json").await.0, 200);
    let (s, v) = get(a, "/images/nope:1/json").await;
    assert_eq!(
        (s, v["message"].as_str()),
        (404, Some("No such image: nope:1"))
    );
    fleet.stop().await;
}

#[actix_rt::test]
async fn pull_streams_progress() {
    let fleet = three().await;
    let a = fleet.addr(2);
    let mut r = client()
        .post(format!("http://{a}/images/create?fromImage=redis&tag=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = String::from_utf8(r.body().await.unwrap().to_vec()).unwrap();
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "Status: Downloaded newer image for redis:7");
    assert_eq!(get(a, "/images/redis:7/json").await.0, 200);
    assert_eq!(
        post(a, "/containers/create", Some(r#"{"Image":"redis:7"}"#))
            .await
            .0,
        201
    );
    fleet.stop().await;
}

#[actix_rt::test]
async fn events_stream_pushes_and_replays() {
    let fleet = three().await;
    let e = fleet.engine(0);
    let a = e.addr();
    let mut r = client()
        .get(format!("http://{a}/v1.41/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = e.create_container("ev", "busybox", &[("k", "v")]);
    let chunk = tokio::time::timeout(Duration::from_secs(5), r.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let ev: Value = serde_json::from_slice(chunk.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(ev["Type"], "container");
    assert_eq!(ev["Action"], "create");
    assert_eq!(ev["status"], "create");
    assert_eq!(ev["id"], id);
    assert_eq!(ev["from"], "busybox");
    assert_eq!(ev["scope"], "local");
    assert_eq!(ev["Actor"]["Attributes"]["name"], "ev");
    assert_eq!(ev["Actor"]["Attributes"]["k"], "v");

    // replay with since/until closes at the end; filters apply
    e.start_container(&id);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let f = urlencode(r#"{"event":["start"]}"#);
    let mut r = client()
        .get(format!(
            "http://{a}/events?since={}&until={}&filters={f}",
            now - 60,
            now + 1
        ))
        .send()
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(5), r.body())
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["Action"], "start");
    fleet.stop().await;
}

#[actix_rt::test]
async fn faults_apply_to_every_route() {
    let fleet = three().await;
    let e = fleet.engine(0);
    let a = e.addr();

    e.set_fault(Fault::Error500);
    assert_eq!(get(a, "/info").await.0, 500);
    assert_eq!(get(a, "/_ping").await.0, 500);
    assert_eq!(get(fleet.addr(1), "/info").await.0, 200); // other engines unaffected

    e.set_fault(Fault::Garbage);
    let mut r = client()
        .get(format!("http://{a}/containers/json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_slice::<Value>(&r.body().await.unwrap()).is_err());

    e.set_fault(Fault::Slow(Duration::from_millis(300)));
    let t = std::time::Instant::now();
    assert_eq!(get(a, "/info").await.0, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));

    e.set_fault(Fault::Down);
    let fresh = awc::Client::builder()
        .timeout(Duration::from_millis(500))
        .finish();
    assert!(fresh.get(format!("http://{a}/_ping")).send().await.is_err());

    e.set_fault(Fault::None);
    assert_eq!(get(a, "/_ping").await.0, 200);
    fleet.stop().await;
}

#[actix_rt::test]
async fn two_thousand_engines_in_one_process() {
    let n = 2000;
    let engines = (0..n)
        .map(|i| EngineConfig::new(format!("sim-{i}")).containers(30))
        .collect();
    let fleet = SimFleet::start(engines, FleetOptions::default())
        .await
        .expect("start");
    let addrs = fleet.addrs();
    assert_eq!(addrs.len(), n);
    let c = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    for chunk in addrs.chunks(100).enumerate().collect::<Vec<_>>() {
        let (ci, chunk) = chunk;
        let futs = chunk.iter().enumerate().map(|(j, addr)| {
            let c = c.clone();
            let i = ci * 100 + j;
            async move {
                let mut r = c
                    .get(format!("http://{addr}/_ping"))
                    .send()
                    .await
                    .expect("ping");
                assert_eq!(r.body().await.unwrap(), "OK");
                let mut r = c
                    .get(format!("http://{addr}/v1.41/info"))
                    .send()
                    .await
                    .expect("info");
                let info: Value = r.json().limit(1 << 20).await.unwrap();
                assert_eq!(info["Name"], format!("sim-{i}"));
                assert_eq!(info["Containers"], 30);
            }
        });
        futures_util::future::join_all(futs).await;
    }
    fleet.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
