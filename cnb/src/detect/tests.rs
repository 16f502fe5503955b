//! Detection with real shell buildpacks (the shared notes' fixture: `test/httpd`,
//! `test/procfile`, `test/needs-python` and the composite `test/web-meta`).

use super::*;
use crate::test_support::{order, Fixture};

const HTTPD_DETECT: &str = r#"
[ -d static ] || exit 100
[ -e "$CNB_PLATFORM_DIR/env/HTTPD_FAIL" ] && { echo "httpd: told to fail"; exit 1; }
echo "httpd: static/ found"
cat >> "$CNB_BUILD_PLAN_PATH" <<'TOML'
[[provides]]
name = "httpd"
TOML
"#;

const PROCFILE_DETECT: &str = r#"
[ -f Procfile ] || exit 100
if [ -d static ]; then
cat >> "$CNB_BUILD_PLAN_PATH" <<'TOML'
[[requires]]
name = "httpd"
[requires.metadata]
root = "static"
TOML
fi
"#;

const NEEDS_PYTHON_DETECT: &str = r#"
cat >> "$CNB_BUILD_PLAN_PATH" <<'TOML'
[[requires]]
name = "python"
TOML
"#;

fn fixture() -> Fixture {
    let f = Fixture::new();
    f.buildpack("test/httpd", "0.10", HTTPD_DETECT, "exit 0");
    f.buildpack("test/procfile", "0.10", PROCFILE_DETECT, "exit 0");
    f.buildpack("test/needs-python", "0.11", NEEDS_PYTHON_DETECT, "exit 0");
    f.composite(
        "test/web-meta",
        &[&[("test/procfile", false), ("test/needs-python", true)]],
    );
    f
}

fn fixture_order() -> Vec<OrderGroup> {
    order(&[
        &[("test/httpd", false), ("test/web-meta", false)],
        &[("test/procfile", false)],
    ])
}

fn detect(f: &Fixture, order: &[OrderGroup]) -> Result<Detected, DetectError> {
    super::detect(&f.context(), order)
}

fn ids(detected: &Detected) -> Vec<String> {
    detected
        .group
        .group
        .iter()
        .map(|m| m.id.to_string())
        .collect()
}

#[test]
fn a_site_detects_httpd_and_procfile_with_one_plan_entry() {
    let f = fixture();
    f.app_file("Procfile", "web: serve\n");
    f.app_file("static/index.html", "hello\n");
    let detected = detect(&f, &fixture_order()).unwrap();
    assert_eq!(
        ids(&detected),
        ["test/httpd", "test/procfile"],
        "needs-python is optional and dropped"
    );
    assert_eq!(detected.group.group[0].api, Api::new(0, 10));
    assert_eq!(
        detected.group.group[0].homepage.as_deref(),
        Some("https://test/httpd.test")
    );
    let plan = &detected.plan.entries;
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].providers.len(), 1);
    assert_eq!(plan[0].providers[0].id.as_str(), "test/httpd");
    assert_eq!(plan[0].requires[0].name, "httpd");
    assert_eq!(
        plan[0].requires[0].metadata["root"].as_str(),
        Some("static")
    );

    let group_path = f.layers().join("group.toml");
    let plan_path = f.layers().join("plan.toml");
    detected.write(&group_path, &plan_path).unwrap();
    let group = std::fs::read_to_string(&group_path).unwrap();
    assert!(
        group.contains("id = \"test/httpd\"\nversion = \"1.0.0\"\napi = \"0.10\""),
        "{group}"
    );
    assert!(!group.contains("optional"), "{group}");
    let plan = std::fs::read_to_string(&plan_path).unwrap();
    assert_eq!(
        plan,
        "[[entries]]\n\n[[entries.providers]]\nid = \"test/httpd\"\nversion = \"1.0.0\"\n\n\
         [[entries.requires]]\nname = \"httpd\"\n\n[entries.requires.metadata]\nroot = \"static\"\n"
    );
}

#[test]
fn other_apps_detect_other_groups_or_none() {
    let f = fixture();
    f.app_file("Procfile", "web: serve\n");
    let detected = detect(&f, &fixture_order()).unwrap();
    assert_eq!(ids(&detected), ["test/procfile"]);
    assert!(detected.plan.entries.is_empty());

    let empty = fixture();
    let error = detect(&empty, &fixture_order()).unwrap_err();
    assert_eq!(error.exit_code(), EXIT_NO_GROUP);
    assert!(
        error
            .to_string()
            .starts_with("no buildpack group passed detection\n"),
        "{error}"
    );
}

#[test]
fn an_erroring_buildpack_is_exit_21_with_its_output() {
    let f = fixture();
    f.app_file("Procfile", "web: serve\n");
    f.app_file("static/index.html", "hello\n");
    f.platform_env("HTTPD_FAIL", "1");
    let error = detect(&f, &fixture_order()).unwrap_err();
    assert_eq!(error.exit_code(), EXIT_BUILDPACK_ERROR);
    let message = error.to_string();
    assert!(
        message.contains("test/httpd@1.0.0: error: exit code 1\n    httpd: told to fail"),
        "{message}"
    );
}

