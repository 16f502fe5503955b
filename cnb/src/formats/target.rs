//! Targets: what a buildpack declares it runs on (`[[targets]]`, or the deprecated
//! `[[stacks]]`), what the run image is, the match between them (the reference
//! `TargetSatisfiedForBuild`) and the `CNB_TARGET_*` variables buildpacks see.

use serde::{Deserialize, Serialize};

/// An OS distribution (`/etc/os-release`'s `ID` and `VERSION_ID`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Distro {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

/// One `[[targets]]` entry of `buildpack.toml`. Empty fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Target {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
    /// The spec writes `variant`, the reference lifecycle reads `arch-variant`: both are
    /// accepted.
    #[serde(default, alias = "variant")]
    pub arch_variant: String,
    #[serde(default)]
    pub distros: Vec<Distro>,
}

/// The run image's target: from its config (`os`, `architecture`, `variant`) and its
/// `io.buildpacks.base.distro.*` labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTarget {
    pub os: String,
    pub arch: String,
    pub arch_variant: String,
    pub distro: Option<Distro>,
}

impl RunTarget {
    /// Fills what the image did not say as the reference lifecycle does: `os` defaults to
    /// `linux`, `arch` to this machine's, and a missing distro comes from the build image's
    /// `/etc/os-release` (its text, if the caller has one).
    pub fn complete(mut self, os_release: Option<&str>) -> RunTarget {
        if self.os.is_empty() {
            self.os = "linux".to_string();
        }
        if self.arch.is_empty() {
            self.arch = host_arch().to_string();
        }
        if self.distro.is_none() {
            if let Some(text) = os_release {
                let distro = parse_os_release(text);
                if !distro.name.is_empty() || !distro.version.is_empty() {
                    self.distro = Some(distro);
                }
            }
        }
        self
    }

    /// The `CNB_TARGET_*` variables (Buildpack API 0.10+): OS and architecture always, the
    /// rest when known.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("CNB_TARGET_OS".to_string(), self.os.clone()),
            ("CNB_TARGET_ARCH".to_string(), self.arch.clone()),
        ];
        let distro = self.distro.clone().unwrap_or_default();
        for (key, value) in [
            ("CNB_TARGET_ARCH_VARIANT", &self.arch_variant),
            ("CNB_TARGET_DISTRO_NAME", &distro.name),
            ("CNB_TARGET_DISTRO_VERSION", &distro.version),
        ] {
            if !value.is_empty() {
                vars.push((key.to_string(), value.clone()));
            }
        }
        vars
    }

    /// Whether a buildpack declaring `target` may build for this run image: OS, architecture
    /// and variant match where both sides say something, and if the buildpack lists distros
    /// the image has one of them.
    pub fn satisfies(&self, target: &Target) -> bool {
        fn matches(a: &str, b: &str) -> bool {
            a.is_empty() || b.is_empty() || a == b
        }
        if !matches(&self.os, &target.os)
            || !matches(&self.arch, &target.arch)
            || !matches(&self.arch_variant, &target.arch_variant)
        {
            return false;
        }
        if target.distros.is_empty() {
            return true;
        }
        let Some(distro) = &self.distro else {
            return false;
        };
        target
            .distros
            .iter()
            .any(|d| matches(&distro.name, &d.name) && matches(&distro.version, &d.version))
    }
}

/// This machine's architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// `ID` and `VERSION_ID` of an os-release file (values may be quoted).
pub fn parse_os_release(text: &str) -> Distro {
    let mut distro = Distro::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value
            .trim()
            .trim_matches('"')
            .trim_matches('\'')
            .to_string();
        match key.trim() {
            "ID" => distro.name = value,
            "VERSION_ID" => distro.version = value,
            _ => {}
        }
    }
    distro
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(os: &str, arch: &str, distro: Option<(&str, &str)>) -> RunTarget {
        RunTarget {
            os: os.into(),
            arch: arch.into(),
            arch_variant: String::new(),
            distro: distro.map(|(n, v)| Distro {
                name: n.into(),
                version: v.into(),
            }),
        }
    }

    #[test]
    fn empty_fields_match_anything() {
        let linux = Target {
            os: "linux".into(),
            ..Target::default()
        };
        assert!(run("linux", "amd64", None).satisfies(&linux));
        assert!(run("linux", "arm64", None).satisfies(&Target::default()));
        assert!(!run("windows", "amd64", None).satisfies(&linux));
        let arm = Target {
            arch: "arm64".into(),
            ..Target::default()
        };
        assert!(!run("linux", "amd64", None).satisfies(&arm));
    }

    #[test]
    fn listed_distros_need_the_image_to_have_one() {
        let ubuntu = Target {
            os: "linux".into(),
            distros: vec![Distro {
                name: "ubuntu".into(),
                version: "22.04".into(),
            }],
            ..Target::default()
        };
        assert!(!run("linux", "amd64", None).satisfies(&ubuntu));
        assert!(run("linux", "amd64", Some(("ubuntu", "22.04"))).satisfies(&ubuntu));
        assert!(!run("linux", "amd64", Some(("ubuntu", "24.04"))).satisfies(&ubuntu));
        assert!(run("linux", "amd64", Some(("ubuntu", ""))).satisfies(&ubuntu));
    }

    #[test]
    fn missing_run_image_data_is_completed() {
        let target =
            RunTarget::default().complete(Some("NAME=\"Debian\"\nID=debian\nVERSION_ID=\"12\"\n"));
        assert_eq!(target.os, "linux");
        assert_eq!(target.arch, host_arch());
        assert_eq!(
            target.distro,
            Some(Distro {
                name: "debian".into(),
                version: "12".into()
            })
        );
        let env = target.env();
        assert!(env.contains(&("CNB_TARGET_DISTRO_NAME".into(), "debian".into())));
        assert!(!env.iter().any(|(k, _)| k == "CNB_TARGET_ARCH_VARIANT"));
        // Busybox has no os-release: no distro, no distro variables.
        let bare = RunTarget::default().complete(None);
        assert_eq!(bare.distro, None);
        assert_eq!(bare.env().len(), 2);
    }
}
