//! The `locald-shim` command line, in one place for both ends: the runtime builds it with
//! [`RunArgs::to_argv`], the shim reads it with [`RunArgs::parse`], and a test checks that one
//! undoes the other.
//!
//! ```text
//! locald-shim run --bundle DIR --id ID [--root STATE_DIR] [--stop-timeout SECONDS]
//!                 [--seccomp-cache DIR] [--parents-checked-on-host]
//! locald-shim exec --bundle DIR --pid PID [--seccomp-cache DIR] [--user USER] [--cwd DIR]
//!                  [--env KEY=VALUE]... -- COMMAND...
//! ```
//!
//! `exec` is built by the engine ([`ExecArgs::to_argv`]) for `locald exec` into a container
//! service, from the running shim's own `run` arguments.
//!
//! Parsed by hand (no argument-parsing crate) so the shim starts fast and stays small.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::time::Duration;

/// The shim's command that runs a container.
pub const RUN_COMMAND: &str = "run";

/// Where libcontainer keeps its per-container state when `--root` is not given (in the bundle).
pub const DEFAULT_STATE_ROOT_NAME: &str = "state";

/// How long a container gets between the forwarded stop signal and SIGKILL, unless told otherwise.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub const USAGE: &str =
    "usage: locald-shim run --bundle DIR --id ID [--root STATE_DIR] [--stop-timeout SECONDS] \
     [--seccomp-cache DIR] [--parents-checked-on-host]";

/// The flag saying that the caller checked the bundle, the state root and the seccomp cache in the
/// host's ids (see `private_dir`'s [`TrustedOwners::after_host_check`]).
///
/// [`TrustedOwners::after_host_check`]: crate::private_dir::TrustedOwners::after_host_check
pub const PARENTS_CHECKED_ON_HOST: &str = "--parents-checked-on-host";

/// A `locald-shim run` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArgs {
    /// The OCI bundle directory holding `config.json`.
    pub bundle: PathBuf,
    /// The container id (also the name of libcontainer's state directory).
    pub id: String,
    /// libcontainer's state root; each container gets `<root>/<id>`.
    pub state_root: PathBuf,
    /// Grace period between a forwarded SIGTERM/SIGINT/SIGHUP/SIGQUIT and SIGKILL.
    pub stop_timeout: Duration,
    /// Where compiled seccomp programs are kept; none: compiled at every start.
    pub seccomp_cache: Option<PathBuf>,
    /// The caller (locald, outside any user namespace of its own) checked the parents of the
    /// bundle, state root and seccomp cache as private directories in the host's ids, just
    /// before: in a user namespace where root shows as the overflow uid, the shim may then take
    /// a parent owned by that uid for root's.
    pub parents_checked_on_host: bool,
}

