//! Serves a simulated fleet until killed: `cargo run -p shoal-sim --example sim_fleet -- 1000 20000 30`
//! (engines, port base, containers per engine). Prints one `tcp://` address per engine.

use shoal_sim::{EngineConfig, FleetOptions, SimFleet};

#[actix_rt::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let port_base: Option<u16> = args.next().and_then(|a| a.parse().ok()).filter(|p| *p != 0);
    let per: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let engines = (0..n)
        .map(|i| EngineConfig::new(format!("sim-{i}")).containers(per))
        .collect();
    let opts = FleetOptions {
        port_base,
        ..FleetOptions::default()
    };
    let fleet = SimFleet::start(engines, opts).await.expect("start fleet");
    for e in fleet.engines().iter().take(5) {
        println!("{} {}", e.name(), e.url());
    }
    println!("ready: {} engines", fleet.len());
    std::future::pending::<()>().await;
}
