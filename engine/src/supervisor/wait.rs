//! Waiting until services are ready, in the supervisor: what `up -d --wait`
//! and the `wait_healthy` primitive ask for with one `wait` request. The
//! wait follows the services' `watch` channels (no polling) and answers when
//! every service is ready, when one fails, or at the timeout.
//!
//! The verdict rules are `docker compose up --wait`'s: ready is healthy, or
//! a job that finished successfully; a service that fails while waited for
//! fails the wait, even when its restart policy has brought it back, which
//! the `failures` and `restarts` counters (they only grow) tell against what
//! they were when the wait began (its [`Baseline`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::protocol::{ServiceState, ServiceStatus};

/// What a wait knew of a service when it began: the counters that only
/// grow, so that a failure is seen even when the service is back up by the
/// time anyone looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub restarts: u32,
    pub failures: u32,
}

impl Seen {
    pub fn of(status: &ServiceStatus) -> Seen {
        Seen {
            restarts: status.restarts,
            failures: status.failures,
        }
    }
}

/// [`Seen`] per service; a service missing has seen nothing yet.
pub type Baseline = BTreeMap<String, Seen>;

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum WaitOutcome {
    /// Every service waited for is ready.
    Ready,
    /// `service` failed (or exited and was restarted) since the wait began;
    /// `headline` says how.
    Failed { service: String, headline: String },
    /// The timeout passed first: the services not ready then, with their
    /// state.
    TimedOut { waiting: Vec<(String, String)> },
}

/// Where one service stands for the wait.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    Waiting,
    /// It failed (or exited and was restarted) since the wait began: the
    /// headline says how.
    Failed(String),
}

/// As `docker compose up --wait`: a service that fails while waited for
/// fails the wait, even when its restart policy has brought it back (a
/// restart count that grew), whatever its health form.
pub fn verdict(status: &ServiceStatus, seen: Seen) -> Verdict {
    let state = ServiceState::parse(&status.state);
    let name = &status.name;
    let code = status
        .exit_code
        .map(|code| format!(" (exit code {code})"))
        .unwrap_or_default();
    if status.failures > seen.failures {
        return Verdict::Failed(match state {
            Some(ServiceState::Failed) => format!("service {name} failed{code}"),
            Some(ServiceState::Unhealthy) => format!("service {name} turned unhealthy"),
            _ => format!(
                "service {name} failed{code} and is being restarted (now {})",
                status.state
            ),
        });
    }
    if status.restarts > seen.restarts {
        return Verdict::Failed(format!(
            "service {name} exited{code} and was restarted (now {})",
            status.state
        ));
    }
    if is_ready(status) {
        Verdict::Ready
    } else {
        Verdict::Waiting
    }
}

/// Ready: healthy, or a job that finished successfully.
pub(crate) fn is_ready(status: &ServiceStatus) -> bool {
    match ServiceState::parse(&status.state) {
        Some(ServiceState::Healthy) => true,
        Some(ServiceState::Exited) => status.exit_code == Some(0),
        _ => false,
    }
}

/// The outcome for `statuses` now, or `None` while some are still on their
/// way.
fn decide(statuses: &[ServiceStatus], baseline: &Baseline) -> Option<WaitOutcome> {
    let mut all_ready = true;
    for status in statuses {
        let seen = baseline.get(&status.name).copied().unwrap_or_default();
        match verdict(status, seen) {
            Verdict::Failed(headline) => {
                return Some(WaitOutcome::Failed {
                    service: status.name.clone(),
                    headline,
                })
            }
            Verdict::Waiting => all_ready = false,
            Verdict::Ready => {}
        }
    }
    all_ready.then_some(WaitOutcome::Ready)
}

