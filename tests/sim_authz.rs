//! Per-client authorization (`--authz-policy`) end to end over simulated engines, with
//! mutual TLS and four client certificates: tenants `a` and `b`, a read-only `auditor`,
//! and a `stranger` the policy does not list. Refusals are 403s counted by rule and nothing
//! reaches an engine; another tenant's containers are 404s and absent from lists; creates
//! carry the forced label and constraints; hijacked attach asks the same guard; a SIGHUP
//! reload applies from the next request. (The simulated engine keeps no networks or
//! volumes: their labels and hiding are in tests/real_authz.rs.)

#![allow(
    clippy::disallowed_methods,
    reason = "test set-up (certificates, the policy file) blocks only the test's own thread; Shoal and the engines under test are served apart"
)]

mod sim_fixture;
// The set-up shared with tests/real_authz.rs, without the rest of tests/support.
#[allow(dead_code, reason = "shared with tests/real_authz.rs")]
#[path = "support/authz.rs"]
mod authz;
#[allow(dead_code, reason = "the real tests use more of the CA than this file")]
#[path = "support/pki.rs"]
mod pki;

use authz::{AuthzPki, POLICY};
use serde_json::{json, Value};
use shoal::authz::{AuthzConfig, Policy};
use shoal::config::{EngineSource, ListenAddr, ManageConfig};
use shoal::discovery::Discovery;
use shoal::server::{self, Listener};
use shoal::tls::{ApiTlsFiles, ClientAuth, TlsConfig};
use shoal_actors::engine::tls::{EngineTls, EngineTlsFiles};
use shoal_sim::{EngineConfig, FleetOptions, SimFleet};
use sim_fixture::{fast_cluster_config, tcp};
use std::time::{Duration, Instant};

/// An HTTPS client of Shoal showing `cn`'s certificate.
fn client(certs: &AuthzPki, cn: &str) -> awc::Client {
    let files = certs.client(cn);
    let tls = EngineTls::load(&EngineTlsFiles {
        ca: files.ca.clone(),
        cert_key: Some((files.cert.clone(), files.key.clone())),
    })
    .unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(tls.client_config()))
        .timeout(Duration::from_secs(10))
        .finish()
}

