//! Simulated Docker engines: in-memory engine state behind the Docker Engine API.
//!
//! One process can host thousands of engines: a single actix-web `HttpServer` listens on
//! one TCP port per engine and picks the engine by the local port of each connection.
//! Requests go through the same stages as in a server: `request` parses the HTTP request
//! into an [`request::Op`], `engine` applies it to that engine's state, `render` shapes
//! the Docker JSON, and `server` owns the listeners, the faults and the wire.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

mod config;
mod engine;
mod error;
mod events;
mod fault;
mod render;
mod request;
mod server;
mod util;

pub use config::{EngineConfig, FleetOptions};
pub use engine::SimEngine;
pub use error::SimError;
pub use events::SimEvent;
pub use fault::Fault;
pub use server::SimFleet;
