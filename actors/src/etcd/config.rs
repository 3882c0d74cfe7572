//! `etcd://h1:2379,h2:2379/prefix` and its TLS options: parsed and checked once
//! ([`EtcdConfig`]), then loaded into what dials ([`Etcd`]).

use super::{EtcdError, CALL_TIMEOUT, CONNECT_TIMEOUT, PING_INTERVAL, PING_TIMEOUT};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use std::future::Future;
use std::path::{Path, PathBuf};

/// The prefix used when the URI names none (`etcd://h:2379`).
pub const DEFAULT_PREFIX: &str = "/shoal";
/// The port of an endpoint written without one.
const DEFAULT_PORT: u16 = 2379;

/// Client certificate files for etcd, from `--discovery-opt kv.*`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EtcdTlsFiles {
    /// `kv.cacertfile`: the CA etcd's certificate is checked against.
    pub ca: Option<PathBuf>,
    /// `kv.certfile` and `kv.keyfile`: the certificate Shoal shows etcd.
    pub cert_key: Option<(PathBuf, PathBuf)>,
}

/// Where etcd is and under which prefix Shoal's keys live.
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdConfig {
    /// `host:port`, in the order given.
    pub endpoints: Vec<String>,
    /// Starts with `/`, never ends with one: `/shoal`.
    pub prefix: String,
    pub tls: Option<EtcdTlsFiles>,
}

impl EtcdConfig {
    /// `etcd://h1:2379,h2:2379/prefix` (the `etcd://` included).
    pub fn parse(uri: &str) -> Result<Self, EtcdError> {
        let bad = |reason: &str| EtcdError::Uri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let rest = uri
            .trim()
            .strip_prefix("etcd://")
            .ok_or_else(|| bad("not an etcd:// URI"))?;
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut endpoints = Vec::new();
        for host in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let endpoint = match host.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0) => {
                    host.to_string()
                }
                Some(_) => return Err(bad(&format!("{host:?} is not host:port"))),
                None => format!("{host}:{DEFAULT_PORT}"),
            };
            if endpoint.contains(|c: char| c.is_whitespace() || c == '@' || c == '?') {
                return Err(bad(&format!("{host:?} is not host:port")));
            }
            if !endpoints.contains(&endpoint) {
                endpoints.push(endpoint);
            }
        }
        if endpoints.is_empty() {
            return Err(bad("no etcd endpoint"));
        }
        let path = path.trim_matches('/');
        let prefix = if path.is_empty() {
            DEFAULT_PREFIX.to_string()
        } else {
            format!("/{path}")
        };
        Ok(EtcdConfig {
            endpoints,
            prefix,
            tls: None,
        })
    }

    /// Applies `--discovery-opt` values: `kv.cacertfile`, `kv.certfile`, `kv.keyfile`
    /// (any of them turns TLS on; a certificate needs its key).
    pub fn with_opts(mut self, opts: &[String]) -> Result<Self, EtcdError> {
        let (mut ca, mut cert, mut key) = (None, None, None);
        for opt in opts {
            let slot = match opt.split_once('=') {
                Some(("kv.cacertfile", v)) => (&mut ca, v),
                Some(("kv.certfile", v)) => (&mut cert, v),
                Some(("kv.keyfile", v)) => (&mut key, v),
                _ => return Err(EtcdError::Opt(opt.clone())),
            };
            let value = slot.1.trim();
            if value.is_empty() {
                return Err(EtcdError::Opt(opt.clone()));
            }
            *slot.0 = Some(PathBuf::from(value));
        }
        let cert_key = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(EtcdError::TlsFlags(
                    "kv.certfile and kv.keyfile go together: give both",
                ))
            }
        };
        if ca.is_some() || cert_key.is_some() {
            self.tls = Some(EtcdTlsFiles { ca, cert_key });
        }
        Ok(self)
    }

    /// `prefix/rest`: the full key of something under Shoal's prefix.
    pub fn key(&self, rest: &str) -> String {
        format!("{}/{}", self.prefix, rest.trim_start_matches('/'))
    }

    /// Reads the TLS files: the errors here are the user's to fix, so callers report them
    /// at start instead of retrying.
    pub async fn load(&self) -> Result<Etcd, EtcdError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(PING_INTERVAL, PING_TIMEOUT)
            .with_keep_alive_while_idle(true)
            // A member cut off from the others' majority fails calls and ends watches
            // (instead of serving a view that no longer changes): the retry loops then
            // move to a member that has a leader.
            .with_require_leader(true);
        let scheme = match &self.tls {
            None => "http",
            Some(files) => {
                let mut tls = TlsOptions::new();
                if let Some(ca) = &files.ca {
                    tls = tls.ca_certificate(Certificate::from_pem(read(ca).await?));
                }
                if let Some((cert, key)) = &files.cert_key {
                    tls = tls.identity(Identity::from_pem(read(cert).await?, read(key).await?));
                }
                options = options.with_tls(tls);
                "https"
            }
        };
        Ok(Etcd {
            urls: self
                .endpoints
                .iter()
                .map(|e| format!("{scheme}://{e}"))
                .collect(),
            named: self.endpoints.join(","),
            options,
        })
    }
}

