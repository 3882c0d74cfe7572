//! The authorization tests' set-up, shared by tests/sim_authz.rs (simulated engines) and
//! tests/real_authz.rs (real engines and the docker CLI): one policy, and certificates
//! from one CA for Shoal and for the four clients it names or leaves out: tenants `a`
//! (`team-a`, constrained to `pool==batch`) and `b` (`team-b`), a read-only `auditor`, and
//! a `stranger` the policy does not list (`default = "deny"`).
//!
//! Included by both as a sibling of `pki` (tests/support/pki.rs): `mod support;` in the
//! real tests, `#[path]` modules in the simulated one, which needs nothing else of support.

use super::pki::{CertFiles, Pki};
use std::collections::HashMap;
use std::path::Path;

pub const POLICY: &str = r#"
default = "deny"

[clients.auditor]
read_only = true

[clients.team-a]
tenant = "a"
allow_exec = true
constraints = ["pool==batch"]

[clients.team-b]
tenant = "b"
allow_exec = true

[clients.team-c]
tenant = "c"
"#;

/// The client CNs the tests hold certificates for.
pub const CLIENTS: [&str; 5] = ["team-a", "team-b", "team-c", "auditor", "stranger"];

/// The CA, Shoal's certificate (for 127.0.0.1) and one certificate per client.
pub struct AuthzPki {
    pub pki: Pki,
    pub shoal: CertFiles,
    clients: HashMap<&'static str, CertFiles>,
}

impl AuthzPki {
    /// Makes them in `dir`.
    pub fn new(dir: &Path) -> AuthzPki {
        let pki = Pki::new(dir, "authz");
        let shoal = pki.shoal(&["IP:127.0.0.1"]);
        let clients = CLIENTS.iter().map(|cn| (*cn, pki.client(cn))).collect();
        AuthzPki {
            pki,
            shoal,
            clients,
        }
    }

    /// The certificate of client `cn` (one of [`CLIENTS`]).
    pub fn client(&self, cn: &str) -> &CertFiles {
        self.clients
            .get(cn)
            .unwrap_or_else(|| panic!("no certificate for {cn}"))
    }
}
