//! Parses an HTTP request into the one operation it asks an engine for.
//!
//! Parsing never touches engine state; `server` hands the resulting [`Op`] to `engine`.

use std::collections::{BTreeMap, HashMap};

use actix_web::http::Method;
use serde::Deserialize;

use crate::util::{parse_filters, parse_timestamp, query_bool, Filters};
use crate::SimError;

/// One request to one engine.
#[derive(Debug)]
pub enum Op {
    Ping,
    Version,
    Info,
    ListContainers {
        all: bool,
        limit: Option<usize>,
        size: bool,
        filters: Filters,
    },
    CreateContainer {
        name: Option<String>,
        spec: Box<CreateSpec>,
    },
    InspectContainer(String),
    /// `GET /containers/{id}/top`: the container's processes, as `ps` on the host shows them.
    TopContainer {
        id: String,
        format: PsFormat,
    },
    StartContainer(String),
    StopContainer(String),
    KillContainer {
        id: String,
        signal: String,
    },
    RestartContainer(String),
    WaitContainer(String),
    RemoveContainer {
        id: String,
        force: bool,
    },
    ListImages,
    InspectImage(String),
    PullImage(String),
    ListNetworks,
    ListVolumes,
    Events {
        since: Option<i64>,
        until: Option<i64>,
        filters: Filters,
    },
}

/// The `ps` output a top request asks for. dockerd runs the host's `ps` with `ps_args`
/// (default `-ef`); the simulator knows the two shapes the `docker top` CLI is used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsFormat {
    /// `ps -ef`: UID PID PPID C STIME TTY TIME CMD.
    Full,
    /// `ps aux`: USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND.
    User,
}

impl PsFormat {
    fn parse(ps_args: Option<&String>) -> Result<PsFormat, SimError> {
        match ps_args.map(|a| a.trim()).unwrap_or("") {
            "" | "-ef" => Ok(PsFormat::Full),
            "aux" | "-aux" => Ok(PsFormat::User),
            other => Err(SimError::BadRequest(format!(
                "the simulated engine answers ps_args \"-ef\" and \"aux\" only, not {other:?}"
            ))),
        }
    }
}

/// The parts of Docker's container-create body the simulator keeps, so inspect shows them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSpec {
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "strslice")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, deserialize_with = "strslice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub exposed_ports: Option<serde_json::Value>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Kept as sent (Memory, NanoCpus, CpuShares, CpusetCpus, PortBindings, NetworkMode,
    /// Binds, Links, VolumesFrom, ...) and laid over the engine defaults on inspect.
    #[serde(default)]
    pub host_config: Option<serde_json::Value>,
}

/// Docker's strslice: a JSON string or an array of strings.
fn strslice<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum S {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<S>::deserialize(d)? {
        None => None,
        Some(S::One(s)) => Some(vec![s]),
        Some(S::Many(v)) => Some(v),
    })
}

