//! The command line read into each part's config: flags, discovery, refusals.

use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;

fn args(line: &[&str]) -> ManageArgs {
    let mut full = vec!["shoal", "manage"];
    full.extend_from_slice(line);
    match Cli::try_parse_from(full).unwrap().command {
        Command::Manage(a) => *a,
        other => panic!("not manage: {other:?}"),
    }
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = ManageConfig::from_args_with_local(&args(&["nodes://h:1"]), Path::new("/nonexistent"))
        .unwrap();
    assert_eq!(c.listen, ListenAddr::Tcp("127.0.0.1:2375".into()));
    assert_eq!(
        c.cluster.node.refresh_min,
        std::time::Duration::from_secs(30)
    );
    assert_eq!(
        c.cluster.node.refresh_max,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(c.cluster.node.failure_retry, 3);
    assert_eq!(c.api.cors_header, None);
}

#[test]
fn cors_header_is_dockerds_flag() {
    let none = Path::new("/nonexistent");
    let c = |line: &[&str]| ManageConfig::from_args_with_local(&args(line), none).unwrap();
    let on = c(&["--api-cors-header", "http://ui.local", "nodes://h:1"]);
    assert_eq!(on.api.cors_header.as_deref(), Some("http://ui.local"));
    assert_eq!(
        c(&["--api-cors-header=", "nodes://h:1"]).api.cors_header,
        None
    );
}

#[test]
fn no_discovery_uses_the_local_engine_or_says_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("docker.sock");
    std::fs::write(&sock, b"").unwrap();
    let c = ManageConfig::from_args_with_local(&args(&[]), &sock).unwrap();
    assert_eq!(c.engines, EngineSource::Discovery(Discovery::Unix(sock)));
    let e = ManageConfig::from_args_with_local(&args(&[]), Path::new("/nonexistent")).unwrap_err();
    assert!(e.to_string().contains("shoal manage nodes://"), "{e}");
}

/// A CA, and a certificate and key it signed, as files in `dir` (paths as flags take them).
fn pki(dir: &Path) -> [String; 3] {
    crate::tls::test_pki::ca_and_leaf(dir).map(|p| p.display().to_string())
}

#[test]
fn an_authz_policy_needs_tlsverify_and_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = pki(dir.path());
    let good = dir.path().join("policy.toml");
    std::fs::write(
        &good,
        "default = \"deny\"\n[clients.ci]\nread_only = true\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "default = \"deny\"\n[clients.ci]\nallow_exec = \"yes\"\n",
    )
    .unwrap();
    let none = Path::new("/nonexistent");
    let with = |policy: &Path, verify: bool| {
        let policy = policy.display().to_string();
        let mut line = vec!["--authz-policy", policy.as_str()];
        if verify {
            line.extend([
                "--tlsverify",
                "--tlscacert",
                &ca,
                "--tlscert",
                &cert,
                "--tlskey",
                &key,
            ]);
        }
        line.push("nodes://10.0.0.1:2376");
        ManageConfig::from_args_with_local(&args(&line), none)
    };
    let config = with(&good, true).unwrap();
    let authz = config.api.authz.unwrap();
    assert_eq!(authz.path, good);
    assert!(authz.policy.client("ci").unwrap().read_only);
    let e = with(&good, false).unwrap_err();
    assert!(matches!(e, ConfigError::AuthzWithoutTls), "{e}");
    let e = with(&bad, true).unwrap_err().to_string();
    assert!(
        e.contains("clients.ci.allow_exec") && !e.contains('\n'),
        "{e}"
    );
    assert!(with(&dir.path().join("missing.toml"), true).is_err());
    assert!(with_tls_none_is_plain(none));
}

/// Without the flag there is no policy.
fn with_tls_none_is_plain(none: &Path) -> bool {
    ManageConfig::from_args_with_local(&args(&["nodes://h:1"]), none)
        .unwrap()
        .api
        .authz
        .is_none()
}