/// A command line the shim does not accept; the message ends with [`USAGE`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("missing command\n{USAGE}")]
    MissingCommand,
    #[error("unknown command {0:?}\n{USAGE}")]
    UnknownCommand(OsString),
    #[error("unknown option {0:?}\n{USAGE}")]
    UnknownOption(OsString),
    #[error("{0} needs a value\n{USAGE}")]
    MissingValue(&'static str),
    #[error("{0} is required\n{USAGE}")]
    Required(&'static str),
    #[error("--id: {0:?} is not UTF-8")]
    IdNotUtf8(OsString),
    #[error("--stop-timeout: {0:?} is not a number of seconds")]
    BadStopTimeout(OsString),
}

impl RunArgs {
    /// The arguments for `bundle` and `id` with the defaults: state root in the bundle, the
    /// default stop timeout, no seccomp cache.
    pub fn new(bundle: PathBuf, id: String) -> RunArgs {
        RunArgs {
            state_root: bundle.join(DEFAULT_STATE_ROOT_NAME),
            bundle,
            id,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            seccomp_cache: None,
            parents_checked_on_host: false,
        }
    }

    /// The arguments after `argv[0]`, as [`RunArgs::parse`] reads them back. Every field is
    /// written out (the state root too), except a default stop timeout and a missing cache.
    pub fn to_argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            RUN_COMMAND.into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--id".into(),
            self.id.clone().into(),
            "--root".into(),
            self.state_root.clone().into(),
        ];
        if self.stop_timeout != DEFAULT_STOP_TIMEOUT {
            argv.push("--stop-timeout".into());
            argv.push(seconds(self.stop_timeout).into());
        }
        if let Some(cache) = &self.seccomp_cache {
            argv.push("--seccomp-cache".into());
            argv.push(cache.clone().into());
        }
        if self.parents_checked_on_host {
            argv.push(PARENTS_CHECKED_ON_HOST.into());
        }
        argv
    }

    /// Parses `run --bundle DIR --id ID [--root DIR] [--stop-timeout SECS] [--seccomp-cache DIR]`
    /// (the arguments after `argv[0]`). Paths may be any bytes; the id must be UTF-8.
    pub fn parse<I, A>(args: I) -> Result<RunArgs, ArgsError>
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let mut args = args.into_iter().map(Into::into);
        match args.next() {
            Some(command) if command == RUN_COMMAND => {}
            Some(other) => return Err(ArgsError::UnknownCommand(other)),
            None => return Err(ArgsError::MissingCommand),
        }
        let mut bundle = None;
        let mut id = None;
        let mut state_root = None;
        let mut stop_timeout = DEFAULT_STOP_TIMEOUT;
        let mut seccomp_cache = None;
        let mut parents_checked_on_host = false;
        while let Some(flag) = args.next() {
            if flag == PARENTS_CHECKED_ON_HOST {
                parents_checked_on_host = true;
                continue;
            }
            let flag: &'static str = match flag.to_str() {
                Some("--bundle") => "--bundle",
                Some("--id") => "--id",
                Some("--root") => "--root",
                Some("--seccomp-cache") => "--seccomp-cache",
                Some("--stop-timeout") => "--stop-timeout",
                _ => return Err(ArgsError::UnknownOption(flag)),
            };
            let value = args.next().ok_or(ArgsError::MissingValue(flag))?;
            match flag {
                "--bundle" => bundle = Some(PathBuf::from(value)),
                "--id" => id = Some(value.into_string().map_err(ArgsError::IdNotUtf8)?),
                "--root" => state_root = Some(PathBuf::from(value)),
                "--seccomp-cache" => seccomp_cache = Some(PathBuf::from(value)),
                _ => stop_timeout = parse_seconds(&value)?,
            }
        }
        let bundle: PathBuf = bundle.ok_or(ArgsError::Required("--bundle"))?;
        let id = id.ok_or(ArgsError::Required("--id"))?;
        let state_root = state_root.unwrap_or_else(|| bundle.join(DEFAULT_STATE_ROOT_NAME));
        Ok(RunArgs {
            bundle,
            id,
            state_root,
            stop_timeout,
            seccomp_cache,
            parents_checked_on_host,
        })
    }
}

/// `duration` as exact decimal seconds (`1.5`, `0.000000001`): no float rounding on the way.
fn seconds(duration: Duration) -> String {
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return duration.as_secs().to_string();
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}", duration.as_secs(), fraction.trim_end_matches('0'))
}

/// The shim's second command: run a command in a running container.
pub const EXEC_COMMAND: &str = "exec";

pub const EXEC_USAGE: &str =
    "usage: locald-shim exec --bundle DIR --pid PID [--seccomp-cache DIR] \
     [--user USER] [--cwd DIR] [--env KEY=VALUE]... -- COMMAND...";

/// A `locald-shim exec` invocation: `COMMAND` in the running container whose init is `pid` (on
/// the host), confined as the bundle's spec says (its process's user, capabilities,
/// `noNewPrivileges` and seccomp filter), with its environment and working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecArgs {
    /// The running container's bundle (its `config.json`).
    pub bundle: PathBuf,
    /// The host pid of the container's init, whose namespaces the command joins.
    pub pid: i32,
    /// As for `run`: where compiled seccomp programs are kept.
    pub seccomp_cache: Option<PathBuf>,
    /// Instead of the spec's user: a name from the container's `/etc/passwd`, or `UID[:GID]`.
    pub user: Option<String>,
    /// Instead of the spec's working directory (in the container).
    pub cwd: Option<PathBuf>,
    /// `KEY=VALUE`s over the spec's environment.
    pub env: Vec<String>,
    /// What to run: looked up in the container's `PATH`.
    pub command: Vec<OsString>,
}

