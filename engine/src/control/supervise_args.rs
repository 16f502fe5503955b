//! The arguments of `locald __supervise`, the detached daemon's hidden
//! entry: built by [`super::daemon`] when it starts one, parsed by the CLI
//! when the daemon starts; one type, so the two cannot drift.

use std::ffi::OsString;
use std::path::PathBuf;

/// `locald __supervise --root DIR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperviseArgs {
    /// The project's directory.
    pub root: PathBuf,
}

/// An argv that is not `__supervise --root DIR`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("usage: locald {} --root DIR", SuperviseArgs::ENTRY)]
pub struct SuperviseUsage;

impl SuperviseArgs {
    /// The hidden verb (the first argument).
    pub const ENTRY: &'static str = "__supervise";
    const ROOT: &'static str = "--root";

    /// The arguments after the program name.
    pub fn to_argv(&self) -> Vec<OsString> {
        vec![
            Self::ENTRY.into(),
            Self::ROOT.into(),
            self.root.clone().into_os_string(),
        ]
    }

    /// Parses the arguments after [`Self::ENTRY`].
    pub fn parse(args: &[OsString]) -> Result<Self, SuperviseUsage> {
        match args {
            [flag, root] if flag == Self::ROOT => Ok(SuperviseArgs {
                root: PathBuf::from(root),
            }),
            _ => Err(SuperviseUsage),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    #[test]
    fn what_the_daemon_is_started_with_parses_back() {
        // A path need not be UTF-8.
        let root = PathBuf::from(OsString::from_vec(b"/tmp/proj \xff".to_vec()));
        let args = SuperviseArgs { root };
        let argv = args.to_argv();
        assert_eq!(argv[0], SuperviseArgs::ENTRY);
        assert_eq!(SuperviseArgs::parse(&argv[1..]), Ok(args));
    }

    #[test]
    fn anything_else_is_a_usage_error() {
        for argv in [
            &[][..],
            &["--root"],
            &["--roots", "/p"],
            &["--root", "/p", "extra"],
        ] {
            let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
            assert_eq!(SuperviseArgs::parse(&argv), Err(SuperviseUsage), "{argv:?}");
        }
    }
}
