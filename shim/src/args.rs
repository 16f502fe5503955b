//! Command-line parsing for `locald-shim`, kept by hand so the binary starts fast and stays small.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Where libcontainer keeps its per-container state when `--root` is not given.
pub const DEFAULT_STATE_ROOT_NAME: &str = "state";

/// How long a container gets between the forwarded stop signal and SIGKILL, unless told otherwise.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The parsed `locald-shim run` invocation.
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
}

pub const USAGE: &str =
    "usage: locald-shim run --bundle DIR --id ID [--root STATE_DIR] [--stop-timeout SECONDS] \
     [--seccomp-cache DIR]";

/// Parses `run --bundle DIR --id ID [--root DIR] [--stop-timeout SECS] [--seccomp-cache DIR]`
/// (arguments after argv[0]).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<RunArgs> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("run") => {}
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
        None => bail!("missing command\n{USAGE}"),
    }
    let mut bundle = None;
    let mut id = None;
    let mut state_root = None;
    let mut stop_timeout = DEFAULT_STOP_TIMEOUT;
    let mut seccomp_cache = None;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--bundle" => bundle = Some(PathBuf::from(value()?)),
            "--id" => id = Some(value()?),
            "--root" => state_root = Some(PathBuf::from(value()?)),
            "--seccomp-cache" => seccomp_cache = Some(PathBuf::from(value()?)),
            "--stop-timeout" => {
                let raw = value()?;
                let seconds: f64 = raw
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .with_context(|| {
                        format!("--stop-timeout: {raw:?} is not a number of seconds")
                    })?;
                stop_timeout = Duration::from_secs_f64(seconds);
            }
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    let bundle = bundle.with_context(|| format!("--bundle is required\n{USAGE}"))?;
    let id = id.with_context(|| format!("--id is required\n{USAGE}"))?;
    let state_root = state_root.unwrap_or_else(|| bundle.join(DEFAULT_STATE_ROOT_NAME));
    Ok(RunArgs {
        bundle,
        id,
        state_root,
        stop_timeout,
        seccomp_cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_all_options() {
        let parsed = parse(strings(&[
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
        ]))
        .unwrap();
        assert_eq!(
            parsed,
            RunArgs {
                bundle: "/b".into(),
                id: "c1".into(),
                state_root: "/s".into(),
                stop_timeout: Duration::from_millis(500),
                seccomp_cache: Some("/c".into()),
            }
        );
    }

    #[test]
    fn state_root_defaults_inside_the_bundle() {
        let parsed = parse(strings(&["run", "--bundle", "/b", "--id", "c1"])).unwrap();
        assert_eq!(parsed.state_root, PathBuf::from("/b/state"));
        assert_eq!(parsed.stop_timeout, DEFAULT_STOP_TIMEOUT);
        assert_eq!(parsed.seccomp_cache, None);
    }

    #[test]
    fn rejects_missing_and_unknown_arguments() {
        assert!(parse(strings(&["run", "--id", "c1"])).is_err());
        assert!(parse(strings(&["run", "--bundle", "/b"])).is_err());
        assert!(parse(strings(&["run", "--bundle"])).is_err());
        assert!(parse(strings(&["exec", "--bundle", "/b", "--id", "c"])).is_err());
        assert!(parse(strings(&["run", "--bundle", "/b", "--id", "c", "--x"])).is_err());
        assert!(parse(strings(&[
            "run",
            "--bundle",
            "/b",
            "--id",
            "c",
            "--stop-timeout",
            "-1"
        ]))
        .is_err());
        assert!(parse(strings(&[])).is_err());
    }
}
