//! The decisions, as pure functions: what kind a request is (from its method and path),
//! whether a client may make it, and whether a typed create body keeps to its client's
//! rules. No actor, no I/O: the guard and the hijack gate feed them and act on the answer.

use super::policy::{capability, ClientRules, DefaultAccess, Policy, TENANT_LABEL};
use bollard_stubs::models::{ContainerCreateBody, HostConfigCgroupnsModeEnum, MountTypeEnum};
use shoal_actors::engine::split_api_version;
use std::fmt;

/// What a request does, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// GET or HEAD, but a WebSocket attach.
    Read,
    /// Exec create, start or resize; attach, hijacked or over WebSocket.
    Exec,
    /// `POST /containers/create`: the body is checked too.
    CreateContainer,
    /// Any other change.
    Write,
}

/// Classifies a request by method and path (with or without `/v1.xx`).
pub fn classify(method: &str, path: &str) -> RequestKind {
    let (_, path) = split_api_version(path);
    let path = path.split('?').next().unwrap_or(path);
    let read = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    let containers = path.strip_prefix("/containers/");
    if containers.is_some_and(|r| r.ends_with("/attach/ws") || r.ends_with("/attach")) {
        return RequestKind::Exec;
    }
    if read {
        return RequestKind::Read;
    }
    if path == "/containers/create" {
        return RequestKind::CreateContainer;
    }
    if containers.is_some_and(|r| r.ends_with("/exec"))
        || path
            .strip_prefix("/exec/")
            .is_some_and(|r| r.ends_with("/start") || r.ends_with("/resize"))
    {
        return RequestKind::Exec;
    }
    RequestKind::Write
}

/// The rule a refusal names: the policy key that would have allowed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// An identity not listed, under `default = "deny"` (or no identity at all).
    Default,
    ReadOnly,
    AllowExec,
    AllowPrivileged,
    AllowHostMounts,
    AllowHostNamespaces,
    AllowCapabilities,
    AllowDevices,
    /// `VolumesFrom` or a `container:` namespace of a container the client cannot see.
    Tenant,
}

impl Rule {
    /// The rule's name: in the 403's message and the metric's `rule` label.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Default => "default",
            Rule::ReadOnly => "read_only",
            Rule::AllowExec => "allow_exec",
            Rule::AllowPrivileged => "allow_privileged",
            Rule::AllowHostMounts => "allow_host_mounts",
            Rule::AllowHostNamespaces => "allow_host_namespaces",
            Rule::AllowCapabilities => "allow_capabilities",
            Rule::AllowDevices => "allow_devices",
            Rule::Tenant => "tenant",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an allowed request carries on: the client's rules, or none when it is unrestricted
/// (not listed under `default = "allow"`).
#[derive(Debug, Clone, Copy)]
pub enum Access<'p> {
    Unrestricted,
    Client(&'p ClientRules),
}

impl<'p> Access<'p> {
    pub fn tenant(&self) -> Option<&'p str> {
        match self {
            Access::Unrestricted => None,
            Access::Client(r) => r.tenant.as_deref(),
        }
    }
}

/// Whether the client `cn` (`None`: no certificate) may make a request of `kind`; the
/// create body is checked apart, by [`check_create`].
pub fn decide<'p>(
    policy: &'p Policy,
    cn: Option<&str>,
    kind: RequestKind,
) -> Result<Access<'p>, Rule> {
    let Some(rules) = cn.and_then(|cn| policy.client(cn)) else {
        return match policy.default {
            DefaultAccess::Allow => Ok(Access::Unrestricted),
            DefaultAccess::Deny => Err(Rule::Default),
        };
    };
    if rules.read_only && kind != RequestKind::Read {
        return Err(Rule::ReadOnly);
    }
    if kind == RequestKind::Exec && !rules.allow_exec {
        return Err(Rule::AllowExec);
    }
    Ok(Access::Client(rules))
}

/// Whether an object with these labels is the tenant's to see: a tenant sees its own
/// objects only; a client without a tenant sees everything.
pub fn visible<'a>(tenant: Option<&str>, label: impl FnOnce(&str) -> Option<&'a str>) -> bool {
    match tenant {
        None => true,
        Some(t) => label(TENANT_LABEL) == Some(t),
    }
}

