//! Routes where Shoal must answer exactly as one engine does (issue 15), through Shoal in
//! front of three real engines, with the clients that showed each gap: the docker CLI and
//! raw HTTP compared with an engine's own answer; `real_compat_py.rs` does the same with
//! the Python SDK.
//!
//! - swarm-mode routes: an engine's 503 and text, `swarm init`/`join` refused;
//! - BuildKit's routes: a 400 that says what works instead;
//! - merged progress (pull, load, import): the engine's texts, a `node` object, one line
//!   for what every node wrote, one bar per node and layer;
//! - import from the body and from a URL, on every node;
//! - `/distribution/{name}/json`, `/info`'s `Images`, a volume's create answer, inspect of a
//!   name no node has.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use serde_json::Value;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::time::Duration;
use support::http::{request, Answer};
use support::registry::Registry;
use support::{docker_cli, docker_cli_timeout, DockerOutput, RealCluster, ShoalDaemon};

const T: Duration = Duration::from_secs(30);
const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

fn http(host: &str, method: &str, path: &str, body: Option<&str>) -> Answer {
    request(host, method, path, body.map(str::as_bytes), T)
        .unwrap_or_else(|e| panic!("{method} {path} on {host}: {e}"))
}

/// The JSON lines of a progress answer.
fn lines(a: &Answer) -> Vec<Value> {
    a.text()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn images_on(cluster: &RealCluster, reference: &str) -> Vec<String> {
    cluster
        .engines()
        .iter()
        .filter(|e| e.docker(&["image", "inspect", reference]).success())
        .map(|e| e.name().to_string())
        .collect()
}

/// `POST /images/create?fromSrc=<url>&repo=..&tag=..` through Shoal, with `tar` served at
/// the URL (on the cluster's host address) to the first `serve` engines that ask.
fn import_from_url(
    cluster: &RealCluster,
    host: &str,
    tar: &[u8],
    reference: &str,
    serve: usize,
) -> Answer {
    let server = std::net::TcpListener::bind((cluster.host_ip(), 0)).expect("bind");
    let url = format!("http://{}/rootfs.tar", server.local_addr().unwrap());
    let tar = tar.to_vec();
    let serving = std::thread::spawn(move || {
        for _ in 0..serve {
            let Ok((mut s, _)) = server.accept() else {
                return;
            };
            let mut head = [0u8; 4096];
            let _ = s.read(&mut head);
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
                tar.len()
            );
            let _ = s.write_all(&tar);
        }
        // Dropped: a later engine's connection is refused or reset.
    });
    let (repo, tag) = reference.split_once(':').expect("repo:tag");
    let a = request(
        host,
        "POST",
        &format!(
            "/v1.41/images/create?fromSrc={}&repo={repo}&tag={tag}",
            url.replace(':', "%3A").replace('/', "%2F")
        ),
        None,
        Duration::from_secs(60),
    )
    .expect("import from a URL");
    serving.join().unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    a
}

