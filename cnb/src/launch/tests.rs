//! Launch decisions over a layers directory laid out as an exported image holds it.

use super::*;
use crate::api::Api;
use crate::formats::order::GroupMember;
use crate::id::BuildpackId;

struct Image {
    _root: tempfile::TempDir,
    dirs: LaunchDirs,
    metadata: BuildMetadata,
}

fn process(
    r#type: &str,
    command: &[&str],
    args: &[&str],
    buildpack: &str,
    working_dir: Option<&str>,
) -> Process {
    Process {
        r#type: r#type.into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        args: args.iter().map(|s| s.to_string()).collect(),
        direct: true,
        buildpack_id: BuildpackId::parse(buildpack).unwrap(),
        working_dir: working_dir.map(String::from),
        exec_env: Vec::new(),
    }
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// The shared notes' site after export: `test/httpd`'s launch layers and `test/procfile`'s
/// processes.
fn image() -> Image {
    let root = tempfile::tempdir().unwrap();
    let dirs = LaunchDirs {
        app: root.path().join("workspace"),
        layers: root.path().join("layers"),
        process: "/cnb/process".into(),
        lifecycle: "/cnb/lifecycle".into(),
    };
    std::fs::create_dir_all(&dirs.app).unwrap();
    let httpd = dirs.layers.join("test_httpd");
    write(&httpd.join("httpd/bin/serve"), "#!/bin/sh\n");
    write(
        &httpd.join("httpd/env/HTTPD_ROOT.default"),
        "/workspace/static",
    );
    write(&httpd.join("httpd/env.launch/PORT.default"), "8080");
    write(&httpd.join("httpd/env.build/HTTPD_BUILT"), "1");
    write(&httpd.join("httpd/env.launch/web/WEB_ONLY"), "yes");
    write(&httpd.join("httpd/exec.d/a-setup"), "");
    write(&httpd.join("httpd/exec.d/web/b-web"), "");
    write(&httpd.join("launch-only/env/LIST.append"), "launch-only");
    write(&httpd.join("launch-only/env/LIST.delim"), ":");
    write(&httpd.join("launch-only/lib/x.so"), "");
    let member = |id: &str, api: Api| GroupMember {
        id: BuildpackId::parse(id).unwrap(),
        version: "1.0.0".into(),
        api,
        homepage: None,
    };
    let metadata = BuildMetadata {
        buildpacks: vec![
            member("test/httpd", Api::new(0, 10)),
            member("test/procfile", Api::new(0, 10)),
            member("test/old", Api::new(0, 8)),
        ],
        processes: vec![
            process("env-dump", &["env"], &[], "test/procfile", None),
            process(
                "greet",
                &["echo", "hello"],
                &["world"],
                "test/procfile",
                None,
            ),
            process("old", &["echo"], &["a"], "test/old", None),
            process("say", &["echo"], &["a"], "test/procfile", Some("sub")),
            process("web", &["sh", "-c", "serve"], &[], "test/procfile", None),
        ],
        labels: Vec::new(),
        slices: Vec::new(),
        default_process: Some("web".into()),
        layers: Vec::new(),
    };
    Image {
        _root: root,
        dirs,
        metadata,
    }
}

fn container_env() -> Vec<(String, String)> {
    [
        ("PATH", "/cnb/process:/cnb/lifecycle:/usr/bin:/bin"),
        ("CNB_LAYERS_DIR", "/layers"),
        ("CNB_APP_DIR", "/workspace"),
        ("CNB_PLATFORM_API", "0.12"),
        ("CNB_PROCESS_TYPE", "greet"),
        ("HOME", "/home/cnb"),
        ("LIST", "start"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn launch(image: &Image, argv0: &str, args: &[&str]) -> Result<Launch, LaunchError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    plan(
        &image.metadata,
        &image.dirs,
        argv0,
        &args,
        container_env(),
        &Limits::DEFAULT,
    )
}

#[test]
fn the_launch_environment_comes_from_launch_layers() {
    let image = image();
    let l = launch(&image, "/cnb/process/env-dump", &[]).unwrap();
    let var = |k: &str| {
        l.env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let httpd = image.dirs.layers.join("test_httpd");
    assert_eq!(var("PORT").as_deref(), Some("8080"));
    assert_eq!(var("HTTPD_ROOT").as_deref(), Some("/workspace/static"));
    assert_eq!(
        var("PATH"),
        Some(format!(
            "{}:/usr/bin:/bin",
            httpd.join("httpd/bin").display()
        ))
    );
    assert_eq!(
        var("LD_LIBRARY_PATH"),
        Some(httpd.join("launch-only/lib").display().to_string())
    );
    assert_eq!(var("LIST").as_deref(), Some("start:launch-only"));
    assert_eq!(var("HTTPD_BUILT"), None, "env.build is for build only");
    assert_eq!(var("WEB_ONLY"), None, "another process type's env");
    assert!(
        !l.env.iter().any(|(k, _)| k.starts_with("CNB_")),
        "{:?}",
        l.env
    );
    assert_eq!(var("HOME").as_deref(), Some("/home/cnb"));
    assert_eq!(l.argv, ["env"]);
    assert_eq!(l.process_type.as_deref(), Some("env-dump"));
    assert_eq!(l.working_dir, image.dirs.app);
    assert_eq!(l.exec_d, [httpd.join("httpd/exec.d/a-setup")]);
}

#[test]
fn a_process_type_gets_its_own_env_and_exec_d() {
    let image = image();
    let l = launch(&image, "web", &[]).unwrap();
    assert!(l.env.contains(&("WEB_ONLY".into(), "yes".into())));
    let httpd = image.dirs.layers.join("test_httpd");
    assert_eq!(
        l.exec_d,
        [
            httpd.join("httpd/exec.d/a-setup"),
            httpd.join("httpd/exec.d/web/b-web")
        ]
    );
    assert_eq!(l.argv, ["sh", "-c", "serve"]);
}

#[test]
fn user_arguments_replace_args_and_command_words_stay() {
    let image = image();
    assert_eq!(
        launch(&image, "greet", &[]).unwrap().argv,
        ["echo", "hello", "world"]
    );
    assert_eq!(
        launch(&image, "greet", &["there"]).unwrap().argv,
        ["echo", "hello", "there"]
    );
    assert_eq!(
        launch(&image, "/cnb/process/say", &["b"]).unwrap().argv,
        ["echo", "b"]
    );
    // Before Buildpack API 0.9, the user's arguments were appended.
    assert_eq!(
        launch(&image, "old", &["b"]).unwrap().argv,
        ["echo", "a", "b"]
    );
    assert_eq!(
        launch(&image, "say", &[]).unwrap().working_dir,
        image.dirs.app.join("sub")
    );
}

#[test]
fn a_legacy_non_direct_process_runs_as_shell_text() {
    let mut image = image();
    let old = image
        .metadata
        .processes
        .iter_mut()
        .find(|p| p.r#type == "old")
        .unwrap();
    old.command = vec!["echo $HOME".into()];
    old.direct = false;
    let l = launch(&image, "old", &["b"]).unwrap();
    assert_eq!(l.argv, ["sh", "-c", "echo $HOME", "a", "b"]);
    assert!(!l.direct);
}

#[test]
fn the_launcher_itself_runs_user_commands() {
    let image = image();
    let direct = launch(&image, "/cnb/lifecycle/launcher", &["--", "env", "-0"]).unwrap();
    assert_eq!(
        (
            direct.argv.as_slice(),
            direct.direct,
            direct.process_type.as_deref()
        ),
        (&["env".to_string(), "-0".into()][..], true, None)
    );
    let shell = launch(&image, "/cnb/lifecycle/launcher", &["echo $PORT", "x"]).unwrap();
    assert_eq!(shell.argv, ["sh", "-c", "echo $PORT", "x"]);
    assert!(!shell.direct);
    assert!(matches!(
        launch(&image, "/cnb/lifecycle/launcher", &[]),
        Err(LaunchError::NoCommand)
    ));
}

#[test]
fn the_plan_runs() {
    let image = image();
    let l = launch(&image, "greet", &["there"]).unwrap();
    let output = std::process::Command::new("/usr/bin/env")
        .args(&l.argv)
        .env_clear()
        .envs(l.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&l.working_dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "hello there\n");
}

#[test]
fn the_entrypoint_process_is_the_requested_type_or_the_default() {
    let image = image();
    assert_eq!(
        entrypoint_process(&image.metadata, None)
            .unwrap()
            .as_deref(),
        Some("web")
    );
    assert_eq!(
        entrypoint_process(&image.metadata, Some(""))
            .unwrap()
            .as_deref(),
        Some("web")
    );
    assert_eq!(
        entrypoint_process(&image.metadata, Some("greet"))
            .unwrap()
            .as_deref(),
        Some("greet")
    );
    let error = entrypoint_process(&image.metadata, Some("worker")).unwrap_err();
    assert_eq!(error.to_string(), "process type `worker` was not found");
    let none = BuildMetadata {
        default_process: None,
        ..image.metadata.clone()
    };
    assert_eq!(entrypoint_process(&none, None).unwrap(), None);
}

#[test]
fn layers_are_bounded() {
    let image = image();
    let tight = Limits {
        layers: 1,
        ..Limits::DEFAULT
    };
    let error = plan(
        &image.metadata,
        &image.dirs,
        "web",
        &[],
        container_env(),
        &tight,
    )
    .unwrap_err();
    assert!(
        matches!(error, LaunchError::TooManyLayers { limit: 1, .. }),
        "{error}"
    );
}

fn executable(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn exec_d_output_overrides_the_environment_in_order() {
    let image = image();
    let httpd = image.dirs.layers.join("test_httpd");
    // The first sees the launch environment and its cwd; the second sees the first's output.
    executable(&httpd.join("httpd/exec.d/a-setup"), "echo \"logged\"; printf 'FROM_A = \"%s in %s\"\\nPORT = \"9090\"\\n' \"$PORT\" \"$PWD\" >&3");
    executable(
        &httpd.join("httpd/exec.d/web/b-web"),
        "printf 'FROM_B = \"%s\"\\n' \"$FROM_A\" >&3",
    );
    let mut l = launch(&image, "web", &[]).unwrap();
    l.run_exec_d(&image.dirs.app, &Limits::DEFAULT).unwrap();
    let var = |k: &str| {
        l.env
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let from_a = format!("8080 in {}", image.dirs.app.display());
    assert_eq!(var("FROM_A"), Some(from_a.clone()));
    assert_eq!(var("FROM_B"), Some(from_a));
    assert_eq!(var("PORT").as_deref(), Some("9090"));
    assert!(l.exec_d.is_empty());
}

#[test]
fn exec_d_failures_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    let run = |body: &str, limits: &Limits| {
        executable(&path, body);
        exec_d::run(&path, &[], dir.path(), limits)
    };
    let limits = Limits::DEFAULT;
    assert!(matches!(
        run("exit 2", &limits),
        Err(exec_d::ExecDError::Failed {
            exit: crate::exec::Exit::Code(2),
            ..
        })
    ));
    assert!(
        matches!(run("echo 'A = 1' >&3", &limits), Err(exec_d::ExecDError::Value { ref key, .. }) if key == "A")
    );
    assert!(matches!(
        run("echo 'not toml' >&3", &limits),
        Err(exec_d::ExecDError::Parse { .. })
    ));
    // Output past the limit is drained (no hang on a full pipe) and refused.
    let small = Limits {
        file_bytes: 10,
        ..Limits::DEFAULT
    };
    let error = run(
        "i=0; while [ $i -lt 20000 ]; do echo 'A = \"0123456789\"' >&3; i=$((i+1)); done",
        &small,
    )
    .unwrap_err();
    assert!(
        matches!(error, exec_d::ExecDError::TooLarge { limit: 10, .. }),
        "{error}"
    );
    assert_eq!(
        run("echo 'A = \"1\"' >&3; echo 'B = \"2\"' >&3", &limits).unwrap(),
        [("A".to_string(), "1".to_string()), ("B".into(), "2".into())]
    );
    assert_eq!(run("true", &limits).unwrap(), []);
}
