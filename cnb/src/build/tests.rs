//! The build phase with real shell buildpacks: the shared notes' `test/httpd` and
//! `test/procfile`, and small ones for each rule.

use super::*;
use crate::detect::detect;
use crate::formats::outputs::LayerTypes;
use crate::test_support::{order, Fixture};

const HTTPD_DETECT: &str = r#"
[ -d static ] || exit 100
printf '[[provides]]\nname = "httpd"\n' >> "$CNB_BUILD_PLAN_PATH"
"#;

const HTTPD_BUILD: &str = r#"
grep -q 'name = "httpd"' "$CNB_BP_PLAN_PATH" || { echo "no httpd in the plan"; exit 1; }
grep -q 'root = "static"' "$CNB_BP_PLAN_PATH" || { echo "no root in the plan"; exit 1; }
[ "$1" = "$CNB_LAYERS_DIR" ] && [ "$3" = "$CNB_BP_PLAN_PATH" ] || { echo "positional arguments"; exit 1; }
L="$CNB_LAYERS_DIR"
echo "building httpd in $L"
mkdir -p "$L/httpd/bin" "$L/httpd/env" "$L/httpd/env.launch" "$L/httpd/env.build"
printf '#!/bin/sh\nexec httpd -f -p "$PORT" -h "$HTTPD_ROOT"\n' > "$L/httpd/bin/serve"
chmod 755 "$L/httpd/bin/serve"
printf '%s' "$PWD/static" > "$L/httpd/env/HTTPD_ROOT.default"
printf 8080 > "$L/httpd/env.launch/PORT.default"
printf 1 > "$L/httpd/env.build/HTTPD_BUILT"
printf '[types]\nlaunch = true\nbuild = true\ncache = true\n[metadata]\nversion = "1"\n' > "$L/httpd.toml"
mkdir -p "$L/counter"; echo 1 > "$L/counter/count"
printf '[types]\ncache = true\n' > "$L/counter.toml"
mkdir -p "$L/scratch"; printf '' > "$L/scratch.toml"
mkdir -p "$L/launch-only/env"; printf yes > "$L/launch-only/env/LAUNCH_ONLY"
printf '[types]\nlaunch = true\n' > "$L/launch-only.toml"
printf '[metadata]\nbuilds = 1\n' > "$L/store.toml"
printf '[[labels]]\nkey = "io.test.httpd"\nvalue = "yes"\n' > "$L/launch.toml"
"#;

const PROCFILE_DETECT: &str = r#"
[ -f Procfile ] || exit 100
[ -d static ] && printf '[[requires]]\nname = "httpd"\n[requires.metadata]\nroot = "static"\n' >> "$CNB_BUILD_PLAN_PATH"
exit 0
"#;

const PROCFILE_BUILD: &str = r#"
{
  echo "serve=$(command -v serve || echo missing)"
  echo "HTTPD_BUILT=${HTTPD_BUILT-unset}"
  echo "PORT=${PORT-unset}"
  echo "HTTPD_ROOT=${HTTPD_ROOT-unset}"
  echo "LAUNCH_ONLY=${LAUNCH_ONLY-unset}"
} > .build-observations
L="$CNB_LAYERS_DIR"
{
  while IFS= read -r line; do
    type="${line%%:*}"; cmd="${line#*: }"
    default=false; [ "$type" = web ] && default=true
    printf '[[processes]]\ntype = "%s"\ncommand = ["sh", "-c", "%s"]\ndefault = %s\n\n' "$type" "$cmd" "$default"
  done < Procfile
  printf '[[processes]]\ntype = "greet"\ncommand = ["echo", "hello"]\nargs = ["world"]\n\n'
  printf '[[processes]]\ntype = "env-dump"\ncommand = ["env"]\n\n'
  printf '[[slices]]\npaths = ["static"]\n'
} > "$L/launch.toml"
"#;

fn site() -> Fixture {
    let f = Fixture::new();
    f.buildpack("test/httpd", "0.10", HTTPD_DETECT, HTTPD_BUILD);
    f.buildpack("test/procfile", "0.10", PROCFILE_DETECT, PROCFILE_BUILD);
    f.app_file("Procfile", "web: serve\n");
    f.app_file("static/index.html", "hello\n");
    f
}

