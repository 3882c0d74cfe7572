//! Forwarding to engines: `proxy` streams one request to the engine that owns its object;
//! `fanout` asks several nodes and merges their answers; `progress` opens streamed calls
//! and merges the progress of several engines. The
//! third way, hijacked connections, is served before actix-web by the gate in `api::hijack`.

pub mod fanout;
pub mod hijack;
pub mod progress;
pub mod proxy;
