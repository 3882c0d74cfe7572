//! Hijacked connections: `POST /containers/{id}/attach` and the upgraded
//! `POST /exec/{id}/start`. The engine answers `101 UPGRADED` and from then on the TCP
//! connection carries raw bytes both ways (stdin up; stdout/stderr down, raw for a TTY,
//! else multiplexed with 8-byte frame headers). Shoal answers the same by relaying the
//! engine's own answer, then copies bytes both ways, half-close included.
//!
//! # Why at the connection level, in front of actix-web
//!
//! actix-http's HTTP/1 decoder treats only `Upgrade: websocket` and `CONNECT` as open-ended.
//! A Docker hijack (`Connection: Upgrade`, `Upgrade: tcp`, no body length) is a request
//! without a body to it, so whatever the client writes next (its stdin) is parsed as the
//! next request: a plain actix-web handler can never see the stdin, and its upgrade hook is
//! never called for `tcp`. So Shoal reads each connection before actix-http does: an
//! `actix_server` service per connection (`front`) gives actix-web's HTTP/1 service the
//! connection through a `Gate`, which follows the client's requests one by one (`framer`,
//! with `framing`: each head parsed with `httparse`, each body framed by its
//! `Content-Length` or its chunks, exactly as actix-http frames it, and any request whose
//! framing is ambiguous refused with 400 before either side acts on it; `framing` says why
//! that matters). Ordinary requests flow through, keep-alive included. At the head of a hijack,
//! whichever request of the connection it is, the gate reads as an end of stream to
//! actix-http, which finishes what it was answering and lets go of the connection; the
//! relay (`relay`) then serves the hijack on it: resolve the container (cluster view) or
//! exec (`ExecRegistry`), connect to the owning engine (TCP or unix socket, with the call
//! timeout), write the request with the path rewritten to the engine's full container ID,
//! wait for the engine's answer head (call timeout), pass it on, then copy bytes both ways
//! until the engine closes.
//!
//! The other choice was hyper, whose server does pass on arbitrary upgrades. It would have
//! meant a second HTTP stack beside actix-web (or moving every route to it) for two routes;
//! the gate keeps one HTTP stack, and costs each request one head parse. Clients that reuse
//! a pooled connection for a hijack (docker-py's `exec_run`) need the request-by-request
//! following; the Go client (docker CLI, compose) dials a new connection for each hijack.
//!
//! # Half-close
//!
//! When the client shuts its write side (end of stdin), the relay shuts the engine side's
//! write, and keeps copying output until the engine closes; then it closes the client.
//! When the engine closes first, the relay stops reading the client: nobody would read it.

mod error;
mod framer;
mod framing;
mod front;
#[cfg(test)]
mod props;
mod relay;

pub use error::FrontError;
pub use front::{serve_connection, Gate};

use shoal_actors::engine::split_api_version;

/// A request head that asks for a hijacked connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hijack {
    /// `POST /containers/{reference}/attach`.
    Attach { reference: String },
    /// `POST /exec/{id}/start` with `Connection: Upgrade`.
    ExecStart { id: String },
}

/// Whether a request head is a hijack, from its method, path (with query) and whether it
/// asks to upgrade the connection. `attach` always hijacks on the engine (without an
/// upgrade it answers `200` and then streams raw), so it is taken with or without one;
/// `exec start` only with one, since a detached start is an ordinary request.
///
/// The path is read as the router reads it (`crate::api::routed_path`): percent-encoded
/// characters but `/`, `+` and `%` decoded, so `/containers/w%65b/att%61ch` is `web`'s
/// attach here as on dockerd, and the guard and the relay see the name the router would.
/// A target that is not a URI is not a hijack: actix-http refuses it.
pub fn classify(method: &str, target: &str, upgrade: bool) -> Option<Hijack> {
    if !method.eq_ignore_ascii_case("POST") {
        return None;
    }
    let url = actix_web::dev::Url::new(target.parse().ok()?);
    let (_, path) = split_api_version(url.path());
    if let Some(rest) = path.strip_prefix("/containers/") {
        let reference = rest.strip_suffix("/attach")?;
        if reference.is_empty() {
            return None;
        }
        return Some(Hijack::Attach {
            reference: reference.to_string(),
        });
    }
    if let Some(rest) = path.strip_prefix("/exec/") {
        let id = rest.strip_suffix("/start")?;
        if id.is_empty() || id.contains('/') || !upgrade {
            return None;
        }
        return Some(Hijack::ExecStart { id: id.to_string() });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_and_upgraded_exec_start_are_hijacks() {
        assert_eq!(
            classify(
                "POST",
                "/v1.41/containers/web/attach?stream=1&stdin=1",
                true
            ),
            Some(Hijack::Attach {
                reference: "web".into()
            })
        );
        assert_eq!(
            classify("POST", "/containers/node-1/web/attach", false),
            Some(Hijack::Attach {
                reference: "node-1/web".into()
            })
        );
        assert_eq!(
            classify("POST", "/v1.24/exec/abc/start", true),
            Some(Hijack::ExecStart { id: "abc".into() })
        );
    }

    #[test]
    fn the_path_is_read_as_the_router_reads_it() {
        assert_eq!(
            classify("POST", "/v1.41/containers/w%65b/att%61ch?stream=1", false),
            Some(Hijack::Attach {
                reference: "web".into()
            })
        );
        assert_eq!(
            classify("POST", "/exec/a%62c/st%61rt", true),
            Some(Hijack::ExecStart { id: "abc".into() })
        );
        // An encoded `/` stays encoded, as in the router's match.
        assert_eq!(
            classify("POST", "/containers/node-1%2Fweb/attach", false),
            Some(Hijack::Attach {
                reference: "node-1%2Fweb".into()
            })
        );
        assert_eq!(
            classify("POST", "/exec/a%2Fb/start", true),
            Some(Hijack::ExecStart { id: "a%2Fb".into() })
        );
        assert_eq!(classify("POST", "not a uri", true), None);
    }

    #[test]
    fn everything_else_is_plain_http() {
        assert_eq!(classify("POST", "/exec/abc/start", false), None);
        assert_eq!(classify("GET", "/containers/web/attach", true), None);
        assert_eq!(classify("GET", "/containers/web/attach/ws", true), None);
        assert_eq!(classify("POST", "/containers/web/start", true), None);
        assert_eq!(classify("POST", "/containers//attach", true), None);
        assert_eq!(classify("POST", "/exec/a/b/start", true), None);
        assert_eq!(classify("POST", "/v1.41/exec/abc/resize", true), None);
    }
}
