//! The pool of execution environments. One owner task holds the [`state::PoolState`] and every
//! environment handle; invocations ask it for a [`Lease`] and give the lease back when done. The
//! state machine decides, the owner carries the decisions out (launching environments on tasks of
//! their own, so a slow cold start never stalls a warm one).

pub mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use state::{Effect, Event, PoolState, WaiterId};
pub use state::{EnvId, EnvKey, Limits, Throttle};

use crate::environment::{self, EnvHandle, LaunchContext, LaunchPlan};

/// Builds the launch plan for a cold start; runs on a blocking thread (it may unpack code).
pub type Planner = Box<dyn FnOnce() -> Result<LaunchPlan, PlanError> + Send>;
/// Makes planners for provisioned environments, which the pool launches (and relaunches) by itself.
pub type PlannerFactory = Arc<dyn Fn() -> Planner + Send + Sync>;

/// Why a function version cannot be launched; these become the invocation's error, as on Lambda.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlanError {
    /// A `provided` function without an executable `bootstrap`.
    #[error("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]")]
    InvalidEntrypoint,
    /// The host lacks the interpreter a runtime needs.
    #[error("{0}")]
    RuntimeUnavailable(String),
    #[error("prepare code: {0}")]
    Code(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error("throttled: {0:?}")]
    Throttled(Throttle),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("launch environment: {0}")]
    Launch(String),
    #[error("the pool has shut down")]
    Closed,
}

/// Messages to the owner task. The queue is bounded; senders wait when the owner is behind.
enum Msg {
    Acquire { key: EnvKey, planner: Planner, reply: oneshot::Sender<Result<Lease, AcquireError>> },
    Launched { env: EnvId, waiter: WaiterId, result: Result<EnvHandle, AcquireError> },
    SpareLaunched { env: EnvId, result: Result<EnvHandle, AcquireError> },
    Provision { key: EnvKey, count: usize, factory: PlannerFactory },
    ProvisionedStatus { key: EnvKey, reply: oneshot::Sender<ProvisionedStatus> },
    Event(Event),
    Stats { reply: oneshot::Sender<PoolStats> },
    Shutdown,
}

const QUEUE_MESSAGES_MAX: usize = 4096;

/// How far provisioning of one key has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProvisionedStatus {
    /// Provisioned environments that exist (warming or ready).
    pub allocated: usize,
    /// Of those, the ones whose init has finished.
    pub ready: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub total: usize,
    pub active: usize,
    pub idle: usize,
}

/// A handle to the pool; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    tx: mpsc::Sender<Msg>,
}

/// The way environments report to the pool (they end on their own when they crash or time out).
#[derive(Clone)]
pub struct PoolEvents {
    tx: mpsc::Sender<Msg>,
}

impl PoolEvents {
    pub async fn exited(&self, env: EnvId) {
        let _ = self.tx.send(Msg::Event(Event::Exited { env })).await;
    }
}

/// One environment, lent to one invocation. Give it back with [`Lease::release`]; a lease dropped
/// without that (the invocation's task was cancelled) gives the environment up as broken, since its
/// state is unknown.
pub struct Lease {
    pub env: EnvHandle,
    /// True when the environment was launched for this lease (a cold start).
    pub cold: bool,
    tx: mpsc::Sender<Msg>,
    released: bool,
}

impl Lease {
    pub async fn release(mut self, reusable: bool) {
        self.released = true;
        let _ = self.tx.send(Msg::Event(Event::Released { env: self.env.id, reusable })).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.released {
            let msg = Msg::Event(Event::Released { env: self.env.id, reusable: false });
            if let Err(mpsc::error::TrySendError::Full(msg)) = self.tx.try_send(msg) {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(msg).await;
                });
            }
        }
    }
}

