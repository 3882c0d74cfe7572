//! The cluster page in a real browser: headless Chromium (Debian: `apt-get install
//! chromium`) loads `/shoal/` from a Shoal over 3 simulated engines, and the DOM must show
//! the three nodes, healthy, with their bars. A screenshot is kept in `test-artifacts/`.

mod sim_fixture;

use shoal_sim::EngineConfig;
use sim_fixture::SimCluster;
use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

/// Runs headless Chromium on `url` with `extra` arguments; answers stdout. Blocking, so
/// it runs off the test's thread (the Shoal under test serves from its own threads).
async fn run_chromium(url: String, extra: Vec<String>) -> String {
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
                "--window-size=1280,800",
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
