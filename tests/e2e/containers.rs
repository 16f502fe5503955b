//! Containers without a daemon, end to end: pull from a real registry (Debian's
//! `docker-registry` on 127.0.0.1), the shared store, and `container run`
//! through the embedded runtime. Images are built by the fixtures from the
//! host's static busybox; nothing reaches the internet.

use std::path::Path;
use std::time::Duration;

use locald_image::testing::{
    busybox_image, malicious_image, push_image, BuiltImage, ConfigOverride, MaliciousKind,
    TestRegistry,
};

use crate::harness::{one_pid, pids_with_arg, service_field, Project, Run};

/// A project with its own image store.
fn project() -> (Project, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("data dir");
    (Project::new(), data)
}

fn with_store(run: Run, data: &Path) -> Run {
    run.env("LOCALD_DATA_DIR", data.to_str().unwrap())
}

pub(crate) fn push(registry: &TestRegistry, name_tag: &str, image: &BuiltImage) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(push_image(registry.addr(), name_tag, image))
        .expect("push fixture image");
}

/// Imports `image` as `name` into the store at `data`, without a registry.
fn import(project: &Project, data: &Path, name: &str, image: &BuiltImage) {
    let layout = project
        .path()
        .join(format!("layout-{}", name.replace([':', '/'], "-")));
    image.write_layout(&layout, "latest").expect("write layout");
    with_store(
        project.locald(["image", "import", layout.to_str().unwrap(), "--name", name]),
        data,
    )
    .success();
}

/// A project whose store holds the plain busybox image as `bb:1`.
fn project_with_busybox() -> (Project, tempfile::TempDir) {
    let (project, data) = project();
    let image = busybox_image(&ConfigOverride::default()).unwrap();
    import(&project, data.path(), "bb:1", &image);
    (project, data)
}

#[test]
fn pull_once_then_run_from_the_store_without_the_registry() {
    let (project, data) = project();
    let registry = TestRegistry::start();
    push(
        &registry,
        "tools/busybox:1",
        &busybox_image(&ConfigOverride::default()).unwrap(),
    );
    let reference = format!("{}/tools/busybox:1", registry.addr());

    with_store(project.locald(["image", "pull", &reference]), data.path())
        .success()
        .stderr_has("2 blobs downloaded, 0 already stored");
    with_store(project.locald(["image", "pull", &reference]), data.path())
        .success()
        .stderr_has("0 blobs downloaded, 2 already stored");

    // The registry is gone: the run uses the stored image, fetching nothing.
    drop(registry);
    with_store(
        project.locald([
            "container",
            "run",
            &reference,
            "echo",
            "hello from the store",
        ]),
        data.path(),
    )
    .success()
    .stdout_is("hello from the store\n");
    with_store(project.locald(["image", "ls"]), data.path())
        .success()
        .stdout_has(&reference);
}

#[test]
fn output_and_exit_codes_pass_through() {
    let (project, data) = project_with_busybox();
    let out = with_store(
        project.locald([
            "container",
            "run",
            "bb:1",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 5",
        ]),
        data.path(),
    )
    .code(5);
    out.stdout_is("out\n").stderr_has("err\n");
    with_store(
        project.locald([
            "container",
            "run",
            "bb:1",
            "sh",
            "-c",
            "sleep 60 & kill -KILL $!; wait $!",
        ]),
        data.path(),
    )
    .code(128 + 9);
}

/// As `docker run`: 127 for a command the image does not have, 126 for one
/// it cannot execute, with a short message and no runtime internals.
#[test]
fn a_command_not_found_or_not_executable_exits_127_or_126() {
    let (project, data) = project_with_busybox();
    with_store(
        project.locald(["container", "run", "bb:1", "nosuch-963320", "arg"]),
        data.path(),
    )
    .code(127)
    .stderr_is("locald: exec: nosuch-963320: command not found\n");
    with_store(
        project.locald(["container", "run", "bb:1", "/etc/passwd"]),
        data.path(),
    )
    .code(126)
    .stderr_is("locald: exec: /etc/passwd: permission denied\n");
    with_store(
        project.locald(["container", "run", "bb:1", "/etc"]),
        data.path(),
    )
    .code(126)
    .stderr_is("locald: exec: /etc: is a directory\n");
}

/// `--rm` is accepted for Docker habits and is what always happens: the
/// container is gone once the run returns, with or without it.
#[test]
fn rm_is_accepted_and_no_container_outlives_its_run() {
    let (project, data) = project_with_busybox();
    for rm in [&["--rm"][..], &[]] {
        let mut args = vec!["container", "run"];
        args.extend_from_slice(rm);
        args.extend(["bb:1", "echo", "987704"]);
        with_store(project.locald(args), data.path())
            .success()
            .stdout_is("987704\n");
        assert!(bundles_with("987704").is_empty(), "bundle left behind");
    }
    let help = project.locald(["container", "run", "--help"]).success();
    help.stdout_has("--rm").stdout_has("always done");
}

#[test]
fn stdin_is_forwarded_only_with_dash_i() {
    let (project, data) = project_with_busybox();
    with_store(
        project.locald(["container", "run", "-i", "bb:1", "cat"]),
        data.path(),
    )
    .stdin("line one\nline two\n")
    .success()
    .stdout_is("line one\nline two\n");
    with_store(
        project.locald(["container", "run", "bb:1", "cat"]),
        data.path(),
    )
    .stdin("not forwarded\n")
    .success()
    .stdout_is("");
}

