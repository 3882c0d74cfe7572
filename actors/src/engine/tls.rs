//! TLS to engines, and the PEM files both sides of Shoal read.
//!
//! Engines listening with `dockerd --tlsverify` on `tcp://host:2376` take only clients with
//! a certificate their CA signed, and Shoal checks each engine's certificate against the CA
//! it was given (by address: the engines' certificates carry their IP or DNS name). As in
//! classic Swarm this is one setting of the whole process: every TCP engine is dialed the
//! same way, so it is installed once at start ([`use_engine_tls`]) and read by every engine
//! connection made after that: the NodeActors' awc clients, the API workers' clients
//! (proxy, streams, WebSocket attach) and the hijack relay's raw connections ([`dial`]).
//! Unix-socket engines never use TLS.
//!
//! Only HTTP/1.1 is offered (ALPN): hijacks and the proxy speak HTTP/1.1 to engines.

use super::EngineAddr;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

/// Why a certificate, key or CA file cannot be used. The message names the file, never
/// its contents (a key must not reach a log).
#[derive(Debug, Error)]
pub enum TlsFileError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("CA file {path}: {reason}")]
    BadCa { path: PathBuf, reason: String },
    #[error("certificate {cert} and key {key} cannot be used together: {reason}")]
    BadPair {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The crypto provider of every TLS config Shoal makes (ring: no C toolchain beyond cc).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[allow(
    clippy::disallowed_methods,
    reason = "TLS files are read once, from the command line, before the runtime starts"
)]
fn read(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    std::fs::read(path).map_err(|e| TlsFileError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Every certificate of a PEM file (a leaf and the chain after it).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsFileError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsFileError::NoKey {
        path: path.to_path_buf(),
    })
}

/// The CA certificates of a PEM file, as trust roots.
pub fn read_roots(path: &Path) -> Result<rustls::RootCertStore, TlsFileError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| TlsFileError::BadCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The files of TLS to engines: the CA the engines' certificates are checked against, and
/// the client certificate and key Shoal shows them (engines with `--tlsverify` ask for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineTlsFiles {
    pub ca: PathBuf,
    pub cert_key: Option<(PathBuf, PathBuf)>,
}

/// TLS to engines, loaded and checked.
#[derive(Debug, Clone)]
pub struct EngineTls {
    config: Arc<rustls::ClientConfig>,
}