/// Turns method, path (with or without `/v1.NN`), query and body into an [`Op`].
pub fn parse(method: &Method, path: &str, query: &str, body: &[u8]) -> Result<Op, SimError> {
    let q: HashMap<String, String> = actix_web::web::Query::from_query(query)
        .map(|q: actix_web::web::Query<HashMap<String, String>>| q.into_inner())
        .unwrap_or_default();
    let path = strip_version(path);
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let op = match (segs.as_slice(), method) {
        (["_ping"], m) if get || *m == Method::HEAD => Op::Ping,
        (["version"], _) if get => Op::Version,
        (["info"], _) if get => Op::Info,
        (["containers", "json"], _) if get => Op::ListContainers {
            all: query_bool(&q, "all"),
            limit: q
                .get("limit")
                .and_then(|l| l.parse::<i64>().ok())
                .filter(|l| *l > 0)
                .map(|l| l as usize),
            size: query_bool(&q, "size"),
            filters: parse_filters(q.get("filters"))?,
        },
        (["containers", "create"], _) if post => {
            let spec: CreateSpec = serde_json::from_slice(body)
                .map_err(|e| SimError::BadRequest(format!("invalid JSON: {e}")))?;
            if spec.image.is_empty() {
                return Err(SimError::BadRequest("no image specified".into()));
            }
            Op::CreateContainer {
                name: q.get("name").filter(|n| !n.is_empty()).cloned(),
                spec: Box::new(spec),
            }
        }
        (["containers", id, "json"], _) if get => Op::InspectContainer(id.to_string()),
        (["containers", id, "top"], _) if get => Op::TopContainer {
            id: id.to_string(),
            format: PsFormat::parse(q.get("ps_args"))?,
        },
        (["containers", id, "start"], _) if post => Op::StartContainer(id.to_string()),
        (["containers", id, "stop"], _) if post => Op::StopContainer(id.to_string()),
        (["containers", id, "restart"], _) if post => Op::RestartContainer(id.to_string()),
        (["containers", id, "wait"], _) if post => Op::WaitContainer(id.to_string()),
        (["containers", id, "kill"], _) if post => Op::KillContainer {
            id: id.to_string(),
            signal: q.get("signal").cloned().unwrap_or_else(|| "KILL".into()),
        },
        (["containers", id], m) if *m == Method::DELETE => Op::RemoveContainer {
            id: id.to_string(),
            force: query_bool(&q, "force"),
        },
        (["images", "json"], _) if get => Op::ListImages,
        (["images", "create"], _) if post => {
            let from = q.get("fromImage").cloned().unwrap_or_default();
            if from.is_empty() {
                return Err(SimError::BadRequest("fromImage is required".into()));
            }
            let image = match q.get("tag").filter(|t| !t.is_empty()) {
                Some(tag) => format!("{from}:{tag}"),
                None => from,
            };
            Op::PullImage(image)
        }
        (["images", name @ .., "json"], _) if get && !name.is_empty() => {
            Op::InspectImage(name.join("/"))
        }
        (["networks"], _) if get => Op::ListNetworks,
        (["volumes"], _) if get => Op::ListVolumes,
        (["events"], _) if get => {
            let ts = |k: &str| -> Result<Option<i64>, SimError> {
                match q.get(k).filter(|s| !s.is_empty()) {
                    None => Ok(None),
                    Some(s) => parse_timestamp(s)
                        .map(Some)
                        .ok_or_else(|| SimError::BadRequest(format!("invalid {k} timestamp: {s}"))),
                }
            };
            Op::Events {
                since: ts("since")?,
                until: ts("until")?,
                filters: parse_filters(q.get("filters"))?,
            }
        }
        _ => return Err(SimError::PageNotFound),
    };
    Ok(op)
}

/// `/v1.41/info` → `/info`.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let ver = &rest[..end];
        if !ver.is_empty() && ver.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return &rest[end..];
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_and_plain_paths_parse_alike() {
        assert!(matches!(
            parse(&Method::GET, "/v1.41/info", "", b""),
            Ok(Op::Info)
        ));
        assert!(matches!(
            parse(&Method::HEAD, "/_ping", "", b""),
            Ok(Op::Ping)
        ));
        assert!(matches!(
            parse(&Method::GET, "/v1.41/nope", "", b""),
            Err(SimError::PageNotFound)
        ));
        match parse(
            &Method::GET,
            "/v1.41/images/library/busybox:1/json",
            "",
            b"",
        ) {
            Ok(Op::InspectImage(n)) => assert_eq!(n, "library/busybox:1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn top_takes_the_two_ps_formats_of_the_cli() {
        match parse(&Method::GET, "/v1.41/containers/abc/top", "", b"") {
            Ok(Op::TopContainer { id, format }) => {
                assert_eq!((id.as_str(), format), ("abc", PsFormat::Full))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&Method::GET, "/containers/abc/top", "ps_args=aux", b""),
            Ok(Op::TopContainer {
                format: PsFormat::User,
                ..
            })
        ));
        assert!(matches!(
            parse(&Method::GET, "/containers/abc/top", "ps_args=-o%20pid", b""),
            Err(SimError::BadRequest(_))
        ));
        assert!(matches!(
            parse(&Method::POST, "/containers/abc/top", "", b""),
            Err(SimError::PageNotFound)
        ));
    }

    #[test]
    fn create_body_keeps_what_inspect_shows() {
        let body =
            br#"{"Image":"busybox","Cmd":"sh","Labels":{"a":"b"},"HostConfig":{"Memory":5}}"#;
        match parse(&Method::POST, "/containers/create", "name=x", body) {
            Ok(Op::CreateContainer { name, spec }) => {
                assert_eq!(name.as_deref(), Some("x"));
                assert_eq!(spec.cmd, Some(vec!["sh".to_string()]));
                assert_eq!(spec.host_config.unwrap()["Memory"], 5);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&Method::POST, "/containers/create", "", b"{\"Image\":"),
            Err(SimError::BadRequest(_))
        ));
    }
}