async fn call(c: &awc::Client, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let req = c.request(method.parse().unwrap(), url);
    let mut r = match body {
        Some(b) => req.send_json(&b).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let bytes = r.body().limit(1 << 20).await.unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (r.status().as_u16(), v)
}

fn denied(rule: &str) -> Value {
    json!({ "message": format!("authorization denied by shoal policy: {rule}") })
}

#[actix_rt::test]
async fn tenants_read_only_clients_and_create_rules() {
    let dir = tempfile::tempdir().unwrap();
    let certs = AuthzPki::new(&dir.path().join("pki"));
    let policy_path = dir.path().join("policy.toml");
    std::fs::write(&policy_path, POLICY).unwrap();
    let fleet = SimFleet::start(
        vec![
            EngineConfig::new("e1").label("pool", "web"),
            EngineConfig::new("e2").label("pool", "batch"),
        ],
        FleetOptions::default(),
    )
    .await
    .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let files = ApiTlsFiles {
        auth: ClientAuth::Required,
        ca: Some(certs.shoal.ca.clone()),
        cert: certs.shoal.cert.clone(),
        key: certs.shoal.key.clone(),
    };
    let config = ManageConfig {
        replication: None,
        listen: ListenAddr::Tcp(format!("127.0.0.1:{port}")),
        engines: EngineSource::Discovery(Discovery::Nodes(
            fleet.addrs().into_iter().map(tcp).collect(),
        )),
        cluster: fast_cluster_config(),
        observe: Default::default(),
        placement: Default::default(),
        tls: TlsConfig::load(Some(&files), None, false).unwrap(),
        api: shoal::api::ApiConfig {
            authz: Some(AuthzConfig {
                policy: Policy::load(&policy_path).unwrap(),
                path: policy_path.clone(),
            }),
            ..Default::default()
        },
    };
    let running = server::start(config, Listener::Tcp(listener))
        .await
        .unwrap();
    let handle = running.server.handle();
    actix_rt::spawn(running.server);
    let base = format!("https://127.0.0.1:{port}/v1.41");
    let (a, b, auditor, stranger) = (
        client(&certs, "team-a"),
        client(&certs, "team-b"),
        client(&certs, "auditor"),
        client(&certs, "stranger"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, info) = call(&auditor, "GET", &format!("{base}/info"), None).await;
        if info.to_string().matches("Healthy").count() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "engines never healthy: {info}");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let engines = || fleet.engine(0).container_count() + fleet.engine(1).container_count();

    // An unlisted identity under default = "deny".
    let (s, v) = call(&stranger, "GET", &format!("{base}/containers/json"), None).await;
    assert_eq!((s, v), (403, denied("default")));

    // Tenant a creates: its label is forced over the one it wrote, its constraint applied.
    let (s, v) = call(
        &a,
        "POST",
        &format!("{base}/containers/create?name=web-a"),
        Some(json!({"Image": "busybox", "Cmd": ["sleep", "1000"],
                    "Labels": {"com.shoal.tenant": "b"}})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(fleet.engine(1).container_count(), 1, "pool==batch is e2");
    let (s, inspected) = call(
        &auditor,
        "GET",
        &format!("{base}/containers/web-a/json"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{inspected}");
    assert_eq!(inspected["Config"]["Labels"]["com.shoal.tenant"], "a");
    let (s, own) = call(&a, "GET", &format!("{base}/containers/web-a/json"), None).await;
    assert_eq!(s, 200, "{own}");

    // Tenant b: a's container is not there, in the words of a missing one.
    let (_, listed) = call(&b, "GET", &format!("{base}/containers/json?all=1"), None).await;
    assert_eq!(listed, json!([]));
    let (_, listed) = call(&a, "GET", &format!("{base}/containers/json?all=1"), None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    // `/info` counts a tenant's own containers only.
    for (c, n) in [(&a, 1), (&b, 0), (&auditor, 1)] {
        let (_, info) = call(c, "GET", &format!("{base}/info"), None).await;
        assert_eq!(info["Containers"], n, "{info}");
    }
    let missing = json!({"message": "No such container: web-a"});
    for (m, p) in [
        ("GET", "/containers/web-a/json"),
        ("GET", "/containers/web-a/logs?stdout=1"),
        ("POST", "/containers/web-a/stop"),
        ("POST", "/containers/web-a/exec"),
        ("DELETE", "/containers/web-a?force=1"),
        ("GET", "/containers/web-a/attach/ws?stream=1"),
        // The guard reads the path as the router does: percent-encoded, it is the same
        // container (dockerd decodes it too).
        ("GET", "/containers/w%65b-a/json"),
        ("POST", "/containers/web%2Da/stop"),
        ("DELETE", "/containers/w%65b-a?force=1"),
        // A link removal names the parent, `web-a`, not a container `web-a/db`.
        ("DELETE", "/containers/web-a/db?link=1"),
    ] {
        let body = (p.ends_with("/exec")).then(|| json!({"Cmd": ["true"]}));
        let (s, v) = call(&b, m, &format!("{base}{p}"), body).await;
        assert_eq!((s, &v), (404, &missing), "{m} {p}");
    }
    let (s, v) = call(&b, "GET", &format!("{base}/containers/nothing/json"), None).await;
    assert_eq!(
        (s, v),
        (404, json!({"message": "No such container: nothing"}))
    );
    // An exec needs allow_exec however its path is spelt.
    let c = client(&certs, "team-c");
    for p in ["/containers/web-a/exec", "/containers/web-a/ex%65c"] {
        let (s, v) = call(
            &c,
            "POST",
            &format!("{base}{p}"),
            Some(json!({"Cmd": ["true"]})),
        )
        .await;
        assert_eq!((s, v), (403, denied("allow_exec")), "{p}");
    }
    // b's hijacked attach is taken by the gate, which asks the same guard, about the
    // container the router would name.
    for p in [
        "/containers/web-a/attach?stream=1",
        "/containers/w%65b-a/att%61ch?stream=1",
    ] {
        let (s, v) = call(&b, "POST", &format!("{base}{p}"), None).await;
        assert_eq!((s, v), (404, missing.clone()), "{p}");
    }
    // Containers named outside the path: a commit's query, a network connect's body.
    let (s, v) = call(
        &b,
        "POST",
        &format!("{base}/commit?container=web-a&repo=x"),
        None,
    )
    .await;
    assert_eq!((s, v), (404, missing.clone()));
    let (s, v) = call(
        &b,
        "POST",
        &format!("{base}/networks/bridge/connect"),
        Some(json!({"Container": "web-a"})),
    )
    .await;
    assert_eq!((s, v), (404, missing.clone()));
    // A build in the host's network namespace needs allow_host_namespaces.
    let (s, v) = call(&a, "POST", &format!("{base}/build?networkmode=host"), None).await;
    assert_eq!((s, v), (403, denied("allow_host_namespaces")));
    // A privileged exec needs allow_privileged, even in one's own container.
    let (s, v) = call(
        &a,
        "POST",
        &format!("{base}/containers/web-a/exec"),
        Some(json!({"Cmd": ["true"], "Privileged": true})),
    )
    .await;
    assert_eq!((s, v), (403, denied("allow_privileged")));
    // b cannot borrow a's volumes either.
    let before = engines();
    let (s, v) = call(
        &b,
        "POST",
        &format!("{base}/containers/create"),
        Some(json!({"Image": "busybox", "HostConfig": {"VolumesFrom": ["web-a"]}})),
    )
    .await;
    assert_eq!((s, v), (403, denied("tenant")));
    assert_eq!(engines(), before);

    // The auditor reads everything and changes nothing.
    let (_, listed) = call(
        &auditor,
        "GET",
        &format!("{base}/containers/json?all=1"),
        None,
    )
    .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let before_denials = shoal_actors::metrics::authz_denials("auditor", "read_only");
    for (m, p, body) in [
        (
            "POST",
            "/containers/create",
            Some(json!({"Image": "busybox"})),
        ),
        ("POST", "/containers/web-a/start", None),
        ("DELETE", "/containers/web-a", None),
        (
            "POST",
            "/containers/web-a/exec",
            Some(json!({"Cmd": ["true"]})),
        ),
        ("POST", "/containers/web-a/attach?stream=1", None),
        ("GET", "/containers/web-a/attach/ws?stream=1", None),
    ] {
        let (s, v) = call(&auditor, m, &format!("{base}{p}"), body).await;
        assert_eq!((s, v), (403, denied("read_only")), "{m} {p}");
    }
    assert_eq!(
        shoal_actors::metrics::authz_denials("auditor", "read_only"),
        before_denials + 6
    );
    assert_eq!(engines(), before);

    // Create rules: refused with 403 and nothing created on any engine.
    for (host, rule) in [
        (json!({"Privileged": true}), "allow_privileged"),
        (json!({"Binds": ["/:/host"]}), "allow_host_mounts"),
        (
            json!({"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]}),
            "allow_host_mounts",
        ),
        (json!({"NetworkMode": "host"}), "allow_host_namespaces"),
        (json!({"PidMode": "host"}), "allow_host_namespaces"),
        (json!({"CapAdd": ["SYS_ADMIN"]}), "allow_capabilities"),
        (
            json!({"Devices": [{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse"}]}),
            "allow_devices",
        ),
    ] {
        let (s, v) = call(
            &a,
            "POST",
            &format!("{base}/containers/create"),
            Some(json!({"Image": "busybox", "HostConfig": host})),
        )
        .await;
        assert_eq!((s, v), (403, denied(rule)), "{host}");
    }
    // The same rule with the path and the keys spelt otherwise (the router decodes the
    // one, Go's JSON folds the other's case): still the create it is.
    let (s, v) = call(
        &a,
        "POST",
        &format!("{base}/containers/cre%61te"),
        Some(json!({"image": "busybox", "hostconfig": {"privileged": true}})),
    )
    .await;
    assert_eq!((s, v), (403, denied("allow_privileged")));
    assert_eq!(engines(), before);

    // A reload on SIGHUP: the auditor may now write, from its next request.
    std::fs::write(
        &policy_path,
        POLICY.replace("read_only = true", "read_only = false"),
    )
    .unwrap();
    hangup();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (s, _) = call(
            &auditor,
            "POST",
            &format!("{base}/containers/web-a/stop?t=0"),
            None,
        )
        .await;
        if s == 204 || s == 304 {
            break;
        }
        assert_eq!(s, 403);
        assert!(Instant::now() < deadline, "the reload never applied");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    // A bad file keeps the policy in force.
    std::fs::write(&policy_path, "default = \"nope\"").unwrap();
    hangup();
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = call(
        &auditor,
        "POST",
        &format!("{base}/containers/web-a/start"),
        None,
    )
    .await;
    assert!(s == 204 || s == 304, "{s}");
    let (s, _) = call(&stranger, "GET", &format!("{base}/_ping"), None).await;
    assert_eq!(s, 403);
    handle.stop(false).await;
}

/// Sends SIGHUP to this process (Shoal's handler is installed: it does not end it).
fn hangup() {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