/// Waits on `services`' status channels until [`decide`] has an outcome or
/// `timeout` passes. Looks again only when a status changed: each channel is
/// followed by a small task that rings one [`Notify`] (whose stored permit
/// means no change between a look and the next wait is missed); the tasks
/// end with the wait.
pub async fn wait(
    mut services: Vec<watch::Receiver<ServiceStatus>>,
    baseline: Baseline,
    timeout: Option<Duration>,
) -> WaitOutcome {
    // A deadline no `Instant` can hold is never reached: no deadline.
    let deadline = timeout.and_then(|timeout| tokio::time::Instant::now().checked_add(timeout));
    let changed = Arc::new(Notify::new());
    let mut followers = JoinSet::new();
    for service in &services {
        let mut service = service.clone();
        let changed = changed.clone();
        followers.spawn(async move {
            while service.changed().await.is_ok() {
                changed.notify_one();
            }
        });
    }
    loop {
        let statuses: Vec<ServiceStatus> = services
            .iter_mut()
            .map(|service| service.borrow_and_update().clone())
            .collect();
        if let Some(outcome) = decide(&statuses, &baseline) {
            return outcome;
        }
        let timed_out = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = changed.notified() => {}
            () = timed_out => {
                let waiting = statuses
                    .iter()
                    .filter(|status| !is_ready(status))
                    .map(|status| (status.name.clone(), status.state.clone()))
                    .collect();
                return WaitOutcome::TimedOut { waiting };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: &str, restarts: u32, failures: u32, exit_code: Option<i32>) -> ServiceStatus {
        ServiceStatus {
            name: "web".into(),
            state: state.into(),
            pid: None,
            port: None,
            restarts,
            failures,
            exit_code,
            ..ServiceStatus::default()
        }
    }

    fn named(name: &str, state: &str) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            ..status(state, 0, 0, None)
        }
    }

    fn headline(verdict: Verdict) -> String {
        match verdict {
            Verdict::Failed(headline) => headline,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn ready_and_waiting_states() {
        let fresh = Seen::default();
        assert_eq!(
            verdict(&status("healthy", 0, 0, None), fresh),
            Verdict::Ready
        );
        assert_eq!(
            verdict(&status("exited", 0, 0, Some(0)), fresh),
            Verdict::Ready
        );
        for state in ["pending", "starting", "running"] {
            assert_eq!(verdict(&status(state, 0, 0, None), fresh), Verdict::Waiting);
        }
    }

    #[test]
    fn a_failure_since_the_wait_began_fails_it_even_once_recovered() {
        let fresh = Seen::default();
        assert_eq!(
            headline(verdict(&status("failed", 0, 1, Some(3)), fresh)),
            "service web failed (exit code 3)"
        );
        assert_eq!(
            headline(verdict(&status("backoff", 0, 1, Some(3)), fresh)),
            "service web failed (exit code 3) and is being restarted (now backoff)"
        );
        // Crashed and came back: only the counter tells.
        assert!(matches!(
            verdict(&status("healthy", 1, 1, None), fresh),
            Verdict::Failed(_)
        ));
        assert_eq!(
            headline(verdict(&status("unhealthy", 0, 1, None), fresh)),
            "service web turned unhealthy"
        );
        // `restart = "always"` after a clean exit: a restart, not a failure.
        assert_eq!(
            headline(verdict(&status("starting", 1, 0, None), fresh)),
            "service web exited and was restarted (now starting)"
        );
    }

    #[test]
    fn failures_from_before_the_wait_are_not_its_own() {
        // `up -d --wait` beside a supervisor whose service failed earlier,
        // and is being started again: its stale `failed` is no verdict.
        let seen = Seen {
            restarts: 2,
            failures: 3,
        };
        assert_eq!(
            verdict(&status("failed", 2, 3, Some(1)), seen),
            Verdict::Waiting
        );
        assert_eq!(
            verdict(&status("healthy", 2, 3, None), seen),
            Verdict::Ready
        );
        assert!(matches!(
            verdict(&status("backoff", 2, 4, Some(1)), seen),
            Verdict::Failed(_)
        ));
    }

    #[tokio::test]
    async fn answers_once_every_service_is_ready_as_their_states_change() {
        let (web, web_receiver) = watch::channel(named("web", "starting"));
        let (job, job_receiver) = watch::channel(named("job", "pending"));
        let waiting = tokio::spawn(wait(
            vec![web_receiver, job_receiver],
            Baseline::new(),
            None,
        ));
        tokio::task::yield_now().await;
        web.send_replace(named("web", "healthy"));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "job is not done yet");
        job.send_replace(ServiceStatus {
            exit_code: Some(0),
            ..named("job", "exited")
        });
        assert_eq!(waiting.await.unwrap(), WaitOutcome::Ready);
    }

    #[tokio::test]
    async fn a_crash_and_recovery_between_looks_fails_the_wait() {
        let (web, receiver) = watch::channel(named("web", "starting"));
        let waiting = tokio::spawn(wait(vec![receiver], Baseline::new(), None));
        // Two changes before the wait looks again: it sees only the last,
        // healthy, but the counter tells.
        web.send_replace(ServiceStatus {
            failures: 1,
            exit_code: Some(3),
            ..named("web", "backoff")
        });
        web.send_replace(ServiceStatus {
            failures: 1,
            restarts: 1,
            ..named("web", "healthy")
        });
        assert!(matches!(
            waiting.await.unwrap(),
            WaitOutcome::Failed { ref service, .. } if service == "web"
        ));
    }

    #[tokio::test]
    async fn a_stale_failure_waits_for_the_next_start() {
        let stale = ServiceStatus {
            failures: 2,
            exit_code: Some(1),
            ..named("web", "failed")
        };
        let baseline = Baseline::from([("web".to_string(), Seen::of(&stale))]);
        let (web, receiver) = watch::channel(stale.clone());
        let waiting = tokio::spawn(wait(vec![receiver], baseline, None));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        web.send_replace(ServiceStatus {
            state: "healthy".into(),
            ..stale
        });
        assert_eq!(waiting.await.unwrap(), WaitOutcome::Ready);
    }

    #[tokio::test]
    async fn the_timeout_names_what_was_not_ready() {
        let (_web, web_receiver) = watch::channel(named("web", "running"));
        let (_db, db_receiver) = watch::channel(named("db", "healthy"));
        let started = tokio::time::Instant::now();
        let outcome = wait(
            vec![web_receiver, db_receiver],
            Baseline::new(),
            Some(Duration::from_millis(300)),
        )
        .await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert_eq!(
            outcome,
            WaitOutcome::TimedOut {
                waiting: vec![("web".into(), "running".into())]
            }
        );
        // Ready already: no timeout, even a zero one, is reached.
        let (_db, db_receiver) = watch::channel(named("db", "healthy"));
        let outcome = wait(vec![db_receiver], Baseline::new(), Some(Duration::ZERO)).await;
        assert_eq!(outcome, WaitOutcome::Ready);
    }
}
