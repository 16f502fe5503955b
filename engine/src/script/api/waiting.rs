//! Primitives that wait: `sleep`, and `wait_healthy` (the supervisor's
//! services ready, as `up -d --wait` waits for them). Both end at once on
//! Ctrl-C or SIGTERM, and the script with them (130/143).

use std::time::{Duration, Instant};

use rhai::plugin::*;
use rhai::Map;
use serde::Deserialize;

use super::options::{self, OptionsError};
use super::supervisor::{SteerError, Timeout};
use crate::project::state_dir::StateDir;
use crate::sandbox::interrupt;
use crate::script::handles::ProjectHandle;

/// The longest `sleep`: a script that waits longer wants a scheduler, and a
/// larger value is far likelier a unit mistake (`sleep(90000)` for 90 s).
pub const MAX_SLEEP: Duration = Duration::from_secs(24 * 60 * 60);
/// How often a sleep looks at the interrupt flag (a signal handler can only
/// set a flag).
const LOOK: Duration = Duration::from_millis(10);

/// Why a waiting primitive failed.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{primitive}: {reason}")]
    Duration {
        primitive: &'static str,
        reason: String,
    },
    #[error("sleep: {} is longer than the most a script may sleep ({})",
        humantime::format_duration(*.0), humantime::format_duration(MAX_SLEEP))]
    TooLong(Duration),
    /// Ctrl-C (or SIGTERM/SIGHUP) while waiting: the script ends.
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Steer(#[from] SteerError),
    /// A service failed, or the timeout passed: what `up --wait` says.
    #[error("{0}")]
    NotReady(String),
}

impl From<crate::supervisor::SupervisorError> for WaitError {
    fn from(error: crate::supervisor::SupervisorError) -> Self {
        WaitError::Steer(error.into())
    }
}

/// The options of `wait_healthy`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaitHealthyOptions {
    /// The services to wait for, with what they depend on; when not given,
    /// every service the supervisor has not stopped.
    pub services: Vec<String>,
    /// How long at most: a duration (`"30s"`) or seconds; unbounded when not
    /// given.
    pub timeout: Option<Timeout>,
}

/// `wait_healthy(project, options)`: `up -d --wait`'s wait, on its own.
fn wait_healthy(project: &ProjectHandle, options: Map) -> Result<(), WaitError> {
    let options: WaitHealthyOptions = options::read("wait_healthy", options)?;
    for name in &options.services {
        project.service(name).map_err(SteerError::from)?;
    }
    let services = match options.services.is_empty() {
        true => None,
        false => Some(
            crate::supervisor::select_services(&project.0, &options.services)?
                .into_iter()
                .collect(),
        ),
    };
    let timeout = options.timeout.map(|timeout| timeout.0);
    let mut client = super::supervisor::connect(project)?;
    let outcome = client.wait(services, None, timeout)?;
    let state = StateDir::new(&project.0.state_dir());
    match crate::control::failure_message(&state, &outcome, timeout) {
        None => Ok(()),
        Some(message) => Err(WaitError::NotReady(message)),
    }
}

/// A duration as scripts give one: seconds (an integer or a float) or a
/// duration string (`"1m30s"`, `"250ms"`), as `up`'s `timeout` takes it.
pub fn duration(primitive: &'static str, value: &Dynamic) -> Result<Duration, WaitError> {
    super::options::read_value::<Timeout>(value)
        .map(|timeout| timeout.0)
        .map_err(|reason| WaitError::Duration { primitive, reason })
}

/// Sleeps for `length`, ending early (with [`WaitError::Interrupted`], the
/// interrupt consumed) on Ctrl-C or SIGTERM.
pub fn sleep(length: Duration) -> Result<(), WaitError> {
    if length > MAX_SLEEP {
        return Err(WaitError::TooLong(length));
    }
    let deadline = Instant::now() + length;
    loop {
        if interrupt::take() {
            return Err(WaitError::Interrupted);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(LOOK));
    }
}

/// `sleep(duration)`.
fn sleep_for(value: &Dynamic) -> Result<(), WaitError> {
    duration("sleep", value).and_then(sleep)
}

// Rhai's standard package has a `sleep(seconds)` of its own that Ctrl-C
// cannot end (and that ignores a negative value): the typed forms here
// replace it, the `Dynamic` one names what is not a duration.
#[export_module]
pub mod waiting_api {
    use rhai::Map;

    use crate::script::handles::ProjectHandle;