/// Detects with `order`, then builds, giving the metadata and the build log.
fn detect_and_build(
    f: &Fixture,
    order: &[crate::formats::order::OrderGroup],
) -> (Result<BuildMetadata, BuildError>, String) {
    let context = f.context();
    let detected = detect(&context, order).unwrap();
    let mut log = Vec::new();
    let result = build(&context, &detected.group, &detected.plan, &mut log);
    (result, String::from_utf8(log).unwrap())
}

fn site_order() -> Vec<crate::formats::order::OrderGroup> {
    order(&[&[("test/httpd", false), ("test/procfile", false)]])
}

#[test]
fn the_site_builds_layers_processes_labels_slices_and_store() {
    let f = site();
    let (result, log) = detect_and_build(&f, &site_order());
    let metadata = result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    assert!(log.contains("building httpd in "), "{log}");

    let types: Vec<(String, LayerTypes)> = metadata.layers[0]
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.metadata.types))
        .collect();
    let t = |launch, build, cache| LayerTypes {
        launch,
        build,
        cache,
    };
    assert_eq!(
        types,
        [
            ("counter".to_string(), t(false, false, true)),
            ("httpd".to_string(), t(true, true, true)),
            ("launch-only".to_string(), t(true, false, false)),
            ("scratch".to_string(), t(false, false, false)),
        ]
    );
    let httpd_layers = f.layers().join("test_httpd");
    assert!(httpd_layers.join("scratch.ignore").is_dir() && !httpd_layers.join("scratch").exists());
    assert_eq!(
        metadata.layers[0].layers[3].path,
        httpd_layers.join("scratch.ignore")
    );
    assert_eq!(
        metadata.layers[0].layers[1].metadata.metadata["version"].as_str(),
        Some("1")
    );
    let store = metadata.layers[0].store.as_ref().unwrap();
    assert_eq!(store.metadata["builds"].as_integer(), Some(1));
    assert!(metadata.layers[1].store.is_none());

    // The second buildpack saw the first one's build layer, not its launch-only env.
    let observations = std::fs::read_to_string(f.dirs.app.join(".build-observations")).unwrap();
    let serve = httpd_layers.join("httpd/bin/serve");
    assert_eq!(
        observations,
        format!(
            "serve={}\nHTTPD_BUILT=1\nPORT=unset\nHTTPD_ROOT={}\nLAUNCH_ONLY=unset\n",
            serve.display(),
            f.dirs.app.join("static").display()
        )
    );

    let types: Vec<&str> = metadata
        .processes
        .iter()
        .map(|p| p.r#type.as_str())
        .collect();
    assert_eq!(types, ["env-dump", "greet", "web"], "sorted by type");
    assert_eq!(metadata.default_process.as_deref(), Some("web"));
    let greet = &metadata.processes[1];
    assert_eq!(
        (greet.command.as_slice(), greet.args.as_slice()),
        (
            &["echo".to_string(), "hello".into()][..],
            &["world".to_string()][..]
        )
    );
    assert_eq!(greet.buildpack_id.as_str(), "test/procfile");
    assert!(greet.direct);
    assert_eq!(metadata.image_labels()["io.test.httpd"], "yes");
    assert_eq!(
        metadata.slices,
        vec![Slice {
            paths: vec!["static".into()]
        }]
    );
    let ids: Vec<&str> = metadata.buildpacks.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["test/httpd", "test/procfile"]);

    // metadata.toml is written, and reads back the same (layers aside).
    let path = f.layers().join("config/metadata.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("buildpack-default-process-type = \"web\"\n"),
        "{text}"
    );
    assert!(text.contains("[[processes]]\ntype = \"greet\"\ncommand = [\"echo\", \"hello\"]\nargs = [\"world\"]\ndirect = true\nbuildpack-id = \"test/procfile\"\n"), "{text}");
    let back = BuildMetadata::read(&path, &Limits::DEFAULT).unwrap();
    assert_eq!(
        BuildMetadata {
            layers: Vec::new(),
            ..metadata
        },
        back
    );
}

