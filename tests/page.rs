//! The cluster page in a real browser: headless Chromium (Debian: `apt-get install
//! chromium`) loads `/shoal/` from a Shoal over simulated engines.
//!
//! - 3 engines: the DOM shows the three nodes, healthy, with their bars.
//! - 1,000 engines (some down, some too slow to answer): the page is drawn in under 2 s
//!   (the page marks `data-ready-ms` on `<body>`), the nodes needing a look come first and
//!   the rest in natural order, the summary by `zone` adds up, the map has a cell per
//!   node, the filter and an opened row (the fragment a map cell links to) work.
//!
//! Screenshots are kept in `test-artifacts/` (`docs/cluster-page*.png` are copies).

mod sim_fixture;

use shoal::config::{EngineSource, ListenAddr, ManageConfig};
use shoal::discovery::Discovery;
use shoal::server::{self, Listener, Running};
use shoal_actors::cluster::ClusterConfig;
use shoal_actors::engine::Timeouts;
use shoal_actors::node::{Health, NodeConfig};
use shoal_sim::{EngineConfig, Fault, FleetOptions, SimFleet};
use sim_fixture::SimCluster;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// Runs headless Chromium on `url` with `extra` arguments; answers stdout. Blocking, so
/// it runs off the test's thread (the Shoal under test serves from its own threads).
async fn run_chromium(url: String, extra: Vec<String>) -> String {
    run_chromium_sized(url, "1280,800", extra).await
}

async fn run_chromium_sized(url: String, size: &str, extra: Vec<String>) -> String {
    let size = format!("--window-size={size}");
    actix_rt::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().expect("profile dir");
        #[allow(
            clippy::disallowed_methods,
            reason = "in spawn_blocking: waits for chromium off the runtime"
        )]
        let out = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                size.as_str(),
                // Virtual time runs the page's timers: two polls happen within the budget.
                "--virtual-time-budget=7000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(&extra)
            .arg(&url)
            .output()
            .expect("chromium runs (Debian: apt-get install chromium)");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    })
    .await
    .expect("chromium task")
}

