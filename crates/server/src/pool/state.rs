//! The pool's state machine: which environments exist for which function version, which are idle, and
//! who gets which. It is plain data driven by [`Event`]s and answers with [`Effect`]s for the owner task
//! to carry out; it does no IO and reads no clock (time comes in with each event), so every race the
//! pool can meet is a sequence of events a unit test can replay.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Environments are reusable only by invocations of the same function version with the same code and
/// configuration; the revision id changes on every update, so an update naturally retires old ones.
/// The network a function may reach comes from a tag, which changes no revision: it is part of the key
/// too, so an environment launched with the old setting (by an invocation that resolved the function
/// just before the tag changed) never serves invocations made after it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EnvKey {
    pub function: String,
    pub version: String,
    pub revision: String,
    pub network: nimbus_model::NetworkAccess,
}

pub type EnvId = u64;
pub type WaiterId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Functions without a reservation would run more at once than the account's unreserved share.
    AccountConcurrency,
    /// The function would run more at once than its reserved concurrency (0 disables it).
    ReservedConcurrency,
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
    /// Code or configuration of `function` changed (`version` = `$LATEST`), or one version or the
    /// whole function (`version` = `None`) was deleted: no such environment is reused.
    Retire { function: String, version: Option<String> },
    /// Keep `count` environments of `key` initialised ahead of invocations (provisioned concurrency);
    /// 0 stops provisioning.
    SetProvisioned { key: EnvKey, count: usize },
    /// A provisioned environment launched (its init runs now, before any invocation).
    SpareLaunched { env: EnvId },
    /// The function's reserved concurrency was set (`Some`) or removed (`None`).
    SetReserved { function: String, reserved: Option<u32> },
    /// Periodic housekeeping: reap environments idle for longer than the idle timeout.
    Tick,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Hand the idle environment `env` to `waiter` (a warm start).
    Lease { waiter: WaiterId, env: EnvId },
    /// Launch a new environment `env` for `key` and hand it to `waiter` (a cold start).
    Launch { waiter: WaiterId, env: EnvId, key: EnvKey },
    /// Launch a provisioned environment `env` for `key`, to wait idle for invocations.
    LaunchSpare { env: EnvId, key: EnvKey },
    /// Stop `env` and forget it.
    Destroy { env: EnvId },
    /// Refuse `waiter` with a throttle.
    Reject { waiter: WaiterId, reason: Throttle },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A provisioned environment starting up; not leased to anyone.
    Warming,
    Launching,
    Busy,
    Idle {
        since: Instant,
    },
}

#[derive(Debug)]
struct Env {
    key: EnvKey,
    phase: Phase,
    retired: bool,
    /// Whether the current lease counts against the function's reservation (else the unreserved pool);
    /// fixed at acquire time so a reservation changing mid-invocation cannot skew the counts.
    reserved: bool,
    /// Kept for provisioned concurrency: never reaped for idleness nor evicted for room.
    provisioned: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Environments that may be busy or launching at once, across all functions.
    pub concurrency_max: usize,
    /// How long an environment may stay idle before it is reaped.
    pub idle_timeout: Duration,
    /// Environments that may exist at once, idle ones included; past it the least recently used idle
    /// environment makes room.
    pub environments_max: usize,
}

#[derive(Debug)]
pub struct PoolState {
    limits: Limits,
    envs: HashMap<EnvId, Env>,
    /// Idle environments per key, most recently used last, so reuse keeps the warmest one busy and
    /// lets the others age out.
    idle: HashMap<EnvKey, Vec<EnvId>>,
    /// Launching plus busy environments: the account's concurrency in use.
    active: usize,
    /// Of `active`, those of functions without a reservation.
    active_unreserved: usize,
    /// Launching plus busy environments per function with a reservation.
    active_reserved: HashMap<String, usize>,
    reserved: HashMap<String, u32>,
    /// Provisioned concurrency: how many environments each key keeps ready.
    provisioned: HashMap<EnvKey, usize>,
    next_env: EnvId,
}

