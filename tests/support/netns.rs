//! A network namespace of its own for each harness engine: a veth pair to the host and
//! an address of its own in a private subnet, so the engine listens on a fixed port
//! ([`ENGINE_PORT`]) at an address nobody else has.
//!
//! Why: engines in the host's namespace had to share 127.0.0.1 and pick "free" ports,
//! which raced with every other test and process on the machine (a port found free by
//! binding `:0` and closing it can be taken before dockerd binds it); and a
//! `dockerd --bridge=none` there deletes the host's `docker0`, which breaks the machine's
//! own engine. In a namespace of its own an engine can do neither, and published ports of
//! two engines no longer collide, as on a real cluster.
//!
//! Addresses: slot `n` of [`SLOTS`] is the /30 `BASE.(n / 64).(n % 64 * 4)`; the host end
//! is `.1`, the engine `.2`. A slot belongs to whoever holds an exclusive `flock` on
//! `SLOT_DIR/<n>.lock`, for as long as the engine's namespace lives, so concurrent test
//! threads and processes (of this or another worktree) can never be given the same one.
//! The lock files are never removed: removing a lock file would let two owners lock
//! different files of the same name.
//!
//! Names: namespace `shoal-net-<n>`, host-side veth `shoal-v<n>`. What a crashed run left
//! behind is removed by the next owner of the slot before it uses it, and by
//! [`sweep_stale`], which takes each unowned slot's lock before touching it.

use std::fs::{File, OpenOptions, TryLockError};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::proc::quiet;

/// The port every engine listens on, at its own address.
pub const ENGINE_PORT: u16 = 2375;
/// Where the slot locks live; outside `/tmp/shoal-it-*`, which the cluster sweep owns.
const SLOT_DIR: &str = "/tmp/shoal-net-slots";
/// How many /30 slots the /16 holds.
const SLOTS: u32 = 16_384;
/// Namespace and veth name prefixes; a slot number follows.
const NS_PREFIX: &str = "shoal-net-";
const VETH_PREFIX: &str = "shoal-v";

/// Why a namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error(
        "no free address slot in {base}.0.0/16 (all {SLOTS} are taken or in use on this host)"
    )]
    Exhausted { base: String },
    #[error("SHOAL_IT_NET={0:?} is not the first two octets of an IPv4 /16, such as 10.213")]
    BadBase(String),
}

/// The first two octets of the harness's /16: `$SHOAL_IT_NET`, else `10.213`.
pub fn base() -> Result<[u8; 2], NetError> {
    let raw = std::env::var("SHOAL_IT_NET").unwrap_or_else(|_| "10.213".into());
    let octets: Vec<u8> = raw.split('.').filter_map(|o| o.parse().ok()).collect();
    match octets[..] {
        [a, b] if raw.split('.').count() == 2 => Ok([a, b]),
        _ => Err(NetError::BadBase(raw)),
    }
}

/// One engine's network namespace and veth pair; removed on drop, and only then is the
/// slot given up.
#[derive(Debug)]
pub struct EngineNet {
    slot: u32,
    host_ip: Ipv4Addr,
    engine_ip: Ipv4Addr,
    /// Held for the namespace's life: the slot is ours while it is locked.
    _lock: File,
}

