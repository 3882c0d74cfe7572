//! TLS, both sides, and the rule about where the API may listen.
//!
//! Anyone who can reach Shoal's API is root on every engine (a privileged container,
//! `/` mounted). So the API is served with TLS as dockerd and the docker CLI know it:
//! `--tlsverify` asks each client for a certificate the CA (`--tlscacert`) signed, and a
//! client without one fails at the handshake, before any request is read; `--tls` alone
//! serves TLS without asking (and, given a CA, checks a certificate a client shows, as
//! dockerd does). A client's certificate names it ([`ClientIdentity`]).
//!
//! The same flags serve the engine side, as in classic Swarm: TCP engines are dialed with
//! TLS, checked against the CA, showing Shoal's certificate; `--engine-tls*` name other
//! files when the engines have a CA of their own (`shoal_actors::engine::tls`).
//!
//! [`check_exposure`] is the safe default: a TCP address other than loopback is served
//! only with `--tlsverify`, unless `--insecure-listen` says the risk is taken.

mod identity;
#[cfg(test)]
pub(crate) mod test_pki;

pub use identity::ClientIdentity;

use shoal_actors::engine::tls::{
    provider, read_certs, read_key, read_roots, EngineTls, EngineTlsFiles, TlsFileError,
};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// How long a client may take over its TLS handshake. Docker clients finish it in
/// milliseconds; a connection that never does must not hold a slot for long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the API asks of clients' certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `--tlsverify`: a certificate signed by the CA, or no connection.
    Required,
    /// `--tls` with a CA: a certificate shown is checked; none is fine.
    Optional,
    /// `--tls` without a CA: none asked.
    None,
}

/// The files of TLS to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTlsFiles {
    pub auth: ClientAuth,
    pub ca: Option<PathBuf>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Error)]
pub enum TlsConfigError {
    #[error("{0}")]
    File(#[from] TlsFileError),
    #[error("TLS to clients: {0}")]
    Rustls(String),
}

/// TLS to clients, loaded and checked.
#[derive(Debug, Clone)]
pub struct ApiTls {
    pub auth: ClientAuth,
    config: Arc<rustls::ServerConfig>,
}

impl ApiTls {
    pub fn load(files: &ApiTlsFiles) -> Result<Self, TlsConfigError> {
        let rustls = |e: rustls::Error| TlsConfigError::Rustls(e.to_string());
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(rustls)?;
        let builder = match (&files.ca, files.auth) {
            (Some(ca), ClientAuth::Required | ClientAuth::Optional) => {
                let roots = Arc::new(read_roots(ca)?);
                let verifier =
                    rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider());
                let verifier = if files.auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let certs = read_certs(&files.cert)?;
        let key = read_key(&files.key)?;
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            TlsConfigError::File(TlsFileError::BadPair {
                cert: files.cert.clone(),
                key: files.key.clone(),
                reason: e.to_string(),
            })
        })?;
        // The Docker API is HTTP/1.1 (hijacks need it); say so to clients that ask.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ApiTls {
            auth: files.auth,
            config: Arc::new(config),
        })
    }

    /// The rustls config, for the acceptor.
    pub fn server_config(&self) -> rustls::ServerConfig {
        (*self.config).clone()
    }
}

/// TLS settings of a manager, loaded at start.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// TLS to clients on TCP listeners; `None`: plain HTTP.
    pub api: Option<ApiTls>,
    /// TLS to TCP engines; `None`: plain HTTP.
    pub engines: Option<EngineTls>,
    /// `--insecure-listen`: serve a non-loopback address without `--tlsverify`.
    pub insecure_listen: bool,
}

impl TlsConfig {
    /// Whether clients must show a certificate of the CA.
    pub fn verifies_clients(&self) -> bool {
        self.api
            .as_ref()
            .is_some_and(|t| t.auth == ClientAuth::Required)
    }

    /// Loads the files the flags name.
    pub fn load(
        api: Option<&ApiTlsFiles>,
        engines: Option<&EngineTlsFiles>,
        insecure_listen: bool,
    ) -> Result<Self, TlsConfigError> {
        Ok(TlsConfig {
            api: api.map(ApiTls::load).transpose()?,
            engines: engines.map(EngineTls::load).transpose()?,
            insecure_listen,
        })
    }
}

/// What a listener serves, for the rule about where it may listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `-H`: the Docker API.
    Api,
    /// `--metrics-addr`: `/metrics` alone.
    Metrics,
}

impl Surface {
    fn name(self) -> &'static str {
        match self {
            Surface::Api => "the Docker API",
            Surface::Metrics => "/metrics (--metrics-addr)",
        }
    }

    fn risk(self) -> &'static str {
        match self {
            Surface::Api => "whoever reaches it is root on every engine",
            Surface::Metrics => "it names every engine and its load to whoever reaches it",
        }
    }

    fn local(self) -> &'static str {
        match self {
            Surface::Api => "listen on 127.0.0.1 or unix:///path",
            Surface::Metrics => "give --metrics-addr 127.0.0.1:PORT",
        }
    }
}

/// A listen address served without `--tlsverify` where others can reach it.
#[derive(Debug, Error, PartialEq)]
#[error("refusing to serve {} on {ip} without --tlsverify: {}. Add --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem (README: Security), {}, or pass --insecure-listen to take the risk", .surface.name(), .surface.risk(), .surface.local())]
pub struct Exposed {
    pub ip: IpAddr,
    pub surface: Surface,
}

