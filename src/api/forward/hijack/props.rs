//! Property tests of the gate's framing against the two parsers it must agree with:
//! actix-http's own HTTP/1 decoder (`h1::Codec`, what actually serves the requests the
//! gate lets through) and httparse (the head parser both use). Requests are generated from
//! hostile parts: repeated and malformed `Content-Length`, `Content-Length` with
//! `Transfer-Encoding`, odd codings, folding, bare CR and LF, huge values, non-UTF-8 bytes,
//! well- and ill-formed chunked bodies. After each request comes a probe hijack; the gate
//! may find it only where actix-http would read the next request.

use super::framer::{Cleared, RequestFramer, Stop};
use super::framing::{self, Body, Refusal};
use super::Hijack;
use actix_codec::Decoder;
use actix_http::h1::{Codec, Message, MessageType};
use bytes::BytesMut;
use proptest::prelude::*;

const PROBE: &[u8] = b"POST /containers/probe/attach HTTP/1.1\r\nHost: p\r\n\r\n";

/// How actix-http reads `bytes`: where each request it reads whole ends, and how it goes
/// on after the last one.
#[derive(Debug, PartialEq)]
struct Actix {
    ends: Vec<usize>,
    then: Then,
}

#[derive(Debug, PartialEq)]
enum Then {
    /// It needs more bytes (or reads to the end of the connection).
    More,
    /// It answers 400 / 431 and closes.
    Refused,
}

thread_local! {
    /// actix-http's service config starts its date timer on the runtime it is made on.
    static CONFIG: (actix_rt::Runtime, actix_http::ServiceConfig) = {
        let rt = actix_rt::Runtime::new().expect("a runtime");
        let config = rt.block_on(async { actix_http::ServiceConfig::default() });
        (rt, config)
    };
}

fn actix(bytes: &[u8]) -> Actix {
    let mut codec = Codec::new(CONFIG.with(|(_, c)| c.clone()));
    let mut src = BytesMut::from(bytes);
    let mut ends = Vec::new();
    loop {
        match codec.decode(&mut src) {
            Ok(Some(Message::Item(_))) => {
                if codec.message_type() == MessageType::None {
                    ends.push(bytes.len() - src.len());
                }
            }
            Ok(Some(Message::Chunk(Some(_)))) => {}
            Ok(Some(Message::Chunk(None))) => ends.push(bytes.len() - src.len()),
            Ok(None) => {
                return Actix {
                    ends,
                    then: Then::More,
                }
            }
            Err(_) => {
                return Actix {
                    ends,
                    then: Then::Refused,
                }
            }
        }
    }
}

/// How the gate reads `bytes` fed in the pieces `cuts` makes: where each request it read
/// whole ends, bytes cleared, and where it stopped.
fn gate_in_pieces(bytes: &[u8], cuts: &[usize]) -> (Vec<usize>, usize, Option<Stop>) {
    let mut f = RequestFramer::default();
    let mut ends = Vec::new();
    let mut cleared = 0;
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(bytes.len());
    points.sort_unstable();
    for p in points {
        pending.extend_from_slice(&bytes[fed..p.max(fed)]);
        fed = p.max(fed);
        match f.clear(&pending) {
            Cleared::Bytes(n) => {
                pending.drain(..n);
                cleared += n;
            }
            Cleared::Then(n, stop) => {
                // A request that closes the connection ends where the gate stops.
                if stop == Stop::Closed && ends.last() != Some(&(cleared + n)) {
                    ends.push(cleared + n);
                }
                return (ends, cleared + n, Some(stop));
            }
        }
        if f.between_requests() && cleared > 0 && ends.last() != Some(&cleared) {
            ends.push(cleared);
        }
    }
    (ends, cleared, None)
}

/// The gate fed one byte at a time: where each request it read whole ends.
fn gate_ends(bytes: &[u8]) -> Vec<usize> {
    let cuts: Vec<usize> = (0..bytes.len()).collect();
    gate_in_pieces(bytes, &cuts).0
}

/// Where the gate is stricter than actix-http on purpose (see `framing`'s module doc).
fn stricter(r: &Refusal) -> bool {
    matches!(
        r,
        Refusal::BareLineEnd
            | Refusal::ObsFold
            | Refusal::HeadTooLarge
            | Refusal::ChunkSize
            | Refusal::Trailer
            | Refusal::TrailerTooLarge
            | Refusal::Http10PostWithoutLength
    )
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just("\r\n"), 1 => Just("\n"), 1 => Just("\r"), 1 => Just("\r\n ")]
}