impl EngineNet {
    /// Takes a free slot, removes whatever an earlier owner of it left, and sets up the
    /// namespace: veth pair, addresses, `lo` up, and a route to the harness's /16 through
    /// the host (so an engine reaches servers the test runs on any engine's host address,
    /// such as a registry).
    pub fn create() -> Result<EngineNet, NetError> {
        let base = base()?;
        std::fs::create_dir_all(SLOT_DIR).map_err(|source| NetError::Io {
            what: format!("create {SLOT_DIR}"),
            source,
        })?;
        // Start at a place that depends on the process, so concurrent runs rarely contend
        // for the same first slots.
        let start = std::process::id() % SLOTS;
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let Some(lock) = try_lock_slot(slot)? else {
                continue;
            };
            let net = EngineNet::at(base, slot, lock);
            // Leftovers of a crashed owner of this slot: ours to remove now.
            remove(slot);
            // Someone else (not the harness) uses these addresses: leave them alone.
            let in_use = host_ipv4_addrs();
            if in_use.contains(&net.host_ip) || in_use.contains(&net.engine_ip) {
                continue;
            }
            net.set_up()?;
            return Ok(net);
        }
        Err(NetError::Exhausted {
            base: format!("{}.{}", base[0], base[1]),
        })
    }

    fn at(base: [u8; 2], slot: u32, lock: File) -> EngineNet {
        let third = (slot / 64) as u8;
        let fourth = (slot % 64 * 4) as u8;
        EngineNet {
            slot,
            host_ip: Ipv4Addr::new(base[0], base[1], third, fourth + 1),
            engine_ip: Ipv4Addr::new(base[0], base[1], third, fourth + 2),
            _lock: lock,
        }
    }

    fn set_up(&self) -> Result<(), NetError> {
        let ns = self.namespace();
        let veth = veth_name(self.slot);
        let [a, b, ..] = self.host_ip.octets();
        let result = (|| {
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["addr", "add", &format!("{}/30", self.host_ip), "dev", &veth])?;
            ip(&["link", "set", &veth, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["-n", ns.as_str()];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["link", "set", "lo", "up"])?;
            inside(&[
                "addr",
                "add",
                &format!("{}/30", self.engine_ip),
                "dev",
                "eth0",
            ])?;
            inside(&["link", "set", "eth0", "up"])?;
            inside(&[
                "route",
                "add",
                &format!("{a}.{b}.0.0/16"),
                "via",
                &self.host_ip.to_string(),
            ])
        })();
        if result.is_err() {
            remove(self.slot);
        }
        result
    }

    /// The namespace's name, for `ip netns exec` and `nsenter --net=/run/netns/NAME`.
    pub fn namespace(&self) -> String {
        format!("{NS_PREFIX}{}", self.slot)
    }

    /// The namespace's file, as `nsenter --net=` takes it.
    pub fn namespace_path(&self) -> PathBuf {
        Path::new("/run/netns").join(self.namespace())
    }

    /// The engine's address, inside its namespace.
    pub fn engine_ip(&self) -> Ipv4Addr {
        self.engine_ip
    }

    /// The harness's /16, where every engine's and host end's address lies.
    pub fn subnet(&self) -> String {
        let [a, b, ..] = self.host_ip.octets();
        format!("{a}.{b}.0.0/16")
    }

    /// The host's end of the veth pair: an address of the host that every engine of the
    /// harness reaches, and that no other test is given.
    pub fn host_ip(&self) -> Ipv4Addr {
        self.host_ip
    }
}

impl Drop for EngineNet {
    fn drop(&mut self) {
        remove(self.slot);
        // The lock goes with the struct, after the namespace.
    }
}

/// Removes namespaces and veths of slots nobody holds: those of runs killed before their
/// `Drop` ran. Slots held by live owners are left alone.
pub fn sweep_stale() {
    let mut slots: Vec<u32> = Vec::new();
    if let Ok(names) = std::fs::read_dir("/run/netns") {
        slots.extend(names.flatten().filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix(NS_PREFIX)?
                .parse::<u32>()
                .ok()
        }));
    }
    if let Ok(out) = Command::new("ip").args(["-o", "link", "show"]).output() {
        let text = String::from_utf8_lossy(&out.stdout);
        slots.extend(text.lines().filter_map(|l| {
            let name = l.split(": ").nth(1)?.split('@').next()?;
            name.strip_prefix(VETH_PREFIX)?.parse::<u32>().ok()
        }));
    }
    slots.sort_unstable();
    slots.dedup();
    for slot in slots.into_iter().filter(|&s| s < SLOTS) {
        if let Ok(Some(_lock)) = try_lock_slot(slot) {
            eprintln!("shoal test harness: removing stale network slot {slot}");
            remove(slot);
        }
    }
}

/// The slot's lock, if nobody else holds it.
fn try_lock_slot(slot: u32) -> Result<Option<File>, NetError> {
    let path = Path::new(SLOT_DIR).join(format!("{slot}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| NetError::Io {
            what: format!("open {}", path.display()),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(NetError::Io {
            what: format!("lock {}", path.display()),
            source,
        }),
    }
}

/// Deletes the slot's veth (both ends) and namespace, if they exist.
fn remove(slot: u32) {
    quiet(Command::new("ip").args(["link", "del", &veth_name(slot)]));
    quiet(Command::new("ip").args(["netns", "del", &format!("{NS_PREFIX}{slot}")]));
}

fn veth_name(slot: u32) -> String {
    format!("{VETH_PREFIX}{slot}")
}

/// Every IPv4 address configured on the host, to keep clear of.
fn host_ipv4_addrs() -> Vec<Ipv4Addr> {
    let Ok(out) = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// Runs `ip ARGS`; its stderr in the error.
fn ip(args: &[&str]) -> Result<(), NetError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetError::Io {
            what: "run ip".into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Command {
            command: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