#[test]
fn a_failing_build_stops_with_51_and_its_output_in_the_log() {
    let f = Fixture::new();
    f.buildpack("test/ok", "0.10", "", "echo ok");
    f.buildpack(
        "test/broken",
        "0.10",
        "",
        "echo 'compiler exploded' >&2; exit 3",
    );
    f.buildpack(
        "test/after",
        "0.10",
        "",
        "touch \"$CNB_LAYERS_DIR/../after-ran\"",
    );
    let (result, log) = detect_and_build(
        &f,
        &order(&[&[
            ("test/ok", false),
            ("test/broken", false),
            ("test/after", false),
        ]]),
    );
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        "test/broken: bin/build failed (exit code 3)"
    );
    assert_eq!(error.exit_code(), EXIT_BUILDPACK_FAILED);
    assert_eq!(log, "ok\ncompiler exploded\n");
    assert!(!f.layers().join("after-ran").exists());
}

/// Two providers of `x`; the first writes `build.toml` with `unmet` if `$1` is set.
fn providers(first_unmet: bool) -> (Fixture, String) {
    let f = Fixture::new();
    let provide = "printf '[[provides]]\\nname = \"x\"\\n' >> $CNB_BUILD_PLAN_PATH";
    let unmet = if first_unmet {
        "printf '[[unmet]]\\nname = \"x\"\\n' > $CNB_LAYERS_DIR/build.toml"
    } else {
        ""
    };
    let record = f.dirs.scratch.join("plans");
    f.buildpack(
        "test/a",
        "0.10",
        provide,
        &format!(
            "cat $CNB_BP_PLAN_PATH >> {r}; echo --- >> {r}; {unmet}",
            r = record.display()
        ),
    );
    f.buildpack(
        "test/b",
        "0.10",
        provide,
        &format!("cat $CNB_BP_PLAN_PATH >> {}", record.display()),
    );
    f.buildpack("test/c", "0.10", "printf '[[requires]]\\nname = \"x\"\\n[requires.metadata]\\nv = 1\\n' >> $CNB_BUILD_PLAN_PATH", "exit 0");
    let (result, log) = detect_and_build(
        &f,
        &order(&[&[("test/a", false), ("test/b", false), ("test/c", false)]]),
    );
    result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let plans = std::fs::read_to_string(&record).unwrap();
    (f, plans)
}

#[test]
fn unmet_entries_pass_to_the_next_provider_and_met_ones_do_not() {
    let entry = "[[entries]]\nname = \"x\"\n\n[entries.metadata]\nv = 1\n";
    let (_f, plans) = providers(true);
    assert_eq!(plans, format!("{entry}---\n{entry}"));
    let (_f, plans) = providers(false);
    assert_eq!(
        plans,
        format!("{entry}---\nentries = []\n"),
        "b's plan is empty once a met x"
    );
}

#[test]
fn build_layers_feed_later_buildpacks_in_layer_order() {
    let f = Fixture::new();
    let record = f.dirs.scratch.join("env");
    f.buildpack(
        "test/layers",
        "0.10",
        "",
        r#"L=$CNB_LAYERS_DIR
for n in b a; do
  mkdir -p $L/$n/bin $L/$n/lib $L/$n/env $L/$n/env.build $L/$n/env.launch
  printf '[types]\nbuild = true\n' > $L/$n.toml
  printf ":$n" > $L/$n/env/LIST.append
  printf "$n" > $L/$n/env.build/WHO
  printf "$n" > $L/$n/env.launch/LAUNCH
done
echo "mine=${WHO-unset}" > $L/../own"#,
    );
    f.buildpack(
        "test/reader",
        "0.10",
        "",
        &format!("env | sort > {}", record.display()),
    );
    let (result, log) = detect_and_build(
        &f,
        &order(&[&[("test/layers", false), ("test/reader", false)]]),
    );
    result.unwrap_or_else(|e| panic!("{e}\n{log}"));
    let env = std::fs::read_to_string(&record).unwrap();
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(String::from)
    };
    let layers = f.layers().join("test_layers");
    assert_eq!(
        var("WHO").as_deref(),
        Some("b"),
        "layer b comes after a and wins"
    );
    assert_eq!(var("LIST").as_deref(), Some(":a:b"));
    assert_eq!(var("LAUNCH"), None);
    assert_eq!(
        var("PATH"),
        Some(format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            layers.join("b/bin").display(),
            layers.join("a/bin").display()
        ))
    );
    assert_eq!(
        var("LIBRARY_PATH"),
        Some(format!(
            "{}:{}",
            layers.join("b/lib").display(),
            layers.join("a/lib").display()
        ))
    );
    assert_eq!(
        var("CNB_LAYERS_DIR"),
        Some(f.layers().join("test_reader").display().to_string())
    );
    assert_eq!(var("NOT_ALLOWED"), None);
    assert_eq!(
        std::fs::read_to_string(f.layers().join("own")).unwrap(),
        "mine=unset\n",
        "not for the buildpack itself"
    );
}