impl Pool {
    /// Starts the owner task. `ctx` needs the pool's own event sender, so it is built by `make_ctx`.
    pub fn start(
        limits: Limits,
        make_ctx: impl FnOnce(PoolEvents) -> LaunchContext,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_MESSAGES_MAX);
        let ctx = make_ctx(PoolEvents { tx: tx.clone() });
        let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let owner = Owner {
            state: PoolState::new(limits),
            tx: tx.clone(),
            ctx,
            envs: HashMap::new(),
            waiters: HashMap::new(),
            factories: HashMap::new(),
            next_waiter: 1,
        };
        (Self { tx }, tokio::spawn(owner.run(rx, tick)))
    }

    pub async fn acquire(&self, key: EnvKey, planner: Planner) -> Result<Lease, AcquireError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Acquire { key, planner, reply }).await.map_err(|_| AcquireError::Closed)?;
        rx.await.map_err(|_| AcquireError::Closed)?
    }

    /// Stops reusing environments of `function`: of one version (`$LATEST` after an update, a deleted
    /// version), or of all of them when `version` is `None` (the function is gone).
    pub async fn retire(&self, function: &str, version: Option<&str>) {
        let event = Event::Retire { function: function.to_owned(), version: version.map(str::to_owned) };
        let _ = self.tx.send(Msg::Event(event)).await;
    }

    /// Keeps `count` environments of `key` initialised ahead of invocations (0 stops).
    pub async fn provision(&self, key: EnvKey, count: usize, factory: PlannerFactory) {
        let _ = self.tx.send(Msg::Provision { key, count, factory }).await;
    }

    pub async fn provisioned_status(&self, key: EnvKey) -> ProvisionedStatus {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::ProvisionedStatus { key, reply }).await.is_err() {
            return ProvisionedStatus::default();
        }
        rx.await.unwrap_or_default()
    }

    /// Sets or clears the reserved concurrency of `function`.
    pub async fn set_reserved(&self, function: &str, reserved: Option<u32>) {
        let event = Event::SetReserved { function: function.to_owned(), reserved };
        let _ = self.tx.send(Msg::Event(event)).await;
    }

    pub async fn stats(&self) -> Option<PoolStats> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Stats { reply }).await.ok()?;
        rx.await.ok()
    }

    /// Drops every environment; the owner task then ends.
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown).await;
    }
}

struct Waiter {
    reply: oneshot::Sender<Result<Lease, AcquireError>>,
    planner: Option<Planner>,
}

struct Owner {
    state: PoolState,
    tx: mpsc::Sender<Msg>,
    ctx: LaunchContext,
    envs: HashMap<EnvId, EnvHandle>,
    waiters: HashMap<WaiterId, Waiter>,
    /// Planner factories of the keys with provisioned concurrency.
    factories: HashMap<EnvKey, PlannerFactory>,
    next_waiter: WaiterId,
}

