//! The HTTP listeners Nimbus serves: the public API listener and, for each environment, its Runtime API
//! listener and (namespace tier) the API listener inside its network namespace. The other side of the
//! public one is any client that can reach it; of an environment's two, the function's own code, which
//! is hostile until shown otherwise. What is bounded here, so that no client and no function can take
//! the descriptors or the connections the others need:
//!
//! - connections: each listener has its own cap, and every environment listener also draws on one
//!   budget shared by all environments ([`Budgets`], computed from the open-files limit), which leaves a
//!   reserve of descriptors for the public listener, the stores and the environments themselves. The
//!   public listener waits for a free slot (the kernel's backlog holds the rest); an environment's
//!   listener accepts and closes at once what is past its caps, so a function sees its extra
//!   connections refused instead of hanging;
//! - idle time: hyper's `header_read_timeout` runs from the moment a connection waits for a request
//!   until that request's headers are in, so it bounds both a slow header and a keep-alive connection
//!   left idle. It does not run while a request is being answered: the Runtime API's `/next` long poll
//!   is never timed out;
//! - accept errors: out of descriptors (`EMFILE`, `ENFILE`) or memory, the loop backs off (5 ms doubling
//!   to 1 s) and retries; it neither spins nor ends.
//!
//! Hand-written instead of `axum::serve`, which has no connection limits, no header timeout and sleeps
//! a fixed second on any accept error.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// Something connections are accepted from: a `TcpListener`, or in tests one that fails on purpose.
pub trait Accept: Send + 'static {
    fn accept(&mut self) -> impl Future<Output = io::Result<TcpStream>> + Send;
}

impl Accept for TcpListener {
    async fn accept(&mut self) -> io::Result<TcpStream> {
        TcpListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// What a connection past a listener's limits gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Not accepted until a connection ends (the public listener: clients queue in the backlog).
    Wait,
    /// Accepted and closed at once (an environment's listeners: the function sees it refused).
    Refuse,
}

/// The limits of one listener.
#[derive(Clone)]
pub struct Limits {
    /// Connections this listener serves at once.
    pub connections: Arc<Semaphore>,
    /// A budget this listener shares with others (every environment's listeners share one).
    pub shared: Option<Arc<Semaphore>>,
    /// Connections served without drawing on `shared` (counted in the reserve instead), so that other
    /// environments' connections can never keep a runtime from reaching its own Runtime API.
    pub reserved: usize,
    pub when_full: WhenFull,
    /// How long a connection may wait for the complete header of its next request.
    pub idle: Duration,
    /// For logs: which listener this is.
    pub name: &'static str,
}

/// Connection budgets derived from the process's open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// Connections the public listener serves at once.
    pub public_connections: usize,
    /// Connections all environments' listeners together may hold.
    pub environment_connections: usize,
}

impl Budgets {
    /// A quarter of the descriptors for public connections and a quarter for environments'
    /// connections; the other half stays for what each environment holds of its own (pipes, pidfd,
    /// listeners, its /tmp disk), the stores and the sandbox.
    pub fn from_open_files_limit(limit: u64) -> Self {
        let quarter = usize::try_from(limit / 4).unwrap_or(usize::MAX);
        Self {
            public_connections: quarter.clamp(16, nimbus_model::limits::PUBLIC_CONNECTIONS_MAX),
            environment_connections: quarter.clamp(16, nimbus_model::limits::ENVIRONMENT_CONNECTIONS_TOTAL_MAX),
        }
    }
}

/// Raises the soft open-files limit to the hard one (a server inherits 1,024 from most shells and
/// units, which a few hundred connections use up) and returns the limit now in force.
pub fn raise_open_files_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
        tracing::debug!(from = soft, to = hard, "raised the open-files limit");
    }
    Ok(hard.max(soft))
}

