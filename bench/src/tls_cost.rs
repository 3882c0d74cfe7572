//! What TLS and the authorization guard cost a request (`proxy_tls`, `authz_guard`).
//!
//! Three Shoals run side by side in one run, each in front of one simulated engine of its
//! own kind, each engine in a `shoal sim` process:
//!
//! - `plain`: plain HTTP from the client to Shoal and from Shoal to its engine;
//! - `tls`: mutual TLS on both legs, the client showing a certificate to Shoal
//!   (`--tlsverify`) and Shoal one to its engine (served as `dockerd --tlsverify` is);
//! - `guarded`: `tls` plus `--authz-policy`, over the same TLS engine, the client being a
//!   tenant of the policy (the guard's most work: route rule, then the tenant's ownership
//!   of the container);
//! - `tls_twin`: a second `tls`, the control: what two identical Shoals differ by in the
//!   same run (`noise_floor`) is the resolution of the other two comparisons on a machine
//!   shared with other work.
//!
//! Every connection is kept alive, so the handshakes are paid once: what is measured is
//! the per-request cost, the figure issue 12's target (≤ 50 µs added at p50) and issue
//! 13's (≤ 5 µs for the guard) are about. Each route is measured on its own: `/_ping`
//! (Shoal answers it: the client leg alone), a container's inspect (Shoal's cache, and for
//! the guard the tenant's ownership check) and its `top` (streamed to the engine and back:
//! both legs). The serial latencies of the three sides are taken in turns, request by
//! request, so the machine's other load weighs on all alike; the requests/s one side after
//! the other, with Shoal's CPU time per request (utime + stime from `/proc`) beside them.

use super::cluster::{measure_at, wait_full};
use super::load::{round3, serial_turns, Http, Stats};
use super::pki::{Pki, CLIENT_CN};
use super::procs::{usage_of, ShoalProc, SimProc};
use super::Bench;
use awc::http::Method;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Issue 12's target: TLS on both legs adds at most this at p50 on a kept-alive connection.
const TARGET_TLS_ADDED_P50_US: f64 = 50.0;
/// Issue 13's target: the guard with a policy loaded adds at most this at p50.
const TARGET_GUARD_ADDED_P50_US: f64 = 5.0;

/// The tenant of the bench's client in the policy.
const TENANT: &str = "bench";

/// The policy of the `guarded` Shoal: the bench's client a tenant (the guard checks the
/// route, then that the container is the tenant's), beside the other kinds of client.
fn policy() -> String {
    format!(
        r#"default = "deny"

[clients.auditor]
read_only = true

[clients.{CLIENT_CN}]
tenant = "{TENANT}"
allow_exec = true
allow_host_mounts = ["/srv/{TENANT}"]
constraints = []

[clients.ops]
allow_privileged = true
allow_host_namespaces = true
allow_host_mounts = ["/"]
allow_capabilities = ["ALL"]
allow_devices = true
allow_exec = true
"#
    )
}

/// One measured route; `{id}` stands for the container each side asks about.
struct Route {
    path: &'static str,
    /// Which legs of a request it crosses: Shoal answers `client` routes itself.
    legs: &'static str,
}

const ROUTES: [Route; 3] = [
    Route {
        path: "/_ping",
        legs: "client",
    },
    Route {
        path: "/containers/{id}/json",
        legs: "client",
    },
    Route {
        path: "/containers/{id}/top",
        legs: "both",
    },
];

/// One Shoal under measurement and the client that asks it.
struct Side {
    name: &'static str,
    shoal: ShoalProc,
    http: Http,
    /// The running container its requests are about.
    container: String,
}

/// Requests/s at `--concurrency` clients, and Shoal's CPU µs per request meanwhile.
async fn loaded(b: &Bench, side: &Side, paths: &[String]) -> (Stats, f64) {
    let (_, before) = usage_of(side.shoal.pid()).await;
    let stats = measure_at(b, &side.http, paths, b.args.concurrency).await;
    let (_, after) = usage_of(side.shoal.pid()).await;
    let cpu_us = (after - before) * 1e6 / (stats.count().max(1) as f64);
    (stats, cpu_us)
}

/// The figures of one side for one route.
struct Figures {
    serial: Stats,
    loaded: Stats,
    cpu_us: f64,
}

impl Figures {
    fn human(&self) -> String {
        format!(
            "p50 {:.3} ms p99 {:.3} ms {:.0} req/s cpu {:.0} µs/req",
            self.serial.ms(0.5),
            self.serial.ms(0.99),
            self.loaded.per_sec(),
            self.cpu_us
        )
    }

    fn json(&self) -> Value {
        json!({"p50_ms": round3(self.serial.ms(0.5)), "p99_ms": round3(self.serial.ms(0.99)),
               "per_sec": self.loaded.per_sec().round(), "cpu_us_per_request": self.cpu_us.round(),
               "serial_requests": self.serial.count(), "loaded_requests": self.loaded.count()})
    }

