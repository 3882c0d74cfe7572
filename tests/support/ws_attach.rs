//! `GET /containers/NAME/attach/ws` as a WebSocket client sees it: one line sent into the
//! container's stdin, its echo read back. The proxy, TLS and replication tests attach to
//! a `cat` this way (plain, over `wss` with a client certificate, through a replica).

use std::time::Duration;

/// Sends `line` (ending in a newline) over the attach WebSocket at `url` (`ws://` or
/// `wss://HOST/v1.41/containers/NAME/attach/ws?stream=1&stdin=1&stdout=1`) and answers
/// what comes back up to the first newline, or what came within 10 s. `client` dials it
/// (give one with a TLS connector for `wss://`).
pub fn echo_line(client: impl FnOnce() -> awc::Client, url: &str, line: &str) -> String {
    let url = url.to_string();
    let line = line.to_string();
    let got = actix_rt::System::new().block_on(async move {
        use futures_util::{SinkExt, StreamExt};
        let (_, mut ws) = client()
            .ws(url)
            .connect()
            .await
            .expect("the WebSocket opens");
        ws.send(awc::ws::Message::Text(line.into()))
            .await
            .expect("send");
        let mut out = Vec::new();
        while let Ok(Some(Ok(frame))) =
            actix_rt::time::timeout(Duration::from_secs(10), ws.next()).await
        {
            if let awc::ws::Frame::Text(b) | awc::ws::Frame::Binary(b) = frame {
                out.extend_from_slice(&b);
                if out.ends_with(b"\n") {
                    break;
                }
            }
        }
        out
    });
    String::from_utf8_lossy(&got).into_owned()
}
