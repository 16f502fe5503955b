//! What detection and the build share: where the directories are, what runs buildpack
//! executables, the bounds, the run image's target, and the environment buildpacks start
//! from; and how one buildpack executable is invoked from them.

use std::ffi::OsString;
use std::path::Path;

use crate::env::{Env, EnvError};
use crate::exec::{Executor, Invocation};
use crate::formats::descriptor::Descriptor;
use crate::formats::target::RunTarget;
use crate::read::Limits;
use crate::Dirs;

/// The lifecycle's inputs for one build.
pub struct Context<'a> {
    pub dirs: &'a Dirs,
    pub executor: &'a dyn Executor,
    pub limits: Limits,
    /// The run image's target, completed ([`RunTarget::complete`]).
    pub target: RunTarget,
    /// `CNB_EXEC_ENV` (Buildpack API 0.12+), if the platform sets one.
    pub exec_env: Option<String>,
    /// The environment the first buildpack starts from ([`Env::for_build`]).
    pub env: Env,
}

impl<'a> Context<'a> {
    pub fn new(
        dirs: &'a Dirs,
        executor: &'a dyn Executor,
        target: RunTarget,
        env: Env,
    ) -> Context<'a> {
        Context {
            dirs,
            executor,
            limits: Limits::DEFAULT,
            target,
            exec_env: None,
            env,
        }
    }

    /// The invocation of `descriptor`'s `bin/<executable>` with `args`, in the app
    /// directory: `env` with the user's `<platform>/env` (unless the buildpack has
    /// `clear-env`) and the builder's build-config env, `CNB_BUILDPACK_DIR`, the phase's
    /// `cnb` variables (Buildpack API 0.8+), the target (0.10+) and `CNB_EXEC_ENV` (0.12+).
    pub(crate) fn invocation(
        &self,
        descriptor: &Descriptor,
        env: &Env,
        executable: &str,
        args: &[&Path],
        cnb: &[(&str, &Path)],
    ) -> Result<Invocation, EnvError> {
        let platform = (!descriptor.clear_env).then_some(self.dirs.platform.as_path());
        let mut vars = env
            .with_overrides(platform, self.dirs.build_config.as_deref(), &self.limits)?
            .vars();
        let api = descriptor.api;
        vars.push(("CNB_BUILDPACK_DIR".into(), path_string(&descriptor.dir)));
        if api.at_least(0, 8) {
            vars.extend(cnb.iter().map(|(k, v)| (k.to_string(), path_string(v))));
        }
        if api.at_least(0, 10) {
            vars.extend(self.target.env());
        }
        if let Some(exec_env) = self.exec_env.as_deref().filter(|_| api.at_least(0, 12)) {
            vars.push(("CNB_EXEC_ENV".into(), exec_env.to_string()));
        }
        Ok(Invocation {
            program: descriptor.dir.join("bin").join(executable),
            args: args.iter().map(OsString::from).collect(),
            env: vars,
            cwd: self.dirs.app.clone(),
        })
    }

    /// A fresh directory under the scratch directory, removed when dropped.
    pub(crate) fn scratch(&self, prefix: &str) -> std::io::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.dirs.scratch)
    }
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Fixture;

    fn vars(f: &Fixture, api: &str, exec_env: Option<&str>) -> Vec<String> {
        let dir = f.buildpack(&format!("test/api-{}", api.replace('.', "-")), api, "", "");
        let descriptor = Descriptor::read(&dir, &Limits::DEFAULT).unwrap();
        let mut context = f.context();
        context.exec_env = exec_env.map(String::from);
        let plan = f.dirs.scratch.join("plan.toml");
        let invocation = context
            .invocation(
                &descriptor,
                &context.env,
                "detect",
                &[&plan],
                &[("CNB_BP_PLAN_PATH", &plan)],
            )
            .unwrap();
        assert_eq!(invocation.program, dir.join("bin/detect"));
        assert_eq!(invocation.args, [plan.as_os_str()]);
        assert_eq!(invocation.cwd, f.dirs.app);
        invocation
            .env
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with("CNB_"))
            .collect()
    }

    #[test]
    fn cnb_variables_follow_the_buildpack_api() {
        let f = Fixture::new();
        assert_eq!(vars(&f, "0.7", Some("test")), ["CNB_BUILDPACK_DIR"]);
        assert_eq!(
            vars(&f, "0.9", None),
            ["CNB_BUILDPACK_DIR", "CNB_BP_PLAN_PATH"]
        );
        assert_eq!(
            vars(&f, "0.11", Some("test")),
            [
                "CNB_BUILDPACK_DIR",
                "CNB_BP_PLAN_PATH",
                "CNB_TARGET_OS",
                "CNB_TARGET_ARCH"
            ]
        );
        assert_eq!(
            vars(&f, "0.12", Some("test")),
            [
                "CNB_BUILDPACK_DIR",
                "CNB_BP_PLAN_PATH",
                "CNB_TARGET_OS",
                "CNB_TARGET_ARCH",
                "CNB_EXEC_ENV"
            ]
        );
        assert_eq!(
            vars(&f, "0.12", None).last().map(String::as_str),
            Some("CNB_TARGET_ARCH")
        );
    }
}
