//! Shoal packaged as operators run it, built and used on this machine: the container image
//! (`deploy/image`) run on the machine's own Docker over real engines, and the Debian
//! package (`deploy/debian`, `cargo deb`) checked and unpacked into a scratch root.
//!
//! Both build from the debug binary this test run already has, so neither compiles Shoal
//! again. Whatever the image test makes on the machine's engine (an image under a tag of its
//! own, its containers) is removed when the test ends, also when it fails.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while engines, Shoal and the machine's Docker are processes of their own"
)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use support::pki::Pki;
use support::{docker_cli, DockerOutput, DockerTls, HarnessError, RealCluster};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The machine's own Docker daemon, where the image is built and run.
const MACHINE: &str = "unix:///var/run/docker.sock";

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// What a test made on the machine's engine: removed on drop (containers first, then the
/// image), also when the test panics.
struct OnMachine {
    tag: String,
    containers: Vec<String>,
}

impl OnMachine {
    fn docker(&self, args: &[&str]) -> DockerOutput {
        docker_cli(MACHINE, args)
    }

    /// `docker run -d --name NAME ARGS`, the container removed with the image.
    fn run(&mut self, name: &str, args: &[&str]) -> DockerOutput {
        self.containers.push(name.to_string());
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(args);
        self.docker(&all)
    }

    /// The container's log so far (Shoal logs to stderr).
    fn logs(&self, name: &str) -> String {
        let o = self.docker(&["logs", name]);
        format!("{}{}", o.stdout, o.stderr)
    }
}

impl Drop for OnMachine {
    fn drop(&mut self) {
        for c in &self.containers {
            if std::thread::panicking() {
                eprintln!("--- container {c} ---\n{}", self.logs(c));
            }
            let _ = self.docker(&["rm", "-f", c]);
        }
        let _ = self.docker(&["rmi", "-f", &self.tag]);
    }
}

/// Runs `deploy/image/build.sh` over the test's binary against the machine's engine.
fn build_image(tag: &str) {
    let out = Command::new("bash")
        .arg(Path::new(REPO).join("deploy/image/build.sh"))
        .args([SHOAL, tag, "--quiet"])
        .env("DOCKER_HOST", MACHINE)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .output()
        .expect("bash runs build.sh");
    assert!(
        out.status.success(),
        "build.sh failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The address Shoal in container `name` says it serves on.
fn served_in(machine: &OnMachine, name: &str) -> String {
    let mut addr = String::new();
    support::wait_until("shoal in the container to serve", 30, || {
        let log = machine.logs(name);
        match support::served_addr(&log) {
            Some(a) => {
                addr = a;
                Ok(())
            }
            None => Err(log),
        }
    });
    addr
}

/// The image, FROM scratch, run twice on the machine's Docker:
/// - as the README's command runs it: `-p 127.0.0.1::2375`, an engine's socket mounted as
///   /var/run/docker.sock (the default discovery), `-H 0.0.0.0:2375 --insecure-listen`;
/// - with TLS on both legs over two `dockerd --tlsverify` engines, its files mounted
///   read-only, on the host's network (the engines' addresses are the host's routes),
///   driven by the docker CLI with a client certificate: `run --rm` through it.
#[test]
fn the_image_serves_the_docker_cli_over_real_engines() -> Result<(), HarnessError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(&dir.path().join("pki"), "image");
    let cluster = RealCluster::new().engines(2).tls(&pki).start()?;
    let id = unique();
    let mut machine = OnMachine {
        tag: format!("shoal-it-image:{id}"),
        containers: Vec::new(),
    };
    build_image(&machine.tag);

    // Nothing in the image but the binary, its libraries and /tmp.
    let o = machine
        .docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .Config.Entrypoint}} {{len .RootFS.Layers}}",
            &machine.tag,
        ])
        .expect_success();
    assert_eq!(o.out(), r#"["/usr/bin/shoal"] 1"#, "{o}");

    // The README's command: published on loopback, the engine's socket as the default.
    let socket = cluster.engines()[0].unix_socket();
    let mount = format!("{}:/var/run/docker.sock", socket.display());
    let plain = format!("shoal-it-plain-{id}");
    machine
        .run(
            &plain,
            &[
                "-p",
                "127.0.0.1::2375",
                "-v",
                &mount,
                &machine.tag.clone(),
                "manage",
                "-H",
                "0.0.0.0:2375",
                "--insecure-listen",
                "--engine-refresh-min-interval",
                "1s",
                "--engine-refresh-max-interval",
                "2s",
            ],
        )
        .expect_success();
    let port = machine
        .docker(&["port", &plain, "2375/tcp"])
        .expect_success();
    let published = port
        .out()
        .lines()
        .find(|l| l.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("not published on loopback: {port}"))
        .to_string();
    support::wait_until("node-1 healthy through the published port", 30, || {
        let o = docker_cli(&published, &["info"]);
        if o.stdout.contains("node-1") && o.stdout.contains("└ Status: Healthy") {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });

    // TLS: the files mounted read-only, engines dialled with the same certificate.
    let shoal_cert = pki.shoal(&["IP:127.0.0.1"]);
    let tls_mount = format!(
        "{}:/etc/shoal/tls:ro",
        shoal_cert.docker_cert_path().display()
    );
    let discovery = format!("nodes://{}", cluster.tcp_addrs());
    let tls = format!("shoal-it-tls-{id}");
    machine
        .run(
            &tls,
            &[
                "--network",
                "host",
                "-v",
                &tls_mount,
                "-e",
                "SHOAL_TLSVERIFY=true",
                &machine.tag.clone(),
                "manage",
                "-H",
                "127.0.0.1:0",
                "--tlscacert",
                "/etc/shoal/tls/ca.pem",
                "--tlscert",
                "/etc/shoal/tls/cert.pem",
                "--tlskey",
                "/etc/shoal/tls/key.pem",
                "--engine-refresh-min-interval",
                "1s",
                "--engine-refresh-max-interval",
                "2s",
                &discovery,
            ],
        )
        .expect_success();
    let addr = served_in(&machine, &tls);
    let alice = pki.client("alice");
    let cli = DockerTls::new(&addr, &alice.docker_cert_path());
    support::wait_until("two healthy nodes over TLS", 30, || {
        let o = cli.run(&["info"]);
        if o.stdout.matches("└ Status: Healthy").count() == 2 {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    let o = cli.run(&["run", "--rm", "busybox", "echo", "from the image"]);
    assert!(o.success() && o.out() == "from the image", "{o}");
    // Without a client certificate the handshake fails: TLS is really on.
    let o = docker_cli(&addr, &["version"]);
    assert!(!o.success(), "{o}");
    Ok(())
}