fn digits() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..40).prop_map(|n| n.to_string()),
        Just("+5".to_string()),
        Just(" 7 ".to_string()),
        Just("5, 5".to_string()),
        Just("-1".to_string()),
        Just("0x10".to_string()),
        Just(String::new()),
        Just("00012".to_string()),
        Just("99999999999999999999".to_string()),
        Just("18446744073709551615".to_string()),
    ]
}

fn header() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let name = prop_oneof![
        Just(b"Host".to_vec()),
        Just(b"Content-Length".to_vec()),
        Just(b"content-length".to_vec()),
        Just(b"Transfer-Encoding".to_vec()),
        Just(b"Connection".to_vec()),
        Just(b"Upgrade".to_vec()),
        Just(b"Expect".to_vec()),
        Just(b"X-Junk".to_vec()),
        Just(b"Content-Length ".to_vec()),
        Just(b"Transfer-Encoding\t".to_vec()),
        Just(b"X Bad".to_vec()),
        Just(b"X-\xff".to_vec()),
        Just(Vec::new()),
    ];
    let value = prop_oneof![
        digits().prop_map(String::into_bytes),
        Just(b"chunked".to_vec()),
        Just(b"Chunked".to_vec()),
        Just(b" chunked ".to_vec()),
        Just(b"gzip, chunked".to_vec()),
        Just(b"chunked, gzip".to_vec()),
        Just(b"identity".to_vec()),
        Just(b"chunked\x0b".to_vec()),
        Just(b"close".to_vec()),
        Just(b"keep-alive, Upgrade".to_vec()),
        Just(b"websocket".to_vec()),
        Just(b"tcp".to_vec()),
        Just(b"100-continue".to_vec()),
        Just(b"x".to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
        (1usize..2000).prop_map(|n| vec![b'a'; n]),
    ];
    (name, value)
}

fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
    let size_line = prop_oneof![
        6 => Just(""),
        1 => Just(";ext=1"),
        1 => Just(" ;a"),
        1 => Just(" "),
        1 => Just(";\u{ff}"),
        1 => Just(";\x01"),
    ];
    let chunk = (
        0usize..20,
        size_line,
        line_end(),
        prop_oneof![8 => Just("\r\n"), 1 => Just("\n"), 1 => Just("xx")],
        prop::bool::ANY,
    );
    let trailer = prop_oneof![
        4 => Just(""),
        1 => Just("X-T: v\r\n"),
        1 => Just("X-T: v\n"),
        1 => Just("bad line\r\n"),
        1 => Just("X: a\rb\r\n"),
    ];
    (prop::collection::vec(chunk, 0..4), trailer, line_end()).prop_map(|(chunks, trailer, end)| {
        let mut out = Vec::new();
        for (size, ext, eol, data_end, upper) in chunks {
            let hex = if upper {
                format!("{size:X}")
            } else {
                format!("{size:x}")
            };
            out.extend_from_slice(format!("{hex}{ext}{eol}").as_bytes());
            out.extend(std::iter::repeat_n(b'd', size));
            out.extend_from_slice(data_end.as_bytes());
        }
        out.extend_from_slice(format!("0\r\n{trailer}{end}").as_bytes());
        out
    })
}

fn te_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(b"chunked".to_vec()),
        1 => Just(b"Chunked".to_vec()),
        1 => Just(b" chunked ".to_vec()),
        1 => Just(b"gzip, chunked".to_vec()),
        1 => Just(b"chunked, gzip".to_vec()),
        1 => Just(b"identity".to_vec()),
        1 => Just(b"chunked\x0b".to_vec()),
    ]
}

