//! One simulated engine: its facts, containers, images and events, and the operations
//! that change them. State sits behind a plain mutex: this is a test fixture, every
//! operation is a few microseconds, and no lock is held across an await.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::events::SimEvent;
use crate::fault::Fault;
use crate::request::CreateSpec;
use crate::util::{fake_digest, normalize_image, now_nanos, random_id};
use crate::{EngineConfig, SimError};

/// Facts that never change after start (`docker info`).
#[derive(Debug)]
pub(crate) struct Facts {
    pub name: String,
    pub id: String,
    pub labels: Vec<(String, String)>,
    pub ncpu: i64,
    pub mem_total: i64,
    pub api_version: String,
    pub server_version: String,
    pub operating_system: String,
    pub kernel_version: String,
    pub storage_driver: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Container {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The image reference as the client gave it.
    pub image: String,
    pub image_id: Arc<str>,
    pub created: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub status: Status,
    pub exit_code: i64,
    pub pid: i64,
    pub spec: Box<CreateSpec>,
}

impl Container {
    /// `image`, `name` and the labels: the attributes of this container's events.
    fn event_attributes(&self) -> BTreeMap<String, String> {
        let mut a = self.spec.labels.clone().unwrap_or_default();
        a.insert("image".into(), self.image.clone());
        a.insert("name".into(), self.name.clone());
        a
    }
}

#[derive(Debug)]
pub(crate) struct Image {
    pub repo_tags: Vec<String>,
    pub id: Arc<str>,
    pub created: i64,
    pub size: i64,
}

#[derive(Debug)]
pub(crate) struct State {
    pub fault: Fault,
    /// Oldest first; lists answer newest first.
    pub containers: Vec<Container>,
    pub images: Vec<Image>,
    history: VecDeque<Arc<SimEvent>>,
    /// Created on the first subscription and dropped when nobody listens, so an engine
    /// without `/events` clients pays nothing for the channel's buffer.
    live: Option<broadcast::Sender<Arc<SimEvent>>>,
}

impl State {
    pub fn find_container(&self, reference: &str) -> Result<usize, SimError> {
        let r = reference.strip_prefix('/').unwrap_or(reference);
        if let Some(i) = self
            .containers
            .iter()
            .position(|c| c.id == r || c.name == r)
        {
            return Ok(i);
        }
        let mut hits = self
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| !r.is_empty() && c.id.starts_with(r));
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Ok(i),
            _ => Err(SimError::NoSuchContainer(reference.to_string())),
        }
    }

    pub fn find_image(&self, reference: &str) -> Result<&Image, SimError> {
        let tagged = normalize_image(reference);
        let bare = reference.strip_prefix("sha256:").unwrap_or(reference);
        self.images
            .iter()
            .find(|i| i.repo_tags.contains(&tagged))
            .or_else(|| {
                (bare.len() >= 4 && bare.chars().all(|c| c.is_ascii_hexdigit()))
                    .then(|| self.images.iter().find(|i| i.id[7..].starts_with(bare)))
                    .flatten()
            })
            .ok_or_else(|| SimError::NoSuchImage(reference.to_string()))
    }
}

#[derive(Debug)]
pub(crate) struct Engine {
    pub facts: Facts,
    pub addr: SocketAddr,
    state: Mutex<State>,
    event_history: usize,
    event_buffer: usize,
}