#[test]
fn entrypoint_cmd_env_and_workdir_follow_docker() {
    let (project, data) = project();
    let image = busybox_image(&ConfigOverride {
        entrypoint: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo \"$0|$FOO|$(pwd)\"".into(),
        ]),
        cmd: Some(vec!["from-cmd".into()]),
        env: Some(vec!["PATH=/bin:/usr/bin".into(), "FOO=from-image".into()]),
        working_dir: Some("/srv/app".into()),
        user: None,
    })
    .unwrap();
    import(&project, data.path(), "semantics:1", &image);
    let run = |args: &[&str]| {
        let mut all = vec!["container", "run"];
        all.extend_from_slice(args);
        with_store(project.locald(all), data.path())
            .success()
            .stdout
            .clone()
    };
    assert_eq!(run(&["semantics:1"]), "from-cmd|from-image|/srv/app\n");
    assert_eq!(
        run(&["semantics:1", "from-cli"]),
        "from-cli|from-image|/srv/app\n"
    );
    assert_eq!(
        run(&["-e", "FOO=from-cli", "-w", "/tmp", "semantics:1"]),
        "from-cmd|from-cli|/tmp\n"
    );
    assert_eq!(
        run(&["--entrypoint", "echo", "semantics:1", "replaced"]),
        "replaced\n"
    );
}

#[test]
fn interactive_terminal_through_a_pty() {
    let (project, data) = project_with_busybox();
    let (success, stdout) = crate::harness::in_a_terminal(
        &project,
        "container run -it bb:1 sh -c 'tty; stty size; echo interactive-ok'",
        &[("LOCALD_DATA_DIR", data.path().to_str().unwrap())],
    );
    assert!(success, "{stdout}");
    assert!(
        stdout.contains("/dev/pts/"),
        "the container has a terminal: {stdout}"
    );
    assert!(stdout.contains("interactive-ok"), "{stdout}");
}

#[test]
fn a_malicious_image_is_refused_and_nothing_is_stored() {
    let (project, data) = project();
    let registry = TestRegistry::start();
    for kind in MaliciousKind::ALL {
        let name = format!("evil/{}:1", kind.name());
        push(&registry, &name, &malicious_image(kind).unwrap());
        let reference = format!("{}/{name}", registry.addr());
        with_store(project.locald(["image", "pull", &reference]), data.path())
            .code(1)
            .stderr_has("escapes");
    }
    with_store(project.locald(["image", "ls", "--json"]), data.path())
        .success()
        .stdout_is("[]\n");
}

/// Bundle directories whose runtime spec mentions `marker`.
fn bundles_with(marker: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(locald_runtime::runtime_root().join("bundles")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("config.json"))
                .is_ok_and(|spec| spec.contains(marker))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn ctrl_c_stops_the_container_and_leaves_nothing_behind() {
    let (project, data) = project_with_busybox();
    let mut child = with_store(
        // PID 1 of a container ignores signals it has no handler for, as in
        // Docker: the container's init traps INT like a well-behaved server.
        project.locald([
            "container",
            "run",
            "bb:1",
            "sh",
            "-c",
            "trap 'exit 130' INT; sleep 987700 & wait",
        ]),
        data.path(),
    )
    .process_group()
    .spawn();
    // The sleeper runs once the trap is set.
    project.wait_for("the container", Duration::from_secs(10), |_| {
        sleepers("987700") == 1
    });
    let id = bundles_with("987700").remove(0);
    // Ctrl-C at a terminal signals the whole foreground process group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(bundles_with("987700").is_empty(), "bundle left behind");
    assert!(
        !locald_runtime::state_root().join(&id).exists(),
        "state left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "mount left behind");
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        assert!(
            !hierarchy.path().join("locald").join(&id).exists(),
            "cgroup left behind in {}",
            hierarchy.path().display()
        );
    }
    assert_eq!(sleepers("987700"), 0, "container process survived");
}

/// How many processes have `marker` as one of their arguments.
fn sleepers(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == marker.as_bytes()))
        })
        .count()
}

/// A container service under the supervisor: it gets a `$PORT` on the host
/// network, passes its HTTP health check, gates its dependent, is restarted
/// when its process is killed, and `down` leaves no process and no bundle.
#[test]
fn container_service_is_health_gated_restarted_and_stopped_cleanly() {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        r#"
# The web server runs in a container of the stored busybox image.
[services.web]
image = "bb:1"
# The document root doubles as a marker the test finds the process by.
command = "mkdir /www987801 && echo hello from the container > /www987801/index.html && exec httpd -f -p $PORT -h /www987801"
health = { http = "/" }

[services.client]
command = "echo started after $WEB_URL; sleep 987802"
depends_on = ["web"]
env = { WEB_URL = "${services.web.url}" }
"#,
    );
    let port = up_healthy(&project, data.path(), "web");
    let page = http_get(port, "/index.html");
    assert!(page.contains("hello from the container"), "{page}");
    // The dependent started, and saw the container's URL.
    project.wait_for("client", Duration::from_secs(10), |_| {
        pids_with_arg("987802").len() == 1
    });
    let logs = project.locald(["logs", "client"]).success();
    assert!(
        logs.stdout
            .contains(&format!("started after http://127.0.0.1:{port}")),
        "{logs}"
    );

    // Kill the server inside the container: the supervisor restarts it.
    let servers = pids_with_arg("/www987801");
    assert_eq!(servers.len(), 1, "one httpd: {servers:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(servers[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("the restart", Duration::from_secs(20), |p| {
        service_field(p, "web", "restarts") == 1 && service_field(p, "web", "state") == "healthy"
    });
    let restarted = pids_with_arg("/www987801");
    assert_eq!(restarted.len(), 1, "one httpd again: {restarted:?}");
    assert_ne!(restarted, servers);
    assert!(http_get(port, "/index.html").contains("hello from the container"));
    assert_eq!(bundles_with("987801").len(), 1, "one bundle: the live one");

    project.locald(["down"]).success();
    assert!(
        pids_with_arg("/www987801").is_empty(),
        "httpd survived down"
    );
    assert!(pids_with_arg("987802").is_empty(), "client survived down");
    assert!(bundles_with("987801").is_empty(), "bundle left behind");
}