/// An `exec` command line the shim does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecArgsError {
    #[error("unknown option {0:?}\n{EXEC_USAGE}")]
    UnknownOption(OsString),
    #[error("{0} needs a value\n{EXEC_USAGE}")]
    MissingValue(&'static str),
    #[error("{0} is required\n{EXEC_USAGE}")]
    Required(&'static str),
    #[error("{0}: {1:?} is not valid")]
    Invalid(&'static str, OsString),
}

impl ExecArgs {
    /// The arguments after `argv[0]`, as [`ExecArgs::parse`] reads them back.
    pub fn to_argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            EXEC_COMMAND.into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--pid".into(),
            self.pid.to_string().into(),
        ];
        let mut option = |flag: &str, value: OsString| {
            argv.push(flag.into());
            argv.push(value);
        };
        if let Some(cache) = &self.seccomp_cache {
            option("--seccomp-cache", cache.clone().into());
        }
        if let Some(user) = &self.user {
            option("--user", user.into());
        }
        if let Some(cwd) = &self.cwd {
            option("--cwd", cwd.clone().into());
        }
        for pair in &self.env {
            option("--env", pair.into());
        }
        argv.push("--".into());
        argv.extend(self.command.iter().cloned());
        argv
    }

    /// Parses what [`ExecArgs::to_argv`] writes (after the `exec` command word).
    pub fn parse<I, A>(args: I) -> Result<ExecArgs, ExecArgsError>
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let mut args = args.into_iter().map(Into::into);
        let (mut bundle, mut pid, mut seccomp_cache, mut user, mut cwd) =
            (None, None, None, None, None);
        let mut env = Vec::new();
        loop {
            let Some(flag) = args.next() else {
                return Err(ExecArgsError::Required("a command after --"));
            };
            let flag: &'static str = match flag.to_str() {
                Some("--") => break,
                Some("--bundle") => "--bundle",
                Some("--pid") => "--pid",
                Some("--seccomp-cache") => "--seccomp-cache",
                Some("--user") => "--user",
                Some("--cwd") => "--cwd",
                Some("--env") => "--env",
                _ => return Err(ExecArgsError::UnknownOption(flag)),
            };
            let value = args.next().ok_or(ExecArgsError::MissingValue(flag))?;
            let text = || {
                value
                    .clone()
                    .into_string()
                    .map_err(|value| ExecArgsError::Invalid(flag, value))
            };
            match flag {
                "--bundle" => bundle = Some(PathBuf::from(&value)),
                "--pid" => {
                    let parsed = text()?.parse::<i32>().ok().filter(|pid| *pid > 0);
                    pid = Some(parsed.ok_or(ExecArgsError::Invalid(flag, value))?);
                }
                "--seccomp-cache" => seccomp_cache = Some(PathBuf::from(&value)),
                "--user" => user = Some(text()?),
                "--cwd" => cwd = Some(PathBuf::from(&value)),
                _ => env.push(text()?),
            }
        }
        let command: Vec<OsString> = args.collect();
        if command.is_empty() {
            return Err(ExecArgsError::Required("a command after --"));
        }
        Ok(ExecArgs {
            bundle: bundle.ok_or(ExecArgsError::Required("--bundle"))?,
            pid: pid.ok_or(ExecArgsError::Required("--pid"))?,
            seccomp_cache,
            user,
            cwd,
            env,
            command,
        })
    }
}

