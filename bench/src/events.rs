//! The event fan-in scenario: events emitted by the sim processes, each to be delivered to
//! every `/events` subscriber of Shoal.
//!
//! Each subscriber reads as a real client does: its own OS thread with a blocking socket
//! (the kernel's default buffer), the chunked response decoded and every JSON line parsed.
//! Readers on tasks of the bench's own single-threaded runtime all stall together when
//! that thread is descheduled on a loaded machine, which measured the bench rather than
//! Shoal. Each reader also notes its longest pause between two reads while events flowed,
//! so a run shows whether the readers were starved; the cuts Shoal logged (how far behind,
//! for how long) are read back from its log.

use super::cluster::{start_fleet, wait_full};
use super::load::{round3, Http};
use super::procs::{CpuMeter, ShoalProc, SimProc};
use super::Bench;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `--only events`: a fleet of `n` engines and a Shoal over them, then only the fan-in.
pub(crate) async fn events_only(b: &Bench, n: usize) -> Result<(), String> {
    let mut sims = start_fleet(b, n).await?;
    let list: String = sims
        .iter()
        .flat_map(|s| s.addrs.iter())
        .map(|a| format!("{a}\n"))
        .collect();
    let discovery = b.dir.join(format!("engines-{n}"));
    tokio::fs::write(&discovery, list)
        .await
        .map_err(|e| e.to_string())?;
    let discovery = format!("file://{}", discovery.display());
    let log = b.dir.join(format!("shoal-{n}-events.log"));
    let shoal = ShoalProc::start(&b.exe, log, &discovery, &[]).await?;
    wait_full(&shoal, n, (n * b.args.containers_per_engine) as u64).await?;
    events(b, &shoal, &mut sims, n).await;
    Ok(())
}

/// What one subscriber saw, shared with the bench's main task.
#[derive(Default)]
struct Reader {
    /// JSON lines parsed (each an object with a `Type`).
    lines: AtomicU64,
    /// Lines that were not such an object.
    bad: AtomicU64,
    /// The response head came (Shoal subscribed it before answering).
    connected: AtomicBool,
    /// The stream ended before the bench closed it.
    ended: AtomicBool,
    /// ... and it ended broken (no final chunk): Shoal cut it off.
    broken: AtomicBool,
    /// Longest pause between two reads that brought events, in microseconds.
    max_gap_us: AtomicU64,
}

/// One subscriber: its thread and a handle on its socket to end it.
struct Subscriber {
    seen: Arc<Reader>,
    sock: TcpStream,
    thread: JoinHandle<()>,
}

impl Subscriber {
    fn start(host: &str, path: &str) -> Result<Subscriber, String> {
        let addr: std::net::SocketAddr = host.parse().map_err(|e| format!("{host}: {e}"))?;
        #[allow(
            clippy::disallowed_methods,
            reason = "a blocking socket is the point (a real client's reader thread); Shoal \
                      listens on this machine, so the connect answers at once"
        )]
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| format!("{host}: {e}"))?;
        let theirs = sock.try_clone().map_err(|e| e.to_string())?;
        let seen = Arc::new(Reader::default());
        let (s, path) = (seen.clone(), path.to_string());
        let thread = std::thread::Builder::new()
            .name("events-reader".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let clean = read_stream(theirs, &path, &s);
                s.broken.store(clean.is_err(), Ordering::Relaxed);
                s.ended.store(true, Ordering::Release);
            })
            .map_err(|e| e.to_string())?;
        Ok(Subscriber { seen, sock, thread })
    }

    fn stop(self) {
        let _ = self.sock.shutdown(Shutdown::Both);
        let _ = self.thread.join();
    }
}

