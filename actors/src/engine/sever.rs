//! Cutting every connection to an engine when its node turns unhealthy.
//!
//! Work a client asked an engine for (a create, a `wait`, `logs -f`, an attach) may rightly
//! take minutes, so it runs under `--engine-work-timeout` (10 minutes) or with no deadline
//! at all, and no timeout can tell a frozen engine from a busy one. The node's refreshes
//! can: when `--engine-failure-retry` of them failed in a row the NodeActor marks the node
//! unhealthy and calls [`sever`], and every connection to that engine opened before then
//! fails its next read or write, with [`Severed`] inside the `io::Error`. So a call in
//! flight on a frozen engine ends when its node is marked (seconds), not after the work
//! timeout, and a slow engine whose refreshes still answer is never cut.
//!
//! The cut is in the connection itself ([`Severable`], under `conn::connector` and
//! `tls::dial`), below every client: an engine's connections live on many threads (the
//! node's clients on its arbiter, each HTTP worker's client of the proxy, the hijack
//! relay's raw sockets), and one cut reaches them all with no call site to miss.
//! Connections opened after it belong to the next generation: the probes of the unhealthy
//! node and the resolver's looks for a silent create are not cut.
//!
//! What callers make of it: the node's own calls fail as a connection broken mid-call
//! (`EngineError::Io`: a create's fate is unknown, and the create flow settles it as a
//! silent one); the proxy answers 503 naming the node; a stream already under way (logs,
//! attach) ends with its connection closed.
//!
//! Process-wide, keyed by address, because the connections are made on many threads from
//! nothing but the address. One small entry per engine ever dialed.

use super::EngineAddr;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Why a connection was cut: its node turned unhealthy while it was open.
#[derive(Debug, Clone, thiserror::Error)]
#[error("node {node} turned unhealthy while this call was under way ({reason})")]
pub struct Severed {
    /// The node's name (its address when it never answered).
    pub node: String,
    /// Why the node is unhealthy: its last failed refresh.
    pub reason: String,
}

/// The connections to one engine opened since its node last turned unhealthy.
#[derive(Default)]
struct Generation {
    /// Set, before `cut` is cancelled, when the generation is severed.
    why: OnceLock<Severed>,
    cut: CancellationToken,
}

/// The current generation of each engine.
static GENERATIONS: Mutex<Option<HashMap<EngineAddr, Arc<Generation>>>> = Mutex::new(None);

/// The generation a connection to `addr` opened now belongs to.
pub(super) struct Lifeline(Arc<Generation>);

/// Taken before dialing, so a connection whose dial was under way when its node was
/// marked is cut too.
pub(super) fn lifeline(addr: &EngineAddr) -> Lifeline {
    let mut all = GENERATIONS.lock().unwrap_or_else(|e| e.into_inner());
    let generation = all
        .get_or_insert_with(HashMap::new)
        .entry(addr.clone())
        .or_default()
        .clone();
    Lifeline(generation)
}

/// Cuts every connection to `addr` opened until now (the NodeActor calls it when the node
/// turns unhealthy); connections opened from now on are not affected.
pub fn sever(addr: &EngineAddr, node: &str, reason: &str) {
    let old = {
        let mut all = GENERATIONS.lock().unwrap_or_else(|e| e.into_inner());
        all.get_or_insert_with(HashMap::new)
            .insert(addr.clone(), Arc::default())
    };
    if let Some(old) = old {
        let _ = old.why.set(Severed {
            node: node.to_string(),
            reason: reason.to_string(),
        });
        old.cut.cancel();
    }
}

/// The [`Severed`] inside an I/O error, if that is why it failed.
pub fn severed_io(e: &io::Error) -> Option<&Severed> {
    e.get_ref()?.downcast_ref::<Severed>()
}

