//! The placement request: what the scheduler needs from a `POST /containers/create`
//! body, read once, typed. Also the rewrite of that body for the engine: Shoal's own
//! placement env entries are stripped and recorded as labels, and the container gets
//! its cluster-unique `com.docker.swarm.id`.
//!
//! The reschedule policy (`-e reschedule:on-node-failure` or the
//! `com.docker.swarm.reschedule-policies` label, `reschedule.rs`) is read here too: it does not steer the
//! placement, but it is Shoal's entry in the env like the expressions, so it leaves the env
//! for its label in the same rewrite, and an invalid one is refused before any placement.

mod reschedule;

use reschedule::{parse_reschedule, RESCHEDULE_PREFIX};
pub use reschedule::{ReschedulePolicy, LABEL_RESCHEDULE};

use std::collections::BTreeSet;
use std::fmt;

use bollard_stubs::models::{ContainerCreateBody, HostConfig, MountTypeEnum};

use super::error::ScheduleError;
use super::expr::{Expr, ExprKind};
use super::offer::{container_reservation, HostPort, NodeId};

/// Label recording the constraints (JSON array of expressions without prefix).
pub const LABEL_CONSTRAINTS: &str = "com.docker.swarm.constraints";
/// Label recording the affinities.
pub const LABEL_AFFINITIES: &str = "com.docker.swarm.affinities";
/// Label recording the whitelist (Shoal's own; classic Swarm had no whitelist).
pub const LABEL_WHITELISTS: &str = "com.docker.swarm.whitelists";
/// Label carrying the cluster-unique container id.
pub const LABEL_SWARM_ID: &str = "com.docker.swarm.id";
/// How a requested host port is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortMode {
    /// `-p 8080:80` on a bridge (or user) network.
    Bridge,
    /// `--net=host`: every exposed port is a host port.
    Host,
}

/// One host port the container needs free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRequest {
    pub port: HostPort,
    pub mode: PortMode,
}

impl fmt::Display for PortRequest {
    /// Classic Swarm's text: `port 80 (Bridge mode)`, `port 80/tcp (Host mode)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            PortMode::Bridge if self.port.proto == super::offer::Proto::Tcp => {
                write!(f, "port {} (Bridge mode)", self.port.port)
            }
            PortMode::Bridge => write!(f, "port {} (Bridge mode)", self.port),
            PortMode::Host => write!(f, "port {} (Host mode)", self.port),
        }
    }
}

/// What a dependency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    VolumesFrom,
    Link,
    NetContainer,
}

/// A container this one must land with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub kind: DependencyKind,
    /// Name or ID of the container depended on.
    pub target: String,
    /// As written (`db:alias`, `data:ro`), for messages.
    pub raw: String,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DependencyKind::VolumesFrom => write!(f, "--volumes-from={}", self.raw),
            DependencyKind::Link => write!(f, "--link={}", self.raw),
            DependencyKind::NetContainer => write!(f, "--net=container:{}", self.raw),
        }
    }
}

impl Dependency {
    /// The dependency as a user reads it in a message: `--volumes-from vol0`.
    pub fn spelled(&self) -> String {
        match self.kind {
            DependencyKind::VolumesFrom => format!("--volumes-from {}", self.raw),
            DependencyKind::Link => format!("--link {}", self.raw),
            DependencyKind::NetContainer => format!("--net container:{}", self.raw),
        }
    }
}

/// Everything placement needs from one create request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlacementRequest {
    /// `?name=`, without the leading `/`.
    pub name: Option<String>,
    pub image: Option<String>,
    pub constraints: Vec<Expr>,
    pub affinities: Vec<Expr>,
    pub whitelist: Vec<Expr>,
    /// Requested nano-CPUs (`NanoCpus`, else the `CpusetCpus` count).
    pub cpu: u64,
    /// Requested memory, bytes.
    pub memory: u64,
    pub ports: Vec<PortRequest>,
    pub dependencies: Vec<Dependency>,
    /// User-defined networks joined.
    pub networks: Vec<String>,
    /// Named volumes mounted.
    pub volumes: Vec<String>,
    /// Nodes this placement must not choose: those a create already failed on. Typed,
    /// never an expression: it is Shoal's own condition, not the client's, so it is not
    /// recorded in the container's labels nor listed in a refusal.
    pub avoid: BTreeSet<NodeId>,
    /// The reschedule policy asked for; `None` when the request named none.
    pub reschedule: Option<ReschedulePolicy>,
    /// A re-created container's failed node: the name it still holds there is its own,
    /// not a conflict. Shoal's own, like `avoid`.
    pub takes_name_from: Option<NodeId>,
}

