//! Who a client is: the subject common name of the certificate it showed in the TLS
//! handshake. Per-client authorization (the guard) decides from it; this module only
//! reads it.
//!
//! It reaches actix-web through the connection's data (actix-http's `on_connect_ext`,
//! merged into every request's extensions): handlers and middleware read it with
//! [`ClientIdentity::of`]. A connection without a certificate (plain TCP, a unix socket,
//! `--tls` without one) has none.

use rustls::pki_types::CertificateDer;

/// The client of one connection, from its verified certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    /// The certificate's subject CN (e.g. `ci-runner`); empty when the subject has none.
    pub common_name: String,
}

impl ClientIdentity {
    /// The identity from the leaf certificate of a verified chain; `None` when it cannot
    /// be parsed (rustls verified it, so that does not happen with a CA-signed one).
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Option<Self> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let common_name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        Some(ClientIdentity { common_name })
    }

    /// The identity of the connection a request came on, when its client showed a
    /// certificate.
    pub fn of(req: &actix_web::HttpRequest) -> Option<&ClientIdentity> {
        req.conn_data::<ClientIdentity>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_name_of_the_subject() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "ops");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ci-runner");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            ClientIdentity::from_certificate(cert.der()),
            Some(ClientIdentity {
                common_name: "ci-runner".into()
            })
        );
        let without = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        // rcgen puts a default CN in; a subject without one reads as empty.
        let id = ClientIdentity::from_certificate(without.der()).unwrap();
        assert_ne!(id.common_name, "ci-runner");
        assert_eq!(
            ClientIdentity::from_certificate(&CertificateDer::from(vec![1, 2, 3])),
            None
        );
    }
}