#[test]
fn a_later_non_default_process_clears_the_default() {
    let f = Fixture::new();
    let launch = |default: bool| {
        format!("printf '[[processes]]\\ntype = \"web\"\\ncommand = [\"true\"]\\ndefault = {default}\\n' > $CNB_LAYERS_DIR/launch.toml")
    };
    f.buildpack("test/first", "0.10", "", &launch(true));
    f.buildpack("test/second", "0.10", "", &launch(false));
    let (result, _) = detect_and_build(
        &f,
        &order(&[&[("test/first", false), ("test/second", false)]]),
    );
    let metadata = result.unwrap();
    assert_eq!(metadata.default_process, None);
    assert_eq!(metadata.processes.len(), 1);
    assert_eq!(metadata.processes[0].buildpack_id.as_str(), "test/second");
    let (result, _) = detect_and_build(
        &f,
        &order(&[&[("test/second", false), ("test/first", false)]]),
    );
    assert_eq!(result.unwrap().default_process.as_deref(), Some("web"));
}

fn build_one(script: &str) -> Result<BuildMetadata, BuildError> {
    let f = Fixture::new();
    f.buildpack("test/one", "0.10", "", script);
    detect_and_build(&f, &order(&[&[("test/one", false)]])).0
}

#[test]
fn what_a_buildpack_writes_is_checked() {
    let error = build_one("printf 'launch = true\\n' > $CNB_LAYERS_DIR/l.toml").unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("test_one/l.toml: `launch` must be in the [types] table"),
        "{error}"
    );
    let error = build_one("printf '[[processes]]\\ntype = \"x\"\\ncommand = [\"a\"]\\nworking-dir = \"/etc\"\\n' > $CNB_LAYERS_DIR/launch.toml").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`processes[0].working-dir` `/etc` leaves"),
        "{error}"
    );
    let error = build_one("printf '[[unmet]]\\nname = \"nope\"\\n' > $CNB_LAYERS_DIR/build.toml")
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`nope` is not an entry of the buildpack's plan"),
        "{error}"
    );
    let error = build_one("printf '[types]\\nlaunch = true\\n' > $CNB_LAYERS_DIR/l.toml; ln -s /etc $CNB_LAYERS_DIR/l").unwrap_err();
    assert_link(&error);
    let error = build_one("printf '' > $CNB_LAYERS_DIR/..toml").unwrap_err();
    assert!(
        matches!(
            error,
            BuildError::Layer {
                problem: LayerProblem::Name,
                ..
            }
        ),
        "{error}"
    );
    let error = build_one("ln -s /etc/passwd $CNB_LAYERS_DIR/launch.toml").unwrap_err();
    assert!(
        matches!(error, BuildError::Format(FormatError::Read { .. })),
        "{error}"
    );
    // Reserved names are the buildpack's own files, not layers.
    let metadata = build_one("printf '[metadata]\\n' > $CNB_LAYERS_DIR/store.toml; printf '' > $CNB_LAYERS_DIR/build.toml").unwrap();
    assert!(metadata.layers[0].layers.is_empty());
}

