//! `shoal list`: the engines a discovery yields, or the nodes of a running Shoal with their
//! health (read from its `/shoal/api/cluster`, the same source as the page; `docker info`
//! and the metrics read the same snapshots).
//!
//! A Shoal put on a network serves mutual TLS, so `-H` takes the docker CLI's client
//! flags and environment (`--tlsverify`, `--tlscacert`, `--tlscert`, `--tlskey`,
//! `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`): a user's `~/.docker` set-up for Shoal works
//! for `shoal list` unchanged.

use crate::cli::ListArgs;
use crate::discovery::{Discovery, DiscoveryError};
use serde::Deserialize;
use shoal_actors::engine::tls::{EngineTls, EngineTlsFiles, TlsFileError};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ListError {
    #[error("{0}")]
    Discovery(#[from] DiscoveryError),
    #[error("cannot ask shoal at {host}: {reason}")]
    Manager { host: String, reason: String },
    #[error("give a DISCOVERY or -H HOST")]
    Nothing,
    #[error("{0}")]
    Tls(#[from] TlsFileError),
    #[error("--tlsverify: no --tlscacert given and no CA at {0} (set DOCKER_CERT_PATH, or give --tlscacert)")]
    NoCa(PathBuf),
}

#[derive(Debug, Deserialize)]
struct Cluster {
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
struct Node {
    name: String,
    addr: String,
    health: String,
    containers: Containers,
}

#[derive(Debug, Deserialize)]
struct Containers {
    total: usize,
}

/// The lines `shoal list` prints.
pub fn run(args: &ListArgs) -> Result<Vec<String>, ListError> {
    match (&args.discovery, &args.host) {
        (Some(d), _) => {
            let discovery = Discovery::parse_with_opts(d, &args.discovery_opt.opts)?;
            let addrs = actix_rt::System::new().block_on(async move { discovery.read().await })?;
            Ok(addrs.iter().map(ToString::to_string).collect())
        }
        (None, Some(host)) => {
            let host = host.trim_start_matches("tcp://").to_string();
            let tls = client_tls(args, |k| std::env::var_os(k))?
                .map(|files| EngineTls::load(&files))
                .transpose()?;
            let cluster = actix_rt::System::new().block_on(ask(host.clone(), tls))?;
            Ok(cluster
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{}\t{}\t{}\t{} containers",
                        n.name, n.addr, n.health, n.containers.total
                    )
                })
                .collect())
        }
        (None, None) => Err(ListError::Nothing),
    }
}

/// The TLS files of `-H`, as the docker CLI finds them: TLS is on with `--tlsverify`, a
/// non-empty `DOCKER_TLS_VERIFY` or any file flag; each file is its flag, else `ca.pem`,
/// `cert.pem` and `key.pem` in `DOCKER_CERT_PATH` (default `~/.docker`), the client pair
/// only when both files are there (a Shoal with `--tls` alone asks for none). `None`:
/// plain HTTP. `env` reads the environment (a parameter, for the tests).
fn client_tls(
    args: &ListArgs,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<EngineTlsFiles>, ListError> {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    let on = args.tlsverify
        || set("DOCKER_TLS_VERIFY")
        || args.tlscacert.is_some()
        || args.tlscert.is_some();
    if !on {
        return Ok(None);
    }
    let dir = match env("DOCKER_CERT_PATH").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => env("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".docker"),
    };
    let exists = |p: &Path| {
        #[allow(
            clippy::disallowed_methods,
            reason = "read once at the start of `shoal list`, before any runtime runs"
        )]
        let found = p.is_file();
        found
    };
    let ca = match &args.tlscacert {
        Some(ca) => ca.clone(),
        None if exists(&dir.join("ca.pem")) => dir.join("ca.pem"),
        None => return Err(ListError::NoCa(dir.join("ca.pem"))),
    };
    let cert_key = match (&args.tlscert, &args.tlskey) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => {
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            (exists(&cert) && exists(&key)).then_some((cert, key))
        }
    };
    Ok(Some(EngineTlsFiles { ca, cert_key }))
}