    /// Sleeps for `duration`: seconds (an integer or a float) or a duration
    /// string (`"1m30s"`, `"250ms"`); at most a day. Ctrl-C (or SIGTERM)
    /// ends it at once, and the script with it.
    #[rhai_fn(return_raw, name = "sleep")]
    pub fn sleep(ctx: NativeCallContext, duration: Dynamic) -> Result<(), Box<EvalAltResult>> {
        super::sleep_for(&duration).map_err(|e| crate::script::throw(&ctx, e))
    }

    /// Sleeps for `seconds`.
    #[rhai_fn(return_raw, name = "sleep")]
    pub fn sleep_seconds(ctx: NativeCallContext, seconds: i64) -> Result<(), Box<EvalAltResult>> {
        sleep(ctx, Dynamic::from_int(seconds))
    }

    /// Sleeps for `seconds` and their fractions.
    #[rhai_fn(return_raw, name = "sleep")]
    pub fn sleep_fraction(ctx: NativeCallContext, seconds: f64) -> Result<(), Box<EvalAltResult>> {
        sleep(ctx, Dynamic::from_float(seconds))
    }

    /// Returns once the project's services are ready (healthy, or a job
    /// that finished successfully), as `up -d --wait` waits: throws when one
    /// fails meanwhile (even if it is back up) or at the timeout, with the
    /// message `up --wait` prints, and when no supervisor runs.
    #[rhai_fn(return_raw, name = "wait_healthy")]
    pub fn wait_healthy(
        ctx: NativeCallContext,
        project: ProjectHandle,
    ) -> Result<(), Box<EvalAltResult>> {
        wait_healthy_with(ctx, project, Map::new())
    }

    /// `wait_healthy(project)` with options `#{ services, timeout }`:
    /// `services`, the names to wait for (with what they depend on; default:
    /// every service not stopped); `timeout`, a duration (`"1m30s"`) or
    /// seconds (default: none).
    #[rhai_fn(return_raw, name = "wait_healthy")]
    pub fn wait_healthy_with(
        ctx: NativeCallContext,
        project: ProjectHandle,
        options: Map,
    ) -> Result<(), Box<EvalAltResult>> {
        super::wait_healthy(&project, options).map_err(|e| crate::script::throw(&ctx, e))
    }

    /// Sleeps for a duration string: `"1m30s"`, `"250ms"`.
    #[rhai_fn(return_raw, name = "sleep")]
    pub fn sleep_text(
        ctx: NativeCallContext,
        duration: ImmutableString,
    ) -> Result<(), Box<EvalAltResult>> {
        sleep(ctx, duration.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_text() {
        let of = |value: Dynamic| duration("sleep", &value);
        assert_eq!(of(Dynamic::from_int(2)).unwrap(), Duration::from_secs(2));
        assert_eq!(
            of(Dynamic::from_float(0.25)).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(of("1m30s".into()).unwrap(), Duration::from_secs(90));
        assert_eq!(of("250ms".into()).unwrap(), Duration::from_millis(250));
        assert_eq!(of("3".into()).unwrap(), Duration::from_secs(3));
        for (value, expected) in [
            (Dynamic::from_int(-1), "sleep: must not be negative"),
            (Dynamic::from_float(-0.5), "sleep: must not be negative"),
            (
                Dynamic::from_float(f64::NAN),
                "sleep: NaN is not a number of seconds",
            ),
            (
                Dynamic::from_float(f64::INFINITY),
                "sleep: inf is not a number of seconds",
            ),
        ] {
            assert_eq!(of(value).unwrap_err().to_string(), expected);
        }
        let error = of("soon".into()).unwrap_err().to_string();
        assert!(
            error.starts_with("sleep: invalid duration `soon`"),
            "{error}"
        );
        let error = of(Dynamic::from_bool(true)).unwrap_err().to_string();
        assert!(error.starts_with("sleep: "), "{error}");
    }

    #[test]
    fn sleeps_as_long_as_asked_and_refuses_absurd_lengths() {
        let started = Instant::now();
        sleep(Duration::from_millis(120)).unwrap();
        let slept = started.elapsed();
        assert!(slept >= Duration::from_millis(120), "{slept:?}");
        assert!(slept < Duration::from_secs(2), "{slept:?}");
        assert_eq!(
            sleep(Duration::from_secs(2 * 24 * 60 * 60))
                .unwrap_err()
                .to_string(),
            "sleep: 2days is longer than the most a script may sleep (1day)"
        );
    }
}
