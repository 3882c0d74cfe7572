//! `GET /events` of a Shoal in front of simulated engines: one merged stream with the node
//! of each event, `since` replay, `until` ending the stream, filters, Shoal's own node
//! events, and a slow client cut off without costing a fast one a single event.

mod sim_fixture;

use futures_util::StreamExt;
use serde_json::Value;
use shoal::discovery::Discovery;
use shoal_actors::events::HubStats;
use shoal_sim::{EngineConfig, Fault};
use sim_fixture::{tcp, SimCluster, Started};
use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A live `/events` response read one JSON object at a time.
struct Events {
    resp: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>>>,
    >,
    buf: Vec<u8>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn query(filters: &str) -> String {
    format!("filters={}", url_escape(filters))
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn open(c: &Started, path_and_query: &str) -> Events {
    let client = awc::Client::builder().disable_timeout().finish();
    let resp = client
        .get(format!("{}{}", c.base, path_and_query))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path_and_query}: {e}"));
    assert_eq!(resp.status().as_u16(), 200, "{path_and_query}");
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        "application/json"
    );
    Events {
        resp: Box::pin(resp.timeout(Duration::from_secs(3600))),
        buf: Vec::new(),
    }
}

impl Events {
    /// The next event, or `None` when the stream ended or `secs` passed.
    async fn next(&mut self, secs: u64) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).unwrap_or_else(|e| {
                    panic!("not JSON ({e}): {}", String::from_utf8_lossy(&line))
                }));
            }
            match tokio::time::timeout_at(deadline, self.resp.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// Events until one satisfies `pred` (returned), panicking after `secs`.
    async fn until(&mut self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs() + 1;
            match self.next(left).await {
                Some(ev) if pred(&ev) => return ev,
                Some(_) => {}
                None => panic!("no event {what} within {secs}s"),
            }
            if Instant::now() > deadline {
                panic!("no event {what} within {secs}s");
            }
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The whole body of a finite `/events` request (one with `until`), as events.
async fn finite(c: &Started, path_and_query: &str) -> Vec<Value> {
    let a = c.get(path_and_query).await;
    assert_eq!(
        a.status,
        200,
        "{path_and_query}: {}",
        String::from_utf8_lossy(&a.body)
    );
    a.body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn ids(evs: &[Value]) -> BTreeSet<String> {
    evs.iter()
        .map(|e| s(&e["Actor"]["ID"]).to_string())
        .collect()
}

#[actix_rt::test]
async fn events_of_several_engines_arrive_merged_with_their_node() {
    let c = SimCluster::new()
        .engine(EngineConfig::new("n1"))
        .engine(EngineConfig::new("n2"))
        .engine(EngineConfig::new("n3"))
        .start()
        .await;
    c.wait_healthy(3).await;
    let mut plain = open(
        &c,
        &format!("/events?{}", query(r#"{"type":["container"]}"#)),
    )
    .await;
    let mut versioned = open(
        &c,
        &format!("/v1.41/events?{}", query(r#"{"type":["container"]}"#)),
    )
    .await;
    for i in 0..3 {
        c.fleet.engine(i).create_container(
            &format!("web{i}"),
            "busybox:latest",
            &[("tier", "front")],
        );
    }
    let view = c.view.borrow().clone();
    let read = view.read();
    for stream in [&mut plain, &mut versioned] {
        let mut seen = BTreeSet::new();
        while seen.len() < 3 {
            let ev = stream
                .until(10, "container create", |e| e["Action"] == "create")
                .await;
            let name = s(&ev["Actor"]["Attributes"]["name"]).to_string();
            let i: usize = name.trim_start_matches("web").parse().unwrap();
            let node = &ev["node"];
            assert_eq!(s(&node["Name"]), format!("n{}", i + 1), "{ev}");
            assert_eq!(s(&node["Addr"]), c.fleet.addr(i).to_string());
            assert_eq!(s(&node["Ip"]), "127.0.0.1");
            let facts = read
                .nodes
                .iter()
                .find(|n| *n.name == *s(&node["Name"]))
                .and_then(|n| n.snapshot.facts.clone())
                .unwrap();
            assert_eq!(s(&node["Id"]), facts.id);
            // The engine's own fields pass unchanged.
            assert_eq!(ev["Type"], "container");
            assert_eq!(ev["status"], "create");
            assert_eq!(ev["Actor"]["Attributes"]["tier"], "front");
            assert!(ev["timeNano"].as_i64().unwrap() > 0);
            seen.insert(name);
        }
    }
    let stats = c.hub.send(HubStats).await.unwrap();
    assert_eq!(stats.subscribers, 2);
    assert_eq!(stats.dropped_subscribers, 0);
}

/// Emits three known events across two engines and answers the time window around them.
async fn three_events(c: &Started) -> (f64, f64) {
    let mut live = open(c, "/events").await;
    let t0 = unix_now();
    c.fleet.engine(0).emit_event(
        "start",
        "aaa1",
        &[
            ("name", "web"),
            ("image", "busybox:latest"),
            ("tier", "front"),
        ],
    );
    c.fleet.engine(1).emit_event(
        "start",
        "bbb2",
        &[("name", "db"), ("image", "postgres:16"), ("tier", "back")],
    );
    c.fleet.engine(1).emit_event(
        "die",
        "ccc3",
        &[("name", "web"), ("image", "busybox:latest")],
    );
    let mut got = BTreeSet::new();
    while got.len() < 3 {
        let ev = live
            .until(10, "of the three", |e| {
                ["aaa1", "bbb2", "ccc3"].contains(&s(&e["Actor"]["ID"]))
            })
            .await;
        got.insert(s(&ev["Actor"]["ID"]).to_string());
    }
    (t0, unix_now())
}

fn two() -> SimCluster {
    SimCluster::new()
        .engine(EngineConfig::new("n1"))
        .engine(EngineConfig::new("n2"))
}

#[actix_rt::test]
async fn since_replays_and_until_ends_the_stream() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    let (t0, t1) = three_events(&c).await;

    // Both in the past: the replay, then the end.
    let past = finite(&c, &format!("/events?since={t0:.9}&until={t1:.9}")).await;
    assert_eq!(
        ids(&past),
        ["aaa1", "bbb2", "ccc3"].map(String::from).into()
    );
    let by_id = |id: &str| {
        past.iter()
            .find(|e| e["Actor"]["ID"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("aaa1")["node"]["Name"], "n1");
    assert_eq!(by_id("ccc3")["node"]["Name"], "n2");

    // `until` alone replays the ring up to it; a duration and RFC 3339 work as times.
    let upto = finite(&c, &format!("/events?until={t1:.3}")).await;
    assert!(ids(&upto).is_superset(&ids(&past)));
    let by_duration = finite(&c, "/events?since=1m&until=0s").await;
    assert!(ids(&by_duration).is_superset(&ids(&past)));
    let after = finite(&c, &format!("/events?since={:.9}&until=0s", t1 + 0.001)).await;
    assert!(ids(&after).is_disjoint(&ids(&past)), "{after:?}");
    let rfc = finite(&c, "/events?since=2000-01-01T00:00:00Z&until=2000-01-02").await;
    assert!(rfc.is_empty());

    // `until` in the future: the replay, live events, then a clean end at `until`.
    let started = Instant::now();
    let mut s2 = open(
        &c,
        &format!("/events?since={t0:.9}&until={:.3}", unix_now() + 1.5),
    )
    .await;
    c.fleet
        .engine(0)
        .emit_event("stop", "ddd4", &[("name", "web")]);
    let mut got = Vec::new();
    while let Some(ev) = s2.next(10).await {
        got.push(ev);
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1200) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert!(ids(&got).is_superset(&["aaa1", "bbb2", "ccc3", "ddd4"].map(String::from).into()));
    // The stream ended by itself: the subscriber is gone.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = c.hub.send(HubStats).await.unwrap();
    assert_eq!(stats.dropped_subscribers, 0);
}

#[actix_rt::test]
async fn filters_select_events_and_bad_ones_are_docker_errors() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    let (t0, t1) = three_events(&c).await;
    let window = format!("since={t0:.9}&until={t1:.9}");
    let cases: &[(&str, &[&str])] = &[
        (r#"{"container":["web"]}"#, &["aaa1", "ccc3"]),
        (r#"{"container":["n1/web"]}"#, &["aaa1"]),
        (r#"{"container":["bbb"]}"#, &["bbb2"]),
        (r#"{"image":["busybox"]}"#, &["aaa1", "ccc3"]),
        (r#"{"image":["postgres:16"]}"#, &["bbb2"]),
        (r#"{"label":["tier=front"]}"#, &["aaa1"]),
        (r#"{"label":["tier"]}"#, &["aaa1", "bbb2"]),
        (r#"{"node":["n2"]}"#, &["bbb2", "ccc3"]),
        (r#"{"event":["die"]}"#, &["ccc3"]),
        (r#"{"event":{"start":true}}"#, &["aaa1", "bbb2"]),
        (r#"{"type":["container"],"node":["n1"]}"#, &["aaa1"]),
        (r#"{"type":["image"]}"#, &[]),
        (r#"{"node":["n3"]}"#, &[]),
    ];
    for (filters, want) in cases {
        let got = finite(&c, &format!("/events?{window}&{}", query(filters))).await;
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(ids(&got), want, "{filters}");
    }
    for (q, msg) in [
        (query(r#"{"colour":["red"]}"#), "invalid filter 'colour'"),
        (query("{"), "invalid filter"),
        ("since=soon".to_string(), "invalid value for since"),
        ("since=20&until=10".to_string(), "cannot be after"),
    ] {
        let a = c.get(&format!("/events?{q}")).await;
        assert_eq!(a.status, 400, "{q}");
        assert!(a.message().contains(msg), "{q}: {}", a.message());
    }
}

#[actix_rt::test]
async fn a_slow_subscriber_is_cut_off_and_a_fast_one_misses_nothing() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    // The fast one reads everything as it comes, on its own task.
    const PER_ENGINE: usize = 1500;
    let mut fast = open(&c, &format!("/events?{}", query(r#"{"event":["load"]}"#))).await;
    let reader = actix_rt::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 2 * PER_ENGINE {
            match fast.next(30).await {
                Some(ev) => got.push(s(&ev["Actor"]["ID"]).to_string()),
                None => break,
            }
        }
        got
    });
    // The slow one asks, then never reads; a small receive window keeps the kernel from
    // absorbing the whole stream for it.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let addr = c.base.trim_start_matches("http://").parse().unwrap();
    let mut slow = sock.connect(addr).await.unwrap();
    slow.write_all(b"GET /events HTTP/1.1\r\nHost: shoal\r\n\r\n")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.hub.send(HubStats).await.unwrap().subscribers < 2 {
        assert!(
            Instant::now() < deadline,
            "the slow client never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 3000 events of about 4 KiB: far more than the slow client's buffers hold. Sent in
    // batches, each once the hub has the last: a simulated engine drops a stream that lags
    // 256 events behind, and this test is about the hub, not the engines' streams.
    let pad = "x".repeat(4000);
    let base = c.hub.send(HubStats).await.unwrap().events_in;
    for batch in 0..PER_ENGINE / 50 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let stats = c.hub.send(HubStats).await.unwrap();
            if stats.events_in >= base + (batch * 100) as u64 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the hub stopped receiving: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for e in 0..2 {
            for i in 0..50 {
                let id = format!("e{e}-{:05}", batch * 50 + i);
                c.fleet
                    .engine(e)
                    .emit_event("load", &id, &[("pad", pad.as_str())]);
            }
        }
    }

    let got = reader.await.unwrap();
    let stats = c.hub.send(HubStats).await.unwrap();
    assert_eq!(
        got.len(),
        2 * PER_ENGINE,
        "the fast subscriber lost events: {stats:?}"
    );
    for e in 0..2 {
        let mine: Vec<&String> = got
            .iter()
            .filter(|id| id.starts_with(&format!("e{e}-")))
            .collect();
        let expected: Vec<String> = (0..PER_ENGINE).map(|i| format!("e{e}-{i:05}")).collect();
        assert_eq!(
            mine,
            expected.iter().collect::<Vec<_>>(),
            "per engine, in order"
        );
    }
    // The slow one is megabytes behind: the hub cuts it once it stayed so past the grace.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stats = stats;
    while stats.dropped_subscribers == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stats = c.hub.send(HubStats).await.unwrap();
    }
    assert_eq!(stats.dropped_subscribers, 1, "{stats:?}");
    assert_eq!(stats.subscribers, 1, "{stats:?}");

    // What the slow client can still read is a broken-off stream: the connection ends
    // without the last chunk, far short of everything.
    let mut read = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut read)).await;
    assert!(r.is_ok(), "the slow client's connection was not closed");
    assert!(
        !read.ends_with(b"0\r\n\r\n"),
        "the cut-off stream looks complete"
    );
    assert!(read.len() < 2 * PER_ENGINE * 4000, "{} bytes", read.len());
}

#[actix_rt::test]
async fn a_node_going_down_and_back_is_an_event() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    let mut node_events = open(&c, &format!("/events?{}", query(r#"{"type":["node"]}"#))).await;
    c.fleet.engine(1).set_fault(Fault::Down);
    let down = node_events
        .until(15, "engine_disconnect", |e| {
            e["Action"] == "engine_disconnect"
        })
        .await;
    assert_eq!(down["node"]["Name"], "n2", "{down}");
    assert_eq!(down["Actor"]["Attributes"]["health"], "unhealthy");
    assert!(!s(&down["Actor"]["Attributes"]["error"]).is_empty());
    assert_eq!(down["Actor"]["ID"], down["node"]["Id"]);
    assert!(down["time"].as_i64().unwrap() > 0);
    c.fleet.engine(1).set_fault(Fault::None);
    let back = node_events
        .until(15, "engine_reconnect", |e| {
            e["Action"] == "engine_reconnect"
        })
        .await;
    assert_eq!(back["node"]["Name"], "n2");
    assert_eq!(back["Actor"]["Attributes"]["previous"], "unhealthy");
}

#[actix_rt::test]
async fn nodes_joining_and_leaving_are_events() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("engines");
    tokio::fs::write(&file, "# none yet\n").await.unwrap();
    let c = SimCluster::new()
        .engine(EngineConfig::new("f1"))
        .discovery(Discovery::File(file.clone()))
        .start()
        .await;
    let mut node_events = open(&c, &format!("/events?{}", query(r#"{"type":["node"]}"#))).await;
    let a1 = tcp(c.fleet.addr(0));
    tokio::fs::write(&file, format!("{a1}\n")).await.unwrap();
    let joined = node_events
        .until(15, "engine_join", |e| e["Action"] == "engine_join")
        .await;
    assert_eq!(joined["node"]["Addr"], a1.to_string());
    let connected = node_events
        .until(15, "engine_connect", |e| e["Action"] == "engine_connect")
        .await;
    assert_eq!(connected["node"]["Name"], "f1");
    assert!(!s(&connected["node"]["Id"]).is_empty());
    assert_eq!(connected["Actor"]["Attributes"]["previous"], "pending");
    tokio::fs::write(&file, "\n").await.unwrap();
    let left = node_events
        .until(15, "engine_leave", |e| e["Action"] == "engine_leave")
        .await;
    assert_eq!(
        left["node"]["Name"], "f1",
        "a node that left keeps its name"
    );
}

#[actix_rt::test]
async fn a_client_that_hangs_up_is_unsubscribed() {
    let c = two().start().await;
    c.wait_healthy(2).await;
    let stream = open(&c, "/events").await;
    assert_eq!(c.hub.send(HubStats).await.unwrap().subscribers, 1);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    while c.hub.send(HubStats).await.unwrap().subscribers > 0 {
        assert!(
            Instant::now() < deadline,
            "still subscribed after the hang-up"
        );
        c.fleet.engine(0).emit_event("tick", &format!("t{n}"), &[]);
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.hub.send(HubStats).await.unwrap().dropped_subscribers, 0);
}

/// The real `docker events` reads the stream, when the CLI is installed.
#[actix_rt::test]
async fn the_docker_cli_reads_the_stream() {
    if tokio::process::Command::new("docker")
        .arg("--version")
        .output()
        .await
        .is_err()
    {
        eprintln!("no docker CLI, skipped");
        return;
    }
    let c = two().start().await;
    c.wait_healthy(2).await;
    let (t0, t1) = three_events(&c).await;
    let out = tokio::process::Command::new("docker")
        .env("DOCKER_HOST", c.base.replace("http://", "tcp://"))
        .env_remove("DOCKER_CONTEXT")
        .args([
            "events",
            "--since",
            &format!("{t0:.9}"),
            "--until",
            &format!("{t1:.9}"),
            "--filter",
            "container=web",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"name\"}}",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    // Two engines: their events may arrive in either order.
    lines.sort();
    assert_eq!(
        lines,
        ["container die ccc3 web", "container start aaa1 web"],
        "{stdout}"
    );
}