impl Engine {
    pub fn new(
        cfg: EngineConfig,
        addr: SocketAddr,
        event_history: usize,
        event_buffer: usize,
    ) -> Engine {
        let now = now_nanos();
        let images: Vec<Image> = cfg
            .images
            .iter()
            .map(|t| Image {
                repo_tags: vec![normalize_image(t)],
                id: format!("sha256:{}", fake_digest(&normalize_image(t))).into(),
                created: now / 1_000_000_000 - 86_400 * 30,
                size: 1_240_000,
            })
            .collect();
        let busybox: Arc<str> = format!("sha256:{}", fake_digest("busybox:latest")).into();
        let prefix: String = cfg
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let containers = (0..cfg.containers)
            .map(|i| {
                let running = i % 3 != 2;
                let created = now - (cfg.containers - i) as i64 * 60_000_000_000;
                Container {
                    id: random_id(),
                    name: format!("{prefix}-c{i}"),
                    image: "busybox:latest".into(),
                    image_id: busybox.clone(),
                    created,
                    started_at: created + 500_000_000,
                    finished_at: if running { 0 } else { created + 30_000_000_000 },
                    status: if running {
                        Status::Running
                    } else {
                        Status::Exited
                    },
                    exit_code: 0,
                    pid: if running { 1000 + i as i64 } else { 0 },
                    spec: Box::new(CreateSpec {
                        image: "busybox:latest".into(),
                        cmd: Some(vec!["sleep".into(), "infinity".into()]),
                        ..Default::default()
                    }),
                }
            })
            .collect();
        Engine {
            facts: Facts {
                id: cfg.engine_id.unwrap_or_else(|| engine_id(&cfg.name)),
                name: cfg.name,
                labels: cfg.labels,
                ncpu: cfg.ncpu,
                mem_total: cfg.mem_total,
                api_version: cfg.api_version,
                server_version: cfg.server_version,
                operating_system: cfg.operating_system,
                kernel_version: cfg.kernel_version,
                storage_driver: cfg.storage_driver,
            },
            addr,
            state: Mutex::new(State {
                fault: Fault::None,
                containers,
                images,
                history: VecDeque::new(),
                live: None,
            }),
            event_history,
            event_buffer,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event and pushes it to live subscribers.
    pub fn emit(&self, st: &mut State, ev: SimEvent) {
        let ev = Arc::new(ev);
        if self.event_history > 0 {
            if st.history.len() >= self.event_history {
                st.history.pop_front();
            }
            st.history.push_back(ev.clone());
        }
        if let Some(tx) = &st.live {
            if tx.send(ev).is_err() {
                st.live = None;
            }
        }
    }

    /// The recorded events since `since` and a receiver for what follows, taken under one
    /// lock so nothing falls between them.
    pub fn subscribe(
        &self,
        since: Option<i64>,
    ) -> (Vec<Arc<SimEvent>>, broadcast::Receiver<Arc<SimEvent>>) {
        let mut st = self.lock();
        let replay = match since {
            Some(s) => st
                .history
                .iter()
                .filter(|e| e.time_nano >= s)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let rx = match &st.live {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.event_buffer.max(1));
                st.live = Some(tx);
                rx
            }
        };
        (replay, rx)
    }

    pub fn set_fault(&self, f: Fault) {
        let mut st = self.lock();
        if f == Fault::Down {
            // A dead engine's event streams break; dropping the sender ends them.
            st.live = None;
        }
        st.fault = f;
    }

    pub fn create(
        &self,
        name: Option<String>,
        mut spec: Box<CreateSpec>,
    ) -> Result<String, SimError> {
        let mut st = self.lock();
        let image_id = st.find_image(&spec.image)?.id.clone();
        if let Some(n) = &name {
            let n = n.strip_prefix('/').unwrap_or(n);
            let valid = n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return Err(SimError::BadRequest(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            if let Some(c) = st.containers.iter().find(|c| c.name == n) {
                return Err(SimError::NameConflict {
                    name: n.to_string(),
                    id: c.id.clone(),
                });
            }
        }
        let id = random_id();
        let name = match name {
            Some(n) => n.trim_start_matches('/').to_string(),
            None => format!("sim_{}", &id[..12]),
        };
        if spec.cmd.is_none() && spec.entrypoint.is_none() {
            spec.cmd = Some(vec!["sh".into()]);
        }
        let c = Container {
            id: id.clone(),
            name,
            image: spec.image.clone(),
            image_id,
            created: now_nanos(),
            started_at: 0,
            finished_at: 0,
            status: Status::Created,
            exit_code: 0,
            pid: 0,
            spec,
        };
        let ev = SimEvent::container("create", &c.id, &c.image, c.event_attributes(), c.created);
        st.containers.push(c);
        self.emit(&mut st, ev);
        Ok(id)
    }

    /// `GET /containers/{id}/top`: only a running container has processes to show, and
    /// dockerd logs a `top` event for every answer (Shoal's event stream sees one per call).
    /// Answers the lock and the container's index, for the answer to be rendered under it.
    pub fn top(&self, reference: &str) -> Result<(MutexGuard<'_, State>, usize), SimError> {
        let mut st = self.lock();
        let i = st.find_container(reference)?;
        let c = &st.containers[i];
        if c.status != Status::Running {
            // dockerd names the container by its full ID here, whatever the client sent.
            return Err(SimError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let ev = SimEvent::container("top", &c.id, &c.image, c.event_attributes(), now_nanos());
        self.emit(&mut st, ev);
        Ok((st, i))
    }

    /// `Ok(false)` when it was already running (HTTP 304).
    pub fn start(&self, reference: &str) -> Result<bool, SimError> {
        let mut st = self.lock();
        let i = st.find_container(reference)?;
        let c = &mut st.containers[i];
        if c.status == Status::Running {
            return Ok(false);
        }
        c.status = Status::Running;
        c.started_at = now_nanos();
        c.pid = 1000 + (rand::random::<u16>() as i64);
        c.exit_code = 0;
        let ev = SimEvent::container("start", &c.id, &c.image, c.event_attributes(), c.started_at);
        self.emit(&mut st, ev);
        Ok(true)
    }

    /// Stops like dockerd: `kill` (SIGTERM), `die`, `stop`. `Ok(false)` when not running.
    pub fn stop(&self, reference: &str) -> Result<bool, SimError> {
        let mut st = self.lock();
        let i = st.find_container(reference)?;
        if st.containers[i].status != Status::Running {
            return Ok(false);
        }
        self.terminate(&mut st, i, "15", 143);
        let c = &st.containers[i];
        let ev = SimEvent::container("stop", &c.id, &c.image, c.event_attributes(), now_nanos());
        self.emit(&mut st, ev);
        Ok(true)
    }

    pub fn kill(&self, reference: &str, signal: &str) -> Result<(), SimError> {
        let mut st = self.lock();
        let i = st.find_container(reference)?;
        if st.containers[i].status != Status::Running {
            let id = st.containers[i].id.clone();
            return Err(SimError::Conflict(format!(
                "Cannot kill container: {reference}: Container {id} is not running"
            )));
        }
        let signal = match signal.trim_start_matches("SIG") {
            "KILL" | "9" => "9",
            "TERM" | "15" => "15",
            "INT" | "2" => "2",
            "HUP" | "1" => "1",
            other => other,
        }
        .to_string();
        let code = 128 + signal.parse::<i64>().unwrap_or(9);
        self.terminate(&mut st, i, &signal, code);
        Ok(())
    }

    fn terminate(&self, st: &mut State, i: usize, signal: &str, exit_code: i64) {
        let now = now_nanos();
        let c = &mut st.containers[i];
        c.status = Status::Exited;
        c.finished_at = now;
        c.exit_code = exit_code;
        c.pid = 0;
        let mut attrs = c.event_attributes();
        let (id, image) = (c.id.clone(), c.image.clone());
        attrs.insert("signal".into(), signal.to_string());
        self.emit(st, SimEvent::container("kill", &id, &image, attrs, now));
        let mut attrs = st.containers[i].event_attributes();
        attrs.insert("exitCode".into(), exit_code.to_string());
        self.emit(st, SimEvent::container("die", &id, &image, attrs, now));
    }

    pub fn restart(&self, reference: &str) -> Result<(), SimError> {
        self.stop(reference)?;
        self.start(reference)?;
        let mut st = self.lock();
        let i = st.find_container(reference)?;
        let c = &st.containers[i];
        let ev = SimEvent::container(
            "restart",
            &c.id,
            &c.image,
            c.event_attributes(),
            now_nanos(),
        );
        self.emit(&mut st, ev);
        Ok(())
    }

    pub fn remove(&self, reference: &str, force: bool) -> Result<(), SimError> {
        let mut st = self.lock();
        let i = st.find_container(reference)?;
        if st.containers[i].status == Status::Running {
            if !force {
                return Err(SimError::RemoveRunning(st.containers[i].id.clone()));
            }
            self.terminate(&mut st, i, "9", 137);
        }
        let c = st.containers.remove(i);
        self.emit(
            &mut st,
            SimEvent::container(
                "destroy",
                &c.id,
                &c.image,
                c.event_attributes(),
                now_nanos(),
            ),
        );
        Ok(())
    }

    /// Adds `image` (a simulated pull); returns whether it was new.
    pub fn pull(&self, image: &str) -> bool {
        let tagged = normalize_image(image);
        let mut st = self.lock();
        if st.images.iter().any(|i| i.repo_tags.contains(&tagged)) {
            return false;
        }
        let id: Arc<str> = format!("sha256:{}", fake_digest(&tagged)).into();
        st.images.push(Image {
            repo_tags: vec![tagged.clone()],
            id: id.clone(),
            created: now_nanos() / 1_000_000_000,
            size: 1_240_000,
        });
        let attrs = BTreeMap::from([("name".to_string(), tagged.clone())]);
        self.emit(
            &mut st,
            SimEvent::other("image", "pull", &tagged, attrs, now_nanos()),
        );
        true
    }
}

/// Docker's engine ID format (12 groups of 4 base32 characters), derived from the name.
fn engine_id(name: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = fake_digest(name);
    let chars: Vec<char> = digest
        .bytes()
        .take(48)
        .map(|b| ALPHABET[(b as usize * 7) % 32] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(":")
}

/// A cheap, clonable handle on one simulated engine, for tests and benchmarks.
#[derive(Debug, Clone)]
pub struct SimEngine {
    pub(crate) inner: Arc<Engine>,
}

impl SimEngine {
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `tcp://127.0.0.1:PORT`, the form discovery lists take.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.inner.addr)
    }

    pub fn name(&self) -> &str {
        &self.inner.facts.name
    }

    pub fn set_fault(&self, f: Fault) {
        self.inner.set_fault(f)
    }

    pub fn fault(&self) -> Fault {
        self.inner.lock().fault
    }

    pub fn container_count(&self) -> usize {
        self.inner.lock().containers.len()
    }

    pub fn running_count(&self) -> usize {
        self.inner
            .lock()
            .containers
            .iter()
            .filter(|c| c.status == Status::Running)
            .count()
    }

    /// IDs of all containers, oldest first.
    pub fn container_ids(&self) -> Vec<String> {
        self.inner
            .lock()
            .containers
            .iter()
            .map(|c| c.id.clone())
            .collect()
    }

    /// Creates a container as `POST /containers/create` would (emits `create`); pulls the
    /// image first when missing. Panics on a name conflict: a test fixture error.
    pub fn create_container(&self, name: &str, image: &str, labels: &[(&str, &str)]) -> String {
        self.inner.pull(image);
        let spec = CreateSpec {
            image: image.to_string(),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        let name = (!name.is_empty()).then(|| name.to_string());
        self.inner
            .create(name, Box::new(spec))
            .expect("sim: create_container")
    }

    pub fn start_container(&self, reference: &str) -> bool {
        self.inner.start(reference).unwrap_or(false)
    }

    pub fn stop_container(&self, reference: &str) -> bool {
        self.inner.stop(reference).unwrap_or(false)
    }

    /// Force-removes (emits `kill`/`die` when running, then `destroy`); false if unknown.
    pub fn remove_container(&self, reference: &str) -> bool {
        self.inner.remove(reference, true).is_ok()
    }

    pub fn pull_image(&self, image: &str) -> bool {
        self.inner.pull(image)
    }

    /// Emits an arbitrary container event (benchmark event load); the container need not exist.
    pub fn emit_event(&self, action: &str, id: &str, attributes: &[(&str, &str)]) {
        let attrs = attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        let image = attrs
            .get("image")
            .cloned()
            .unwrap_or_else(|| "busybox:latest".into());
        let mut st = self.inner.lock();
        self.inner.emit(
            &mut st,
            SimEvent::container(action, id, &image, attrs, now_nanos()),
        );
    }

    /// A live receiver of this engine's events, as the `/events` route gets them.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SimEvent>> {
        self.inner.subscribe(None).1
    }
}
