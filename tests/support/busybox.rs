//! Builds the `busybox:latest` image tarball the harness imports into every engine:
//! there is no registry to pull from, so the image is made from the host's static
//! busybox (every applet linked in /bin, plus a minimal /etc).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::docker_cli::find_program;
use super::real_cluster::HarnessError;

/// Writes `<dir>/busybox.tar` (a root filesystem) and returns its path.
pub fn build_tar(dir: &Path) -> Result<PathBuf, HarnessError> {
    let busybox = find_program("SHOAL_IT_BUSYBOX", "busybox", "busybox-static");
    let root = dir.join("bb-rootfs");
    let io = |what: &str| {
        let what = format!("{what} in {}", root.display());
        move |source| HarnessError::Io { what, source }
    };
    for sub in [
        "bin", "etc", "root", "tmp", "var/www", "home", "proc", "sys", "dev",
    ] {
        std::fs::create_dir_all(root.join(sub)).map_err(io("create the image's directories"))?;
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).map_err(io("copy busybox"))?;

    let list = Command::new(&busybox)
        .arg("--list")
        .output()
        .map_err(io("run busybox --list"))?;
    let applets = String::from_utf8_lossy(&list.stdout);
    for applet in applets
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(io("link the applets"))?;
    }
    if !root.join("bin/sh").exists() {
        return Err(HarnessError::Setup(format!(
            "{} has no `sh` applet; the harness needs a full static busybox (busybox-static)",
            busybox.display()
        )));
    }
    let etc = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ];
    for (path, text) in etc {
        std::fs::write(root.join(path), text).map_err(io("write /etc"))?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(io("chmod /tmp"))?;

    let tar = dir.join("busybox.tar");
    let status = Command::new("tar")
        .arg("--numeric-owner")
        .arg("--owner=0")
        .arg("--group=0")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .map_err(io("run tar"))?;
    if !status.success() {
        return Err(HarnessError::Setup(format!(
            "tar of {} failed: {status}",
            root.display()
        )));
    }
    Ok(tar)
}
