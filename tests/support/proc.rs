//! Small process and mount helpers over /proc and the usual command-line tools (the
//! test crate has no libc): find processes by command line, signal them, wait for them
//! to go, unmount what is left under a directory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Pids (other than ours) whose command line contains `needle`.
pub fn pids_matching(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && alive(pid))
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    String::from_utf8_lossy(&raw)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// The process exists and is not a zombie (our PID 1 may not reap orphans).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Sends `sig` (a name such as `TERM`) to `pid`; errors are ignored (it may be gone).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM to all of `pids`, SIGKILL to those still there after `grace`.
pub fn terminate(pids: &[u32], grace: Duration) {
    for &pid in pids {
        signal(pid, "CONT");
        signal(pid, "TERM");
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    for &pid in pids.iter().filter(|&&p| alive(p)) {
        signal(pid, "KILL");
    }
}

/// Unmounts every mount point under `dir`, deepest first (fuse-overlayfs layers,
/// network namespaces, ...). Lazy, so a busy mount cannot block the cleanup.
pub fn unmount_under(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for point in points {
        let ok = quiet(Command::new("umount").arg("-l").arg(&point));
        if !ok {
            quiet(Command::new("fusermount").arg("-uz").arg(&point));
        }
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Runs a command with its output discarded; true when it exited 0.
pub fn quiet(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Removes a directory tree; a second try after a moment covers a mount that a lazy
/// unmount has only just released.
pub fn remove_tree(dir: &Path) {
    for _ in 0..2 {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                thread::sleep(Duration::from_millis(200));
            }
            _ => return,
        }
    }
    if dir.exists() {
        eprintln!("shoal test harness: could not remove {}", dir.display());
    }
}