#[test]
fn layers_are_bounded() {
    let f = Fixture::new();
    f.buildpack(
        "test/many",
        "0.10",
        "",
        "for i in 1 2 3; do printf '' > $CNB_LAYERS_DIR/l$i.toml; done",
    );
    let mut context = f.context();
    let detected = detect(&context, &order(&[&[("test/many", false)]])).unwrap();
    context.limits.layers = 2;
    let error = build(&context, &detected.group, &detected.plan, &mut Vec::new()).unwrap_err();
    assert!(
        matches!(
            error,
            BuildError::Layer {
                problem: LayerProblem::TooMany { limit: 2 },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_launch_layer_without_a_directory_is_kept_for_reuse() {
    let metadata = build_one("printf '[types]\\nlaunch = true\\n[metadata]\\nsha = \"x\"\\n' > $CNB_LAYERS_DIR/reused.toml").unwrap();
    let layer = &metadata.layers[0].layers[0];
    assert_eq!(layer.name, "reused");
    assert!(layer.metadata.types.launch && !layer.path.exists());
}

#[test]
fn a_group_must_list_runnable_component_buildpacks() {
    let f = Fixture::new();
    f.buildpack("test/x", "0.10", "", "");
    f.composite("test/meta", &[&[("test/x", false)]]);
    let group = |id: &str| Group {
        group: vec![GroupMember {
            id: BuildpackId::parse(id).unwrap(),
            version: "1.0.0".into(),
            api: crate::api::Api::new(0, 10),
            homepage: None,
        }],
    };
    let context = f.context();
    let error = build(
        &context,
        &group("test/meta"),
        &Plan::default(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(matches!(error, BuildError::Composite { .. }), "{error}");
    std::fs::remove_file(f.dirs.buildpacks.join("test_x/1.0.0/bin/build")).unwrap();
    let error = build(
        &context,
        &group("test/x"),
        &Plan::default(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("test/x: could not run bin/build: "),
        "{error}"
    );
    assert_eq!(error.exit_code(), EXIT_BUILDPACK_FAILED);
}

/// A layers directory as a build leaves it, whose buildpack `attack/evil` replaced its
/// own layers directory with a link to `target` (which the host would follow).
fn layers_with_linked_buildpack(target: &std::path::Path) -> tempfile::TempDir {
    let layers = tempfile::tempdir().unwrap();
    std::fs::create_dir(layers.path().join("config")).unwrap();
    std::fs::write(
        layers.path().join("config/metadata.toml"),
        "[[buildpacks]]\nid = \"attack/evil\"\nversion = \"0.0.1\"\napi = \"0.10\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(target, layers.path().join("attack_evil")).unwrap();
    layers
}

#[test]
fn read_built_does_not_follow_a_buildpack_directory_made_a_link() {
    // On the host (as root) `/layers/attack_evil -> /some/host/dir` leads to the host's
    // directory: a `<name>.toml` without types there made the host rename `<name>`.
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("precious")).unwrap();
    std::fs::write(host.path().join("precious.toml"), "").unwrap();
    let layers = layers_with_linked_buildpack(host.path());
    let result = read_built(layers.path(), &Limits::DEFAULT);
    assert!(host.path().join("precious").is_dir(), "renamed on the host");
    let error = result.unwrap_err();
    assert_link(&error);
}

#[test]
fn read_built_does_not_follow_a_config_directory_made_a_link() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(
        host.path().join("metadata.toml"),
        "[[buildpacks]]\nid = \"host/file\"\nversion = \"0.0.1\"\napi = \"0.10\"\n",
    )
    .unwrap();
    let layers = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(host.path(), layers.path().join("config")).unwrap();
    assert!(read_built(layers.path(), &Limits::DEFAULT).is_err());
}

/// `error` says a path the build left is a link.
fn assert_link(error: &BuildError) {
    assert!(
        matches!(
            error,
            BuildError::Layer {
                problem: LayerProblem::Link,
                ..
            }
        ),
        "{error}"
    );
}
