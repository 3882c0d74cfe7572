//! Certificates for TLS tests, made with the `openssl` CLI by the same commands the
//! README's "Security" section gives users: a CA, then certificates it signs for Shoal
//! (serverAuth and clientAuth: it serves clients and is a client of the engines), for
//! engines (serverAuth, the engine's IP) and for clients (clientAuth, a CN naming them).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A certificate, its key and the CA that signed it, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    /// These files as `shoal`'s flags for dialing engines (`manage` and `join`):
    /// `--engine-tlscacert CA --engine-tlscert CERT --engine-tlskey KEY`.
    pub fn engine_tls_args(&self) -> Vec<String> {
        [
            ("--engine-tlscacert", &self.ca),
            ("--engine-tlscert", &self.cert),
            ("--engine-tlskey", &self.key),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect()
    }

    /// A directory laid out as the docker CLI's `DOCKER_CERT_PATH` wants it (`ca.pem`,
    /// `cert.pem`, `key.pem`), made beside the files.
    pub fn docker_cert_path(&self) -> PathBuf {
        let stem = self
            .cert
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = self.cert.with_file_name(format!("{stem}.d"));
        std::fs::create_dir_all(&dir).expect("cert path dir");
        for (from, to) in [
            (&self.ca, "ca.pem"),
            (&self.cert, "cert.pem"),
            (&self.key, "key.pem"),
        ] {
            std::fs::copy(from, dir.join(to)).expect("copy into the cert path");
        }
        dir
    }
}

/// A CA in a directory of its own.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    ca_key: PathBuf,
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A P-256 key (quick to make; rustls, dockerd and the docker CLI all take it).
fn new_key(path: &str, dir: &Path) {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            path,
        ],
        dir,
    );
}

impl Pki {
    /// A new CA named `name` with its files in `dir` (`<name>-ca.pem`, `<name>-ca-key.pem`).
    pub fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let ca_key = format!("{name}-ca-key.pem");
        let ca = format!("{name}-ca.pem");
        new_key(&ca_key, dir);
        openssl(
            &[
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-sha256",
                "-key",
                &ca_key,
                "-subj",
                &format!("/CN={name} CA"),
                "-out",
                &ca,
            ],
            dir,
        );
        Pki {
            dir: dir.to_path_buf(),
            ca: dir.join(ca),
            ca_key: dir.join(ca_key),
        }
    }

    pub fn ca(&self) -> &Path {
        &self.ca
    }

    /// A certificate signed by this CA, for `cn`, with the extensions `ext` (an openssl
    /// extfile's lines, e.g. `subjectAltName=IP:10.0.0.5` and
    /// `extendedKeyUsage=serverAuth`). Files `<stem>-cert.pem` and `<stem>-key.pem`.
    pub fn issue(&self, stem: &str, cn: &str, ext: &[&str]) -> CertFiles {
        let (key, csr, extfile, cert) = (
            format!("{stem}-key.pem"),
            format!("{stem}.csr"),
            format!("{stem}.ext"),
            format!("{stem}-cert.pem"),
        );
        new_key(&key, &self.dir);
        openssl(
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-subj",
                &format!("/CN={cn}"),
                "-out",
                &csr,
            ],
            &self.dir,
        );
        std::fs::write(self.dir.join(&extfile), ext.join("\n") + "\n").expect("extfile");
        let ca = self.ca.display().to_string();
        let ca_key = self.ca_key.display().to_string();
        openssl(
            &[
                "x509",
                "-req",
                "-days",
                "2",
                "-sha256",
                "-in",
                &csr,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-extfile",
                &extfile,
                "-out",
                &cert,
            ],
            &self.dir,
        );
        CertFiles {
            ca: self.ca.clone(),
            cert: self.dir.join(cert),
            key: self.dir.join(key),
        }
    }

    /// Shoal's certificate: it serves clients at `sans` (e.g. `IP:127.0.0.1`) and shows
    /// the same certificate to engines, so it is for both uses.
    pub fn shoal(&self, sans: &[&str]) -> CertFiles {
        self.issue(
            "shoal",
            "shoal",
            &[
                &format!("subjectAltName={}", sans.join(",")),
                "extendedKeyUsage=serverAuth,clientAuth",
            ],
        )
    }

    /// An engine's certificate for its address `ip`.
    pub fn engine(&self, stem: &str, ip: &str) -> CertFiles {
        self.issue(
            stem,
            stem,
            &[
                &format!("subjectAltName=IP:{ip}"),
                "extendedKeyUsage=serverAuth",
            ],
        )
    }

    /// A client's certificate, named `cn`.
    pub fn client(&self, cn: &str) -> CertFiles {
        self.issue(cn, cn, &["extendedKeyUsage=clientAuth"])
    }
}
