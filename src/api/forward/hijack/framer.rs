//! Where each HTTP/1 request of a connection ends, read from the client's bytes before
//! actix-http sees them, so that a hijack sent as a later request on a keep-alive
//! connection is found at its own head.
//!
//! Each head and each chunked body is framed by `framing`, the one framing both the bytes
//! given to actix-http and the bytes handed to the relay follow. A request `framing`
//! refuses stops the connection there: what came before it is answered, it is not.

use super::framing::{self, Body, Refusal, TRAILER_LIMIT};
use super::{classify, Hijack};

/// A hijack head found at the start of the bytes not yet cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundHijack {
    pub hijack: Hijack,
    /// Length of its head; what follows is the start of the raw stream (or a small body).
    pub head_len: usize,
    /// The request target as the client wrote it.
    pub target: String,
    /// Its `Origin` header, when it has one (checked by the relay as the routes check it).
    pub origin: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Head,
    Body(u64),
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data: how many of its two bytes are still due.
    ChunkEnd(u8),
    /// Trailer fields; how many bytes of them were read.
    Trailer(usize),
    /// The rest of the connection is the body of the last request (`Upgrade: websocket`).
    UntilClose,
    /// The last request said `Connection: close`: nothing after it is read.
    Closed,
}

/// Follows the requests of one connection.
#[derive(Debug)]
pub struct RequestFramer {
    state: State,
    /// The request being framed asked to close the connection after it.
    closing: bool,
}

/// What `clear` decided about the front of a buffer.
#[derive(Debug, PartialEq)]
pub enum Cleared {
    /// This many bytes belong to ordinary requests: give them to actix-http. Zero means more
    /// bytes are needed to decide.
    Bytes(usize),
    /// This many bytes of ordinary requests first, then the connection stops (`Stop`).
    Then(usize, Stop),
}

/// Why the requests of a connection stop.
#[derive(Debug, PartialEq)]
pub enum Stop {
    /// A hijack head: the relay serves it.
    Hijack(FoundHijack),
    /// A request head refused: the client is answered with the refusal, then closed.
    Refused(Refusal),
    /// A request's body refused after its head went to actix-http (which answers that
    /// request as it can): the connection is closed.
    BodyRefused(Refusal),
    /// The last request asked to close the connection: nothing after it is read.
    Closed,
}

impl Default for RequestFramer {
    fn default() -> Self {
        RequestFramer {
            state: State::Head,
            closing: false,
        }
    }
}

