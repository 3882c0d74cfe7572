//! Issue 10's request smuggling, end to end against a REAL engine: a request whose framing
//! actix-http refuses (400) hid a `POST /containers/web/attach` in its body; the hijack
//! gate framed that body as the next request, the attach reached the engine, and the
//! container's output came back to the client. Now the gate refuses the first request
//! itself and closes: nothing after it is read.
#![allow(
    clippy::disallowed_methods,
    reason = "plain #[test]s: they block the test's own thread, while the engines and Shoal under test are processes of their own"
)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{docker_cli, RealCluster, ShoalDaemon};

const MARK: &str = "SMUGGLED-OUTPUT";
const ATTACH: &str = "POST /containers/web/attach?logs=1&stream=0&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";

/// Writes `bytes` to Shoal and reads until it closes (or 20 s pass).
fn exchange(host: &str, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(host).expect("connect to shoal");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(bytes).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_hidden_attach_gets_no_output_from_a_real_engine() {
    let cluster = RealCluster::new()
        .engines(1)
        .start()
        .expect("engine starts");
    cluster.engines()[0]
        .docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            &format!("echo {MARK}; sleep 600"),
        ])
        .expect_success();
    let shoal = ShoalDaemon::over(&cluster, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !docker_cli(shoal.host(), &["ps"]).stdout.contains("web") {
        assert!(Instant::now() < deadline, "web never listed");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The control: asked plainly, the engine's answer carries the container's output.
    let plain = exchange(shoal.host(), ATTACH.as_bytes());
    assert!(plain.contains(MARK), "plain attach: {plain:?}");

    for first in [
        "POST /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /_ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 106\r\n\r\n",
    ] {
        let answer = exchange(shoal.host(), format!("{first}{ATTACH}").as_bytes());
        assert!(
            !answer.contains(MARK),
            "{first:?}: the hidden attach reached the engine: {answer:?}"
        );
        assert!(
            answer.starts_with("HTTP/1.1 400") && answer.matches("HTTP/1.1 ").count() == 1,
            "{first:?}: {answer:?}"
        );
    }
    cluster.engines()[0]
        .docker(&["rm", "-f", "web"])
        .expect_success();
}
