//! The awc clients of one engine client, and closing their idle connections when the
//! process runs short of engine connections.
//!
//! awc closes an idle pooled connection only when it next takes it from its pool, and the
//! only way to close the idle connections of a pool at another time is to drop the pool,
//! that is the client. So while the connection budget is pressed (`budget::pressed`):
//! - a pool that had no call under way for [`IDLE`] is dropped (made afresh on its next
//!   use), closing its idle connections; while a dial waits for a slot
//!   (`budget::starved`), a pool with no call under way is dropped at once;
//! - a bounded pool (a node's) is made with room for one connection. Its calls then queue
//!   for that connection inside the pool instead of dialing a second one, so a pool never
//!   holds an idle connection while one of its own calls waits for a slot, which would
//!   hold that slot until the waiting call timed out. A busy node keeps its connection
//!   through a burst (a refresh, its start-up inspects) and gives it back when the burst
//!   ends. A pool made under pressure is made again with its full room once the pressure
//!   is gone and it is idle;
//! - a node's call finds its calls pool dropped but the work pool holding an idle
//!   connection (a create just ended): it goes over that one ([`Pools::begin`]), so the
//!   list that follows a create does not dial again.
//!
//! The API front's pools are unbounded (every proxied stream needs its own connection), so
//! while a dial waits their requests go with `Connection: close` ([`Pools::closing`]):
//! each connection closes when its answer ends.
//!
//! Below the pressure mark nothing changes: connections stay pooled as before.
//!
//! A pool stays open while any of its connections is in use, so each engine client keeps
//! its calls and its work (creates, pulls) in separate pools, each dropped when idle on
//! its own, and a node's event stream gets a client of its own ([`Pools::stream`]). A
//! front's pool dropped while a proxied stream (`logs -f`) is under way closes its idle
//! connections when that stream ends.
//!
//! Each thread keeps a list of its engine clients that hold a pool, weakly, and a sweeper:
//! a timer that every [`SWEEP_STEP`] looks whether the budget is pressed and, when it is,
//! drops the idle pools on the list. A pool made before the pressure began is dropped as
//! well as one made under it. Without a budget (tests, `shoal join`) nothing is listed.

use super::budget;
use super::tls::EngineTls;
use super::EngineAddr;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// How long a pool goes without calls before it is dropped under pressure. Long enough
/// for a node's refresh (five calls in a row) or a burst of creates to keep its connection;
/// short enough that at start-up, with every node refreshing, the connections of nodes
/// done with it come back well within the connect timeout of those still waiting.
const IDLE: Duration = Duration::from_secs(1);

/// How often a thread's sweeper looks at the budget (and, under pressure, at its pools).
const SWEEP_STEP: Duration = Duration::from_millis(250);

thread_local! {
    /// This thread's engine clients that hold a pool (see the module doc).
    static HOLDING: RefCell<Vec<Weak<Inner>>> = const { RefCell::new(Vec::new()) };
    /// Whether this thread's sweeper runs.
    static SWEEPING: Cell<bool> = const { Cell::new(false) };
}

/// The awc clients of one engine client: the one for its calls and, for a node, the one
/// for work a client asked for (see `client::NODE_WORK_CONNECTIONS`).
pub(super) struct Pools(Rc<Inner>);

/// Which of an engine client's pools.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Calls,
    Work,
}

struct Inner {
    addr: EngineAddr,
    /// Connect timeout of every client built.
    connect: Duration,
    tls: Option<EngineTls>,
    calls: Pool,
    /// `None`: this engine client has no separate pool for work.
    work: Option<Pool>,
    /// On this thread's `HOLDING` list.
    listed: Cell<bool>,
}

/// One awc client, made on first use and dropped when idle under pressure.
struct Pool {
    /// Its connections (0: no limit).
    limit: usize,
    /// The client and the room it was made with.
    client: RefCell<Option<(awc::Client, usize)>>,
    /// Calls under way that were counted ([`Pools::begin`]).
    in_flight: Cell<usize>,
    last_used: Cell<Instant>,
}

impl Pool {
    fn new(limit: usize) -> Self {
        Pool {
            limit,
            client: RefCell::new(None),
            in_flight: Cell::new(0),
            last_used: Cell::new(Instant::now()),
        }
    }

    /// Holds no client (never made, or dropped under pressure).
    fn is_empty(&self) -> bool {
        self.client.borrow().is_none()
    }

    /// Holds a client and has nothing under way on it.
    fn is_idle(&self) -> bool {
        self.in_flight.get() == 0 && !self.is_empty()
    }

    /// Drops the client when it has been idle `idle` long; answers whether one is left.
    fn drop_if_idle(&self, idle: Duration) -> bool {
        let held = self.client.borrow().is_some();
        if held && self.in_flight.get() == 0 && self.last_used.get().elapsed() >= idle {
            drop(self.client.take());
            crate::metrics::engine_idle_release();
            return false;
        }
        held
    }
}

impl Pools {
    pub(super) fn new(
        addr: EngineAddr,
        connect: Duration,
        limit: usize,
        work_limit: Option<usize>,
        tls: Option<EngineTls>,
    ) -> Self {
        Pools(Rc::new(Inner {
            addr,
            connect,
            tls,
            calls: Pool::new(limit),
            work: work_limit.map(Pool::new),
            listed: Cell::new(false),
        }))
    }

    /// The client for calls.
    pub(super) fn calls(&self) -> awc::Client {
        self.0.client(&self.0.calls)
    }

