//! Serves one hijack: finds the engine, sends it the request, passes its answer head on,
//! then copies bytes both ways with half-close.

use super::error::FrontError;
use super::framer::FoundHijack;
use super::Hijack;
use crate::api::proxy::{self, rewrite};
use crate::api::routes::cross_site;
use crate::api::{exec, ApiError, ApiState};
use actix_web::ResponseError;
use bytes::BytesMut;
use shoal_actors::engine::{tls, EngineAddr, EngineError};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest answer head accepted from an engine.
const ANSWER_HEAD_LIMIT: usize = 64 * 1024;

/// Least time between passing on an upgrade's answer head (`101 UPGRADED`) and the first
/// output after it. Clients read that head with a buffered HTTP reader and then read the
/// raw socket past it (docker-py: `response.raw._fp.fp.raw`), so output that reaches the
/// client in the same read as the head stays in that reader's buffer and is lost: an
/// `attach(stream=False, logs=True)` of a stopped container returned nothing one time in
/// two. An engine writes the head and then works before the first output (reads the log,
/// starts the process), and a client reads the head meanwhile; Shoal reads the engine's
/// head and output together whenever it was a moment late, and would pass both on in one
/// write. So the output waits out this gap, once per hijack, and only when it follows the
/// head at once: an interactive session's first output comes later than that anyway.
const HEAD_GAP: Duration = Duration::from_millis(50);

/// Where the hijack goes: the engine and the engine path (full container ID).
async fn target(
    hijack: &Hijack,
    original: &str,
    state: &ApiState,
) -> Result<(EngineAddr, String), ApiError> {
    // A replica sends the hijack to the primary, as it came.
    if let Some(upstream) = state.replication.as_ref().map(|r| r.upstream()) {
        match upstream {
            crate::replication::Upstream::Here => {}
            crate::replication::Upstream::Primary(addr) => return Ok((addr, original.to_string())),
            crate::replication::Upstream::NoPrimary => return Err(crate::replication::no_primary()),
        }
    }
    let (path, query) = original.split_once('?').unwrap_or((original, ""));
    match hijack {
        Hijack::Attach { reference } => {
            let (node, id) = proxy::owner(state, reference)?;
            Ok((
                node,
                rewrite(path, query, &format!("/containers/{id}/attach")),
            ))
        }
        Hijack::ExecStart { id } => {
            let node = exec::locate(state, id).await?;
            Ok((node, rewrite(path, query, &format!("/exec/{id}/start"))))
        }
    }
}

/// Connects to the engine as the process dials engines (TLS on TCP when it was started
/// with it), handshake included, within `limit`.
async fn connect(addr: &EngineAddr, limit: Duration) -> io::Result<Box<dyn tls::EngineIo>> {
    tls::dial(addr, limit).await
}

/// Writes a Docker-shaped error answer and closes.
async fn refuse<T: AsyncWrite + Unpin>(client: &mut T, e: ApiError) -> Result<(), FrontError> {
    answer_and_close(client, e.status_code().as_u16(), &e.to_string()).await
}

/// Writes a Docker-shaped answer (`status`, `{"message": ...}`) and closes the connection.
pub(super) async fn answer_and_close<T: AsyncWrite + Unpin>(
    client: &mut T,
    status: u16,
    message: &str,
) -> Result<(), FrontError> {
    let reason = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let body = serde_json::json!({ "message": message }).to_string();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await?;
    client.write_all(body.as_bytes()).await?;
    client.shutdown().await?;
    Ok(())
}

/// Reads the engine's answer head (and whatever came with it) into `buf`; answers the
/// status and the length of the head.
async fn read_answer_head<E: AsyncRead + Unpin>(
    engine: &mut E,
    buf: &mut BytesMut,
) -> io::Result<(u16, usize)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut answer = httparse::Response::new(&mut headers);
        match answer.parse(buf) {
            Ok(httparse::Status::Complete(n)) => return Ok((answer.code.unwrap_or(0), n)),
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
        if buf.len() >= ANSWER_HEAD_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "answer head too large",
            ));
        }
        buf.reserve(4096);
        if engine.read_buf(buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "engine closed before answering",
            ));
        }
    }
}