/// `up -d --wait` with the store at `data`; `service` must then be healthy: its port.
pub(crate) fn up_healthy(project: &Project, data: &Path, service: &str) -> u16 {
    with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "30s"]),
        data,
    )
    .success();
    assert_eq!(service_field(project, service, "state"), "healthy");
    service_field(project, service, "port")
        .as_u64()
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or_else(|| panic!("{service} has no port"))
}

/// The body of `GET path` from 127.0.0.1:port (HTTP/1.0, read to the end).
pub(crate) fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// `service add container` appends the service to locald.toml without
/// disturbing a byte of what the user wrote, and the running supervisor
/// starts it at once, leaving the other services alone.
#[test]
fn service_add_container_keeps_comments_and_starts_in_the_running_supervisor() {
    let (project, data) = project_with_busybox();
    let original = r#"# The shop: hand-written, comments and all.
[project]
name = "shop"   # short name

[services.api]  # the API
command = "sleep 987501"    # stands in for a server
health = "none"
"#;
    project.write("locald.toml", original);
    with_store(project.locald(["up", "-d", "--wait"]), data.path()).success();
    let api = one_pid("987501");

    let command = "mkdir /www987502 && echo added > /www987502/index.html && exec httpd -f -p $PORT -h /www987502";
    with_store(
        project.locald([
            "service",
            "add",
            "container",
            "bb:1",
            "--name",
            "web",
            "--command",
            command,
        ]),
        data.path(),
    )
    .success()
    .stderr_is(&format!(
        "locald: added service `web` to {}\nlocald: started `web` (see `locald status`)\n",
        project.path().join("locald.toml").display()
    ));
    assert_eq!(
        project.read("locald.toml"),
        format!("{original}\n[services.web]\nimage = \"bb:1\"\ncommand = {command:?}\n")
    );

    project.wait_for("web", Duration::from_secs(20), |p| {
        service_field(p, "web", "state") == "healthy"
    });
    let port = service_field(&project, "web", "port")
        .as_u64()
        .expect("a port") as u16;
    // Without a health check or dependents, "healthy" means started: the
    // server may still be binding.
    project.wait_for("the server", Duration::from_secs(10), |_| {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(http_get(port, "/index.html").contains("added"));
    assert_eq!(one_pid("987501"), api, "the API kept running");
    project.locald(["down"]).success();
    assert!(pids_with_arg("/www987502").is_empty());
}

/// A project with the busybox image and a container service `db` (running
/// `sleep MARKER`, with env and a volume `./seed` holding `schema.sql`),
/// then `more` in its locald.toml.
fn project_with_db_service(marker: &str, more: &str) -> (Project, tempfile::TempDir) {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        &format!(
            r#"
[services.db]
image = "bb:1"
command = "sleep {marker}"
env = {{ GREETING = "hello on ${{services.db.port}}" }}
volumes = ["./seed:/seed:ro"]
{more}"#
        ),
    );
    project.write("seed/schema.sql", "create table t;\n");
    (project, data)
}

/// `locald run SVC -- CMD` for a container service runs CMD in a new
/// container of the service's image, with the service's environment (and
/// not the host's), its volumes, its port, and stdin forwarded.
#[test]
fn run_in_a_container_service_uses_its_image_env_and_volumes() {
    let (project, data) = project_with_db_service("987503", "");
    let script = "echo \"$GREETING|$PORT|${LEAK:-no leak}|$(cat /seed/schema.sql)|$(cat)|$(hostname)\"; exit 7";
    let out = with_store(
        project.locald(["run", "db", "--", "sh", "-c", script]),
        data.path(),
    )
    .env("LEAK", "host value")
    .stdin("typed in")
    .code(7);
    let fields: Vec<&str> = out.stdout.trim_end().split('|').collect();
    let port: u16 = fields[1].parse().expect("PORT is a number");
    assert_eq!(
        fields,
        [
            format!("hello on {port}").as_str(),
            fields[1],
            "no leak",
            "create table t;",
            "typed in",
            "db",
        ],
        "{out}"
    );
    // One word is a shell line, run by the container's shell.
    with_store(
        project.locald(["run", "db", "--", "echo $GREETING"]),
        data.path(),
    )
    .success()
    .stdout_is(&format!("hello on {port}\n"));
    // No service was started for it.
    assert!(pids_with_arg("987503").is_empty());
    assert!(bundles_with("schema.sql").is_empty() && bundles_with("/seed").is_empty());
}

/// A task with `service` set to a container service runs as `locald run`
/// does there: a new container of its image, with its env and volumes, the
/// task's arguments appended to its line.
#[test]
fn a_task_in_a_container_service_runs_in_a_new_container_of_it() {
    let (project, data) = project_with_db_service(
        "971110",
        r#"
[tasks]
schema = { command = 'echo "$GREETING|$(cat /seed/schema.sql)|$(hostname)|${LEAK:-no leak}"; printf "[%s]"', service = "db" }
"#,
    );
    let out = with_store(project.locald(["task", "schema", "a b", "-x"]), data.path())
        .env("LEAK", "host value")
        .success();
    let port = out
        .stdout
        .split('|')
        .next()
        .unwrap()
        .trim_start_matches("hello on ");
    assert!(port.parse::<u16>().is_ok(), "{out}");
    assert_eq!(
        out.stdout,
        format!("hello on {port}|create table t;|db|no leak\n[a b][-x]"),
        "{out}"
    );
    assert!(pids_with_arg("971110").is_empty(), "no service was started");
}

/// The unprivileged account rootless tests run as (created when missing).
const ROOTLESS_USER: &str = "locald-test";

/// `(uid, gid)` of [`ROOTLESS_USER`], creating it when needed.
fn rootless_user() -> (u32, u32) {
    crate::harness::account(ROOTLESS_USER)
}

/// Rootless mode through the CLI: an unprivileged user imports an image
/// into their own store and runs a container in a user namespace, where
/// they are root; files the container writes to a volume belong to them on
/// the host; nothing is left in their runtime directory afterwards.
#[test]
fn rootless_container_run_as_an_unprivileged_user() {
    use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};

    let (uid, gid) = rootless_user();
    let home = tempfile::Builder::new()
        .prefix("locald-rootless-")
        .tempdir()
        .unwrap();
    let runtime_dir = home.path().join("run");
    let volume = home.path().join("vol");
    let layout = home.path().join("layout");
    std::fs::create_dir(&runtime_dir).unwrap();
    std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir(&volume).unwrap();
    busybox_image(&ConfigOverride::default())
        .unwrap()
        .write_layout(&layout, "latest")
        .unwrap();
    for entry in walk(home.path()) {
        lchown(&entry, Some(uid), Some(gid)).unwrap();
    }
    let as_user =
        |args: &[&str]| crate::harness::locald_as_user((uid, gid), home.path(), &runtime_dir, args);

    let (code, _, stderr) = as_user(&["image", "import", "layout", "--name", "bb:1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let volume_arg = format!("{}:/vol", volume.display());
    let (code, stdout, stderr) = as_user(&[
        "container",
        "run",
        "-v",
        &volume_arg,
        "bb:1",
        "sh",
        "-c",
        "id -u; echo written > /vol/out; exit 4",
    ]);
    assert_eq!(code, Some(4), "{stdout}{stderr}");
    assert_eq!(stdout, "0\n", "root inside the user namespace\n{stderr}");
    // Another user: the caller is mapped to it instead of root.
    let (code, stdout, stderr) = as_user(&[
        "container",
        "run",
        "--user",
        "979410:979411",
        "bb:1",
        "sh",
        "-c",
        "id -u; id -g; stat -c %u /bin/sh",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "979410\n979411\n979410\n", "{stderr}");
    let written = volume.join("out");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "written\n");
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), uid);
    // The user's store and runtime directory are theirs, and left clean.
    let store = home.path().join(".local/share/locald");
    assert_eq!(std::fs::metadata(&store).unwrap().uid(), uid);
    let bundles = runtime_dir.join("locald/bundles");
    let left: Vec<_> = std::fs::read_dir(&bundles)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "bundles left behind: {left:?}");
}

