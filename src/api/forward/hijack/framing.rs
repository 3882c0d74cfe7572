//! The one framing of a request: where its head ends, how its body is delimited, and which
//! requests are refused because their framing is ambiguous (RFC 9112 §6.3).
//!
//! # Why the gate must never disagree with actix-http
//!
//! The gate reads every request before actix-http does, to find hijacks (see `super`). If
//! the two ever framed a request differently, bytes that actix-http takes as a body (or
//! refuses) could be taken by the gate as the next request: a `POST /containers/x/attach`
//! hidden in the body of a request carrying both `Content-Length` and
//! `Transfer-Encoding` reached the engine while actix-http answered 400. So the gate frames
//! each request here, and refuses (400 and close, before either side acts on it) every
//! request whose framing is not plain. What it lets through is a strict subset of what
//! actix-http 3 accepts, framed the same way byte for byte; `props` checks that against
//! actix-http's own decoder and httparse on generated hostile requests. The rules, with
//! actix-http's own in brackets where it is looser:
//!
//! - the head is parsed by httparse with the default config and 96 headers, as actix-http
//!   does; its method and target must be what `http::Method` / `http::Uri` accept (actix-http
//!   answers 400 otherwise); a head longer than `HEAD_LIMIT` is refused with 431 (actix-http:
//!   128 KiB);
//! - every line ends in CRLF: no bare LF (accepted by httparse), no bare CR, no obsolete
//!   line folding;
//! - one `Host` in HTTP/1.1, at most one in HTTP/1.0;
//! - `Content-Length`: at most one, `1*DIGIT` that fits in 64 bits;
//! - `Transfer-Encoding`: HTTP/1.1 only, one header, exactly `chunked`, never with a
//!   `Content-Length`;
//! - an HTTP/1.0 `POST` has a `Content-Length`;
//! - chunked bodies: `1*HEXDIG [BWS ";" ext] CRLF` size lines (actix-http also takes
//!   whitespace before the CRLF and non-ASCII extensions), data, CRLF; trailer fields
//!   `token ":" value CRLF` (actix-http takes any bytes up to a CR);
//! - `Upgrade: websocket` (without chunked) and a `CONNECT` without a length read to the end
//!   of the connection, as actix-http reads them: nothing after them is a request.

use actix_web::http::{Method, Uri};
use thiserror::Error;

/// Longest request head framed; a longer one is refused with 431. Below actix-http's own
/// 128 KiB, so the gate always refuses first.
pub const HEAD_LIMIT: usize = 64 * 1024;
/// Header fields parsed at most: actix-http's own number (it answers 400 past it).
pub const MAX_HEADERS: usize = 96;
/// Longest chunk-size line (with extensions).
pub const CHUNK_LINE_LIMIT: usize = 4 * 1024;
/// Largest trailer section of a chunked body.
pub const TRAILER_LIMIT: usize = 16 * 1024;

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body: the next request starts right after the head.
    None,
    /// `Content-Length` bytes (never zero: zero is `None`).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything to the end of the connection (`Upgrade: websocket`, `CONNECT`).
    UntilClose,
}

/// A request head whose framing is plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head<'a> {
    /// Length of the head, its final empty line included.
    pub len: usize,
    pub method: &'a str,
    /// The request target as the client wrote it.
    pub target: &'a str,
    pub body: Body,
    /// `Connection: upgrade` or an `Upgrade` header.
    pub upgrade: bool,
    /// No request may follow this one (`Connection: close`, or HTTP/1.0 without
    /// keep-alive): RFC 9112 §9.6, the server stops reading after it.
    pub close: bool,
    /// The `Origin` header's value: a hijack is served by the gate, not by the routes'
    /// cross-site guard, so the gate applies the same rule to it.
    pub origin: Option<&'a [u8]>,
}

