//! The create scenario: `--creates` creates with placement expressions, at `--concurrency`
//! clients, then a start of each container created.

use super::load::{drive, round3, Drive, Http};
use super::procs::CpuMeter;
use super::Bench;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::time::Duration;

/// The create bodies the benchmark cycles through: every one carries placement
/// expressions (exact, glob, regex, negation, soft, affinity, whitelist) and reservations.
fn create_body(k: usize) -> bytes::Bytes {
    let env: &[&str] = match k % 6 {
        0 => &["constraint:zone==z1", "affinity:image==busybox"],
        1 => &["constraint:storage!=hdd", "constraint:zone==z*"],
        2 => &["constraint:storage==/^ss/", "constraint:zone==~z2"],
        3 => &[
            "constraint:node!=sim-3",
            "affinity:container!=sim-5-c1",
            "constraint:kernelversion==6.*",
        ],
        4 => &["constraint:zone==~nowhere", "constraint:ostype==linux"],
        _ => &["whitelist:node!=sim-1|sim-2", "affinity:bench!=none"],
    };
    let mut body = json!({
        "Image": "busybox:latest",
        "Cmd": ["sleep", "1000"],
        "Env": env,
        "Labels": {"bench": "create"},
        "HostConfig": {"Memory": 16 << 20, "NanoCpus": 10_000_000},
    });
    if k % 6 == 3 {
        // A host port nobody else asks for: the port filter runs and always passes.
        let port = 10_000 + (k % 50_000);
        body["HostConfig"]["PortBindings"] = json!({"80/tcp": [{"HostPort": port.to_string()}]});
    }
    bytes::Bytes::from(body.to_string())
}

/// Creates (then starts, when Shoal routes starts) `--creates` containers; with Shoal's
/// (process `pid`) CPU per create and per start.
pub(crate) async fn creates(b: &Bench, http: &Http, n: usize, strategy: &str, pid: u32) {
    let scenario = format!("create_{strategy}");
    let ids = RefCell::new(Vec::new());
    let run = std::process::id();
    let mut meter = CpuMeter::start(pid).await;
    let stats = drive(
        Drive {
            concurrency: b.args.concurrency,
            max_requests: b.args.creates,
            max_time: Duration::from_secs(120),
        },
        |k| {
            let ids = &ids;
            async move {
                let path = format!("/containers/create?name=bench-{run}-{strategy}-{n}-{k}");
                let a = http
                    .call(awc::http::Method::POST, &path, Some(create_body(k)))
                    .await?;
                if a.status != 201 {
                    return Err(format!(
                        "create: {} {}",
                        a.status,
                        String::from_utf8_lossy(&a.body)
                    ));
                }
                let v: Value = serde_json::from_slice(&a.body).map_err(|e| e.to_string())?;
                ids.borrow_mut()
                    .push(v["Id"].as_str().unwrap_or_default().to_string());
                Ok(())
            }
        },
    )
    .await;
    // Refused creates cost Shoal a placement too: every answer counts.
    let create_cpu_us = meter.per_op_us(stats.count() + stats.errors as usize).await;
    let ids = ids.into_inner();
    // Starts: routed by the proxy work; until it lands Shoal answers 501.
    let mut start_note = "start not measured: no container created".to_string();
    let mut start_json = Value::Null;
    if let Some(first) = ids.first() {
        let probe = http
            .call(
                awc::http::Method::POST,
                &format!("/containers/{first}/start"),
                None,
            )
            .await;
        match probe {
            Ok(a) if a.status == 204 || a.status == 304 => {
                let mut meter = CpuMeter::start(pid).await;
                let starts = drive(
                    Drive {
                        concurrency: b.args.concurrency,
                        max_requests: ids.len() - 1,
                        max_time: Duration::from_secs(120),
                    },
                    |k| {
                        let id = &ids[k + 1];
                        async move {
                            let a = http
                                .call(
                                    awc::http::Method::POST,
                                    &format!("/containers/{id}/start"),
                                    None,
                                )
                                .await?;
                            match a.status {
                                204 | 304 => Ok(()),
                                s => Err(format!("start: {s}")),
                            }
                        }
                    },
                )
                .await;
                let start_cpu_us = meter
                    .per_op_us(starts.count() + starts.errors as usize)
                    .await;
                start_note = format!(
                    "starts {:.0}/s p50 {:.3} ms p99 {:.3} ms, Shoal CPU {start_cpu_us:.0} µs/start",
                    starts.per_sec(),
                    starts.ms(0.5),
                    starts.ms(0.99)
                );
                start_json = starts.json();
                start_json["cpu_us_per_op"] = json!(start_cpu_us.round());
            }
            Ok(a) => {
                start_note = format!("start answers {}: creates only", a.status);
                start_json = json!({"not_measured": format!("start answers {}", a.status)});
            }
            Err(e) => start_note = format!("start failed: {e}"),
        }
    }
    b.report(
        format!(
            "{scenario:<18} N={n:<5} {:>7.0} placements/s, p50 {:.3} ms p99 {:.3} ms ({} created at {} conns, {} refused){}, Shoal CPU {create_cpu_us:.0} µs/create; {start_note}",
            stats.per_sec(),
            stats.ms(0.5),
            stats.ms(0.99),
            stats.count(),
            b.args.concurrency,
            stats.errors,
            stats.first_error.as_deref().map(|e| format!(" first refusal: {e}")).unwrap_or_default(),
        ),
        json!({"scenario": scenario, "nodes": n, "containers_per_node": b.args.containers_per_engine,
               "strategy": strategy, "filters": "all",
               "created": stats.count(), "refused": stats.errors, "concurrency": b.args.concurrency,
               "placements_per_sec": stats.per_sec().round(),
               "p50_ms": round3(stats.ms(0.5)), "p90_ms": round3(stats.ms(0.9)), "p99_ms": round3(stats.ms(0.99)),
               "cpu_us_per_op": create_cpu_us.round(),
               "start": start_json,
               "ok": stats.errors == 0 && stats.count() > 0}),
    );
}
