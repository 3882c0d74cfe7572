//! The policy's decisions, without actors or I/O: request kinds, create rules, visibility.

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

#[test]
fn an_exec_is_its_containers_tenants() {
    assert_eq!(exec_of("/exec/abc/json"), Some("abc"));
    assert_eq!(exec_of("/exec/abc/start"), Some("abc"));
    assert_eq!(exec_of("/exec/abc/resize"), Some("abc"));
    assert_eq!(exec_of("/exec/abc"), None);
    assert_eq!(exec_of("/exec//json"), None);
    assert_eq!(exec_of("/execs/abc/json"), None);
    assert_eq!(exec_create_of("POST", "/containers/web/exec"), Some("web"));
    assert_eq!(
        exec_create_of("POST", "/containers/node-1/web/exec"),
        Some("node-1/web")
    );
    assert_eq!(exec_create_of("GET", "/containers/web/exec"), None);
    assert_eq!(exec_create_of("POST", "/containers//exec"), None);
    assert_eq!(exec_create_of("POST", "/exec/abc/start"), None);
    // A tenant sees an exec only in a container it sees; unknown ones are hidden.
    assert!(exec_visible(Some("a"), Some(true)));
    assert!(!exec_visible(Some("a"), Some(false)));
    assert!(!exec_visible(Some("a"), None));
    // A client without a tenant sees every exec.
    assert!(exec_visible(None, None));
    assert!(exec_visible(None, Some(false)));
}
