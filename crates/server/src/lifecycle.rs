//! The function lifecycle Lambda reports (`State`, `LastUpdateStatus` and their reasons): a created
//! function is `Pending` until its code is ready, then `Active`; an update is `InProgress` until the
//! new code is ready, then `Successful` (or `Failed` with a reason). Nimbus's "code ready" is the zip
//! being unpacked into the code store, which the API starts right after it answers the request and
//! which takes milliseconds, so the window in which a client sees `Pending`/`InProgress` is short
//! but real, and the SDK waiters (`function_active_v2`, `function_updated_v2`) see the transition.
//!
//! Only operations still under way (and failures) are kept, in memory: after a restart every stored
//! function is `Active`/`Successful`, which is true because its code was stored whole before it was
//! recorded (unpacking it again is the invoke path's first step anyway). One owner: the API state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nimbus_model::FunctionName;

/// What `FunctionConfiguration` says about a function's readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `State: Active`, `LastUpdateStatus: Successful`.
    Ready,
    /// `State: Pending` (creating).
    Creating,
    /// `State: Active`, `LastUpdateStatus: InProgress`.
    Updating,
    /// `State: Failed` with the reason the code could not be made ready.
    CreateFailed(String),
    /// `State: Active`, `LastUpdateStatus: Failed` with the reason.
    UpdateFailed(String),
}

/// Why an operation cannot start now; the message is AWS's `ResourceConflictException` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// The function is still being created (or failed to be): AWS names the state.
    State(&'static str),
    /// An update is in progress.
    Updating,
}

impl Busy {
    /// AWS's message, naming the function's ARN for an update in progress.
    pub fn message(&self, function_arn: &str) -> String {
        match self {
            Busy::State(state) => format!(
                "The operation cannot be performed at this time. The function is currently in the following state: {state}"
            ),
            Busy::Updating => format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {function_arn}"
            ),
        }
    }
}

/// Identifies one create or update, so that a late finish of an operation whose function was since
/// deleted (and perhaps created again) changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

#[derive(Debug)]
struct Entry {
    status: Status,
    /// The operation under way; `None` once it failed (the failure stays until the next update).
    ticket: Option<Ticket>,
}

#[derive(Debug, Default)]
pub struct Lifecycle {
    entries: Mutex<HashMap<FunctionName, Entry>>,
    next: AtomicU64,
}

impl Lifecycle {
    pub fn status(&self, name: &FunctionName) -> Status {
        self.lock().get(name).map_or(Status::Ready, |e| e.status.clone())
    }

    /// A new function: `Pending` until `finish`.
    pub fn begin_create(&self, name: &FunctionName) -> Ticket {
        let ticket = self.ticket();
        self.lock().insert(name.clone(), Entry { status: Status::Creating, ticket: Some(ticket) });
        ticket
    }

    /// An update of `$LATEST`: refused while the function is being created or updated. A function whose
    /// creation failed may be updated (that is how it is repaired).
    pub fn begin_update(&self, name: &FunctionName) -> Result<Ticket, Busy> {
        let mut entries = self.lock();
        match entries.get(name).map(|e| &e.status) {
            Some(Status::Creating) => return Err(Busy::State("Pending")),
            Some(Status::Updating) => return Err(Busy::Updating),
            _ => {}
        }
        let ticket = self.ticket();
        entries.insert(name.clone(), Entry { status: Status::Updating, ticket: Some(ticket) });
        Ok(ticket)
    }

    /// Whether an operation that needs a settled function (PublishVersion) may run now.
    pub fn check_ready(&self, name: &FunctionName) -> Result<(), Busy> {
        match self.lock().get(name).map(|e| &e.status) {
            None | Some(Status::Ready | Status::UpdateFailed(_)) => Ok(()),
            Some(Status::Creating) => Err(Busy::State("Pending")),
            Some(Status::CreateFailed(_)) => Err(Busy::State("Failed")),
            Some(Status::Updating) => Err(Busy::Updating),
        }
    }

    /// Whether the function can be invoked: not while `Pending` or `Failed` (an update in progress
    /// does not stop invocations, as on AWS).
    pub fn check_invocable(&self, name: &FunctionName) -> Result<(), Busy> {
        match self.lock().get(name).map(|e| &e.status) {
            Some(Status::Creating) => Err(Busy::State("Pending")),
            Some(Status::CreateFailed(_)) => Err(Busy::State("Failed")),
            _ => Ok(()),
        }
    }

