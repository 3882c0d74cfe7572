//! The placement request: what the scheduler needs from a `POST /containers/create`
//! body, read once, typed. Also the rewrite of that body for the engine: Shoal's own
//! placement env entries are stripped and recorded as labels, and the container gets
//! its cluster-unique `com.docker.swarm.id`.
//!
//! The reschedule policy (`-e reschedule:on-node-failure` or the
//! `com.docker.swarm.reschedule-policies` label) is read here too: it does not steer the
//! placement, but it is Shoal's entry in the env like the expressions, so it leaves the env
//! for its label in the same rewrite, and an invalid one is refused before any placement.

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
/// Label recording the reschedule policy: a JSON array of one policy, as classic Swarm
/// wrote it (`["on-node-failure"]`).
pub const LABEL_RESCHEDULE: &str = "com.docker.swarm.reschedule-policies";
/// The env prefix of the reschedule policy (`-e reschedule:on-node-failure`).
const RESCHEDULE_PREFIX: &str = "reschedule:";

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
}

/// The reschedule policy of a create: the label's JSON array and the env's
/// `reschedule:` entries together. More than one distinct policy is refused, as classic
/// Swarm refused it.
fn parse_reschedule(
    env: &[String],
    labels: Option<&std::collections::HashMap<String, String>>,
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
mod tests {
    use super::*;
    use bollard_stubs::models::{
        EndpointSettings, HostConfig, Mount, NetworkingConfig, PortBinding,
    };
    use std::collections::HashMap;

    fn body(json: serde_json::Value) -> ContainerCreateBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn extracts_everything() {
        let b = body(serde_json::json!({
            "Image": "busybox",
            "Env": ["A=1", "constraint:storage==ssd", "affinity:container!=web", "whitelist:node==n1|n2"],
            "Labels": {"com.docker.swarm.constraints": "[\"zone==~a\", \"storage==ssd\"]"},
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {
                "NanoCpus": 2000000000_i64, "Memory": 1073741824_i64, "CpuShares": 512,
                "PortBindings": {"80/tcp": [{"HostPort": "8080"}], "53/udp": [{"HostPort": "53"}], "443/tcp": [{"HostPort": ""}]},
                "VolumesFrom": ["data:ro"], "Links": ["/db:db"],
                "NetworkMode": "mynet",
                "Binds": ["vol1:/data", "/host:/h", "./rel:/r"],
                "Mounts": [{"Type": "volume", "Source": "vol2", "Target": "/v"}, {"Type": "bind", "Source": "/x", "Target": "/x"}]
            },
            "NetworkingConfig": {"EndpointsConfig": {"mynet": {}, "other": {}, "bridge": {}}}
        }));
        let r = PlacementRequest::from_create(&b, Some("/web")).unwrap();
        assert_eq!(r.name.as_deref(), Some("web"));
        let raws = |v: &[Expr]| v.iter().map(|e| e.raw.clone()).collect::<Vec<_>>();
        assert_eq!(raws(&r.constraints), ["zone==~a", "storage==ssd"]);
        assert_eq!(raws(&r.affinities), ["container!=web"]);
        assert_eq!(raws(&r.whitelist), ["node==n1|n2"]);
        assert!(r.has_soft());
        assert_eq!((r.cpu, r.memory), (2_000_000_000, 1 << 30));
        let ports: Vec<String> = r.ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            ports,
            ["port 53/udp (Bridge mode)", "port 8080 (Bridge mode)"]
        );
        let deps: Vec<String> = r.dependencies.iter().map(|d| d.to_string()).collect();
        assert_eq!(deps, ["--volumes-from=data:ro", "--link=/db:db"]);
        assert_eq!(r.dependencies[1].target, "db");
        assert_eq!(r.networks, ["mynet", "other"]);
        assert_eq!(r.volumes, ["vol1", "vol2"]);
    }

    #[test]
    fn host_mode_and_container_net() {
        let b = ContainerCreateBody {
            exposed_ports: Some(HashMap::from([
                ("80/tcp".into(), HashMap::new()),
                ("53/udp".into(), HashMap::new()),
            ])),
            host_config: Some(HostConfig {
                network_mode: Some("host".into()),
                cpuset_cpus: Some("0-1".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = PlacementRequest::from_create(&b, None).unwrap();
        let ports: Vec<String> = r.ports.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            ports,
            ["port 53/udp (Host mode)", "port 80/tcp (Host mode)"]
        );
        assert_eq!(r.cpu, 2_000_000_000);
        assert!(r.networks.is_empty());

        let b = ContainerCreateBody {
            host_config: Some(HostConfig {
                network_mode: Some("container:db".into()),
                mounts: Some(vec![Mount {
                    typ: Some(MountTypeEnum::VOLUME),
                    source: Some("v".into()),
                    ..Default::default()
                }]),
                port_bindings: Some(HashMap::from([(
                    "80/tcp".into(),
                    Some(vec![PortBinding {
                        host_ip: None,
                        host_port: Some("8000-8010".into()),
                    }]),
                )])),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    "default".into(),
                    EndpointSettings::default(),
                )])),
            }),
            ..Default::default()
        };
        let r = PlacementRequest::from_create(&b, Some("")).unwrap();
        assert_eq!(r.name, None);
        assert_eq!(r.dependencies[0].to_string(), "--net=container:db");
        assert!(r.ports.is_empty() && r.networks.is_empty());
        assert_eq!(r.volumes, ["v"]);
    }

    #[test]
    fn bad_input_is_a_400() {
        let cases = [
            (
                serde_json::json!({"Env": ["constraint:==x"]}),
                "invalid expression \"constraint:==x\": missing key",
            ),
            (
                serde_json::json!({"Env": ["affinity:image==/[/"]}),
                "invalid expression \"affinity:image==/[/\": bad regular expression",
            ),
            (
                serde_json::json!({"Env": ["constraint:a>b"]}),
                "unknown operator",
            ),
            (
                serde_json::json!({"Env": ["whitelist:zone==a"]}),
                "whitelist key must be",
            ),
            (
                serde_json::json!({"Labels": {"com.docker.swarm.affinities": "nope"}}),
                "invalid label com.docker.swarm.affinities",
            ),
            (
                serde_json::json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "http"}]}}}),
                "bad host port",
            ),
        ];
        for (json, msg) in cases {
            let e = PlacementRequest::from_create(&body(json.clone()), None).unwrap_err();
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(msg), "{json}: {e}");
        }
    }

    #[test]
    fn rewrite_strips_env_and_records_labels() {
        let mut b = body(serde_json::json!({
            "Env": ["A=1", "constraint:storage==ssd", "affinity:image==redis", "whitelist:node==n1"],
            "Labels": {"keep": "me", "com.docker.swarm.constraints": "[\"zone==a\"]"},
            "HostConfig": {"CpuShares": 512}
        }));
        let r = PlacementRequest::from_create(&b, None).unwrap();
        r.rewrite_body(&mut b, "abc123");
        assert_eq!(b.env.as_deref().unwrap(), ["A=1"]);
        let l = b.labels.as_ref().unwrap();
        assert_eq!(l["keep"], "me");
        assert_eq!(l[LABEL_CONSTRAINTS], r#"["zone==a","storage==ssd"]"#);
        assert_eq!(l[LABEL_AFFINITIES], r#"["image==redis"]"#);
        assert_eq!(l[LABEL_WHITELISTS], r#"["node==n1"]"#);
        assert_eq!(l[LABEL_SWARM_ID], "abc123");
        assert_eq!(b.host_config.as_ref().unwrap().cpu_shares, Some(512));
        // Reading the rewritten body back gives the same request: rebuilds are whole.
        let again = PlacementRequest::from_create(&b, None).unwrap();
        assert_eq!(again.constraints, r.constraints);
        assert_eq!(again.affinities, r.affinities);
    }

    #[test]
    fn reschedule_policy_moves_from_env_to_its_label() {
        let mut b = body(serde_json::json!({
            "Env": ["A=1", "reschedule:on-node-failure"],
            "Labels": {"keep": "me"}
        }));
        let r = PlacementRequest::from_create(&b, None).unwrap();
        assert_eq!(r.reschedule, Some(ReschedulePolicy::OnNodeFailure));
        r.rewrite_body(&mut b, "id1");
        assert_eq!(b.env.as_deref().unwrap(), ["A=1"]);
        let l = b.labels.as_ref().unwrap();
        assert_eq!(l[LABEL_RESCHEDULE], r#"["on-node-failure"]"#);
        assert_eq!(l["keep"], "me");
        // Read back from the label alone (a container rebuilt from the engine).
        let again = PlacementRequest::from_create(&b, None).unwrap();
        assert_eq!(again.reschedule, Some(ReschedulePolicy::OnNodeFailure));

        // The same policy in both places is one policy; none at all writes no label.
        let b = body(serde_json::json!({
            "Env": ["reschedule:off"],
            "Labels": {LABEL_RESCHEDULE: "[\"off\"]"}
        }));
        let r = PlacementRequest::from_create(&b, None).unwrap();
        assert_eq!(r.reschedule, Some(ReschedulePolicy::Off));
        let mut b = body(serde_json::json!({"Env": ["A=1"]}));
        let r = PlacementRequest::from_create(&b, None).unwrap();
        assert_eq!(r.reschedule, None);
        r.rewrite_body(&mut b, "id2");
        assert!(!b.labels.as_ref().unwrap().contains_key(LABEL_RESCHEDULE));
    }

    #[test]
    fn bad_reschedule_policies_are_a_400() {
        let cases = [
            (
                serde_json::json!({"Env": ["reschedule:always"]}),
                "invalid reschedule policy: always",
            ),
            (
                serde_json::json!({"Labels": {LABEL_RESCHEDULE: "[\"false\"]"}}),
                "invalid reschedule policy: false",
            ),
            (
                serde_json::json!({"Env": ["reschedule:off"], "Labels": {LABEL_RESCHEDULE: "[\"on-node-failure\"]"}}),
                "too many reschedule policies",
            ),
            (
                serde_json::json!({"Labels": {LABEL_RESCHEDULE: "on-node-failure"}}),
                "invalid label com.docker.swarm.reschedule-policies",
            ),
        ];
        for (json, msg) in cases {
            let e = PlacementRequest::from_create(&body(json.clone()), None).unwrap_err();
            assert_eq!(e.status(), 400, "{json}");
            assert!(e.to_string().contains(msg), "{json}: {e}");
        }
    }
}
