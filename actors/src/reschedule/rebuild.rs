//! A create body rebuilt from a container's inspect, as classic Swarm rebuilt it: the
//! inspect's `Config` is the body's top level, its `HostConfig` the body's, and its
//! networks (`NetworkSettings.Networks`) the `NetworkingConfig`. The node is down when this
//! runs, so the inspect is the one Shoal fetched while it was up.
//!
//! What the engine filled in itself and must not be copied is dropped: a hostname that is
//! the old container's short ID (the engine's default), the endpoint's addresses and IDs,
//! the alias that is the old short ID. Links read `/db:/web/alias` in an inspect and
//! `db:alias` in a create. An engine before API 1.44 takes one network at create, so the
//! networks beyond the one `NetworkMode` names are returned apart, to connect after it.

use bytes::Bytes;
use serde_json::{Map, Value};
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum RebuildError {
    #[error("the container's inspect is not a JSON object with Config and HostConfig: {0}")]
    Malformed(String),
}

/// What a re-create needs, from one inspect.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuilt {
    /// The name without its `/`.
    pub name: Option<String>,
    /// The create body.
    pub body: Bytes,
    /// Networks to connect after the create: (network name, endpoint config JSON).
    pub extra_networks: Vec<(String, Bytes)>,
}

/// Endpoint fields kept: what the user asked for. Addresses, IDs and gateways are the
/// old engine's.
const ENDPOINT_KEEP: [&str; 4] = ["IPAMConfig", "Links", "Aliases", "DriverOpts"];

/// `Config` fields the engine sets from the container rather than the user.
const CONFIG_DROP: [&str; 1] = ["MacAddress"];

/// Rebuilds the create body of the container `inspect` describes.
pub fn from_inspect(inspect: &[u8]) -> Result<Rebuilt, RebuildError> {
    let v: Value =
        serde_json::from_slice(inspect).map_err(|e| RebuildError::Malformed(e.to_string()))?;
    let config = v
        .get("Config")
        .and_then(Value::as_object)
        .ok_or_else(|| RebuildError::Malformed("no Config".into()))?;
    let host_config = v
        .get("HostConfig")
        .and_then(Value::as_object)
        .ok_or_else(|| RebuildError::Malformed("no HostConfig".into()))?;
    let id = v.get("Id").and_then(Value::as_str).unwrap_or("");
    let short_id = &id[..id.len().min(12)];
    let name = v
        .get("Name")
        .and_then(Value::as_str)
        .map(|n| n.trim_start_matches('/').to_owned())
        .filter(|n| !n.is_empty());

    let mut body: Map<String, Value> = config.clone();
    for key in CONFIG_DROP {
        body.remove(key);
    }
    if !short_id.is_empty() && body.get("Hostname").and_then(Value::as_str) == Some(short_id) {
        body.remove("Hostname");
    }
    let mut hc = host_config.clone();
    if let Some(Value::Array(links)) = hc.get_mut("Links") {
        for l in links.iter_mut() {
            if let Some(s) = l.as_str() {
                *l = Value::String(create_link(s));
            }
        }
    }
    let mode = hc
        .get("NetworkMode")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    body.insert("HostConfig".into(), Value::Object(hc));

    let mut endpoints = Map::new();
    let mut extra_networks = Vec::new();
    let networks = v
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object);
    for (net, ep) in networks.into_iter().flatten() {
        let kept = endpoint(ep, short_id);
        // The default bridge is what a create without networks joins anyway.
        let primary = net == &mode || (mode == "default" && net == "bridge");
        if primary {
            endpoints.insert(net.clone(), kept);
        } else if !matches!(net.as_str(), "bridge" | "host" | "none") {
            extra_networks.push((net.clone(), Bytes::from(kept.to_string())));
        }
    }
    if !endpoints.is_empty() {
        let mut nc = Map::new();
        nc.insert("EndpointsConfig".into(), Value::Object(endpoints));
        body.insert("NetworkingConfig".into(), Value::Object(nc));
    }
    Ok(Rebuilt {
        name,
        body: Bytes::from(Value::Object(body).to_string()),
        extra_networks,
    })
}

