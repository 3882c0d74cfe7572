//! The load side of the benchmark: a keep-alive HTTP client (TCP or unix socket) and a
//! driver that runs a request from several concurrent workers and keeps every latency.
//!
//! Everything runs on the harness's one thread (awc clients are bound to their thread), so
//! the client costs at most one core and never more than the requests it makes.

use awc::http::Method;
use bytes::Bytes;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest body read (a list of 150,000 containers is ~70 MB).
const BODY_LIMIT: usize = 1 << 30;

/// One endpoint: Shoal or an engine, over TCP (`127.0.0.1:PORT`) or a unix socket.
#[derive(Clone)]
pub struct Http {
    client: awc::Client,
    base: String,
}

pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Http {
    /// `target` is `host:port` or `unix:///path`; `conns` bounds the open connections.
    pub fn new(target: &str, conns: usize) -> Http {
        let timeout = Duration::from_secs(60);
        let builder = awc::Client::builder().timeout(timeout);
        match target.strip_prefix("unix://") {
            Some(path) => {
                let connector = awc::Connector::new()
                    .limit(conns)
                    .connector(shoal_actors::engine::unix_connector(path));
                Http {
                    client: builder.connector(connector).finish(),
                    base: "http://localhost".into(),
                }
            }
            None => Http {
                client: builder
                    .connector(awc::Connector::new().limit(conns))
                    .finish(),
                base: format!("http://{target}"),
            },
        }
    }

    /// `host:port` over TLS with `tls` (the CA to check the server by, the client
    /// certificate to show); `conns` bounds the open connections, each kept alive, so a
    /// handshake is paid once per connection.
    pub fn tls(target: &str, conns: usize, tls: Arc<rustls::ClientConfig>) -> Http {
        let connector = awc::Connector::new().limit(conns).rustls_0_23(tls);
        Http {
            client: awc::Client::builder()
                .timeout(Duration::from_secs(60))
                .connector(connector)
                .finish(),
            base: format!("https://{target}"),
        }
    }

    /// A request with an optional JSON body; answers status and the whole body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, String> {
        self.send(method, path, body.map(|b| ("application/json", b)))
            .await
    }

    /// A request with an optional body of the given content type.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Answer, String> {
        let req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        let sent = match body {
            Some((content_type, b)) => {
                req.insert_header(("Content-Type", content_type))
                    .send_body(b)
                    .await
            }
            None => req.send().await,
        };
        let mut resp = sent.map_err(|e| format!("{path}: {e}"))?;
        let body = resp
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(Answer {
            status: resp.status().as_u16(),
            body,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Answer, String> {
        self.call(Method::GET, path, None).await
    }

    pub async fn get_json(&self, path: &str) -> Result<Value, String> {
        let a = self.get(path).await?;
        if a.status != 200 {
            return Err(format!("{path}: status {}", a.status));
        }
        serde_json::from_slice(&a.body).map_err(|e| format!("{path}: {e}"))
    }
}

/// What one measured run gave: every latency, the failures, the wall time.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Latencies of the successful requests, sorted.
    pub lat: Vec<Duration>,
    pub errors: u64,
    /// First failure seen, for the report.
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Stats {
    pub fn count(&self) -> usize {
        self.lat.len()
    }

    /// Latency at quantile `q` in milliseconds (nearest rank).
    pub fn ms(&self, q: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 * q).ceil() as usize).clamp(1, self.lat.len()) - 1;
        self.lat[i].as_secs_f64() * 1e3
    }

    pub fn per_sec(&self) -> f64 {
        self.lat.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn json(&self) -> Value {
        json!({
            "requests": self.count(),
            "errors": self.errors,
            "p50_ms": round3(self.ms(0.50)),
            "p90_ms": round3(self.ms(0.90)),
            "p99_ms": round3(self.ms(0.99)),
            "per_sec": self.per_sec().round(),
        })
    }
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// How long and how wide to drive a request.
#[derive(Debug, Clone, Copy)]
pub struct Drive {
    pub concurrency: usize,
    /// Stops after this many requests...
    pub max_requests: usize,
    /// ...or when this much time has passed, whichever is first (at least one request).
    pub max_time: Duration,
}

/// Runs `op(k)` for k = 0, 1, 2... from `concurrency` workers; an `Err` counts as a failure.
pub async fn drive<F, Fut>(d: Drive, op: F) -> Stats
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let next = Cell::new(0usize);
    let stats = RefCell::new(Stats::default());
    let start = Instant::now();
    let worker = || async {
        loop {
            let k = next.get();
            if k >= d.max_requests || (k > 0 && start.elapsed() >= d.max_time) {
                return;
            }
            next.set(k + 1);
            let t = Instant::now();
            let r = op(k).await;
            let dt = t.elapsed();
            let mut s = stats.borrow_mut();
            match r {
                Ok(()) => s.lat.push(dt),
                Err(e) => {
                    s.errors += 1;
                    s.first_error.get_or_insert(e);
                }
            }
        }
    };
    futures_util::future::join_all((0..d.concurrency.max(1)).map(|_| worker())).await;
    let mut s = stats.into_inner();
    s.elapsed = start.elapsed();
    s.lat.sort_unstable();
    s
}

/// A GET that must answer `status`.
pub async fn expect(http: &Http, path: &str, status: u16) -> Result<(), String> {
    let a = http.get(path).await?;
    if a.status == status {
        Ok(())
    } else {
        Err(format!(
            "{path}: status {} ({})",
            a.status,
            String::from_utf8_lossy(&a.body[..a.body.len().min(200)])
        ))
    }
}

/// Serial latency of several sides (each an endpoint and the paths to ask it), taken in
/// turns for twice `--duration`: one request to each side in a round, the same path index,
/// the side that goes first rotating from round to round, so whatever else the machine
/// runs weighs on every side alike. Answers one [`Stats`] per side, in order.
pub async fn serial_turns<const N: usize>(
    b: &super::Bench,
    sides: [(&Http, &[String]); N],
) -> [Stats; N] {
    let stats: [RefCell<Stats>; N] = std::array::from_fn(|_| RefCell::new(Stats::default()));
    let started = Instant::now();
    drive(
        Drive {
            concurrency: 1,
            max_requests: usize::MAX,
            max_time: b.args.duration * 2,
        },
        |k| {
            let (stats, sides) = (&stats, &sides);
            async move {
                let round = k / N;
                let i = (k % N + round) % N;
                let (http, paths) = sides[i];
                let t = Instant::now();
                let r = expect(http, &paths[round % paths.len()], 200).await;
                let dt = t.elapsed();
                let mut s = stats[i].borrow_mut();
                match r {
                    Ok(()) => s.lat.push(dt),
                    Err(e) => {
                        s.errors += 1;
                        s.first_error.get_or_insert(e);
                    }
                }
                Ok(())
            }
        },
    )
    .await;
    let elapsed = started.elapsed();
    stats.map(|side| {
        let mut s = side.into_inner();
        s.lat.sort_unstable();
        s.elapsed = elapsed;
        s
    })
}
