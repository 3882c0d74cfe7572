//! The health state machine of one node: pending until the first refresh answers, healthy
//! after any successful refresh, unhealthy after `failure_retry` failed refreshes in a row.
//! Pure, so it is tested without an engine.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub enum Health {
    #[default]
    Pending,
    Healthy,
    Unhealthy,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Pending => "Pending",
            Health::Healthy => "Healthy",
            Health::Unhealthy => "Unhealthy",
        })
    }
}

/// Counts failed refreshes and decides the state. `on_*` answer the new state when it changed.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    state: Health,
    failures: u32,
    retry: u32,
}

impl HealthTracker {
    pub fn new(failure_retry: u32) -> Self {
        HealthTracker {
            state: Health::Pending,
            failures: 0,
            retry: failure_retry.max(1),
        }
    }

    pub fn state(&self) -> Health {
        self.state
    }

    /// Failed refreshes since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn on_success(&mut self) -> Option<Health> {
        self.failures = 0;
        self.set(Health::Healthy)
    }

    pub fn on_failure(&mut self) -> Option<Health> {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= self.retry {
            self.set(Health::Unhealthy)
        } else {
            None
        }
    }

    fn set(&mut self, next: Health) -> Option<Health> {
        if self.state == next {
            None
        } else {
            self.state = next;
            Some(next)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_healthy_then_unhealthy_after_retries_then_back() {
        let mut h = HealthTracker::new(3);
        assert_eq!(h.state(), Health::Pending);
        assert_eq!(h.on_failure(), None);
        assert_eq!(h.state(), Health::Pending);
        assert_eq!(h.on_success(), Some(Health::Healthy));
        assert_eq!(h.on_failure(), None);
        assert_eq!(h.on_failure(), None);
        assert_eq!(h.state(), Health::Healthy);
        assert_eq!(h.on_failure(), Some(Health::Unhealthy));
        assert_eq!(h.on_failure(), None);
        assert_eq!(h.failures(), 4);
        assert_eq!(h.on_success(), Some(Health::Healthy));
        assert_eq!(h.failures(), 0);
    }

    #[test]
    fn a_pending_node_that_never_answers_turns_unhealthy() {
        let mut h = HealthTracker::new(2);
        assert_eq!(h.on_failure(), None);
        assert_eq!(h.on_failure(), Some(Health::Unhealthy));
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut h = HealthTracker::new(2);
        h.on_success();
        h.on_failure();
        h.on_success();
        assert_eq!(h.on_failure(), None);
        assert_eq!(h.state(), Health::Healthy);
    }
}
