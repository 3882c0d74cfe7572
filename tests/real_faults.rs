//! The fault suite (issue 10, item 8), against three real engines, under load. It prints
//! its figures on stderr on every run, passed or not (failed requests, p99 against the
//! same run's baseline, time to mark a node unhealthy and to serve it again, silent creates
//! resolved, orphans left):
//!
//! - one engine frozen (SIGSTOP), then thawed; then the same engine killed (SIGKILL) and
//!   restarted, while three threads read (`/containers/json`, `/info`, inspect) and call
//!   through to the healthy nodes' containers (`top`, `logs`) and one thread creates.
//!   Requests to healthy nodes never fail and keep their p99 within 2x of the baseline
//!   measured just before each fault; the sick node is marked unhealthy within
//!   `--engine-failure-retry` x (longest refresh interval + engine timeout) (a refresh
//!   of a frozen engine can fail no sooner than its timeout); every create answers 201
//!   or a clean error, and once the engine is back and the silent creates are settled,
//!   the engines hold exactly the containers that were answered 201 (checked on the
//!   engines directly, not through Shoal); the node serves again with its containers.
//! - Shoal SIGKILLed during 200 concurrent creates and started again: every create
//!   answered 201 exists exactly once on the engines, no name twice, and the new Shoal
//!   knows every container on the engines with its node, name, swarm ID and placement
//!   labels (and so books their names again).
//!
//! The tests measure latency, so they run one after the other (a mutex), not beside
//! each other on the machine's two cores.
//!
//! Checked last so every figure comes first: after the engine's restart, Shoal's inspect
//! of its container says what its list says. An engine that was killed and restarted
//! sends no `die` event, so only the full list tells the node the state changed, and the
//! node must drop the cached inspect then (it once kept it: `"Running": true` beside
//! `Exited`).
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::http::{self, Answer};
use support::{docker_cli, wait_until, RealCluster, RealEngine, ShoalDaemon};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Shoal's limit on every engine call in the engine-fault test.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);
/// Shoal's refresh intervals and failure count in the engine-fault test.
const REFRESH_MIN: Duration = Duration::from_millis(500);
const REFRESH_MAX: Duration = Duration::from_secs(1);
const FAILURE_RETRY: u32 = 2;
/// The client's own limit on any one request (far above any answer Shoal should take).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long each load window runs before the fault, and how long a fault is held after
/// the node is marked unhealthy.
const BASELINE: Duration = Duration::from_secs(6);
const HOLD: Duration = Duration::from_secs(3);

/// How long after a node is shown unhealthy the scheduler may still hold its older offer.
const OFFER_LAG: Duration = Duration::from_millis(200);

/// The label Shoal puts on every container it creates.
const SWARM_ID: &str = "com.docker.swarm.id";

/// Prints a line of figures straight to stderr: `eprintln!` is captured with the test's
/// output and shown only when it fails, and the figures are wanted on every run.
macro_rules! figures {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "real_faults: {}", format!($($arg)*));
    }};
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// The `q`-quantile of latencies, in milliseconds.
fn quantile(latencies: &mut [Duration], q: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    let rank = ((latencies.len() as f64) * q).ceil() as usize;
    latencies[rank.clamp(1, latencies.len()) - 1].as_secs_f64() * 1e3
}

