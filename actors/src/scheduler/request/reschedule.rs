//! The reschedule policy of a create (`-e reschedule:on-node-failure` or the
//! `com.docker.swarm.reschedule-policies` label): classic Swarm's two policies, read from
//! the env and the label together, an invalid or conflicting one refused before any
//! placement. It does not steer the placement; the rescheduler acts on it.

use std::collections::HashMap;
use std::fmt;

use crate::scheduler::error::ScheduleError;

/// Label recording the reschedule policy: a JSON array of one policy, as classic Swarm
/// wrote it (`["on-node-failure"]`).
pub const LABEL_RESCHEDULE: &str = "com.docker.swarm.reschedule-policies";
/// The env prefix of the reschedule policy (`-e reschedule:on-node-failure`).
pub(super) const RESCHEDULE_PREFIX: &str = "reschedule:";

/// What to do with a container when its node fails. Classic Swarm's two policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReschedulePolicy {
    /// Leave it where it was (the default).
    #[default]
    Off,
    /// Create it again on another node when its node fails.
    OnNodeFailure,
}

impl ReschedulePolicy {
    /// Classic Swarm's spelling, as written in the env and the label.
    pub fn as_str(self) -> &'static str {
        match self {
            ReschedulePolicy::Off => "off",
            ReschedulePolicy::OnNodeFailure => "on-node-failure",
        }
    }

    fn parse(raw: &str) -> Result<Self, ScheduleError> {
        match raw {
            "off" => Ok(ReschedulePolicy::Off),
            "on-node-failure" => Ok(ReschedulePolicy::OnNodeFailure),
            other => Err(ScheduleError::InvalidReschedule(format!(
                "invalid reschedule policy: {other}"
            ))),
        }
    }
}

impl fmt::Display for ReschedulePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reschedule policy of a create: the label's JSON array and the env's
/// `reschedule:` entries together. More than one distinct policy is refused, as classic
/// Swarm refused it.
pub(super) fn parse_reschedule(
    env: &[String],
    labels: Option<&HashMap<String, String>>,
) -> Result<Option<ReschedulePolicy>, ScheduleError> {
    let mut raws: Vec<String> = Vec::new();
    if let Some(json) = labels.and_then(|l| l.get(LABEL_RESCHEDULE)) {
        raws = serde_json::from_str(json).map_err(|e| ScheduleError::InvalidLabel {
            label: LABEL_RESCHEDULE.into(),
            reason: format!("expected a JSON array of strings: {e}"),
        })?;
    }
    raws.extend(
        env.iter()
            .filter_map(|e| e.strip_prefix(RESCHEDULE_PREFIX))
            .map(str::to_owned),
    );
    let mut policies: Vec<ReschedulePolicy> = Vec::new();
    for raw in &raws {
        let policy = ReschedulePolicy::parse(raw)?;
        if !policies.contains(&policy) {
            policies.push(policy);
        }
    }
    match policies.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(ScheduleError::InvalidReschedule(
            "too many reschedule policies".into(),
        )),
    }
}
