//! Certificates for the TLS scenario, made for the run with rcgen: one CA, and the
//! certificates it signs for the engine (a server at 127.0.0.1), for Shoal (a server to
//! its clients at 127.0.0.1 and a client of the engine) and for the bench's client (CN
//! `bench`, its identity for the authorization policy). Written as PEM files for the
//! processes' flags; the client's also kept as a rustls config for the load client.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The client certificate's CN: the identity the policy names.
pub const CLIENT_CN: &str = "bench";

/// A certificate and key as files.
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The run's certificates.
pub struct Pki {
    pub ca: PathBuf,
    pub engine: CertFiles,
    pub shoal: CertFiles,
    /// What the load client shows and trusts.
    pub client: Arc<rustls::ClientConfig>,
}

impl Pki {
    /// Makes the CA and the three certificates, writing the files in `dir`.
    pub async fn make(dir: &Path) -> Result<Pki, String> {
        let err = |e: rcgen::Error| format!("certificates: {e}");
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "shoal-bench CA");
        let ca = ca.self_signed(&ca_key).map_err(err)?;
        let leaf = |cn: &str, sans: Vec<String>| -> Result<(rcgen::Certificate, KeyPair), String> {
            let key = KeyPair::generate().map_err(err)?;
            let mut p = CertificateParams::new(sans).map_err(err)?;
            p.distinguished_name.push(DnType::CommonName, cn);
            Ok((p.signed_by(&key, &ca, &ca_key).map_err(err)?, key))
        };
        let write = |name: String, text: String| async move {
            let path = dir.join(name);
            tokio::fs::write(&path, text)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok::<_, String>(path)
        };
        let files = |stem: &'static str, (cert, key): (rcgen::Certificate, KeyPair)| async move {
            Ok::<_, String>(CertFiles {
                cert: write(format!("{stem}-cert.pem"), cert.pem()).await?,
                key: write(format!("{stem}-key.pem"), key.serialize_pem()).await?,
            })
        };
        let local = || vec!["127.0.0.1".to_string()];
        let engine = files("engine", leaf("engine", local())?).await?;
        let shoal = files("shoal", leaf("shoal", local())?).await?;
        let (client_cert, client_key) = leaf(CLIENT_CN, vec![])?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.der().clone())
            .map_err(|e| format!("the CA: {e}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(
                vec![CertificateDer::from(client_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key.serialize_der())),
            )
            .map_err(|e| format!("the client certificate: {e}"))?;
        // HTTP/1.1, as the docker CLI asks (Shoal offers nothing else).
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Pki {
            ca: write("ca.pem".into(), ca.pem()).await?,
            engine,
            shoal,
            client: Arc::new(client),
        })
    }
}