#[test]
fn detect_gets_the_buildpack_interface() {
    let f = Fixture::new();
    let record = f.dirs.scratch.join("record");
    f.buildpack(
        "test/env",
        "0.10",
        &format!(
            r#"{{ echo "pwd=$(pwd)"; echo "args=$1 $2"; echo "plan=$CNB_BUILD_PLAN_PATH"; env | sort; }} > {}"#,
            record.display()
        ),
        "exit 0",
    );
    f.platform_env("BP_USER", "from-platform");
    detect(&f, &order(&[&[("test/env", false)]])).unwrap();
    let text = std::fs::read_to_string(&record).unwrap();
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(String::from)
    };
    assert_eq!(line("pwd"), Some(f.dirs.app.display().to_string()));
    let plan = line("plan").unwrap();
    assert_eq!(
        line("args"),
        Some(format!("{} {plan}", f.dirs.platform.display()))
    );
    assert!(
        plan.starts_with(&f.dirs.scratch.display().to_string()),
        "{plan}"
    );
    assert_eq!(line("CNB_BUILD_PLAN_PATH"), Some(plan));
    assert_eq!(
        line("CNB_PLATFORM_DIR"),
        Some(f.dirs.platform.display().to_string())
    );
    assert_eq!(
        line("CNB_BUILDPACK_DIR"),
        Some(
            f.dirs
                .buildpacks
                .join("test_env/1.0.0")
                .display()
                .to_string()
        )
    );
    assert_eq!(line("CNB_TARGET_OS").as_deref(), Some("linux"));
    assert_eq!(line("BP_USER").as_deref(), Some("from-platform"));
    assert_eq!(line("HOME").as_deref(), Some("/home/cnb"));
    assert_eq!(
        line("NOT_ALLOWED"),
        None,
        "only the allow-list goes through"
    );
    assert_eq!(line("CNB_LAYERS_DIR"), None);
}

#[test]
fn clear_env_keeps_the_user_environment_out() {
    let f = Fixture::new();
    let record = f.dirs.scratch.join("record");
    f.buildpack_with(
        "test/clear",
        "0.10",
        "clear-env = true\n",
        &format!("echo \"BP_USER=${{BP_USER-unset}}\" > {}", record.display()),
        "exit 0",
    );
    // `clear-env` sits in [buildpack]: the extra text lands there.
    f.platform_env("BP_USER", "from-platform");
    detect(&f, &order(&[&[("test/clear", false)]])).unwrap();
    assert_eq!(std::fs::read_to_string(&record).unwrap(), "BP_USER=unset\n");
}

#[test]
fn each_buildpack_is_run_once_across_groups() {
    let f = Fixture::new();
    let count = f.dirs.scratch.join("count");
    f.buildpack(
        "test/counted",
        "0.10",
        &format!("echo run >> {}", count.display()),
        "exit 0",
    );
    f.buildpack("test/never", "0.10", "exit 100", "exit 0");
    let detected = detect(
        &f,
        &order(&[
            &[("test/counted", false), ("test/never", false)],
            &[("test/counted", false)],
        ]),
    )
    .unwrap();
    assert_eq!(ids(&detected), ["test/counted"]);
    assert_eq!(std::fs::read_to_string(&count).unwrap(), "run\n");
    assert_eq!(detected.runs.len(), 2);
}

#[test]
fn composites_splice_their_groups_depth_first() {
    let f = Fixture::new();
    let log = f.dirs.scratch.join("log");
    for id in ["x", "y", "z"] {
        let fail = if id == "x" { "exit 100" } else { "" };
        f.buildpack(
            &format!("test/{id}"),
            "0.10",
            &format!("echo {id} >> {}\n{fail}", log.display()),
            "exit 0",
        );
    }
    f.composite("test/c", &[&[("test/x", false)], &[("test/y", false)]]);
    let detected = detect(&f, &order(&[&[("test/c", false), ("test/z", false)]])).unwrap();
    assert_eq!(ids(&detected), ["test/y", "test/z"]);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "x\nz\ny\n");
}

#[test]
fn an_optional_composite_that_fails_leaves_the_rest() {
    let f = Fixture::new();
    f.buildpack("test/x", "0.10", "exit 100", "exit 0");
    f.buildpack("test/z", "0.10", "", "exit 0");
    f.composite("test/c", &[&[("test/x", false)]]);
    let detected = detect(&f, &order(&[&[("test/c", true), ("test/z", false)]])).unwrap();
    assert_eq!(ids(&detected), ["test/z"]);
}

#[test]
fn composites_that_nest_forever_are_stopped() {
    let f = Fixture::new();
    f.composite("test/loop", &[&[("test/loop", false)]]);
    let error = detect(&f, &order(&[&[("test/loop", false)]])).unwrap_err();
    assert!(matches!(error, DetectError::TooDeep { .. }), "{error}");
}