/// The framing headers, each there or not: one or two `Content-Length`, one or two
/// `Transfer-Encoding`, `Connection`, `Upgrade`.
fn framing_headers() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
    let cl = || prop::option::weighted(0.5, digits().prop_map(String::into_bytes));
    let conn = prop_oneof![
        Just(b"close".to_vec()),
        Just(b"keep-alive, Upgrade".to_vec())
    ];
    let upgrade = prop_oneof![Just(b"websocket".to_vec()), Just(b"tcp".to_vec())];
    (
        cl(),
        prop::option::weighted(0.15, digits().prop_map(String::into_bytes)),
        prop::option::weighted(0.5, te_value()),
        prop::option::weighted(0.1, te_value()),
        prop::option::weighted(0.15, conn),
        prop::option::weighted(0.1, upgrade),
        prop::bool::ANY,
    )
        .prop_map(|(cl, cl2, te, te2, conn, up, te_first)| {
            let mut hs = Vec::new();
            let name = |n: &str| n.as_bytes().to_vec();
            let te_hs: Vec<_> = [te, te2]
                .into_iter()
                .flatten()
                .map(|v| (name("Transfer-Encoding"), v))
                .collect();
            let cl_hs: Vec<_> = [cl, cl2]
                .into_iter()
                .flatten()
                .map(|v| (name("Content-Length"), v))
                .collect();
            if te_first {
                hs.extend(te_hs);
                hs.extend(cl_hs);
            } else {
                hs.extend(cl_hs);
                hs.extend(te_hs);
            }
            hs.extend(conn.map(|v| (name("Connection"), v)));
            hs.extend(up.map(|v| (name("Upgrade"), v)));
            hs
        })
}

/// A request assembled from hostile parts.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("CONNECT"),
        Just("G\x01T"),
    ];
    let target = prop_oneof![
        Just("/_ping".to_string()),
        Just("/containers/a/json?x=1".to_string()),
        Just("*".to_string()),
        Just("/\u{ff}".to_string()),
        Just("http://h/p".to_string()),
        Just("/a b".to_string()),
        (1usize..2000).prop_map(|n| format!("/{}", "a".repeat(n))),
    ];
    let version = prop_oneof![
        6 => Just("HTTP/1.1"),
        2 => Just("HTTP/1.0"),
        1 => Just("HTTP/2.0"),
        1 => Just("HTTP/1.1 "),
    ];
    let body = prop_oneof![
        3 => chunked_body(),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => Just(Vec::new()),
    ];
    // Most requests end every line in CRLF, so the framing headers are what is judged.
    let eols = prop_oneof![
        4 => Just(vec!["\r\n"; 12]),
        1 => prop::collection::vec(line_end(), 12),
    ];
    (
        (method, target, version),
        prop::option::weighted(0.9, Just(())),
        framing_headers(),
        prop::collection::vec(header(), 0..3),
        eols,
        body,
    )
        .prop_map(|((m, t, v), host, framing, junk, eols, body)| {
            let mut eol = eols.into_iter().cycle();
            let mut out = format!("{m} {t} {v}").into_bytes();
            out.extend_from_slice(eol.next().unwrap_or("\r\n").as_bytes());
            if host.is_some() {
                out.extend_from_slice(b"Host: x\r\n");
            }
            for (name, value) in framing.into_iter().chain(junk) {
                out.extend_from_slice(&name);
                out.extend_from_slice(b": ");
                out.extend_from_slice(&value);
                out.extend_from_slice(eol.next().unwrap_or("\r\n").as_bytes());
            }
            out.extend_from_slice(eol.next().unwrap_or("\r\n").as_bytes());
            out.extend_from_slice(&body);
            out
        })
}

/// Bytes made of HTTP's own tokens, in any order.
fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    const TOKENS: &[&[u8]] = &[
        b"GET / HTTP/1.1",
        b"POST /x HTTP/1.0",
        b"\r\n",
        b"\n",
        b"\r",
        b" ",
        b"Host: x",
        b"Content-Length: 3",
        b"Content-Length: 0",
        b"Transfer-Encoding: chunked",
        b"0",
        b"3",
        b"abc",
        b";",
        b":",
        b"\xff",
        b"\x00",
    ];
    let token = prop::sample::select(TOKENS);
    prop::collection::vec(token, 0..30).prop_map(|ts| ts.concat())
}

