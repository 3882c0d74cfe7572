//! The fleet: one actix-web server listening on one port per engine.
//!
//! Every listener shares the same workers and the same tiny app (a single default
//! service), so 5,000 engines cost 5,000 sockets and 5,000 small app instances per
//! worker, not 5,000 servers. The engine of a request is the one bound to the local port
//! of its connection.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use bytes::Bytes;
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use crate::engine::{Container, Engine, SimEngine, State, Status};
use crate::events::SimEvent;
use crate::fault::Fault;
use crate::request::{parse, Op};
use crate::util::{normalize_image, now_nanos, Filters};
use crate::{render, EngineConfig, FleetOptions, SimError};

/// Engines by the local port they listen on. Built once, read-only afterwards.
type Registry = HashMap<u16, Arc<Engine>>;

/// Simulated engines served from this process.
pub struct SimFleet {
    engines: Vec<SimEngine>,
    handle: ServerHandle,
}

impl SimFleet {
    /// Binds one port per engine on 127.0.0.1 and spawns the server on the current actix
    /// system (or tokio runtime with a `LocalSet`).
    pub async fn start(
        engines: Vec<EngineConfig>,
        opts: FleetOptions,
    ) -> Result<SimFleet, SimError> {
        let mut listeners = Vec::with_capacity(engines.len());
        let mut registry = Registry::with_capacity(engines.len());
        let mut handles = Vec::with_capacity(engines.len());
        for (i, cfg) in engines.into_iter().enumerate() {
            let port = match opts.port_base {
                Some(base) => base.checked_add(i as u16).ok_or_else(|| {
                    SimError::Io(std::io::Error::other("port_base + engines exceeds 65535"))
                })?,
                None => 0,
            };
            let l = TcpListener::bind(("127.0.0.1", port))?;
            l.set_nonblocking(true)?;
            let addr = l.local_addr()?;
            let engine = Arc::new(Engine::new(
                cfg,
                addr,
                opts.event_history,
                opts.event_buffer,
            ));
            registry.insert(addr.port(), engine.clone());
            handles.push(SimEngine { inner: engine });
            listeners.push(l);
        }
        let registry = web::Data::new(registry);
        let reg = registry.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(registry.clone())
                // dockerd reads JSON bodies without a size limit; a fleet of them still
                // bounds its memory.
                .app_data(web::PayloadConfig::new(64 << 20))
                .default_service(web::to(dispatch))
        })
        .workers(opts.workers.max(1))
        .disable_signals()
        .shutdown_timeout(1)
        .keep_alive(Duration::from_secs(75))
        .on_connect(move |conn, _| refuse_if_down(&reg, conn));
        for l in listeners {
            server = match &opts.tls {
                Some(tls) => server.listen_rustls_0_23(l, (**tls).clone())?,
                None => server.listen(l)?,
            };
        }
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(SimFleet {
            engines: handles,
            handle,
        })
    }

    pub fn len(&self) -> usize {
        self.engines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.engines.is_empty()
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.engines.iter().map(SimEngine::addr).collect()
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.engines[i].addr()
    }

    pub fn engine(&self, i: usize) -> SimEngine {
        self.engines[i].clone()
    }

    pub fn engines(&self) -> &[SimEngine] {
        &self.engines
    }

    /// Ends event streams, then stops the server and closes every port.
    pub async fn stop(self) {
        for e in &self.engines {
            e.inner.set_fault(Fault::Down);
        }
        self.handle.stop(false).await;
    }
}

/// `Fault::Down`: shut a new connection before it is read, like an engine that is gone.
fn refuse_if_down(reg: &Registry, conn: &dyn std::any::Any) {
    let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    let Ok(local) = tcp.local_addr() else { return };
    if reg
        .get(&local.port())
        .is_some_and(|e| e.lock().fault == Fault::Down)
    {
        let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
    }
}