/// The user's part of an endpoint.
fn endpoint(ep: &Value, short_id: &str) -> Value {
    let mut out = Map::new();
    for key in ENDPOINT_KEEP {
        match ep.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(aliases)) if key == "Aliases" => {
                let kept: Vec<Value> = aliases
                    .iter()
                    .filter(|a| a.as_str() != Some(short_id))
                    .cloned()
                    .collect();
                if !kept.is_empty() {
                    out.insert(key.into(), Value::Array(kept));
                }
            }
            Some(v) => {
                out.insert(key.into(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// `/db:/web/alias` (inspect) → `db:alias` (create); anything else as it is.
fn create_link(link: &str) -> String {
    match link.split_once(':') {
        Some((target, alias)) if alias.starts_with('/') => {
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            format!("{}:{alias}", target.trim_start_matches('/'))
        }
        _ => link.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::CreateRequest;

    /// Trimmed from a real `docker inspect` of
    /// `docker run -d --name web -p 8080:80 -e A=1 -l tier=web --network front --restart always --memory 64m -v data:/data busybox sleep 1000`
    /// then `docker network connect back web`.
    const INSPECT: &str = r#"{
        "Id": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "Name": "/web",
        "State": {"Running": true},
        "Config": {"Hostname": "0123456789ab", "Env": ["A=1", "PATH=/bin"], "Cmd": ["sleep", "1000"],
                   "Image": "busybox", "Labels": {"tier": "web", "com.docker.swarm.id": "sid1",
                   "com.docker.swarm.reschedule-policies": "[\"on-node-failure\"]"},
                   "ExposedPorts": {"80/tcp": {}}, "MacAddress": "02:42:ac:11:00:02"},
        "HostConfig": {"NetworkMode": "front", "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                       "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}, "Memory": 67108864,
                       "Binds": ["data:/data"], "Links": ["/db:/web/db"]},
        "NetworkSettings": {"Networks": {
            "front": {"IPAMConfig": null, "Links": null, "Aliases": ["web", "0123456789ab"],
                      "NetworkID": "n1", "EndpointID": "e1", "IPAddress": "10.1.0.2", "Gateway": "10.1.0.1"},
            "back": {"IPAMConfig": {"IPv4Address": "10.2.0.9"}, "Aliases": ["0123456789ab"], "NetworkID": "n2"}
        }}
    }"#;

    #[test]
    fn the_create_body_carries_the_users_config_and_not_the_engines() {
        let r = from_inspect(INSPECT.as_bytes()).unwrap();
        assert_eq!(r.name.as_deref(), Some("web"));
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], serde_json::json!(["sleep", "1000"]));
        assert_eq!(b["Env"][0], "A=1");
        assert_eq!(b["Labels"]["tier"], "web");
        assert!(
            b.get("Hostname").is_none(),
            "the old short ID is no hostname"
        );
        assert!(b.get("MacAddress").is_none());
        let hc = &b["HostConfig"];
        assert_eq!(hc["PortBindings"]["80/tcp"][0]["HostPort"], "8080");
        assert_eq!(hc["RestartPolicy"]["Name"], "always");
        assert_eq!(hc["Memory"], 67108864);
        assert_eq!(hc["Binds"][0], "data:/data");
        assert_eq!(hc["Links"][0], "db:db");
        let front = &b["NetworkingConfig"]["EndpointsConfig"]["front"];
        assert_eq!(front["Aliases"], serde_json::json!(["web"]));
        assert!(front.get("IPAddress").is_none() && front.get("NetworkID").is_none());
        assert_eq!(r.extra_networks.len(), 1);
        let (net, ep) = &r.extra_networks[0];
        assert_eq!(net, "back");
        let ep: Value = serde_json::from_slice(ep).unwrap();
        assert_eq!(ep["IPAMConfig"]["IPv4Address"], "10.2.0.9");
        assert!(ep.get("Aliases").is_none());
    }

    #[test]
    fn the_rebuilt_body_is_a_valid_create_with_its_placement() {
        let r = from_inspect(INSPECT.as_bytes()).unwrap();
        let req = CreateRequest::parse(&r.body, r.name.as_deref()).unwrap();
        let p = req.placement();
        assert_eq!(p.name.as_deref(), Some("web"));
        assert_eq!(p.ports.len(), 1);
        assert_eq!(p.ports[0].port.port, 8080);
        assert_eq!(p.networks, vec!["front".to_string()]);
        assert_eq!(p.volumes, vec!["data".to_string()]);
        assert_eq!(
            p.reschedule,
            Some(crate::scheduler::ReschedulePolicy::OnNodeFailure)
        );
    }

    #[test]
    fn the_default_bridge_is_left_to_the_engine_and_garbage_is_refused() {
        let inspect = r#"{"Id": "abc", "Name": "/x", "Config": {"Image": "bb", "Hostname": "box"},
            "HostConfig": {"NetworkMode": "default"},
            "NetworkSettings": {"Networks": {"bridge": {"Aliases": null, "IPAddress": "172.17.0.2"}}}}"#;
        let r = from_inspect(inspect.as_bytes()).unwrap();
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["Hostname"], "box", "a hostname the user chose is kept");
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["bridge"],
            serde_json::json!({})
        );
        assert!(r.extra_networks.is_empty());
        for bad in ["", "[]", r#"{"Config": {}}"#, r#"{"HostConfig": {}}"#] {
            assert!(from_inspect(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