#[test]
fn targets_must_match_the_run_image() {
    let f = Fixture::new();
    let ran = f.dirs.scratch.join("ran");
    let windows = "[[targets]]\nos = \"windows\"\n";
    f.buildpack_with(
        "test/win",
        "0.10",
        windows,
        &format!("touch {}", ran.display()),
        "exit 0",
    );
    f.buildpack("test/any", "0.10", "", "exit 0");
    let error = detect(&f, &order(&[&[("test/win", false), ("test/any", false)]])).unwrap_err();
    assert_eq!(error.exit_code(), EXIT_BUILDPACK_ERROR);
    assert!(
        error
            .to_string()
            .contains("its targets do not match the run image"),
        "{error}"
    );
    // Optional: skipped, not run.
    let detected = detect(&f, &order(&[&[("test/win", true), ("test/any", false)]])).unwrap();
    assert_eq!(ids(&detected), ["test/any"]);
    assert!(!ran.exists());
}

#[test]
fn bad_plans_and_missing_executables_are_buildpack_errors() {
    let f = Fixture::new();
    f.buildpack(
        "test/badplan",
        "0.10",
        "echo '[[requires]]\nname = \"r\"\nversion = \"1\"' > $CNB_BUILD_PLAN_PATH",
        "exit 0",
    );
    let error = detect(&f, &order(&[&[("test/badplan", false)]])).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`requires[0].version` of `r` is not supported"),
        "{error}"
    );
    let noexec = f.buildpack("test/noexec", "0.10", "", "exit 0");
    std::fs::remove_file(noexec.join("bin/detect")).unwrap();
    let error = detect(&f, &order(&[&[("test/noexec", false)]])).unwrap_err();
    assert!(
        error.to_string().contains("could not run bin/detect"),
        "{error}"
    );
    assert_eq!(error.exit_code(), EXIT_BUILDPACK_ERROR);
    let error = detect(&f, &order(&[&[("test/absent", false)]])).unwrap_err();
    assert!(
        matches!(error, DetectError::Buildpack(FormatError::Read { .. })),
        "{error}"
    );
}

#[test]
fn detect_output_is_bounded() {
    let f = Fixture::new();
    f.buildpack(
        "test/loud",
        "0.10",
        "i=0; while [ $i -lt 1000 ]; do echo 0123456789; i=$((i+1)); done; exit 1",
        "exit 0",
    );
    let mut context = f.context();
    context.limits.detect_output_bytes = 22;
    let error = super::detect(&context, &order(&[&[("test/loud", false)]])).unwrap_err();
    let DetectError::NoGroup { runs, .. } = &error else {
        panic!("{error}")
    };
    assert_eq!(
        runs[0].output,
        "0123456789\n0123456789\n[10978 more bytes not kept]\n"
    );
}

#[test]
fn the_platform_order_wins_over_the_builders() {
    let f = Fixture::new();
    let builder = f.dirs.scratch.join("order.toml");
    assert_eq!(order_path(f.layers(), &builder), builder);
    std::fs::write(f.layers().join("order.toml"), "").unwrap();
    assert_eq!(
        order_path(f.layers(), &builder),
        f.layers().join("order.toml")
    );
}

/// The reference lifecycle's "expands order-containing buildpack IDs" case: nested
/// composites, an optional one, and buildpacks already in the group skipped by id (whatever
/// their version).
#[test]
fn nested_composites_expand_as_the_reference_lifecycle_does() {
    let f = Fixture::new();
    let log = f.dirs.scratch.join("log");
    for bp in ["A@v1", "B@v1", "C@v1", "D@v1", "B@v2", "C@v2", "D@v2"] {
        f.buildpack(
            bp,
            "0.10",
            &format!("echo {bp} >> {}\nexit 100", log.display()),
            "",
        );
    }
    f.composite(
        "E@v1",
        &[&[("A@v1", false), ("F@v1", false), ("B@v1", false)]],
    );
    f.composite(
        "F@v1",
        &[&[("C@v1", false)], &[("G@v1", true)], &[("D@v1", false)]],
    );
    f.composite(
        "G@v1",
        &[
            &[("A@v2", false), ("B@v2", false)],
            &[("C@v2", false), ("D@v2", false)],
        ],
    );
    let error = detect(&f, &order(&[&[("E@v1", false)]])).unwrap_err();
    let DetectError::NoGroup {
        errored: false,
        tried,
        ..
    } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(
        tried,
        &[
            vec!["A@v1", "C@v1", "B@v1"],
            vec!["A@v1", "B@v2"],
            vec!["A@v1", "C@v2", "D@v2", "B@v1"],
            vec!["A@v1", "B@v1"],
            vec!["A@v1", "D@v1", "B@v1"],
        ]
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "A@v1\nC@v1\nB@v1\nB@v2\nC@v2\nD@v2\nD@v1\n"
    );
    assert!(
        error.to_string().contains("\n  tried: A@v1, C@v1, B@v1\n"),
        "{error}"
    );
}