/// Every path under `root`, `root` included.
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut paths = vec![root.to_path_buf()];
    let mut index = 0;
    while index < paths.len() {
        if paths[index].is_dir() && !paths[index].is_symlink() {
            let children: Vec<_> = std::fs::read_dir(&paths[index])
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            paths.extend(children);
        }
        index += 1;
    }
    paths
}

/// `kill -9` of a supervisor running a container service: the container's
/// processes die with it, and the next `up` sweeps the bundle, state and
/// cgroups the dead one left.
#[test]
fn a_killed_supervisors_container_leaves_nothing_after_the_next_up() {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        r#"
[services.cache]
image = "bb:1"
command = "exec sleep 987506"
"#,
    );
    with_store(project.locald(["up", "-d", "--wait"]), data.path()).success();
    one_pid("987506");
    let old = bundles_with("987506");
    assert_eq!(old.len(), 1, "{old:?}");
    let supervisor: i32 = project
        .read(".locald/supervisor.pid")
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("the container's end", Duration::from_secs(10), |_| {
        pids_with_arg("987506").is_empty()
    });

    with_store(project.locald(["up", "-d", "--wait"]), data.path()).success();
    let now = bundles_with("987506");
    assert_eq!(now.len(), 1, "only the new container's bundle: {now:?}");
    assert_ne!(now, old);
    assert!(
        !locald_runtime::state_root().join(&old[0]).exists(),
        "state of the dead container"
    );
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = hierarchy.path().join("locald").join(&old[0]);
        assert!(!dir.exists(), "cgroup left: {}", dir.display());
    }
    project.locald(["down"]).success();
    assert!(bundles_with("987506").is_empty());
}