    fn errors(&self) -> (u64, Option<String>) {
        (
            self.serial.errors + self.loaded.errors,
            self.serial
                .first_error
                .clone()
                .or(self.loaded.first_error.clone()),
        )
    }
}

/// `after` against `before`: one human line and one JSON line.
#[allow(
    clippy::too_many_arguments,
    reason = "one report line: its labels and both sides"
)]
fn compare(
    b: &Bench,
    scenario: &str,
    route: &Route,
    what: (&str, &str),
    before: &Figures,
    after: &Figures,
    target_us: Option<f64>,
) {
    let added_us = (after.serial.ms(0.5) - before.serial.ms(0.5)) * 1000.0;
    let ratio_p50 = after.serial.ms(0.5) / before.serial.ms(0.5);
    let ratio_p99 = after.serial.ms(0.99) / before.serial.ms(0.99);
    let ratio_per_sec = after.loaded.per_sec() / before.loaded.per_sec();
    let target_met = target_us.is_none_or(|t| added_us <= t);
    let (e1, f1) = before.errors();
    let (e2, f2) = after.errors();
    let errors = e1 + e2;
    let first_error = f1
        .or(f2)
        .map(|e| format!(" {errors} ERRORS, first: {e}"))
        .unwrap_or_default();
    let label = format!("{scenario}{}", route.path.replace("/containers/{id}", ""));
    b.report(
        format!(
            "{label:<24} {} {} | {} {} | added p50 {added_us:.1} µs, ratio p50 {ratio_p50:.2} p99 {ratio_p99:.2} req/s {ratio_per_sec:.2}, cpu {:+.0} µs/req{}{first_error}",
            what.0,
            before.human(),
            what.1,
            after.human(),
            after.cpu_us - before.cpu_us,
            match target_us {
                Some(t) if target_met => format!("; target ≤{t} µs met"),
                Some(t) => format!("; target ≤{t} µs MISSED"),
                None => String::new(),
            },
        ),
        json!({"scenario": scenario, "route": route.path, "legs": route.legs, "nodes": 1,
               "concurrency": b.args.concurrency,
               what.0: before.json(), what.1: after.json(),
               "added_p50_us": round3(added_us), "ratio_p50": round3(ratio_p50),
               "ratio_p99": round3(ratio_p99), "ratio_per_sec": round3(ratio_per_sec),
               "added_cpu_us_per_request": (after.cpu_us - before.cpu_us).round(),
               "target_added_p50_us_max": target_us, "target_met": target_met,
               "errors": errors,
               "ok": errors == 0 && before.serial.count() > 0 && after.serial.count() > 0}),
    );
}

/// The TLS flags of the Shoals: mutual TLS to clients and, with the same files, to engines.
fn tls_flags(pki: &Pki) -> Vec<String> {
    let mut flags = vec!["--tlsverify".to_string()];
    for (flag, path) in [
        ("--tlscacert", &pki.ca),
        ("--tlscert", &pki.shoal.cert),
        ("--tlskey", &pki.shoal.key),
    ] {
        flags.push(flag.into());
        flags.push(path.display().to_string());
    }
    flags
}

/// One simulated engine, TLS-served when `pki` is given; answers the process and its
/// `nodes://` discovery.
async fn engine(b: &Bench, index: usize, pki: Option<&Pki>) -> Result<(SimProc, String), String> {
    let args: Vec<String> = match pki {
        Some(p) => [
            ("--tlscacert", &p.ca),
            ("--tlscert", &p.engine.cert),
            ("--tlskey", &p.engine.key),
        ]
        .into_iter()
        .flat_map(|(f, v)| [f.to_string(), v.display().to_string()])
        .collect(),
        None => Vec::new(),
    };
    let sim = SimProc::start(
        &b.exe,
        &b.dir,
        index,
        1,
        b.args.containers_per_engine,
        0,
        &args,
    )
    .await?;
    let nodes = format!("nodes://{}", sim.addrs[0].trim_start_matches("tcp://"));
    Ok((sim, nodes))
}