impl PoolState {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            envs: HashMap::new(),
            idle: HashMap::new(),
            active: 0,
            active_unreserved: 0,
            active_reserved: HashMap::new(),
            reserved: HashMap::new(),
            provisioned: HashMap::new(),
            next_env: 1,
        }
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

    /// The concurrency left to functions without a reservation.
    pub fn unreserved_limit(&self) -> usize {
        let reserved: usize = self.reserved.values().map(|&r| r as usize).sum();
        self.limits.concurrency_max.saturating_sub(reserved)
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
            Event::Released { env, reusable } => {
                let spare = self.provisioned_key(env);
                let mut effects = self.release(env, reusable, now);
                if let Some(key) = spare.filter(|_| !reusable) {
                    effects.extend(self.top_up(&key));
                }
                effects
            }
            Event::Exited { env } => {
                // A spare that dies while warming failed its init: it is not relaunched in a loop.
                let spare = self
                    .provisioned_key(env)
                    .filter(|_| self.envs.get(&env).is_some_and(|e| e.phase != Phase::Warming));
                let mut effects: Vec<Effect> = self.forget(env).into_iter().collect();
                if let Some(key) = spare {
                    effects.extend(self.top_up(&key));
                }
                effects
            }
            Event::Retire { function, version } => self.retire(&function, version.as_deref()),
            Event::SetProvisioned { key, count } => self.set_provisioned(key, count),
            Event::SpareLaunched { env } => {
                if let Some(e) = self.envs.get_mut(&env)
                    && e.phase == Phase::Warming
                {
                    e.phase = Phase::Idle { since: now };
                    self.idle.entry(e.key.clone()).or_default().push(env);
                }
                Vec::new()
            }
            Event::SetReserved { function, reserved } => {
                match reserved {
                    Some(r) => self.reserved.insert(function, r),
                    None => self.reserved.remove(&function),
                };
                Vec::new()
            }
            Event::Tick => self.reap(now),
        }
    }

    fn acquire(&mut self, key: EnvKey, waiter: WaiterId) -> Vec<Effect> {
        let reserved = match self.reserved.get(&key.function) {
            Some(&limit) => {
                if self.active_reserved.get(&key.function).copied().unwrap_or(0) >= limit as usize {
                    return vec![Effect::Reject { waiter, reason: Throttle::ReservedConcurrency }];
                }
                true
            }
            None => {
                if self.active_unreserved >= self.unreserved_limit() {
                    return vec![Effect::Reject { waiter, reason: Throttle::AccountConcurrency }];
                }
                false
            }
        };
        if let Some(env) = self.idle.get_mut(&key).and_then(Vec::pop) {
            if let Some(e) = self.envs.get_mut(&env) {
                e.phase = Phase::Busy;
                e.reserved = reserved;
            }
            self.count_in(&key.function, reserved);
            return vec![Effect::Lease { waiter, env }];
        }
        let mut effects = Vec::new();
        if self.envs.len() >= self.limits.environments_max {
            match self.least_recently_used_idle() {
                Some(victim) => effects.extend(self.forget(victim)),
                None => return vec![Effect::Reject { waiter, reason: Throttle::AccountConcurrency }],
            }
        }
        let env = self.next_env;
        self.next_env += 1;
        self.envs.insert(
            env,
            Env { key: key.clone(), phase: Phase::Launching, retired: false, reserved, provisioned: false },
        );
        self.count_in(&key.function, reserved);
        effects.push(Effect::Launch { waiter, env, key });
        effects
    }

    fn least_recently_used_idle(&self) -> Option<EnvId> {
        self.envs
            .iter()
            .filter_map(|(&id, e)| match e.phase {
                Phase::Idle { since } if !e.provisioned => Some((since, id)),
                _ => None,
            })
            .min()
            .map(|(_, id)| id)
    }

    fn count_in(&mut self, function: &str, reserved: bool) {
        self.active += 1;
        if reserved {
            *self.active_reserved.entry(function.to_owned()).or_default() += 1;
        } else {
            self.active_unreserved += 1;
        }
    }

    fn count_out(&mut self, function: &str, reserved: bool) {
        self.active -= 1;
        if reserved {
            if let Some(n) = self.active_reserved.get_mut(function) {
                *n -= 1;
                if *n == 0 {
                    self.active_reserved.remove(function);
                }
            }
        } else {
            self.active_unreserved -= 1;
        }
    }

    fn release(&mut self, env: EnvId, reusable: bool, now: Instant) -> Vec<Effect> {
        let Some(e) = self.envs.get(&env) else { return Vec::new() };
        if !matches!(e.phase, Phase::Busy | Phase::Launching) {
            return Vec::new(); // A release for an environment that is not leased is stale; ignore it.
        }
        let (function, reserved, retired) = (e.key.function.clone(), e.reserved, e.retired);
        self.count_out(&function, reserved);
        if !reusable || retired {
            return self.forget_inactive(env);
        }
        let Some(e) = self.envs.get_mut(&env) else { return Vec::new() };
        e.phase = Phase::Idle { since: now };
        self.idle.entry(e.key.clone()).or_default().push(env);
        Vec::new()
    }

    /// Drops `env` from every table and asks for it to be destroyed.
    fn forget(&mut self, env: EnvId) -> Option<Effect> {
        let e = self.envs.remove(&env)?;
        match e.phase {
            // A provisioned environment still warming up was never leased, so it was never counted.
            Phase::Warming => {}
            Phase::Launching | Phase::Busy => self.count_out(&e.key.function, e.reserved),
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

    fn retire(&mut self, function: &str, version: Option<&str>) -> Vec<Effect> {
        let matches = |key: &EnvKey| key.function == function && version.is_none_or(|v| key.version == v);
        self.provisioned.retain(|key, _| !matches(key));
        let mut doomed = Vec::new();
        for (&id, e) in self.envs.iter_mut() {
            if matches(&e.key) {
                e.retired = true;
                e.provisioned = false;
                if matches!(e.phase, Phase::Idle { .. } | Phase::Warming) {
                    doomed.push(id);
                }
            }
        }
        doomed.into_iter().filter_map(|env| self.forget(env)).collect()
    }

    /// Launches or stops provisioned environments until `key` has `count` of them.
    fn set_provisioned(&mut self, key: EnvKey, count: usize) -> Vec<Effect> {
        if count == 0 {
            self.provisioned.remove(&key);
        } else {
            self.provisioned.insert(key.clone(), count);
        }
        let mine: Vec<(EnvId, bool)> = self
            .envs
            .iter()
            .filter(|(_, e)| e.key == key && e.provisioned && !e.retired)
            .map(|(&id, e)| (id, matches!(e.phase, Phase::Idle { .. } | Phase::Warming)))
            .collect();
        let mut effects = Vec::new();
        if mine.len() > count {
            // Surplus idle ones go now; busy ones become ordinary environments and age out.
            let mut surplus = mine.len() - count;
            for (id, idle) in mine {
                if surplus == 0 {
                    break;
                }
                if idle {
                    effects.extend(self.forget(id));
                } else if let Some(e) = self.envs.get_mut(&id) {
                    e.provisioned = false;
                }
                surplus -= 1;
            }
        }
        effects.extend(self.top_up(&key));
        effects
    }

    /// Launches spares until `key` has its provisioned count again (after a change, or after one of
    /// them failed).
    fn top_up(&mut self, key: &EnvKey) -> Vec<Effect> {
        let Some(&want) = self.provisioned.get(key) else { return Vec::new() };
        let have = self.envs.values().filter(|e| &e.key == key && e.provisioned && !e.retired).count();
        (have..want)
            .map(|_| {
                let env = self.next_env;
                self.next_env += 1;
                self.envs.insert(
                    env,
                    Env { key: key.clone(), phase: Phase::Warming, retired: false, reserved: false, provisioned: true },
                );
                Effect::LaunchSpare { env, key: key.clone() }
            })
            .collect()
    }

    fn provisioned_key(&self, env: EnvId) -> Option<EnvKey> {
        self.envs.get(&env).filter(|e| e.provisioned && !e.retired).map(|e| e.key.clone())
    }

    /// `key`'s provisioned environments (warming or ready).
    pub fn provisioned_envs(&self, key: &EnvKey) -> Vec<EnvId> {
        self.envs.iter().filter(|(_, e)| &e.key == key && e.provisioned && !e.retired).map(|(&id, _)| id).collect()
    }

    fn reap(&mut self, now: Instant) -> Vec<Effect> {
        let timeout = self.limits.idle_timeout;
        let doomed: Vec<EnvId> = self
            .envs
            .iter()
            .filter(|(_, e)| {
                !e.provisioned && matches!(e.phase, Phase::Idle { since } if now.duration_since(since) >= timeout)
            })
            .map(|(&id, _)| id)
            .collect();
        doomed.into_iter().filter_map(|env| self.forget(env)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: &str, rev: &str) -> EnvKey {
        EnvKey { function: f.into(), version: "$LATEST".into(), revision: rev.into(), network: Default::default() }
    }

    fn pool(max: usize) -> PoolState {
        PoolState::new(Limits { concurrency_max: max, idle_timeout: Duration::from_secs(10), environments_max: 100 })
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
        assert_eq!(
            p.on_event(Event::Retire { function: "f".into(), version: None }, t),
            vec![Effect::Destroy { env: 1 }]
        );
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

    #[test]
    fn reserved_concurrency_caps_the_function_and_shrinks_the_shared_pool() {
        let mut p = pool(3);
        let t = Instant::now();
        p.on_event(Event::SetReserved { function: "r".into(), reserved: Some(1) }, t);
        assert_eq!(p.unreserved_limit(), 2);
        assert!(matches!(p.on_event(Event::Acquire { key: key("r", "x"), waiter: 1 }, t)[0], Effect::Launch { .. }));
        assert_eq!(
            p.on_event(Event::Acquire { key: key("r", "x"), waiter: 2 }, t),
            vec![Effect::Reject { waiter: 2, reason: Throttle::ReservedConcurrency }]
        );
        p.on_event(Event::Acquire { key: key("a", "x"), waiter: 3 }, t);
        p.on_event(Event::Acquire { key: key("b", "x"), waiter: 4 }, t);
        assert_eq!(
            p.on_event(Event::Acquire { key: key("c", "x"), waiter: 5 }, t),
            vec![Effect::Reject { waiter: 5, reason: Throttle::AccountConcurrency }]
        );
        // Releasing the reserved function's environment frees its own slot, not the shared pool's.
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        assert!(matches!(p.on_event(Event::Acquire { key: key("c", "x"), waiter: 6 }, t)[0], Effect::Reject { .. }));
        assert!(matches!(p.on_event(Event::Acquire { key: key("r", "x"), waiter: 7 }, t)[0], Effect::Lease { .. }));
    }

    #[test]
    fn zero_reserved_concurrency_disables_the_function() {
        let mut p = pool(10);
        let t = Instant::now();
        p.on_event(Event::SetReserved { function: "off".into(), reserved: Some(0) }, t);
        assert_eq!(
            p.on_event(Event::Acquire { key: key("off", "x"), waiter: 1 }, t),
            vec![Effect::Reject { waiter: 1, reason: Throttle::ReservedConcurrency }]
        );
        p.on_event(Event::SetReserved { function: "off".into(), reserved: None }, t);
        assert!(matches!(p.on_event(Event::Acquire { key: key("off", "x"), waiter: 2 }, t)[0], Effect::Launch { .. }));
    }

    #[test]
    fn a_full_pool_evicts_the_least_recently_used_idle_environment() {
        let mut p =
            PoolState::new(Limits { concurrency_max: 10, idle_timeout: Duration::from_secs(60), environments_max: 2 });
        let t = Instant::now();
        p.on_event(Event::Acquire { key: key("a", "x"), waiter: 1 }, t);
        p.on_event(Event::Acquire { key: key("b", "x"), waiter: 2 }, t);
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        p.on_event(Event::Released { env: 2, reusable: true }, t + Duration::from_secs(1));
        let fx = p.on_event(Event::Acquire { key: key("c", "x"), waiter: 3 }, t + Duration::from_secs(2));
        assert_eq!(fx, vec![Effect::Destroy { env: 1 }, Effect::Launch { waiter: 3, env: 3, key: key("c", "x") }]);
        assert_eq!(p.total(), 2);
    }

    #[test]
    fn counts_balance_after_any_interleaving() {
        // A small exhaustive-ish walk: every acquire is eventually released or exits, in mixed order,
        // and all counters return to zero.
        let mut p = pool(5);
        let t = Instant::now();
        p.on_event(Event::SetReserved { function: "r".into(), reserved: Some(2) }, t);
        let mut leased = Vec::new();
        for (i, f) in ["r", "a", "r", "b", "r", "a"].iter().enumerate() {
            for fx in p.on_event(Event::Acquire { key: key(f, "x"), waiter: i as u64 }, t) {
                match fx {
                    Effect::Launch { env, .. } | Effect::Lease { env, .. } => leased.push(env),
                    _ => {}
                }
            }
        }
        p.on_event(Event::SetReserved { function: "r".into(), reserved: None }, t);
        for (i, env) in leased.iter().enumerate() {
            let event =
                if i % 2 == 0 { Event::Exited { env: *env } } else { Event::Released { env: *env, reusable: true } };
            p.on_event(event, t);
        }
        assert_eq!(p.active(), 0);
        assert_eq!(p.active_unreserved, 0);
        assert!(p.active_reserved.is_empty());
    }

    #[test]
    fn provisioned_environments_are_launched_ahead_kept_and_replaced() {
        let mut p = pool(10);
        let t = Instant::now();
        let k = EnvKey { function: "f".into(), version: "1".into(), revision: "r".into(), network: Default::default() };
        let fx = p.on_event(Event::SetProvisioned { key: k.clone(), count: 2 }, t);
        assert_eq!(
            fx,
            vec![Effect::LaunchSpare { env: 1, key: k.clone() }, Effect::LaunchSpare { env: 2, key: k.clone() }]
        );
        assert_eq!(p.active(), 0, "warming spares are not concurrency in use");
        p.on_event(Event::SpareLaunched { env: 1 }, t);
        p.on_event(Event::SpareLaunched { env: 2 }, t);
        // Invocations use them warm, and the idle reaper leaves them alone.
        assert!(matches!(p.on_event(Event::Acquire { key: k.clone(), waiter: 1 }, t)[0], Effect::Lease { .. }));
        p.on_event(Event::Released { env: 2, reusable: true }, t);
        assert!(p.on_event(Event::Tick, t + Duration::from_secs(3600)).is_empty());
        // One dies in an invocation: a replacement is launched.
        p.on_event(Event::Acquire { key: k.clone(), waiter: 2 }, t);
        let fx = p.on_event(Event::Released { env: 2, reusable: false }, t);
        assert_eq!(fx, vec![Effect::Destroy { env: 2 }, Effect::LaunchSpare { env: 3, key: k.clone() }]);
        // Turning provisioning off stops the idle ones.
        p.on_event(Event::SpareLaunched { env: 3 }, t);
        let fx = p.on_event(Event::SetProvisioned { key: k.clone(), count: 0 }, t);
        assert_eq!(fx.len(), 2);
        assert_eq!(p.total(), 0);
        assert_eq!(p.active(), 0);
    }

    #[test]
    fn updating_latest_leaves_published_versions_warm() {
        let mut p = pool(10);
        let t = Instant::now();
        let v1 =
            EnvKey { function: "f".into(), version: "1".into(), revision: "r1".into(), network: Default::default() };
        p.on_event(Event::Acquire { key: key("f", "r"), waiter: 1 }, t);
        p.on_event(Event::Acquire { key: v1.clone(), waiter: 2 }, t);
        p.on_event(Event::Released { env: 1, reusable: true }, t);
        p.on_event(Event::Released { env: 2, reusable: true }, t);
        let fx = p.on_event(Event::Retire { function: "f".into(), version: Some("$LATEST".into()) }, t);
        assert_eq!(fx, vec![Effect::Destroy { env: 1 }]);
        assert!(matches!(p.on_event(Event::Acquire { key: v1, waiter: 3 }, t)[0], Effect::Lease { env: 2, .. }));
    }
}