#[actix_rt::test]
async fn the_page_shows_every_node_of_a_three_engine_cluster() {
    let c = SimCluster::new()
        .engine(
            EngineConfig::new("alpha")
                .label("storage", "ssd")
                .label("zone", "a")
                .ncpu(4)
                .memory(8 << 30)
                .containers(5),
        )
        .engine(
            EngineConfig::new("bravo")
                .label("zone", "b")
                .ncpu(8)
                .memory(16 << 30)
                .containers(3),
        )
        .engine(
            EngineConfig::new("charlie")
                .label("zone", "c")
                .ncpu(2)
                .memory(4 << 30)
                .containers(2),
        )
        .start()
        .await;
    c.wait_healthy(3).await;
    // Containers that reserve CPU and memory, made on the engines directly, so the bars
    // have something to show.
    let engines = c.fleet.addrs();
    for (i, (engine, cpus, mem)) in [(0, 2.5, 5i64 << 30), (1, 2.0, 4 << 30), (2, 1.5, 1 << 30)]
        .into_iter()
        .enumerate()
    {
        let spec = serde_json::json!({
            "Image": "busybox",
            "HostConfig": { "NanoCpus": (cpus * 1e9) as i64, "Memory": mem },
        });
        let r = c
            .client
            .post(format!(
                "http://{}/containers/create?name=db-{i}",
                engines[engine]
            ))
            .send_json(&spec)
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    c.wait_for("reservations seen", 10, |r| {
        r.nodes.iter().all(|n| n.snapshot.reserved.memory > 0)
    })
    .await;
    // API traffic while the browser watches, so the latency chart has something to show.
    let base = c.base.clone();
    let traffic = actix_rt::spawn(async move {
        let client = awc::Client::new();
        loop {
            let _ = client
                .get(format!("{base}/containers/json?all=1"))
                .send()
                .await;
            actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let url = format!("{}/shoal/", c.base);

    let dom = run_chromium(url.clone(), vec!["--dump-dom".to_string()]).await;
    for name in ["alpha", "bravo", "charlie"] {
        assert!(
            dom.contains(&format!(r#"data-node="{name}""#)),
            "no row for {name} in:\n{dom}"
        );
    }
    assert_eq!(dom.matches(r#"class="health Healthy""#).count(), 3, "{dom}");
    assert!(dom.contains("storage=ssd"), "labels shown");
    assert!(dom.contains("3/3 nodes healthy"), "summary shown");
    assert!(dom.contains(r#"class="bar cpu""#) && dom.contains(r#"class="bar mem""#));
    assert!(
        dom.contains(r#"<td class="containers">6 ("#),
        "container counts"
    );
    assert!(
        dom.contains(r#"<span id="status">updated"#),
        "the page did not reach the API"
    );

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    tokio::fs::create_dir_all(&dir).await.unwrap();
    let shot = dir.join("cluster-page.png");
    let _ = tokio::fs::remove_file(&shot).await;
    run_chromium(url, vec![format!("--screenshot={}", shot.display())]).await;
    assert!(is_png(&shot).await, "no screenshot at {}", shot.display());
    tokio::fs::write(dir.join("cluster-page.html"), dom)
        .await
        .unwrap();
    traffic.abort();
    c.server.stop(false).await;
}

async fn is_png(p: &Path) -> bool {
    tokio::fs::read(p)
        .await
        .is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG"))
}

/// Nodes of the big cluster: `node-1` .. `node-1000`, `zone` z0..z3 by `i % 4`.
const BIG: usize = 1000;
/// Engines that refuse connections: unhealthy from their first refresh.
const DOWN: [usize; 3] = [600, 13, 257];
/// Engines that answer nothing within the test: pending all along.
const SLOW: [usize; 2] = [777, 42];

/// CPUs reserved on engine `i` by the container made there before Shoal starts (0: none).
fn reserved_cpus(i: usize) -> usize {
    i % 9
}

/// A Shoal over `BIG` simulated engines, in this process. The nodes refresh rarely (the
/// page is the subject, not the refresh loop), a failed refresh makes a node unhealthy
/// at once, and engine calls wait a minute, so a silent engine stays pending.
async fn big_cluster() -> (SimFleet, Running, String) {
    enough_files().await;
    let engines = (1..=BIG)
        .map(|i| {
            EngineConfig::new(format!("node-{i}"))
                .label("zone", format!("z{}", i % 4))
                .ncpu(8)
                .memory(16 << 30)
                .containers(1)
        })
        .collect();
    let t = Instant::now();
    let fleet = SimFleet::start(engines, FleetOptions::default())
        .await
        .expect("sim fleet starts");
    eprintln!("fleet up in {:.1?}", t.elapsed());
    // Reservations, so the map's cells fill to different heights.
    let client = awc::Client::default();
    for i in 1..=BIG {
        let cpus = reserved_cpus(i);
        if cpus == 0 {
            continue;
        }
        let spec = serde_json::json!({
            "Image": "busybox",
            "HostConfig": { "NanoCpus": cpus as i64 * 1_000_000_000, "Memory": (cpus as i64) << 30 },
        });
        let r = client
            .post(format!("http://{}/containers/create", fleet.addr(i - 1)))
            .send_json(&spec)
            .await
            .expect("create on a sim engine");
        assert_eq!(r.status().as_u16(), 201);
    }
    for i in DOWN {
        fleet.engine(i - 1).set_fault(Fault::Down);
    }
    for i in SLOW {
        fleet
            .engine(i - 1)
            .set_fault(Fault::Slow(Duration::from_secs(300)));
    }
    eprintln!("reservations made in {:.1?}", t.elapsed());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let config = ManageConfig {
        replication: None,
        listen: ListenAddr::Tcp(format!("127.0.0.1:{port}")),
        engines: EngineSource::Discovery(Discovery::Nodes(
            fleet.addrs().into_iter().map(sim_fixture::tcp).collect(),
        )),
        cluster: ClusterConfig {
            node: NodeConfig {
                refresh_min: Duration::from_secs(20),
                refresh_max: Duration::from_secs(40),
                failure_retry: 1,
            },
            timeouts: Timeouts {
                call: Duration::from_secs(120),
                long: Duration::from_secs(120),
            },
            arbiters: 2,
            engine_connections: None,
        },
        placement: Default::default(),
        observe: Default::default(),
        tls: Default::default(),
        api: Default::default(),
    };
    let running = server::start(config, Listener::Tcp(listener))
        .await
        .expect("shoal starts");
    (fleet, running, format!("http://127.0.0.1:{port}"))
}

/// 1,000 engines and a Shoal in one process hold ~4,200 files (listeners, both ends of
/// every connection, event streams). Raises this process's soft limit to the hard one
/// when it is lower than that (`prlimit`, util-linux), or says what to do.
async fn enough_files() {
    const NEED: u64 = 8192;
    async fn open_files() -> (u64, String) {
        let limits = tokio::fs::read_to_string("/proc/self/limits")
            .await
            .unwrap();
        let line = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .expect("Max open files in /proc/self/limits");
        let mut nums = line.split_whitespace();
        let soft = nums.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        (soft, nums.next().unwrap_or("unlimited").to_string())
    }
    let (soft, hard) = open_files().await;
    if soft >= NEED {
        return;
    }
    let _ = tokio::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard}:{hard}"))
        .status()
        .await;
    let (now, _) = open_files().await;
    assert!(
        now >= NEED,
        "this test needs {NEED} open files; the limit is {soft} (hard {hard}): raise `ulimit -n`"
    );
}

/// Attributes of each `<tag ...>` whose attributes contain `marker`, in document order.
fn tags<'a>(dom: &'a str, tag: &str, marker: &str) -> Vec<&'a str> {
    let open = format!("<{tag} ");
    dom.match_indices(&open)
        .filter_map(|(i, _)| {
            let rest = &dom[i + open.len()..];
            rest.find('>').map(|end| &rest[..end])
        })
        .filter(|attrs| attrs.contains(marker))
        .collect()
}

/// The value of `name="..."` in a tag's attributes.
fn attr<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = attrs.find(&key)? + key.len();
    attrs[start..]
        .find('"')
        .map(|end| &attrs[start..start + end])
}

/// The text of the `<td class="num {class}">` cell in the summary row of `group`.
fn group_cell(dom: &str, group: &str, class: &str) -> Option<u64> {
    let row_start = dom.find(&format!(r#"<tr data-group="{group}">"#))?;
    let row = &dom[row_start..];
    let row = &row[..row.find("</tr>")?];
    let key = format!(r#"<td class="num {class}">"#);
    let start = row.find(&key)? + key.len();
    row[start..start + row[start..].find('<')?].parse().ok()
}

fn ready_ms(dom: &str) -> f64 {
    let body = tags(dom, "body", "data-ready-ms");
    let attrs = body
        .first()
        .unwrap_or_else(|| panic!("the page never got ready"));
    attr(attrs, "data-ready-ms")
        .and_then(|v| v.parse().ok())
        .expect("data-ready-ms is a number")
}

#[actix_rt::test]
async fn the_page_finds_its_way_through_a_thousand_nodes() {
    let t0 = Instant::now();
    let (fleet, running, base) = big_cluster().await;
    let Running { server, view, .. } = running;
    let handle = server.handle();
    actix_rt::spawn(server);
    // Every engine answered (or failed), and every container's reservation is known.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let v = view.borrow().clone();
        let read = v.read();
        let count = |h: Health| read.nodes.iter().filter(|n| n.snapshot.health == h).count();
        let settled = read.nodes.len() == BIG
            && count(Health::Unhealthy) == DOWN.len()
            && count(Health::Healthy) == BIG - DOWN.len() - SLOW.len()
            && read.nodes.iter().all(|n| n.snapshot.unreserved() == 0);
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} nodes: {} healthy, {} unhealthy, {} pending",
            read.nodes.len(),
            count(Health::Healthy),
            count(Health::Unhealthy),
            count(Health::Pending)
        );
        if t0.elapsed().as_millis() % 2000 < 100 {
            eprintln!(
                "{:.1?}: {} nodes: {} healthy, {} unhealthy, {} pending, {} unreserved",
                t0.elapsed(),
                read.nodes.len(),
                count(Health::Healthy),
                count(Health::Unhealthy),
                count(Health::Pending),
                read.nodes
                    .iter()
                    .map(|n| n.snapshot.unreserved())
                    .sum::<usize>()
            );
        }
        drop(read);
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let started = t0.elapsed();

    // The page as a browser opens it, in real time.
    let t1 = Instant::now();
    let mut browser = cdp::Browser::start("1400,1000").await;
    // A browser already running: its process for Shoal's address is up (Chromium starts
    // one per site on the first navigation there), so the time measured is the page's.
    browser
        .call(
            "Page.navigate",
            serde_json::json!({"url": format!("{base}/_ping")}),
        )
        .await;
    browser
        .wait_until(
            "location.pathname === '/_ping' && document.readyState === 'complete'",
            20,
        )
        .await;
    let navigated = Instant::now();
    browser
        .call(
            "Page.navigate",
            serde_json::json!({"url": format!("{base}/shoal/")}),
        )
        .await;
    browser
        .wait_until("!!(document.body && document.body.dataset.readyMs)", 20)
        .await;
    let seen = navigated.elapsed();
    let dom = browser.dom().await;
    let ready = ready_ms(&dom);
    let timing = tags(&dom, "body", "data-timing")
        .first()
        .and_then(|b| attr(b, "data-timing"))
        .unwrap_or_default()
        .to_string();
    eprintln!(
        "1,000 nodes: cluster settled in {started:.1?}; chromium up in {:.1?}; page ready {ready} ms after navigation ({timing}; seen by the test after {seen:.0?})",
        navigated - t1
    );
    assert!(ready < 2000.0, "the page took {ready} ms to be ready");
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    tokio::fs::create_dir_all(&shots).await.unwrap();
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    tokio::fs::write(shots.join("cluster-page-1000.png"), png)
        .await
        .unwrap();

    // Scrolled far down the list, a poll redraws every row and the reader stays put:
    // the same row at the top of the window, at the same height.
    browser.eval("window.scrollTo(0, 30000)").await;
    // After two frames, so the chunks now on screen are drawn.
    let at_top = "new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => { const r = document.elementFromPoint(300, 200).closest('tr[data-node]'); done(r.dataset.node + ' ' + Math.round(r.getBoundingClientRect().top)); })))";
    let before = browser.eval(at_top).await;
    next_poll(&mut browser).await;
    assert_eq!(
        browser.eval(at_top).await,
        before,
        "the list moved on a poll"
    );
    browser.eval("window.scrollTo(0, 0)").await;

    // Unhealthy first, then pending, each in natural order; then all the others. Nodes
    // that never answered have no engine name yet: they show by address.
    let rows: Vec<&str> = tags(&dom, "tr", "data-node=")
        .into_iter()
        .filter_map(|a| attr(a, "data-node"))
        .collect();
    assert_eq!(rows.len(), BIG, "one row per node");
    let by_addr = |set: &[usize]| {
        let mut a: Vec<String> = set.iter().map(|i| fleet.addr(i - 1).to_string()).collect();
        a.sort_by(|x, y| natural(x, y));
        a
    };
    assert_eq!(rows[..3], by_addr(&DOWN), "unhealthy first");
    assert_eq!(rows[3..5], by_addr(&SLOW), "pending next");
    let healthy: Vec<String> = (1..=BIG)
        .filter(|i| !DOWN.contains(i) && !SLOW.contains(i))
        .map(|i| format!("node-{i}"))
        .collect();
    assert_eq!(
        rows[5..],
        healthy,
        "natural order after the nodes needing a look"
    );
    assert!(dom.contains("995/1000 nodes healthy"), "header summary");
    assert!(dom.contains(r#"<span class="err">3 unhealthy</span>"#));

    // The map: one cell per node, in the table's order, coloured by health, filled by
    // load.
    let cells = tags(&dom, "a", "data-cell=");
    assert_eq!(cells.len(), BIG);
    assert_eq!(attr(cells[0], "class"), Some("Unhealthy"));
    assert_eq!(attr(cells[3], "class"), Some("Pending"));
    assert_eq!(attr(cells[5], "href"), Some("#node=node-1"));
    let load = |name: &str| {
        let c = cells
            .iter()
            .find(|c| attr(c, "data-cell") == Some(name))
            .unwrap_or_else(|| panic!("no cell {name}"));
        attr(c, "data-load").map(str::to_string)
    };
    // node-4 reserves 4 of 8 CPUs (and 4 of 16 GiB): half; node-8 all its CPUs; node-9
    // nothing.
    assert_eq!(load("node-4").as_deref(), Some("50"));
    assert_eq!(load("node-8").as_deref(), Some("100"));
    assert_eq!(load("node-9").as_deref(), Some("0"));
    // All of them on one screen: the map ends inside the 1000-pixel-high window.
    let bottom = browser
        .eval("document.getElementById('map').getBoundingClientRect().bottom")
        .await;
    assert!(
        bottom.as_f64().is_some_and(|b| b < 1000.0),
        "map ends at {bottom}"
    );

    // The summary by zone: nodes, healthy, containers, as the engines have them.
    for z in 0..4 {
        let members: Vec<usize> = (1..=BIG).filter(|i| i % 4 == z).collect();
        let answered = |i: &usize| !DOWN.contains(i) && !SLOW.contains(i);
        let zone = format!("z{z}");
        let healthy = members.iter().filter(|i| answered(i)).count() as u64;
        // Labels come with the engine's facts: a node that never answered has none.
        assert_eq!(group_cell(&dom, &zone, "nodes"), Some(healthy), "{zone}");
        assert_eq!(group_cell(&dom, &zone, "healthy"), Some(healthy), "{zone}");
        let containers: usize = members
            .iter()
            .filter(|i| answered(i))
            .map(|i| 1 + usize::from(reserved_cpus(*i) > 0))
            .sum();
        assert_eq!(
            group_cell(&dom, &zone, "containers"),
            Some(containers as u64),
            "{zone}"
        );
    }

    assert_eq!(group_cell(&dom, "(none)", "nodes"), Some(5));
    assert_eq!(group_cell(&dom, "(none)", "healthy"), Some(0));

    // Typed into the filter box: a label and part of a name, both must match.
    let answered = |i: &usize| !DOWN.contains(i) && !SLOW.contains(i);
    let wanted: Vec<String> = (1..=BIG)
        .filter(|i| answered(i) && i % 4 == 2 && format!("node-{i}").contains("node-4"))
        .map(|i| format!("node-{i}"))
        .collect();
    assert!(wanted.len() > 10, "{wanted:?}");
    browser
        .eval("document.getElementById('filter').focus()")
        .await;
    browser
        .call(
            "Input.insertText",
            serde_json::json!({"text": "zone=z2 node-4"}),
        )
        .await;
    let visible = "[...document.querySelectorAll('#nodes tr[data-node]')].map(r => r.dataset.node)";
    browser
        .wait_until(&format!("{visible}.length === {}", wanted.len()), 5)
        .await;
    assert_eq!(browser.eval(visible).await, serde_json::json!(wanted));
    assert_eq!(
        browser.eval("location.hash").await,
        "#q=zone%3Dz2+node-4",
        "the filter is kept in the URL"
    );
    // A click on a map cell opens that node's row, shown beside the filtered ones, and
    // scrolled to.
    browser
        .eval(r#"document.querySelector('a[data-cell="node-500"]').click()"#)
        .await;
    browser
        .wait_until(
            r#"document.querySelector('#nodes tr.open')?.dataset.node === 'node-500'"#,
            5,
        )
        .await;
    assert_eq!(
        browser.eval("location.hash").await,
        "#q=zone%3Dz2+node-4&node=node-500"
    );
    let dom = browser.dom().await;
    let shown: Vec<&str> = tags(&dom, "tr", "data-node=")
        .into_iter()
        .filter_map(|a| attr(a, "data-node"))
        .collect();
    let mut with_open: Vec<&str> = wanted.iter().map(String::as_str).collect();
    with_open.push("node-500");
    with_open.sort_by(|a, b| natural(a, b));
    assert_eq!(shown, with_open);
    assert!(
        dom.contains(&format!("{} of 1000 nodes shown", wanted.len() + 1)),
        "filter count"
    );
    assert!(dom.contains(r#"<tr class="details" data-details="node-500">"#));
    let cell500 = tags(&dom, "a", r#"data-cell="node-500""#);
    assert_eq!(attr(cell500[0], "class"), Some("Healthy open"));
    let dimmed = tags(&dom, "a", "data-cell=")
        .into_iter()
        .filter(|a| attr(a, "class").is_some_and(|c| c.contains("dim")))
        .count();
    assert_eq!(
        dimmed,
        BIG - wanted.len() - 1,
        "cells outside the filter are dimmed"
    );
    let top = browser
        .eval(r#"document.querySelector('#nodes tr.open').getBoundingClientRect().top"#)
        .await;
    assert!(
        top.as_f64().is_some_and(|t| (0.0..1000.0).contains(&t)),
        "open row at {top}"
    );
    browser.eval("window.scrollTo(0, 0)").await;
    let png = browser.screenshot().await;
    tokio::fs::write(shots.join("cluster-page-1000-filtered.png"), png)
        .await
        .unwrap();
    // A poll redraws everything: the filter and the open row stay. Then a health word
    // matches the health only ("healthy" is part of "unhealthy", not of its meaning).
    next_poll(&mut browser).await;
    assert_eq!(
        browser.eval(&format!("{visible}.length")).await,
        wanted.len() + 1
    );
    let filter = |text: &str| {
        format!(
            "(() => {{ const f = document.getElementById('filter'); f.value = '{text}'; f.dispatchEvent(new Event('input')); }})()"
        )
    };
    browser.eval(&filter("unhealthy")).await;
    let mut unhealthy: Vec<String> = by_addr(&DOWN);
    unhealthy.push("node-500".to_string());
    assert_eq!(browser.eval(visible).await, serde_json::json!(unhealthy));
    browser.eval(&filter("healthy")).await;
    assert_eq!(
        browser.eval(&format!("{visible}.length")).await,
        BIG - DOWN.len() - SLOW.len()
    );

    drop(browser);
    handle.stop(false).await;
    fleet.stop().await;
    eprintln!("whole test: {:.1?}", t0.elapsed());
}

/// Waits until the page has drawn one more answer than it had.
async fn next_poll(browser: &mut cdp::Browser) {
    let polls = browser.eval("Number(document.body.dataset.polls)").await;
    let polls = polls.as_u64().expect("the page counts its polls");
    browser
        .wait_until(
            &format!("Number(document.body.dataset.polls) > {polls}"),
            10,
        )
        .await;
}

/// Natural order, as the page sorts: digit runs compare as numbers.
fn natural(a: &str, b: &str) -> std::cmp::Ordering {
    let chunks = |s: &str| {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let d = c.is_ascii_digit();
            match out.last_mut() {
                Some((kind, run)) if *kind == d => run.push(c),
                _ => out.push((d, c.to_string())),
            }
        }
        out
    };
    let (x, y) = (chunks(a), chunks(b));
    for (p, q) in x.iter().zip(&y) {
        let o = if p.0 && q.0 {
            let (p, q) = (p.1.trim_start_matches('0'), q.1.trim_start_matches('0'));
            p.len().cmp(&q.len()).then(p.cmp(q))
        } else {
            p.1.cmp(&q.1)
        };
        if o.is_ne() {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

/// Just enough of the Chrome DevTools Protocol to drive one page of a headless Chromium
/// in real time: navigate, evaluate JavaScript, type, take a screenshot. (`--dump-dom`
/// runs the page in virtual time, where the page's own clock says nothing about how long
/// a person would wait.)
mod cdp {
    use actix_codec::Framed;
    use awc::ws::{Codec, Frame, Message};
    use awc::BoxedSocket;
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{json, Value};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncBufReadExt, BufReader};

    pub struct Browser {
        _child: tokio::process::Child,
        _profile: tempfile::TempDir,
        ws: Framed<BoxedSocket, Codec>,
        next: u64,
    }

    impl Browser {
        /// Starts Chromium with a DevTools port the OS picks and attaches to its page.
        pub async fn start(window: &str) -> Browser {
            let profile = tempfile::tempdir().expect("profile dir");
            let mut child = tokio::process::Command::new(super::chromium())
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--hide-scrollbars",
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--window-size={window}"))
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("chromium runs (Debian: apt-get install chromium)");
            let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
            let deadline = Instant::now() + Duration::from_secs(30);
            let host = loop {
                let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                    .await
                    .expect("chromium says where DevTools listen within 30 s")
                    .expect("chromium's stderr")
                    .expect("chromium ended before DevTools listened");
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://") {
                    break rest.split('/').next().expect("host:port").to_string();
                }
            };
            // Chromium's stderr must keep draining, or it blocks on a full pipe.
            actix_rt::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            let client = awc::Client::default();
            let targets: Value = client
                .get(format!("http://{host}/json/list"))
                .send()
                .await
                .expect("DevTools answer")
                .json()
                .await
                .expect("target list");
            let page = targets
                .as_array()
                .and_then(|t| t.iter().find(|t| t["type"] == "page"))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                .expect("a page target")
                .to_string();
            let (_, ws) = client
                .ws(page)
                .max_frame_size(64 << 20)
                .connect()
                .await
                .expect("DevTools websocket");
            Browser {
                _child: child,
                _profile: profile,
                ws,
                next: 0,
            }
        }

        /// Calls `method`; answers its `result` (events in between are skipped).
        pub async fn call(&mut self, method: &str, params: Value) -> Value {
            self.next += 1;
            let id = self.next;
            let msg = json!({"id": id, "method": method, "params": params}).to_string();
            self.ws
                .send(Message::Text(msg.into()))
                .await
                .expect("send to DevTools");
            let mut partial = Vec::new();
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                    .await
                    .unwrap_or_else(|_| panic!("{method}: no answer in 30 s"))
                    .expect("DevTools closed")
                    .expect("DevTools frame");
                let text = match frame {
                    Frame::Text(b) => b.to_vec(),
                    Frame::Continuation(item) => {
                        use actix_http::ws::Item;
                        match item {
                            Item::FirstText(b) | Item::Continue(b) => {
                                partial.extend_from_slice(&b);
                                continue;
                            }
                            Item::Last(b) => {
                                partial.extend_from_slice(&b);
                                std::mem::take(&mut partial)
                            }
                            Item::FirstBinary(_) => continue,
                        }
                    }
                    _ => continue,
                };
                let v: Value = serde_json::from_slice(&text).expect("DevTools JSON");
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {}", v["error"]);
                    return v["result"].clone();
                }
            }
        }

        /// Evaluates `expr` in the page; answers its value.
        pub async fn eval(&mut self, expr: &str) -> Value {
            let r = self
                .call(
                    "Runtime.evaluate",
                    json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
                )
                .await;
            assert!(
                r.get("exceptionDetails").is_none(),
                "{expr}: {}",
                r["exceptionDetails"]
            );
            r["result"]["value"].clone()
        }

        /// Evaluates `expr` every 20 ms until it is true, for up to `secs`.
        pub async fn wait_until(&mut self, expr: &str, secs: u64) {
            let deadline = Instant::now() + Duration::from_secs(secs);
            while self.eval(expr).await != Value::Bool(true) {
                assert!(Instant::now() < deadline, "never true: {expr}");
                actix_rt::time::sleep(Duration::from_millis(20)).await;
            }
        }

        /// The page's DOM as HTML.
        pub async fn dom(&mut self) -> String {
            self.eval("document.documentElement.outerHTML")
                .await
                .as_str()
                .expect("outerHTML")
                .to_string()
        }

        /// A PNG of the viewport.
        pub async fn screenshot(&mut self) -> Vec<u8> {
            let r = self
                .call("Page.captureScreenshot", json!({"format": "png"}))
                .await;
            base64(r["data"].as_str().expect("screenshot data"))
        }
    }

    /// Standard base64, as DevTools sends binary data.
    fn base64(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        };
        let bytes: Vec<u8> = s.bytes().filter(|c| *c != b'=').map(val).collect();
        let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
        for chunk in bytes.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, v)| n | u32::from(*v) << (18 - 6 * i));
            out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
        }
        out
    }
}
