//! The HTTP engine client: awc over TCP (with TLS when the process dials engines with it,
//! see `tls`) or a unix socket.
//!
//! awc's `Client` is bound to the thread that made it, so each NodeActor builds its own in
//! `started`, on its own arbiter. Every call runs under `actix_rt::time::timeout`, body
//! included, because a slow engine must cost its own node a timeout and nobody else anything.

use super::pools::{self, Kind, Pools};
use super::{Engine, EngineAddr, EngineError, PostRequest};
use awc::http::Method;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::stream::{LocalBoxStream, StreamExt};
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// An open stream of body chunks from an engine.
pub type EngineStream = LocalBoxStream<'static, Result<Bytes, EngineError>>;

/// Largest body Shoal reads whole from an engine (lists of a busy engine stay far below).
const BODY_LIMIT: usize = 256 * 1024 * 1024;

/// Time limits of engine calls (`--engine-timeout`, `--engine-work-timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connecting, and Shoal's own calls whole (refreshes, lists, inspects): an engine
    /// that takes longer is sick, and its node is marked so.
    pub call: Duration,
    /// Work a client asked an engine for (create, start, stop, remove, pull, build, commit,
    /// prune): an engine may rightly take long (a create with an unknown log driver made
    /// dockerd look for a plugin for over 10 s), so this is generous; still bounded.
    pub long: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            call: Duration::from_secs(10),
            long: Duration::from_secs(600),
        }
    }
}

/// One engine over HTTP.
pub struct HttpEngine {
    addr: EngineAddr,
    pub(super) base: String,
    pub(super) timeouts: Timeouts,
    /// The awc clients; a node's has one for work a client asked for (see
    /// `NODE_WORK_CONNECTIONS`).
    pools: Pools,
    /// A node's client: the calls (other than the event stream) that may be under way at
    /// once. See `NODE_CALLS`.
    calls: Option<Rc<Semaphore>>,
}

/// Work a client asked a node's engine for (creates, pulls, network and volume creates,
/// commits: `PostRequest::long`) goes over connections of its own, made on first use. It
/// may rightly take minutes (`Timeouts::long`), and on the refresh connections two such
/// calls would hold up the node's refreshes until they failed and marked a healthy engine
/// sick. At most `NODE_WORK_CONNECTIONS` at once; awc's pool queues the rest, which only
/// clients' own calls can fill.
const NODE_WORK_CONNECTIONS: usize = 2;

/// Connections a NodeActor keeps to its engine: its event stream (over a client of its
/// own, see `pools`), and two for refreshes and inspects. Bounded because a thousand nodes
/// with awc's default of 100 each held nine connections apiece after start-up (~500 MB of
/// buffers and 9,000 descriptors).
pub const NODE_CONNECTIONS: usize = 3;

/// Calls a node's client has under way at once, its event stream aside: one per connection
/// left beside the stream. A call waiting for a connection in awc's pool already holds its
/// request head (~6 KB), so at start-up (a thousand nodes, six refresh calls each) the
/// waiting calls were ~13 MB of heads. Waiting here, before the request is built, costs
/// nothing; the wait counts against the call's timeout, as the pool's did. Per node, so a
/// blackholed engine holds up nobody else's calls.
const NODE_CALLS: usize = NODE_CONNECTIONS - 1;

impl HttpEngine {
    /// Builds the client a NodeActor uses for `addr`: at most `NODE_CONNECTIONS` at once.
    /// Must run on the thread that will use it.
    pub fn for_node(addr: EngineAddr, timeouts: Timeouts) -> Self {
        let mut engine = Self::with_tls(
            addr,
            timeouts,
            NODE_CALLS,
            Some(NODE_WORK_CONNECTIONS),
            super::tls::engine_tls(),
        );
        engine.calls = Some(Rc::new(Semaphore::new(NODE_CALLS)));
        engine
    }

    /// Builds a client for `addr` with no bound on its connections (the API front's:
    /// every proxied stream needs its own). Must run on the thread that will use it.
    pub fn new(addr: EngineAddr, timeouts: Timeouts) -> Self {
        Self::with_tls(addr, timeouts, 0, None, super::tls::engine_tls())
    }

    fn with_tls(
        addr: EngineAddr,
        timeouts: Timeouts,
        max_connections: usize,
        work_connections: Option<usize>,
        tls: Option<super::tls::EngineTls>,
    ) -> Self {
        let pools = Pools::new(
            addr.clone(),
            timeouts.call,
            max_connections,
            work_connections,
            tls,
        );
        HttpEngine {
            base: pools::base_url(&addr),
            addr,
            timeouts,
            pools,
            calls: None,
        }
    }

