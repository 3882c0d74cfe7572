//! The authorization guard's own work per request, without HTTP: reading the policy in
//! force (the `watch` snapshot), classifying the request and deciding; for a create, also
//! parsing the typed body and checking the create rules. Prints ns per request for an
//! allowed read, a refused write (the 403's message, metric and log call included) and an
//! allowed and a refused create.
//!
//! `cargo run --release --example authz_guard`

use shoal::authz::decide::{check_create, classify, decide};
use shoal::authz::guard::deny;
use shoal::authz::{Authz, Policy};
use std::hint::black_box;
use std::time::Instant;

const POLICY: &str = r#"
default = "deny"
[clients.auditor]
read_only = true
[clients.team-a]
tenant = "a"
allow_exec = true
allow_host_mounts = ["/srv/team-a"]
allow_capabilities = ["NET_ADMIN"]
constraints = ["pool==batch"]
"#;

const CREATE: &[u8] = br#"{"Image":"busybox","Cmd":["sleep","600"],"Env":["A=1","B=2"],
"Labels":{"app":"web"},"HostConfig":{"Binds":["/srv/team-a/data:/data"],"CapAdd":["NET_ADMIN"],
"NetworkMode":"bridge","Memory":268435456}}"#;

const PRIVILEGED: &[u8] = br#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#;

fn per_request(name: &str, n: u32, mut f: impl FnMut()) {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
    println!("{name:<40} {ns:>8.0} ns/request");
}

fn main() {
    let authz = Authz::fixed(Policy::parse(POLICY).expect("the example policy"));
    let n = 1_000_000;
    per_request("allowed read (GET /containers/json)", n, || {
        let policy = authz.current();
        let kind = classify("GET", black_box("/v1.41/containers/json"));
        black_box(decide(&policy, Some(black_box("team-a")), kind).is_ok());
    });
    per_request("refused write (read_only, 403 built)", n, || {
        let policy = authz.current();
        let kind = classify("POST", black_box("/v1.41/containers/web/start"));
        if let Err(rule) = decide(&policy, Some(black_box("auditor")), kind) {
            black_box(deny(Some("auditor"), rule, "POST /containers/web/start"));
        }
    });
    let n = 200_000;
    per_request("allowed create (typed body checked)", n, || {
        let policy = authz.current();
        let kind = classify("POST", black_box("/v1.41/containers/create"));
        let Ok(shoal::authz::Access::Client(rules)) = decide(&policy, Some("team-a"), kind) else {
            return;
        };
        let body: bollard_stubs::models::ContainerCreateBody =
            serde_json::from_slice(black_box(CREATE)).expect("the example body");
        black_box(check_create(rules, &body, |_, _| true).is_ok());
    });
    per_request("refused create (allow_privileged)", n, || {
        let policy = authz.current();
        let kind = classify("POST", black_box("/v1.41/containers/create"));
        let Ok(shoal::authz::Access::Client(rules)) = decide(&policy, Some("team-a"), kind) else {
            return;
        };
        let body: bollard_stubs::models::ContainerCreateBody =
            serde_json::from_slice(black_box(PRIVILEGED)).expect("the example body");
        if let Err(rule) = check_create(rules, &body, |_, _| true) {
            black_box(deny(Some("team-a"), rule, "POST /containers/create"));
        }
    });
}