impl RequestFramer {
    /// Judges `buf`, the client's bytes from the first not yet cleared.
    pub fn clear(&mut self, buf: &[u8]) -> Cleared {
        let mut off = 0;
        loop {
            let rest = &buf[off..];
            match self.state {
                State::UntilClose => return Cleared::Bytes(buf.len()),
                State::Closed => return Cleared::Then(off, Stop::Closed),
                State::Head => {
                    if rest.is_empty() {
                        return Cleared::Bytes(off);
                    }
                    let head = match framing::head(rest) {
                        Ok(None) => return Cleared::Bytes(off),
                        Ok(Some(head)) => head,
                        Err(refusal) => return Cleared::Then(off, Stop::Refused(refusal)),
                    };
                    if let Some(hijack) = classify(head.method, head.target, head.upgrade) {
                        let found = FoundHijack {
                            hijack,
                            head_len: head.len,
                            target: head.target.to_string(),
                            origin: head.origin.map(|o| String::from_utf8_lossy(o).into_owned()),
                        };
                        return Cleared::Then(off, Stop::Hijack(found));
                    }
                    self.closing = head.close;
                    self.state = match head.body {
                        Body::None => self.after_request(),
                        Body::Length(n) => State::Body(n),
                        Body::Chunked => State::ChunkSize,
                        Body::UntilClose => State::UntilClose,
                    };
                    off += head.len;
                }
                State::Body(n) | State::ChunkData(n) => {
                    let take = (rest.len() as u64).min(n);
                    off += take as usize;
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => self.after_request(),
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkEnd(2),
                        (_, l) => State::ChunkData(l),
                    };
                    if left > 0 {
                        return Cleared::Bytes(off);
                    }
                }
                State::ChunkEnd(due) => {
                    let Some(b) = rest.first() else {
                        return Cleared::Bytes(off);
                    };
                    let want = if due == 2 { b'\r' } else { b'\n' };
                    if *b != want {
                        return Cleared::Then(off, Stop::BodyRefused(Refusal::ChunkEnd));
                    }
                    off += 1;
                    self.state = if due == 2 {
                        State::ChunkEnd(1)
                    } else {
                        State::ChunkSize
                    };
                }
                State::ChunkSize => match framing::chunk_size(rest) {
                    Ok(None) => return Cleared::Bytes(off),
                    Ok(Some((0, line))) => {
                        off += line;
                        self.state = State::Trailer(0);
                    }
                    Ok(Some((size, line))) => {
                        off += line;
                        self.state = State::ChunkData(size);
                    }
                    Err(r) => return Cleared::Then(off, Stop::BodyRefused(r)),
                },
                State::Trailer(read) => match framing::trailer_line(rest) {
                    Ok(None) => return Cleared::Bytes(off),
                    Ok(Some((line, _))) if read + line > TRAILER_LIMIT => {
                        return Cleared::Then(off, Stop::BodyRefused(Refusal::TrailerTooLarge))
                    }
                    Ok(Some((line, last))) => {
                        off += line;
                        self.state = if last {
                            self.after_request()
                        } else {
                            State::Trailer(read + line)
                        };
                    }
                    Err(r) => return Cleared::Then(off, Stop::BodyRefused(r)),
                },
            }
        }
    }

    /// Whether the next byte starts a request (for tests that follow request boundaries).
    #[cfg(test)]
    pub fn between_requests(&self) -> bool {
        matches!(self.state, State::Head | State::Closed)
    }

    /// Where the connection goes once a request is whole.
    fn after_request(&self) -> State {
        if self.closing {
            State::Closed
        } else {
            State::Head
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXEC: &[u8] = b"POST /v1.41/exec/abc/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}";
    const ATTACH: &[u8] =
        b"POST /containers/web/attach?stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";

    fn hijack_at(c: Cleared) -> Option<(usize, FoundHijack)> {
        match c {
            Cleared::Then(n, Stop::Hijack(found)) => Some((n, found)),
            _ => None,
        }
    }

    #[test]
    fn a_hijack_after_ordinary_requests_is_found_at_its_head() {
        let first = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
        let second =
            b"POST /containers/web/exec HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde";
        let third = b"PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX: y\r\n\r\n";
        let mut all = Vec::new();
        all.extend_from_slice(first);
        all.extend_from_slice(second);
        all.extend_from_slice(third);
        let ordinary = all.len();
        all.extend_from_slice(EXEC);
        all.extend_from_slice(b"stdin bytes");
        let mut f = RequestFramer::default();
        let (n, found) = hijack_at(f.clear(&all)).expect("a hijack");
        assert_eq!(n, ordinary);
        assert_eq!(found.hijack, Hijack::ExecStart { id: "abc".into() });
        assert_eq!(&all[n + found.head_len..], b"{}stdin bytes");
        assert_eq!(found.target, "/v1.41/exec/abc/start");
    }

    #[test]
    fn bytes_arriving_in_pieces() {
        let req = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody";
        let mut f = RequestFramer::default();
        assert_eq!(f.clear(&req[..10]), Cleared::Bytes(0), "partial head waits");
        let head = req.len() - 4;
        assert_eq!(f.clear(&req[..head + 2]), Cleared::Bytes(head + 2));
        assert_eq!(f.clear(b"dy"), Cleared::Bytes(2));
        assert!(hijack_at(f.clear(EXEC)).is_some_and(|(n, _)| n == 0));
    }

    #[test]
    fn chunked_bodies_split_anywhere() {
        // Fed a byte at a time, as a gate would: what is cleared leaves the buffer.
        let mut req = b"PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        req.extend_from_slice(b"5;ext=1\r\nhello\r\n0\r\nX: y\r\n\r\n");
        let mut f = RequestFramer::default();
        let mut pending: Vec<u8> = Vec::new();
        let mut cleared = 0;
        for b in &req {
            pending.push(*b);
            match f.clear(&pending) {
                Cleared::Bytes(n) => {
                    pending.drain(..n);
                    cleared += n;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!((cleared, pending.len()), (req.len(), 0));
        assert_eq!(f.state, State::Head);
        assert!(hijack_at(f.clear(EXEC)).is_some());
    }

    /// The attack of issue 10: a body actix-http refuses to frame (it answers 400) held a
    /// hijack the gate found and served.
    #[test]
    fn a_hijack_hidden_behind_ambiguous_framing_is_never_found() {
        let smuggling: [&[u8]; 4] = [
            b"POST /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 80\r\n\r\n",
            b"POST /_ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            b"POST /_ping HTTP/1.1\r\nHost: x\r\nX: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ];
        for first in smuggling {
            let mut all = first.to_vec();
            all.extend_from_slice(ATTACH);
            let mut f = RequestFramer::default();
            match f.clear(&all) {
                Cleared::Then(0, Stop::Refused(_)) => {}
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(first)),
            }
        }
    }

    #[test]
    fn a_bad_chunk_stops_the_connection_after_the_head() {
        let req = b"PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX";
        let head = req.len() - 7;
        let mut f = RequestFramer::default();
        assert_eq!(
            f.clear(req),
            Cleared::Then(head + 6, Stop::BodyRefused(Refusal::ChunkEnd))
        );
    }

    #[test]
    fn nothing_is_read_after_connection_close() {
        let mut all =
            b"POST /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1\r\n\r\nz"
                .to_vec();
        let first = all.len();
        all.extend_from_slice(ATTACH);
        let mut f = RequestFramer::default();
        assert_eq!(f.clear(&all), Cleared::Then(first, Stop::Closed));
    }

    #[test]
    fn a_websocket_upgrade_reads_to_the_end() {
        let mut all =
            b"GET /containers/web/attach/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec();
        all.extend_from_slice(ATTACH);
        let mut f = RequestFramer::default();
        assert_eq!(f.clear(&all), Cleared::Bytes(all.len()));
    }
}
