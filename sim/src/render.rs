//! Docker JSON shapes of engine state (Engine API 1.41 as dockerd 20.10 answers).

use std::collections::HashMap;

use bollard_stubs::models::{
    ContainerSummary, ContainerSummaryHostConfig, ContainerSummaryStateEnum, ImageSummary,
    SystemInfo, SystemVersion,
};
use serde_json::{json, Value};

use crate::engine::{Container, Facts, Image, State, Status};
use crate::request::PsFormat;
use crate::util::{human_duration, now_nanos, rfc3339};

pub fn version(f: &Facts) -> SystemVersion {
    SystemVersion {
        version: Some(f.server_version.clone()),
        api_version: Some(f.api_version.clone()),
        min_api_version: Some("1.12".into()),
        git_commit: Some("shoalsim".into()),
        go_version: Some("go1.19.8".into()),
        os: Some("linux".into()),
        arch: Some("amd64".into()),
        kernel_version: Some(f.kernel_version.clone()),
        build_time: Some("2023-01-01T00:00:00.000000000+00:00".into()),
        ..Default::default()
    }
}

pub fn info(f: &Facts, st: &State) -> SystemInfo {
    let count = |s: Status| st.containers.iter().filter(|c| c.status == s).count() as i64;
    SystemInfo {
        id: Some(f.id.clone()),
        containers: Some(st.containers.len() as i64),
        containers_running: Some(count(Status::Running)),
        containers_paused: Some(0),
        containers_stopped: Some(count(Status::Exited) + count(Status::Created)),
        images: Some(st.images.len() as i64),
        driver: Some(f.storage_driver.clone()),
        driver_status: Some(vec![vec!["Backing Filesystem".into(), "extfs".into()]]),
        docker_root_dir: Some("/var/lib/docker".into()),
        memory_limit: Some(true),
        swap_limit: Some(true),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(true),
        ipv4_forwarding: Some(true),
        debug: Some(false),
        nfd: Some(24),
        n_goroutines: Some(39),
        system_time: Some(rfc3339(now_nanos())),
        logging_driver: Some("json-file".into()),
        n_events_listener: Some(0),
        kernel_version: Some(f.kernel_version.clone()),
        operating_system: Some(f.operating_system.clone()),
        os_version: Some("12".into()),
        os_type: Some("linux".into()),
        architecture: Some("x86_64".into()),
        ncpu: Some(f.ncpu),
        mem_total: Some(f.mem_total),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        http_proxy: Some(String::new()),
        https_proxy: Some(String::new()),
        no_proxy: Some(String::new()),
        name: Some(f.name.clone()),
        labels: Some(f.labels.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        experimental_build: Some(false),
        server_version: Some(f.server_version.clone()),
        default_runtime: Some("runc".into()),
        live_restore_enabled: Some(false),
        init_binary: Some("docker-init".into()),
        security_options: Some(vec!["name=seccomp,profile=default".into()]),
        ..Default::default()
    }
}

fn command(c: &Container) -> String {
    let ep = c.spec.entrypoint.iter().flatten();
    let cmd = c.spec.cmd.iter().flatten();
    ep.chain(cmd).cloned().collect::<Vec<_>>().join(" ")
}

fn status_text(c: &Container, now: i64) -> String {
    match c.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", human_duration(now - c.started_at)),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            c.exit_code,
            human_duration(now - c.finished_at)
        ),
    }
}