/// A non-negative number of seconds, with up to nine decimals taken exactly (more are
/// truncated): `10`, `0.5`, `2.25`.
fn parse_seconds(raw: &OsStr) -> Result<Duration, ArgsError> {
    let bad = || ArgsError::BadStopTimeout(raw.to_os_string());
    let text = raw.to_str().ok_or_else(bad)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(bad());
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut nanos: u32 = 0;
    for (index, digit) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(digit - b'0') * 10u32.pow(8 - index as u32);
    }
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn parse(args: &[&str]) -> Result<RunArgs, ArgsError> {
        RunArgs::parse(args.iter().copied())
    }

    #[test]
    fn what_the_engine_builds_for_exec_the_shim_reads_back() {
        let every = ExecArgs {
            bundle: "/run/locald/bundles/db-1".into(),
            pid: 4242,
            seccomp_cache: Some("/run/locald/seccomp".into()),
            user: Some("postgres".into()),
            cwd: Some("/var/lib".into()),
            env: vec!["A=1".into(), "B=two words".into()],
            command: vec!["sh".into(), "-c".into(), "--env x".into()],
        };
        let least = ExecArgs {
            seccomp_cache: None,
            user: None,
            cwd: None,
            env: Vec::new(),
            command: vec!["ps".into()],
            ..every.clone()
        };
        for args in [every, least] {
            let argv = args.to_argv();
            assert_eq!(argv[0], EXEC_COMMAND);
            assert_eq!(ExecArgs::parse(argv.into_iter().skip(1)).unwrap(), args);
        }
        assert_eq!(
            ExecArgs::parse(["--bundle", "b", "--pid", "0", "--", "x"]),
            Err(ExecArgsError::Invalid("--pid", "0".into()))
        );
        assert_eq!(
            ExecArgs::parse(["--bundle", "b", "--pid", "1", "--"]),
            Err(ExecArgsError::Required("a command after --"))
        );
    }

    #[test]
    fn what_the_runtime_builds_the_shim_reads_back() {
        let mut every = RunArgs::new("/run/locald/bundles/web-1".into(), "web-1".into());
        let defaults = every.clone();
        every.state_root = "/run/locald/state".into();
        every.seccomp_cache = Some("/run/locald/seccomp".into());
        every.parents_checked_on_host = true;
        let odd_path = PathBuf::from(OsString::from_vec(b"/tmp/b\xff dir,x".to_vec()));
        let mut odd = RunArgs::new(odd_path, "x".into());
        odd.state_root = "relative/state".into();
        for args in [every, defaults, odd] {
            for timeout in [
                DEFAULT_STOP_TIMEOUT,
                Duration::ZERO,
                Duration::from_millis(500),
                Duration::new(3, 1),
                Duration::new(86_400 * 365, 999_999_999),
            ] {
                let args = RunArgs {
                    stop_timeout: timeout,
                    ..args.clone()
                };
                assert_eq!(RunArgs::parse(args.to_argv()), Ok(args.clone()));
            }
        }
    }

    #[test]
    fn parses_all_options() {
        let parsed = parse(&[
            "run",
            "--bundle",
            "/b",
            "--id",
            "c1",
            "--root",
            "/s",
            "--stop-timeout",
            "0.5",
            "--seccomp-cache",
            "/c",
            "--parents-checked-on-host",
        ])
        .unwrap();
        assert_eq!(
            parsed,
            RunArgs {
                bundle: "/b".into(),
                id: "c1".into(),
                state_root: "/s".into(),
                stop_timeout: Duration::from_millis(500),
                seccomp_cache: Some("/c".into()),
                parents_checked_on_host: true,
            }
        );
    }

    #[test]
    fn state_root_defaults_inside_the_bundle() {
        let parsed = parse(&["run", "--bundle", "/b", "--id", "c1"]).unwrap();
        assert_eq!(parsed.state_root, PathBuf::from("/b/state"));
        assert_eq!(parsed.stop_timeout, DEFAULT_STOP_TIMEOUT);
        assert_eq!(parsed.seccomp_cache, None);
        assert!(!parsed.parents_checked_on_host);
    }

    #[test]
    fn stop_timeouts_are_decimal_seconds() {
        let timeout = |raw: &str| {
            parse(&["run", "--bundle", "/b", "--id", "c", "--stop-timeout", raw])
                .map(|args| args.stop_timeout)
        };
        assert_eq!(timeout("10"), Ok(Duration::from_secs(10)));
        assert_eq!(timeout("2.25"), Ok(Duration::from_millis(2250)));
        assert_eq!(timeout(".5"), Ok(Duration::from_millis(500)));
        assert_eq!(timeout("1."), Ok(Duration::from_secs(1)));
        assert_eq!(timeout("0.0000000019"), Ok(Duration::from_nanos(1)));
        for bad in [
            "-1",
            "",
            ".",
            "1e3",
            "inf",
            "NaN",
            " 1",
            "1,5",
            "99999999999999999999",
        ] {
            assert_eq!(
                timeout(bad),
                Err(ArgsError::BadStopTimeout(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rejects_missing_and_unknown_arguments() {
        assert_eq!(
            parse(&["run", "--id", "c1"]),
            Err(ArgsError::Required("--bundle"))
        );
        assert_eq!(
            parse(&["run", "--bundle", "/b"]),
            Err(ArgsError::Required("--id"))
        );
        assert_eq!(
            parse(&["run", "--bundle"]),
            Err(ArgsError::MissingValue("--bundle"))
        );
        assert!(matches!(
            parse(&["exec", "--bundle", "/b", "--id", "c"]),
            Err(ArgsError::UnknownCommand(_))
        ));
        assert!(matches!(
            parse(&["run", "--bundle", "/b", "--id", "c", "--x"]),
            Err(ArgsError::UnknownOption(_))
        ));
        assert_eq!(parse(&[]), Err(ArgsError::MissingCommand));
        let not_utf8 = OsString::from_vec(b"c\xff".to_vec());
        assert_eq!(
            RunArgs::parse([
                "run".into(),
                "--bundle".into(),
                "/b".into(),
                "--id".into(),
                not_utf8.clone()
            ]),
            Err(ArgsError::IdNotUtf8(not_utf8))
        );
        let message = parse(&["run"]).unwrap_err().to_string();
        assert!(message.contains("--bundle is required"), "{message}");
        assert!(message.ends_with(USAGE), "{message}");
    }
}