/// Sends the request and reads the chunked JSON-lines response until its end. Answers
/// whether it ended cleanly (the final chunk) or broke off.
fn read_stream(sock: TcpStream, path: &str, seen: &Reader) -> Result<(), String> {
    (&sock)
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: shoal\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(64 << 10, sock);
    let mut head = String::new();
    r.read_line(&mut head).map_err(|e| e.to_string())?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("status line {head:?}"));
    }
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).map_err(|e| e.to_string())? == 0 {
            return Err("end of the response head".into());
        }
        if h.trim().is_empty() {
            break;
        }
        let h = h.to_ascii_lowercase();
        chunked |= h.starts_with("transfer-encoding:") && h.contains("chunked");
    }
    if !chunked {
        return Err("not a chunked response".into());
    }
    seen.connected.store(true, Ordering::Release);
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = Vec::new();
    let mut last: Option<Instant> = None;
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).map_err(|e| e.to_string())? == 0 {
            return Err("broken off".into());
        }
        let hex = size.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(hex, 16).map_err(|_| format!("chunk size {hex:?}"))?;
        if size == 0 {
            return Ok(());
        }
        chunk.resize(size + 2, 0);
        r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
        let now = Instant::now();
        if let Some(t) = last {
            let gap = now.duration_since(t).as_micros() as u64;
            seen.max_gap_us.fetch_max(gap, Ordering::Relaxed);
        }
        last = Some(now);
        pending.extend_from_slice(&chunk[..size]);
        let (mut lines, mut bad) = (0, 0);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|&b| b == b'\n') {
            let line = &pending[start..start + nl];
            match serde_json::from_slice::<Value>(line) {
                Ok(v) if v.get("Type").is_some_and(Value::is_string) => lines += 1,
                _ => bad += 1,
            }
            start += nl + 1;
        }
        pending.drain(..start);
        seen.lines.fetch_add(lines, Ordering::Relaxed);
        seen.bad.fetch_add(bad, Ordering::Relaxed);
    }
}

/// The cuts Shoal logged (at warn, which the bench's Shoal logs): (cuts, largest lag in
/// bytes, longest time behind in ms). An older Shoal logs none.
async fn logged_cuts(shoal: &ShoalProc) -> (u64, u64, u64) {
    let text = tokio::fs::read_to_string(&shoal.log)
        .await
        .unwrap_or_default();
    let mut out = (0, 0, 0);
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let f = &v["fields"];
        if f["message"] == "events subscriber too slow, cut off" {
            out.0 += 1;
            out.1 = out.1.max(f["lag_bytes"].as_u64().unwrap_or(0));
            out.2 = out.2.max(f["behind_ms"].as_u64().unwrap_or(0));
        }
    }
    out
}

/// Where events were lost before the fan-out, from Shoal's own counters: events its nodes
/// dropped because the hub's mailbox was full (or the hub was gone), and the times a node's
/// event stream ended and was opened again (an engine that dropped the stream: the sim ends
/// a stream that fell its `event_buffer` behind). Summed over every series of each family.
#[derive(Debug, Clone, Copy, Default)]
struct LossCounters {
    hub_dropped: u64,
    reconnects: u64,
    hub_waits: u64,
}

impl LossCounters {
    async fn scrape(shoal: &ShoalProc) -> LossCounters {
        let http = Http::new(&shoal.host, 1);
        let text = match http.get("/metrics").await {
            Ok(a) if a.status == 200 => String::from_utf8_lossy(&a.body).into_owned(),
            _ => String::new(),
        };
        let sum = |family: &str, label: Option<&str>| -> u64 {
            text.lines()
                .filter(|l| {
                    l.strip_prefix(family)
                        .is_some_and(|rest| rest.starts_with(['{', ' ']))
                })
                .filter(|l| label.is_none_or(|want| l.contains(want)))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64
        };
        LossCounters {
            hub_dropped: sum("shoal_events_dropped_total", Some("reason=\"hub_")),
            reconnects: sum("shoal_node_event_stream_reconnects_total", None),
            hub_waits: sum("shoal_events_hub_waits_total", None),
        }
    }

    fn since(self, before: LossCounters) -> LossCounters {
        LossCounters {
            hub_dropped: self.hub_dropped.saturating_sub(before.hub_dropped),
            reconnects: self.reconnects.saturating_sub(before.reconnects),
            hub_waits: self.hub_waits.saturating_sub(before.hub_waits),
        }
    }
}