/// Why a request is refused. Each is answered with its `status` and the connection closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("request head larger than {HEAD_LIMIT} bytes")]
    HeadTooLarge,
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
    #[error("invalid request method")]
    Method,
    #[error("invalid request target")]
    Target,
    #[error("bare CR or LF in the request head: lines end in CRLF")]
    BareLineEnd,
    #[error("obsolete line folding in the request head")]
    ObsFold,
    #[error("missing Host header")]
    NoHost,
    #[error("more than one Host header")]
    RepeatedHost,
    #[error("more than one Content-Length")]
    RepeatedLength,
    #[error("invalid Content-Length")]
    BadLength,
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndEncoding,
    #[error("Transfer-Encoding other than a single final chunked")]
    BadEncoding,
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    EncodingInHttp10,
    #[error("HTTP/1.0 POST without Content-Length")]
    Http10PostWithoutLength,
    #[error("invalid chunk size line")]
    ChunkSize,
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    #[error("invalid trailer field")]
    Trailer,
    #[error("trailer section larger than {TRAILER_LIMIT} bytes")]
    TrailerTooLarge,
}

impl Refusal {
    /// The status the client is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::HeadTooLarge | Refusal::TooManyHeaders => 431,
            _ => 400,
        }
    }
}

/// Frames the request head at the start of `buf`: `Ok(None)` when more bytes are needed.
pub fn head(buf: &[u8]) -> Result<Option<Head<'_>>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > HEAD_LIMIT => {
            return Err(Refusal::HeadTooLarge)
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= HEAD_LIMIT => {
            return Err(Refusal::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => {
            // A line already seen is judged now: a bad one is refused without waiting
            // for the rest of the head.
            return line_ends(buf).map(|()| None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooManyHeaders),
        Err(e) => {
            // Name the line ending or folding when that is what httparse tripped on.
            line_ends(buf)?;
            return Err(Refusal::Malformed(e));
        }
    };
    line_ends(&buf[..len])?;
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Refusal::Malformed(httparse::Error::Token));
    };
    let parsed_method = Method::from_bytes(method.as_bytes()).map_err(|_| Refusal::Method)?;
    Uri::try_from(target).map_err(|_| Refusal::Target)?;
    let http11 = version == 1;
    let fields = Fields::of(req.headers, http11)?;
    let body = if fields.chunked {
        Body::Chunked
    } else if fields.websocket {
        Body::UntilClose
    } else {
        match fields.length {
            Some(0) | None if parsed_method == Method::CONNECT => Body::UntilClose,
            Some(0) | None => Body::None,
            Some(n) => Body::Length(n),
        }
    };
    if !http11 && parsed_method == Method::POST && fields.length.is_none() {
        return Err(Refusal::Http10PostWithoutLength);
    }
    Ok(Some(Head {
        len,
        method,
        target,
        body,
        upgrade: fields.upgrade,
        close: fields.close || (!http11 && !fields.keep_alive),
        origin: req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("origin"))
            .map(|h| h.value),
    }))
}

/// What the framing headers of a head say.
#[derive(Default)]
struct Fields {
    length: Option<u64>,
    chunked: bool,
    websocket: bool,
    upgrade: bool,
    close: bool,
    keep_alive: bool,
}

impl Fields {
    fn of(headers: &[httparse::Header<'_>], http11: bool) -> Result<Fields, Refusal> {
        let mut f = Fields::default();
        let (mut hosts, mut encodings) = (0, 0);
        for h in headers {
            let name = h.name;
            if name.eq_ignore_ascii_case("host") {
                hosts += 1;
            } else if name.eq_ignore_ascii_case("content-length") {
                if f.length.is_some() {
                    return Err(Refusal::RepeatedLength);
                }
                f.length = Some(content_length(h.value)?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                encodings += 1;
                if !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Err(Refusal::BadEncoding);
                }
                f.chunked = true;
            } else if name.eq_ignore_ascii_case("connection") {
                for option in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    f.close |= option.eq_ignore_ascii_case(b"close");
                    f.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                    f.upgrade |= option.eq_ignore_ascii_case(b"upgrade");
                }
            } else if name.eq_ignore_ascii_case("upgrade") {
                f.upgrade = true;
                f.websocket |= h.value.trim_ascii().eq_ignore_ascii_case(b"websocket");
            }
        }
        if hosts > 1 {
            return Err(Refusal::RepeatedHost);
        }
        if hosts == 0 && http11 {
            return Err(Refusal::NoHost);
        }
        if encodings > 1 {
            return Err(Refusal::BadEncoding);
        }
        if f.chunked && !http11 {
            return Err(Refusal::EncodingInHttp10);
        }
        if f.chunked && f.length.is_some() {
            return Err(Refusal::LengthAndEncoding);
        }
        Ok(f)
    }
}

