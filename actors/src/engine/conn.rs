//! The connection every awc engine client speaks HTTP over, and why it is not awc's own.
//!
//! An engine may end an answer by closing the connection: `exec start` without an upgrade
//! (the Ruby `docker-api` gem sends it so) is answered `HTTP/1.1 200 OK` with no
//! `Content-Length` and no chunks, then the exec's output until it ends. RFC 9112 (6.3,
//! last rule) says such a body runs to the close. actix-http's client decoder instead reads
//! it as an answer without a body, and awc puts the connection back into its pool with the
//! engine's stream still coming on it: the client got an empty answer, and the next call
//! that took the connection read the exec's output as its answer head ("invalid HTTP
//! version specified"). awc's pool check (a peek for unread bytes) only sees bytes that
//! already arrived, so it cannot catch this.
//!
//! [`AnswerFraming`] fixes it below awc, for every call of every engine client: it looks at
//! each answer head as it is read (the first bytes read after a request was written) and,
//! when the head leaves the body to run to the close, marks it `HTTP/1.0` (same length).
//! For an HTTP/1.0 answer awc already does what the RFC asks of this one: it reads the body
//! to the end of the stream and closes the connection instead of pooling it. Answers whose
//! length is known (`Content-Length`, chunked, `204`, `304`, a `HEAD`) pass unchanged, and
//! after a `101` the connection is a tunnel (WebSocket attach) and is not looked at again.
//!
//! Because the wrapper must see plain HTTP, it sits above TLS: [`connector`] dials TCP, TLS
//! or a unix socket itself ([`connect`], shared with the hijack relay's raw connections),
//! and awc is handed `http://` URLs whatever the transport.
//!
//! Every connection [`connect`] opens is also [`Severable`]: cut when its node turns
//! unhealthy (see `sever`).

use super::budget::{self, Slot};
use super::sever::{self, Severable};
use super::tls::EngineTls;
use super::EngineAddr;
use actix_rt::net::{ActixStream, Ready};
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use bytes::{Buf, BytesMut};
use rustls::pki_types::ServerName;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Largest answer head looked at; a longer one passes unchanged (awc refuses it anyway).
const HEAD_LIMIT: usize = 64 * 1024;
/// Room made in `held` for each read while an answer head is gathered.
const HEAD_CHUNK: usize = 4096;

/// One connection to an engine, holding its slot of the connection budget until closed.
#[derive(Debug)]
pub struct EngineSocket {
    transport: Transport,
    _slot: Slot,
}

/// What an engine connection runs over: TCP, TCP with TLS, or a unix socket.
#[derive(Debug)]
enum Transport {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

/// Opens a connection to `addr` (with TLS on TCP when `tls` is given, handshake included),
/// cut when the engine's node turns unhealthy. Waits for a slot of the connection budget
/// first (`budget`). No deadline of its own: callers put one around it.
pub async fn connect(
    addr: &EngineAddr,
    tls: Option<&EngineTls>,
) -> io::Result<Severable<EngineSocket>> {
    let slot = budget::slot().await;
    let line = sever::lifeline(addr);
    let socket = EngineSocket {
        transport: dial(addr, tls).await?,
        _slot: slot,
    };
    Ok(Severable::new(line, socket))
}

async fn dial(addr: &EngineAddr, tls: Option<&EngineTls>) -> io::Result<Transport> {
    Ok(match addr {
        EngineAddr::Tcp { host, port } => {
            let tcp = TcpStream::connect((host.as_str(), *port)).await?;
            tcp.set_nodelay(true)?;
            match tls {
                None => Transport::Tcp(tcp),
                Some(tls) => {
                    let name = ServerName::try_from(host.clone())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
                    Transport::Tls(Box::new(connector.connect(name, tcp).await?))
                }
            }
        }
        EngineAddr::Unix(path) => Transport::Unix(UnixStream::connect(path).await?),
    })
}

/// The connector of an awc client of `addr`: every connection is [`connect`]ed and wrapped
/// in [`AnswerFraming`], whatever host the request's URL names. awc's connector puts its
/// connect timeout around it.
pub fn connector(
    addr: EngineAddr,
    tls: Option<EngineTls>,
) -> impl Service<
    ConnectInfo<Uri>,
    Response = Connection<Uri, AnswerFraming<Severable<EngineSocket>>>,
    Error = ConnectError,
> + Clone
       + 'static {
    actix_service::fn_service(move |req: ConnectInfo<Uri>| {
        let (addr, tls) = (addr.clone(), tls.clone());
        async move {
            let socket = connect(&addr, tls.as_ref())
                .await
                .map_err(ConnectError::Io)?;
            Ok::<_, ConnectError>(Connection::new(
                req.request().clone(),
                AnswerFraming::new(socket),
            ))
        }
    })
}

