//! The command line as an operator's tooling meets it: every flag is also an environment
//! variable `SHOAL_*` (what a service's environment file sets), the completion scripts
//! parse in their shells, and the man pages render.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while Shoal under test is a process of its own"
)]

mod support;

use clap::CommandFactory;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{docker_cli, served_addr};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// `shoal ARGS` with `envs` set and no other `SHOAL_*` variable of the caller's.
fn shoal(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(SHOAL);
    for (k, _) in std::env::vars() {
        if k.starts_with("SHOAL_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(envs.iter().copied());
    cmd
}

fn output(args: &[&str], envs: &[(&str, &str)]) -> (bool, String, String) {
    let o = shoal(args, envs).output().expect("shoal runs");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn every_flag_of_every_subcommand_has_a_shoal_environment_variable() {
    let mut cmd = shoal::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        for arg in sub.get_arguments() {
            let id = arg.get_id().as_str();
            // Flags only: a positional (DISCOVERY) is an operand, not a flag.
            if arg.is_positional() || id == "help" || id == "version" {
                continue;
            }
            match arg.get_env().and_then(|e| e.to_str()) {
                Some(env) if env.starts_with("SHOAL_") => {}
                other => missing.push(format!("shoal {} {id}: {other:?}", sub.get_name())),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "flags without a SHOAL_* environment variable (add `env = \"SHOAL_...\"`): {missing:#?}"
    );
}

#[test]
fn help_names_the_environment_variables() {
    let (ok, help, _) = output(&["manage", "--help"], &[]);
    assert!(ok);
    for env in [
        "[env: SHOAL_HOST=]",
        "[env: SHOAL_TLSVERIFY=]",
        "[env: SHOAL_ENGINE_REFRESH_MIN_INTERVAL=]",
        "[env: SHOAL_DISCOVERY=]",
    ] {
        assert!(help.contains(env), "no {env} in:\n{help}");
    }
}

#[test]
fn a_bad_value_in_the_environment_is_refused_like_a_bad_flag() {
    let (ok, _, err) = output(
        &["manage", "--sim", "1"],
        &[("SHOAL_ENGINE_FAILURE_RETRY", "0")],
    );
    assert!(!ok, "{err}");
    assert!(err.contains("--engine-failure-retry"), "{err}");
    let (ok, _, err) = output(&["manage", "--sim", "1"], &[("SHOAL_DEBUG", "maybe")]);
    assert!(!ok, "{err}");
    assert!(err.contains("--debug"), "{err}");
}

/// Shoal started from its environment alone (as a unit's `EnvironmentFile` starts it)
/// serves where SHOAL_HOST says, logs as SHOAL_LOG_FORMAT says, places as SHOAL_STRATEGY
/// says; and a flag on the command line beats its variable.
#[test]
fn the_environment_configures_manage_and_the_command_line_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("shoal.log");
    let mut child = shoal(
        &["manage", "--strategy", "binpack"],
        &[
            ("SHOAL_HOST", "127.0.0.1:0"),
            ("SHOAL_SIM", "2"),
            ("SHOAL_LOG_FORMAT", "json"),
            ("SHOAL_STRATEGY", "random"),
            ("SHOAL_FILTER", "health,constraint"),
            ("SHOAL_ENGINE_REFRESH_MIN_INTERVAL", "1s"),
            ("SHOAL_ENGINE_REFRESH_MAX_INTERVAL", "2s"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).expect("log"))
    .spawn()
    .expect("shoal starts");
    let _kill = KillOnDrop(&mut child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = served_addr(&text) {
            let line = text
                .lines()
                .find(|l| l.contains("serving the Docker API"))
                .unwrap_or_default();
            assert!(line.starts_with('{'), "not JSON: {line}");
            break addr;
        }
        assert!(Instant::now() < deadline, "never served: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(addr, "127.0.0.1:2375");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = docker_cli(&addr, &["info"]);
        if o.stdout.matches("└ Status: Healthy").count() == 2 {
            assert!(o.stdout.contains("Strategy: binpack"), "{o}");
            assert!(o.stdout.contains("Filters: health, constraint"), "{o}");
            break;
        }
        assert!(Instant::now() < deadline, "never two healthy nodes: {o}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program ARGS FILE` (PROGRAM found on PATH or at `env_var`) succeeds on a completion script written to FILE.
fn check_script(shell: &str, program: &str, env_var: &str, args: &[&str]) {
    let (ok, script, err) = output(&["completions", shell], &[]);
    assert!(ok && !script.is_empty(), "{err}");
    assert!(script.contains("manage") && script.contains("engine-refresh-min-interval"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("shoal.{shell}"));
    std::fs::write(&file, &script).expect("write");
    let program = support::find_program(env_var, program, shell);
    let o = Command::new(&program)
        .args(args)
        .arg(&file)
        .output()
        .expect("shell runs");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "{} {args:?} on the {shell} completion: {}",
        program.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_completion_scripts_parse_in_their_shells() {
    check_script("bash", "bash", "SHOAL_IT_BASH", &["-n"]);
    check_script("zsh", "zsh", "SHOAL_IT_ZSH", &["-n"]);
    check_script("fish", "fish", "SHOAL_IT_FISH", &["--no-execute"]);
}

#[test]
fn the_man_pages_render_without_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().to_str().expect("utf-8 path");
    let (ok, _, err) = output(&["man", "--out-dir", out], &[]);
    assert!(ok, "{err}");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "shoal-join.1",
            "shoal-list.1",
            "shoal-manage.1",
            "shoal-sim.1",
            "shoal.1"
        ]
    );
    let groff = support::find_program("SHOAL_IT_GROFF", "groff", "groff-base");
    let o = Command::new(groff)
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(dir.path().join("shoal-manage.1"))
        .output()
        .expect("groff runs");
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let page = std::fs::read_to_string(dir.path().join("shoal-manage.1")).expect("page");
    assert!(page.contains("SHOAL_TLSVERIFY"), "{page}");

    let (ok, stdout, _) = output(&["man"], &[]);
    assert!(ok && stdout.contains(".TH shoal 1"), "{stdout}");
}

/// Datagrams Shoal sends to a `NOTIFY_SOCKET` the test binds, as systemd's `Type=notify`
/// receives them.
struct NotifySocket {
    socket: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    /// Every datagram until one holds `READY=1` (that one is last), within `secs`.
    fn until_ready(&self, secs: u64, child: &mut std::process::Child) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let ready = text.lines().any(|l| l == "READY=1");
                got.push(text);
                if ready {
                    return got;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("shoal exited ({status}) before READY=1; got {got:?}");
            }
            assert!(Instant::now() < deadline, "no READY=1 in {secs} s: {got:?}");
        }
    }
}

/// `shoal manage -H 127.0.0.1:0 ARGS` with NOTIFY_SOCKET set, logging to a file.
fn manage_notifying(
    args: &[&str],
    notify: &NotifySocket,
    log: &std::path::Path,
) -> std::process::Child {
    let mut all = vec!["manage", "-H", "127.0.0.1:0"];
    all.extend_from_slice(args);
    shoal(&all, &[])
        .env("NOTIFY_SOCKET", &notify.path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("shoal starts")
}

/// systemd's `Type=notify`: READY=1 comes once the API serves and every engine has been
/// heard from, so `docker info` at that moment already shows every node healthy.
#[test]
fn ready_is_sent_once_serving_with_a_full_view() {
    let notify = NotifySocket::bind();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("shoal.log");
    let mut child = manage_notifying(&["--sim", "3"], &notify, &log);
    let _kill = KillOnDrop(&mut child);
    let got = notify.until_ready(30, _kill.0);
    let ready = got.last().expect("a datagram");
    assert!(
        ready.contains("STATUS=3 of 3 nodes answered, 3 healthy"),
        "{got:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let addr = served_addr(&text).unwrap_or_else(|| panic!("READY=1 before serving: {text}"));
    let o = docker_cli(&addr, &["info"]);
    assert_eq!(o.stdout.matches("└ Status: Healthy").count(), 3, "{o}");
}

/// An engine that refuses connections is heard from too (its first refresh failed): the
/// service becomes ready instead of waiting for it, and says so in its status.
#[test]
fn ready_does_not_wait_for_a_dead_engine() {
    let notify = NotifySocket::bind();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("shoal.log");
    let mut child = manage_notifying(
        &["nodes://127.0.0.1:1", "--engine-timeout", "2s"],
        &notify,
        &log,
    );
    let _kill = KillOnDrop(&mut child);
    let got = notify.until_ready(20, _kill.0);
    assert!(
        got.last()
            .is_some_and(|r| r.contains("STATUS=1 of 1 nodes answered, 0 healthy")),
        "{got:?}"
    );
}
