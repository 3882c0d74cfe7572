//! Where each HTTP/1 request of a connection ends, read from the client's bytes before
//! actix-http sees them, so that a hijack sent as a later request on a keep-alive
//! connection is found at its own head.
//!
//! Request bodies are framed as HTTP/1.1 frames them: `Content-Length`, or chunked
//! (chunk sizes and trailer followed to the final empty line), or nothing. Anything the
//! framer cannot parse is passed through unjudged: actix-http answers it.

use super::{asks_upgrade, classify, Hijack};

/// Largest request head looked at; a larger one is passed through (actix-http refuses it).
const HEAD_LIMIT: usize = 64 * 1024;
/// Headers parsed at most; a head with more is passed through.
const MAX_HEADERS: usize = 96;
/// Longest chunk-size or trailer line accepted.
const LINE_LIMIT: usize = 8 * 1024;

/// A hijack head found at the start of the bytes not yet cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundHijack {
    pub hijack: Hijack,
    /// Length of its head; what follows is the start of the raw stream (or a small body).
    pub head_len: usize,
    /// The request target as the client wrote it.
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    Trailer,
    /// Not judged any more: everything passes.
    Through,
}

/// Follows the requests of one connection.
#[derive(Debug)]
pub struct RequestFramer {
    state: State,
}

/// What `clear` decided about the front of a buffer.
#[derive(Debug, PartialEq)]
pub enum Cleared {
    /// This many bytes belong to ordinary requests: give them to actix-http. Zero means more
    /// bytes are needed to decide.
    Bytes(usize),
    /// This many bytes of ordinary requests first, then a hijack head.
    ThenHijack(usize, FoundHijack),
}

fn line_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

impl Default for RequestFramer {
    fn default() -> Self {
        RequestFramer { state: State::Head }
    }
}

impl RequestFramer {
    /// Judges `buf`, the client's bytes from the first not yet cleared.
    pub fn clear(&mut self, buf: &[u8]) -> Cleared {
        let mut off = 0;
        loop {
            let rest = &buf[off..];
            match self.state {
                State::Through => return Cleared::Bytes(buf.len()),
                State::Head => {
                    if rest.is_empty() {
                        return Cleared::Bytes(off);
                    }
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let mut req = httparse::Request::new(&mut headers);
                    match req.parse(rest) {
                        Ok(httparse::Status::Partial) if rest.len() < HEAD_LIMIT => {
                            return Cleared::Bytes(off)
                        }
                        Ok(httparse::Status::Partial) | Err(_) => self.state = State::Through,
                        Ok(httparse::Status::Complete(head_len)) => {
                            let method = req.method.unwrap_or("");
                            let target = req.path.unwrap_or("");
                            if let Some(hijack) =
                                classify(method, target, asks_upgrade(req.headers))
                            {
                                let found = FoundHijack {
                                    hijack,
                                    head_len,
                                    target: target.to_string(),
                                };
                                return Cleared::ThenHijack(off, found);
                            }
                            self.state = body_of(req.headers);
                            off += head_len;
                        }
                    }
                }
                State::Body(n) | State::ChunkData(n) => {
                    let take = (rest.len() as u64).min(n);
                    off += take as usize;
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkSize,
                        (_, l) => State::ChunkData(l),
                    };
                    if left > 0 {
                        return Cleared::Bytes(off);
                    }
                }
                State::ChunkSize => match line_end(rest) {
                    None if rest.len() < LINE_LIMIT => return Cleared::Bytes(off),
                    None => self.state = State::Through,
                    Some(end) => {
                        let line = String::from_utf8_lossy(&rest[..end]);
                        let hex = line.split(';').next().unwrap_or("").trim();
                        match u64::from_str_radix(hex, 16) {
                            Ok(0) => self.state = State::Trailer,
                            // The chunk and the CRLF after it.
                            Ok(size) => self.state = State::ChunkData(size.saturating_add(2)),
                            Err(_) => self.state = State::Through,
                        }
                        off += end + 2;
                    }
                },
                State::Trailer => match line_end(rest) {
                    None if rest.len() < LINE_LIMIT => return Cleared::Bytes(off),
                    None => self.state = State::Through,
                    Some(end) => {
                        off += end + 2;
                        if end == 0 {
                            self.state = State::Head;
                        }
                    }
                },
            }
        }
    }
}

/// How the body of a request with these headers is framed.
fn body_of(headers: &[httparse::Header<'_>]) -> State {
    let value = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if value("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        return State::ChunkSize;
    }
    match value("content-length").map(|v| v.parse::<u64>()) {
        None | Some(Ok(0)) => State::Head,
        Some(Ok(n)) => State::Body(n),
        Some(Err(_)) => State::Through,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &[u8] = b"POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}";

    #[test]
    fn a_hijack_after_ordinary_requests_is_found_at_its_head() {
        let first = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
        let second = b"POST /containers/web/exec HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde";
        let third =
            b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n";
        let mut all = Vec::new();
        all.extend_from_slice(first);
        all.extend_from_slice(second);
        all.extend_from_slice(third);
        let ordinary = all.len();
        all.extend_from_slice(EXEC);
        all.extend_from_slice(b"stdin bytes");
        let mut f = RequestFramer::default();
        match f.clear(&all) {
            Cleared::ThenHijack(n, found) => {
                assert_eq!(n, ordinary);
                assert_eq!(found.hijack, Hijack::ExecStart { id: "abc".into() });
                assert_eq!(&all[n + found.head_len..], b"{}stdin bytes");
                assert_eq!(found.target, "/v1.41/exec/abc/start");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bytes_arriving_in_pieces() {
        let req = b"POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
        let mut f = RequestFramer::default();
        assert_eq!(f.clear(&req[..10]), Cleared::Bytes(0), "partial head waits");
        let head = req.len() - 4;
        assert_eq!(f.clear(&req[..head + 2]), Cleared::Bytes(head + 2));
        assert_eq!(f.clear(b"dy"), Cleared::Bytes(2));
        assert!(matches!(f.clear(EXEC), Cleared::ThenHijack(0, _)));
    }

    #[test]
    fn chunked_bodies_split_anywhere() {
        // Fed a byte at a time, as a gate would: what is cleared leaves the buffer.
        let mut req = b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(b"5;ext=1\r\nhello\r\n0\r\n\r\n");
        let mut f = RequestFramer::default();
        let mut pending: Vec<u8> = Vec::new();
        let mut cleared = 0;
        for b in &req {
            pending.push(*b);
            if let Cleared::Bytes(n) = f.clear(&pending) {
                pending.drain(..n);
                cleared += n;
            }
        }
        assert_eq!((cleared, pending.len()), (req.len(), 0));
        assert_eq!(f.state, State::Head);
        assert!(matches!(f.clear(EXEC), Cleared::ThenHijack(0, _)));
    }

    #[test]
    fn what_cannot_be_parsed_passes_through() {
        let mut f = RequestFramer::default();
        let garbage = b"\x16\x03\x01garbage\r\n\r\n";
        assert_eq!(f.clear(garbage), Cleared::Bytes(garbage.len()));
        assert_eq!(
            f.clear(EXEC),
            Cleared::Bytes(EXEC.len()),
            "through stays through"
        );
    }
}
