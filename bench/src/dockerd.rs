//! What `proxy_dockerd` makes on a real engine, and takes away again.
//!
//! The proxied routes of the mix need a running container, and a fresh machine's daemon has
//! none (nor any image, nor a registry to pull one from). So the bench imports an image of
//! one file, the host's static busybox (`docker import`, from a tar built here), runs one
//! container `busybox sleep 3600` from it, and removes both when the [`Fixture`] is dropped:
//! after the measure, after a failure, during a panic's unwinding. Names carry the bench's
//! PID (`shoal-bench/busybox:<pid>`, `shoal-bench-proxy-<pid>`), and only what this run
//! made is removed, by the ID or tag the engine answered: nothing else of the engine is
//! touched. Killing the bench itself skips the drop; `scripts/bench.sh` removes the same
//! two names after the run for that case.

use super::load::Http;
use awc::http::Method;
use bytes::Bytes;
use serde_json::json;
use std::path::Path;

/// Largest busybox read (Debian's static one is ~2 MB).
const BUSYBOX_LIMIT: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// No static busybox to make the image of: the scenario is skipped, not failed.
    #[error("{0}")]
    NoBusybox(String),
    #[error("{what}: {detail}")]
    Engine { what: &'static str, detail: String },
}

fn engine_error(what: &'static str) -> impl Fn(String) -> FixtureError {
    move |detail| FixtureError::Engine { what, detail }
}

/// An image and a running container made on one engine for the run; removed on drop.
pub struct Fixture {
    target: String,
    /// `shoal-bench/busybox:<pid>`.
    pub image: String,
    /// `shoal-bench-proxy-<pid>`.
    pub name: String,
    /// The container's full ID (empty until the engine created it).
    pub id: String,
    image_made: bool,
}

impl Fixture {
    /// Imports the image, creates and starts the container. On an error, whatever was made
    /// already is removed (the half-made fixture is dropped).
    pub async fn make(http: &Http, target: &str, busybox: &Path) -> Result<Fixture, FixtureError> {
        let binary = read_static_busybox(busybox).await?;
        let pid = std::process::id();
        let mut fx = Fixture {
            target: target.to_string(),
            image: format!("shoal-bench/busybox:{pid}"),
            name: format!("shoal-bench-proxy-{pid}"),
            id: String::new(),
            image_made: false,
        };
        // A tag of that name that is not ours must stay as it is: refuse rather than retag.
        let probe = http
            .get(&format!("/images/{}/json", fx.image))
            .await
            .map_err(engine_error("look for the image"))?;
        if probe.status != 404 {
            return Err(FixtureError::Engine {
                what: "import the image",
                detail: format!("{} exists already (status {})", fx.image, probe.status),
            });
        }

        let (repo, tag) = fx
            .image
            .split_at(fx.image.rfind(':').unwrap_or(fx.image.len()));
        let tag = tag.trim_start_matches(':');
        let a = http
            .send(
                Method::POST,
                &format!("/images/create?fromSrc=-&repo={repo}&tag={tag}"),
                Some(("application/x-tar", Bytes::from(rootfs_tar(&binary)))),
            )
            .await
            .map_err(engine_error("import the image"))?;
        // The import answers 200 and a progress stream, which may end in an error line.
        fx.image_made = a.status == 200;
        let text = String::from_utf8_lossy(&a.body);
        if a.status != 200 || text.contains("\"error\"") {
            return Err(FixtureError::Engine {
                what: "import the image",
                detail: format!("status {}: {}", a.status, text.trim()),
            });
        }

        let body = json!({
            "Image": fx.image,
            "Cmd": ["/bin/busybox", "sleep", "3600"],
            "Labels": {"shoal-bench": pid.to_string()},
            // The proxied routes need no network, and the daemon's bridge may be broken.
            "HostConfig": {"NetworkMode": "none"},
        });
        let a = http
            .call(
                Method::POST,
                &format!("/containers/create?name={}", fx.name),
                Some(Bytes::from(body.to_string())),
            )
            .await
            .map_err(engine_error("create the container"))?;
        let created: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
        if a.status != 201 {
            return Err(FixtureError::Engine {
                what: "create the container",
                detail: format!("status {}: {created}", a.status),
            });
        }
        fx.id = created["Id"].as_str().unwrap_or_default().to_string();
        if fx.id.len() < 12 {
            return Err(FixtureError::Engine {
                what: "create the container",
                detail: format!("no ID in {created}"),
            });
        }
        let a = http
            .call(Method::POST, &format!("/containers/{}/start", fx.id), None)
            .await
            .map_err(engine_error("start the container"))?;
        if a.status != 204 {
            return Err(FixtureError::Engine {
                what: "start the container",
                detail: format!("status {}: {}", a.status, String::from_utf8_lossy(&a.body)),
            });
        }
        Ok(fx)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let container = std::mem::take(&mut self.id);
        let image = std::mem::take(&mut self.image_made).then(|| self.image.clone());
        if container.is_empty() && image.is_none() {
            return;
        }
        // A drop cannot await, and this thread's runtime is the one running the drop: the
        // removal runs on a thread of its own with its own runtime, and is waited for.
        let target = self.target.clone();
        let done = std::thread::spawn(move || {
            actix_rt::System::new().block_on(remove(target, container, image))
        })
        .join();
        match done {
            Ok(lines) => lines.iter().for_each(|l| println!("# proxy_dockerd: {l}")),
            Err(_) => eprintln!(
                "# proxy_dockerd: the removal of {} and {} panicked: remove them by hand",
                self.name, self.image
            ),
        }
    }
}