    /// The awc client and the base URL, for callers that build requests themselves.
    pub fn client(&self) -> (awc::Client, &str) {
        (self.pools.calls(), &self.base)
    }

    /// A request to `path` on the engine (the proxy's), closing its connection after the
    /// answer while the connection budget is short (`Pools::closing`). The URL is built
    /// once, in a buffer of its size.
    pub fn request(&self, method: Method, path: &str) -> awc::ClientRequest {
        let mut url = String::with_capacity(self.base.len() + path.len());
        url.push_str(&self.base);
        url.push_str(path);
        let req = self.pools.calls().request(method, url);
        if self.pools.closing() {
            req.force_close()
        } else {
            req
        }
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        self.call_with(
            method,
            PostRequest {
                path: path.to_string(),
                body,
                ..Default::default()
            },
        )
    }

    fn call_with(
        &self,
        method: Method,
        r: PostRequest,
    ) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        let addr = self.addr.to_string();
        let path = r.path;
        let body = r.body;
        let limit = if r.long {
            self.timeouts.long
        } else {
            self.timeouts.call
        };
        let timed = (method.to_string(), path.clone());
        let url = format!("{}{}", self.base, path);
        let (client, in_use) = self
            .pools
            .begin(if r.long { Kind::Work } else { Kind::Calls });
        // Work on a pool of its own is not counted against the node's calls.
        let calls = match in_use.kind() {
            Kind::Calls => self.calls.clone(),
            Kind::Work => None,
        };
        let close = self.pools.closing();
        let call = Box::pin(async move {
            let _in_use = in_use;
            let exchange = async {
                // Closed never: the semaphore lives as long as this client.
                let _permit = match &calls {
                    Some(calls) => calls.acquire().await.ok(),
                    None => None,
                };
                let mut req = client.request(method, url);
                if close {
                    req = req.force_close();
                }
                if body.is_some() {
                    req = req.insert_header(("Content-Type", "application/json"));
                }
                if let Some(auth) = r.registry_auth {
                    req = req.insert_header(("X-Registry-Auth", auth));
                }
                let sent = match body {
                    Some(b) => req.send_body(b).await,
                    None => req.send().await,
                };
                let mut resp = sent.map_err(|e| send_error(&addr, e))?;
                let status = resp.status().as_u16();
                let bytes = resp
                    .body()
                    .limit(BODY_LIMIT)
                    .await
                    .map_err(|e| body_error(&addr, e))?;
                Ok((status, bytes))
            };
            match actix_rt::time::timeout(limit, exchange).await {
                Ok(result) => result,
                Err(_) => Err(EngineError::Timeout {
                    addr,
                    path,
                    secs: limit.as_secs_f64(),
                }),
            }
        });
        Box::pin(crate::metrics::time_engine_call(
            &self.addr, &timed.0, &timed.1, call,
        ))
    }
}

/// Why a request got no answer head. Only a request the engine cannot have read whole
/// is a `Connect` (no connection, or writing it failed): a create that failed so created
/// nothing and may be tried on another node. A connection closed after the request was
/// sent (awc reports it as `Connect(Disconnected)`), cut because the node turned unhealthy
/// while the answer was awaited (`sever`), or a garbled answer is `Io`: the engine may
/// have acted on it.
fn send_error(addr: &str, e: awc::error::SendRequestError) -> EngineError {
    use awc::error::{ConnectError, SendRequestError};
    if let Some(why) = super::severed_send(&e) {
        let reason = why.to_string();
        let addr = addr.to_string();
        return match e {
            SendRequestError::Send(_) => EngineError::Connect { addr, reason },
            _ => EngineError::Io { addr, reason },
        };
    }
    match e {
        SendRequestError::Connect(ConnectError::Disconnected) | SendRequestError::Response(_) => {
            EngineError::Io {
                addr: addr.to_string(),
                reason: format!("the engine closed the connection before answering: {e}"),
            }
        }
        e => EngineError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        },
    }
}

/// A failed read of an answer's body: the connection broke (or was cut, `sever`).
pub(super) fn body_error(addr: &str, e: awc::error::PayloadError) -> EngineError {
    let reason = match super::severed_payload(&e) {
        Some(why) => why.to_string(),
        None => e.to_string(),
    };
    EngineError::Io {
        addr: addr.to_string(),
        reason,
    }
}