#[test]
fn standalone_answers_progress_and_import() {
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("engines start");
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let host = shoal.host();
    let engine = cluster.engines()[0].tcp_addr();
    let docker = |args: &[&str]| -> DockerOutput { docker_cli(host, args) };

    // --- swarm mode: what an engine not in a swarm answers, byte for byte ------------
    for (method, path, body) in [
        ("GET", "/v1.41/swarm", None),
        ("POST", "/v1.41/swarm/leave?force=1", None),
        ("GET", "/v1.41/swarm/unlockkey", None),
        ("POST", "/v1.41/swarm/update?version=1", Some("{}")),
        ("POST", "/v1.41/swarm/unlock", Some("{}")),
        ("GET", "/v1.41/nodes", None),
        ("GET", "/v1.41/nodes/x", None),
        ("DELETE", "/v1.41/nodes/x", None),
        ("GET", "/v1.41/services", None),
        ("GET", "/v1.41/services/x", None),
        ("POST", "/v1.41/services/create", Some("{}")),
        ("GET", "/v1.41/services/x/logs?stdout=1", None),
        ("GET", "/v1.41/tasks", None),
        ("GET", "/v1.41/tasks/x", None),
        ("GET", "/v1.41/secrets", None),
        ("POST", "/v1.41/secrets/create", Some("{}")),
        ("GET", "/v1.41/configs", None),
        ("DELETE", "/v1.41/configs/x", None),
    ] {
        let want = http(&engine, method, path, body);
        let got = http(host, method, path, body);
        assert_eq!(
            want.status,
            503,
            "the engine: {method} {path}: {}",
            want.text()
        );
        assert_eq!(
            (got.status, got.json()),
            (want.status, want.json()),
            "{method} {path}"
        );
    }
    for path in ["/v1.41/swarm/init", "/v1.41/swarm/join"] {
        let a = http(host, "POST", path, Some(r#"{"ListenAddr":"0.0.0.0:2377"}"#));
        assert_eq!(a.status, 503, "{path}: {}", a.text());
        let msg = a.json()["message"].as_str().unwrap_or("").to_string();
        assert!(msg.contains("standalone cluster manager"), "{path}: {msg}");
    }
    // The CLI prints them.
    for (args, text) in [
        (&["node", "ls"][..], NOT_A_MANAGER),
        (&["service", "ls"][..], NOT_A_MANAGER),
        (&["secret", "ls"][..], NOT_A_MANAGER),
        (&["config", "ls"][..], NOT_A_MANAGER),
        (&["swarm", "unlock-key"][..], NOT_A_MANAGER),
        (
            &["swarm", "leave", "--force"][..],
            "This node is not part of a swarm",
        ),
        (&["swarm", "init"][..], "standalone cluster manager"),
    ] {
        let o = docker(args);
        assert!(!o.success() && o.stderr.contains(text), "{args:?}: {o}");
    }

    // --- BuildKit: a Docker-shaped refusal that says what works -----------------------
    for (path, body) in [
        ("/v1.41/session", None),
        ("/v1.41/grpc", None),
        ("/v1.41/build?version=2", Some("")),
    ] {
        let a = http(host, "POST", path, body);
        assert_eq!(a.status, 400, "{path}: {}", a.text());
        let msg = a.json()["message"].as_str().unwrap_or("").to_string();
        assert!(msg.contains("DOCKER_BUILDKIT=0"), "{path}: {msg}");
    }

    // --- plugins: 501 with the reason, in words `docker inspect` skips ------------------
    let a = http(host, "GET", "/v1.41/plugins", None);
    assert_eq!(a.status, 501, "{}", a.text());
    assert!(a.text().contains("not supported"), "{}", a.text());
    let o = docker(&["inspect", "nothing-here"]);
    assert!(
        !o.success() && o.stderr.contains("No such object: nothing-here"),
        "{o}"
    );

    // --- a name no node has: 404, as the engine's redirect leads to ---------------------
    let path = "/v1.41/images/gensokyo.jp//kirisame/json";
    let (a, want) = (
        http(host, "GET", path, None),
        http(&engine, "GET", path, None),
    );
    assert_eq!((a.status, want.status), (301, 301), "{}", a.text());
    let clean = "/v1.41/images/gensokyo.jp/kirisame/json";
    let (a, want) = (
        http(host, "GET", clean, None),
        http(&engine, "GET", clean, None),
    );
    assert_eq!((a.status, a.json()), (404, want.json()));
    let o = docker(&["image", "inspect", "gensokyo.jp//kirisame"]);
    assert!(
        !o.success() && o.stderr.contains("No such image: gensokyo.jp/kirisame"),
        "{o}"
    );

    // --- a volume's create answer is its list entry ---------------------------------
    let made = http(
        host,
        "POST",
        "/volumes/create",
        Some(r#"{"Name":"samevol"}"#),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let list = http(host, "GET", "/volumes", None).json();
    let entry = list["Volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["Name"] == "samevol"))
        .cloned()
        .unwrap_or_else(|| panic!("samevol not listed: {list}"));
    assert_eq!(made.json(), entry);
    let again = http(
        host,
        "POST",
        "/volumes/create",
        Some(r#"{"Name":"samevol"}"#),
    );
    assert_eq!(again.json(), entry, "create of an existing volume");

    // --- import from the body: every node, with repo, tag, changes and message ------------
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    docker(&["create", "--name", "exp", "busybox"]).expect_success();
    docker(&["export", "-o", rootfs.to_str().unwrap(), "exp"]).expect_success();
    docker(&["rm", "exp"]).expect_success();
    let o = docker_cli_timeout(
        host,
        &[
            "import",
            "--change",
            "CMD [\"echo\", \"imported\"]",
            "--message",
            "from the body",
            rootfs.to_str().unwrap(),
            "imp:body",
        ],
        Duration::from_secs(60),
    )
    .expect_success();
    assert!(o.stdout.starts_with("sha256:"), "{o}");
    assert_eq!(
        images_on(&cluster, "imp:body").len(),
        3,
        "imported everywhere"
    );
    for e in cluster.engines() {
        let o = e
            .docker(&["image", "inspect", "--format", "{{.Comment}}", "imp:body"])
            .expect_success();
        assert_eq!(o.stdout.trim(), "from the body", "{}", e.name());
    }
    let o = docker(&["run", "--rm", "imp:body"]).expect_success();
    assert_eq!(o.stdout, "imported\n", "{o}");

    // --- import from a URL: each node fetches it ---------------------------------------
    let tar = std::fs::read(&rootfs).unwrap();
    let a = import_from_url(&cluster, host, &tar, "imp:url", 3);
    let progress = lines(&a);
    assert!(
        progress.iter().all(|l| l.get("error").is_none()),
        "{progress:?}"
    );
    assert_eq!(images_on(&cluster, "imp:url").len(), 3, "{progress:?}");
    // One node cannot fetch it: the others import it, the stream ends with an error line
    // that names that node.
    let a = import_from_url(&cluster, host, &tar, "imp:partial", 2);
    let progress = lines(&a);
    let errors: Vec<&Value> = progress
        .iter()
        .filter(|l| l.get("error").is_some())
        .collect();
    assert_eq!(errors.len(), 1, "{progress:?}");
    let last = progress.last().expect("lines");
    let failed = last["node"]["Name"].as_str().unwrap_or("").to_string();
    assert!(failed.starts_with("node-"), "{last}");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("{failed}: "))),
        "{last}"
    );
    let having = images_on(&cluster, "imp:partial");
    assert_eq!(having.len(), 2, "{having:?} {progress:?}");
    assert!(!having.contains(&failed), "{having:?} {failed}");

    // --- load: the engine's own lines, once; the node in a field -----------------------
    let saved = dir.path().join("saved.tar");
    docker(&["tag", "busybox", "loadme:1"]).expect_success();
    docker(&["save", "-o", saved.to_str().unwrap(), "loadme:1"]).expect_success();
    docker(&["rmi", "loadme:1"]).expect_success();
    let o = docker_cli_timeout(
        host,
        &["load", "-i", saved.to_str().unwrap()],
        Duration::from_secs(60),
    )
    .expect_success();
    assert_eq!(o.stdout.matches("Loaded image: loadme:1").count(), 1, "{o}");
    assert_eq!(images_on(&cluster, "loadme:1").len(), 3);

    // An engine's own error: its `error` text as written, the node named where the CLI
    // reads it, after every other line.
    let want = lines(&http(
        &engine,
        "POST",
        "/v1.41/images/load",
        Some("garbage"),
    ));
    let got = lines(&http(host, "POST", "/v1.41/images/load", Some("garbage")));
    assert_eq!(got.len(), 3, "one error line per node: {got:?}");
    let mut failed = HashSet::new();
    for l in &got {
        let node = l["node"]["Name"].as_str().unwrap_or("");
        assert_eq!(l["error"], want[0]["error"], "{l}");
        assert_eq!(
            l["errorDetail"]["message"],
            format!(
                "{node}: {}",
                want[0]["errorDetail"]["message"].as_str().unwrap_or("")
            ),
            "{l}"
        );
        failed.insert(node.to_string());
    }
    assert_eq!(failed.len(), 3, "{got:?}");
    let garbage = dir.path().join("garbage.tar");
    std::fs::write(&garbage, "garbage").unwrap();
    let o = docker(&["load", "-i", garbage.to_str().unwrap()]);
    assert!(!o.success() && o.stderr.contains("node-"), "{o}");

    // --- pull: one bar per node and layer, shared lines once, texts as written ---------
    let registry = Registry::start(&cluster);
    let remote = format!("{}/bb", registry.addr);
    cluster.engines()[0]
        .docker(&["tag", "busybox", &remote])
        .expect_success();
    cluster.engines()[0]
        .docker_timeout(&["push", &remote], Duration::from_secs(60))
        .expect_success();
    cluster.engines()[0]
        .docker(&["rmi", &remote])
        .expect_success();
    let a = request(
        host,
        "POST",
        &format!("/v1.41/images/create?fromImage={remote}&tag=latest"),
        None,
        Duration::from_secs(60),
    )
    .expect("pull");
    assert_eq!(a.status, 200, "{}", a.text());
    let progress = lines(&a);
    let names: HashSet<&str> = ["node-1", "node-2", "node-3"].into();
    for l in &progress {
        let node = l["node"]["Name"].as_str().unwrap_or("");
        assert!(names.contains(node), "a line without its node: {l}");
        if let Some(id) = l["id"].as_str() {
            assert!(id.starts_with(&format!("{node}: ")), "{l}");
        }
        for k in ["status", "stream", "error"] {
            if let Some(text) = l[k].as_str() {
                assert!(!text.starts_with("node-"), "{k} rewritten: {l}");
            }
        }
    }
    let status = format!("Status: Downloaded newer image for {remote}:latest");
    assert_eq!(
        progress.iter().filter(|l| l["status"] == status).count(),
        1,
        "{progress:?}"
    );
    for node in &names {
        assert!(
            progress.iter().any(|l| l["id"] == format!("{node}: latest")
                && l["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Pulling from"))),
            "no bar of {node}: {progress:?}"
        );
    }
    assert_eq!(images_on(&cluster, &remote).len(), 3);
    // The CLI draws it.
    docker(&["rmi", &remote]).expect_success();
    let o = docker_cli_timeout(host, &["pull", &remote], Duration::from_secs(60)).expect_success();
    assert!(o.stdout.contains("node-2: "), "{o}");
    assert!(o.stdout.contains(&status), "{o}");

    // --- distribution: a healthy node asks the registry ----------------------------------
    let path = format!("/v1.41/distribution/{remote}:latest/json");
    let a = http(host, "GET", &path, None);
    let want = http(&engine, "GET", &path, None);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.json(), want.json());

    // --- /info counts an image once, as /images/json lists it ---------------------------
    let listed: HashSet<String> = http(host, "GET", "/images/json?all=1", None)
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|i| i["Id"].as_str().map(str::to_string))
        .collect();
    let info = http(host, "GET", "/info", None).json();
    assert_eq!(info["Images"], listed.len(), "{listed:?}");
}