/// A `Content-Length` value: `1*DIGIT`, at most 64 bits.
fn content_length(value: &[u8]) -> Result<u64, Refusal> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Refusal::BadLength);
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(Refusal::BadLength)
}

/// Every CR is followed by LF and every LF preceded by CR; no line starts with whitespace
/// (obsolete folding).
fn line_ends(head: &[u8]) -> Result<(), Refusal> {
    for (i, b) in head.iter().enumerate() {
        match b {
            b'\n' if i == 0 || head[i - 1] != b'\r' => return Err(Refusal::BareLineEnd),
            b'\r' if head.get(i + 1).is_some_and(|n| *n != b'\n') => {
                return Err(Refusal::BareLineEnd)
            }
            b'\n' if matches!(head.get(i + 1), Some(b' ' | b'\t')) => return Err(Refusal::ObsFold),
            _ => {}
        }
    }
    Ok(())
}

/// Finds the CRLF-ended line at the start of `buf`: its length without the CRLF, or `None`
/// when more bytes are needed. A bare CR or LF is refused with `bad`, a line longer than
/// `limit` with `too_long`.
fn crlf_line(
    buf: &[u8],
    limit: usize,
    bad: Refusal,
    too_long: Refusal,
) -> Result<Option<usize>, Refusal> {
    match buf.iter().position(|b| *b == b'\n' || *b == b'\r') {
        Some(end) if end > limit => Err(too_long),
        Some(end) => match buf.get(end..end + 2) {
            Some(b"\r\n") => Ok(Some(end)),
            None if buf[end] == b'\r' => Ok(None),
            _ => Err(bad),
        },
        None if buf.len() > limit => Err(too_long),
        None => Ok(None),
    }
}

/// A chunk-size line at the start of `buf`: `(size, bytes the line takes)`, or `None` when
/// more bytes are needed.
pub fn chunk_size(buf: &[u8]) -> Result<Option<(u64, usize)>, Refusal> {
    let Some(end) = crlf_line(
        buf,
        CHUNK_LINE_LIMIT,
        Refusal::ChunkSize,
        Refusal::ChunkSize,
    )?
    else {
        return Ok(None);
    };
    let line = &buf[..end];
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(Refusal::ChunkSize);
    }
    let mut size: u64 = 0;
    for b in &line[..digits] {
        let d = u64::from((*b as char).to_digit(16).unwrap_or(0));
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(d))
            .ok_or(Refusal::ChunkSize)?;
    }
    let rest = &line[digits..];
    if !rest.is_empty() {
        // Extensions: whitespace, then `;`, then visible ASCII, spaces and tabs.
        let ext = rest.trim_ascii_start();
        let valid = ext.first() == Some(&b';')
            && ext.iter().all(|b| *b == b'\t' || (b' '..=b'~').contains(b));
        if !valid {
            return Err(Refusal::ChunkSize);
        }
    }
    Ok(Some((size, end + 2)))
}