/// Serves the hijack `found`, whose head is `buf[..found.head_len]` (bytes after it were
/// already sent by the client: a JSON body, or the start of stdin).
pub async fn serve<T>(
    mut client: T,
    buf: BytesMut,
    found: FoundHijack,
    identity: Option<&crate::tls::ClientIdentity>,
    state: &ApiState,
) -> Result<(), FrontError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let FoundHijack {
        hijack,
        head_len,
        target: original_target,
        origin,
    } = found;
    // The cross-site rule of the routes: a browser's plain `POST .../attach` from another
    // page reaches the gate, not the routes' guard.
    if let Some(origin) = &origin {
        if let Err(e) = cross_site::check_origin(state.cors_header.as_deref(), origin) {
            return refuse(&mut client, e).await;
        }
    }
    // The authorization guard, as for the routes: before any engine is asked.
    if let Err(e) = crate::authz::guard::check_hijack(state, identity, &hijack).await {
        return refuse(&mut client, e).await;
    }
    let (node, path) = match target(&hijack, &original_target, state).await {
        Ok(t) => t,
        Err(e) => return refuse(&mut client, e).await,
    };
    let limit = state.timeouts.call;
    let mut engine = match connect(&node, limit).await {
        Ok(e) => e,
        Err(e) => {
            let e = ApiError::EngineDown(EngineError::Connect {
                addr: node.to_string(),
                reason: e.to_string(),
            });
            return refuse(&mut client, e).await;
        }
    };
    // The request line with the engine's path, then the client's headers and any bytes
    // after them, exactly as they came.
    let line_end = buf[..head_len]
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(0);
    let mut request = Vec::with_capacity(buf.len() + path.len());
    // Every hijack route is a POST (`classify` takes no other method).
    request.extend_from_slice(format!("POST {path} HTTP/1.1").as_bytes());
    request.extend_from_slice(&buf[line_end..]);
    match actix_rt::time::timeout(limit, engine.write_all(&request)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return refuse(&mut client, io_failure(&node, e)).await,
        Err(_) => return refuse(&mut client, timed_out(&node, &path, limit)).await,
    }
    let (up, down) = relay(client, engine, &node, &path, limit).await;
    tracing::debug!(node = %node, ?hijack, up, down, "hijack ended");
    Ok(())
}

fn io_failure(node: &EngineAddr, e: io::Error) -> ApiError {
    ApiError::EngineDown(EngineError::Io {
        addr: node.to_string(),
        reason: e.to_string(),
    })
}

fn timed_out(node: &EngineAddr, path: &str, limit: Duration) -> ApiError {
    ApiError::EngineDown(EngineError::Timeout {
        addr: node.to_string(),
        path: path.split('?').next().unwrap_or("").to_string(),
        secs: limit.as_secs_f64(),
    })
}

/// After the request went to the engine: passes the engine's answer head on (or a
/// Docker-shaped error when it does not come within `limit`), then copies bytes both ways.
/// Client bytes flow up from the start, since the request body may still be on its way.
async fn relay<C, E>(
    client: C,
    engine: E,
    node: &EngineAddr,
    path: &str,
    limit: Duration,
) -> (u64, u64)
where
    C: AsyncRead + AsyncWrite + Unpin,
    E: AsyncRead + AsyncWrite + Unpin,
{
    let (client_in, mut client_out) = tokio::io::split(client);
    let (mut engine_in, engine_out) = tokio::io::split(engine);
    let down = async move {
        let mut answer = BytesMut::with_capacity(4096);
        let (status, head_len) =
            match actix_rt::time::timeout(limit, read_answer_head(&mut engine_in, &mut answer))
                .await
            {
                Ok(Ok(head)) => head,
                Ok(Err(e)) => {
                    let _ = refuse(&mut client_out, io_failure(node, e)).await;
                    return Err(());
                }
                Err(_) => {
                    let _ = refuse(&mut client_out, timed_out(node, path, limit)).await;
                    return Err(());
                }
            };
        tracing::debug!(node = %node, status, "hijack answered");
        let rest = answer.split_off(head_len);
        client_out.write_all(&answer).await.map_err(|_| ())?;
        client_out.flush().await.map_err(|_| ())?;
        let gap_until = (status == 101).then(|| tokio::time::Instant::now() + HEAD_GAP);
        Ok(Down {
            engine_in,
            client_out,
            rest,
            gap_until,
        })
    };
    copy_both_ways(client_in, engine_out, down).await
}

/// The output half of a hijack once the answer head was passed on.
struct Down<EI, CO> {
    engine_in: EI,
    client_out: CO,
    /// Output read with the head, not passed on yet.
    rest: BytesMut,
    /// The first output waits until then (see `HEAD_GAP`); `None`: no wait.
    gap_until: Option<tokio::time::Instant>,
}

impl<EI: AsyncRead + Unpin, CO: AsyncWrite + Unpin> Down<EI, CO> {
    /// Copies the engine's output to the client until the engine closes; answers the bytes
    /// copied.
    async fn run(&mut self) -> u64 {
        let mut first = std::mem::take(&mut self.rest);
        if first.is_empty() {
            first.reserve(8192);
            if !matches!(self.engine_in.read_buf(&mut first).await, Ok(n) if n > 0) {
                return 0;
            }
        }
        if let Some(until) = self.gap_until {
            tokio::time::sleep_until(until).await;
        }
        if self.client_out.write_all(&first).await.is_err() {
            return 0;
        }
        let copied = tokio::io::copy(&mut self.engine_in, &mut self.client_out).await;
        first.len() as u64 + copied.unwrap_or(0)
    }
}

