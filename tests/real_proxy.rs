//! Container and exec routes, streams and hijacks through Shoal, against REAL Docker
//! engines and the REAL `docker` CLI.
//!
//! Two engines from the shared harness; Shoal (the real binary) in front of them.
//! Containers are created directly on the first engine (creation through Shoal is
//! placement, tested elsewhere); everything after is done through Shoal, which must route
//! each call to that engine.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{RealCluster, ShoalDaemon};

/// Runs the docker CLI against `host`, with a config dir of its own.
fn docker(host: &str, dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> std::io::Result<Output> {
    // `timeout`: a hung call fails its step instead of hanging the test.
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "docker"])
        .env("DOCKER_CONFIG", dir.join("cli-config"))
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .arg("-H")
        .arg(host)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match stdin {
        None => {
            cmd.stdin(Stdio::null());
            cmd.output()
        }
        Some(input) => {
            cmd.stdin(Stdio::piped());
            let mut child = cmd.spawn()?;
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(input)?;
            drop(pipe);
            child.wait_with_output()
        }
    }
}

/// The first engine, for what the test does straight on it.
struct Engine<'a>(&'a support::RealEngine);

impl Engine<'_> {
    /// Straight on the engine; must succeed; answers stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.0.docker(args).expect_success().stdout
    }
}

struct Fixture {
    cluster: RealCluster,
    shoal: ShoalDaemon,
    /// Where the CLI keeps its config and where `docker cp` and `export` write.
    dir: tempfile::TempDir,
}

impl Fixture {
    fn host(&self) -> String {
        format!("tcp://{}", self.shoal.host())
    }

    fn port(&self) -> u16 {
        self.shoal
            .host()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    fn engine(&self) -> Engine<'_> {
        Engine(&self.cluster.engines()[0])
    }

    fn run(&self, args: &[&str]) -> Output {
        docker(&self.host(), self.dir.path(), args, None).expect("docker runs")
    }

    fn run_in(&self, args: &[&str], stdin: &[u8]) -> Output {
        docker(&self.host(), self.dir.path(), args, Some(stdin)).expect("docker runs")
    }

    /// Through Shoal; must succeed; answers stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "shoal: docker {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Waits until Shoal's container list shows `name`.
    fn wait_listed(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = self.ok(&["ps", "-a", "--format", "{{.Names}}"]);
            if out
                .lines()
                .any(|l| l.trim().ends_with(&format!("/{name}")) || l.trim() == name)
            {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never listed: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn state(&self, name: &str) -> String {
        self.engine()
            .ok(&["inspect", "-f", "{{.State.Status}}", name])
            .trim()
            .to_string()
    }

    /// An HTTP/1.1 request to Shoal, whole answer (status, body).
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = connect(self.port());
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string();
        (status, body)
    }
}

/// A connection to Shoal that gives up instead of hanging the test.
fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Open file descriptors of the Shoal process.
fn open_fds(fx: &Fixture) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", fx.shoal.pid()))
        .expect("shoal's /proc entry")
        .count()
}

/// Runs each step, collecting failures, so one broken step does not hide the others.
/// A named step of the test.
type Step<'a> = (&'a str, &'a dyn Fn(&Fixture));

