//! The per-connection front: reads the first request head, then either serves a hijack
//! (`relay`) or hands the connection, bytes already read included, to actix-web's HTTP/1
//! service.

use super::{asks_upgrade, classify, relay, Hijack};
use crate::api::ApiState;
use actix_service::Service;
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// Largest request head the front reads before giving up looking (actix-http refuses
/// larger heads itself).
const HEAD_LIMIT: usize = 64 * 1024;
/// Headers parsed at most; a head with more is left to actix-http.
const MAX_HEADERS: usize = 96;
/// How long a new connection may take to send its first head (actix-http's default client
/// request timeout).
const FIRST_HEAD_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum FrontError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("HTTP service: {0}")]
    Http(String),
}

/// What the first head of a connection asks for.
#[derive(Debug, PartialEq)]
enum First {
    /// A hijack; the head is `buf[..head_len]`, its target is `target`.
    Hijack {
        hijack: Hijack,
        head_len: usize,
        target: String,
    },
    /// Anything else, including heads the front cannot parse: actix-http will answer.
    Http,
    /// The client closed before sending anything.
    Closed,
}

/// Parses what was read so far; `None` while the head is incomplete.
fn inspect(buf: &[u8]) -> Option<First> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head_len)) => {
            let method = req.method.unwrap_or("");
            let target = req.path.unwrap_or("");
            tracing::trace!(method, target, "first request head");
            Some(match classify(method, target, asks_upgrade(req.headers)) {
                Some(hijack) => First::Hijack {
                    hijack,
                    head_len,
                    target: target.to_string(),
                },
                None => First::Http,
            })
        }
        Ok(httparse::Status::Partial) => None,
        Err(_) => Some(First::Http),
    }
}

async fn read_first<T: AsyncRead + Unpin>(io: &mut T, buf: &mut BytesMut) -> First {
    loop {
        if !buf.is_empty() {
            if let Some(first) = inspect(buf) {
                return first;
            }
        }
        if buf.len() >= HEAD_LIMIT {
            return First::Http;
        }
        buf.reserve(4096);
        match actix_rt::time::timeout(FIRST_HEAD_WAIT, io.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) if buf.is_empty() => return First::Closed,
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return First::Http,
            Ok(Ok(_)) => {}
        }
    }
}

/// Serves one accepted connection. `http` is this worker's actix-web HTTP/1 service.
pub async fn serve_connection<T, S>(
    mut io: T,
    peer: Option<SocketAddr>,
    http: &S,
    state: &ApiState,
) -> Result<(), FrontError>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    S: Service<(Replay<T>, Option<SocketAddr>), Response = ()>,
    S::Error: std::fmt::Display,
{
    let mut buf = BytesMut::with_capacity(4096);
    match read_first(&mut io, &mut buf).await {
        First::Closed => Ok(()),
        First::Http => {
            let io = Replay {
                prefix: buf.freeze(),
                io,
            };
            http.call((io, peer))
                .await
                .map_err(|e| FrontError::Http(e.to_string()))
        }
        First::Hijack {
            hijack,
            head_len,
            target,
        } => relay::serve(io, buf, head_len, &target, hijack, state).await,
    }
}

/// A connection whose first bytes were already read: they are read again first.
pub struct Replay<T> {
    prefix: Bytes,
    io: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Replay<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(out.remaining());
            out.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, out)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Replay<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_head_waits_for_more() {
        assert_eq!(inspect(b"POST /containers/web/att"), None);
        assert_eq!(inspect(b"GET /_ping HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn the_first_head_decides() {
        let head = b"POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}stdin";
        match inspect(head) {
            Some(First::Hijack {
                hijack,
                head_len,
                target,
            }) => {
                assert_eq!(hijack, Hijack::ExecStart { id: "abc".into() });
                assert_eq!(&head[head_len..], b"{}stdin");
                assert_eq!(target, "/v1.41/exec/abc/start");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(inspect(b"GET /_ping HTTP/1.1\r\n\r\n"), Some(First::Http));
        assert_eq!(inspect(b"\x16\x03\x01garbage"), Some(First::Http));
    }

    #[actix_rt::test]
    async fn replayed_bytes_come_first() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b" world")
            .await
            .unwrap();
        drop(a);
        let mut r = Replay {
            prefix: Bytes::from_static(b"hello"),
            io: b,
        };
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
