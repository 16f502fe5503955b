//! Test fixtures: real buildpacks written as small shell scripts in a temporary builder
//! layout (`cnb/buildpacks/<escaped id>/<version>/`), with app, layers and platform
//! directories beside it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::env::Env;
use crate::exec::HostExecutor;
use crate::formats::order::{OrderEntry, OrderGroup};
use crate::formats::target::RunTarget;
use crate::id::BuildpackId;
use crate::{Context, Dirs};

pub struct Fixture {
    _root: tempfile::TempDir,
    pub dirs: Dirs,
}

impl Fixture {
    pub fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let at = |p: &str| {
            let dir = root.path().join(p);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        };
        let dirs = Dirs {
            app: at("workspace"),
            layers: at("layers"),
            platform: at("platform"),
            buildpacks: at("cnb/buildpacks"),
            build_config: None,
            scratch: at("tmp"),
        };
        Fixture { _root: root, dirs }
    }

    /// Writes a component buildpack: `detect` and `build` are shell script bodies.
    pub fn buildpack(&self, id: &str, api: &str, detect: &str, build: &str) -> PathBuf {
        self.buildpack_with(id, api, "", detect, build)
    }

    /// Like [`Fixture::buildpack`], with more `buildpack.toml` text (targets …).
    pub fn buildpack_with(
        &self,
        id: &str,
        api: &str,
        extra: &str,
        detect: &str,
        build: &str,
    ) -> PathBuf {
        let dir = self.bp_dir(id);
        std::fs::write(
            dir.join("buildpack.toml"),
            format!("api = \"{api}\"\n[buildpack]\nid = \"{}\"\nversion = \"{}\"\nhomepage = \"https://{}.test\"\n{extra}", split(id).0, split(id).1, split(id).0),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        for (name, body) in [("detect", detect), ("build", build)] {
            let path = dir.join("bin").join(name);
            std::fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    /// Writes a composite buildpack whose order is `groups` (`(id, optional)` each; ids
    /// may be `id@version`, as may the composite's).
    pub fn composite(&self, id: &str, groups: &[&[(&str, bool)]]) {
        let dir = self.bp_dir(id);
        let (bare, version) = split(id);
        let mut text =
            format!("api = \"0.10\"\n[buildpack]\nid = \"{bare}\"\nversion = \"{version}\"\n");
        for group in groups {
            text.push_str("[[order]]\n");
            for (member, optional) in *group {
                let (member, version) = split(member);
                text.push_str(&format!("[[order.group]]\nid = \"{member}\"\nversion = \"{version}\"\noptional = {optional}\n"));
            }
        }
        std::fs::write(dir.join("buildpack.toml"), text).unwrap();
    }

    fn bp_dir(&self, id: &str) -> PathBuf {
        let dir = self
            .dirs
            .buildpacks
            .join(BuildpackId::parse(split(id).0).unwrap().escaped())
            .join(split(id).1);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn app_file(&self, path: &str, contents: &str) {
        let path = self.dirs.app.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn platform_env(&self, name: &str, value: &str) {
        let dir = self.dirs.platform.join("env");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), value).unwrap();
    }

    pub fn layers(&self) -> &Path {
        &self.dirs.layers
    }

    pub fn target(&self) -> RunTarget {
        RunTarget {
            os: "linux".into(),
            ..RunTarget::default()
        }
        .complete(None)
    }

    /// A context over the fixture's directories, running buildpacks on the host.
    pub fn context(&self) -> Context<'_> {
        static EXECUTOR: HostExecutor = HostExecutor;
        Context::new(
            &self.dirs,
            &EXECUTOR,
            self.target(),
            Env::for_build(self.host_env()),
        )
    }

    /// The host environment tests give the lifecycle: a `PATH` for the scripts.
    pub fn host_env(&self) -> Vec<(String, String)> {
        vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), "/home/cnb".into()),
            ("NOT_ALLOWED".into(), "x".into()),
        ]
    }
}

/// `id@version` as id and version; a bare id is version 1.0.0.
pub fn split(spec: &str) -> (&str, &str) {
    spec.split_once('@').unwrap_or((spec, "1.0.0"))
}

/// An order of groups of `(id, optional)` (`id` or `id@version`).
pub fn order(groups: &[&[(&str, bool)]]) -> Vec<OrderGroup> {
    groups
        .iter()
        .map(|group| OrderGroup {
            group: group
                .iter()
                .map(|(id, optional)| OrderEntry {
                    id: BuildpackId::parse(split(id).0).unwrap(),
                    version: split(id).1.into(),
                    optional: *optional,
                })
                .collect(),
        })
        .collect()
}
