//! A local `docker-registry` (Debian's package) for tests that pull, push or ask a
//! registry: its own storage, on the cluster's host address (which no other test has, so
//! the fixed port cannot collide), where every engine reaches it and takes it as an
//! insecure registry. Image deletion is on (the push and pull tests remove what they
//! pushed). Killed on drop.

use std::process::{Child, Command, Stdio};

use super::RealCluster;

pub struct Registry {
    child: Child,
    /// `ADDRESS:PORT`, the registry part of an image reference.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(cluster: &RealCluster) -> Registry {
        let bin = super::find_program("SHOAL_IT_REGISTRY", "docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let addr = format!("{}:5000", cluster.host_ip());
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
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
        super::wait_until("the registry", 10, || {
            std::net::TcpStream::connect(&r.addr)
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