/// An image a running container uses keeps its root filesystem: `image rm`
/// refuses naming the container, and `image prune` keeps the unpacked image
/// once nameless (here: its name now points to another image), saying why.
/// Once the container is gone, both work.
#[test]
fn images_in_use_are_neither_removed_nor_pruned() {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        r#"
[services.cache]
image = "bb:1"
command = "exec sleep 987507"
"#,
    );
    with_store(project.locald(["up", "-d", "--wait"]), data.path()).success();
    one_pid("987507");
    let rootfs_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(data.path().join("images/rootfs"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    };
    let used = rootfs_dirs();
    assert_eq!(used.len(), 1, "{used:?}");

    with_store(project.locald(["image", "rm", "bb:1"]), data.path())
        .code(1)
        .stderr_has("is in use by container")
        .stderr_has("service cache of project");

    // `bb:1` now names another image: the running one is nameless.
    let other = busybox_image(&ConfigOverride {
        cmd: Some(vec!["true".into()]),
        ..ConfigOverride::default()
    })
    .unwrap();
    import(&project, data.path(), "bb:1", &other);
    with_store(project.locald(["image", "prune"]), data.path())
        .success()
        .stderr_has("and 0 unpacked images")
        .stderr_has("kept docker.io/library/bb:1")
        .stderr_has("in use by container");
    assert!(
        used[0].join("bin/busybox").exists(),
        "the running rootfs was pruned"
    );
    assert_eq!(pids_with_arg("987507").len(), 1, "the container died");

    project.locald(["down"]).success();
    with_store(project.locald(["image", "prune"]), data.path())
        .success()
        .stderr_has("1 unpacked images");
    assert!(!used[0].exists());
    with_store(project.locald(["image", "rm", "bb:1"]), data.path()).success();
}

/// `image rm A B` removes every image it can and says each it cannot (exit
/// 1); `image prune` counts the unpacked trees in the space it frees;
/// `image import` says how to name what it cannot name itself.
#[test]
fn image_rm_prune_and_import_report_what_they_did() {
    let (project, data) = project_with_busybox();
    let image = busybox_image(&ConfigOverride::default()).unwrap();
    // A layout tagged `1.5` only: its tag is used, and asked for a name.
    let layout = project.path().join("tagged");
    image.write_layout(&layout, "1.5").expect("write layout");
    let layout = layout.to_str().unwrap();
    with_store(project.locald(["image", "import", layout]), data.path())
        .code(1)
        .stderr_has("(only its tag, `1.5`)")
        .stderr_has("with --name (e.g. --name myapp:1.5)");
    with_store(
        project.locald(["image", "import", layout, "--name", "local/app"]),
        data.path(),
    )
    .success()
    .stderr_has("imported docker.io/local/app:1.5");
    std::fs::write(project.path().join("root.tar"), b"").unwrap();
    with_store(project.locald(["image", "import", "root.tar"]), data.path())
        .code(1)
        .stderr_has("root.tar is a root filesystem tarball")
        .stderr_has("--name");

    let out = with_store(
        project.locald(["image", "rm", "bb:1", "nosuch:1", "local/app:1.5"]),
        data.path(),
    )
    .code(1);
    out.stderr_has("removed bb:1\n")
        .stderr_has("error: ")
        .stderr_has("nosuch")
        .stderr_has("removed local/app:1.5\n");
    let out = with_store(project.locald(["image", "ls"]), data.path()).success();
    assert_eq!(out.stdout.lines().count(), 1, "only the header: {out}");

    // The busybox binary alone is about 1 MB, in its blob and unpacked.
    let out = with_store(project.locald(["image", "prune"]), data.path()).success();
    let freed: f64 = out
        .stderr
        .split('(')
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" MB freed)\n"))
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(freed >= 2.0, "{out}");
}

/// `container run` holds its image too: `image rm` refuses while it runs and
/// works once it has ended (here by Ctrl-C, as a user would end it).
#[test]
fn image_rm_waits_for_a_running_container_run() {
    /// Ends the run like Ctrl-C does, also when an assertion fails first.
    struct Interrupt(std::process::Child);
    impl Drop for Interrupt {
        fn drop(&mut self) {
            let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGINT);
            let _ = self.0.wait();
        }
    }

    let (project, data) = project_with_busybox();
    let run = Interrupt(
        with_store(
            project.locald(["container", "run", "bb:1", "sleep", "987508"]),
            data.path(),
        )
        .process_group()
        .spawn(),
    );
    // Both `locald container run … 987508` and the container's `sleep 987508`:
    // the container runs (and holds its lease) only once the second is there.
    project.wait_for("the container's sleep", Duration::from_secs(10), |_| {
        pids_with_arg("987508").len() == 2
    });
    with_store(project.locald(["image", "rm", "bb:1"]), data.path())
        .code(1)
        .stderr_has("is in use by container")
        .stderr_has("`locald container run docker.io/library/bb:1`");
    drop(run);
    assert!(pids_with_arg("987508").is_empty());
    with_store(project.locald(["image", "rm", "bb:1"]), data.path()).success();
}

/// `Field: value` lines of a container's `/proc/self/status`, for the fields the confinement
/// tests read.
fn confinement(status: &str) -> std::collections::BTreeMap<String, String> {
    status
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(field, _)| matches!(*field, "NoNewPrivs" | "Seccomp" | "CapEff" | "CapBnd"))
        .map(|(field, value)| (field.to_string(), value.trim().to_string()))
        .collect()
}

/// Whether a `CapEff`/`CapBnd` mask holds CAP_NET_RAW (bit 13).
fn net_raw(mask: &str) -> bool {
    u64::from_str_radix(mask, 16).expect("a hex mask") & (1 << 13) != 0
}