impl Owner {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, tick: Duration) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                msg = rx.recv() => msg,
                _ = ticker.tick() => Some(Msg::Event(Event::Tick)),
            };
            match msg {
                Some(Msg::Acquire { key, planner, reply }) => {
                    let waiter = self.next_waiter;
                    self.next_waiter += 1;
                    self.waiters.insert(waiter, Waiter { reply, planner: Some(planner) });
                    self.apply(Event::Acquire { key, waiter });
                }
                Some(Msg::Launched { env, waiter, result }) => self.on_launched(env, waiter, result),
                Some(Msg::SpareLaunched { env, result }) => match result {
                    Ok(handle) => {
                        self.envs.insert(env, handle);
                        self.apply(Event::SpareLaunched { env });
                    }
                    Err(e) => {
                        tracing::warn!(env, error = %e, "launching a provisioned environment");
                        self.apply(Event::LaunchFailed { env });
                    }
                },
                Some(Msg::Provision { key, count, factory }) => {
                    if count == 0 {
                        self.factories.remove(&key);
                    } else {
                        self.factories.insert(key.clone(), factory);
                    }
                    self.apply(Event::SetProvisioned { key, count });
                }
                Some(Msg::ProvisionedStatus { key, reply }) => {
                    let ids = self.state.provisioned_envs(&key);
                    let ready = ids.iter().filter(|id| self.envs.get(id).is_some_and(|h| *h.ready.borrow())).count();
                    let _ = reply.send(ProvisionedStatus { allocated: ids.len(), ready });
                }
                Some(Msg::Event(event)) => self.apply(event),
                Some(Msg::Stats { reply }) => {
                    let _ = reply.send(PoolStats {
                        total: self.state.total(),
                        active: self.state.active(),
                        idle: self.state.idle_count(),
                    });
                }
                Some(Msg::Shutdown) | None => break,
            }
        }
        // Dropping the handles ends every idle environment's driver.
        self.envs.clear();
    }

    fn apply(&mut self, event: Event) {
        let mut queue = std::collections::VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            for effect in self.state.on_event(event, Instant::now()) {
                if let Some(follow_up) = self.carry_out(effect) {
                    queue.push_back(follow_up);
                }
            }
        }
    }

    /// Carries out one effect; returns an event when the effect could not be delivered.
    fn carry_out(&mut self, effect: Effect) -> Option<Event> {
        match effect {
            Effect::Lease { waiter, env } => {
                let waiter = self.waiters.remove(&waiter)?;
                let Some(handle) = self.envs.get(&env).cloned() else {
                    let _ = waiter.reply.send(Err(AcquireError::Launch("environment vanished".into())));
                    return Some(Event::Released { env, reusable: false });
                };
                self.hand_over(waiter, handle, false)
            }
            Effect::Launch { waiter, env, key: _ } => {
                let planner = self.waiters.get_mut(&waiter).and_then(|w| w.planner.take());
                let tx = self.tx.clone();
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    let result = launch_one(env, planner, &ctx).await;
                    let _ = tx.send(Msg::Launched { env, waiter, result }).await;
                });
                None
            }
            Effect::LaunchSpare { env, key } => {
                let planner = self.factories.get(&key).map(|f| f());
                let tx = self.tx.clone();
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    let result = launch_one(env, planner, &ctx).await;
                    let _ = tx.send(Msg::SpareLaunched { env, result }).await;
                });
                None
            }
            Effect::Destroy { env } => {
                self.envs.remove(&env);
                None
            }
            Effect::Reject { waiter, reason } => {
                if let Some(w) = self.waiters.remove(&waiter) {
                    let _ = w.reply.send(Err(AcquireError::Throttled(reason)));
                }
                None
            }
        }
    }

    fn on_launched(&mut self, env: EnvId, waiter: WaiterId, result: Result<EnvHandle, AcquireError>) {
        let Some(w) = self.waiters.remove(&waiter) else { return };
        match result {
            Ok(handle) => {
                self.envs.insert(env, handle.clone());
                self.apply(Event::Launched { env });
                if let Some(event) = self.hand_over(w, handle, true) {
                    self.apply(event);
                }
            }
            Err(e) => {
                self.apply(Event::LaunchFailed { env });
                let _ = w.reply.send(Err(e));
            }
        }
    }

    fn hand_over(&mut self, waiter: Waiter, env: EnvHandle, cold: bool) -> Option<Event> {
        let id = env.id;
        let lease = Lease { env, cold, tx: self.tx.clone(), released: false };
        match waiter.reply.send(Ok(lease)) {
            Ok(()) => None,
            // The invocation went away while waiting; the environment is untouched and reusable.
            Err(Ok(mut lease)) => {
                lease.released = true;
                Some(Event::Released { env: id, reusable: true })
            }
            Err(Err(_)) => None,
        }
    }
}

async fn launch_one(env: EnvId, planner: Option<Planner>, ctx: &LaunchContext) -> Result<EnvHandle, AcquireError> {
    let planner = planner.ok_or_else(|| AcquireError::Launch("no launch plan".into()))?;
    let plan = tokio::task::spawn_blocking(planner)
        .await
        .map_err(|e| AcquireError::Launch(format!("planning task failed: {e}")))??;
    let plan = Arc::new(plan);
    environment::launch(env, &plan, ctx).await.map_err(|e| AcquireError::Launch(e.to_string()))
}
