//! Container and exec routes, streams and hijacks through Shoal, against a REAL Docker
//! engine and the REAL `docker` CLI.
//!
//! The test starts its own throwaway dockerd (own data root, exec root, sockets, containerd
//! namespace; no bridge, no iptables) and never talks to the machine's own daemon. Shoal runs
//! in this process on its own thread and actix System, with `Discovery::Nodes`. Containers
//! are created directly on the engine (creation through Shoal is placement, tested
//! elsewhere); everything after is done through Shoal.
//!
//! Skipped (with a note) when there is no `dockerd` or `docker` binary, or not as root.

use shoal::config::{EngineSource, ListenAddr, ManageConfig};
use shoal::discovery::Discovery;
use shoal::server::{self, Listener};
use shoal_actors::cluster::ClusterConfig;
use shoal_actors::engine::{EngineAddr, Timeouts};
use shoal_actors::node::NodeConfig;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "sleep", "touch", "true", "false", "ps", "top", "mkdir", "rm",
];

/// A throwaway dockerd, stopped on drop.
struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    sock: PathBuf,
    port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("shoal-proxy-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path();
        let sock = root.join("docker.sock");
        let port = free_port();
        std::fs::write(root.join("daemon.json"), "{}").unwrap();
        let ns = format!("shoal-proxy-{}", std::process::id());
        let log = std::fs::File::create(root.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("-H")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .args(["--containerd", "/var/run/docker/containerd/containerd.sock"])
            .arg("--containerd-namespace")
            .arg(&ns)
            .arg("--containerd-plugins-namespace")
            .arg(format!("{ns}-p"))
            .args(["--storage-driver", "fuse-overlayfs"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let d = Dockerd {
            child,
            dir,
            sock,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while d
            .cli(&["version"])
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(d.dir.path().join("dockerd.log"));
                panic!("dockerd did not come up: {log:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        d
    }

    fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The CLI against this engine directly.
    fn cli(&self, args: &[&str]) -> std::io::Result<Output> {
        docker(&self.host(), self.dir.path(), args, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args).unwrap();
        assert!(o.status.success(), "engine: docker {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Imports busybox-static as `busybox:latest`.
    fn import_busybox(&self) {
        let rootfs = self.dir.path().join("rootfs");
        for d in ["bin", "tmp", "etc", "proc", "sys", "dev"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/usr/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in BUSYBOX_APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        let tar = self.dir.path().join("bb.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        self.ok(&["import", tar.to_str().unwrap(), "busybox:latest"]);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // Containers first, so their mounts are gone before the daemon is.
        if let Ok(o) = self.cli(&["ps", "-aq"]) {
            let ids = String::from_utf8_lossy(&o.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.cli(&args);
            }
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

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
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input)?;
            drop(pipe);
            child.wait_with_output()
        }
    }
}

/// Shoal on its own thread and System, in front of one engine.
struct Shoal {
    port: u16,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Shoal {
    fn start(engine_port: u16) -> Shoal {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let system = actix_rt::System::new();
            system.block_on(async move {
                let config = ManageConfig {
                    listen: ListenAddr::Tcp(format!("127.0.0.1:{port}")),
                    engines: EngineSource::Discovery(Discovery::Nodes(vec![EngineAddr::Tcp {
                        host: "127.0.0.1".into(),
                        port: engine_port,
                    }])),
                    cluster: ClusterConfig {
                        node: NodeConfig {
                            refresh_min: Duration::from_millis(300),
                            refresh_max: Duration::from_millis(600),
                            failure_retry: 3,
                        },
                        timeouts: Timeouts {
                            call: Duration::from_secs(10),
                        },
                        arbiters: 1,
                    },
                };
                let running = server::start(config, Listener::Tcp(listener))
                    .await
                    .expect("shoal starts");
                tx.send(running.server.handle()).unwrap();
                let _ = running.server.await;
            });
        });
        let server = rx.recv().unwrap();
        Shoal {
            port,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for Shoal {
    fn drop(&mut self) {
        // Asks the server to stop; its future ends, so does the thread's System.
        drop(self.server.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Fixture {
    shoal: Shoal,
    engine: Dockerd,
}

impl Fixture {
    fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.shoal.port)
    }

    fn run(&self, args: &[&str]) -> Output {
        docker(&self.host(), self.engine.dir.path(), args, None).unwrap()
    }

    fn run_in(&self, args: &[&str], stdin: &[u8]) -> Output {
        docker(&self.host(), self.engine.dir.path(), args, Some(stdin)).unwrap()
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
        self.engine
            .ok(&["inspect", "-f", "{{.State.Status}}", name])
            .to_string()
    }

    /// An HTTP/1.1 request to Shoal, whole answer (status, body).
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = connect(self.shoal.port);
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

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn available() -> bool {
    let has = |b: &str| {
        Command::new("which")
            .arg(b)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    has("dockerd") && has("docker") && root && Path::new("/usr/bin/busybox").exists()
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
    if !available() {
        eprintln!("skipped: needs root, dockerd, docker and /usr/bin/busybox");
        return;
    }
    let engine = Dockerd::start();
    engine.import_busybox();
    engine.ok(&[
        "create",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done",
    ]);
    let shoal = Shoal::start(engine.port);
    let fx = Fixture { shoal, engine };
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
                let before = open_fds();
                let mut child = Command::new("docker")
                    .env("DOCKER_CONFIG", fx.engine.dir.path().join("cli-config"))
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
                while open_fds() > before && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                assert!(open_fds() <= before, "{} > {before}", open_fds());
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
                let dir = fx.engine.dir.path().join("cp");
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
                    .env("DOCKER_CONFIG", fx.engine.dir.path().join("cli-config"))
                    .args(["-H", &fx.host(), "export", "web"])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                let tar = fx.engine.dir.path().join("web.tar");
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
                fx.engine
                    .ok(&["create", "-i", "--name", "cat1", "busybox", "cat"]);
                fx.wait_listed("cat1");
                let o = fx.run_in(&["start", "-ai", "cat1"], b"hello through attach\n");
                assert!(o.status.success(), "{o:?}");
                assert_eq!(String::from_utf8_lossy(&o.stdout), "hello through attach\n");
            }),
            ("attach", &|fx| {
                fx.engine
                    .ok(&["create", "-i", "--name", "cat2", "busybox", "cat"]);
                fx.wait_listed("cat2");
                fx.ok(&["start", "cat2"]);
                let o = fx.run_in(&["attach", "cat2"], b"hi\n");
                assert!(o.status.success(), "{o:?}");
                assert_eq!(String::from_utf8_lossy(&o.stdout), "hi\n");
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
                    let mut s = connect(fx.shoal.port);
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
                let before = open_fds();
                for _ in 0..200 {
                    one(fx);
                }
                let deadline = Instant::now() + Duration::from_secs(10);
                while open_fds() > before + 2 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                assert!(open_fds() <= before + 2, "fds {before} -> {}", open_fds());
            }),
            ("rm -f and prune", &|fx| {
                fx.ok(&["rm", "-f", "web"]);
                fx.engine
                    .ok(&["create", "--name", "dead1", "busybox", "true"]);
                fx.engine
                    .ok(&["create", "--name", "dead2", "busybox", "true"]);
                fx.wait_listed("dead2");
                let out = fx.ok(&["container", "prune", "-f"]);
                assert!(out.contains("Deleted Containers"), "{out}");
                assert!(out.contains("Total reclaimed space"), "{out}");
                let left = fx.engine.ok(&["ps", "-a", "--format", "{{.Names}}"]);
                assert!(!left.contains("dead1") && !left.contains("web"), "{left}");
            }),
        ],
    );
}
