//! Certificates for the unit tests of TLS and of the configuration: one CA and one leaf
//! it signed (for 127.0.0.1), written as PEM files, made with rcgen in a few milliseconds.

use std::path::{Path, PathBuf};

/// `[ca.pem, cert.pem, key.pem]` in `dir`: a CA, and a certificate for 127.0.0.1 it signed
/// with its key.
pub(crate) fn ca_and_leaf(dir: &Path) -> [PathBuf; 3] {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("a CA");
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("leaf params")
        .signed_by(&key, &ca, &ca_key)
        .expect("a leaf");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        #[allow(
            clippy::disallowed_methods,
            reason = "test set-up on the test's own thread, before anything is served"
        )]
        std::fs::write(&path, text).expect("a PEM file");
        path
    };
    [
        write("ca.pem", ca.pem()),
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
    ]
}