/// Event fan-in: `--events` events from all engines at `--event-rate`, each to be delivered
/// to every one of `--subscribers` `/events` clients.
pub(crate) async fn events(b: &Bench, shoal: &ShoalProc, sims: &mut [SimProc], n: usize) {
    let subs_n = b.args.subscribers;
    // `{"label":["bench=fanin"]}`: only the benchmark's events.
    let path = "/events?filters=%7B%22label%22%3A%5B%22bench%3Dfanin%22%5D%7D";
    let mut subs = Vec::with_capacity(subs_n);
    for _ in 0..subs_n {
        match Subscriber::start(&shoal.host, path) {
            Ok(s) => subs.push(s),
            Err(e) => {
                b.fail("events", n, &format!("subscriber: {e}"));
                subs.into_iter().for_each(Subscriber::stop);
                return;
            }
        }
    }
    // A subscription exists once its response head came.
    let deadline = Instant::now() + Duration::from_secs(20);
    while subs
        .iter()
        .any(|s| !s.seen.connected.load(Ordering::Acquire) && !s.seen.ended.load(Ordering::Acquire))
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connected = subs
        .iter()
        .filter(|s| s.seen.connected.load(Ordering::Acquire))
        .count();
    let total = b.args.events;
    let per_sim = total / sims.len() as u64;
    let rate = b.args.event_rate / sims.len() as f64;
    let start = Instant::now();
    let mut emitted = 0;
    let nsims = sims.len() as u64;
    let counted = LossCounters::scrape(shoal).await;
    let mut meter = CpuMeter::start(shoal.pid()).await;
    for (i, s) in sims.iter_mut().enumerate() {
        let count = if i == 0 {
            total - per_sim * (nsims - 1)
        } else {
            per_sim
        };
        emitted += count;
        if let Err(e) = s.emit(rate, count) {
            b.fail("events", n, &e);
            subs.into_iter().for_each(Subscriber::stop);
            return;
        }
    }
    let mut emit_s: f64 = 0.0;
    for s in sims.iter_mut() {
        match s.emitted().await {
            Ok(t) => emit_s = emit_s.max(t),
            Err(e) => {
                b.fail("events", n, &e);
                subs.into_iter().for_each(Subscriber::stop);
                return;
            }
        }
    }
    let want = emitted * subs_n as u64;
    let sum = |s: &[Subscriber]| {
        s.iter()
            .map(|x| x.seen.lines.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let mut last = (sum(&subs), Instant::now());
    let mut done_at = start.elapsed();
    while last.0 < want && last.1.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = sum(&subs);
        if now != last.0 {
            last = (now, Instant::now());
            done_at = start.elapsed();
        }
    }
    // Per event in: its parse, its filtering, and its delivery to every subscriber.
    let cpu_us = meter.per_op_us(emitted as usize).await;
    let cpu = cpu_us * emitted as f64 / 1e6;
    let delivered = last.0;
    let count = |f: &dyn Fn(&Reader) -> bool| subs.iter().filter(|s| f(&s.seen)).count();
    let short = count(&|r| r.lines.load(Ordering::Relaxed) < emitted);
    let ended = count(&|r| r.ended.load(Ordering::Acquire));
    let broken = count(&|r| r.broken.load(Ordering::Relaxed));
    let bad: u64 = subs
        .iter()
        .map(|s| s.seen.bad.load(Ordering::Relaxed))
        .sum();
    let max_gap_ms = subs
        .iter()
        .map(|s| s.seen.max_gap_us.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0) as f64
        / 1000.0;
    subs.into_iter().for_each(Subscriber::stop);
    let losses = LossCounters::scrape(shoal).await.since(counted);
    let (cuts, cut_lag, cut_behind_ms) = logged_cuts(shoal).await;
    let lost = want.saturating_sub(delivered);
    let rate_in = emitted as f64 / emit_s.max(1e-9);
    let out_rate = delivered as f64 / done_at.as_secs_f64().max(1e-9);
    b.report(
        format!(
            "{:<18} N={n:<5} {emitted} events at {rate_in:.0}/s in, {out_rate:.0} deliveries/s to {subs_n} subscribers; lost {lost} of {want} ({short} subscribers short, {ended} streams ended, {broken} broken off; Shoal logged {cuts} cuts, largest lag {cut_lag} B, behind {cut_behind_ms} ms; before the fan-out: {} events dropped at the hub's mailbox, {} engine streams reopened, {} waits for the hub's room); readers' longest pause {max_gap_ms:.1} ms; Shoal CPU {cpu:.2} s ({cpu_us:.0} µs/event); last delivery {:.3} s after the first emit",
            "events",
            losses.hub_dropped,
            losses.reconnects,
            losses.hub_waits,
            done_at.as_secs_f64()
        ),
        json!({"scenario": "events", "nodes": n, "containers_per_node": b.args.containers_per_engine,
               "subscribers": subs_n, "connected": connected, "events": emitted,
               "events_per_sec_in": rate_in.round(), "deliveries_per_sec": out_rate.round(),
               "expected_deliveries": want, "delivered": delivered, "lost": lost,
               "bad_lines": bad,
               "subscribers_short": short, "streams_ended": ended, "streams_broken": broken,
               "cuts_logged": cuts, "cut_max_lag_bytes": cut_lag,
               "cut_max_behind_ms": cut_behind_ms,
               "hub_dropped": losses.hub_dropped, "streams_reopened": losses.reconnects,
               "hub_waits": losses.hub_waits,
               "reader_max_pause_ms": round3(max_gap_ms), "shoal_cpu_s": round3(cpu),
               "drain_s": round3(done_at.as_secs_f64()),
               "cpu_us_per_op": cpu_us.round(),
               "ok": lost == 0 && bad == 0}),
    );
}