/// Creates and starts a container through `http`, labelled as the tenant's (forced anyway
/// by a guarded Shoal); answers its ID.
async fn run_container(http: &Http) -> Result<String, String> {
    let body = json!({"Image": "busybox:latest", "Cmd": ["sleep", "3600"],
                      "Labels": {"com.shoal.tenant": TENANT}});
    let a = http
        .call(
            Method::POST,
            "/containers/create",
            Some(body.to_string().into()),
        )
        .await?;
    if a.status != 201 {
        return Err(format!(
            "create: status {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        ));
    }
    let id = serde_json::from_slice::<Value>(&a.body)
        .ok()
        .and_then(|v| v["Id"].as_str().map(str::to_string))
        .ok_or("create: no Id")?;
    let a = http
        .call(Method::POST, &format!("/containers/{id}/start"), None)
        .await?;
    if a.status != 204 {
        return Err(format!("start {id}: status {}", a.status));
    }
    Ok(id)
}

/// Waits until `http` answers 200 to `top` of `id` (another Shoal learns a container from
/// its engine's events).
async fn wait_running(http: &Http, id: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = format!("/containers/{id}/top");
    loop {
        match http.get(&path).await {
            Ok(a) if a.status == 200 => return Ok(()),
            Ok(a) if Instant::now() > deadline => {
                return Err(format!("{path}: status {}", a.status));
            }
            Err(e) if Instant::now() > deadline => return Err(e),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn start_shoal(
    b: &Bench,
    name: &str,
    nodes: &str,
    extra: &[String],
    pki: Option<&Pki>,
) -> Result<ShoalProc, String> {
    let log = b.dir.join(format!("shoal-tls-{name}.log"));
    let shoal =
        ShoalProc::start_with(&b.exe, log, nodes, extra, pki.map(|p| p.client.clone())).await?;
    Ok(shoal)
}

/// Both scenarios: TLS against plaintext, the guard against none.
pub(super) async fn tls_cost(b: &Bench) -> Result<(), String> {
    let dir = b.dir.join("tls");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| e.to_string())?;
    let pki = Pki::make(&dir).await?;
    let policy_file = dir.join("policy.toml");
    write(&policy_file, &policy()).await?;
    let m = b.args.containers_per_engine as u64;
    // Engines sim-100 (plain) and sim-101 (TLS), apart from the other scenarios' fleets.
    let (_plain_sim, plain_nodes) = engine(b, 100, None).await?;
    let (_tls_sim, tls_nodes) = engine(b, 101, Some(&pki)).await?;
    let tls = tls_flags(&pki);
    let mut guarded_flags = tls.clone();
    guarded_flags.extend(["--authz-policy".into(), policy_file.display().to_string()]);

    let plain = start_shoal(b, "plain", &plain_nodes, &[], None).await?;
    let tlsd = start_shoal(b, "tls", &tls_nodes, &tls, Some(&pki)).await?;
    let guarded = start_shoal(b, "guarded", &tls_nodes, &guarded_flags, Some(&pki)).await?;
    let twin = start_shoal(b, "tls-twin", &tls_nodes, &tls, Some(&pki)).await?;
    wait_full(&plain, 1, m).await?;
    wait_full(&tlsd, 1, m).await?;
    wait_full(&twin, 1, m).await?;
    // The tenant sees none of the engine's containers (they carry no tenant label).
    wait_full(&guarded, 1, 0).await?;

    let conns = b.args.concurrency + 4;
    let side = |name, shoal: ShoalProc| {
        let http = shoal.http(conns);
        Side {
            name,
            shoal,
            http,
            container: String::new(),
        }
    };
    let mut plain = side("plain", plain);
    let mut tlsd = side("tls", tlsd);
    let mut guarded = side("guarded", guarded);
    let mut twin = side("tls_twin", twin);
    // The same container on both TLS sides (the tenant's, made through the guarded Shoal);
    // one of the same body and labels on the plain engine.
    plain.container = run_container(&plain.http).await?;
    guarded.container = run_container(&guarded.http).await?;
    tlsd.container = guarded.container.clone();
    twin.container = guarded.container.clone();
    for s in [&plain, &tlsd, &guarded, &twin] {
        wait_running(&s.http, &s.container).await?;
    }
    println!(
        "# proxy_tls: sides {}, {} (mutual TLS both legs), {} (and --authz-policy, client a tenant), {} (control: tls again); certificates in {}",
        plain.name,
        tlsd.name,
        guarded.name,
        twin.name,
        dir.display()
    );

    for route in &ROUTES {
        let paths = |s: &Side| vec![route.path.replace("{id}", &s.container)];
        let (pp, tp, gp, wp) = (paths(&plain), paths(&tlsd), paths(&guarded), paths(&twin));
        let [ps, ts, gs, ws] = serial_turns(
            b,
            [
                (&plain.http, &pp[..]),
                (&tlsd.http, &tp[..]),
                (&guarded.http, &gp[..]),
                (&twin.http, &wp[..]),
            ],
        )
        .await;
        let (pl, pc) = loaded(b, &plain, &pp).await;
        let (tl, tc) = loaded(b, &tlsd, &tp).await;
        let (gl, gc) = loaded(b, &guarded, &gp).await;
        let (wl, wc) = loaded(b, &twin, &wp).await;
        let fig = |serial, loaded, cpu_us| Figures {
            serial,
            loaded,
            cpu_us,
        };
        let (p, t, g, w) = (
            fig(ps, pl, pc),
            fig(ts, tl, tc),
            fig(gs, gl, gc),
            fig(ws, wl, wc),
        );
        compare(
            b,
            "proxy_tls",
            route,
            ("plain", "tls"),
            &p,
            &t,
            Some(TARGET_TLS_ADDED_P50_US),
        );
        compare(
            b,
            "authz_guard",
            route,
            ("tls", "guarded"),
            &t,
            &g,
            Some(TARGET_GUARD_ADDED_P50_US),
        );
        compare(b, "noise_floor", route, ("tls", "tls_twin"), &t, &w, None);
    }
    Ok(())
}

async fn write(path: &Path, text: &str) -> Result<(), String> {
    tokio::fs::write(path, text)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))
}
