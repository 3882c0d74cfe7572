//! The policy file of `--authz-policy`: read with `serde` + `toml` into a typed `Policy`,
//! then checked as a whole, so every mistake is found at start (or at a reload) and named
//! by its key in one line, never at the request that would have needed it.

use serde::Deserialize;
use shoal_actors::scheduler::{Expr, ExprKind};
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;

/// The label that marks an object as a tenant's.
pub const TENANT_LABEL: &str = "com.shoal.tenant";

/// What a client not listed under `[clients]` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAccess {
    /// Everything, as without a policy.
    Allow,
    /// Nothing: every request is a 403.
    Deny,
}

/// The rules of one client (one certificate CN). Every `allow_*` is `false` / empty unless
/// written: a listed client may only do what its entry grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRules {
    /// GET and HEAD only (and no WebSocket attach, which is a GET).
    #[serde(default)]
    pub read_only: bool,
    /// Sees and touches only objects labelled `com.shoal.tenant=<tenant>`; its creates get
    /// the label forced.
    #[serde(default)]
    pub tenant: Option<String>,
    /// `HostConfig.Privileged`, and `SecurityOpt` turning seccomp or AppArmor off.
    #[serde(default)]
    pub allow_privileged: bool,
    /// Bind sources allowed, as path prefixes compared by component (`/srv/a` allows
    /// `/srv/a/x`, not `/srv/ab`).
    #[serde(default)]
    pub allow_host_mounts: Vec<String>,
    /// `NetworkMode`, `PidMode`, `IpcMode`, `UTSMode`, `UsernsMode`, `CgroupnsMode` = host.
    #[serde(default)]
    pub allow_host_namespaces: bool,
    /// `CapAdd` entries allowed (`SYS_ADMIN` or `CAP_SYS_ADMIN`; `ALL` only if listed).
    #[serde(default)]
    pub allow_capabilities: Vec<String>,
    /// `Devices`, `DeviceRequests` (GPUs), `DeviceCgroupRules`.
    #[serde(default)]
    pub allow_devices: bool,
    /// Exec (create and start) and attach, hijacked or over WebSocket.
    #[serde(default)]
    pub allow_exec: bool,
    /// Placement expressions (`pool==batch`) forced on its container creates.
    #[serde(default)]
    pub constraints: Vec<String>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub default: DefaultAccess,
    #[serde(default)]
    pub clients: BTreeMap<String, ClientRules>,
}

/// A policy file Shoal will not run with; one line naming the key.
#[derive(Debug, Error, PartialEq)]
pub enum PolicyError {
    #[error("--authz-policy {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("--authz-policy {path}: {key}: {reason}")]
    Invalid {
        path: String,
        key: String,
        reason: String,
    },
}

impl Policy {
    /// Reads and checks the file at `path`, at start (a reload reads it with `tokio::fs`:
    /// [`Policy::load_async`]).
    #[allow(
        clippy::disallowed_methods,
        reason = "start-up: `main` checks the configuration before the runtime starts"
    )]
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        Policy::checked(path, std::fs::read_to_string(path))
    }

    /// [`Policy::load`] on a worker (a SIGHUP reload).
    pub async fn load_async(path: &Path) -> Result<Policy, PolicyError> {
        Policy::checked(path, tokio::fs::read_to_string(path).await)
    }

    fn checked(path: &Path, text: std::io::Result<String>) -> Result<Policy, PolicyError> {
        let shown = path.display().to_string();
        let text = text.map_err(|e| PolicyError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Policy::parse(&text).map_err(|(key, reason)| PolicyError::Invalid {
            path: shown,
            key,
            reason,
        })
    }

    /// Parses and checks a policy; a mistake is `(key, reason)`, both one line.
    pub fn parse(text: &str) -> Result<Policy, (String, String)> {
        let policy: Policy = toml::from_str(text).map_err(|e| {
            let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_default();
            let reason = e.message().replace('\n', " ");
            (if key.is_empty() { "file".into() } else { key }, reason)
        })?;
        policy.check()?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), (String, String)> {
        for (cn, rules) in &self.clients {
            let key = |k: &str| format!("clients.{cn}.{k}");
            if let Some(t) = &rules.tenant {
                let ok = !t.is_empty()
                    && t.len() <= 128
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if !ok {
                    return Err((
                        key("tenant"),
                        format!("{t:?}: use 1 to 128 of [A-Za-z0-9._-]"),
                    ));
                }
            }
            for m in &rules.allow_host_mounts {
                if !m.starts_with('/') || m.split('/').any(|c| c == "..") {
                    return Err((
                        key("allow_host_mounts"),
                        format!("{m:?} is not an absolute path without `..`"),
                    ));
                }
            }
            for c in &rules.allow_capabilities {
                let bare = capability(c);
                if bare.is_empty() || !bare.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    return Err((
                        key("allow_capabilities"),
                        format!("{c:?} is not a capability name (SYS_ADMIN, NET_RAW, ALL)"),
                    ));
                }
            }
            for c in &rules.constraints {
                Expr::parse(ExprKind::Constraint, c)
                    .map_err(|e| (key("constraints"), format!("{c:?}: {e}")))?;
            }
        }
        Ok(())
    }

    /// The rules of the client named `cn`, if listed.
    pub fn client(&self, cn: &str) -> Option<&ClientRules> {
        self.clients.get(cn)
    }
}