fn network_mode(c: &Container) -> String {
    c.spec
        .host_config
        .as_ref()
        .and_then(|h| h.get("NetworkMode"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string()
}

pub fn summary(c: &Container, size: bool, now: i64) -> ContainerSummary {
    ContainerSummary {
        id: Some(c.id.clone()),
        names: Some(vec![format!("/{}", c.name)]),
        image: Some(c.image.clone()),
        image_id: Some(c.image_id.to_string()),
        command: Some(command(c)),
        created: Some(c.created / 1_000_000_000),
        ports: Some(Vec::new()),
        size_rw: size.then_some(0),
        size_root_fs: size.then_some(1_240_000),
        labels: Some(
            c.spec
                .labels
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        state: Some(match c.status {
            Status::Created => ContainerSummaryStateEnum::CREATED,
            Status::Running => ContainerSummaryStateEnum::RUNNING,
            Status::Exited => ContainerSummaryStateEnum::EXITED,
        }),
        status: Some(status_text(c, now)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(network_mode(c)),
            ..Default::default()
        }),
        mounts: Some(Vec::new()),
        ..Default::default()
    }
}

/// `GET /containers/{id}/top` of a running container: one process, the container's own,
/// in the columns of `ps -ef` or `ps aux` as dockerd 20.10 answers them (every cell a
/// string; `Processes` before `Titles`, as serde_json's sorted keys also put them).
pub fn top(c: &Container, format: PsFormat, now: i64) -> Value {
    let started = chrono::DateTime::from_timestamp_nanos(c.started_at);
    // `ps` prints the start time of a process from today as HH:MM, older ones as MonDD.
    let same_day = started.date_naive() == chrono::DateTime::from_timestamp_nanos(now).date_naive();
    let start = if same_day {
        started.format("%H:%M").to_string()
    } else {
        started.format("%b%d").to_string()
    };
    let tty = if c.spec.tty { "pts/0" } else { "?" };
    let pid = c.pid.to_string();
    let cmd = command(c);
    let (titles, row): (&[&str], Vec<String>) = match format {
        PsFormat::Full => (
            &["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            // The parent is the container's shim, started just before it.
            vec![
                "root".into(),
                pid,
                (c.pid - 1).to_string(),
                "0".into(),
                start,
                tty.into(),
                "00:00:00".into(),
                cmd,
            ],
        ),
        PsFormat::User => (
            &[
                "USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME",
                "COMMAND",
            ],
            vec![
                "root".into(),
                pid,
                "0.0".into(),
                "0.0".into(),
                "2268".into(),
                "1112".into(),
                tty.into(),
                "Ss".into(),
                start,
                "0:00".into(),
                cmd,
            ],
        ),
    };
    json!({"Processes": [row], "Titles": titles})
}

/// The engine's defaults with the client's HostConfig laid over them.
fn host_config(c: &Container) -> Value {
    let mut hc = json!({
        "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null, "CapAdd": null, "CapDrop": null,
        "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null,
        "GroupAdd": null, "IpcMode": "private", "Cgroup": "", "Links": null, "OomScoreAdj": 0,
        "PidMode": "", "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
        "SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Runtime": "runc",
        "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "",
        "CpusetMems": "", "Devices": [], "KernelMemory": 0, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": null, "OomKillDisable": false, "PidsLimit": null, "Ulimits": null,
    });
    if let (Some(Value::Object(given)), Value::Object(out)) = (&c.spec.host_config, &mut hc) {
        for (k, v) in given {
            out.insert(k.clone(), v.clone());
        }
    }
    hc
}

pub fn inspect(c: &Container, engine: &Facts) -> Value {
    let (path, args) = {
        let mut all = c
            .spec
            .entrypoint
            .iter()
            .flatten()
            .chain(c.spec.cmd.iter().flatten())
            .cloned();
        (all.next().unwrap_or_default(), all.collect::<Vec<_>>())
    };
    let net = network_mode(c);
    let net_name = if net == "default" {
        "bridge".to_string()
    } else {
        net
    };
    let running = c.status == Status::Running;
    json!({
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": path,
        "Args": args,
        "State": {
            "Status": c.status.as_str(), "Running": running, "Paused": false, "Restarting": false,
            "OOMKilled": false, "Dead": false, "Pid": c.pid, "ExitCode": c.exit_code, "Error": "",
            "StartedAt": rfc3339(c.started_at), "FinishedAt": rfc3339(c.finished_at),
        },
        "Image": &*c.image_id,
        "ResolvConfPath": format!("/var/lib/docker/containers/{}/resolv.conf", c.id),
        "HostnamePath": format!("/var/lib/docker/containers/{}/hostname", c.id),
        "HostsPath": format!("/var/lib/docker/containers/{}/hosts", c.id),
        "LogPath": format!("/var/lib/docker/containers/{0}/{0}-json.log", c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": 0,
        "Driver": engine.storage_driver,
        "Platform": "linux",
        "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": null,
        "HostConfig": host_config(c),
        "GraphDriver": {"Data": null, "Name": engine.storage_driver},
        "Mounts": [],
        "Config": {
            "Hostname": c.spec.hostname.clone().unwrap_or_else(|| c.id[..12].to_string()),
            "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
            "ExposedPorts": c.spec.exposed_ports, "Tty": c.spec.tty, "OpenStdin": false, "StdinOnce": false,
            "Env": c.spec.env.clone().unwrap_or_else(|| vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()]),
            "Cmd": c.spec.cmd, "Image": c.image, "Volumes": null,
            "WorkingDir": c.spec.working_dir.clone().unwrap_or_default(),
            "Entrypoint": c.spec.entrypoint, "OnBuild": null,
            "Labels": c.spec.labels.clone().unwrap_or_default(),
        },
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "HairpinMode": false, "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0, "Ports": {}, "SandboxKey": "", "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": { net_name.clone(): {
                "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": crate::util::fake_digest(&net_name),
                "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
                "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": null,
            }},
        },
    })
}

pub fn image_summary(i: &Image) -> ImageSummary {
    ImageSummary {
        id: i.id.to_string(),
        parent_id: String::new(),
        repo_tags: i.repo_tags.clone(),
        repo_digests: Vec::new(),
        created: i.created,
        size: i.size,
        shared_size: -1,
        virtual_size: Some(i.size),
        labels: HashMap::new(),
        containers: -1,
        ..Default::default()
    }
}

pub fn image_inspect(i: &Image, engine: &Facts) -> Value {
    let cfg = json!({
        "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
        "AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"],
        "Image": "", "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    json!({
        "Id": &*i.id, "RepoTags": i.repo_tags, "RepoDigests": [], "Parent": "", "Comment": "",
        "Created": rfc3339(i.created * 1_000_000_000), "Container": "", "ContainerConfig": cfg.clone(),
        "DockerVersion": engine.server_version, "Author": "", "Config": cfg, "Architecture": "amd64",
        "Os": "linux", "Size": i.size, "VirtualSize": i.size,
        "GraphDriver": {"Data": null, "Name": engine.storage_driver},
        "RootFS": {"Type": "layers", "Layers": [format!("sha256:{}", crate::util::fake_digest(&i.id))]},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

pub fn networks() -> Value {
    let net = |name: &str, driver: &str, subnet: Option<&str>, options: Value| {
        json!({
            "Name": name, "Id": crate::util::fake_digest(name), "Created": "2024-01-01T00:00:00.000000000Z",
            "Scope": "local", "Driver": driver, "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": null,
                     "Config": subnet.map(|s| vec![json!({"Subnet": s})]).unwrap_or_default()},
            "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": {"Network": ""},
            "ConfigOnly": false, "Containers": {}, "Options": options, "Labels": {},
        })
    };
    json!([
        net(
            "bridge",
            "bridge",
            Some("172.17.0.0/16"),
            json!({
                "com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.bridge.name": "docker0",
                "com.docker.network.driver.mtu": "1500",
            })
        ),
        net("none", "null", None, json!({})),
        net("host", "host", None, json!({})),
    ])
}
