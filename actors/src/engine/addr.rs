//! Where an engine listens: `host:port` (TCP) or `unix:///path`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use thiserror::Error;

/// One engine address, as discovery yields it. Two engines are the same node only when
/// their addresses are equal: engine IDs are not unique in the field (cloned machines, and
/// engines sharing `/etc/docker/key.json`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EngineAddr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

#[derive(Debug, Error, PartialEq)]
pub enum AddrError {
    #[error("engine address {0:?} is not host:port, tcp://host:port or unix:///path")]
    Malformed(String),
    #[error("engine address {0:?} has a port that is not a number from 1 to 65535")]
    BadPort(String),
}

impl FromStr for EngineAddr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(AddrError::Malformed(s.to_string()));
            }
            return Ok(EngineAddr::Unix(PathBuf::from(path)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
            .unwrap_or(s);
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| AddrError::Malformed(s.to_string()))?;
        if host.is_empty() || host.contains('/') {
            return Err(AddrError::Malformed(s.to_string()));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| AddrError::BadPort(s.to_string()))?;
        if port == 0 {
            return Err(AddrError::BadPort(s.to_string()));
        }
        Ok(EngineAddr::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for EngineAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            EngineAddr::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl EngineAddr {
    /// The IP or host part, shown as the node's address in `docker info`.
    pub fn host(&self) -> String {
        match self {
            EngineAddr::Tcp { host, .. } => host.clone(),
            EngineAddr::Unix(_) => "127.0.0.1".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_discovery_yields() {
        assert_eq!(
            "10.0.0.1:2375".parse::<EngineAddr>().unwrap(),
            EngineAddr::Tcp {
                host: "10.0.0.1".into(),
                port: 2375
            }
        );
        assert_eq!(
            "tcp://h:1".parse::<EngineAddr>().unwrap(),
            EngineAddr::Tcp {
                host: "h".into(),
                port: 1
            }
        );
        assert_eq!(
            "unix:///var/run/docker.sock".parse::<EngineAddr>().unwrap(),
            EngineAddr::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            "unix:///a".parse::<EngineAddr>().unwrap().to_string(),
            "unix:///a"
        );
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        for bad in [
            "",
            "host",
            ":2375",
            "h:0",
            "h:99999",
            "h:x",
            "unix://",
            "unix://rel",
        ] {
            assert!(bad.parse::<EngineAddr>().is_err(), "{bad:?} was accepted");
        }
    }
}
