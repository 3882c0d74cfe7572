//! Cleanup of harness clusters: the one a `RealCluster` drops, and the leftovers of
//! earlier runs that crashed or were killed before their `Drop` ran.
//!
//! Every cluster lives in its own `/tmp/shoal-it-<pid>-<seq>/` and holds an exclusive
//! lock on `owner.lock` inside it for its whole life. A directory whose lock can be
//! taken has no live owner, so its engines, containers, mounts and files can go. The
//! machine's own dockerd never matches: only command lines that name a harness
//! directory are touched.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::{Duration, SystemTime};

use super::proc::{pids_matching, quiet, remove_tree, terminate, unmount_under};

/// Every harness directory starts with this; it also names the containerd namespaces.
pub const BASE_PREFIX: &str = "/tmp/shoal-it-";
/// Held (flock) by the process that owns a cluster directory.
pub const LOCK_FILE: &str = "owner.lock";

/// Removes what crashed runs left behind, once per test process.
pub fn sweep_stale_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sweep_stale);
}

fn sweep_stale() {
    let (parent, name_prefix) = BASE_PREFIX.rsplit_once('/').expect("absolute prefix");
    if let Ok(entries) = std::fs::read_dir(parent) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(name_prefix) || !entry.path().is_dir() {
                continue;
            }
            let dir = entry.path();
            match File::open(dir.join(LOCK_FILE)) {
                // Locked by its owner: a live cluster, maybe of another test binary.
                // A lock file younger than a few seconds may belong to an owner that has
                // created it but not locked it yet.
                Ok(lock) => {
                    if age(&dir.join(LOCK_FILE)) > Duration::from_secs(5) && lock.try_lock().is_ok()
                    {
                        eprintln!("shoal test harness: removing stale {}", dir.display());
                        clean_dir(&dir, &name);
                    }
                }
                // No lock file at all: a run that died while creating it.
                Err(_) => {
                    if age(&dir) > Duration::from_secs(120) {
                        clean_dir(&dir, &name);
                    }
                }
            }
        }
    }

    // Engines whose directory is already gone (removed by hand, say).
    let orphans: Vec<u32> = pids_matching(BASE_PREFIX)
        .into_iter()
        .filter(|&pid| match harness_dir_of(pid) {
            Some(dir) => !dir.exists(),
            None => false,
        })
        .collect();
    terminate(&orphans, Duration::from_secs(10));

    // Network namespaces and veths of slots nobody holds any more.
    super::netns::sweep_stale();

    // Namespaces whose directory is gone: their containers keep running in the shared
    // containerd after a SIGKILLed dockerd.
    for ns in namespaces() {
        let Some(rest) = ns.strip_prefix(name_prefix) else {
            continue;
        };
        // "<pid>-<seq>-<engine>[-p]": the directory is "shoal-it-<pid>-<seq>".
        let cluster: Vec<&str> = rest.splitn(3, '-').take(2).collect();
        let dir = PathBuf::from(format!("{BASE_PREFIX}{}", cluster.join("-")));
        if !dir.exists() {
            clean_namespace(&ns);
        }
    }
}

/// Stops everything that belongs to the cluster directory `dir` (named `name`) and
/// removes it: engine processes, containerd namespaces, mounts, files.
pub fn clean_dir(dir: &Path, name: &str) {
    let needle = format!("{}/", dir.display());
    let ns_prefix = format!("{name}-");
    let ours: Vec<String> = namespaces()
        .into_iter()
        .filter(|ns| ns.starts_with(&ns_prefix))
        .collect();
    // Containers first: a live stale dockerd would otherwise give each container its
    // 10 s stop timeout when it gets SIGTERM (`sleep` as PID 1 ignores SIGTERM).
    for ns in &ours {
        clean_namespace(ns);
    }
    terminate(&pids_matching(&needle), Duration::from_secs(10));
    // Again, for what the engines left as they shut down.
    for ns in &ours {
        clean_namespace(ns);
    }
    unmount_under(dir);
    // fuse-overlayfs helpers whose mount the lazy unmount has detached.
    terminate(&pids_matching(&needle), Duration::from_secs(2));
    remove_tree(dir);
}

/// The containerd socket the harness engines use: `$SHOAL_IT_CONTAINERD`, else the one
/// the machine's dockerd manages, else a system containerd.
pub fn containerd_socket() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SHOAL_IT_CONTAINERD") {
        return Some(PathBuf::from(path));
    }
    [
        "/var/run/docker/containerd/containerd.sock",
        "/run/containerd/containerd.sock",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Kills and deletes every task and container in a harness namespace, then the
/// namespace. Best effort: needs `ctr`, and is skipped without it.
pub fn clean_namespace(ns: &str) {
    let Some(sock) = containerd_socket() else {
        return;
    };
    let ctr = |args: &[&str]| {
        Command::new("ctr")
            .arg("-a")
            .arg(&sock)
            .arg("-n")
            .arg(ns)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    for task in ctr(&["tasks", "ls", "-q"]).unwrap_or_default().lines() {
        ctr(&["tasks", "delete", "-f", task.trim()]);
    }
    let containers = ctr(&["containers", "ls", "-q"]).unwrap_or_default();
    let ids: Vec<&str> = containers.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["containers", "delete"];
        args.extend(&ids);
        ctr(&args);
    }
    quiet(
        Command::new("ctr")
            .arg("-a")
            .arg(&sock)
            .args(["namespaces", "remove", ns]),
    );
}

/// The containerd namespaces that belong to the harness.
fn namespaces() -> Vec<String> {
    let Some(sock) = containerd_socket() else {
        return Vec::new();
    };
    let name_prefix = BASE_PREFIX.rsplit_once('/').expect("absolute prefix").1;
    Command::new("ctr")
        .arg("-a")
        .arg(&sock)
        .args(["namespaces", "ls", "-q"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|ns| ns.starts_with(name_prefix))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The harness directory named in a process's command line.
fn harness_dir_of(pid: u32) -> Option<PathBuf> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
    let start = cmdline.find(BASE_PREFIX)?;
    let rest = &cmdline[start + BASE_PREFIX.len()..];
    let end = rest.find(['/', ' ', ',', ':']).unwrap_or(rest.len());
    Some(PathBuf::from(format!("{BASE_PREFIX}{}", &rest[..end])))
}

fn age(path: &Path) -> Duration {
    path.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}
