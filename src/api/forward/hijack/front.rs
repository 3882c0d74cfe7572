//! The per-connection front: actix-web's HTTP/1 service reads the connection through a
//! `Gate` that stops it at the head of a hijack (found by the `framer`), whichever request
//! of the connection that is; the relay then serves the hijack on the same connection. At a
//! request the framing refuses it stops the same way, and the client is answered the
//! refusal here once actix-http has answered the requests before it.

use super::error::FrontError;
use super::framer::{Cleared, RequestFramer, Stop};
use super::relay;
use crate::api::ApiState;
use actix_service::Service;
use bytes::{Buf, BytesMut};
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

thread_local! {
    /// Where a gate reads from its client, one per thread: a chunk zeroed on the stack for
    /// each read (Pending ones too) was 8 KB of stores per poll, and one in each gate's own
    /// buffer would be 8 KB held by every idle connection.
    static READ_CHUNK: RefCell<Box<[u8]>> = RefCell::new(vec![0; 8192].into_boxed_slice());
}

/// What a `Gate` leaves behind when it stops at a hijack or a refused head: the connection,
/// and the bytes read from it that actix-http did not get (that head and whatever followed).
struct Handoff<T> {
    io: T,
    buf: BytesMut,
    stop: Stop,
}

type Slot<T> = Rc<RefCell<Option<Handoff<T>>>>;

/// Serves one accepted connection. `http` is this worker's actix-web HTTP/1 service; it
/// reads the connection through a `Gate`, which gives it every ordinary request and an end
/// of stream where a hijack head starts. The connection then comes back here and the
/// relay serves the hijack.
pub async fn serve_connection<T, S>(
    io: T,
    peer: Option<SocketAddr>,
    identity: Option<crate::tls::ClientIdentity>,
    http: &S,
    state: &ApiState,
) -> Result<(), FrontError>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    S: Service<(Gate<T>, Option<SocketAddr>), Response = ()>,
    S::Error: std::fmt::Display,
{
    let slot: Slot<T> = Rc::new(RefCell::new(None));
    let gate = Gate {
        io: Some(io),
        // Grown when bytes come: an idle connection holds no buffer of its own.
        buf: BytesMut::new(),
        ready: 0,
        framer: RequestFramer::default(),
        stop: None,
        slot: slot.clone(),
    };
    let served = http.call((gate, peer)).await;
    let handoff = slot.borrow_mut().take();
    match handoff {
        Some(Handoff {
            io,
            buf,
            stop: Stop::Hijack(found),
        }) => relay::serve(io, buf, found, identity.as_ref(), state).await,
        Some(Handoff {
            mut io,
            stop: Stop::Refused(refusal),
            ..
        }) => {
            tracing::debug!(%refusal, "request refused by the gate");
            relay::answer_and_close(&mut io, refusal.status(), &refusal.to_string()).await
        }
        Some(_) | None => served.map_err(|e| FrontError::Http(e.to_string())),
    }
}

/// The connection as actix-http reads it: the client's bytes, request by request, up to
/// the head of a hijack or of a refused request, where it reads an end of stream (and a
/// shutdown does nothing, so the connection stays whole for the relay or the refusal).
pub struct Gate<T> {
    io: Option<T>,
    /// Read from the client, not yet given to actix-http.
    buf: BytesMut,
    /// How many bytes at the front of `buf` belong to ordinary requests.
    ready: usize,
    framer: RequestFramer,
    /// Where the requests stopped; actix-http reads an end of stream from there.
    stop: Option<Stop>,
    slot: Slot<T>,
}

impl<T> Gate<T> {
    /// The client's connection (to read what the transport knows of the client, such as
    /// its TLS certificate); `None` once handed back.
    pub fn inner(&self) -> Option<&T> {
        self.io.as_ref()
    }

    /// Whether the connection goes on after actix-http (to the relay or a refusal).
    fn handed_on(&self) -> bool {
        matches!(self.stop, Some(Stop::Hijack(_) | Stop::Refused(_)))
    }
}

impl<T> Drop for Gate<T> {
    fn drop(&mut self) {
        if !self.handed_on() {
            return;
        }
        if let (Some(stop), Some(io)) = (self.stop.take(), self.io.take()) {
            let buf = std::mem::take(&mut self.buf);
            *self.slot.borrow_mut() = Some(Handoff { io, buf, stop });
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Gate<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready > 0 {
                let n = this.ready.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.advance(n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if this.stop.is_some() {
                return Poll::Ready(Ok(()));
            }
            if !this.buf.is_empty() {
                match this.framer.clear(&this.buf) {
                    Cleared::Bytes(0) => {}
                    Cleared::Bytes(n) => {
                        this.ready = n;
                        continue;
                    }
                    Cleared::Then(n, stop) => {
                        this.ready = n;
                        this.stop = Some(stop);
                        continue;
                    }
                }
            }
            let Some(io) = this.io.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let read = READ_CHUNK.with_borrow_mut(|chunk| {
                let mut rb = ReadBuf::new(&mut chunk[..]);
                Pin::new(io).poll_read(cx, &mut rb).map_ok(|()| {
                    this.buf.extend_from_slice(rb.filled());
                    rb.filled().len()
                })
            });
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    // The client closed: what is left is an unfinished head or chunk line,
                    // which no one will finish; actix-http never sees it.
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Gate<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_write(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.handed_on() {
            // The relay or the refusal still needs this connection: flush, do not close it.
            return self.poll_flush(cx);
        }
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.io.as_mut() {
            Some(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[actix_rt::test]
    async fn the_gate_ends_at_a_hijack_and_hands_the_rest_back() {
        let (mut client, server) = tokio::io::duplex(4096);
        let slot: Slot<tokio::io::DuplexStream> = Rc::new(RefCell::new(None));
        let mut gate = Gate {
            io: Some(server),
            buf: BytesMut::new(),
            ready: 0,
            framer: RequestFramer::default(),
            stop: None,
            slot: slot.clone(),
        };
        let ping = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
        let exec =
            b"POST /exec/e1/start HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n";
        client.write_all(ping).await.unwrap();
        client.write_all(exec).await.unwrap();
        client.write_all(b"stdin").await.unwrap();
        let mut seen = Vec::new();
        gate.read_to_end(&mut seen).await.unwrap();
        assert_eq!(seen, ping, "actix-http gets the ping only");
        gate.shutdown().await.unwrap();
        drop(gate);
        let h = slot.borrow_mut().take().expect("handed back");
        let Stop::Hijack(found) = h.stop else {
            panic!("{:?}", h.stop)
        };
        assert_eq!(
            found.hijack,
            super::super::Hijack::ExecStart { id: "e1".into() }
        );
        assert_eq!(&h.buf[found.head_len..], b"stdin");
        // The connection is still whole: the client hears what is written to it.
        let mut io = h.io;
        io.write_all(b"out").await.unwrap();
        let mut back = [0u8; 3];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"out");
    }
}
