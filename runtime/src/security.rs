//! A container's confinement as the user asks for it: capabilities to add or drop, the seccomp
//! profile, no-new-privileges. Parsed from Docker's words (`--cap-add`, `--cap-drop`,
//! `--security-opt`, compose's `cap_add` / `cap_drop` / `security_opt`) by both the CLI
//! primitive and the config, so the two accept the same things.

use std::path::{Path, PathBuf};

use crate::capabilities::{self, CapabilityError};

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SeccompChoice {
    /// The built-in profile, equivalent to Docker's default.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A Docker- or OCI-format JSON profile, read when the container is prepared.
    Profile(PathBuf),
}

/// The confinement of one container; [`Default`] is locald's default: Docker's capability set
/// without `CAP_NET_RAW`, the default seccomp profile, no-new-privileges.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Security {
    /// Canonical capability names (`CAP_NET_RAW`) or `ALL`.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub seccomp: SeccompChoice,
    /// Set the process's no_new_privs bit: setuid binaries and file capabilities grant nothing.
    pub no_new_privileges: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            seccomp: SeccompChoice::Default,
            no_new_privileges: true,
        }
    }
}

/// A `--security-opt` value locald does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityOptError {
    #[error(
        "unsupported security option `{0}` (locald supports seccomp=unconfined, seccomp=FILE \
         and no-new-privileges[=true|false])"
    )]
    Unsupported(String),
    #[error("`{0}`: no-new-privileges takes true or false")]
    BadBool(String),
    #[error("`{0}`: seccomp takes `unconfined` or the path of a JSON profile")]
    EmptySeccomp(String),
}

/// One parsed `--security-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    Seccomp(SeccompChoice),
    NoNewPrivileges(bool),
}

/// Parses a `--security-opt` value (Docker accepts `=` or `:` between key and value); a profile
/// path is taken relative to `base_dir`. The file itself is not read here.
pub fn parse_security_opt(text: &str, base_dir: &Path) -> Result<SecurityOpt, SecurityOptError> {
    let (key, value) = match text.split_once(['=', ':']) {
        Some((key, value)) => (key.trim(), Some(value.trim())),
        None => (text.trim(), None),
    };
    match (key, value) {
        ("seccomp", Some("unconfined")) => Ok(SecurityOpt::Seccomp(SeccompChoice::Unconfined)),
        ("seccomp", Some(path)) if !path.is_empty() => Ok(SecurityOpt::Seccomp(
            SeccompChoice::Profile(base_dir.join(path)),
        )),
        ("seccomp", _) => Err(SecurityOptError::EmptySeccomp(text.to_string())),
        ("no-new-privileges", None | Some("true")) => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", Some("false")) => Ok(SecurityOpt::NoNewPrivileges(false)),
        ("no-new-privileges", Some(_)) => Err(SecurityOptError::BadBool(text.to_string())),
        _ => Err(SecurityOptError::Unsupported(text.to_string())),
    }
}

impl Security {
    /// Adds `--cap-add NAME`.
    pub fn add_cap(&mut self, name: &str) -> Result<(), CapabilityError> {
        self.cap_add.push(capabilities::canonical_name(name)?);
        Ok(())
    }

    /// Adds `--cap-drop NAME`.
    pub fn drop_cap(&mut self, name: &str) -> Result<(), CapabilityError> {
        self.cap_drop.push(capabilities::canonical_name(name)?);
        Ok(())
    }

    /// Applies one parsed `--security-opt`.
    pub fn apply(&mut self, option: SecurityOpt) {
        match option {
            SecurityOpt::Seccomp(choice) => self.seccomp = choice,
            SecurityOpt::NoNewPrivileges(on) => self.no_new_privileges = on,
        }
    }

    /// The capabilities the container gets on this host.
    pub fn capabilities(&self) -> Vec<String> {
        capabilities::resolve(
            &self.cap_add,
            &self.cap_drop,
            capabilities::kernel_last_cap(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options_parse_like_docker() {
        let base = Path::new("/project");
        let parse = |text| parse_security_opt(text, base);
        assert_eq!(
            parse("seccomp=unconfined"),
            Ok(SecurityOpt::Seccomp(SeccompChoice::Unconfined))
        );
        assert_eq!(
            parse("seccomp:unconfined"),
            Ok(SecurityOpt::Seccomp(SeccompChoice::Unconfined))
        );
        assert_eq!(
            parse("seccomp=./p.json"),
            Ok(SecurityOpt::Seccomp(SeccompChoice::Profile(
                "/project/./p.json".into()
            )))
        );
        assert_eq!(
            parse("seccomp=/etc/p.json"),
            Ok(SecurityOpt::Seccomp(SeccompChoice::Profile(
                "/etc/p.json".into()
            )))
        );
        assert_eq!(
            parse("no-new-privileges"),
            Ok(SecurityOpt::NoNewPrivileges(true))
        );
        assert_eq!(
            parse("no-new-privileges=false"),
            Ok(SecurityOpt::NoNewPrivileges(false))
        );
        assert_eq!(
            parse("no-new-privileges:true"),
            Ok(SecurityOpt::NoNewPrivileges(true))
        );
        assert!(matches!(
            parse("no-new-privileges=maybe"),
            Err(SecurityOptError::BadBool(_))
        ));
        assert!(matches!(
            parse("seccomp="),
            Err(SecurityOptError::EmptySeccomp(_))
        ));
        assert!(matches!(
            parse("seccomp"),
            Err(SecurityOptError::EmptySeccomp(_))
        ));
        let error = parse("apparmor=unconfined").unwrap_err();
        assert!(error
            .to_string()
            .contains("unsupported security option `apparmor=unconfined`"));
    }

    #[test]
    fn the_default_is_confined() {
        let security = Security::default();
        assert!(security.no_new_privileges);
        assert_eq!(security.seccomp, SeccompChoice::Default);
        assert!(!security.capabilities().contains(&"CAP_NET_RAW".to_string()));
    }

    #[test]
    fn cap_names_are_canonical_and_checked() {
        let mut security = Security::default();
        security.add_cap("net_raw").unwrap();
        security.drop_cap("all").unwrap();
        assert_eq!(security.cap_add, ["CAP_NET_RAW"]);
        assert_eq!(security.cap_drop, ["ALL"]);
        assert_eq!(security.capabilities(), ["CAP_NET_RAW"]);
        assert!(security.add_cap("FLY").is_err());
    }
}
