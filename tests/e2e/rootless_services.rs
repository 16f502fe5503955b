//! Container services of an unprivileged user under the supervisor: the
//! per-service init runs each service in a user namespace of the user's
//! own, where root's files show as the overflow uid; the shim must still
//! start the container there, and `logs`, `exec` and `down` work on it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use locald_image::testing::{busybox_image, ConfigOverride};

use crate::containers::http_get;
use crate::harness::{account, give, locald_as_user, pids_with_arg};

/// An unprivileged user's home, with its own runtime directory and
/// `locald.toml` holding `toml`.
pub(crate) struct UserProject {
    pub(crate) user: (u32, u32),
    home: tempfile::TempDir,
    runtime_dir: PathBuf,
}

impl UserProject {
    /// With the busybox image imported as `bb:1`.
    pub(crate) fn new(toml: &str) -> Self {
        let project = Self::without_images(toml);
        let layout = project.home.path().join("layout");
        busybox_image(&ConfigOverride::default())
            .unwrap()
            .write_layout(&layout, "latest")
            .unwrap();
        give(&layout, project.user);
        project.ok(&["image", "import", "layout", "--name", "bb:1"]);
        project
    }

    /// With an empty image store (for host services only).
    pub(crate) fn without_images(toml: &str) -> Self {
        let user = account("locald-test");
        let home = tempfile::Builder::new()
            .prefix("locald-rootless-service-")
            .tempdir()
            .unwrap();
        let runtime_dir = home.path().join("run");
        std::fs::create_dir(&runtime_dir).unwrap();
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(home.path().join("locald.toml"), toml).unwrap();
        give(home.path(), user);
        UserProject {
            user,
            home,
            runtime_dir,
        }
    }

    /// The user's home (the project's directory).
    pub(crate) fn home(&self) -> &Path {
        self.home.path()
    }

    /// The pid the user's running supervisor wrote in its pid file.
    pub(crate) fn supervisor_pid(&self) -> i32 {
        let pid_file = self.home.path().join(".locald/supervisor.pid");
        let text = std::fs::read_to_string(pid_file).expect("a supervisor pid file");
        text.trim().parse().expect("a pid")
    }

    /// `locald ARGS` as the user: exit code, stdout, stderr.
    pub(crate) fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        locald_as_user(self.user, self.home.path(), &self.runtime_dir, args)
    }

    /// `locald ARGS` as the user, which must succeed: its stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (code, stdout, stderr) = self.run(args);
        assert_eq!(code, Some(0), "locald {args:?}\n{stdout}{stderr}");
        stdout
    }

    pub(crate) fn bundles_left(&self) -> Vec<std::ffi::OsString> {
        let bundles: &Path = &self.runtime_dir.join("locald/bundles");
        std::fs::read_dir(bundles)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    }
}

/// A container service answering HTTP on `$PORT`, health-checked.
fn web_service(marker: u32) -> String {
    format!(
        r#"
[services.web]
image = "bb:1"
command = "echo started-{marker}; mkdir /www{marker} && echo hello-{marker} > /www{marker}/index.html && exec httpd -f -p $PORT -h /www{marker}"
health = {{ http = "/" }}
"#
    )
}

#[test]
fn a_rootless_container_service_starts_answers_logs_and_stops() {
    let project = UserProject::new(&web_service(978101));
    project.ok(&["up", "-d", "--wait", "--timeout", "30s"]);
    let status: serde_json::Value =
        serde_json::from_str(&project.ok(&["status", "--json"])).unwrap();
    let web = &status[0];
    assert_eq!(web["state"], "healthy", "{status}");
    let port = u16::try_from(web["port"].as_u64().expect("a port")).unwrap();
    let response = http_get(port, "/");
    assert!(response.ends_with("\r\n\r\nhello-978101\n"), "{response}");
    assert!(
        project.ok(&["logs", "web"]).contains("started-978101"),
        "the container's output is in the log"
    );
    project.ok(&["down"]);
    assert!(
        pids_with_arg("/www978101").is_empty(),
        "httpd survived down"
    );
    assert!(
        project.bundles_left().is_empty(),
        "{:?}",
        project.bundles_left()
    );
}

/// `kill -9` of a rootless supervisor: the container's processes die with
/// the service's init (the container's PID namespace is inside the init's),
/// and the next `up` sweeps the bundle the dead one left.
#[test]
fn a_killed_rootless_supervisors_container_dies_and_is_swept() {
    let project = UserProject::new(
        "[services.cache]\nimage = \"bb:1\"\ncommand = \"exec sleep 978120\"\nhealth = \"none\"\n",
    );
    project.ok(&["up", "-d", "--wait", "--timeout", "30s"]);
    crate::harness::one_pid("978120");
    let supervisor = nix::unistd::Pid::from_raw(project.supervisor_pid());
    nix::sys::signal::kill(supervisor, nix::sys::signal::Signal::SIGKILL).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !pids_with_arg("978120").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(pids_with_arg("978120").is_empty(), "the container survived");
    assert!(
        !project.bundles_left().is_empty(),
        "the dead supervisor's bundle (and its lock file) stay until a sweep"
    );
    project.ok(&["up", "-d", "--wait", "--timeout", "30s"]);
    crate::harness::one_pid("978120");
    project.ok(&["down"]);
    assert!(pids_with_arg("978120").is_empty());
    assert!(
        project.bundles_left().is_empty(),
        "{:?}",
        project.bundles_left()
    );
}
