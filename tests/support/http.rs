//! A small blocking HTTP/1.0 client for load and fault tests: one connection per request,
//! the answer read to its end, every step under a timeout. No client crate: the tests
//! need status, body and latency of plain requests, measured without a pool or runtime
//! between them and the server.
//!
//! HTTP/1.0 so every answer ends with the connection (no keep-alive to manage); a
//! `Transfer-Encoding: chunked` answer (a proxied engine answer may keep it) is decoded.
//!
//! [`send_then_read`] splits a request in two so a test can put many requests in
//! flight on few threads: send all of them, then read each answer.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// An answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A request sent, its answer not read yet.
pub struct Pending {
    stream: TcpStream,
}

fn addr_of(host: &str) -> io::Result<SocketAddr> {
    let host = host.strip_prefix("tcp://").unwrap_or(host);
    host.to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("no address: {host}")))
}

/// Connects to `host` (`ip:port` or `tcp://ip:port`) and sends one request; JSON body when
/// `body` is given.
pub fn send(
    host: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<Pending> {
    let stream = TcpStream::connect_timeout(&addr_of(host)?, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: shoal\r\n");
    if let Some(body) = body {
        head.push_str("Content-Type: application/json\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    } else if !matches!(method, "GET" | "HEAD") {
        // An HTTP/1.0 request without a length has a body that runs to the end.
        head.push_str("Content-Length: 0\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body.unwrap_or_default());
    let mut s = &stream;
    s.write_all(&out)?;
    Ok(Pending { stream })
}

impl Pending {
    /// Reads the answer to its end (the read timeout applies to each read).
    pub fn read(self) -> io::Result<Answer> {
        let mut raw = Vec::new();
        let mut s = &self.stream;
        s.read_to_end(&mut raw)?;
        parse(&raw)
    }
}

/// One request, its whole answer.
pub fn request(
    host: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<Answer> {
    send(host, method, path, body, timeout)?.read()
}

/// `GET path`.
pub fn get(host: &str, path: &str, timeout: Duration) -> io::Result<Answer> {
    request(host, "GET", path, None, timeout)
}

/// Sends every request first, then reads every answer, in order: all of them are in
/// flight at once on one thread. An answer that could not be read is its error.
pub fn send_then_read(
    host: &str,
    requests: &[(String, String, Option<Vec<u8>>)],
    timeout: Duration,
) -> Vec<io::Result<Answer>> {
    let pending: Vec<io::Result<Pending>> = requests
        .iter()
        .map(|(method, path, body)| send(host, method, path, body.as_deref(), timeout))
        .collect();
    pending.into_iter().map(|p| p?.read()).collect()
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// Status line, headers, body (close-delimited, `Content-Length` or chunked).
fn parse(raw: &[u8]) -> io::Result<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Response::new(&mut headers);
    let header_len = match head.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(bad("the answer ended inside its head")),
        Err(e) => return Err(bad(&format!("not an HTTP answer: {e}"))),
    };
    let status = head.code.ok_or_else(|| bad("no status"))?;
    let header = |name: &str| {
        head.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    let rest = &raw[header_len..];
    let body = if header("transfer-encoding").is_some_and(|te| te.ends_with("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        if rest.len() < len {
            return Err(bad("the answer ended inside its body"));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

fn dechunk(mut raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("a chunk size line without its end"))?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("a bad chunk size"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if raw.len() < size + 2 {
            return Err(bad("the answer ended inside a chunk"));
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