/// The finding of issue 7: containers share the host's network, so CAP_NET_RAW let one open a
/// packet socket on the host's loopback and read its traffic. By default a container now has
/// no CAP_NET_RAW, Docker's seccomp profile and no-new-privileges.
#[test]
fn containers_are_confined_like_docker_without_net_raw() {
    let (project, data) = project_with_busybox();
    let out = with_store(
        project.locald(["container", "run", "bb:1", "cat", "/proc/self/status"]),
        data.path(),
    )
    .success();
    let fields = confinement(&out.stdout);
    assert_eq!(fields["NoNewPrivs"], "1", "{out}");
    assert_eq!(fields["Seccomp"], "2", "{out}");
    assert!(!net_raw(&fields["CapEff"]), "{out}");
    assert!(!net_raw(&fields["CapBnd"]), "{out}");

    // arping needs an AF_PACKET socket.
    with_store(
        project.locald([
            "container",
            "run",
            "bb:1",
            "arping",
            "-c",
            "1",
            "-w",
            "1",
            "-I",
            "lo",
            "127.0.0.1",
        ]),
        data.path(),
    )
    .code(1)
    .stderr_has("Operation not permitted");
    // Docker's profile refuses new namespaces without CAP_SYS_ADMIN.
    with_store(
        project.locald(["container", "run", "bb:1", "unshare", "-U", "true"]),
        data.path(),
    )
    .code(1)
    .stderr_has("Operation not permitted");
}

#[test]
fn cap_add_cap_drop_and_security_opt_adjust_the_confinement() {
    let (project, data) = project_with_busybox();
    let status = |args: &[&str]| {
        let mut argv = vec!["container", "run"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["bb:1", "cat", "/proc/self/status"]);
        let out = with_store(project.locald(argv), data.path()).success();
        confinement(&out.stdout)
    };
    let fields = status(&[
        "--cap-add",
        "net_raw",
        "--security-opt",
        "seccomp=unconfined",
    ]);
    assert!(net_raw(&fields["CapEff"]), "{fields:?}");
    assert_eq!(fields["Seccomp"], "0", "{fields:?}");
    let fields = status(&[
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges=false",
    ]);
    assert_eq!(fields["CapEff"], "0000000000000000", "{fields:?}");
    assert_eq!(fields["NoNewPrivs"], "0", "{fields:?}");
    assert_eq!(fields["Seccomp"], "2", "{fields:?}");

    // A profile file, relative to the current directory.
    project.write(
        "deny-mkdir.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
    );
    with_store(
        project.locald([
            "container",
            "run",
            "--security-opt",
            "seccomp=deny-mkdir.json",
            "bb:1",
            "mkdir",
            "/tmp/x",
        ]),
        data.path(),
    )
    .code(1)
    .stderr_has("Operation not permitted");

    // Mistakes are named.
    with_store(
        project.locald(["container", "run", "--cap-add", "NET_RAWW", "bb:1", "true"]),
        data.path(),
    )
    .code(1)
    .stderr_has("unknown capability `NET_RAWW`");
    with_store(
        project.locald([
            "container",
            "run",
            "--security-opt",
            "apparmor=unconfined",
            "bb:1",
            "true",
        ]),
        data.path(),
    )
    .code(1)
    .stderr_has("unsupported security option `apparmor=unconfined`");
    project.write("broken.json", "{\"defaultAction\": ");
    with_store(
        project.locald([
            "container",
            "run",
            "--security-opt",
            "seccomp=broken.json",
            "bb:1",
            "true",
        ]),
        data.path(),
    )
    .code(1)
    .stderr_has("broken.json is not a valid profile");
}

/// `cap_add`, `cap_drop` and `security_opt` in locald.toml reach the service's containers,
/// under the supervisor and with `locald run`.
#[test]
fn a_container_service_gets_its_cap_add_cap_drop_and_security_opt() {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        r#"
[services.probe]
image = "bb:1"
command = "cat /proc/self/status > /out/status; exec sleep 987601"
volumes = ["./out:/out"]
cap_add = ["NET_RAW"]
cap_drop = ["cap_kill"]
security_opt = ["seccomp=unconfined"]
# sleep as the container's init ignores SIGTERM.
stop_signal = "KILL"
"#,
    );
    project.write("out/.keep", "");
    with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "30s"]),
        data.path(),
    )
    .success();
    project.wait_for("the status file", Duration::from_secs(10), |p| {
        p.path().join("out/status").exists() && confinement(&p.read("out/status")).len() == 4
    });
    let fields = confinement(&project.read("out/status"));
    assert!(net_raw(&fields["CapEff"]), "{fields:?}");
    let kill_bit = 1 << 5;
    assert_eq!(
        u64::from_str_radix(&fields["CapEff"], 16).unwrap() & kill_bit,
        0,
        "{fields:?}"
    );
    assert_eq!(fields["Seccomp"], "0", "{fields:?}");
    project.locald(["down"]).success();
    assert!(pids_with_arg("987601").is_empty());

    let out = with_store(
        project.locald(["run", "probe", "--", "cat", "/proc/self/status"]),
        data.path(),
    )
    .success();
    let fields = confinement(&out.stdout);
    assert!(net_raw(&fields["CapEff"]), "{out}");
    assert_eq!(fields["Seccomp"], "0", "{out}");
}

