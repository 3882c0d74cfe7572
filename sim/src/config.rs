//! Configuration of simulated engines and of the fleet that serves them.

use std::sync::Arc;

/// What one simulated engine looks like at start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub ncpu: i64,
    pub mem_total: i64,
    /// Pre-created containers from `busybox:latest`; two of every three are running.
    pub containers: usize,
    /// Images present at start, as `repo:tag`.
    pub images: Vec<String>,
    /// Engine ID as in `docker info`; generated from the name when `None`.
    pub engine_id: Option<String>,
    pub api_version: String,
    pub server_version: String,
    pub operating_system: String,
    pub kernel_version: String,
    pub storage_driver: String,
}

impl EngineConfig {
    pub fn new(name: impl Into<String>) -> Self {
        EngineConfig {
            name: name.into(),
            labels: Vec::new(),
            ncpu: 4,
            mem_total: 8 << 30,
            containers: 0,
            images: vec!["busybox:latest".to_string()],
            engine_id: None,
            api_version: "1.41".to_string(),
            server_version: "20.10.24".to_string(),
            operating_system: "Debian GNU/Linux 12 (bookworm)".to_string(),
            kernel_version: "6.1.0-sim".to_string(),
            storage_driver: "overlay2".to_string(),
        }
    }

    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    pub fn ncpu(mut self, n: i64) -> Self {
        self.ncpu = n;
        self
    }

    pub fn memory(mut self, bytes: i64) -> Self {
        self.mem_total = bytes;
        self
    }

    pub fn containers(mut self, n: usize) -> Self {
        self.containers = n;
        self
    }

    /// Adds an image (`repo:tag`, or `repo` meaning `repo:latest`).
    pub fn image(mut self, image: impl Into<String>) -> Self {
        let image = crate::util::normalize_image(&image.into());
        if !self.images.contains(&image) {
            self.images.push(image);
        }
        self
    }

    pub fn engine_id(mut self, id: impl Into<String>) -> Self {
        self.engine_id = Some(id.into());
        self
    }

    pub fn api_version(mut self, v: impl Into<String>) -> Self {
        self.api_version = v.into();
        self
    }

    pub fn server_version(mut self, v: impl Into<String>) -> Self {
        self.server_version = v.into();
        self
    }

    pub fn storage_driver(mut self, d: impl Into<String>) -> Self {
        self.storage_driver = d.into();
        self
    }
}

/// How the fleet is served.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Engine `i` listens on `port_base + i`; `None` lets the OS pick each port.
    pub port_base: Option<u16>,
    /// actix-web worker threads shared by all engines.
    pub workers: usize,
    /// Events each engine keeps for `since` replays (a real engine keeps 256). Kept small
    /// by default because it is paid once per engine.
    pub event_history: usize,
    /// Capacity of each engine's live event channel; a subscriber further behind than this
    /// is dropped, like a slow `/events` client of a real engine.
    pub event_buffer: usize,
    /// Serve every engine with TLS (as `dockerd --tlsverify` when the config asks for a
    /// client certificate); `None`: plain HTTP. The benchmark measures TLS to engines with
    /// it. A TLS engine ignores `Fault::Down` at connect time (its requests still wait).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            port_base: None,
            workers: 2,
            event_history: 64,
            event_buffer: 256,
            tls: None,
        }
    }
}

impl FleetOptions {
    pub fn port_base(mut self, base: u16) -> Self {
        self.port_base = Some(base);
        self
    }

    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
}