async fn read(path: &Path) -> Result<Vec<u8>, EtcdError> {
    tokio::fs::read(path).await.map_err(|e| EtcdError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// What dials etcd: the endpoints' URLs and the connection options (TLS included).
#[derive(Debug, Clone)]
pub struct Etcd {
    urls: Vec<String>,
    /// `h1:2379,h2:2379`, for messages.
    named: String,
    options: ConnectOptions,
}

impl Etcd {
    /// A client of the first endpoint, in the order given, that answers a status call.
    ///
    /// One endpoint per client, not etcd-client's balanced channel over all of them: that
    /// channel sends calls to a member that is down (they fail with "tcp connect error")
    /// as long as it is listed. The callers' retry loops drop a client whose call failed
    /// and connect again, which moves them to a member that answers.
    pub async fn connect(&self) -> Result<Client, EtcdError> {
        let mut last = None;
        for url in &self.urls {
            let attempt = async {
                let mut client = self
                    .timed(Client::connect([url], Some(self.options.clone())))
                    .await?;
                self.timed(client.status()).await?;
                Ok::<_, EtcdError>(client)
            };
            match attempt.await {
                Ok(client) => return Ok(client),
                Err(e) => {
                    tracing::debug!(endpoint = %url, error = %e, "etcd endpoint does not answer");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| EtcdError::Unreachable {
            endpoints: self.named.clone(),
            reason: "no endpoint".into(),
        }))
    }

    /// The endpoints, as the user wrote them, for messages.
    pub fn endpoints(&self) -> &str {
        &self.named
    }

    /// Runs one etcd call within [`CALL_TIMEOUT`], its error in Shoal's terms.
    pub async fn timed<T>(
        &self,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, EtcdError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.unreachable(e)),
            Err(_) => Err(EtcdError::Timeout {
                endpoints: self.named.clone(),
            }),
        }
    }

    pub(crate) fn unreachable(&self, e: etcd_client::Error) -> EtcdError {
        EtcdError::Unreachable {
            endpoints: self.named.clone(),
            reason: short(&e),
        }
    }
}

/// An etcd-client error in a line: a gRPC status's message (its `Display` adds the
/// whole debug form of its source) and the innermost cause, e.g. `tcp connect error:
/// Connection refused (os error 111)`.
fn short(e: &etcd_client::Error) -> String {
    use std::error::Error as _;
    let (top, mut cause) = match e {
        etcd_client::Error::GRpcStatus(s) => (s.message().to_string(), s.source()),
        etcd_client::Error::TransportError(t) => ("transport error".to_string(), t.source()),
        other => (other.to_string(), None),
    };
    let mut innermost = None;
    while let Some(c) = cause {
        innermost = Some(c.to_string());
        cause = c.source();
    }
    match innermost {
        Some(last) if !top.contains(&last) => format!("{top}: {last}"),
        _ => top,
    }
    .lines()
    .next()
    .unwrap_or("")
    .trim()
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_prefix() {
        let c = EtcdConfig::parse("etcd://h1:2379, h2:12379,h3/docker/nodes/").unwrap();
        assert_eq!(c.endpoints, ["h1:2379", "h2:12379", "h3:2379"]);
        assert_eq!(c.prefix, "/docker/nodes");
        assert_eq!(
            c.key("nodes/10.0.0.1:2375"),
            "/docker/nodes/nodes/10.0.0.1:2375"
        );
        assert_eq!(
            EtcdConfig::parse("etcd://h:1").unwrap().prefix,
            DEFAULT_PREFIX
        );
    }

    #[test]
    fn bad_uris() {
        for uri in [
            "etcd://",
            "etcd:///p",
            "etcd://h:x/p",
            "etcd://h:0",
            "etcd://u@h:1/p",
            "nodes://h:1",
        ] {
            assert!(
                matches!(EtcdConfig::parse(uri), Err(EtcdError::Uri { .. })),
                "{uri}"
            );
        }
    }

    #[test]
    fn tls_options() {
        let base = EtcdConfig::parse("etcd://h:2379/p").unwrap();
        let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = base
            .clone()
            .with_opts(&opts(&[
                "kv.cacertfile=/ca.pem",
                "kv.certfile=/c.pem",
                "kv.keyfile=/k.pem",
            ]))
            .unwrap();
        assert_eq!(
            c.tls,
            Some(EtcdTlsFiles {
                ca: Some("/ca.pem".into()),
                cert_key: Some(("/c.pem".into(), "/k.pem".into())),
            })
        );
        assert_eq!(base.clone().with_opts(&[]).unwrap().tls, None);
        assert!(matches!(
            base.clone().with_opts(&opts(&["kv.certfile=/c.pem"])),
            Err(EtcdError::TlsFlags(_))
        ));
        assert!(matches!(
            base.clone().with_opts(&opts(&["kv.path=/x"])),
            Err(EtcdError::Opt(_))
        ));
        assert!(matches!(
            base.with_opts(&opts(&["kv.cacertfile="])),
            Err(EtcdError::Opt(_))
        ));
    }

    #[actix_rt::test]
    async fn a_missing_tls_file_is_a_load_error() {
        let c = EtcdConfig::parse("etcd://h:2379/p")
            .unwrap()
            .with_opts(&["kv.cacertfile=/nonexistent/ca.pem".to_string()])
            .unwrap();
        let e = c.load().await.unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read /nonexistent/ca.pem"),
            "{e}"
        );
    }
}
