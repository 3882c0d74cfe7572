//! Shoal packaged as operators run it, built and used on this machine: the container image
//! (`deploy/image`) run on the machine's own Docker over real engines, and the Debian
//! package (`deploy/debian`, `cargo deb`) checked and unpacked into a scratch root.
//!
//! Both build from the debug binary this test run already has, so neither compiles Shoal
//! again (the image test takes ~15 s, the package test ~25 s, most of it compressing).
//! The package test needs `cargo deb` (`.ci/run` installs it) and systemd's
//! `systemd-analyze`, which checks the unit offline. Whatever the image test makes on the machine's engine (an image under a tag of its
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

/// Removes what an earlier run of this test, killed before its drop, left on the
/// machine's engine: containers `shoal-it-{plain,tls}-PID-...` and images
/// `shoal-it-image:PID-...` whose PID is no longer alive.
fn sweep_stale() {
    let dead = |pid: &str| !Path::new("/proc").join(pid).exists();
    let names = docker_cli(
        MACHINE,
        &[
            "ps",
            "-a",
            "--filter",
            "name=shoal-it-",
            "--format",
            "{{.Names}}",
        ],
    );
    for name in names.stdout.lines() {
        let pid = name
            .strip_prefix("shoal-it-plain-")
            .or_else(|| name.strip_prefix("shoal-it-tls-"))
            .and_then(|rest| rest.split('-').next());
        if pid.is_some_and(dead) {
            let _ = docker_cli(MACHINE, &["rm", "-f", name]);
        }
    }
    let tags = docker_cli(
        MACHINE,
        &["images", "shoal-it-image", "--format", "{{.Tag}}"],
    );
    for tag in tags.stdout.lines() {
        if tag.split('-').next().is_some_and(dead) {
            let _ = docker_cli(MACHINE, &["rmi", "-f", &format!("shoal-it-image:{tag}")]);
        }
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
    sweep_stale();
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

/// `program ARGS`, its status and both streams as text.
fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The Debian package from `deploy/debian/build.sh` (cargo-deb over the test's binary):
/// what it holds, what dpkg makes of it when it unpacks it into a scratch root, and the
/// unit and environment file it installs, checked there by systemd's own tools.
#[test]
fn the_debian_package_installs_binary_unit_man_pages_and_completions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("out");
    let out_dir_arg = out_dir.to_str().expect("utf-8 path");
    let (ok, log) = run(
        "bash",
        &[
            &format!("{REPO}/deploy/debian/build.sh"),
            SHOAL,
            "--output",
            out_dir_arg,
            // Compression of a debug binary is most of the build: the quick kind.
            "--fast",
        ],
    );
    assert!(ok, "build.sh: {log}");
    let deb = std::fs::read_dir(&out_dir)
        .expect("output dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("no .deb in {}: {log}", out_dir.display()));
    let deb = deb.to_str().expect("utf-8 path");

    let (ok, contents) = run("dpkg-deb", &["-c", deb]);
    assert!(ok, "{contents}");
    for path in [
        "./usr/bin/shoal",
        "./usr/lib/systemd/system/shoal.service",
        "./etc/default/shoal",
        "./usr/share/man/man1/shoal.1.gz",
        "./usr/share/man/man1/shoal-manage.1.gz",
        "./usr/share/bash-completion/completions/shoal",
        "./usr/share/zsh/vendor-completions/_shoal",
        "./usr/share/fish/vendor_completions.d/shoal.fish",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in the package:\n{contents}"
        );
    }
    let (ok, info) = run("dpkg-deb", &["-I", deb]);
    assert!(ok, "{info}");
    assert!(info.contains("Package: shoal"), "{info}");
    assert!(info.contains("Depends: adduser, libc6"), "{info}");
    let (ok, postinst) = run("dpkg-deb", &["-I", deb, "postinst"]);
    assert!(ok && postinst.contains("adduser --system"), "{postinst}");
    // Installed disabled: nothing enables or starts it unless it was enabled before.
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");

    // dpkg's own install into a scratch root: unpacked (no maintainer script runs there),
    // its files and conffile registered.
    let root = dir.path().join("root");
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(d)).expect("dpkg dirs");
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").expect("status");
    let root_arg = format!("--root={}", root.display());
    let (ok, log) = run("dpkg", &[&root_arg, "--unpack", deb]);
    assert!(ok, "dpkg --unpack: {log}");
    let (ok, status) = run("dpkg", &[&root_arg, "-s", "shoal"]);
    assert!(
        ok && status.contains("Status: install ok unpacked"),
        "{status}"
    );
    assert!(
        status.contains("/etc/default/shoal"),
        "no conffile: {status}"
    );
    let bin = root.join("usr/bin/shoal");
    let (ok, version) = run(bin.to_str().expect("utf-8"), &["--version"]);
    assert!(ok && version.starts_with("shoal "), "{version}");

    check_unit(&root);
    // A conffile waits beside its place until `dpkg --configure` (which would run
    // postinst): that is where it is after an unpack.
    check_environment_file(&root.join("etc/default/shoal.dpkg-new"));
}

/// The installed unit passes `systemd-analyze verify` (no unknown key, its programs
/// there) and its sandbox scores at most 2.0 of 10 in `systemd-analyze security`.
fn check_unit(root: &Path) {
    // ExecReload's /bin/kill belongs to procps on a real system; verify wants it there.
    let kill = root.join("bin/kill");
    std::fs::create_dir_all(root.join("bin")).expect("bin");
    std::fs::write(&kill, "#!/bin/sh\n").expect("kill");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kill, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let root_arg = format!("--root={}", root.display());
    let (ok, log) = run(
        "systemd-analyze",
        &[
            "verify",
            &root_arg,
            "--man=no",
            "--recursive-errors=no",
            "shoal.service",
        ],
    );
    assert!(ok && log.trim().is_empty(), "systemd-analyze verify: {log}");
    let (ok, log) = run(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            &root_arg,
            "--threshold=20",
            "shoal.service",
        ],
    );
    assert!(ok, "systemd-analyze security above 2.0: {log}");
    let unit =
        std::fs::read_to_string(root.join("usr/lib/systemd/system/shoal.service")).expect("unit");
    for line in [
        "Type=notify",
        "EnvironmentFile=-/etc/default/shoal",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == line), "no {line} in the unit");
    }
}

/// Every `SHOAL_*` the environment file names (set or commented out) is a flag's
/// variable, and the file as shipped starts nothing unsafe: Shoal reads it and serves on
/// loopback.
fn check_environment_file(path: &Path) {
    use clap::CommandFactory;
    let text = std::fs::read_to_string(path).expect("environment file");
    let mut cmd = shoal::cli::Cli::command();
    cmd.build();
    let manage = cmd.find_subcommand("manage").expect("manage");
    let known: Vec<String> = manage
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    let mut named = 0;
    for line in text.lines() {
        let line = line.trim_start_matches('#');
        if let Some((key, _)) = line.split_once('=') {
            if key.starts_with("SHOAL_") && !key.contains(' ') {
                named += 1;
                assert!(
                    known.iter().any(|k| k == key),
                    "{key} is no flag's variable"
                );
            }
        }
    }
    assert!(named >= 10, "{text}");
    let set: Vec<&str> = text.lines().filter(|l| l.starts_with("SHOAL_")).collect();
    assert_eq!(set, ["SHOAL_HOST=127.0.0.1:2375"], "{text}");
}