/// Where a connection is in its exchange, as seen from its reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between answers (new, or the last answer's body is being read): the next write
    /// starts a request.
    Idle,
    /// A request is being written; the next read starts its answer. `head`: it is a HEAD,
    /// whose answer has no body whatever its headers say.
    Request { head: bool },
    /// An answer head is being gathered in `held` before anything of it is passed on.
    Head { head: bool },
    /// After `101 Switching Protocols`: raw bytes both ways from now on.
    Tunnel,
}

/// An engine connection that makes every answer's end explicit to awc (see the module
/// doc): an answer that runs to the close is marked `HTTP/1.0`.
#[derive(Debug)]
pub struct AnswerFraming<T> {
    io: T,
    phase: Phase,
    /// Read from the engine, not yet given to the reader: a head being gathered, or the
    /// gathered head (and what came with it) being handed on.
    held: BytesMut,
}

impl<T> AnswerFraming<T> {
    pub fn new(io: T) -> Self {
        AnswerFraming {
            io,
            phase: Phase::Idle,
            held: BytesMut::new(),
        }
    }
}

/// What a complete answer head says about the answer's body.
#[derive(Debug, PartialEq, Eq)]
enum HeadKind {
    /// An interim answer (`100 Continue`): the real head follows.
    Interim,
    /// `101`: the connection is a tunnel from here.
    Upgrade,
    /// The body runs until the engine closes (HTTP/1.1 without a length).
    ToClose,
    /// Anything awc frames right by itself.
    Framed,
}

/// Reads an answer head (`bytes` holds it whole). `head_request`: it answers a HEAD.
fn head_kind(bytes: &[u8], head_request: bool) -> HeadKind {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut answer = httparse::Response::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = answer.parse(bytes) else {
        return HeadKind::Framed;
    };
    let status = answer.code.unwrap_or(0);
    match status {
        101 => return HeadKind::Upgrade,
        100..=199 => return HeadKind::Interim,
        204 | 304 => return HeadKind::Framed,
        _ => {}
    }
    if head_request || answer.version != Some(1) {
        return HeadKind::Framed;
    }
    let framed = answer.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("content-length")
            || h.name.eq_ignore_ascii_case("transfer-encoding")
    });
    if framed {
        HeadKind::Framed
    } else {
        HeadKind::ToClose
    }
}

/// Where a head ends in `bytes` (just past its blank line), if it is all there.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