/// `stop_signal` reaches a container service's process whatever forwarded signal it is: the
/// supervisor sends it to `__service-init`, which passes it to `locald-shim`, which passes it
/// to the container. With SIGALRM the shim used to die of it instead (its list lacked it), and
/// the container was killed with the wrapper's pid namespace, its trap never run.
#[test]
fn a_container_service_is_stopped_with_its_stop_signal_alrm() {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        r#"
[services.alarmed]
image = "bb:1"
command = "trap 'echo got-alrm > /out/stopped; exit 0' ALRM; echo up > /out/up; while true; do sleep 0.05; done; : 987701"
volumes = ["./out:/out"]
stop_signal = "ALRM"
"#,
    );
    project.write("out/.keep", "");
    with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "30s"]),
        data.path(),
    )
    .success();
    project.wait_for("the container to start", Duration::from_secs(10), |p| {
        p.path().join("out/up").exists()
    });
    project.locald(["down"]).success();
    assert_eq!(
        project.read("out/stopped").trim(),
        "got-alrm",
        "the container's trap did not run"
    );
    assert!(pids_with_arg("987701").is_empty());
}

/// A `container run` killed with SIGKILL leaves its container its stop
/// timeout to end; meanwhile its image stays leased (the shim holds the
/// lease it inherited), so `image rm` cannot pull the rootfs from under it.
#[test]
fn a_killed_container_run_keeps_its_image_leased_while_the_container_lives() {
    let (project, data) = project_with_busybox();
    let mut run = with_store(
        project.locald([
            "container",
            "run",
            "bb:1",
            "sh",
            "-c",
            "trap '' TERM; exec sleep 987509",
        ]),
        data.path(),
    )
    .process_group()
    .spawn();
    project.wait_for("the container's sleep", Duration::from_secs(10), |_| {
        pids_with_arg("987509").len() == 1
    });
    let container = pids_with_arg("987509")[0];
    run.kill().unwrap();
    run.wait().unwrap();

    with_store(project.locald(["image", "rm", "bb:1"]), data.path())
        .code(1)
        .stderr_has("is in use by container");

    // The container ends (here at once rather than after the stop timeout);
    // its shim goes with it, and with the shim the lease.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(container),
        nix::sys::signal::Signal::SIGKILL,
    );
    project.wait_for("the lease to be released", Duration::from_secs(15), |p| {
        with_store(p.locald(["image", "rm", "bb:1"]), data.path())
            .output()
            .code
            == Some(0)
    });
}

/// `init = true`: tini is the container's PID 1 and passes the stop signal on
/// to a command that, as PID 1, would ignore it (`sleep`): it ends by that
/// signal, `down` returns without waiting for the 60 s `stop_timeout` (the
/// guard of `exit_of` is shorter), and nothing is left.
#[test]
fn a_container_service_with_init_stops_at_once() {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        r#"
[services.sleeper]
image = "bb:1"
command = "exec sleep 961120"
init = true
health = "none"
stop_timeout = "60s"
"#,
    );
    with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "30s"]),
        data.path(),
    )
    .success();
    one_pid("961120");
    let down = crate::stopping::exit_of(with_store(project.locald(["down"]), data.path()).spawn());
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    // Ended by the stop signal tini passed on, not by a SIGKILL (the shim's
    // own, after its grace period, or the supervisor's after `stop_timeout`).
    let logs = project.read(".locald/logs/sleeper.log");
    assert!(
        logs.contains("stopped with code 143 (signal 15)"),
        "not stopped by SIGTERM:\n{logs}"
    );
    assert!(pids_with_arg("961120").is_empty(), "the container survived");
    assert!(bundles_with("961120").is_empty(), "bundle left behind");
}

/// `--init`, and `locald run` in a service with `init = true`, as `docker
/// compose run` keeps the service's init.
#[test]
fn container_run_init_puts_tini_in_front_of_the_command() {
    let (project, data) = project_with_busybox();
    let pid_1 = |init: &[&str]| {
        let args = [
            &["container", "run"],
            init,
            &["bb:1", "cat", "/proc/1/cmdline"],
        ]
        .concat();
        with_store(project.locald(args), data.path())
            .success()
            .stdout
    };
    let behind_init = pid_1(&["--init"]);
    assert!(
        behind_init.starts_with("/sbin/locald-init\0--\0cat\0"),
        "{behind_init:?}"
    );
    // Without it, the command is PID 1 itself.
    let alone = pid_1(&[]);
    assert!(alone.starts_with("cat\0"), "{alone:?}");
    project.write(
        "locald.toml",
        "[services.tool]\nimage = \"bb:1\"\ninit = true\n",
    );
    let run = with_store(
        project.locald(["run", "tool", "--", "cat", "/proc/1/cmdline"]),
        data.path(),
    )
    .success();
    assert!(
        run.stdout.starts_with("/sbin/locald-init\0--\0cat\0"),
        "{run}"
    );
}