impl EngineTls {
    /// Reads the files; every mistake is an error naming the file.
    pub fn load(files: &EngineTlsFiles) -> Result<Self, TlsFileError> {
        let roots = read_roots(&files.ca)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFileError::BadCa {
                path: files.ca.clone(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots);
        let mut config = match &files.cert_key {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
                .map_err(|e| TlsFileError::BadPair {
                    cert: cert.clone(),
                    key: key.clone(),
                    reason: e.to_string(),
                })?,
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(EngineTls {
            config: Arc::new(config),
        })
    }

    /// The rustls client config (for awc's connector).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }
}

/// TLS to engines of this process; `None`: plain TCP.
static ENGINE_TLS: RwLock<Option<EngineTls>> = RwLock::new(None);

/// Sets how this process dials its TCP engines from now on. Called once at start, before
/// any engine client is made (clients already made keep what they were made with).
pub fn use_engine_tls(tls: Option<EngineTls>) {
    let mut slot = ENGINE_TLS.write().unwrap_or_else(|e| e.into_inner());
    *slot = tls;
}

/// TLS to engines as set by [`use_engine_tls`].
pub fn engine_tls() -> Option<EngineTls> {
    ENGINE_TLS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A raw connection to an engine (the hijack relay's): TCP, TCP with TLS, or a unix socket.
pub trait EngineIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> EngineIo for T {}

/// Connects to `addr` the way this process dials engines (TLS on TCP when set), handshake
/// included, within `limit`.
pub async fn dial(addr: &EngineAddr, limit: Duration) -> io::Result<Box<dyn EngineIo>> {
    dial_with(addr, limit, engine_tls().as_ref()).await
}

/// [`dial`] with the TLS settings given.
pub async fn dial_with(
    addr: &EngineAddr,
    limit: Duration,
    tls: Option<&EngineTls>,
) -> io::Result<Box<dyn EngineIo>> {
    let connecting = super::conn::connect(addr, tls);
    let socket = tokio::time::timeout(limit, connecting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    Ok(Box::new(socket))
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "test set-up writes certificate files on the test's own runtime, before anything is served"
)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A CA, an engine certificate for 127.0.0.1 and a client certificate it signed, as
    /// PEM files in `dir`.
    pub(crate) struct Pki {
        pub ca: PathBuf,
        pub server_cert: PathBuf,
        pub server_key: PathBuf,
        pub client_cert: PathBuf,
        pub client_key: PathBuf,
    }

    pub(crate) fn make_pki(dir: &Path, tag: &str) -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{tag} CA"));
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf = |names: Vec<String>, cn: &str| {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (sc, sk) = leaf(vec!["127.0.0.1".into()], "engine");
        let (cc, ck) = leaf(vec![], "shoal");
        let write = |name: &str, text: &str| {
            let p = dir.join(format!("{tag}-{name}"));
            std::fs::write(&p, text).unwrap();
            p
        };
        Pki {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server-cert.pem", &sc),
            server_key: write("server-key.pem", &sk),
            client_cert: write("cert.pem", &cc),
            client_key: write("key.pem", &ck),
        }
    }

    /// A TLS echo server asking for a client certificate of `pki`'s CA; answers what the
    /// client's certificate said, or the handshake error.
    async fn engine(pki: &Pki) -> (std::net::SocketAddr, tokio::task::JoinHandle<bool>) {
        let roots = Arc::new(read_roots(&pki.ca).unwrap());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
                .build()
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                read_certs(&pki.server_cert).unwrap(),
                read_key(&pki.server_key).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(mut s) => {
                    let mut b = [0u8; 4];
                    s.read_exact(&mut b).await.unwrap();
                    s.write_all(&b).await.unwrap();
                    s.shutdown().await.unwrap();
                    true
                }
                Err(_) => false,
            }
        });
        (addr, task)
    }

    fn tcp(addr: std::net::SocketAddr) -> EngineAddr {
        EngineAddr::Tcp {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    #[tokio::test]
    async fn dials_an_engine_that_asks_for_a_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = make_pki(dir.path(), "a");
        let tls = EngineTls::load(&EngineTlsFiles {
            ca: pki.ca.clone(),
            cert_key: Some((pki.client_cert.clone(), pki.client_key.clone())),
        })
        .unwrap();
        let (addr, served) = engine(&pki).await;
        let mut io = dial_with(&tcp(addr), Duration::from_secs(5), Some(&tls))
            .await
            .unwrap();
        io.write_all(b"ping").await.unwrap();
        let mut back = Vec::new();
        io.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"ping");
        assert!(served.await.unwrap());
    }

    #[tokio::test]
    async fn an_engine_of_another_ca_or_no_client_certificate_fails_the_handshake() {
        let dir = tempfile::tempdir().unwrap();
        let pki = make_pki(dir.path(), "a");
        let other = make_pki(dir.path(), "b");
        // Shoal trusts another CA: the engine's certificate is refused.
        let wrong_ca = EngineTls::load(&EngineTlsFiles {
            ca: other.ca.clone(),
            cert_key: Some((other.client_cert.clone(), other.client_key.clone())),
        })
        .unwrap();
        let (addr, served) = engine(&pki).await;
        let dialed = dial_with(&tcp(addr), Duration::from_secs(5), Some(&wrong_ca)).await;
        assert!(dialed.is_err());
        assert!(!served.await.unwrap());
        // Shoal shows no certificate: the engine refuses it (TLS 1.3 reports it on the
        // first read).
        let anonymous = EngineTls::load(&EngineTlsFiles {
            ca: pki.ca.clone(),
            cert_key: None,
        })
        .unwrap();
        let (addr, served) = engine(&pki).await;
        if let Ok(mut io) = dial_with(&tcp(addr), Duration::from_secs(5), Some(&anonymous)).await {
            let _ = io.write_all(b"ping").await;
            let mut back = Vec::new();
            assert!(io.read_to_end(&mut back).await.is_err() || back.is_empty());
        }
        assert!(!served.await.unwrap());
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let pki = make_pki(dir.path(), "a");
        let missing = dir.path().join("nope.pem");
        let e = EngineTls::load(&EngineTlsFiles {
            ca: missing.clone(),
            cert_key: None,
        })
        .unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        // A key given as the certificate.
        let e = EngineTls::load(&EngineTlsFiles {
            ca: pki.ca.clone(),
            cert_key: Some((pki.client_key.clone(), pki.client_key.clone())),
        })
        .unwrap_err();
        assert!(matches!(e, TlsFileError::NoCertificate { .. }), "{e}");
        // A key that is not the certificate's.
        let e = EngineTls::load(&EngineTlsFiles {
            ca: pki.ca.clone(),
            cert_key: Some((pki.client_cert.clone(), pki.server_key.clone())),
        })
        .unwrap_err();
        assert!(matches!(e, TlsFileError::BadPair { .. }), "{e}");
        assert!(!e.to_string().contains("PRIVATE KEY"), "{e}");
    }
}