/// The health the cluster page's JSON gives node `name` (`Healthy`, `Unhealthy`, ...).
fn health(shoal: &str, name: &str) -> Option<String> {
    let a = http::get(shoal, "/shoal/api/cluster", Duration::from_secs(5)).ok()?;
    a.json()["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["health"].as_str().map(str::to_owned))
}

/// Polls every 20 ms until node `name` has health `want`; how long that took from `since`.
fn wait_health(shoal: &str, name: &str, want: &str, since: Instant, limit: Duration) -> Duration {
    loop {
        if health(shoal, name).as_deref() == Some(want) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < limit,
            "{name} not {want} after {}: {:?}",
            secs(since.elapsed()),
            health(shoal, name)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Every container Shoal made on the engines (it carries the swarm ID), read from the
/// engines themselves: ID → (engine name, container name, labels).
fn on_engines(cluster: &RealCluster) -> HashMap<String, (String, String, Value)> {
    let mut all = HashMap::new();
    for engine in cluster.engines() {
        let a = http::get(
            &engine.tcp_addr(),
            "/containers/json?all=1",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{} lists its containers: {e}", engine.name()));
        assert_eq!(a.status, 200, "{}: {}", engine.name(), a.text());
        for c in a.json().as_array().into_iter().flatten() {
            if c["Labels"][SWARM_ID].is_null() {
                continue;
            }
            let id = c["Id"].as_str().unwrap_or_default().to_string();
            let name = c["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let previous = all.insert(
                id.clone(),
                (engine.name().to_string(), name, c["Labels"].clone()),
            );
            assert!(previous.is_none(), "container {id} on two engines");
        }
    }
    all
}

/// Sum of `shoal_create_resolutions_total` by outcome, from Shoal's metrics.
fn resolutions(shoal: &str) -> HashMap<String, u64> {
    let m = http::get(shoal, "/metrics", Duration::from_secs(5))
        .map(|a| a.text())
        .unwrap_or_default();
    let mut out = HashMap::new();
    for line in m
        .lines()
        .filter(|l| l.starts_with("shoal_create_resolutions_total{"))
    {
        let outcome = line
            .split("outcome=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        let n = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        *out.entry(outcome.to_string()).or_default() += n as u64;
    }
    out
}

// ---------------------------------------------------------------------------------------
// The mixed load.

/// What a reader asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    List,
    Info,
    Inspect,
    Top,
    Logs,
}

/// One request of a reader: when it began, how long it took, its status or error.
struct Sample {
    at: Instant,
    took: Duration,
    kind: Kind,
    path: String,
    outcome: Result<u16, String>,
}

/// One create of the create thread.
struct CreateSample {
    at: Instant,
    took: Duration,
    name: Option<String>,
    outcome: Result<Answer, String>,
}

/// Readers and a creator running against Shoal until `stop`.
struct Load {
    stop: AtomicBool,
    reads: Mutex<Vec<Sample>>,
    creates: Mutex<Vec<CreateSample>>,
}

const READERS: usize = 3;
/// A reader's pause between requests: a steady load that leaves the shared machine some
/// CPU, not a flood.
const READ_PAUSE: Duration = Duration::from_millis(3);
/// The creator's pause between creates.
const CREATE_PAUSE: Duration = Duration::from_millis(250);

impl Load {
    fn new() -> Self {
        Load {
            stop: AtomicBool::new(false),
            reads: Mutex::new(Vec::new()),
            creates: Mutex::new(Vec::new()),
        }
    }

    /// Reads (`/containers/json`, `/info`, inspect) and proxied calls (`top`, `logs`) on
    /// `containers` (the healthy nodes' ones), round-robin, until stopped.
    fn reader(&self, shoal: &str, containers: &[String], first: usize) {
        let mut targets: Vec<(Kind, String)> = vec![
            (Kind::List, "/containers/json".into()),
            (Kind::Info, "/info".into()),
        ];
        for id in containers {
            targets.push((Kind::Inspect, format!("/containers/{id}/json")));
            targets.push((Kind::Top, format!("/containers/{id}/top")));
            targets.push((Kind::Logs, format!("/containers/{id}/logs?stdout=1&tail=5")));
        }
        let mut i = first;
        while !self.stop.load(Ordering::Relaxed) {
            let (kind, path) = &targets[i % targets.len()];
            i += 1;
            let at = Instant::now();
            let outcome = http::get(shoal, path, CLIENT_TIMEOUT)
                .map(|a| a.status)
                .map_err(|e| e.to_string());
            let sample = Sample {
                at,
                took: at.elapsed(),
                kind: *kind,
                path: path.clone(),
                outcome,
            };
            self.reads.lock().unwrap().push(sample);
            thread::sleep(READ_PAUSE);
        }
    }

    /// Creates, one at a time; every third one named.
    fn creator(&self, shoal: &str) {
        let mut i = 0;
        let mut mine = Vec::new();
        let body = json!({"Image": "busybox", "Cmd": ["true"]}).to_string();
        while !self.stop.load(Ordering::Relaxed) {
            i += 1;
            let name = (i % 3 == 0).then(|| format!("fault-{i}"));
            let path = match &name {
                Some(n) => format!("/containers/create?name={n}"),
                None => "/containers/create".to_string(),
            };
            let at = Instant::now();
            let outcome =
                http::request(shoal, "POST", &path, Some(body.as_bytes()), CLIENT_TIMEOUT)
                    .map_err(|e| e.to_string());
            mine.push(CreateSample {
                at,
                took: at.elapsed(),
                name,
                outcome,
            });
            thread::sleep(CREATE_PAUSE);
        }
        self.creates.lock().unwrap().extend(mine);
    }
}

/// What one fault did to the healthy nodes' requests, compared with the baseline window
/// just before it.
struct Window {
    requests: usize,
    failed: Vec<String>,
    p50_ms: f64,
    p99_ms: f64,
}

fn window(reads: &[Sample], from: Instant, to: Instant) -> Window {
    let inside: Vec<&Sample> = reads.iter().filter(|s| s.at >= from && s.at < to).collect();
    let failed = inside
        .iter()
        .filter(|s| !matches!(s.outcome, Ok(200..=299)))
        .map(|s| format!("{:?} {} -> {:?}", s.kind, s.path, s.outcome))
        .collect();
    let mut took: Vec<Duration> = inside.iter().map(|s| s.took).collect();
    Window {
        requests: inside.len(),
        failed,
        p50_ms: quantile(&mut took, 0.50),
        p99_ms: quantile(&mut took.clone(), 0.99),
    }
}

/// One fault: when its baseline began, when the fault began, when the node served
/// again; how long marking it unhealthy took, and how long it took to be healthy again
/// once the engine was back.
struct Phase {
    what: &'static str,
    baseline_from: Instant,
    fault: Instant,
    recovered: Instant,
    detected: Duration,
    back: Duration,
}

impl Phase {
    /// Prints and checks the fault's figures: no failed request to a healthy node, p99
    /// within 2x of the baseline, unhealthy within `bound`.
    fn judge(&self, reads: &[Sample], bound: Duration) {
        let what = self.what;
        let base = window(reads, self.baseline_from, self.fault);
        let fault = window(reads, self.fault, self.recovered);
        let ratio = fault.p99_ms / base.p99_ms.max(0.001);
        figures!(
            "{what}: healthy-node requests: baseline {} (failed {}, p50 {:.1} ms, p99 {:.1} \
             ms), during the fault {} (failed {}, p50 {:.1} ms, p99 {:.1} ms); p99 ratio \
             {ratio:.2}; marked unhealthy after {} (bound {}); healthy again {} after it \
             came back",
            base.requests,
            base.failed.len(),
            base.p50_ms,
            base.p99_ms,
            fault.requests,
            fault.failed.len(),
            fault.p50_ms,
            fault.p99_ms,
            secs(self.detected),
            secs(bound),
            secs(self.back),
        );
        assert!(
            base.requests > 100 && fault.requests > 100,
            "too little load"
        );
        assert!(
            base.failed.is_empty() && fault.failed.is_empty(),
            "{what}: requests to healthy nodes failed: {:?} {:?}",
            base.failed,
            fault.failed
        );
        assert!(
            ratio <= 2.0,
            "{what}: healthy nodes' p99 {:.1} ms is over 2x the baseline's {:.1} ms",
            fault.p99_ms,
            base.p99_ms
        );
        // Slack for the poll and a loaded machine.
        assert!(
            self.detected <= bound + Duration::from_secs(1),
            "{what}: marked unhealthy after {}, over retry x (interval + timeout) = {}",
            secs(self.detected),
            secs(bound)
        );
    }
}

/// Runs `docker run -d` through Shoal on node `node`; the container's full ID.
fn run_on(shoal: &str, node: &str, name: &str) -> String {
    let constraint = format!("constraint:node=={node}");
    let o = docker_cli(
        shoal,
        &[
            "run",
            "-d",
            "--name",
            name,
            "-e",
            &constraint,
            "busybox",
            "sh",
            "-c",
            "echo up; exec sleep 1000",
        ],
    )
    .expect_success();
    o.out().to_string()
}

/// Container `id` of `engine` answers through Shoal again: inspected, started through
/// Shoal when the engine says it is not running (an engine restarted without live-restore
/// has stopped it), and `top` answers. Answers what Shoal's inspect said that the engine's
/// own did not, if that lasted `AGREE_WITHIN`.
fn served_again(shoal: &str, engine: &RealEngine, id: &str) -> Option<String> {
    let inspect = format!("/containers/{id}/json");
    let since = Instant::now();
    let mut disagreement = None;
    let mut running = Value::Null;
    wait_until("Shoal's inspect of the sick node's container", 30, || {
        let ours = http::get(shoal, &inspect, CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
        if ours.status != 200 {
            return Err(format!("inspect: {} {}", ours.status, ours.text()));
        }
        let theirs = http::get(&engine.tcp_addr(), &inspect, CLIENT_TIMEOUT)
            .map_err(|e| format!("the engine's own inspect: {e}"))?;
        running = theirs.json()["State"]["Running"].clone();
        let said = ours.json()["State"]["Running"].clone();
        if said == running {
            return Ok(());
        }
        let listed = http::get(shoal, "/containers/json?all=1", CLIENT_TIMEOUT)
            .map(|a| a.json())
            .unwrap_or_default();
        let status = listed
            .as_array()
            .and_then(|l| l.iter().find(|c| c["Id"] == id))
            .map(|c| c["Status"].clone())
            .unwrap_or_default();
        let seen = format!(
            "{}s after it came back, Shoal's inspect of {} says State.Running = {said}, the \
             engine's says {running}, Shoal's own list says {status}",
            since.elapsed().as_secs(),
            engine.name()
        );
        if since.elapsed() > AGREE_WITHIN {
            disagreement = Some(seen);
            Ok(())
        } else {
            Err(seen)
        }
    });
    if running != true {
        let s = http::request(
            shoal,
            "POST",
            &format!("/containers/{id}/start"),
            None,
            CLIENT_TIMEOUT,
        )
        .expect("start through Shoal");
        assert!(
            matches!(s.status, 204 | 304),
            "start: {} {}",
            s.status,
            s.text()
        );
    }
    wait_until("top of the sick node's container", 30, || {
        let t = http::get(shoal, &format!("/containers/{id}/top"), CLIENT_TIMEOUT)
            .map_err(|e| e.to_string())?;
        if t.status == 200 {
            Ok(())
        } else {
            Err(format!("top: {} {}", t.status, t.text()))
        }
    });
    disagreement
}

/// How long Shoal's inspect may disagree with the engine's after the engine came back
/// (a few refreshes).
const AGREE_WITHIN: Duration = Duration::from_secs(5);

#[test]
fn one_engine_frozen_then_killed_under_load() {
    let _one = lock();
    let cluster = RealCluster::new()
        .engines(3)
        .start()
        .expect("three dockerd engines start");
    let timeout = format!("{}ms", ENGINE_TIMEOUT.as_millis());
    let (min, max) = (
        format!("{}ms", REFRESH_MIN.as_millis()),
        format!("{}ms", REFRESH_MAX.as_millis()),
    );
    let retry = FAILURE_RETRY.to_string();
    let discovery = format!("nodes://{}", cluster.tcp_addrs());
    let shoal = ShoalDaemon::start(&[
        &discovery,
        "--engine-refresh-min-interval",
        &min,
        "--engine-refresh-max-interval",
        &max,
        "--engine-failure-retry",
        &retry,
        "--engine-timeout",
        &timeout,
        // Creates placed on the frozen engine before its mark: the test settles them after
        // the engine timeout, as before creates had a limit of their own.
        "--engine-work-timeout",
        &timeout,
    ]);
    support::wait_healthy(shoal.host(), 3);
    let host = shoal.host().to_string();
    let sick: &RealEngine = cluster.engine("node-3");
    let healthy_ids: Vec<String> = ["node-1", "node-2"]
        .iter()
        .map(|n| run_on(&host, n, &format!("web-{n}")))
        .collect();
    let sick_id = run_on(&host, "node-3", "web-node-3");
    // A refresh of a sick engine fails no sooner than the engine timeout, and the next
    // one starts at most the longest interval later.
    let bound = (REFRESH_MAX + ENGINE_TIMEOUT) * FAILURE_RETRY;

    let load = Load::new();
    let began = Instant::now();
    let mut stale: Vec<String> = Vec::new();
    // While the sick node is marked unhealthy: from a moment after the mark (the
    // scheduler's offer follows the node's snapshot) until it is thawed or restarted.
    let mut marked: Vec<(Instant, Instant)> = Vec::new();
    thread::scope(|s| {
        for r in 0..READERS {
            let (load, host, ids) = (&load, &host, &healthy_ids);
            s.spawn(move || load.reader(host, ids, r * 5));
        }
        s.spawn(|| load.creator(&host));
        let _stop = StopOnDrop(&load.stop);

        // Freeze, then thaw.
        thread::sleep(BASELINE);
        let froze = Instant::now();
        sick.freeze();
        let thaw_guard = ThawOnDrop(sick);
        let detected = wait_health(&host, "node-3", "Unhealthy", froze, bound * 3);
        thread::sleep(HOLD);
        let thawed = Instant::now();
        marked.push((froze + detected + OFFER_LAG, thawed));
        drop(thaw_guard);
        let back = wait_health(&host, "node-3", "Healthy", thawed, Duration::from_secs(30));
        let stale_freeze = served_again(&host, sick, &sick_id);
        let freeze = Phase {
            what: "freeze",
            baseline_from: began + Duration::from_secs(1),
            fault: froze,
            recovered: Instant::now(),
            detected,
            back,
        };
        freeze.judge(&load.reads.lock().unwrap(), bound);

        // Kill, then restart.
        thread::sleep(BASELINE);
        let killed = Instant::now();
        sick.kill();
        let detected = wait_health(&host, "node-3", "Unhealthy", killed, bound * 3);
        thread::sleep(HOLD);
        let restarting = Instant::now();
        marked.push((killed + detected + OFFER_LAG, restarting));
        sick.restart().expect("node-3 starts again");
        figures!("node-3 restarted in {}", secs(restarting.elapsed()));
        let answering = Instant::now();
        let back = wait_health(
            &host,
            "node-3",
            "Healthy",
            answering,
            Duration::from_secs(30),
        );
        let stale_kill = served_again(&host, sick, &sick_id);
        let kill = Phase {
            what: "kill and restart",
            baseline_from: freeze.recovered + Duration::from_millis(500),
            fault: killed,
            recovered: Instant::now(),
            detected,
            back,
        };
        kill.judge(&load.reads.lock().unwrap(), bound);
        // A little more load after recovery, then stop.
        thread::sleep(Duration::from_secs(1));
        stale = [stale_freeze, stale_kill].into_iter().flatten().collect();
    });
    let reads = load.reads.into_inner().unwrap();
    let all = window(&reads, began, Instant::now());
    figures!(
        "whole run: {} requests to healthy nodes, {} failed",
        all.requests,
        all.failed.len()
    );
    assert!(all.failed.is_empty(), "{:?}", all.failed);

    // Creates: 201, or a clean error (a Docker-shaped message, never a broken answer).
    let creates = load.creates.into_inner().unwrap();
    let mut created: HashSet<String> = HashSet::new();
    let mut refused_names: Vec<String> = Vec::new();
    let mut slowest = Duration::ZERO;
    for c in &creates {
        slowest = slowest.max(c.took);
        let a = c
            .outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("a create got no answer: {e}"));
        match a.status {
            201 => {
                let id = a.json()["Id"].as_str().unwrap_or_default().to_string();
                assert_eq!(id.len(), 64, "{}", a.text());
                created.insert(id);
            }
            400..=599 => {
                assert!(
                    a.json()["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "an error without Docker's message: {} {}",
                    a.status,
                    a.text()
                );
                if let Some(n) = &c.name {
                    refused_names.push(n.clone());
                }
                figures!(
                    "create {:?} at +{}: {} {}",
                    c.name,
                    secs(c.at - began),
                    a.status,
                    a.text().trim()
                );
            }
            other => panic!("a create answered {other}: {}", a.text()),
        }
    }

    // On the engines themselves, once every silent create is settled: exactly the web
    // containers and the creates answered 201, each once; no refused name anywhere.
    let mut expected: HashSet<String> = created.clone();
    expected.extend(healthy_ids.iter().cloned());
    expected.insert(sick_id.clone());
    let settled = Instant::now();
    let mut orphans_seen: HashSet<String> = HashSet::new();
    wait_until(
        "the engines to hold exactly the answered creates",
        90,
        || {
            let now = on_engines(&cluster);
            let have: HashSet<String> = now.keys().cloned().collect();
            orphans_seen.extend(have.difference(&expected).cloned());
            let lost: Vec<&String> = expected.difference(&have).collect();
            assert!(lost.is_empty(), "creates answered 201 are gone: {lost:?}");
            let extra: Vec<String> = have
                .difference(&expected)
                .map(|id| format!("{} {:?}", &id[..12], now[id]))
                .collect();
            if extra.is_empty() {
                Ok(())
            } else {
                Err(format!("not answered 201 but on the engines: {extra:?}"))
            }
        },
    );
    let now = on_engines(&cluster);
    // Once the node is marked unhealthy, creates go to the others without waiting on it.
    let mut while_marked = 0;
    for c in creates.iter().filter(|c| {
        marked
            .iter()
            .any(|&(from, to)| c.at >= from && c.at + c.took < to)
    }) {
        while_marked += 1;
        let a = c.outcome.as_ref().expect("checked above");
        assert_eq!(
            a.status,
            201,
            "a create while node-3 was unhealthy: {}",
            a.text()
        );
        let id = a.json()["Id"].as_str().unwrap_or_default().to_string();
        let node = now.get(&id).map(|(node, _, _)| node.as_str());
        assert!(
            node.is_some_and(|n| n != "node-3"),
            "a create while node-3 was unhealthy went to {node:?}"
        );
        assert!(
            c.took < ENGINE_TIMEOUT,
            "a create while node-3 was unhealthy took {}",
            secs(c.took)
        );
    }
    assert!(
        while_marked >= 4,
        "{while_marked} creates while node-3 was unhealthy"
    );
    for name in &refused_names {
        assert!(
            !now.values().any(|(_, n, _)| n == name),
            "refused create {name} exists"
        );
    }
    let outcomes = resolutions(&host);
    figures!(
        "creates: {} answered 201 ({while_marked} while node-3 was marked unhealthy, none \
         there), {} refused cleanly, slowest {}; orphans found and \
         removed by Shoal {} (silent creates resolved: {outcomes:?}); not answered 201 but \
         still on the engines at the end of the load {} (gone {} later); orphans left 0",
        created.len(),
        refused_names.len(),
        secs(slowest),
        outcomes.get("removed").copied().unwrap_or(0),
        orphans_seen.len(),
        secs(settled.elapsed())
    );
    assert!(created.len() >= 20, "too few creates: {}", created.len());
    // Last, so every figure above is printed and checked first.
    assert!(
        stale.is_empty(),
        "Shoal answers a stale inspect once the engine is back: {stale:?}"
    );
}

/// Sets the flag when dropped: the load stops also when the test panics.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Thaws a frozen engine when dropped, so a failing test never leaves a dockerd stopped.
struct ThawOnDrop<'a>(&'a RealEngine);

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        self.0.thaw();
    }
}

// ---------------------------------------------------------------------------------------
// Shoal killed.

/// How many creates are in flight at once when Shoal is killed, and on how many threads.
const BURST: usize = 200;
const BURST_THREADS: usize = 8;
/// Shoal is killed once this many creates have been answered 201.
const KILL_AFTER: usize = 60;

/// The placement env of create `i`, and the label each entry becomes.
fn placement_of(i: usize) -> (Vec<&'static str>, Vec<(&'static str, &'static str)>) {
    match i % 4 {
        0 => (
            vec!["constraint:zone==a"],
            vec![("com.docker.swarm.constraints", "zone==a")],
        ),
        1 => (
            vec!["constraint:storage==disk"],
            vec![("com.docker.swarm.constraints", "storage==disk")],
        ),
        2 => (
            vec!["constraint:storage==~ssd", "affinity:image==busybox"],
            vec![
                ("com.docker.swarm.constraints", "storage==~ssd"),
                ("com.docker.swarm.affinities", "image==busybox"),
            ],
        ),
        _ => (
            vec!["reschedule:on-node-failure"],
            vec![("com.docker.swarm.reschedule-policies", "on-node-failure")],
        ),
    }
}

/// The number in a `burst-NNN` name.
fn burst_index(name: &str) -> Option<usize> {
    name.strip_prefix("burst-")?.parse().ok()
}

#[test]
fn shoal_killed_during_200_creates_knows_every_container_after_restart() {
    let _one = lock();
    let cluster = RealCluster::three_labelled()
        .start()
        .expect("three dockerd engines start");
    let mut shoal = ShoalDaemon::over(&cluster, &[]);
    let host = shoal.host().to_string();

    let requests: Vec<(String, String, Option<Vec<u8>>)> = (0..BURST)
        .map(|i| {
            let (env, _) = placement_of(i);
            let body = json!({"Image": "busybox", "Cmd": ["true"], "Env": env});
            (
                "POST".to_string(),
                format!("/containers/create?name=burst-{i:03}"),
                Some(body.to_string().into_bytes()),
            )
        })
        .collect();
    let ok = AtomicUsize::new(0);
    let answered = AtomicUsize::new(0);
    let began = Instant::now();
    let mut answers: Vec<(usize, Result<Answer, String>)> = Vec::new();
    let mut killed_at = Duration::ZERO;
    thread::scope(|s| {
        let per = BURST / BURST_THREADS;
        let handles: Vec<_> = requests
            .chunks(per)
            .enumerate()
            .map(|(t, chunk)| {
                let (host, ok, answered) = (&host, &ok, &answered);
                s.spawn(move || {
                    let pending: Vec<_> = chunk
                        .iter()
                        .map(|(m, p, b)| http::send(host, m, p, b.as_deref(), CLIENT_TIMEOUT))
                        .collect();
                    pending
                        .into_iter()
                        .enumerate()
                        .map(|(j, p)| {
                            let a = p.and_then(|p| p.read()).map_err(|e| e.to_string());
                            answered.fetch_add(1, Ordering::Relaxed);
                            if a.as_ref().is_ok_and(|a| a.status == 201) {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            (t * per + j, a)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        while ok.load(Ordering::Relaxed) < KILL_AFTER && began.elapsed() < CLIENT_TIMEOUT {
            thread::sleep(Duration::from_millis(5));
        }
        shoal.kill();
        killed_at = began.elapsed();
        for h in handles {
            answers.extend(h.join().expect("a create thread"));
        }
    });
    let answered_201: HashMap<String, usize> = answers
        .iter()
        .filter_map(|(i, a)| {
            let a = a.as_ref().ok().filter(|a| a.status == 201)?;
            Some((a.json()["Id"].as_str()?.to_string(), *i))
        })
        .collect();
    let clean_errors: Vec<(usize, u16, String)> = answers
        .iter()
        .filter_map(|(i, a)| {
            let a = a.as_ref().ok().filter(|a| a.status != 201)?;
            Some((*i, a.status, a.text()))
        })
        .collect();
    let cut = answers.iter().filter(|(_, a)| a.is_err()).count();
    assert!(
        !answered_201.is_empty() && cut > 0,
        "Shoal was killed with creates in flight: {} answered 201, {cut} cut off",
        answered_201.len()
    );

    // The engines finish what they were asked before Shoal died.
    let mut last = usize::MAX;
    let mut steady = 0;
    while steady < 4 {
        thread::sleep(Duration::from_millis(500));
        let n = on_engines(&cluster).len();
        steady = if n == last { steady + 1 } else { 0 };
        last = n;
    }
    let truth = on_engines(&cluster);

    // Every create answered 201 exists, once (on one engine; `on_engines` panics on an
    // ID seen on two), and no name is on two engines.
    for (id, i) in &answered_201 {
        let (_, name, _) = truth
            .get(id)
            .unwrap_or_else(|| panic!("burst-{i:03} was answered 201 ({id}) but is on no engine"));
        assert_eq!(name, &format!("burst-{i:03}"));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (_, name, _) in truth.values() {
        *names.entry(name.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = names.iter().filter(|(_, &n)| n > 1).collect();
    assert!(twice.is_empty(), "names on two engines: {twice:?}");
    // A request refused for what it is (4xx) made nothing; a 5xx may have been a silent
    // create whose resolver died with Shoal (counted below).
    for (i, status, body) in &clean_errors {
        if *status < 500 {
            assert!(
                !names.contains_key(format!("burst-{i:03}").as_str()),
                "burst-{i:03} was refused ({status} {body}) but exists"
            );
        }
    }
    let swarm_ids: HashSet<&str> = truth
        .values()
        .filter_map(|(_, _, labels)| labels[SWARM_ID].as_str())
        .collect();
    assert_eq!(swarm_ids.len(), truth.len(), "a swarm ID on two containers");

    // Shoal again: it knows every container with its node, name, swarm ID and labels.
    let restart = Instant::now();
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let host = shoal.host().to_string();
    let rebuilt = restart.elapsed();
    let listed = http::get(&host, "/containers/json?all=1", CLIENT_TIMEOUT).expect("ps -a");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let known: HashMap<String, Value> = listed
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["Id"].as_str()?.to_string(), c.clone())))
        .collect();
    for (id, (node, name, labels)) in &truth {
        let c = known
            .get(id)
            .unwrap_or_else(|| panic!("{node}/{name} ({id}) is unknown to the new Shoal"));
        assert_eq!(c["Names"][0], format!("/{node}/{name}"), "{c}");
        for (key, value) in labels.as_object().into_iter().flatten() {
            if key.starts_with("com.docker.swarm.") {
                assert_eq!(&c["Labels"][key], value, "{node}/{name}: {key}");
            }
        }
        let i = burst_index(name).unwrap_or_else(|| panic!("a container not of the burst: {name}"));
        for (key, expr) in placement_of(i).1 {
            let label = labels[key].as_str().unwrap_or_default();
            assert!(label.contains(expr), "{name}: {key} = {label:?}");
        }
        // zone==a is node-1 and node-2; storage==disk is node-2 and node-3.
        match i % 4 {
            0 => assert!(node != "node-3", "{name} (zone==a) placed on {node}"),
            1 => assert!(node != "node-1", "{name} (storage==disk) placed on {node}"),
            _ => {}
        }
        let inspect =
            http::get(&host, &format!("/containers/{id}/json"), CLIENT_TIMEOUT).expect("inspect");
        assert_eq!(inspect.status, 200, "{}", inspect.text());
        assert_eq!(inspect.json()["Node"]["Name"], node.as_str(), "{name}");
    }
    assert_eq!(
        known.len(),
        truth.len(),
        "the new Shoal lists containers no engine has"
    );
    // Names are booked again: a second `burst-NNN` is refused, wherever it would go.
    let (_, taken, _) = truth.values().next().expect("a container");
    let again = http::request(
        &host,
        "POST",
        &format!("/containers/create?name={taken}"),
        Some(br#"{"Image": "busybox", "Cmd": ["true"]}"#),
        CLIENT_TIMEOUT,
    )
    .expect("create");
    assert_eq!(again.status, 409, "{}", again.text());

    let failed_but_there = clean_errors
        .iter()
        .filter(|(i, _, _)| names.contains_key(format!("burst-{i:03}").as_str()))
        .count();
    let cut_there = answers
        .iter()
        .filter(|(i, a)| a.is_err() && names.contains_key(format!("burst-{i:03}").as_str()))
        .count();
    figures!(
        "shoal killed {} into {BURST} concurrent creates: {} answered 201, {} answered an \
         error ({failed_but_there} of them on an engine all the same), {cut} cut off ({cut_there} \
         of them landed); the engines hold {}; the new Shoal served in {} and knows all {}",
        secs(killed_at),
        answered_201.len(),
        clean_errors.len(),
        truth.len(),
        secs(rebuilt),
        known.len()
    );
}
