//! The failures a test can inject into one simulated engine (`SimEngine::set_fault`):
//! what the engine keeps as its state and what the server acts on for every route.

use std::time::Duration;

/// A failure injected into one engine; it applies to every route of that engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    #[default]
    None,
    /// New connections are shut at once; requests on open connections get no answer
    /// while the fault lasts; event streams end.
    Down,
    /// Every answer is delayed this long.
    Slow(Duration),
    /// `200 OK` with a body that is not JSON.
    Garbage,
    /// `500` with a Docker error body.
    Error500,
}
