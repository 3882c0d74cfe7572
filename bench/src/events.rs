//! The event fan-in scenario: events emitted by the sim processes, each to be delivered to
//! every `/events` subscriber of Shoal.

use super::load::{round3, Http};
use super::procs::{CpuMeter, ShoalProc, SimProc};
use super::Bench;
use serde_json::json;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Event fan-in: `--events` events from all engines at `--event-rate`, each to be delivered
/// to every one of `--subscribers` `/events` clients.
pub(crate) async fn events(b: &Bench, shoal: &ShoalProc, sims: &mut [SimProc], n: usize) {
    let subs = b.args.subscribers;
    let http = Http::new(&shoal.host, subs + 4);
    let connected = Rc::new(Cell::new(0usize));
    let ended = Rc::new(Cell::new(0usize));
    let counters: Vec<Rc<Cell<u64>>> = (0..subs).map(|_| Rc::new(Cell::new(0))).collect();
    // `{"label":["bench=fanin"]}`: only the benchmark's events.
    let path = "/events?filters=%7B%22label%22%3A%5B%22bench%3Dfanin%22%5D%7D";
    let tasks: Vec<_> = counters
        .iter()
        .map(|c| {
            let (http, c, connected, ended) =
                (http.clone(), c.clone(), connected.clone(), ended.clone());
            actix_rt::spawn(async move {
                connected.set(connected.get() + 1);
                let _ = http.count_lines(path, c).await;
                ended.set(ended.get() + 1);
            })
        })
        .collect();
    // A subscription exists once its request reached the hub; give them time to connect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = b.args.events;
    let per_sim = total / sims.len() as u64;
    let rate = b.args.event_rate / sims.len() as f64;
    let mut meter = CpuMeter::start(shoal.pid()).await;
    let start = Instant::now();
    let mut emitted = 0;
    let nsims = sims.len() as u64;
    for (i, s) in sims.iter_mut().enumerate() {
        let count = if i == 0 {
            total - per_sim * (nsims - 1)
        } else {
            per_sim
        };
        emitted += count;
        if let Err(e) = s.emit(rate, count) {
            b.fail("events", n, &e);
            return;
        }
    }
    let mut emit_s: f64 = 0.0;
    for s in sims.iter_mut() {
        match s.emitted().await {
            Ok(t) => emit_s = emit_s.max(t),
            Err(e) => {
                b.fail("events", n, &e);
                return;
            }
        }
    }
    let want = emitted * subs as u64;
    let sum = |c: &[Rc<Cell<u64>>]| c.iter().map(|x| x.get()).sum::<u64>();
    let mut last = (sum(&counters), Instant::now());
    let mut done_at = start.elapsed();
    while last.0 < want && last.1.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = sum(&counters);
        if now != last.0 {
            last = (now, Instant::now());
            done_at = start.elapsed();
        }
    }
    for t in tasks {
        t.abort();
    }
    // Per event in: its parse, its filtering, and its delivery to every subscriber.
    let cpu_us = meter.per_op_us(emitted as usize).await;
    let delivered = last.0;
    let lost = want.saturating_sub(delivered);
    let short = counters.iter().filter(|c| c.get() < emitted).count();
    let rate_in = emitted as f64 / emit_s.max(1e-9);
    let out_rate = delivered as f64 / done_at.as_secs_f64().max(1e-9);
    b.report(
        format!(
            "{:<18} N={n:<5} {emitted} events at {rate_in:.0}/s in, {out_rate:.0} deliveries/s to {subs} subscribers; lost {lost} of {want} ({short} subscribers short, {} streams ended); last delivery {:.3} s after the first emit; Shoal CPU {cpu_us:.0} µs/event",
            "events",
            ended.get(),
            done_at.as_secs_f64()
        ),
        json!({"scenario": "events", "nodes": n, "containers_per_node": b.args.containers_per_engine,
               "subscribers": subs, "connected": connected.get(), "events": emitted,
               "events_per_sec_in": rate_in.round(), "deliveries_per_sec": out_rate.round(),
               "expected_deliveries": want, "delivered": delivered, "lost": lost,
               "subscribers_short": short, "streams_ended": ended.get(),
               "drain_s": round3(done_at.as_secs_f64()),
               "cpu_us_per_op": cpu_us.round(),
               "ok": lost == 0}),
    );
}