    /// The client for a call of `kind` (work goes to the calls pool when this engine
    /// client has no pool for it) and a guard that marks the call under way until dropped
    /// (its pool is not dropped meanwhile).
    pub(super) fn begin(&self, kind: Kind) -> (awc::Client, InUse) {
        let kind = match (kind, &self.0.work) {
            (_, None) => Kind::Calls,
            (Kind::Calls, Some(work)) if self.0.calls.is_empty() && work.is_idle() => {
                // Under pressure the calls pool was dropped while the work pool still
                // holds the connection of a create that just ended: the node's list of that
                // container goes over it instead of dialing again (one dial a create, not
                // two). Nothing is under way there, so no long work holds the call up; work
                // that comes meanwhile waits for this short call only.
                Kind::Work
            }
            (kind, Some(_)) => kind,
        };
        let pool = self.0.pool(kind);
        let client = self.0.client(pool);
        pool.in_flight.set(pool.in_flight.get() + 1);
        (client, InUse(self.0.clone(), kind))
    }

    /// Whether a request made now should close its connection after the answer: its pool
    /// is unbounded and a dial waits for a slot (see the module doc).
    pub(super) fn closing(&self) -> bool {
        self.0.calls.limit == 0 && budget::starved()
    }

    /// A client for one long stream (a node's event stream), made for it: a connection in
    /// use keeps its whole pool open, idle connections included, so a stream that lasts
    /// for days must not share a pool whose idle connections are to be closed.
    pub(super) fn stream(&self) -> awc::Client {
        http_client(&self.0.addr, self.0.connect, 1, self.0.tls.clone())
    }
}

/// A call under way (see [`Pools::begin`]).
pub(super) struct InUse(Rc<Inner>, Kind);

impl InUse {
    /// The pool the call went to.
    pub(super) fn kind(&self) -> Kind {
        self.1
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        let pool = self.0.pool(self.1);
        pool.in_flight.set(pool.in_flight.get() - 1);
        pool.last_used.set(Instant::now());
    }
}

impl Inner {
    /// The pool of `kind` (the calls pool for work when there is no work pool).
    fn pool(&self, kind: Kind) -> &Pool {
        match kind {
            Kind::Work => self.work.as_ref().unwrap_or(&self.calls),
            Kind::Calls => &self.calls,
        }
    }

    /// `pool`'s client, made if it was dropped (with room for one connection under
    /// pressure, and made again with its full room once the pressure is gone).
    fn client(self: &Rc<Self>, pool: &Pool) -> awc::Client {
        pool.last_used.set(Instant::now());
        let room = if pool.limit != 0 && budget::pressed() {
            1
        } else {
            pool.limit
        };
        let mut held = pool.client.borrow_mut();
        match &*held {
            Some((client, made)) if *made == room || pool.in_flight.get() > 0 => client.clone(),
            _ => {
                let client = http_client(&self.addr, self.connect, room, self.tls.clone());
                *held = Some((client.clone(), room));
                if budget::size().is_some() && !self.listed.replace(true) {
                    hold(self);
                }
                client
            }
        }
    }

    /// Drops the pools idle for `idle`; answers whether one is left.
    fn drop_idle(&self, idle: Duration) -> bool {
        let calls_left = self.calls.drop_if_idle(idle);
        let work_left = self.work.as_ref().is_some_and(|w| w.drop_if_idle(idle));
        calls_left || work_left
    }
}

/// Puts `inner` on this thread's list, and starts the thread's sweeper.
fn hold(inner: &Rc<Inner>) {
    HOLDING.with(|h| h.borrow_mut().push(Rc::downgrade(inner)));
    if !SWEEPING.with(|s| s.replace(true)) {
        actix_rt::spawn(sweep());
    }
}

/// This thread's sweeper: while the budget is pressed, drops the idle pools of the
/// listed clients (idle for [`IDLE`], or at once while a dial waits), and takes off the
/// list the clients left with no pool.
async fn sweep() {
    loop {
        actix_rt::time::sleep(SWEEP_STEP).await;
        if !budget::pressed() {
            continue;
        }
        let idle = if budget::starved() {
            Duration::ZERO
        } else {
            IDLE
        };
        HOLDING.with(|h| {
            h.borrow_mut().retain(|weak| {
                let Some(inner) = weak.upgrade() else {
                    return false;
                };
                let left = inner.drop_idle(idle);
                inner.listed.set(left);
                left
            })
        });
    }
}

/// An awc client for `addr`. Only connecting has a deadline (`connect`); callers bound the
/// rest themselves, because a proxied log stream may rightly stay open for days. Must run
/// on the thread that will use it (awc clients are `!Send`): the NodeActor builds one on
/// its arbiter, the API front one per worker thread and engine.
///
/// Redirects are not followed: an engine does not redirect, and a proxied answer must reach
/// the client as the engine gave it. awc's redirect layer also copies every request's header
/// map (~6 KB) to be able to resend it, which at start-up (thousands of calls in flight)
/// was ~50 MB.
fn http_client(
    addr: &EngineAddr,
    connect: Duration,
    max_connections: usize,
    tls: Option<EngineTls>,
) -> awc::Client {
    let builder = awc::Client::builder().disable_timeout().disable_redirects();
    // Every connection is dialed (TLS included) and framed by `conn`, so awc speaks plain
    // HTTP/1.1 on it whatever the transport; the URL only names the `Host` header.
    let connector = awc::Connector::new()
        .timeout(connect)
        .limit(max_connections)
        .connector(super::conn::connector(addr.clone(), tls));
    builder.connector(connector).finish()
}

/// The base URL to put before engine paths for `addr`.
pub(super) fn base_url(addr: &EngineAddr) -> String {
    match addr {
        EngineAddr::Tcp { host, port } => format!("http://{host}:{port}"),
        EngineAddr::Unix(_) => "http://localhost".to_string(),
    }
}
