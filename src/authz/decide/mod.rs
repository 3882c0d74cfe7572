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

/// The exec a path (without `/v1.xx`) names: `/exec/{id}/json`, `start` or `resize`.
pub fn exec_of(path: &str) -> Option<&str> {
    let (id, action) = path.strip_prefix("/exec/")?.split_once('/')?;
    (!id.is_empty() && matches!(action, "json" | "start" | "resize")).then_some(id)
}

/// The container reference of an exec create, `POST /containers/{reference}/exec`.
pub fn exec_create_of<'a>(method: &str, path: &'a str) -> Option<&'a str> {
    if !method.eq_ignore_ascii_case("POST") {
        return None;
    }
    let reference = path.strip_prefix("/containers/")?.strip_suffix("/exec")?;
    (!reference.is_empty()).then_some(reference)
}

/// Whether a client may see an exec: one with a tenant, only an exec created through Shoal
/// in a container it sees (`container`: that container's visibility to it, `None` when
/// Shoal recorded no container for the exec, or the container is gone); one without a
/// tenant, every exec.
pub fn exec_visible(tenant: Option<&str>, container: Option<bool>) -> bool {
    tenant.is_none() || container == Some(true)
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
mod tests;