/// Force-removes the container, then the image; answers a line per step.
async fn remove(target: String, container: String, image: Option<String>) -> Vec<String> {
    let http = Http::new(&target, 2);
    let mut said = Vec::new();
    let delete = |path: String, what: String| {
        let http = http.clone();
        async move {
            match http.call(Method::DELETE, &path, None).await {
                Ok(a) if a.status < 300 => format!("removed {what}"),
                Ok(a) => format!(
                    "could not remove {what}: status {} {}",
                    a.status,
                    String::from_utf8_lossy(&a.body).trim()
                ),
                Err(e) => format!("could not remove {what}: {e}"),
            }
        }
    };
    if !container.is_empty() {
        let short = &container[..container.len().min(12)];
        let line = delete(
            format!("/containers/{container}?force=1&v=1"),
            format!("container {short}"),
        );
        said.push(line.await);
    }
    if let Some(image) = image {
        let line = delete(format!("/images/{image}"), format!("image {image}"));
        said.push(line.await);
    }
    said
}

/// The contents of `path` if it is a static ELF executable (no program interpreter): only
/// such a busybox runs in an image that holds nothing else.
async fn read_static_busybox(path: &Path) -> Result<Vec<u8>, FixtureError> {
    let missing = |why: String| {
        FixtureError::NoBusybox(format!(
            "{}: {why}; install Debian's busybox-static, or give --busybox",
            path.display()
        ))
    };
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| missing(e.to_string()))?;
    if meta.len() > BUSYBOX_LIMIT {
        return Err(missing(format!("larger than {BUSYBOX_LIMIT} bytes")));
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| missing(e.to_string()))?;
    if !is_static_elf(&bytes) {
        return Err(missing(
            "not a static 64-bit ELF executable (a dynamically linked busybox cannot run alone in an image)".into(),
        ));
    }
    Ok(bytes)
}

/// Whether `bytes` is a little-endian 64-bit ELF file without a `PT_INTERP` program header.
fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let le = |at: usize, n: usize| -> Option<u64> {
        let b = bytes.get(at..at + n)?;
        Some(b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    };
    let (Some(phoff), Some(entsize), Some(count)) = (le(0x20, 8), le(0x36, 2), le(0x38, 2)) else {
        return false;
    };
    (0..count).all(|i| {
        usize::try_from(phoff + i * entsize)
            .ok()
            .and_then(|at| le(at, 4))
            .is_some_and(|kind| kind != u64::from(PT_INTERP))
    })
}

/// A tar archive (ustar) of a root filesystem holding `/bin/busybox` alone: all a container
/// running `/bin/busybox sleep` needs (dockerd mounts `/proc`, `/dev` and `/sys` itself).
fn rootfs_tar(busybox: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(busybox.len() + 4 * 512);
    tar_entry(&mut out, "bin/", b'5', &[]);
    tar_entry(&mut out, "bin/busybox", b'0', busybox);
    // Two zero blocks end the archive.
    out.resize(out.len() + 1024, 0);
    out
}

/// Appends one entry (root-owned, mode 0755, mtime now) and its data padded to 512 bytes.
fn tar_entry(out: &mut Vec<u8>, name: &str, kind: u8, data: &[u8]) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    // Numeric fields: zero-padded octal, NUL-terminated, filling the field.
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(&s.as_bytes()[s.len() - len..]);
    };
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    octal(&mut h, 100, 8, 0o755);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, mtime);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is taken with its own field as spaces.
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    octal(&mut h, 148, 7, sum);
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: their own thread, no runtime to stall"
)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_lists_busybox_with_its_size() {
        let data = vec![7u8; 1000];
        let tar = rootfs_tar(&data);
        assert_eq!(tar.len() % 512, 0);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.tar");
        std::fs::write(&path, &tar).expect("write");
        let listed = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output();
        // The check needs a tar program; without one the structure checks below remain.
        if let Ok(out) = listed {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("bin/busybox"), "{text}");
            assert!(text.contains(" 1000 "), "{text}");
        }
        assert_eq!(&tar[512 + 257..512 + 262], b"ustar");
        assert_eq!(&tar[1024..2024], &data[..]);
    }

    #[test]
    fn only_a_static_elf_passes() {
        let mut elf = vec![0u8; 0x40 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20] = 0x40; // program headers right after the ELF header
        elf[0x36] = 56;
        elf[0x38] = 1;
        elf[0x40] = 1; // PT_LOAD
        assert!(is_static_elf(&elf));
        elf[0x40] = 3; // PT_INTERP: needs ld.so
        assert!(!is_static_elf(&elf));
        assert!(!is_static_elf(b"#!/bin/sh\n"));
        elf[0x38] = 9; // headers past the end of the file
        assert!(!is_static_elf(&elf));
    }
}