/// The gate against actix-http and httparse on one request followed by the probe.
fn agrees(request: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut bytes = request.to_vec();
    bytes.extend_from_slice(PROBE);
    let mut f = RequestFramer::default();
    let (at, stop) = match f.clear(&bytes) {
        Cleared::Bytes(n) => (n, None),
        Cleared::Then(n, stop) => (n, Some(stop)),
    };
    // However the bytes arrive, the gate decides the same (the reason it gives for a
    // refusal may name the first fault it saw, which depends on how much had come).
    let kind = |stop: &Option<Stop>| match stop {
        Some(Stop::Refused(_)) => "refused".to_string(),
        Some(Stop::BodyRefused(_)) => "body refused".to_string(),
        other => format!("{other:?}"),
    };
    let (_, pieces_at, pieces_stop) = gate_in_pieces(&bytes, cuts);
    prop_assert_eq!((pieces_at, kind(&pieces_stop)), (at, kind(&stop)));

    let oracle = actix(&bytes);
    let ends = gate_ends(&bytes);
    // Every request the gate reads whole, actix-http reads whole, ending at the same byte.
    prop_assert!(
        oracle.ends.starts_with(&ends),
        "gate ends {:?}, actix-http {:?}",
        ends,
        oracle
    );
    let last = ends.last().copied().unwrap_or(0);
    let actix_next = oracle.ends.get(ends.len()).copied();
    match &stop {
        Some(Stop::Hijack(found)) => {
            // Found where actix-http would read its next request, which is the probe.
            prop_assert_eq!(
                &found.hijack,
                &Hijack::Attach {
                    reference: "probe".into()
                }
            );
            prop_assert_eq!(at, last);
            prop_assert_eq!(actix_next, Some(bytes.len()), "actix-http {:?}", oracle);
        }
        Some(Stop::Refused(r)) => {
            prop_assert_eq!(at, last);
            if oracle.ends.len() > ends.len() {
                prop_assert!(stricter(r), "gate refused {:?}, actix-http {:?}", r, oracle);
            }
        }
        Some(Stop::BodyRefused(r)) => {
            if actix_next.is_some() {
                prop_assert!(stricter(r), "gate refused {:?}, actix-http {:?}", r, oracle);
            }
        }
        Some(Stop::Closed) => prop_assert_eq!(at, last),
        None => {
            // Waiting for more (a longer body, or reading to the end): actix-http does not
            // finish another request either.
            prop_assert_eq!(actix_next, None, "gate waits, actix-http {:?}", oracle);
        }
    }
    // The property that matters most: where actix-http refuses, the probe is never reached.
    if oracle.then == Then::Refused {
        prop_assert!(!matches!(stop, Some(Stop::Hijack(_))));
    }
    // httparse reads the first head as the gate does.
    if let Ok(Some(head)) = framing::head(&bytes) {
        let mut headers = [httparse::EMPTY_HEADER; framing::MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        prop_assert_eq!(
            req.parse(&bytes).ok(),
            Some(httparse::Status::Complete(head.len))
        );
        if let Body::Length(k) = head.body {
            if let Some(end) = oracle.ends.first() {
                prop_assert_eq!(*end as u64, head.len as u64 + k);
            }
        }
    }
    Ok(())
}

proptest! {
    // Heads stay under a few KiB here, since `gate_ends` feeds a byte at a time; heads
    // near the limits are the unit tests' (`heads_past_the_limit`).
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn gate_framing_agrees_with_actix_http(
        req in request(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        agrees(&req, &cuts)?;
    }

    #[test]
    fn gate_framing_agrees_on_token_soup(
        req in token_soup(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        agrees(&req, &cuts)?;
    }

    #[test]
    fn gate_never_panics_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut f = RequestFramer::default();
        let _ = f.clear(&bytes);
        let _ = framing::head(&bytes);
        let _ = framing::chunk_size(&bytes);
        let _ = framing::trailer_line(&bytes);
    }
}

/// The gate refuses heads past 64 KiB with 431 where actix-http would take them up to
/// 128 KiB: stricter, so never a disagreement on where a request ends.
#[test]
fn heads_past_the_limit() {
    for len in [
        framing::HEAD_LIMIT - 100,
        framing::HEAD_LIMIT + 100,
        120 * 1024,
    ] {
        let mut req = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(len));
        req.truncate(req.len());
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(PROBE);
        let mut f = RequestFramer::default();
        let verdict = f.clear(&bytes);
        let oracle = actix(&bytes);
        if len + 30 > framing::HEAD_LIMIT {
            assert_eq!(
                verdict,
                Cleared::Then(0, Stop::Refused(Refusal::HeadTooLarge))
            );
        } else {
            let first = oracle.ends.first().copied().expect("actix-http reads it");
            assert!(matches!(verdict, Cleared::Then(n, Stop::Hijack(_)) if n == first));
        }
    }
}