impl<T: AsyncRead + Unpin> AnswerFraming<T> {
    /// Gathers an answer head in `held`; ready once the held bytes may be handed on.
    fn poll_head(&mut self, cx: &mut Context<'_>, head_request: bool) -> Poll<io::Result<()>> {
        loop {
            match head_end(&self.held) {
                Some(end) => match head_kind(&self.held[..end], head_request) {
                    HeadKind::Interim => {
                        // Hand on the interim head; the next one is looked at again.
                        return Poll::Ready(Ok(()));
                    }
                    HeadKind::Upgrade => {
                        self.phase = Phase::Tunnel;
                        return Poll::Ready(Ok(()));
                    }
                    HeadKind::ToClose => {
                        // "HTTP/1.1" → "HTTP/1.0": the version is the status line's start.
                        self.held[7] = b'0';
                        self.phase = Phase::Idle;
                        return Poll::Ready(Ok(()));
                    }
                    HeadKind::Framed => {
                        self.phase = Phase::Idle;
                        return Poll::Ready(Ok(()));
                    }
                },
                None if self.held.len() >= HEAD_LIMIT => {
                    self.phase = Phase::Idle;
                    return Poll::Ready(Ok(()));
                }
                None => {}
            }
            // Read straight into `held`'s spare room (a zeroed chunk per read was 4 KB of
            // stores per poll, Pending ones too).
            self.held.reserve(HEAD_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.held) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => {
                    // Closed mid-head: hand on what came; awc reports the broken answer.
                    self.phase = Phase::Idle;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    /// Hands on held bytes once a gathered head is complete (an interim head's bytes
    /// first, then the gathering goes on where they end).
    fn hand_on(&mut self, out: &mut ReadBuf<'_>) {
        let ready = match self.phase {
            // Only an interim head is handed on while gathering: exactly its bytes.
            Phase::Head { .. } => head_end(&self.held).unwrap_or(0),
            _ => self.held.len(),
        };
        let n = ready.min(out.remaining());
        out.put_slice(&self.held[..n]);
        self.held.advance(n);
        if self.held.is_empty() {
            // An idle connection keeps no buffer (a thousand nodes keep three each).
            self.held = BytesMut::new();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for AnswerFraming<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Phase::Request { head } = this.phase {
            this.phase = Phase::Head { head };
        }
        if let Phase::Head { head } = this.phase {
            if let Err(e) = std::task::ready!(this.poll_head(cx, head)) {
                return Poll::Ready(Err(e));
            }
        }
        if !this.held.is_empty() {
            this.hand_on(out);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, out)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for AnswerFraming<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = std::task::ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        this.wrote(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = std::task::ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        if written > 0 {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            this.wrote(&first[..written.min(first.len())]);
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T> AnswerFraming<T> {
    /// Notes bytes written: the first after an answer start a request (its method first).
    fn wrote(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        match self.phase {
            Phase::Idle => {
                self.phase = Phase::Request {
                    head: bytes.starts_with(b"HEAD "),
                }
            }
            // More of the same request (its body), or a tunnel's bytes.
            Phase::Request { .. } | Phase::Tunnel => {}
            // The body after `100 Continue`: the final head is gathered again.
            Phase::Head { head } => self.phase = Phase::Request { head },
        }
    }
}

impl AsyncRead for EngineSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for EngineSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().transport {
            Transport::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Transport::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.transport {
            Transport::Tcp(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
            Transport::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// awc asks its connections for `ActixStream` but never calls these; they answer the
/// readiness of the socket under any TLS.
impl ActixStream for AnswerFraming<Severable<EngineSocket>> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        match &self.io.get_ref().transport {
            Transport::Tcp(s) => ActixStream::poll_read_ready(s, cx),
            Transport::Tls(s) => ActixStream::poll_read_ready(s.get_ref().0, cx),
            Transport::Unix(s) => ActixStream::poll_read_ready(s, cx),
        }
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        match &self.io.get_ref().transport {
            Transport::Tcp(s) => ActixStream::poll_write_ready(s, cx),
            Transport::Tls(s) => ActixStream::poll_write_ready(s.get_ref().0, cx),
            Transport::Unix(s) => ActixStream::poll_write_ready(s, cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes `request` through the wrapper, has the peer answer `answer` in pieces of
    /// `piece` bytes, and answers what the reader of the wrapper got up to the peer's close.
    async fn exchange(request: &[u8], answer: &[u8], piece: usize) -> Vec<u8> {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let mut conn = AnswerFraming::new(near);
        conn.write_all(request).await.unwrap();
        let mut got = vec![0u8; request.len()];
        far.read_exact(&mut got).await.unwrap();
        for part in answer.chunks(piece) {
            far.write_all(part).await.unwrap();
        }
        drop(far);
        let mut out = Vec::new();
        conn.read_to_end(&mut out).await.unwrap();
        out
    }

    #[actix_rt::test]
    async fn an_answer_that_runs_to_the_close_is_marked_http_1_0() {
        let answer =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nhello";
        for piece in [1, 7, answer.len()] {
            let out = exchange(b"POST /exec/x/start HTTP/1.1\r\n\r\n{}", answer, piece).await;
            assert_eq!(
                out,
                b"HTTP/1.0 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nhello",
                "pieces of {piece}"
            );
        }
    }

    #[actix_rt::test]
    async fn framed_answers_pass_unchanged() {
        for answer in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nold",
        ] {
            assert_eq!(
                exchange(b"GET /x HTTP/1.1\r\n\r\n", answer, 3).await,
                answer
            );
        }
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
        assert_eq!(exchange(b"HEAD /x HTTP/1.1\r\n\r\n", head, 5).await, head);
    }

    #[actix_rt::test]
    async fn after_an_interim_head_the_final_one_is_read_and_a_tunnel_is_left_alone() {
        let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrest";
        assert_eq!(
            exchange(b"POST /x HTTP/1.1\r\n\r\n", answer, 4).await,
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest"
        );
        let (near, mut far) = tokio::io::duplex(4096);
        let mut conn = AnswerFraming::new(near);
        conn.write_all(b"GET /ws HTTP/1.1\r\n\r\n").await.unwrap();
        far.write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 36];
        conn.read_exact(&mut head).await.unwrap();
        // Frames both ways from now on; none is taken for a head.
        conn.write_all(b"frame").await.unwrap();
        far.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        drop(far);
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"HTTP/1.1 200 OK\r\n\r\n");
    }

    #[actix_rt::test]
    async fn a_second_request_on_the_connection_is_looked_at_again() {
        let (near, mut far) = tokio::io::duplex(4096);
        let mut conn = AnswerFraming::new(near);
        for _ in 0..2 {
            conn.write_all(b"GET /a HTTP/1.1\r\n\r\n").await.unwrap();
            let mut req = [0u8; 19];
            far.read_exact(&mut req).await.unwrap();
            far.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx")
                .await
                .unwrap();
            let mut got = [0u8; 39];
            conn.read_exact(&mut got).await.unwrap();
            assert_eq!(&got[..], b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
        }
        conn.write_all(b"POST /b HTTP/1.1\r\n\r\n").await.unwrap();
        far.write_all(b"HTTP/1.1 200 OK\r\n\r\nstream")
            .await
            .unwrap();
        drop(far);
        let mut out = Vec::new();
        conn.read_to_end(&mut out).await.unwrap();
        assert!(out.starts_with(b"HTTP/1.0 200 OK"), "{out:?}");
    }
}
