//! A local `docker-registry` (Debian's package) for tests that pull, push or ask a
//! registry: its own storage, on the cluster's host address (which no other test has, so
//! the fixed port cannot collide), where every engine reaches it and takes it as an
//! insecure registry. Killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::RealCluster;

pub struct Registry {
    child: Child,
    /// `ADDRESS:PORT`, the registry part of an image reference.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(cluster: &RealCluster) -> Registry {
        let bin = ["/usr/bin", "/usr/local/bin", "/usr/sbin"]
            .iter()
            .map(|d| Path::new(d).join("docker-registry"))
            .find(|p| p.exists())
            .expect(
                "this test needs `docker-registry`: install the Debian package docker-registry",
            );
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("{}:5000", cluster.host_ip());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let r = Registry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&r.addr).is_err() {
            assert!(Instant::now() < deadline, "the registry never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
