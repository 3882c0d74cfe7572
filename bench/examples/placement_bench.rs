//! Placement decisions per second and p50/p99 decision latency at 100, 1,000 and 10,000
//! nodes, spread and binpack, all filters on, expressions in every request.
//!
//! It drives the pure `Placer` (the SchedulerActor's core) in a loop: each timed call
//! decides and reserves (name check, filters, strategy, reservation); the reservation is
//! then cancelled, untimed, so the cluster stays in the same state for every decision.
//!
//!     cargo run --release -p shoal-bench --example placement_bench
//!
//! One human line and one JSON line per case.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard_stubs::models::ContainerCreateBody;
use serde_json::json;
use shoal_actors::scheduler::{
    ContainerInfo, FilterKind, HostPort, Offer, PlacementRequest, Placer, SchedulerConfig, Strategy,
};

const GB: u64 = 1 << 30;

/// A node as a real cluster has it: labels, facts, 20 containers, a few images, ports,
/// a local network and volume, some reservations.
fn offer(i: usize) -> Offer {
    let name = format!("node-{i:05}");
    let mut o = Offer::new(&name)
        .capacity(32, 128 * GB)
        .label("zone", &format!("z{}", i % 4))
        .label("storage", if i.is_multiple_of(3) { "hdd" } else { "ssd" })
        .label("containerslots", "500")
        .reserved((i % 7) as u64 * 1_000_000_000, (i % 5) as u64 * 4 * GB)
        .image(&format!("sha256:{i:064x}"), &["nginx:1.25", "nginx:latest"])
        .network(
            &format!("net-{i}"),
            &format!("{i:064x}"),
            Default::default(),
        )
        .volume(&format!("vol-{i}"));
    Arc::make_mut(&mut o.facts).storage_driver = "overlay2".into();
    Arc::make_mut(&mut o.facts).kernel_version = "6.1.0-18-amd64".into();
    Arc::make_mut(&mut o.facts).os_type = "linux".into();
    Arc::make_mut(&mut o.facts).operating_system = "Debian GNU/Linux 12".into();
    if i.is_multiple_of(2) {
        o = o.image(&format!("sha256:{:064x}", i + 1_000_000), &["redis:7"]);
        o = o.port(HostPort::tcp(80));
    }
    for j in 0..20 {
        o = o.container(
            ContainerInfo::new(format!("{i:08x}{j:056x}"), &format!("c-{i}-{j}"))
                .image("nginx:1.25", "sha256:nginx")
                .label("app", &format!("svc{}", j % 5)),
        );
    }
    o
}

/// The request shapes the bench cycles through: each carries placement expressions
/// (exact, glob, regex, negation, soft), resources and a host port.
fn requests() -> Vec<PlacementRequest> {
    let envs: [&[&str]; 6] = [
        &["constraint:zone==z2", "affinity:image==redis"],
        &[
            "constraint:storage!=hdd",
            "constraint:zone==z*",
            "affinity:container!=c-5-1",
        ],
        &["constraint:storage==/^ss/", "constraint:zone==~z2"],
        &[
            "constraint:node!=node-00003",
            "affinity:app==svc*",
            "constraint:kernelversion==6.*",
        ],
        &["constraint:zone==~nowhere", "constraint:ostype==linux"],
        &[
            "affinity:image!=redis",
            "whitelist:node!=node-00001|node-00002",
        ],
    ];
    envs.iter()
        .enumerate()
        .map(|(k, env)| {
            let body: ContainerCreateBody = serde_json::from_value(json!({
                "Image": "busybox",
                "Env": env,
                "HostConfig": {
                    "NanoCpus": 250_000_000_i64,
                    "Memory": 256 * 1024 * 1024_i64,
                    "PortBindings": {"80/tcp": [{"HostPort": (8000 + k).to_string()}]}
                }
            }))
            .expect("valid body");
            PlacementRequest::from_create(&body, None).expect("valid request")
        })
        .collect()
}

fn run(nodes: usize, strategy: Strategy) {
    let config = SchedulerConfig::default()
        .with_strategy(strategy)
        .with_filters(&FilterKind::ALL)
        .with_seed(7);
    let mut placer = Placer::new(config);
    for i in 0..nodes {
        placer.update_offer(Arc::new(offer(i)));
    }
    let shapes = requests();
    let iterations = if nodes >= 10_000 { 20_000 } else { 100_000 };
    let warmup = iterations / 10;
    let mut lat = Vec::with_capacity(iterations);
    let mut refused = 0usize;
    let mut busy = Duration::ZERO;
    let mut shape_ns = vec![0u64; shapes.len()];
    for k in 0..warmup + iterations {
        let mut req = shapes[k % shapes.len()].clone();
        req.name = Some(format!("bench-{k}"));
        let t = Instant::now();
        let r = placer.place(&req);
        let dt = t.elapsed();
        match r {
            Ok(p) => {
                placer.cancel(&p.reservation);
            }
            Err(_) => refused += usize::from(k >= warmup),
        }
        if k >= warmup {
            if std::env::var_os("BENCH_SHAPES").is_some() {
                shape_ns[k % shapes.len()] += dt.as_nanos() as u64;
            }
            busy += dt;
            lat.push(dt.as_nanos() as u64);
        }
    }
    if std::env::var_os("BENCH_SHAPES").is_some() {
        let per = iterations as u64 / shapes.len() as u64;
        let avg: Vec<u64> = shape_ns.iter().map(|t| t / per).collect();
        println!("mean ns per request shape: {avg:?}");
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    let (p50, p99) = (pct(0.50), pct(0.99));
    let per_sec = iterations as f64 / busy.as_secs_f64();
    println!(
        "placement {nodes:>6} nodes, {strategy:<7}: {per_sec:>10.0} decisions/s, p50 {p50:.2} µs, p99 {p99:.2} µs ({iterations} decisions, {refused} refused)"
    );
    println!(
        "{}",
        json!({
            "bench": "placement",
            "nodes": nodes,
            "strategy": strategy.to_string(),
            "filters": "all",
            "decisions": iterations,
            "refused": refused,
            "decisions_per_sec": per_sec.round(),
            "p50_us": p50,
            "p99_us": p99,
        })
    );
}

fn main() {
    for nodes in [100, 1_000, 10_000] {
        for strategy in [Strategy::Spread, Strategy::Binpack] {
            run(nodes, strategy);
        }
    }
}