/// Copies client → engine from the start, and engine → client once `head` (passing the
/// answer head on) gave the output half. End of the client's input shuts the engine's
/// write side and output keeps flowing; end of the engine's output (or a failed head) ends
/// everything. Answers the bytes copied up and down.
async fn copy_both_ways<CI, EO, EI, CO, H>(
    mut client_in: CI,
    mut engine_out: EO,
    head: H,
) -> (u64, u64)
where
    CI: AsyncRead + Unpin,
    EO: AsyncWrite + Unpin,
    EI: AsyncRead + Unpin,
    CO: AsyncWrite + Unpin,
    H: std::future::Future<Output = Result<Down<EI, CO>, ()>>,
{
    let up = async {
        let n = tokio::io::copy(&mut client_in, &mut engine_out).await;
        // Half-close: the engine sees the end of stdin.
        let _ = engine_out.shutdown().await;
        n
    };
    let down = async {
        let mut down = head.await?;
        let n = down.run().await;
        let _ = down.client_out.shutdown().await;
        Ok::<u64, ()>(n)
    };
    tokio::pin!(up, down);
    let mut sent = None;
    loop {
        tokio::select! {
            r = &mut up, if sent.is_none() => match r {
                Ok(n) => sent = Some(n),
                // The client's connection broke: nobody reads the output any more.
                Err(_) => return (0, 0),
            },
            n = &mut down => return (sent.unwrap_or(0), n.unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay with no answer head to pass on.
    async fn both(client: tokio::io::DuplexStream, engine: tokio::io::DuplexStream) -> (u64, u64) {
        let (ci, co) = tokio::io::split(client);
        let (ei, eo) = tokio::io::split(engine);
        let down = Down {
            engine_in: ei,
            client_out: co,
            rest: BytesMut::new(),
            gap_until: None,
        };
        copy_both_ways(ci, eo, async move { Ok(down) }).await
    }

    #[actix_rt::test]
    async fn the_request_body_flows_before_the_answer_head() {
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (engine, mut engine_peer) = tokio::io::duplex(1024);
        let node = EngineAddr::Unix("/x".into());
        let relay = actix_rt::spawn(async move {
            relay(
                client,
                engine,
                &node,
                "/exec/x/start",
                Duration::from_secs(5),
            )
            .await
        });
        // The body comes after the head was sent; the engine answers only once it has it.
        client_peer.write_all(b"{}").await.unwrap();
        let mut body = [0u8; 2];
        engine_peer.read_exact(&mut body).await.unwrap();
        engine_peer
            .write_all(b"HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\nout")
            .await
            .unwrap();
        drop(engine_peer);
        let mut out = Vec::new();
        client_peer.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\nout");
        relay.await.unwrap();
    }

    #[actix_rt::test]
    async fn output_read_with_an_upgrade_head_reaches_the_client_after_it_not_with_it() {
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (engine, mut engine_peer) = tokio::io::duplex(1024);
        let node = EngineAddr::Unix("/x".into());
        let relay = actix_rt::spawn(async move {
            relay(
                client,
                engine,
                &node,
                "/containers/x/attach",
                Duration::from_secs(5),
            )
            .await
        });
        let head = b"HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\n";
        let mut both = head.to_vec();
        both.extend_from_slice(b"logs");
        engine_peer.write_all(&both).await.unwrap();
        drop(engine_peer);
        // The client's first read holds the head only, as a buffered HTTP reader must see it.
        let mut first = [0u8; 256];
        let n = client_peer.read(&mut first).await.unwrap();
        assert_eq!(&first[..n], head);
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"logs");
        relay.await.unwrap();
    }

    #[actix_rt::test]
    async fn stdin_end_reaches_the_engine_and_output_still_flows() {
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (engine, mut engine_peer) = tokio::io::duplex(1024);
        let relay = actix_rt::spawn(both(client, engine));
        client_peer.write_all(b"data").await.unwrap();
        client_peer.shutdown().await.unwrap();
        // The engine reads stdin to its end...
        let mut stdin = Vec::new();
        engine_peer.read_to_end(&mut stdin).await.unwrap();
        assert_eq!(stdin, b"data");
        // ...and answers after it.
        engine_peer.write_all(b"DATA").await.unwrap();
        drop(engine_peer);
        let mut out = Vec::new();
        client_peer.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"DATA");
        assert_eq!(relay.await.unwrap(), (4, 4));
    }

    #[actix_rt::test]
    async fn the_engine_closing_ends_the_relay_even_if_the_client_stays() {
        let (client, mut client_peer) = tokio::io::duplex(1024);
        let (engine, engine_peer) = tokio::io::duplex(1024);
        let relay = actix_rt::spawn(both(client, engine));
        drop(engine_peer);
        let mut out = Vec::new();
        client_peer.read_to_end(&mut out).await.unwrap();
        assert!(out.is_empty());
        relay.await.unwrap();
    }
}
