//! `shoal`: parse the command line, load the config, run until a signal.
#![forbid(unsafe_code)]

use clap::Parser;
use shoal::cli::{Cli, Command};
use shoal::config::{ListenAddr, ManageConfig};
use shoal::readiness;
use shoal::server::{self, Listener};
use std::process::ExitCode;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(
    clippy::disallowed_methods,
    reason = "start-up: binds before the runtime starts"
)]
fn bind(addr: &ListenAddr) -> std::io::Result<Listener> {
    Ok(match addr {
        ListenAddr::Tcp(hp) => Listener::Tcp(std::net::TcpListener::bind(hp)?),
        ListenAddr::Unix(path) => {
            // A socket file left by an earlier run would make bind fail.
            if path.exists() {
                std::fs::remove_file(path)?;
            }
            Listener::Unix(std::os::unix::net::UnixListener::bind(path)?)
        }
    })
}

/// Raises this process's open-file soft limit to its hard limit. `shoal manage` holds two
/// connections per engine (requests and the event stream), and a `shoal sim` process a
/// listening socket plus Shoal's two connections per engine it simulates: a thousand
/// engines already pass the usual soft limit of 1024, while the hard limit is commonly
/// far higher. Answers (the soft limit before, the one now), or why it could not.
fn raise_fd_limit() -> Result<(Option<u64>, Option<u64>), rustix::io::Errno> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let was = getrlimit(Resource::Nofile);
    if was.current == was.maximum {
        return Ok((was.current, was.current));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: was.maximum,
            maximum: was.maximum,
        },
    )?;
    Ok((was.current, was.maximum))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before anything opens a file: said in the log once it is set up (below).
    let fd_limit = raise_fd_limit();
    match cli.command {
        Command::Sim(args) => shoal::sim_cmd::run(args),
        Command::Completions { shell } => {
            shoal::docs_cmd::completions(shell, &mut std::io::stdout().lock());
            ExitCode::SUCCESS
        }
        Command::Man(args) => match shoal::docs_cmd::man(&args, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shoal: {e}");
                ExitCode::FAILURE
            }
        },
        Command::List(args) => match shoal::list_cmd::run(&args) {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shoal: {e}");
                ExitCode::from(2)
            }
        },
        Command::Join(args) => {
            shoal::telemetry::init(&args.log_level, shoal::telemetry::LogFormat::Text);
            match shoal::join_cmd::run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shoal: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Manage(args) => {
            shoal::telemetry::init(&args.effective_log_level(), args.log_format);
            match fd_limit {
                Ok((was, now)) => {
                    tracing::debug!(?was, ?now, "open-file soft limit raised to the hard limit");
                }
                Err(e) => tracing::warn!(
                    "cannot raise the open-file soft limit ({e}): each engine takes two connections"
                ),
            }
            let config = match ManageConfig::from_args(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("shoal: {e}");
                    return ExitCode::from(2);
                }
            };
            let listener = match bind(&config.listen) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("shoal: cannot listen on {}: {e}", args.host);
                    return ExitCode::from(2);
                }
            };
            // With `-H 127.0.0.1:0` the OS picks the port: say which (tests read this line).
            let bound = match &listener {
                Listener::Tcp(l) => l.local_addr().map_or(args.host.clone(), |a| a.to_string()),
                Listener::Unix(_) => args.host.clone(),
            };
            // Under systemd's Type=notify: read before anything starts, so a bad
            // NOTIFY_SOCKET is a start-up error, not a unit that never becomes ready.
            let notifier = match readiness::Notifier::from_env() {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("shoal: {e}");
                    return ExitCode::from(2);
                }
            };
            let result = actix_rt::System::new().block_on(async move {
                let running = server::start(config, listener).await?;
                tracing::info!(target: "shoal::listen", host = %args.host, addr = %bound, "shoal is serving the Docker API");
                if let Some(notifier) = notifier {
                    actix_rt::spawn(readiness::announce(
                        notifier,
                        running.view.clone(),
                        running.discovered,
                        readiness::READY_LIMIT,
                    ));
                }
                running.server.await?;
                if let Some(sim) = running.sim {
                    sim.stop().await;
                }
                Ok::<_, server::StartError>(())
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shoal: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