/// Waits for the head of an engine's answer, up to `limit`; the body is left to the caller.
pub(super) async fn answer_head<R>(
    addr: &str,
    path: &str,
    limit: std::time::Duration,
    sent: impl std::future::Future<Output = Result<R, awc::error::SendRequestError>>,
) -> Result<R, EngineError> {
    match actix_rt::time::timeout(limit, sent).await {
        Err(_) => Err(EngineError::Timeout {
            addr: addr.to_string(),
            path: path.to_string(),
            secs: limit.as_secs_f64(),
        }),
        Ok(Err(e)) if super::severed_send(&e).is_some() => Err(send_error(addr, e)),
        Ok(Err(e)) => Err(EngineError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        }),
        Ok(Ok(resp)) => Ok(resp),
    }
}

/// Docker's error bodies are `{"message": "..."}`; anything else is shown as text.
pub fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Msg {
        message: String,
    }
    match serde_json::from_slice::<Msg>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

impl Engine for HttpEngine {
    fn get(&self, path: &str) -> LocalBoxFuture<'static, Result<Bytes, EngineError>> {
        let call = self.call(Method::GET, path, None);
        let addr = self.addr.to_string();
        let path = path.to_string();
        Box::pin(async move {
            let (status, body) = call.await?;
            if (200..300).contains(&status) {
                Ok(body)
            } else {
                Err(EngineError::Status {
                    addr,
                    path,
                    status,
                    message: error_message(&body),
                })
            }
        })
    }

    fn post(&self, req: PostRequest) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        self.call_with(Method::POST, req)
    }

    fn delete(&self, path: &str) -> LocalBoxFuture<'static, Result<(u16, Bytes), EngineError>> {
        self.call(Method::DELETE, path, None)
    }

    fn events(&self, query: &str) -> LocalBoxFuture<'static, Result<EngineStream, EngineError>> {
        let addr = self.addr.to_string();
        let path = format!("/events{query}");
        let limit = self.timeouts.call;
        let req = self.pools.stream().get(format!("{}{}", self.base, path));
        Box::pin(async move {
            let resp = answer_head(&addr, &path, limit, req.send()).await?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(EngineError::Status {
                    addr,
                    path,
                    status,
                    message: "event stream refused".to_string(),
                });
            }
            let stream = resp.map(move |chunk| chunk.map_err(|e| body_error(&addr, e)));
            Ok(Box::pin(stream) as EngineStream)
        })
    }

    fn addr(&self) -> &EngineAddr {
        &self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tls::{self, EngineTls, EngineTlsFiles};
    use awc::error::{ConnectError, SendRequestError};

    /// An engine on 127.0.0.1 that takes one TLS connection with a client certificate of
    /// `ca` and answers `/_ping` with `OK`.
    async fn tls_engine(pki: &tls::tests::Pki) -> EngineAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let roots = std::sync::Arc::new(tls::read_roots(&pki.ca).unwrap());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, tls::provider())
                .build()
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                tls::read_certs(&pki.server_cert).unwrap(),
                tls::read_key(&pki.server_key).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        actix_rt::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut s = acceptor.accept(tcp).await.unwrap();
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.unwrap();
                head.push(b[0]);
            }
            assert!(head.starts_with(b"GET /_ping HTTP/1.1"));
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                .await
                .unwrap();
            s.flush().await.unwrap();
        });
        EngineAddr::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[actix_rt::test]
    async fn calls_an_engine_over_tls_with_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = tls::tests::make_pki(dir.path(), "a");
        let files = EngineTlsFiles {
            ca: pki.ca.clone(),
            cert_key: Some((pki.client_cert.clone(), pki.client_key.clone())),
        };
        let addr = tls_engine(&pki).await;
        let engine = HttpEngine::with_tls(
            addr,
            Timeouts::default(),
            1,
            None,
            Some(EngineTls::load(&files).unwrap()),
        );
        assert!(engine.client().1.starts_with("http://127.0.0.1:"));
        assert_eq!(&engine.get("/_ping").await.unwrap()[..], b"OK");
    }

    #[test]
    fn only_a_request_the_engine_cannot_have_read_is_a_connect_failure() {
        let refused = SendRequestError::Connect(ConnectError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(matches!(
            send_error("e:1", refused),
            EngineError::Connect { .. }
        ));
        let write = SendRequestError::Send(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(matches!(
            send_error("e:1", write),
            EngineError::Connect { .. }
        ));
        let closed = SendRequestError::Connect(ConnectError::Disconnected);
        assert!(matches!(send_error("e:1", closed), EngineError::Io { .. }));
    }
}

#[cfg(test)]
mod framing_tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads one request head from `s`.
    /// An engine on 127.0.0.1 that answers every GET at once and every POST only after
    /// `post_delay` (work it takes long over, or never answers).
    async fn stalling_engine(post_delay: Duration) -> EngineAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        actix_rt::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                actix_rt::spawn(async move {
                    loop {
                        let head = read_head(&mut s).await;
                        if head.is_empty() {
                            return;
                        }
                        if head.starts_with(b"POST") {
                            actix_rt::time::sleep(post_delay).await;
                        }
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK";
                        if s.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        EngineAddr::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }

    async fn read_head(s: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            if s.read_exact(&mut b).await.is_err() {
                break;
            }
            head.push(b[0]);
        }
        head
    }

    /// An answer that runs to the close (as dockerd's `exec start` without an upgrade) is
    /// read whole, and the call after it gets its own answer, not the rest of that stream.
    #[actix_rt::test]
    async fn an_answer_that_runs_to_the_close_is_read_whole_and_never_pooled() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        actix_rt::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            read_head(&mut first).await;
            first
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n",
                )
                .await
                .unwrap();
            actix_rt::time::sleep(Duration::from_millis(50)).await;
            first.write_all(b"exec output").await.unwrap();
            drop(first);
            let (mut second, _) = listener.accept().await.unwrap();
            read_head(&mut second).await;
            second
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                .await
                .unwrap();
        });
        let addr = EngineAddr::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let engine = HttpEngine::with_tls(addr, Timeouts::default(), 1, None, None);
        let (status, body) = engine
            .post(PostRequest::new("/exec/x/start"))
            .await
            .unwrap();
        assert_eq!((status, &body[..]), (200, &b"exec output"[..]));
        assert_eq!(&engine.get("/_ping").await.unwrap()[..], b"OK");
    }

    /// Work a client asked for that the engine takes long over (two creates looking for a
    /// log plugin) does not hold up the node's own calls: those have connections of their
    /// own, and the node is not taken for sick.
    #[actix_rt::test]
    async fn slow_work_leaves_the_nodes_own_calls_their_connections() {
        let addr = stalling_engine(Duration::from_secs(60)).await;
        let timeouts = Timeouts {
            call: Duration::from_secs(1),
            long: Duration::from_secs(30),
        };
        let engine = HttpEngine::for_node(addr, timeouts);
        let work: Vec<_> = (0..2)
            .map(|_| actix_rt::spawn(engine.post(PostRequest::new("/containers/create").work())))
            .collect();
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..3 {
            assert_eq!(&engine.get("/_ping").await.unwrap()[..], b"OK");
        }
        for w in work {
            w.abort();
        }
    }

    /// Work in flight on an engine that stopped answering ends when its node turns
    /// unhealthy (`sever`), long before the work timeout: as a call whose fate is unknown
    /// (`Io`: the engine may have acted on it), naming the node. Calls made after the cut
    /// (the unhealthy node's probes) go through on new connections.
    #[actix_rt::test]
    async fn work_in_flight_ends_when_its_node_turns_unhealthy() {
        let addr = stalling_engine(Duration::from_secs(3600)).await;
        let timeouts = Timeouts {
            call: Duration::from_secs(1),
            long: Duration::from_secs(600),
        };
        let engine = HttpEngine::for_node(addr.clone(), timeouts);
        let create = PostRequest::new("/containers/create").json(Bytes::from_static(b"{}"));
        let work = actix_rt::spawn(engine.post(create.work()));
        let waiting = actix_rt::spawn(engine.post(PostRequest::new("/containers/x/wait").work()));
        actix_rt::time::sleep(Duration::from_millis(300)).await;
        assert!(!work.is_finished() && !waiting.is_finished());
        let cut = std::time::Instant::now();
        crate::engine::sever(&addr, "node-7", "engine did not answer /info within 1.0s");
        for call in [work, waiting] {
            let e = actix_rt::time::timeout(Duration::from_secs(2), call)
                .await
                .expect("ends at the cut, not after the work timeout")
                .expect("task")
                .expect_err("fails");
            assert!(matches!(e, EngineError::Io { .. }), "{e:?}");
            assert!(
                e.to_string().contains("node node-7 turned unhealthy"),
                "{e}"
            );
        }
        assert!(
            cut.elapsed() < Duration::from_secs(1),
            "{:?}",
            cut.elapsed()
        );
        assert_eq!(&engine.get("/_ping").await.unwrap()[..], b"OK");
    }
}