#[test]
fn tls_flags_serve_clients_and_engines() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = pki(dir.path());
    let none = Path::new("/nonexistent");
    let load = |line: &[&str]| ManageConfig::from_args_with_local(&args(line), none);
    let files = [
        "--tlscacert",
        ca.as_str(),
        "--tlscert",
        cert.as_str(),
        "--tlskey",
        key.as_str(),
    ];
    let with = |extra: &'static str| -> Vec<String> {
        let mut line = vec![extra.to_string()];
        line.extend(files.iter().map(|f| f.to_string()));
        line.push("nodes://10.0.0.1:2376".into());
        line
    };
    let load_owned = |line: Vec<String>| {
        let line: Vec<&str> = line.iter().map(String::as_str).collect();
        ManageConfig::from_args_with_local(&args(&line), none)
    };
    let plain = load(&["nodes://h:1"]).unwrap();
    assert!(plain.tls.api.is_none() && plain.tls.engines.is_none());
    let verify = load_owned(with("--tlsverify")).unwrap();
    assert!(verify.tls.verifies_clients());
    assert!(verify.tls.engines.is_some(), "the same files serve engines");
    let tls = load_owned(with("--tls")).unwrap();
    assert_eq!(
        tls.tls.api.as_ref().map(|t| t.auth),
        Some(crate::tls::ClientAuth::Optional)
    );
    assert!(!tls.tls.verifies_clients());
    // Engines of their own CA only.
    let engines_only = load(&[
        "--engine-tlscacert",
        &ca,
        "--engine-tlscert",
        &cert,
        "--engine-tlskey",
        &key,
        "nodes://10.0.0.1:2376",
    ])
    .unwrap();
    assert!(engines_only.tls.api.is_none() && engines_only.tls.engines.is_some());
    // Simulated engines stay plain.
    let sim = load(&[
        "--tlsverify",
        "--tlscacert",
        &ca,
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "--sim",
        "2",
    ])
    .unwrap();
    assert!(sim.tls.engines.is_none() && sim.tls.verifies_clients());
    // A unix-socket engine needs no CA to be checked against.
    let local = load(&[
        "--tls",
        "--tlscert",
        &cert,
        "--tlskey",
        &key,
        "unix:///var/run/docker.sock",
    ])
    .unwrap();
    assert!(local.tls.api.is_some() && local.tls.engines.is_none());
    for bad in [
        vec![
            "--tlsverify",
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
            "nodes://h:1",
        ],
        vec!["--tls", "--tlscacert", &ca, "nodes://h:1"],
        vec![
            "--tlscacert",
            &ca,
            "--tlscert",
            &cert,
            "--tlskey",
            &key,
            "nodes://h:1",
        ],
        vec!["--tls", "--tlscert", &cert, "--tlskey", &key, "nodes://h:1"],
        vec![
            "--tlsverify",
            "--tlscacert",
            &ca,
            "--tlscert",
            &key,
            "--tlskey",
            &key,
            "nodes://h:1",
        ],
    ] {
        let e = load(&bad).unwrap_err();
        assert!(!e.to_string().contains('\n'), "{bad:?}: {e}");
    }
    assert!(Cli::try_parse_from(["shoal", "manage", "--engine-tlscert", "c.pem"]).is_err());
}

