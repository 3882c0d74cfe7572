//! What a container holds on its node (CPU and memory reservations, host ports), read
//! once from its inspect or from the create body the engine accepted, so the node can offer
//! the scheduler what is free without inspecting every container again.

use super::facts::null_as_default;
use crate::scheduler::{container_reservation, HostPort};
use bollard_stubs::models::HostConfig;
use foldhash::HashMap;
use serde::Deserialize;

/// Resources a container holds on its node, from its inspect (`HostConfig`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reservation {
    pub nano_cpus: i64,
    pub memory: i64,
}

/// Sums wrap rather than saturate, so that taking a container out of a sum is exactly the
/// inverse of putting it in (a node's sum is carried forward that way).
impl Reservation {
    pub fn plus(self, o: Reservation) -> Reservation {
        Reservation {
            nano_cpus: self.nano_cpus.wrapping_add(o.nano_cpus),
            memory: self.memory.wrapping_add(o.memory),
        }
    }

    pub fn minus(self, o: Reservation) -> Reservation {
        Reservation {
            nano_cpus: self.nano_cpus.wrapping_sub(o.nano_cpus),
            memory: self.memory.wrapping_sub(o.memory),
        }
    }
}

/// What a container holds on its node, read once from its inspect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerResources {
    pub reservation: Reservation,
    /// Host ports bound in bridge mode, or exposed by a `--net=host` container.
    pub host_ports: Vec<HostPort>,
    pub network_mode: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InspectConfig {
    #[serde(deserialize_with = "null_as_default")]
    exposed_ports: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectBody {
    #[serde(default)]
    host_config: Option<HostConfig>,
    #[serde(default)]
    config: Option<InspectConfig>,
}

/// A create body: the same fields as an inspect's, with `ExposedPorts` at the top. Named
/// here rather than flattened: serde buffers every field of a body it flattens into, and
/// that was a second parse of the whole body per create.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateBody {
    #[serde(default)]
    host_config: Option<HostConfig>,
    #[serde(default, deserialize_with = "null_as_default")]
    exposed_ports: HashMap<String, serde_json::Value>,
}

impl ContainerResources {
    /// Reads the resources from a container's inspect JSON; `None` when it is not one.
    /// Reservations are counted as the scheduler counts them (`container_reservation`).
    pub fn from_inspect(body: &[u8]) -> Option<Self> {
        let b: InspectBody = serde_json::from_slice(body).ok()?;
        Some(Self::from_config(
            b.host_config.unwrap_or_default(),
            b.config.unwrap_or_default(),
        ))
    }

    /// Reads the resources from the body of a create the engine accepted: the engine
    /// keeps reservations and port bindings as asked, so no inspect is needed to learn them.
    pub fn from_create(body: &[u8]) -> Option<Self> {
        let b: CreateBody = serde_json::from_slice(body).ok()?;
        Some(Self::from_config(
            b.host_config.unwrap_or_default(),
            InspectConfig {
                exposed_ports: b.exposed_ports,
            },
        ))
    }

    fn from_config(hc: HostConfig, config: InspectConfig) -> Self {
        let (nano_cpus, memory) = container_reservation(&hc);
        let network_mode = hc.network_mode.clone().unwrap_or_default();
        let mut host_ports = Vec::new();
        if network_mode == "host" {
            for spec in config.exposed_ports.keys() {
                host_ports.extend(HostPort::parse(spec));
            }
        } else {
            for (spec, bindings) in hc.port_bindings.iter().flatten() {
                let Some(exposed) = HostPort::parse(spec) else {
                    continue;
                };
                for b in bindings.iter().flatten() {
                    let port = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok());
                    if let Some(port) = port.filter(|p| *p != 0) {
                        host_ports.push(HostPort {
                            port,
                            proto: exposed.proto,
                        });
                    }
                }
            }
        }
        ContainerResources {
            reservation: Reservation {
                nano_cpus: nano_cpus as i64,
                memory: memory as i64,
            },
            host_ports,
            network_mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_come_from_host_config() {
        let body = br#"{"HostConfig":{"NanoCpus":0,"Memory":1073741824,"CpusetCpus":"0-1,3",
            "NetworkMode":"default","PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}],
            "53/udp":[{"HostIp":"","HostPort":"53"}],"81/tcp":null}},"Config":{"ExposedPorts":null}}"#;
        let r = ContainerResources::from_inspect(body).unwrap();
        assert_eq!(
            r.reservation,
            Reservation {
                nano_cpus: 3_000_000_000,
                memory: 1 << 30
            }
        );
        let mut ports = r.host_ports.clone();
        ports.sort();
        assert_eq!(ports, vec![HostPort::udp(53), HostPort::tcp(8080)]);
        let host =
            br#"{"HostConfig":{"NetworkMode":"host"},"Config":{"ExposedPorts":{"80/tcp":{}}}}"#;
        let r = ContainerResources::from_inspect(host).unwrap();
        assert_eq!(r.host_ports, vec![HostPort::tcp(80)]);
        assert!(ContainerResources::from_inspect(b"garbage").is_none());
        let create = br#"{"Image":"bb","ExposedPorts":{"80/tcp":{}},
            "HostConfig":{"NetworkMode":"host","Memory":64}}"#;
        let r = ContainerResources::from_create(create).unwrap();
        assert_eq!(r.host_ports, vec![HostPort::tcp(80)]);
        assert_eq!(r.reservation.memory, 64);
    }
}
