//! The pool's state machine: which environments exist for which function version, which are idle, and
//! who gets which. It is plain data driven by [`Event`]s and answers with [`Effect`]s for the owner task
//! to carry out; it does no IO and reads no clock (time comes in with each event), so every race the
//! pool can meet is a sequence of events a unit test can replay.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Environments are reusable only by invocations of the same function version with the same code and
/// configuration; the revision id changes on every update, so an update naturally retires old ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvKey {
    pub function: String,
    pub version: String,
    pub revision: String,
}

pub type EnvId = u64;
pub type WaiterId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// More environments would run at once than the account allows.
    AccountConcurrency,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// An invocation wants an environment for `key`.
    Acquire { key: EnvKey, waiter: WaiterId },
    /// The environment launched for `waiter` is running (its init may still be going on).
    Launched { env: EnvId },
    /// Launching failed; the waiter has been told by the launcher.
    LaunchFailed { env: EnvId },
    /// An invocation finished with its environment; `reusable` is false when the environment must go
    /// (timeout, crash, init failure).
    Released { env: EnvId, reusable: bool },
    /// The environment's process ended on its own.
    Exited { env: EnvId },
    /// Code or configuration of `function` changed, or it was deleted: no environment of it is reused.
    Retire { function: String },
    /// Periodic housekeeping: reap environments idle for longer than the idle timeout.
    Tick,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Hand the idle environment `env` to `waiter` (a warm start).
    Lease { waiter: WaiterId, env: EnvId },
    /// Launch a new environment `env` for `key` and hand it to `waiter` (a cold start).
    Launch { waiter: WaiterId, env: EnvId, key: EnvKey },
    /// Stop `env` and forget it.
    Destroy { env: EnvId },
    /// Refuse `waiter` with a throttle.
    Reject { waiter: WaiterId, reason: Throttle },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Launching,
    Busy,
    Idle { since: Instant },
}

#[derive(Debug)]
struct Env {
    key: EnvKey,
    phase: Phase,
    retired: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Environments that may be busy or launching at once, across all functions.
    pub concurrency_max: usize,
    /// How long an environment may stay idle before it is reaped.
    pub idle_timeout: Duration,
}

#[derive(Debug)]
pub struct PoolState {
    limits: Limits,
    envs: HashMap<EnvId, Env>,
    /// Idle environments per key, most recently used last, so reuse keeps the warmest one busy and
    /// lets the others age out.
    idle: HashMap<EnvKey, Vec<EnvId>>,
    /// Launching plus busy environments: what the concurrency limit counts.
    active: usize,
    next_env: EnvId,
}

impl PoolState {
    pub fn new(limits: Limits) -> Self {
        Self { limits, envs: HashMap::new(), idle: HashMap::new(), active: 0, next_env: 1 }
    }

    pub fn active(&self) -> usize {
        self.active
    }

    pub fn total(&self) -> usize {
        self.envs.len()
    }