#[test]
fn bad_flags_are_errors() {
    let none = Path::new("/nonexistent");
    assert!(
        ManageConfig::from_args_with_local(&args(&["-H", "nowhere", "nodes://h:1"]), none).is_err()
    );
    assert!(ManageConfig::from_args_with_local(&args(&["--sim", "0"]), none).is_err());
    assert!(ManageConfig::from_args_with_local(
        &args(&["--engine-refresh-min-interval", "2m", "nodes://h:1"]),
        none
    )
    .is_err());
    assert!(Cli::try_parse_from(["shoal", "manage", "--engine-failure-retry", "0"]).is_err());
    assert!(
        Cli::try_parse_from(["shoal", "manage", "--engine-refresh-min-interval", "soon"]).is_err()
    );
    for bad in [
        vec!["--strategy", "fastest", "nodes://h:1"],
        vec!["--filter", "colour", "nodes://h:1"],
        vec!["--cluster-opt", "swarm.overcommit=lots", "nodes://h:1"],
        vec!["--cluster-opt", "swarm.unknown=1", "nodes://h:1"],
    ] {
        assert!(
            ManageConfig::from_args_with_local(&args(&bad), none).is_err(),
            "{bad:?}"
        );
    }
    let ok = ManageConfig::from_args_with_local(
        &args(&[
            "--strategy",
            "binpack",
            "--filter",
            "health",
            "--filter",
            "port",
            "--cluster-opt",
            "swarm.createretry=2",
            "nodes://h:1",
        ]),
        none,
    )
    .unwrap();
    assert_eq!(ok.placement.create_retry, 2);
    let default = PlacementConfig::from_args("spread", &[], &[]).unwrap();
    assert_eq!(default.create_retry, 2);
    let none = PlacementConfig::from_args("spread", &[], &["swarm.createretry=0".into()]);
    assert_eq!(none.unwrap().create_retry, 0);
    assert_eq!(ok.placement.scheduler.filters().len(), 2);
    assert_eq!(
        ListenAddr::parse("unix:///run/shoal.sock").unwrap(),
        ListenAddr::Unix("/run/shoal.sock".into())
    );
}

#[test]
fn reschedule_grace_is_a_duration_30s_by_default() {
    let none = Path::new("/nonexistent");
    let c = |line: &[&str]| ManageConfig::from_args_with_local(&args(line), none);
    assert_eq!(
        c(&["nodes://h:1"]).unwrap().placement.reschedule_grace,
        std::time::Duration::from_secs(30)
    );
    let short = c(&["--reschedule-grace", "1500ms", "nodes://h:1"]).unwrap();
    assert_eq!(
        short.placement.reschedule_grace,
        std::time::Duration::from_millis(1500)
    );
    let bad = Cli::try_parse_from([
        "shoal",
        "manage",
        "--reschedule-grace",
        "soon",
        "nodes://h:1",
    ]);
    assert!(bad.is_err());
}

#[test]
fn replication_needs_etcd_and_its_flags_need_it() {
    let none = Path::new("/nonexistent");
    let c = |line: &[&str]| ManageConfig::from_args_with_local(&args(line), none);
    let on = c(&[
        "--replication",
        "--advertise",
        "10.0.0.1:2375",
        "--replication-ttl",
        "5s",
        "etcd://e:2379/x",
    ])
    .unwrap();
    assert_eq!(
        on.replication,
        Some(crate::replication::ReplicationConfig {
            advertise: Some("10.0.0.1:2375".into()),
            ttl: std::time::Duration::from_secs(5),
        })
    );
    let default = c(&["--replication", "etcd://e:2379"]).unwrap();
    assert_eq!(
        default.replication.unwrap().ttl,
        crate::replication::DEFAULT_TTL
    );
    assert_eq!(c(&["etcd://e:2379"]).unwrap().replication, None);
    assert!(matches!(
        c(&["--replication", "nodes://h:1"]),
        Err(ConfigError::ReplicationWithoutEtcd)
    ));
    assert!(matches!(
        c(&["--advertise", "10.0.0.1:2375", "etcd://e:2379"]),
        Err(ConfigError::ReplicationFlags)
    ));
    assert!(matches!(
        c(&["--replication", "--replication-ttl", "1s", "etcd://e:2379"]),
        Err(ConfigError::ReplicationTtl)
    ));
    for bad in ["10.0.0.1", ":2375", "h:0", "h:x", "unix:///s"] {
        assert!(
            matches!(
                c(&["--replication", "--advertise", bad, "etcd://e:2379"]),
                Err(ConfigError::Advertise(_))
            ),
            "{bad}"
        );
    }
}
