//! One full refresh of a node (facts, containers, images, networks, volumes, asked one call
//! at a time), and when the next one runs: jittered between the min and max intervals while
//! the engine answers, backing off from min to max while it fails.
//!
//! While a node is unhealthy a cheap probe (`GET /_ping`) runs beside the backed-off
//! refreshes, so an engine that answers again is refreshed (and routed to) within a probe
//! interval instead of after the longest back-off.

use super::facts::{EngineFacts, InfoBody, VersionBody};
use super::snapshot::{ObjectEntry, VolumeList};
use crate::engine::{Engine, EngineAddr, EngineError};
use bollard_stubs::models::{ContainerSummary, ImageSummary};
use rand::Rng;
use serde_json::value::RawValue;
use std::future::Future;
use std::time::Duration;

/// How a NodeActor runs; one value shared by all nodes, from the CLI.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub refresh_min: Duration,
    pub refresh_max: Duration,
    pub failure_retry: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            refresh_min: Duration::from_secs(30),
            refresh_max: Duration::from_secs(60),
            failure_retry: 3,
        }
    }
}

/// Longest wait between two probes of an unhealthy engine (shorter when the refresh
/// interval is): how long an engine that answers again may stay marked unhealthy.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// What a full refresh read.
pub(crate) struct Refreshed {
    pub facts: EngineFacts,
    pub containers: Vec<ContainerSummary>,
    pub images: Vec<ImageSummary>,
    pub networks: Vec<ObjectEntry>,
    pub volumes: Vec<ObjectEntry>,
}

/// Parses an engine's answer to `path`; what does not parse is the engine's fault.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    addr: &EngineAddr,
    path: &str,
    body: &[u8],
) -> Result<T, EngineError> {
    serde_json::from_slice(body).map_err(|e| EngineError::Garbage {
        addr: addr.to_string(),
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// `GET path`, parsed as `T`.
fn get_json<T: serde::de::DeserializeOwned>(
    engine: &dyn Engine,
    path: &'static str,
) -> impl Future<Output = Result<T, EngineError>> {
    let call = engine.get(path);
    let addr = engine.addr().clone();
    async move { parse(&addr, path, &call.await?) }
}

/// Reads everything a node publishes about its engine.
pub(crate) async fn fetch(engine: &dyn Engine) -> Result<Refreshed, EngineError> {
    // One call at a time, each body parsed as it arrives: the node's other connection stays
    // free for what clients wait on (creates, inspects), and at start-up, when every node
    // refreshes at once, each holds one connection's buffers (~16 KB), not two.
    let info: InfoBody = get_json(engine, "/info").await?;
    let version: VersionBody = get_json(engine, "/version").await?;
    let containers = get_json(engine, "/containers/json?all=1").await?;
    let images = get_json(engine, "/images/json").await?;
    let networks: Vec<Box<RawValue>> = get_json(engine, "/networks").await?;
    let volumes: VolumeList = get_json(engine, "/volumes").await?;
    Ok(Refreshed {
        facts: EngineFacts::from_bodies(info, version),
        containers,
        images,
        networks: networks.iter().map(|n| ObjectEntry::from_raw(n)).collect(),
        volumes: volumes
            .volumes
            .iter()
            .map(|v| ObjectEntry::from_raw(v))
            .collect(),
    })
}

/// The wait before the next refresh, after `failures` failed refreshes in a row.
pub fn next_delay(config: &NodeConfig, failures: u32) -> Duration {
    let (min, max) = (
        config.refresh_min,
        config.refresh_max.max(config.refresh_min),
    );
    match failures {
        0 => {
            // Jitter spreads the refreshes of many nodes over the interval.
            let spread = (max - min).as_millis() as u64;
            let extra = if spread == 0 {
                0
            } else {
                rand::thread_rng().gen_range(0..=spread)
            };
            min + Duration::from_millis(extra)
        }
        n => {
            // Back off while the engine fails, from min up to max.
            let factor = 1u32 << (n - 1).min(16);
            min.saturating_mul(factor).min(max)
        }
    }
}

/// The wait between two probes of an unhealthy engine.
pub fn probe_delay(config: &NodeConfig) -> Duration {
    PROBE_INTERVAL.min(config.refresh_min)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min: u64, max: u64) -> NodeConfig {
        NodeConfig {
            refresh_min: Duration::from_secs(min),
            refresh_max: Duration::from_secs(max),
            failure_retry: 3,
        }
    }

    #[test]
    fn healthy_refreshes_are_jittered_between_min_and_max() {
        let c = config(30, 60);
        for _ in 0..100 {
            let d = next_delay(&c, 0);
            assert!(
                d >= Duration::from_secs(30) && d <= Duration::from_secs(60),
                "{d:?}"
            );
        }
        assert_eq!(next_delay(&config(5, 5), 0), Duration::from_secs(5));
    }

    #[test]
    fn failures_back_off_from_min_to_max() {
        let c = config(1, 10);
        let delays: Vec<u64> = (1..=6).map(|n| next_delay(&c, n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(next_delay(&c, 40), Duration::from_secs(10), "no overflow");
    }

    #[test]
    fn probes_are_never_slower_than_refreshes() {
        assert_eq!(probe_delay(&config(30, 60)), PROBE_INTERVAL);
        let fast = NodeConfig {
            refresh_min: Duration::from_millis(100),
            ..config(1, 2)
        };
        assert_eq!(probe_delay(&fast), Duration::from_millis(100));
    }
}