    /// The operation `ticket` is over: `Ok` makes the function `Active`/`Successful`, `Err` records why
    /// it failed. Returns false (and changes nothing) when the ticket is no longer current.
    pub fn finish(&self, name: &FunctionName, ticket: Ticket, outcome: Result<(), String>) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(name).filter(|e| e.ticket == Some(ticket)) else {
            return false;
        };
        match (outcome, &entry.status) {
            (Ok(()), _) => {
                entries.remove(name);
            }
            (Err(reason), Status::Creating) => *entry = Entry { status: Status::CreateFailed(reason), ticket: None },
            (Err(reason), _) => *entry = Entry { status: Status::UpdateFailed(reason), ticket: None },
        }
        true
    }

    /// The request that began `ticket` was refused after all (nothing was stored): as if never begun.
    pub fn abandon(&self, name: &FunctionName, ticket: Ticket) {
        let mut entries = self.lock();
        if entries.get(name).is_some_and(|e| e.ticket == Some(ticket)) {
            entries.remove(name);
        }
    }

    /// The function is gone.
    pub fn forget(&self, name: &FunctionName) {
        self.lock().remove(name);
    }

    fn ticket(&self) -> Ticket {
        Ticket(self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FunctionName, Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> FunctionName {
        FunctionName::parse("f").unwrap()
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Create,
        Update,
        FinishOk,
        FinishErr,
        Delete,
    }

    /// A row: the steps, then the status, whether an update may start, and whether an invoke may.
    type Row = (&'static [Step], Status, Result<(), Busy>, Result<(), Busy>);

    #[test]
    fn transitions() {
        use Step::*;
        let rows: &[Row] = &[
            (&[], Status::Ready, Ok(()), Ok(())),
            (&[Create], Status::Creating, Err(Busy::State("Pending")), Err(Busy::State("Pending"))),
            (&[Create, FinishOk], Status::Ready, Ok(()), Ok(())),
            (
                &[Create, FinishErr],
                Status::CreateFailed("bad".into()),
                Err(Busy::State("Failed")),
                Err(Busy::State("Failed")),
            ),
            (&[Create, FinishOk, Update], Status::Updating, Err(Busy::Updating), Ok(())),
            (&[Create, FinishOk, Update, FinishOk], Status::Ready, Ok(()), Ok(())),
            (&[Create, FinishOk, Update, FinishErr], Status::UpdateFailed("bad".into()), Ok(()), Ok(())),
            (&[Create, Delete], Status::Ready, Ok(()), Ok(())),
            // A failed creation is repaired by an update.
            (&[Create, FinishErr, Update, FinishOk], Status::Ready, Ok(()), Ok(())),
        ];
        for (steps, status, update, invoke) in rows {
            let lifecycle = Lifecycle::default();
            let mut ticket = None;
            for step in *steps {
                match step {
                    Create => ticket = Some(lifecycle.begin_create(&name())),
                    Update => ticket = Some(lifecycle.begin_update(&name()).unwrap()),
                    FinishOk => assert!(lifecycle.finish(&name(), ticket.unwrap(), Ok(()))),
                    FinishErr => assert!(lifecycle.finish(&name(), ticket.unwrap(), Err("bad".into()))),
                    Delete => lifecycle.forget(&name()),
                }
            }
            assert_eq!(&lifecycle.status(&name()), status, "{steps:?}");
            assert_eq!(&lifecycle.check_ready(&name()), update, "{steps:?}");
            assert_eq!(&lifecycle.check_invocable(&name()), invoke, "{steps:?}");
        }
        let lifecycle = Lifecycle::default();
        lifecycle.begin_create(&name());
        assert_eq!(lifecycle.begin_update(&name()), Err(Busy::State("Pending")));
    }

    #[test]
    fn a_stale_ticket_changes_nothing() {
        let lifecycle = Lifecycle::default();
        let old = lifecycle.begin_create(&name());
        lifecycle.forget(&name());
        let new = lifecycle.begin_create(&name());
        assert!(!lifecycle.finish(&name(), old, Ok(())));
        assert_eq!(lifecycle.status(&name()), Status::Creating);
        lifecycle.abandon(&name(), old);
        assert_eq!(lifecycle.status(&name()), Status::Creating);
        assert!(lifecycle.finish(&name(), new, Ok(())));
        assert_eq!(lifecycle.status(&name()), Status::Ready);
    }

    #[test]
    fn messages_are_aws_s() {
        assert_eq!(
            Busy::Updating.message("arn:aws:lambda:us-east-1:000000000000:function:f"),
            "The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        assert_eq!(
            Busy::State("Pending").message("x"),
            "The operation cannot be performed at this time. The function is currently in the following state: Pending"
        );
    }
}