/// Whether `source` is under one of `allowed` (compared by path component, after `..` is
/// refused outright).
fn mount_allowed(source: &str, allowed: &[String]) -> bool {
    if source.split('/').any(|c| c == "..") {
        return false;
    }
    let source = source.trim_end_matches('/');
    allowed.iter().any(|prefix| {
        let prefix = prefix.trim_end_matches('/');
        prefix.is_empty()
            || source == prefix
            || source
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Checks a build's `networkmode` query: a build's `RUN` steps in the host's network
/// namespace need `allow_host_namespaces`, as a container's would.
pub fn check_build(rules: &ClientRules, network_mode: Option<&str>) -> Result<(), Rule> {
    if network_mode == Some("host") && !rules.allow_host_namespaces {
        return Err(Rule::AllowHostNamespaces);
    }
    Ok(())
}

/// An object a create names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// `VolumesFrom`, `container:<name>` namespaces.
    Container,
    /// A named volume in `Binds` or a `Mounts` entry of type volume.
    Volume,
}

/// Checks a container create against the client's rules. `visible` answers whether the
/// client may use an object the create names (another tenant's is refused).
pub fn check_create(
    rules: &ClientRules,
    body: &ContainerCreateBody,
    visible: impl Fn(Named, &str) -> bool,
) -> Result<(), Rule> {
    let Some(host) = body.host_config.as_ref() else {
        return Ok(());
    };
    let unconfined = host.security_opt.iter().flatten().any(|o| {
        let o = o.replace('=', ":");
        o == "seccomp:unconfined" || o == "apparmor:unconfined" || o == "systempaths:unconfined"
    });
    if (host.privileged == Some(true) || unconfined) && !rules.allow_privileged {
        return Err(Rule::AllowPrivileged);
    }
    // A bind's source is a host path when it is absolute; otherwise a named volume.
    let bind_sources = host
        .binds
        .iter()
        .flatten()
        .filter_map(|b| b.split(':').next())
        .filter(|s| s.starts_with('/'))
        .chain(
            host.mounts
                .iter()
                .flatten()
                .filter(|m| m.typ == Some(MountTypeEnum::BIND))
                .map(|m| m.source.as_deref().unwrap_or("")),
        );
    for source in bind_sources {
        if !mount_allowed(source, &rules.allow_host_mounts) {
            return Err(Rule::AllowHostMounts);
        }
    }
    let modes = [
        host.network_mode.as_deref(),
        host.pid_mode.as_deref(),
        host.ipc_mode.as_deref(),
        host.uts_mode.as_deref(),
        host.userns_mode.as_deref(),
    ];
    let host_mode = modes.iter().flatten().any(|m| *m == "host")
        || host.cgroupns_mode == Some(HostConfigCgroupnsModeEnum::HOST);
    if host_mode && !rules.allow_host_namespaces {
        return Err(Rule::AllowHostNamespaces);
    }
    let allowed: Vec<String> = rules
        .allow_capabilities
        .iter()
        .map(|c| capability(c))
        .collect();
    for cap in host.cap_add.iter().flatten() {
        let cap = capability(cap);
        if !allowed.contains(&cap) && !allowed.iter().any(|a| a == "ALL") {
            return Err(Rule::AllowCapabilities);
        }
    }
    let devices = host.devices.as_ref().is_some_and(|d| !d.is_empty())
        || host.device_requests.as_ref().is_some_and(|d| !d.is_empty())
        || host
            .device_cgroup_rules
            .as_ref()
            .is_some_and(|d| !d.is_empty());
    if devices && !rules.allow_devices {
        return Err(Rule::AllowDevices);
    }
    // Containers named by this one: another tenant's must stay out of reach.
    let volumes_from = host
        .volumes_from
        .iter()
        .flatten()
        .map(|v| v.split(':').next().unwrap_or(""));
    let joined = modes
        .iter()
        .flatten()
        .filter_map(|m| m.strip_prefix("container:"));
    for name in volumes_from.chain(joined) {
        if !visible(Named::Container, name) {
            return Err(Rule::Tenant);
        }
    }
    let named_volumes = host
        .binds
        .iter()
        .flatten()
        .filter_map(|b| b.split(':').next())
        .filter(|s| !s.is_empty() && !s.starts_with('/'))
        .chain(
            host.mounts
                .iter()
                .flatten()
                .filter(|m| m.typ == Some(MountTypeEnum::VOLUME))
                .filter_map(|m| m.source.as_deref())
                .filter(|s| !s.is_empty()),
        );
    for name in named_volumes {
        if !visible(Named::Volume, name) {
            return Err(Rule::Tenant);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_stubs::models::{DeviceMapping, HostConfig, Mount};

    fn policy() -> Policy {
        Policy::parse(
            r#"
default = "deny"
[clients.auditor]
read_only = true
[clients.team-a]
tenant = "a"
allow_exec = true
allow_host_mounts = ["/srv/team-a"]
allow_capabilities = ["cap_net_admin"]
[clients.ops]
allow_privileged = true
allow_host_namespaces = true
allow_devices = true
allow_capabilities = ["ALL"]
allow_host_mounts = ["/"]
"#,
        )
        .unwrap()
    }

    fn body(host: HostConfig) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some("busybox".into()),
            host_config: Some(host),
            ..Default::default()
        }
    }

    fn check(cn: &str, host: HostConfig) -> Result<(), Rule> {
        let p = policy();
        let rules = p.client(cn).unwrap().clone();
        check_create(&rules, &body(host), |_, name| {
            name == "mine" || name == "named" || name == "data"
        })
    }

    #[test]
    fn requests_are_classified_by_method_and_path() {
        use RequestKind::*;
        for (m, p, k) in [
            ("GET", "/v1.41/containers/json", Read),
            ("HEAD", "/_ping", Read),
            ("GET", "/containers/web/logs?follow=1", Read),
            ("GET", "/exec/abc/json", Read),
            ("GET", "/v1.41/containers/web/attach/ws", Exec),
            ("POST", "/containers/web/attach?stream=1", Exec),
            ("POST", "/v1.41/containers/web/exec", Exec),
            ("POST", "/exec/abc/start", Exec),
            ("POST", "/exec/abc/resize", Exec),
            ("POST", "/v1.41/containers/create?name=x", CreateContainer),
            ("POST", "/containers/web/start", Write),
            ("DELETE", "/containers/web", Write),
            ("POST", "/networks/create", Write),
            ("POST", "/images/create", Write),
            ("POST", "/auth", Write),
        ] {
            assert_eq!(classify(m, p), k, "{m} {p}");
        }
    }

    #[test]
    fn read_only_gets_reads_only() {
        let p = policy();
        assert!(decide(&p, Some("auditor"), RequestKind::Read).is_ok());
        for k in [
            RequestKind::Write,
            RequestKind::CreateContainer,
            RequestKind::Exec,
        ] {
            assert_eq!(decide(&p, Some("auditor"), k).unwrap_err(), Rule::ReadOnly);
        }
    }

    #[test]
    fn exec_needs_allow_exec() {
        let mut p = policy();
        assert!(decide(&p, Some("team-a"), RequestKind::Exec).is_ok());
        assert_eq!(
            decide(&p, Some("ops"), RequestKind::Exec).unwrap_err(),
            Rule::AllowExec
        );
        p.clients.get_mut("team-a").unwrap().allow_exec = false;
        assert_eq!(
            decide(&p, Some("team-a"), RequestKind::Exec).unwrap_err(),
            Rule::AllowExec
        );
    }

    #[test]
    fn unlisted_clients_get_the_default() {
        let mut p = policy();
        for cn in [Some("stranger"), None] {
            assert_eq!(
                decide(&p, cn, RequestKind::Read).unwrap_err(),
                Rule::Default
            );
        }
        p.default = DefaultAccess::Allow;
        let access = decide(&p, Some("stranger"), RequestKind::Exec).unwrap();
        assert!(matches!(access, Access::Unrestricted));
        assert_eq!(access.tenant(), None);
        let a = decide(&p, Some("team-a"), RequestKind::Write).unwrap();
        assert_eq!(a.tenant(), Some("a"));
    }

    #[test]
    fn a_plain_create_passes() {
        assert!(check("team-a", HostConfig::default()).is_ok());
        let p = policy();
        let rules = p.client("team-a").unwrap();
        let bare = ContainerCreateBody::default();
        assert!(check_create(rules, &bare, |_, _| false).is_ok());
    }

    #[test]
    fn privileged_and_unconfined_need_allow_privileged() {
        let privileged = HostConfig {
            privileged: Some(true),
            ..Default::default()
        };
        assert_eq!(
            check("team-a", privileged.clone()),
            Err(Rule::AllowPrivileged)
        );
        assert!(check("ops", privileged).is_ok());
        for opt in ["seccomp=unconfined", "apparmor:unconfined"] {
            let h = HostConfig {
                security_opt: Some(vec![opt.into()]),
                ..Default::default()
            };
            assert_eq!(check("team-a", h), Err(Rule::AllowPrivileged), "{opt}");
        }
        let fine = HostConfig {
            security_opt: Some(vec!["no-new-privileges".into()]),
            ..Default::default()
        };
        assert!(check("team-a", fine).is_ok());
    }

    #[test]
    fn host_mounts_are_checked_by_path_component() {
        let binds = |b: &str| HostConfig {
            binds: Some(vec![b.into()]),
            ..Default::default()
        };
        for ok in [
            "/srv/team-a:/data",
            "/srv/team-a/x:/data:ro",
            "/srv/team-a/:/d",
            "named:/data",
        ] {
            assert!(check("team-a", binds(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "/:/host",
            "/srv/team-ab:/d",
            "/srv/team-a/../team-b:/d",
            "/etc:/etc:ro",
        ] {
            assert_eq!(
                check("team-a", binds(bad)),
                Err(Rule::AllowHostMounts),
                "{bad}"
            );
        }
        assert!(check("ops", binds("/:/host")).is_ok());
        let mount = |typ, source: &str| HostConfig {
            mounts: Some(vec![Mount {
                typ: Some(typ),
                source: Some(source.into()),
                target: Some("/x".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            check("team-a", mount(MountTypeEnum::BIND, "/")),
            Err(Rule::AllowHostMounts)
        );
        assert!(check("team-a", mount(MountTypeEnum::BIND, "/srv/team-a/d")).is_ok());
        assert!(check("team-a", mount(MountTypeEnum::VOLUME, "data")).is_ok());
    }

    #[test]
    fn host_namespaces_need_allow_host_namespaces() {
        let cases = [
            HostConfig {
                network_mode: Some("host".into()),
                ..Default::default()
            },
            HostConfig {
                pid_mode: Some("host".into()),
                ..Default::default()
            },
            HostConfig {
                ipc_mode: Some("host".into()),
                ..Default::default()
            },
            HostConfig {
                uts_mode: Some("host".into()),
                ..Default::default()
            },
            HostConfig {
                userns_mode: Some("host".into()),
                ..Default::default()
            },
            HostConfig {
                cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
                ..Default::default()
            },
        ];
        for h in cases {
            assert_eq!(
                check("team-a", h.clone()),
                Err(Rule::AllowHostNamespaces),
                "{h:?}"
            );
            assert!(check("ops", h).is_ok());
        }
        let bridge = HostConfig {
            network_mode: Some("bridge".into()),
            ..Default::default()
        };
        assert!(check("team-a", bridge).is_ok());
    }

    #[test]
    fn capabilities_need_listing() {
        let caps = |c: &str| HostConfig {
            cap_add: Some(vec![c.into()]),
            ..Default::default()
        };
        assert!(check("team-a", caps("NET_ADMIN")).is_ok());
        assert!(check("team-a", caps("CAP_NET_ADMIN")).is_ok());
        for bad in ["SYS_ADMIN", "ALL"] {
            assert_eq!(
                check("team-a", caps(bad)),
                Err(Rule::AllowCapabilities),
                "{bad}"
            );
        }
        assert!(check("ops", caps("SYS_ADMIN")).is_ok());
    }

    #[test]
    fn devices_need_allow_devices() {
        let h = HostConfig {
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/fuse".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(check("team-a", h.clone()), Err(Rule::AllowDevices));
        assert!(check("ops", h).is_ok());
        let rules = HostConfig {
            device_cgroup_rules: Some(vec!["c 1:3 mr".into()]),
            ..Default::default()
        };
        assert_eq!(check("team-a", rules), Err(Rule::AllowDevices));
    }

    #[test]
    fn containers_named_by_a_create_must_be_visible() {
        let from = |v: &str| HostConfig {
            volumes_from: Some(vec![v.into()]),
            ..Default::default()
        };
        assert!(check("team-a", from("mine:ro")).is_ok());
        assert_eq!(check("team-a", from("theirs")), Err(Rule::Tenant));
        let joined = HostConfig {
            network_mode: Some("container:theirs".into()),
            ..Default::default()
        };
        assert_eq!(check("team-a", joined), Err(Rule::Tenant));
        let own = HostConfig {
            pid_mode: Some("container:mine".into()),
            ..Default::default()
        };
        assert!(check("team-a", own).is_ok());
        let theirs = HostConfig {
            binds: Some(vec!["their-volume:/d".into()]),
            ..Default::default()
        };
        assert_eq!(check("team-a", theirs), Err(Rule::Tenant));
        let mounted = HostConfig {
            mounts: Some(vec![Mount {
                typ: Some(MountTypeEnum::VOLUME),
                source: Some("their-volume".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(check("team-a", mounted), Err(Rule::Tenant));
    }

    #[test]
    fn a_build_in_the_host_network_needs_allow_host_namespaces() {
        let p = policy();
        let a = p.client("team-a").unwrap();
        assert_eq!(check_build(a, Some("host")), Err(Rule::AllowHostNamespaces));
        assert!(check_build(a, Some("bridge")).is_ok());
        assert!(check_build(a, None).is_ok());
        assert!(check_build(p.client("ops").unwrap(), Some("host")).is_ok());
    }

    #[test]
    fn visibility_follows_the_tenant_label() {
        let labelled = |v: &'static str| move |k: &str| (k == TENANT_LABEL).then_some(v);
        assert!(visible(Some("a"), labelled("a")));
        assert!(!visible(Some("a"), labelled("b")));
        assert!(!visible(Some("a"), |_| None));
        assert!(visible(None, labelled("b")));
        assert!(visible(None, |_| None));
    }
}
