//! The placement request read from create bodies, and the engine body rewrite.

use super::*;
use bollard_stubs::models::{EndpointSettings, HostConfig, Mount, NetworkingConfig, PortBinding};
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