/// The warning logged at start and shown by `docker info` when `--insecure-listen` let an
/// unprotected address through.
pub fn insecure_warning(ip: IpAddr) -> String {
    format!(
        "WARNING: API is accessible on {ip} without client certificates (--insecure-listen): \
         anyone who can reach it is root on every engine"
    )
}

/// Whether the API may be served at `ip` (`None`: a unix socket): answers the warning to
/// give when it is served unprotected by `--insecure-listen`.
pub fn check_exposure(ip: Option<IpAddr>, tls: &TlsConfig) -> Result<Option<String>, Exposed> {
    let Some(ip) = ip else { return Ok(None) };
    Ok(check(Surface::Api, ip, tls)?.then(|| insecure_warning(ip)))
}

/// Whether `/metrics` may be served at `ip` (`--metrics-addr`), by the API's rule: it is
/// served with the API's TLS when TLS is on, so a non-loopback address needs
/// `--tlsverify` (Prometheus then shows a client certificate of the CA) or
/// `--insecure-listen`. Answers the warning to log when it is served unprotected.
pub fn check_metrics_exposure(ip: IpAddr, tls: &TlsConfig) -> Result<Option<String>, Exposed> {
    Ok(check(Surface::Metrics, ip, tls)?.then(|| {
        format!(
            "WARNING: /metrics is served on {ip} without client certificates \
             (--insecure-listen): it names every engine and its load"
        )
    }))
}

/// The rule of both: answers whether the address is served unprotected by
/// `--insecure-listen`.
fn check(surface: Surface, ip: IpAddr, tls: &TlsConfig) -> Result<bool, Exposed> {
    if ip.is_loopback() || tls.verifies_clients() {
        return Ok(false);
    }
    if tls.insecure_listen {
        return Ok(true);
    }
    Err(Exposed { ip, surface })
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: their own thread, no runtime to stall"
)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unix_or_verified_clients_pass_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let [ca, cert, key] = test_pki::ca_and_leaf(dir.path());
        let files = |auth| ApiTlsFiles {
            auth,
            ca: Some(ca.clone()),
            cert: cert.clone(),
            key: key.clone(),
        };
        let plain = TlsConfig::default();
        let verify = TlsConfig::load(Some(&files(ClientAuth::Required)), None, false).unwrap();
        let tls_only = TlsConfig::load(Some(&files(ClientAuth::Optional)), None, false).unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lan: IpAddr = "10.1.2.3".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lo6: IpAddr = "::1".parse().unwrap();
        assert_eq!(check_exposure(Some(lo), &plain), Ok(None));
        assert_eq!(check_exposure(Some(lo6), &plain), Ok(None));
        assert_eq!(check_exposure(None, &plain), Ok(None));
        assert_eq!(check_exposure(Some(any), &verify), Ok(None));
        assert_eq!(check_exposure(Some(lan), &verify), Ok(None));
        let exposed = |ip| Exposed {
            ip,
            surface: Surface::Api,
        };
        assert_eq!(check_exposure(Some(any), &plain), Err(exposed(any)));
        // TLS without client certificates protects the wire, not the engines.
        assert_eq!(check_exposure(Some(lan), &tls_only), Err(exposed(lan)));
        let e = check_exposure(Some(any), &plain).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(
            e.contains("--tlsverify") && e.contains("--insecure-listen"),
            "{e}"
        );
        let insecure = TlsConfig {
            insecure_listen: true,
            ..TlsConfig::default()
        };
        // /metrics: the same rule, its own words.
        assert_eq!(check_metrics_exposure(lo, &plain), Ok(None));
        assert_eq!(check_metrics_exposure(lan, &verify), Ok(None));
        let e = check_metrics_exposure(any, &plain).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(
            e.contains("/metrics")
                && e.contains("--metrics-addr 127.0.0.1")
                && e.contains("--insecure-listen"),
            "{e}"
        );
        assert!(check_metrics_exposure(lan, &tls_only).is_err());
        let w = check_metrics_exposure(any, &insecure).unwrap().unwrap();
        assert!(w.contains("/metrics") && w.contains("0.0.0.0"), "{w}");
        let w = check_exposure(Some(any), &insecure).unwrap().unwrap();
        assert!(
            w.contains("0.0.0.0") && w.contains("--insecure-listen"),
            "{w}"
        );
    }

    #[test]
    fn bad_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let [ca, cert, key] = test_pki::ca_and_leaf(dir.path());
        let load = |ca: &PathBuf, cert: &PathBuf, key: &PathBuf| {
            ApiTls::load(&ApiTlsFiles {
                auth: ClientAuth::Required,
                ca: Some(ca.clone()),
                cert: cert.clone(),
                key: key.clone(),
            })
        };
        assert!(load(&ca, &cert, &key).is_ok());
        let e = load(&ca, &cert, &dir.path().join("gone.pem")).unwrap_err();
        assert!(e.to_string().contains("gone.pem"), "{e}");
        let e = load(&key, &cert, &key).unwrap_err();
        assert!(
            e.to_string().contains("ca.pem") || e.to_string().contains("key.pem"),
            "{e}"
        );
        assert!(!e.to_string().contains("BEGIN"), "{e}");
    }
}
