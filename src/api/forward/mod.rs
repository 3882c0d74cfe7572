//! Forwarding to engines: `proxy` streams one request to the engine that owns its object;
//! `fanout` asks several nodes and merges their answers (and their progress streams). The
//! third way, hijacked connections, is served before actix-web by the gate in `api::hijack`.

pub mod fanout;
pub mod proxy;