/// `locald exec` into a running container service: the container's own
/// processes, filesystem, environment and hostname, exit codes, a real
/// terminal with -it, and no exec'd process outliving the container.
#[test]
fn exec_joins_the_running_container() {
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        r#"
[services.db]
image = "bb:1"
command = "echo written-at-start > /tmp/marker; exec sleep 973140"
env = { GREETING = "hello from db" }
health = "none"
"#,
    );
    with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "30s"]),
        data.path(),
    )
    .success();
    project.wait_for("the container", Duration::from_secs(10), |_| {
        pids_with_arg("973140").len() == 1
    });
    // The container's processes only: its command as PID 1, and `ps`.
    let out = project
        .locald(["exec", "db", "--", "ps", "-o", "pid,args"])
        .success();
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][..3], ["1", "sleep", "973140"], "{out}");
    assert_eq!(rows[1][1], "ps", "{out}");
    // Its filesystem (a file the service wrote at start), environment and
    // hostname; -e and -w on top.
    project
        .locald([
            "exec",
            "-e",
            "EXTRA=given",
            "-w",
            "/tmp",
            "db",
            "--",
            "echo \"$GREETING/$EXTRA\"; cat marker; pwd; hostname",
        ])
        .success()
        .stdout_is("hello from db/given\nwritten-at-start\n/tmp\ndb\n");
    project.locald(["exec", "db", "--", "exit 5"]).code(5);
    // Confined as the container's own init is: the same capabilities,
    // no_new_privs and seccomp filter mode.
    let out = project
        .locald([
            "exec",
            "db",
            "--",
            "for f in /proc/1/status /proc/self/status; do \
             grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):' $f | tr '\\n\\t' '  '; echo; done",
        ])
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        lines[0], lines[1],
        "the init's, then the exec'd process's\n{out}"
    );
    assert!(lines[1].contains("Seccomp: 2"), "a seccomp filter\n{out}");
    // The spec's user (root), or another one.
    project
        .locald(["exec", "db", "--", "id -u"])
        .success()
        .stdout_is("0\n");
    project
        .locald([
            "exec",
            "-u",
            "1000:1001",
            "db",
            "--",
            "echo $(id -u):$(id -g)",
        ])
        .success()
        .stdout_is("1000:1001\n");
    // `ps` says it is a container; a detached one-off run of the service is
    // a new container of its image, its output in its log.
    let ps = project.locald(["ps", "--json"]).success();
    let ps: serde_json::Value = serde_json::from_str(&ps.stdout).unwrap();
    assert_eq!(ps[0]["kind"], "container", "{ps}");
    let id = with_store(
        project.locald([
            "run",
            "-d",
            "db",
            "--",
            "echo \"one-off $GREETING\"; hostname",
        ]),
        data.path(),
    )
    .success()
    .stdout
    .trim()
    .to_string();
    project.wait_for("the one-off run", Duration::from_secs(10), |project| {
        project
            .locald(["logs", &id])
            .success()
            .stdout
            .contains("exited with code 0")
    });
    project
        .locald(["logs", &id])
        .success()
        .stdout_has("| one-off hello from db\n");
    project
        .locald(["exec", "db", "--", "no-such-973140"])
        .code(127)
        .stderr_has("no-such-973140: command not found");
    project
        .locald(["exec", "-i", "db", "--", "cat"])
        .stdin("piped in\n")
        .success()
        .stdout_is("piped in\n");
    // -it: a real pseudo-terminal.
    let (success, stdout) = crate::harness::in_a_terminal(
        &project,
        "exec -it db -- sh -c 'test -t 0 && test -t 1 && echo terminal-ok'",
        &[],
    );
    assert!(success, "{stdout}");
    assert!(stdout.contains("terminal-ok"), "{stdout}");

    // Stopping the service ends what was exec'd into it.
    // (One shell line: the marker is no argument of `locald exec` itself.)
    let mut exec = project.locald(["exec", "db", "--", "sleep 973141"]).spawn();
    project.wait_for("the exec'd sleep", Duration::from_secs(5), |_| {
        pids_with_arg("973141").len() == 1
    });
    project.locald(["stop", "db"]).success();
    project.wait_for("no exec'd sleep", Duration::from_secs(10), |_| {
        pids_with_arg("973141").is_empty() && pids_with_arg("973140").is_empty()
    });
    assert_eq!(exec.wait().unwrap().code(), Some(128 + 9));

    // A kill -9 of the supervisor leaves nothing either.
    with_store(project.locald(["start", "db"]), data.path()).success();
    project.wait_for("the container again", Duration::from_secs(10), |_| {
        pids_with_arg("973140").len() == 1
    });
    let exec = project.locald(["exec", "db", "--", "sleep 973142"]).spawn();
    project.wait_for("the exec'd sleep", Duration::from_secs(5), |_| {
        pids_with_arg("973142").len() == 1
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(crate::harness::supervisor_pid(&project)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    project.wait_for("no survivors", Duration::from_secs(10), |_| {
        pids_with_arg("973140").is_empty() && pids_with_arg("973142").is_empty()
    });
    let out = exec.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + 9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_container_services_shim_reads_the_proc_of_its_own_pid_namespace() {
    // Under the supervisor the shim runs in the PID namespace of the service's init, and
    // libcontainer records the container's pid as that namespace numbers it (4, say),
    // then reads `/proc/<pid>`: the host's `/proc` would show a kernel thread there.
    let (project, data) = project_with_busybox();
    project.write(
        "locald.toml",
        "[services.box]\nimage = \"bb:1\"\ncommand = \"exec sleep 979911\"\nhealth = \"none\"\nstop_signal = \"KILL\"\n",
    );
    with_store(
        project.locald(["up", "-d", "--wait", "--timeout", "30s"]),
        data.path(),
    )
    .success();
    // The container's process is a child of the shim.
    let sleeper = one_pid("979911");
    let status = std::fs::read_to_string(format!("/proc/{sleeper}/status")).unwrap();
    let shim: i32 = status
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))
        .and_then(|ppid| ppid.trim().parse().ok())
        .expect("a parent");
    // The shim's own mount namespace, seen from the host: its `/proc/1` is the init of
    // its PID namespace (locald's), not the host's.
    let init = std::fs::read(format!("/proc/{shim}/root/proc/1/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&init).contains("__service-init"),
        "the shim's /proc/1 is {:?}",
        String::from_utf8_lossy(&init)
    );
    with_store(project.locald(["down"]), data.path()).success();
}