    pub fn idle_count(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    pub fn on_event(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        match event {
            Event::Acquire { key, waiter } => self.acquire(key, waiter),
            Event::Launched { env } => {
                if let Some(e) = self.envs.get_mut(&env) {
                    e.phase = Phase::Busy;
                }
                Vec::new()
            }
            Event::LaunchFailed { env } => self.forget(env).into_iter().collect(),
            Event::Released { env, reusable } => self.release(env, reusable, now),
            Event::Exited { env } => self.forget(env).into_iter().collect(),
            Event::Retire { function } => self.retire(&function),
            Event::Tick => self.reap(now),
        }
    }

    fn acquire(&mut self, key: EnvKey, waiter: WaiterId) -> Vec<Effect> {
        if self.active >= self.limits.concurrency_max {
            return vec![Effect::Reject { waiter, reason: Throttle::AccountConcurrency }];
        }
        if let Some(env) = self.idle.get_mut(&key).and_then(Vec::pop) {
            if let Some(e) = self.envs.get_mut(&env) {
                e.phase = Phase::Busy;
            }
            self.active += 1;
            return vec![Effect::Lease { waiter, env }];
        }
        let env = self.next_env;
        self.next_env += 1;
        self.envs.insert(env, Env { key: key.clone(), phase: Phase::Launching, retired: false });
        self.active += 1;
        vec![Effect::Launch { waiter, env, key }]
    }

    fn release(&mut self, env: EnvId, reusable: bool, now: Instant) -> Vec<Effect> {
        let Some(e) = self.envs.get_mut(&env) else { return Vec::new() };
        if !matches!(e.phase, Phase::Busy | Phase::Launching) {
            return Vec::new(); // A release for an environment that is not leased is stale; ignore it.
        }
        self.active -= 1;
        if !reusable || e.retired {
            return self.forget_inactive(env);
        }
        e.phase = Phase::Idle { since: now };
        self.idle.entry(e.key.clone()).or_default().push(env);
        Vec::new()
    }

    /// Drops `env` from every table and asks for it to be destroyed.
    fn forget(&mut self, env: EnvId) -> Option<Effect> {
        let e = self.envs.remove(&env)?;
        match e.phase {
            Phase::Launching | Phase::Busy => self.active -= 1,
            Phase::Idle { .. } => self.remove_idle(&e.key, env),
        }
        Some(Effect::Destroy { env })
    }

    /// Like [`Self::forget`] for an environment already counted out of `active`.
    fn forget_inactive(&mut self, env: EnvId) -> Vec<Effect> {
        self.envs.remove(&env);
        vec![Effect::Destroy { env }]
    }

    fn remove_idle(&mut self, key: &EnvKey, env: EnvId) {
        if let Some(list) = self.idle.get_mut(key) {
            list.retain(|&id| id != env);
            if list.is_empty() {
                self.idle.remove(key);
            }
        }
    }

    fn retire(&mut self, function: &str) -> Vec<Effect> {
        let mut doomed = Vec::new();
        for (&id, e) in self.envs.iter_mut() {
            if e.key.function == function {
                e.retired = true;
                if matches!(e.phase, Phase::Idle { .. }) {
                    doomed.push(id);
                }
            }
        }
        doomed.into_iter().filter_map(|env| self.forget(env)).collect()
    }

    fn reap(&mut self, now: Instant) -> Vec<Effect> {
        let timeout = self.limits.idle_timeout;
        let doomed: Vec<EnvId> = self
            .envs
            .iter()
            .filter(|(_, e)| matches!(e.phase, Phase::Idle { since } if now.duration_since(since) >= timeout))
            .map(|(&id, _)| id)
            .collect();
        doomed.into_iter().filter_map(|env| self.forget(env)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str, rev: &str) -> EnvKey {
        EnvKey { function: f.into(), version: "$LATEST".into(), revision: rev.into() }
    }

    fn pool(max: usize) -> PoolState {
        PoolState::new(Limits { concurrency_max: max, idle_timeout: Duration::from_secs(10) })
    }

    #[test]
    fn cold_then_warm() {
        let mut p = pool(10);
        let t = Instant::now();
        let fx = p.on_event(Event::Acquire { key: key("f", "r1"), waiter: 1 }, t);
        assert_eq!(fx, vec![Effect::Launch { waiter: 1, env: 1, key: key("f", "r1") }]);
        p.on_event(Event::Launched { env: 1 }, t);
        assert!(p.on_event(Event::Released { env: 1, reusable: true }, t).is_empty());
        assert_eq!(
            p.on_event(Event::Acquire { key: key("f", "r1"), waiter: 2 }, t),
            vec![Effect::Lease { waiter: 2, env: 1 }]
        );
    }

    #[test]
    fn concurrent_acquires_scale_out_and_never_share() {
        let mut p = pool(10);
        let t = Instant::now();
        let a = p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        let b = p.on_event(Event::Acquire { key: key("f", "r"), waiter: 2 }, t);
        assert!(matches!(a[0], Effect::Launch { env: 1, .. }));
        assert!(matches!(b[0], Effect::Launch { env: 2, .. }));
        assert_eq!(p.active(), 2);
    }

    #[test]
    fn account_limit_throttles_and_frees_on_release() {
        let mut p = pool(1);
        let t = Instant::now();
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        let fx = p.on_event(Event::Acquire { key: key("g", "r"), waiter: 2 }, t);
        assert_eq!(fx, vec![Effect::Reject { waiter: 2, reason: Throttle::AccountConcurrency }]);
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        assert!(matches!(p.on_event(Event::Acquire { key: key("g", "r"), waiter: 3 }, t)[0], Effect::Launch { .. }));
    }

    #[test]
    fn broken_environments_are_destroyed_not_reused() {
        let mut p = pool(10);
        let t = Instant::now();
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        assert_eq!(p.on_event(Event::Released { env: 1, reusable: false }, t), vec![Effect::Destroy { env: 1 }]);
        assert_eq!(p.total(), 0);
        assert_eq!(p.active(), 0);
    }

    #[test]
    fn retire_destroys_idle_now_and_busy_on_release() {
        let mut p = pool(10);
        let t = Instant::now();
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 2 }, t);
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        assert_eq!(p.on_event(Event::Retire { function: "f".into() }, t), vec![Effect::Destroy { env: 1 }]);
        assert_eq!(p.on_event(Event::Released { env: 2, reusable: true }, t), vec![Effect::Destroy { env: 2 }]);
        assert_eq!(p.total(), 0);
    }

    #[test]
    fn idle_environments_are_reaped_after_the_timeout() {
        let mut p = pool(10);
        let t = Instant::now();
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        assert!(p.on_event(Event::Tick, t + Duration::from_secs(9)).is_empty());
        assert_eq!(p.on_event(Event::Tick, t + Duration::from_secs(10)), vec![Effect::Destroy { env: 1 }]);
        assert_eq!(p.idle_count(), 0);
    }

    #[test]
    fn an_idle_environment_that_exits_is_forgotten() {
        let mut p = pool(10);
        let t = Instant::now();
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        assert_eq!(p.on_event(Event::Exited { env: 1 }, t), vec![Effect::Destroy { env: 1 }]);
        assert!(matches!(p.on_event(Event::Acquire { key: key("f", "r"), waiter: 2 }, t)[0], Effect::Launch { .. }));
    }

    #[test]
    fn stale_and_duplicate_events_change_nothing() {
        let mut p = pool(10);
        let t = Instant::now();
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        assert!(p.on_event(Event::Released { env: 1, reusable: true }, t).is_empty());
        assert!(p.on_event(Event::Released { env: 42, reusable: true }, t).is_empty());
        assert_eq!(p.active(), 0);
        assert_eq!(p.idle_count(), 1);
    }
}