/// A trailer line at the start of `buf` (the empty line ends the trailer section):
/// `(bytes the line takes, whether it was the empty line)`, or `None` when more bytes are
/// needed.
pub fn trailer_line(buf: &[u8]) -> Result<Option<(usize, bool)>, Refusal> {
    let Some(end) = crlf_line(
        buf,
        TRAILER_LIMIT,
        Refusal::Trailer,
        Refusal::TrailerTooLarge,
    )?
    else {
        return Ok(None);
    };
    let line = &buf[..end];
    if line.is_empty() {
        return Ok(Some((2, true)));
    }
    let name = line.iter().take_while(|b| is_tchar(**b)).count();
    let valid = name > 0
        && line.get(name) == Some(&b':')
        && line[name + 1..]
            .iter()
            .all(|b| *b == b'\t' || (b' '..=b'~').contains(b) || *b >= 0x80);
    if !valid {
        return Err(Refusal::Trailer);
    }
    Ok(Some((end + 2, false)))
}

/// A `tchar` of RFC 9110 §5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(raw: &str) -> Result<Option<Body>, Refusal> {
        head(raw.as_bytes()).map(|h| h.map(|h| h.body))
    }

    #[test]
    fn plain_requests_are_framed() {
        assert_eq!(
            framed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Ok(Some(Body::None))
        );
        assert_eq!(
            framed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n"),
            Ok(Some(Body::Length(12)))
        );
        assert_eq!(
            framed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
            Ok(Some(Body::None))
        );
        assert_eq!(
            framed("PUT / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n"),
            Ok(Some(Body::Chunked))
        );
        assert_eq!(
            framed("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 3\r\n\r\n"),
            Ok(Some(Body::UntilClose))
        );
        assert_eq!(framed("GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let cases = [
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::LengthAndEncoding),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", Refusal::LengthAndEncoding),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Refusal::RepeatedLength),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", Refusal::BadLength),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", Refusal::BadLength),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n", Refusal::BadLength),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", Refusal::BadLength),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Refusal::BadEncoding),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", Refusal::BadEncoding),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", Refusal::BadEncoding),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Refusal::BadEncoding),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", Refusal::EncodingInHttp10),
            ("POST / HTTP/1.0\r\n\r\n", Refusal::Http10PostWithoutLength),
            ("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", Refusal::ObsFold),
            ("GET / HTTP/1.1\nHost: x\n\n", Refusal::BareLineEnd),
            ("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", Refusal::BareLineEnd),
            ("GET / HTTP/1.1\r\n\r\n", Refusal::NoHost),
            ("GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", Refusal::RepeatedHost),
            ("GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n", Refusal::Malformed(httparse::Error::Token)),
        ];
        for (raw, want) in cases {
            assert_eq!(head(raw.as_bytes()).map(|_| ()), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn a_bad_line_is_refused_before_the_head_ends() {
        assert_eq!(
            head(b"GET / HTTP/1.1\nHost: x").map(|_| ()),
            Err(Refusal::BareLineEnd)
        );
        let mut long = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        long.resize(HEAD_LIMIT, b'a');
        assert_eq!(head(&long).map(|_| ()), Err(Refusal::HeadTooLarge));
        assert_eq!(Refusal::HeadTooLarge.status(), 431);
    }

    #[test]
    fn chunk_lines() {
        assert_eq!(chunk_size(b"1a\r\n"), Ok(Some((26, 4))));
        assert_eq!(chunk_size(b"5 ;a=b\r\n"), Ok(Some((5, 8))));
        assert_eq!(chunk_size(b"5\r"), Ok(None));
        assert_eq!(chunk_size(b"5"), Ok(None));
        for bad in [
            &b"\r\n"[..],
            b" 5\r\n",
            b"5 \r\n",
            b"+5\r\n",
            b"5\n",
            b"5\rx",
            b"5;\x01\r\n",
            b"5;\xff\r\n",
            b"10000000000000000\r\n",
        ] {
            assert_eq!(chunk_size(bad), Err(Refusal::ChunkSize), "{bad:?}");
        }
        assert_eq!(trailer_line(b"\r\n"), Ok(Some((2, true))));
        assert_eq!(trailer_line(b"X-a: b\r\n"), Ok(Some((8, false))));
        assert_eq!(trailer_line(b"X a\r\n"), Err(Refusal::Trailer));
        assert_eq!(trailer_line(b"X: a\nb\r\n"), Err(Refusal::Trailer));
    }
}