async fn ask(host: String, tls: Option<EngineTls>) -> Result<Cluster, ListError> {
    let fail = |reason: String| ListError::Manager {
        host: host.clone(),
        reason,
    };
    let (connector, scheme) = match &tls {
        Some(tls) => (
            awc::Connector::new().rustls_0_23(tls.client_config()),
            "https",
        ),
        None => (awc::Connector::new(), "http"),
    };
    let client = awc::Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(10))
        .finish();
    let mut resp = client
        .get(format!("{scheme}://{host}/shoal/api/cluster"))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("status {}", resp.status())));
    }
    resp.json::<Cluster>()
        .limit(64 << 20)
        .await
        .map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: their own thread, no runtime to stall"
)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &[&str]) -> ListArgs {
        match crate::cli::Cli::try_parse_from([&["shoal", "list"], line].concat())
            .expect("parses")
            .command
        {
            crate::cli::Command::List(a) => a,
            other => panic!("not list: {other:?}"),
        }
    }

    #[test]
    fn tls_is_found_as_the_docker_cli_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let host = ["-H", "127.0.0.1:2376"];
        let none = |_: &str| None;
        // Plain unless asked.
        assert!(client_tls(&args(&host), none).unwrap().is_none());
        // DOCKER_TLS_VERIFY + DOCKER_CERT_PATH: the three files there; empty is unset.
        let env = |verify: &'static str| {
            let d = d.clone();
            move |k: &str| match k {
                "DOCKER_TLS_VERIFY" => Some(verify.into()),
                "DOCKER_CERT_PATH" => Some(d.clone().into_os_string()),
                _ => None,
            }
        };
        assert!(client_tls(&args(&host), env("")).unwrap().is_none());
        let e = client_tls(&args(&host), env("1")).unwrap_err();
        assert!(
            matches!(e, ListError::NoCa(ref p) if *p == d.join("ca.pem")),
            "{e}"
        );
        std::fs::write(d.join("ca.pem"), "x").unwrap();
        let files = client_tls(&args(&host), env("1")).unwrap().unwrap();
        assert_eq!((files.ca, files.cert_key), (d.join("ca.pem"), None));
        std::fs::write(d.join("cert.pem"), "x").unwrap();
        std::fs::write(d.join("key.pem"), "x").unwrap();
        let files = client_tls(&args(&host), env("1")).unwrap().unwrap();
        assert_eq!(
            files.cert_key,
            Some((d.join("cert.pem"), d.join("key.pem")))
        );
        // Flags win over the environment, and any file flag turns TLS on.
        let flags = args(
            &[
                &host[..],
                &[
                    "--tlscacert",
                    "/x/ca",
                    "--tlscert",
                    "/x/c",
                    "--tlskey",
                    "/x/k",
                ],
            ]
            .concat(),
        );
        let files = client_tls(&flags, none).unwrap().unwrap();
        assert_eq!(files.ca, PathBuf::from("/x/ca"));
        assert_eq!(
            files.cert_key,
            Some((PathBuf::from("/x/c"), PathBuf::from("/x/k")))
        );
        // HOME/.docker when DOCKER_CERT_PATH is unset.
        let home = |k: &str| match k {
            "HOME" => Some(d.clone().into_os_string()),
            _ => None,
        };
        let e = client_tls(&args(&[&host[..], &["--tlsverify"]].concat()), home).unwrap_err();
        assert!(e.to_string().contains(".docker/ca.pem"), "{e}");
        // A client certificate needs its key, and TLS flags need -H.
        assert!(
            crate::cli::Cli::try_parse_from(["shoal", "list", "-H", "h:1", "--tlscert", "c"])
                .is_err()
        );
        assert!(
            crate::cli::Cli::try_parse_from(["shoal", "list", "nodes://h:1", "--tlsverify"])
                .is_err()
        );
    }
}