fn steps(fx: &Fixture, steps: &[Step<'_>]) {
    let mut failed = Vec::new();
    for (name, step) in steps {
        let started = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(fx)));
        eprintln!(
            "step {name}: {} in {:?}",
            if r.is_ok() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        if r.is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed steps: {failed:?}");
}

#[test]
fn the_docker_cli_works_containers_and_execs_through_shoal() {
    let cluster = RealCluster::new()
        .engines(2)
        .start()
        .expect("engines start");
    Engine(&cluster.engines()[0]).ok(&[
        "create",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done",
    ]);
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let fx = Fixture {
        cluster,
        shoal,
        dir: tempfile::tempdir().expect("temp dir"),
    };
    fx.wait_listed("web");

    steps(
        &fx,
        &[
            ("start", &|fx| {
                fx.ok(&["start", "web"]);
                assert_eq!(fx.state("web"), "running");
            }),
            ("logs --tail 5 -t", &|fx| {
                std::thread::sleep(Duration::from_millis(1500));
                let out = fx.ok(&["logs", "--tail", "5", "-t", "web"]);
                let lines: Vec<&str> = out.lines().collect();
                assert_eq!(lines.len(), 5, "{out}");
                for l in lines {
                    assert!(l.starts_with("20") && l.contains(" line "), "{l}");
                }
            }),
            ("logs -f stops with the client", &|fx| {
                let before = open_fds(fx);
                let mut child = Command::new("docker")
                    .env("DOCKER_CONFIG", fx.dir.path().join("cli-config"))
                    .args(["-H", &fx.host(), "logs", "-f", "--tail", "0", "web"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap())
                    .read_line(&mut line)
                    .unwrap();
                assert!(line.starts_with("line "), "{line:?}");
                child.kill().unwrap();
                child.wait().unwrap();
                // The client's connection and the engine's close together.
                let deadline = Instant::now() + Duration::from_secs(5);
                while open_fds(fx) > before && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                assert!(open_fds(fx) <= before, "{} > {before}", open_fds(fx));
            }),
            ("top", &|fx| {
                let out = fx.ok(&["top", "web"]);
                assert!(
                    out.contains("PID") && out.contains("sleep") || out.contains("sh"),
                    "{out}"
                );
            }),
            ("stats --no-stream", &|fx| {
                let out = fx.ok(&["stats", "--no-stream", "web"]);
                assert!(out.contains("web"), "{out}");
            }),
            ("exec ls /", &|fx| {
                let out = fx.ok(&["exec", "web", "ls", "/"]);
                assert!(out.lines().any(|l| l == "bin"), "{out}");
            }),
            ("exec -i cat (half-close)", &|fx| {
                let o = fx.run_in(&["exec", "-i", "web", "cat"], b"data\nmore data\n");
                assert!(o.status.success(), "{o:?}");
                assert_eq!(String::from_utf8_lossy(&o.stdout), "data\nmore data\n");
            }),
            ("exec exit code", &|fx| {
                let o = fx.run(&["exec", "web", "sh", "-c", "echo out; echo err >&2; exit 3"]);
                assert_eq!(o.status.code(), Some(3));
                assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
                assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
            }),
            ("exec -d", &|fx| {
                fx.ok(&["exec", "-d", "web", "sh", "-c", "echo d > /tmp/detached"]);
                std::thread::sleep(Duration::from_millis(300));
                assert_eq!(fx.ok(&["exec", "web", "cat", "/tmp/detached"]), "d\n");
            }),
            ("diff", &|fx| {
                fx.ok(&["exec", "web", "sh", "-c", "echo x > /newfile"]);
                let out = fx.ok(&["diff", "web"]);
                assert!(out.lines().any(|l| l == "A /newfile"), "{out}");
            }),
            ("cp both ways", &|fx| {
                let dir = fx.dir.path().join("cp");
                std::fs::create_dir_all(&dir).unwrap();
                let local = dir.join("f");
                std::fs::write(&local, "from the host\n").unwrap();
                fx.ok(&["cp", local.to_str().unwrap(), "web:/tmp/"]);
                assert_eq!(fx.ok(&["exec", "web", "cat", "/tmp/f"]), "from the host\n");
                let back = dir.join("back");
                fx.ok(&["cp", "web:/newfile", back.to_str().unwrap()]);
                assert_eq!(std::fs::read_to_string(&back).unwrap(), "x\n");
            }),
            ("export", &|fx| {
                let out = Command::new("docker")
                    .env("DOCKER_CONFIG", fx.dir.path().join("cli-config"))
                    .args(["-H", &fx.host(), "export", "web"])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                let tar = fx.dir.path().join("web.tar");
                std::fs::write(&tar, &out.stdout).unwrap();
                let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
                let list = String::from_utf8_lossy(&list.stdout);
                assert!(
                    list.lines()
                        .any(|l| l.trim_start_matches("./") == "bin/busybox"),
                    "{list}"
                );
                assert!(
                    list.lines()
                        .any(|l| l.trim_start_matches("./") == "newfile"),
                    "{list}"
                );
            }),
            ("pause and unpause", &|fx| {
                fx.ok(&["pause", "web"]);
                assert_eq!(fx.state("web"), "paused");
                fx.ok(&["unpause", "web"]);
                assert_eq!(fx.state("web"), "running");
            }),
            ("rename", &|fx| {
                fx.ok(&["rename", "web", "web2"]);
                fx.wait_listed("web2");
                fx.ok(&["rename", "web2", "web"]);
                fx.wait_listed("web");
            }),
            ("restart, stop, kill, wait", &|fx| {
                fx.ok(&["restart", "-t", "1", "web"]);
                assert_eq!(fx.state("web"), "running");
                fx.ok(&["stop", "-t", "1", "web"]);
                assert_eq!(fx.state("web"), "exited");
                assert_eq!(fx.ok(&["wait", "web"]).trim(), "137");
                fx.ok(&["start", "web"]);
                fx.ok(&["kill", "web"]);
                let code = fx.ok(&["wait", "web"]);
                assert_eq!(fx.state("web"), "exited", "{code}");
            }),
            ("start -ai (attach hijack)", &|fx| {
                fx.engine()
                    .ok(&["create", "-i", "--name", "cat1", "busybox", "cat"]);
                fx.wait_listed("cat1");
                let o = fx.run_in(&["start", "-ai", "cat1"], b"hello through attach\n");
                assert!(o.status.success(), "{o:?}");
                assert_eq!(String::from_utf8_lossy(&o.stdout), "hello through attach\n");
            }),
            ("attach", &|fx| {
                fx.engine()
                    .ok(&["create", "-i", "--name", "cat2", "busybox", "cat"]);
                fx.wait_listed("cat2");
                fx.ok(&["start", "cat2"]);
                let o = fx.run_in(&["attach", "cat2"], b"hi\n");
                assert!(o.status.success(), "{o:?}");
                assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
            }),
            ("attach over WebSocket", &|fx| {
                fx.engine()
                    .ok(&["create", "-i", "--name", "wscat", "busybox", "cat"]);
                fx.wait_listed("wscat");
                fx.ok(&["start", "wscat"]);
                let url = format!(
                    "ws://{}/v1.41/containers/wscat/attach/ws?stream=1&stdin=1&stdout=1",
                    fx.shoal.host()
                );
                let got = support::ws_attach::echo_line(awc::Client::new, &url, "hello over ws\n");
                assert_eq!(got, "hello over ws\n");
                let (status, body) = fx.http("GET", "/containers/nope/attach/ws", "");
                assert_eq!(status, 404, "{body}");
                fx.ok(&["rm", "-f", "wscat"]);
            }),
            ("unknown container", &|fx| {
                let o = fx.run(&["start", "nosuch"]);
                assert!(!o.status.success());
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(err.contains("No such container: nosuch"), "{err}");
                let o = fx.run(&["attach", "nosuch"]);
                assert!(!o.status.success());
                let (status, body) =
                    fx.http("POST", "/v1.41/containers/nosuch/attach?stream=1", "");
                assert_eq!(status, 404, "{body}");
                assert!(body.contains("No such container: nosuch"), "{body}");
                let (status, body) = fx.http("GET", "/v1.41/exec/nosuch/json", "");
                assert_eq!(status, 404, "{body}");
            }),
            ("200 hijacked execs leak nothing", &|fx| {
                fx.ok(&["start", "web"]);
                let one = |fx: &Fixture| {
                    let (status, body) = fx.http(
                        "POST",
                        "/v1.41/containers/web/exec",
                        r#"{"AttachStdout":true,"AttachStderr":true,"AttachStdin":true,"Cmd":["cat"]}"#,
                    );
                    assert_eq!(status, 201, "{body}");
                    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let exec = exec["Id"].as_str().unwrap().to_string();
                    let mut s = connect(fx.port());
                    let body = r#"{"Detach":false,"Tty":false}"#;
                    write!(
                        s,
                        "POST /v1.41/exec/{exec}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .unwrap();
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        s.read_exact(&mut byte).unwrap();
                        head.push(byte[0]);
                    }
                    assert!(
                        head.starts_with(b"HTTP/1.1 101"),
                        "{}",
                        String::from_utf8_lossy(&head)
                    );
                    s.write_all(b"ping\n").unwrap();
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut out = Vec::new();
                    s.read_to_end(&mut out).unwrap();
                    // One stdout frame: 8-byte header, then the bytes.
                    assert_eq!(&out[..8], &[1, 0, 0, 0, 0, 0, 0, 5]);
                    assert_eq!(&out[8..], b"ping\n");
                };
                for _ in 0..5 {
                    one(fx);
                }
                std::thread::sleep(Duration::from_millis(500));
                let before = open_fds(fx);
                for _ in 0..200 {
                    one(fx);
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                while open_fds(fx) > before + 2 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                assert!(
                    open_fds(fx) <= before + 2,
                    "fds {before} -> {}",
                    open_fds(fx)
                );
            }),
            ("rm -f and prune", &|fx| {
                fx.ok(&["rm", "-f", "web"]);
                fx.engine()
                    .ok(&["create", "--name", "dead1", "busybox", "true"]);
                fx.engine()
                    .ok(&["create", "--name", "dead2", "busybox", "true"]);
                fx.wait_listed("dead2");
                let out = fx.ok(&["container", "prune", "-f"]);
                assert!(out.contains("Deleted Containers"), "{out}");
                assert!(out.contains("Total reclaimed space"), "{out}");
                let left = fx.engine().ok(&["ps", "-a", "--format", "{{.Names}}"]);
                assert!(!left.contains("dead1") && !left.contains("web"), "{left}");
            }),
        ],
    );
}