/// A capability as Docker compares them: upper case, without `CAP_`.
pub fn capability(name: &str) -> String {
    let up = name.trim().to_ascii_uppercase();
    up.strip_prefix("CAP_").map(str::to_string).unwrap_or(up)
}

/// The dotted key written at byte `at` of a TOML text: the last table header before it and
/// the key on its line (`clients.team-a.read_only`).
fn key_at(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let name = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    match (table, name) {
        (Some(t), Some(n)) => format!("{t}.{n}"),
        (None, Some(n)) => n,
        (Some(t), None) => t,
        (None, None) => String::new(),
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: their own thread, no runtime to stall"
)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
default = "deny"

[clients.auditor]
read_only = true

[clients.team-a]
tenant = "a"
allow_host_mounts = ["/srv/team-a"]
allow_capabilities = ["NET_ADMIN"]
allow_exec = true
constraints = ["pool==batch"]
"#;

    #[test]
    fn the_example_reads_with_false_defaults() {
        let p = Policy::parse(EXAMPLE).unwrap();
        assert_eq!(p.default, DefaultAccess::Deny);
        let a = p.client("team-a").unwrap();
        assert_eq!(a.tenant.as_deref(), Some("a"));
        assert!(a.allow_exec && !a.allow_privileged && !a.allow_devices && !a.read_only);
        assert_eq!(a.constraints, ["pool==batch"]);
        let auditor = p.client("auditor").unwrap();
        assert!(auditor.read_only && !auditor.allow_exec && auditor.tenant.is_none());
        assert!(p.client("nobody").is_none());
    }

    #[test]
    fn mistakes_name_their_key_in_one_line() {
        let cases = [
            ("default = \"maybe\"", "default"),
            ("[clients.x]\nread_only = true", "default"),
            (
                "default = \"deny\"\n[clients.x]\nread_only = \"yes\"",
                "clients.x.read_only",
            ),
            (
                "default = \"deny\"\n[clients.x]\nalow_exec = true",
                "alow_exec",
            ),
            (
                "default = \"deny\"\n[clients.x]\nallow_host_mounts = [\"srv\"]",
                "clients.x.allow_host_mounts",
            ),
            (
                "default = \"deny\"\n[clients.x]\nallow_host_mounts = [\"/srv/../etc\"]",
                "clients.x.allow_host_mounts",
            ),
            (
                "default = \"deny\"\n[clients.x]\ntenant = \"a b\"",
                "clients.x.tenant",
            ),
            (
                "default = \"deny\"\n[clients.x]\nconstraints = [\"pool\"]",
                "clients.x.constraints",
            ),
            (
                "default = \"deny\"\n[clients.x]\nallow_capabilities = [\"sys admin\"]",
                "clients.x.allow_capabilities",
            ),
            ("default = \"deny\"\nextra = 1", "extra"),
        ];
        for (text, key) in cases {
            let (k, reason) = Policy::parse(text).unwrap_err();
            let line = format!("{k}: {reason}");
            assert!(line.contains(key), "{text:?} -> {line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "default = \"deny\"\n[clients.x]\nread_only = 1\n").unwrap();
        let e = Policy::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("p.toml") && e.contains("clients.x.read_only"),
            "{e}"
        );
        let e = Policy::load(&dir.path().join("none.toml")).unwrap_err();
        assert!(matches!(e, PolicyError::Read { .. }));
    }

    #[test]
    fn capabilities_compare_as_docker_does() {
        assert_eq!(capability("cap_sys_admin"), "SYS_ADMIN");
        assert_eq!(capability("NET_RAW"), "NET_RAW");
    }
}