/// The one handler: find the engine, apply its fault, parse, execute, add headers.
async fn dispatch(req: HttpRequest, body: Bytes, reg: web::Data<Registry>) -> HttpResponse {
    let Some(engine) = reg.get(&req.app_config().local_addr().port()).cloned() else {
        return SimError::PageNotFound.error_response();
    };
    loop {
        let fault = engine.lock().fault;
        match fault {
            Fault::None => break,
            Fault::Down => tokio::time::sleep(Duration::from_millis(50)).await,
            Fault::Slow(d) => {
                tokio::time::sleep(d).await;
                break;
            }
            Fault::Garbage => {
                return HttpResponse::Ok()
                    .content_type("text/plain")
                    .body("<html>\x00garbage{{{not json")
            }
            Fault::Error500 => {
                return HttpResponse::InternalServerError()
                    .json(serde_json::json!({"message": "simulated engine failure"}))
            }
        }
    }
    let mut resp = match parse(req.method(), req.path(), req.query_string(), &body) {
        Ok(op) => execute(&engine, op, *req.method() == Method::HEAD)
            .await
            .unwrap_or_else(|e| e.error_response()),
        Err(e) => e.error_response(),
    };
    let h = resp.headers_mut();
    let f = &engine.facts;
    for (k, v) in [
        ("api-version", f.api_version.clone()),
        ("docker-experimental", "false".to_string()),
        ("ostype", "linux".to_string()),
        ("server", format!("Docker/{} (linux)", f.server_version)),
    ] {
        if let Ok(v) = v.parse() {
            h.insert(actix_web::http::header::HeaderName::from_static(k), v);
        }
    }
    resp
}

async fn execute(e: &Arc<Engine>, op: Op, head: bool) -> Result<HttpResponse, SimError> {
    let done = |changed: bool| {
        if changed {
            HttpResponse::NoContent().finish()
        } else {
            HttpResponse::NotModified().finish()
        }
    };
    Ok(match op {
        Op::Ping => {
            let mut r = HttpResponse::Ok();
            r.content_type("text/plain; charset=utf-8")
                .insert_header(("Cache-Control", "no-cache, no-store, must-revalidate"))
                .insert_header(("Pragma", "no-cache"));
            if head {
                r.insert_header(("Content-Length", "0")).finish()
            } else {
                r.body("OK")
            }
        }
        Op::Version => HttpResponse::Ok().json(render::version(&e.facts)),
        Op::Info => {
            let st = e.lock();
            HttpResponse::Ok().json(render::info(&e.facts, &st))
        }
        Op::ListContainers {
            all,
            limit,
            size,
            filters,
        } => {
            let st = e.lock();
            let now = now_nanos();
            let list: Vec<_> = select(&st, all, limit, &filters)
                .into_iter()
                .map(|c| render::summary(c, size, now))
                .collect();
            HttpResponse::Ok().json(list)
        }
        Op::CreateContainer { name, spec } => {
            let id = e.create(name, spec)?;
            HttpResponse::Created().json(serde_json::json!({"Id": id, "Warnings": []}))
        }
        Op::InspectContainer(r) => {
            let st = e.lock();
            let i = st.find_container(&r)?;
            HttpResponse::Ok().json(render::inspect(&st.containers[i], &e.facts))
        }
        Op::TopContainer { id, format } => {
            let (st, i) = e.top(&id)?;
            HttpResponse::Ok().json(render::top(&st.containers[i], format, now_nanos()))
        }
        Op::StartContainer(r) => done(e.start(&r)?),
        Op::StopContainer(r) => done(e.stop(&r)?),
        Op::KillContainer { id, signal } => {
            e.kill(&id, &signal)?;
            HttpResponse::NoContent().finish()
        }
        Op::RestartContainer(r) => {
            e.restart(&r)?;
            HttpResponse::NoContent().finish()
        }
        Op::WaitContainer(r) => {
            let code = wait(e, &r).await?;
            HttpResponse::Ok().json(serde_json::json!({"Error": null, "StatusCode": code}))
        }
        Op::RemoveContainer { id, force } => {
            e.remove(&id, force)?;
            HttpResponse::NoContent().finish()
        }
        Op::ListImages => {
            let st = e.lock();
            HttpResponse::Ok().json(
                st.images
                    .iter()
                    .rev()
                    .map(render::image_summary)
                    .collect::<Vec<_>>(),
            )
        }
        Op::InspectImage(r) => {
            let st = e.lock();
            HttpResponse::Ok().json(render::image_inspect(st.find_image(&r)?, &e.facts))
        }
        Op::PullImage(image) => {
            let tagged = normalize_image(&image);
            let (repo, tag) = tagged.rsplit_once(':').unwrap_or((&tagged, "latest"));
            let layer = &crate::util::fake_digest(&tagged)[..12];
            let new = e.pull(&image);
            let mut lines = vec![format!(
                r#"{{"status":"Pulling from {repo}","id":"{tag}"}}"#
            )];
            if new {
                lines.push(format!(
                    r#"{{"status":"Pulling fs layer","progressDetail":{{}},"id":"{layer}"}}"#
                ));
                lines.push(format!(
                    r#"{{"status":"Download complete","progressDetail":{{}},"id":"{layer}"}}"#
                ));
                lines.push(format!(
                    r#"{{"status":"Pull complete","progressDetail":{{}},"id":"{layer}"}}"#
                ));
            }
            lines.push(format!(
                r#"{{"status":"Digest: sha256:{}"}}"#,
                crate::util::fake_digest(&format!("d{tagged}"))
            ));
            lines.push(if new {
                format!(r#"{{"status":"Status: Downloaded newer image for {tagged}"}}"#)
            } else {
                format!(r#"{{"status":"Status: Image is up to date for {tagged}"}}"#)
            });
            let body = lines
                .into_iter()
                .map(|l| Ok::<_, actix_web::Error>(Bytes::from(l + "\r\n")));
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(stream::iter(body))
        }
        Op::ListNetworks => HttpResponse::Ok().json(render::networks()),
        Op::ListVolumes => {
            HttpResponse::Ok().json(serde_json::json!({"Volumes": [], "Warnings": null}))
        }
        Op::Events {
            since,
            until,
            filters,
        } => events(e, since, until, filters),
    })
}

/// Containers matching a list request, newest first.
fn select<'a>(st: &'a State, all: bool, limit: Option<usize>, f: &Filters) -> Vec<&'a Container> {
    let all = all || limit.is_some() || f.contains_key("status");
    let any = |key: &str, pred: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vs| vs.iter().any(|v| pred(v)))
    };
    let mut out: Vec<&Container> = st
        .containers
        .iter()
        .rev()
        .filter(|c| all || c.status == Status::Running)
        .filter(|c| {
            any("id", &|v| c.id.starts_with(v))
                && any("name", &|v| c.name.contains(v.trim_start_matches('/')))
                && any("status", &|v| v == c.status.as_str())
                && any("ancestor", &|v| {
                    c.image == v
                        || normalize_image(&c.image) == normalize_image(v)
                        || c.image_id
                            .trim_start_matches("sha256:")
                            .starts_with(v.trim_start_matches("sha256:"))
                })
                && f.get("label").is_none_or(|w| {
                    crate::util::labels_match(
                        c.spec
                            .labels
                            .iter()
                            .flatten()
                            .map(|(k, v)| (k.as_str(), v.as_str())),
                        w,
                    )
                })
        })
        .collect();
    if let Some(n) = limit {
        out.truncate(n);
    }
    out
}