/// The [`Severed`] behind a failed awc request, if that is why it failed.
pub fn severed_send(e: &awc::error::SendRequestError) -> Option<&Severed> {
    use actix_http::error::ParseError;
    use awc::error::SendRequestError;
    match e {
        SendRequestError::Send(io) | SendRequestError::Response(ParseError::Io(io)) => {
            severed_io(io)
        }
        _ => None,
    }
}

/// The [`Severed`] behind a failed read of an awc answer's body, if that is why it failed.
pub fn severed_payload(e: &awc::error::PayloadError) -> Option<&Severed> {
    use awc::error::PayloadError;
    match e {
        PayloadError::Io(io) | PayloadError::Incomplete(Some(io)) => severed_io(io),
        _ => None,
    }
}

/// A connection that fails once its generation is severed: at once when asked to read or
/// write, and, while it waits on the engine, as soon as the cut comes.
pub struct Severable<T> {
    io: T,
    generation: Arc<Generation>,
    /// Polled only when the connection would wait, so it holds the waiting task's waker.
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<T> Severable<T> {
    pub(super) fn new(line: Lifeline, io: T) -> Self {
        let cut = Box::pin(line.0.cut.clone().cancelled_owned());
        Severable {
            io,
            generation: line.0,
            cut,
        }
    }

    pub(super) fn get_ref(&self) -> &T {
        &self.io
    }

    /// The error of a severed connection, when it is severed.
    fn severed(&self) -> Option<io::Error> {
        let why = self.generation.why.get()?;
        Some(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            why.clone(),
        ))
    }

    /// What to answer instead of `Pending`: the cut's error once it came.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        match self.cut.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(self.severed().unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::ConnectionAborted, "connection cut")
            }))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> std::fmt::Debug for Severable<T>
where
    T: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Severable")
            .field("io", &self.io)
            .field("severed", &self.generation.why.get().is_some())
            .finish()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Severable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.severed() {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Severable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.severed() {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.severed() {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn addr(port: u16) -> EngineAddr {
        EngineAddr::Tcp {
            host: "sever.test".into(),
            port,
        }
    }

    #[actix_rt::test]
    async fn a_read_waiting_on_the_engine_fails_when_its_node_is_severed() {
        let a = addr(1);
        let (near, _far) = tokio::io::duplex(1024);
        let mut conn = Severable::new(lifeline(&a), near);
        let reading = actix_rt::spawn(async move {
            let mut b = [0u8; 8];
            conn.read(&mut b).await
        });
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        assert!(!reading.is_finished(), "waits while the node is healthy");
        sever(
            &a,
            "node-1",
            "engine sever.test:1 did not answer /info within 2.0s",
        );
        let e = actix_rt::time::timeout(Duration::from_secs(1), reading)
            .await
            .expect("ends at the cut")
            .expect("task")
            .expect_err("fails");
        let why = severed_io(&e).expect("a Severed inside");
        assert_eq!(why.node, "node-1");
        assert!(e.to_string().contains("node-1 turned unhealthy"), "{e}");
    }

    #[actix_rt::test]
    async fn only_connections_opened_before_the_cut_are_cut() {
        let (a, b) = (addr(2), addr(3));
        let (old, _old_far) = tokio::io::duplex(1024);
        let mut old = Severable::new(lifeline(&a), old);
        let (other, mut other_far) = tokio::io::duplex(1024);
        let mut other = Severable::new(lifeline(&b), other);
        sever(&a, "node-2", "down");
        let e = old.write_all(b"GET /").await.expect_err("cut");
        assert!(severed_io(&e).is_some(), "{e}");
        // Another engine's connection, and a new one to the severed engine, work.
        other.write_all(b"ping").await.expect("another engine");
        let mut got = [0u8; 4];
        other_far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        let (fresh, mut fresh_far) = tokio::io::duplex(1024);
        let mut fresh = Severable::new(lifeline(&a), fresh);
        fresh_far.write_all(b"pong").await.unwrap();
        fresh.read_exact(&mut got).await.expect("a new connection");
        assert_eq!(&got, b"pong");
    }
}