fn parse_exprs(
    kind: ExprKind,
    env: &[String],
    labels: Option<&std::collections::HashMap<String, String>>,
    label: &str,
) -> Result<Vec<Expr>, ScheduleError> {
    let mut out: Vec<Expr> = Vec::new();
    // Labels first: a request rebuilt from a container carries them there.
    if let Some(json) = labels.and_then(|l| l.get(label)) {
        let list: Vec<String> =
            serde_json::from_str(json).map_err(|e| ScheduleError::InvalidLabel {
                label: label.into(),
                reason: format!("expected a JSON array of strings: {e}"),
            })?;
        for raw in list {
            out.push(Expr::parse(kind, &raw)?);
        }
    }
    let prefix = format!("{}:", kind.prefix());
    for e in env {
        if let Some(raw) = e.strip_prefix(&prefix) {
            out.push(Expr::parse(kind, raw)?);
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| seen.insert(e.raw.clone()));
    Ok(out)
}

/// Is `s` a volume name rather than a host path (`vol` vs `/data`, `./x`, `~/x`)?
fn is_volume_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const BUILTIN_NETWORKS: [&str; 4] = ["bridge", "host", "none", "default"];

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl PlacementRequest {
    /// Reads a create body and its `?name=`. A malformed expression, label array or
    /// port is a 400-class error naming it.
    pub fn from_create(
        body: &ContainerCreateBody,
        name: Option<&str>,
    ) -> Result<Self, ScheduleError> {
        let env = body.env.as_deref().unwrap_or_default();
        let labels = body.labels.as_ref();
        let mut req = PlacementRequest {
            name: name
                .map(|n| n.trim_start_matches('/').to_owned())
                .filter(|n| !n.is_empty()),
            image: body.image.clone().filter(|i| !i.is_empty()),
            constraints: parse_exprs(ExprKind::Constraint, env, labels, LABEL_CONSTRAINTS)?,
            affinities: parse_exprs(ExprKind::Affinity, env, labels, LABEL_AFFINITIES)?,
            whitelist: parse_exprs(ExprKind::Whitelist, env, labels, LABEL_WHITELISTS)?,
            reschedule: parse_reschedule(env, labels)?,
            ..Self::default()
        };
        let no_hc = HostConfig::default();
        let hc = body.host_config.as_ref().unwrap_or(&no_hc);
        (req.cpu, req.memory) = container_reservation(hc);

        let mode = hc.network_mode.as_deref().unwrap_or("");
        if mode == "host" {
            let mut exposed: Vec<&String> =
                body.exposed_ports.iter().flat_map(|m| m.keys()).collect();
            exposed.sort();
            for key in exposed {
                let port = HostPort::parse(key).ok_or_else(|| {
                    ScheduleError::InvalidRequest(format!("bad exposed port {key:?}"))
                })?;
                push_unique(
                    &mut req.ports,
                    PortRequest {
                        port,
                        mode: PortMode::Host,
                    },
                );
            }
        } else {
            let mut bindings: Vec<_> = hc.port_bindings.iter().flatten().collect();
            bindings.sort_by(|a, b| a.0.cmp(b.0));
            for (key, list) in bindings {
                let container_port = HostPort::parse(key)
                    .ok_or_else(|| ScheduleError::InvalidRequest(format!("bad port {key:?}")))?;
                for b in list.iter().flatten() {
                    let hp = b.host_port.as_deref().unwrap_or("").trim();
                    // Empty, 0 or a range: the engine picks an ephemeral port, nothing
                    // to reserve.
                    if hp.is_empty() || hp.contains('-') {
                        continue;
                    }
                    let n: u16 = hp.parse().map_err(|_| {
                        ScheduleError::InvalidRequest(format!("bad host port {hp:?} for {key}"))
                    })?;
                    if n == 0 {
                        continue;
                    }
                    let port = HostPort {
                        port: n,
                        proto: container_port.proto,
                    };
                    push_unique(
                        &mut req.ports,
                        PortRequest {
                            port,
                            mode: PortMode::Bridge,
                        },
                    );
                }
            }
        }

        if let Some(target) = mode.strip_prefix("container:") {
            req.dependencies.push(Dependency {
                kind: DependencyKind::NetContainer,
                target: target.to_owned(),
                raw: target.to_owned(),
            });
        } else if !mode.is_empty() && !BUILTIN_NETWORKS.contains(&mode) {
            push_unique(&mut req.networks, mode.to_owned());
        }
        if let Some(eps) = body
            .networking_config
            .as_ref()
            .and_then(|n| n.endpoints_config.as_ref())
        {
            let mut names: Vec<&String> = eps.keys().collect();
            names.sort();
            for n in names {
                if !BUILTIN_NETWORKS.contains(&n.as_str()) {
                    push_unique(&mut req.networks, n.clone());
                }
            }
        }
        for v in hc.volumes_from.iter().flatten() {
            let target = v.split(':').next().unwrap_or(v);
            req.dependencies.push(Dependency {
                kind: DependencyKind::VolumesFrom,
                target: target.to_owned(),
                raw: v.clone(),
            });
        }
        for l in hc.links.iter().flatten() {
            let target = l.split(':').next().unwrap_or(l).trim_start_matches('/');
            req.dependencies.push(Dependency {
                kind: DependencyKind::Link,
                target: target.to_owned(),
                raw: l.clone(),
            });
        }
        for b in hc.binds.iter().flatten() {
            if let Some((src, _)) = b.split_once(':') {
                if is_volume_name(src) {
                    push_unique(&mut req.volumes, src.to_owned());
                }
            }
        }
        for m in hc.mounts.iter().flatten() {
            if m.typ == Some(MountTypeEnum::VOLUME) {
                if let Some(src) = m.source.as_deref().filter(|s| !s.is_empty()) {
                    push_unique(&mut req.volumes, src.to_owned());
                }
            }
        }
        Ok(req)
    }

    /// Does the request carry soft expressions (so a retry without them is possible)?
    pub fn has_soft(&self) -> bool {
        self.constraints
            .iter()
            .chain(&self.affinities)
            .any(|e| e.soft)
    }

    /// Rewrites the create body for the engine: drops the `constraint:`, `affinity:`,
    /// `whitelist:` and `reschedule:` env entries, records the request's expressions and
    /// reschedule policy in the `com.docker.swarm.*` labels (JSON arrays), and sets
    /// `com.docker.swarm.id`. Everything else (`CpuShares` included) reaches the engine
    /// unchanged.
    pub fn rewrite_body(&self, body: &mut ContainerCreateBody, swarm_id: &str) {
        if let Some(env) = body.env.as_mut() {
            env.retain(|e| {
                !(e.starts_with("constraint:")
                    || e.starts_with("affinity:")
                    || e.starts_with("whitelist:")
                    || e.starts_with(RESCHEDULE_PREFIX))
            });
        }
        let labels = body.labels.get_or_insert_with(Default::default);
        for (label, exprs) in [
            (LABEL_CONSTRAINTS, &self.constraints),
            (LABEL_AFFINITIES, &self.affinities),
            (LABEL_WHITELISTS, &self.whitelist),
        ] {
            if !exprs.is_empty() {
                let raws: Vec<&str> = exprs.iter().map(|e| e.raw.as_str()).collect();
                labels.insert(
                    label.into(),
                    serde_json::to_string(&raws).expect("strings serialize"),
                );
            }
        }
        if let Some(policy) = self.reschedule {
            labels.insert(
                LABEL_RESCHEDULE.into(),
                serde_json::to_string(&[policy.as_str()]).expect("strings serialize"),
            );
        }
        labels.insert(LABEL_SWARM_ID.into(), swarm_id.into());
    }
}

#[cfg(test)]
mod tests;