/// `POST /containers/{id}/wait`: the exit code, at once when not running.
async fn wait(e: &Arc<Engine>, reference: &str) -> Result<i64, SimError> {
    let (id, mut rx) = {
        let st = e.lock();
        let c = &st.containers[st.find_container(reference)?];
        if c.status != Status::Running {
            return Ok(c.exit_code);
        }
        let id = c.id.clone();
        drop(st);
        (id, e.subscribe(None).1)
    };
    loop {
        match rx.recv().await {
            Ok(ev) if ev.action == "die" && ev.actor.id == id => {
                return Ok(ev
                    .actor
                    .attributes
                    .get("exitCode")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0));
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return Ok(0),
        }
    }
}

/// `GET /events`: replay from the ring, then stream live events until `until` (if any).
fn events(
    e: &Arc<Engine>,
    since: Option<i64>,
    until: Option<i64>,
    filters: Filters,
) -> HttpResponse {
    let (replay, rx) = e.subscribe(since.or(until.map(|_| 0)));
    let now = now_nanos();
    let in_window = move |ev: &SimEvent| until.is_none_or(|u| ev.time_nano <= u);
    let line = |ev: &SimEvent| {
        let mut v = serde_json::to_vec(ev).unwrap_or_default();
        v.push(b'\n');
        Ok::<_, actix_web::Error>(Bytes::from(v))
    };
    let replayed: Vec<_> = replay
        .iter()
        .filter(|ev| ev.matches(&filters) && in_window(ev))
        .map(|ev| line(ev))
        .collect();
    let live = until.is_none_or(|u| u > now).then_some(rx);
    let deadline =
        until.map(|u| tokio::time::Instant::now() + Duration::from_nanos((u - now).max(0) as u64));
    let tail = stream::unfold((live, filters), move |(rx, filters)| async move {
        let mut rx = rx?;
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => return None,
                },
                None => rx.recv().await,
            };
            match next {
                Ok(ev) if ev.matches(&filters) => {
                    let mut v = serde_json::to_vec(&*ev).unwrap_or_default();
                    v.push(b'\n');
                    return Some((
                        Ok::<_, actix_web::Error>(Bytes::from(v)),
                        (Some(rx), filters),
                    ));
                }
                Ok(_) => {}
                // A subscriber that fell behind is dropped, like dockerd drops slow clients.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
            }
        }
    });
    use futures_util::StreamExt;
    HttpResponse::build(StatusCode::OK)
        .content_type("application/json")
        .streaming(stream::iter(replayed).chain(tail))
}