/// The open-files limit in force (soft).
pub fn open_files_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets the connections
/// finish what they are answering (they close once idle) and returns when all have ended. Each request
/// carries `tag` in its extensions (where it came from). Dropping the future drops every connection.
pub async fn serve<A: Accept, X: Clone + Send + Sync + 'static>(
    mut listener: A,
    app: Router,
    limits: Limits,
    tag: X,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut backoff = Backoff::default();
    let refused = AtomicU64::new(0);
    let reserved = Arc::new(Semaphore::new(limits.reserved));
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let waited = match limits.when_full {
            WhenFull::Wait => tokio::select! {
                permit = limits.connections.clone().acquire_owned() => permit.ok(),
                () = &mut shutdown => break,
            },
            WhenFull::Refuse => None,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok(stream) => {
                backoff.reset(limits.name);
                stream
            }
            // The client gave up between SYN and accept: nothing is wrong with the listener.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tokio::select! {
                    () = backoff.wait(limits.name, &e) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let permits = match waited {
            Some(own) => Permits { _own: own, _shared: None },
            None => match take_permits(&limits, &reserved) {
                Some(permits) => permits,
                None => {
                    // Dropping the stream closes it: the function's connect succeeded, its first read
                    // ends at once, as connecting to a full service does.
                    let n = refused.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() || n == 0 {
                        tracing::warn!(
                            listener = limits.name,
                            refused = n + 1,
                            "connection limit reached; closing new connections"
                        );
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(stream, app.clone(), tag.clone(), limits.idle, stopping.clone(), permits));
    }
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

fn take_permits(limits: &Limits, reserved: &Arc<Semaphore>) -> Option<Permits> {
    let own = limits.connections.clone().try_acquire_owned().ok()?;
    if let Ok(reserved) = reserved.clone().try_acquire_owned() {
        return Some(Permits { _own: own, _shared: Some(reserved) });
    }
    let shared = match &limits.shared {
        Some(shared) => Some(shared.clone().try_acquire_owned().ok()?),
        None => None,
    };
    Some(Permits { _own: own, _shared: shared })
}

/// Held by a connection's task for as long as it lives.
struct Permits {
    _own: OwnedSemaphorePermit,
    _shared: Option<OwnedSemaphorePermit>,
}

async fn connection<X: Clone + Send + Sync + 'static>(
    stream: TcpStream,
    app: Router,
    tag: X,
    idle: Duration,
    mut stopping: watch::Receiver<bool>,
    _permits: Permits,
) {
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(tag.clone());
        tower::ServiceExt::oneshot(app.clone(), request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(idle);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Errors of one connection (gone before it was accepted), not of the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

const BACKOFF_FIRST: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How long to wait after an accept error: out of descriptors, waiting lets connections end; retrying
/// at once would spin a core and find none.
struct Backoff {
    next: Duration,
    failing: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_FIRST, failing: false }
    }
}

impl Backoff {
    async fn wait(&mut self, listener: &'static str, error: &io::Error) {
        if !self.failing {
            tracing::error!(listener, %error, "cannot accept connections; retrying with back-off");
            self.failing = true;
        }
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(BACKOFF_MAX);
    }

    fn reset(&mut self, listener: &'static str) {
        if self.failing {
            tracing::info!(listener, "accepting connections again");
        }
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A listener that fails with EMFILE for a while, as a process out of descriptors does.
    struct OutOfDescriptors {
        inner: TcpListener,
        until: Instant,
        failures: Arc<AtomicUsize>,
    }

    impl Accept for OutOfDescriptors {
        async fn accept(&mut self) -> io::Result<TcpStream> {
            if Instant::now() < self.until {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(io::Error::from_raw_os_error(24)); // EMFILE
            }
            TcpListener::accept(&self.inner).await.map(|(s, _)| s)
        }
    }

    fn limits(when_full: WhenFull, connections: usize) -> Limits {
        Limits {
            connections: Arc::new(Semaphore::new(connections)),
            shared: None,
            reserved: 0,
            when_full,
            idle: Duration::from_secs(5),
            name: "test",
        }
    }

    async fn get(addr: std::net::SocketAddr) -> io::Result<String> {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await?;
        Ok(text)
    }

    fn app() -> Router {
        Router::new().route("/", axum::routing::get(|| async { "ok" }))
    }

    #[tokio::test]
    async fn out_of_descriptors_backs_off_and_recovers() {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let failures = Arc::new(AtomicUsize::new(0));
        let listener =
            OutOfDescriptors { inner, until: Instant::now() + Duration::from_millis(300), failures: failures.clone() };
        let server = tokio::spawn(serve(listener, app(), limits(WhenFull::Wait, 4), (), std::future::pending()));
        // The client's connection waits in the backlog while accept fails, and is served after.
        let text = get(addr).await.unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("ok"), "{text}");
        // 300 ms of failures cost at most 5+10+20+40+80+160 ms of sleeps, i.e. 7 attempts: a loop that
        // retried at once would have made thousands (the bound only fails for a loop that spins).
        let n = failures.load(Ordering::Relaxed);
        assert!((2..=12).contains(&n), "{n} accept attempts while out of descriptors");
        assert!(!server.is_finished());
        server.abort();
    }

    #[tokio::test]
    async fn connections_past_the_cap_are_closed_and_served_again_once_one_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Semaphore::new(100));
        let mut limits = limits(WhenFull::Refuse, 2);
        limits.shared = Some(shared.clone());
        let server = tokio::spawn(serve(listener, app(), limits, (), std::future::pending()));
        let held = [TcpStream::connect(addr).await.unwrap(), TcpStream::connect(addr).await.unwrap()];
        // The two held connections are served (each answers a request on its own) ...
        for stream in &held {
            stream.writable().await.unwrap();
        }
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 16];
        // ... and the third is closed without an answer.
        let _ = third.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let n = third.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "a connection past the cap is closed");
        assert_eq!(shared.available_permits(), 98, "the shared budget holds the two served connections");
        drop(held);
        // Once they end, new connections are served again.
        let text = loop {
            match get(addr).await {
                Ok(text) if !text.is_empty() => break text,
                _ => tokio::task::yield_now().await,
            }
        };
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        server.abort();
    }

    #[tokio::test]
    async fn reserved_connections_are_served_when_the_shared_budget_is_gone() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Semaphore::new(0));
        let mut limits = limits(WhenFull::Refuse, 4);
        limits.shared = Some(shared);
        limits.reserved = 1;
        let server = tokio::spawn(serve(listener, app(), limits, (), std::future::pending()));
        // The one reserved connection is served although others took the whole shared budget ...
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 12];
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        // ... and a second one is not.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let _ = second.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
        assert_eq!(second.read(&mut buf).await.unwrap_or(0), 0);
        server.abort();
    }

    #[test]
    fn budgets_leave_half_the_descriptors_in_reserve() {
        let b = Budgets::from_open_files_limit(1024);
        assert_eq!((b.public_connections, b.environment_connections), (256, 256));
        let b = Budgets::from_open_files_limit(40);
        assert_eq!((b.public_connections, b.environment_connections), (16, 16));
        let b = Budgets::from_open_files_limit(1 << 20);
        assert_eq!(b.public_connections, nimbus_model::limits::PUBLIC_CONNECTIONS_MAX);
        assert_eq!(b.environment_connections, nimbus_model::limits::ENVIRONMENT_CONNECTIONS_TOTAL_MAX);
    }
}
