//! Cloud Native Buildpacks fixtures: a run image and two builder images made from the
//! host's static busybox, with real buildpacks written as small `#!/bin/sh` scripts
//! (Buildpack API 0.10, reading the `CNB_*` variables rather than positional arguments).
//!
//! Two builders, so that the lifecycle is not fitted to one fixture:
//!
//! - [`CnbBuilder::Httpd`], the shared design (notes `cnb-platform.md` §7): `test/httpd`
//!   (serves `static/`; launch+build+cache, cache-only, untyped and launch-only layers,
//!   `store.toml`, a label), `test/procfile` (processes from a `Procfile`, `greet` with
//!   args, `env-dump`, a `static` slice), `test/needs-python` (requires what nobody
//!   provides) and the composite `test/web-meta` = `[test/procfile, test/needs-python
//!   (optional)]`; order `[test/httpd, test/web-meta]` then `[test/procfile]`.
//! - [`CnbBuilder::Pipeline`]: `test/runtime` provides `runtime` *or* `runtime-lite`,
//!   `test/app` requires one of them (`runtime-lite` when the app has a `LITE` file) and
//!   writes a launch layer with per-process env, `test/lint` (optional) requires a
//!   `linter` nobody provides; `test/stack` is the composite `[test/runtime, test/lint
//!   (optional)]`; order `[test/stack, test/app]`.
//!
//! Both builders are `User 1000:1000` (`cnb`), with `CNB_USER_ID`/`CNB_GROUP_ID`,
//! `/cnb/order.toml`, `/cnb/run.toml` naming the run image, buildpacks under
//! `/cnb/buildpacks/<escaped id>/<version>/`, and `/workspace` and `/layers` owned by the
//! build user.

use super::builder::{
    io_error, BuiltBlob, BuiltImage, ImageBuilder, LayerBuilder, LayerCompression,
};
use super::images::{busybox_rootfs, ConfigOverride};
use super::FixtureError;
use crate::oci::RuntimeConfig;

/// The build (and run) user of the fixture images.
pub const CNB_USER_ID: u64 = 1000;
/// Its group.
pub const CNB_GROUP_ID: u64 = 1000;

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &[u8] = b"root:x:0:\ncnb:x:1000:\nnogroup:x:65534:\n";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which fixture builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnbBuilder {
    Httpd,
    Pipeline,
}

/// One file of a builder's `/cnb` tree: its path under `/cnb`, mode and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnbFile {
    pub path: String,
    pub mode: u32,
    pub content: String,
}

impl CnbBuilder {
    pub const ALL: [CnbBuilder; 2] = [CnbBuilder::Httpd, CnbBuilder::Pipeline];

    /// The files of `/cnb` (paths relative to it), `run.toml` naming `run_image`.
    pub fn cnb_files(self, run_image: &str) -> Vec<CnbFile> {
        let mut files = vec![file(
            "run.toml",
            0o644,
            &format!("[[images]]\nimage = \"{run_image}\"\n"),
        )];
        match self {
            CnbBuilder::Httpd => HTTPD.write(&mut files),
            CnbBuilder::Pipeline => PIPELINE.write(&mut files),
        }
        files
    }

    /// Writes the `/cnb` tree into `dir` (for lifecycle tests run on the host).
    pub fn write_cnb(self, dir: &std::path::Path, run_image: &str) -> Result<(), FixtureError> {
        write_files(dir, &self.cnb_files(run_image))
    }
}

fn file(path: &str, mode: u32, content: &str) -> CnbFile {
    CnbFile {
        path: path.to_string(),
        mode,
        content: content.to_string(),
    }
}

/// A component buildpack (`api = "0.10"`, `os = "linux"`, version 0.0.1) with
/// `bin/detect` and `bin/build` shell bodies.
fn component(files: &mut Vec<CnbFile>, id: &str, detect: &str, build: &str) {
    component_at(files, id, "0.0.1", detect, build);
}

/// [`component`] at `version`.
fn component_at(files: &mut Vec<CnbFile>, id: &str, version: &str, detect: &str, build: &str) {
    let dir = format!("buildpacks/{}/{version}", id.replace('/', "_"));
    files.push(file(
        &format!("{dir}/buildpack.toml"),
        0o644,
        &format!(
            "api = \"0.10\"\n\n[buildpack]\nid = \"{id}\"\nversion = \"{version}\"\nhomepage = \"https://example.test/{id}\"\n\n[[targets]]\nos = \"linux\"\n"
        ),
    ));
    for (name, body) in [("detect", detect), ("build", build)] {
        files.push(file(
            &format!("{dir}/bin/{name}"),
            0o755,
            &format!("#!/bin/sh\nset -eu\n{body}"),
        ));
    }
}

/// A composite buildpack (version 0.0.1) with one order group of `(id, optional)`, each
/// member at version 0.0.1.
fn composite(files: &mut Vec<CnbFile>, id: &str, group: &[(&str, bool)]) {
    let group: Vec<(&str, &str, bool)> = group.iter().map(|(m, o)| (*m, "0.0.1", *o)).collect();
    composite_at(files, id, "0.0.1", &group);
}

/// A composite buildpack at `version` with one order group of `(id, version, optional)`.
fn composite_at(files: &mut Vec<CnbFile>, id: &str, version: &str, group: &[(&str, &str, bool)]) {
    let mut text = format!(
        "api = \"0.10\"\n\n[buildpack]\nid = \"{id}\"\nversion = \"{version}\"\n\n[[order]]\n"
    );
    for (member, member_version, optional) in group {
        text.push_str(&format!(
            "[[order.group]]\nid = \"{member}\"\nversion = \"{member_version}\"\noptional = {optional}\n"
        ));
    }
    files.push(file(
        &format!(
            "buildpacks/{}/{version}/buildpack.toml",
            id.replace('/', "_")
        ),
        0o644,
        &text,
    ));
}

/// `order.toml` of groups of ids (each version 0.0.1).
fn order(files: &mut Vec<CnbFile>, groups: &[&[&str]]) {
    let mut text = String::new();
    for group in groups {
        text.push_str("[[order]]\n");
        for id in *group {
            text.push_str(&format!(
                "[[order.group]]\nid = \"{id}\"\nversion = \"0.0.1\"\n"
            ));
        }
    }
    files.push(file("order.toml", 0o644, &text));
}

const HTTPD_DETECT: &str = r#"[ -d static ] || exit 100
if [ -e "$CNB_PLATFORM_DIR/env/HTTPD_FAIL" ]; then
  echo "httpd: HTTPD_FAIL is set" >&2
  exit 1
fi
printf '[[provides]]\nname = "httpd"\n' >> "$CNB_BUILD_PLAN_PATH"
"#;

const HTTPD_BUILD: &str = r#"grep -q 'name = "httpd"' "$CNB_BP_PLAN_PATH" || { echo "httpd: not in the plan" >&2; exit 1; }
grep -q 'root = "static"' "$CNB_BP_PLAN_PATH" || { echo "httpd: no root in the plan" >&2; exit 1; }
L="$CNB_LAYERS_DIR/httpd"
if grep -q 'version = "1"' "$L.toml" 2>/dev/null && [ -x "$L/bin/serve" ]; then
  echo "reusing httpd"
else
  echo "building httpd"
  rm -rf "$L"
  mkdir -p "$L/bin" "$L/env" "$L/env.launch" "$L/env.build"
  printf '#!/bin/sh\nexec httpd -f -p "$PORT" -h "$HTTPD_ROOT"\n' > "$L/bin/serve"
  chmod 755 "$L/bin/serve"
  printf '/workspace/static' > "$L/env/HTTPD_ROOT.default"
  printf '8080' > "$L/env.launch/PORT.default"
  printf '1' > "$L/env.build/HTTPD_BUILT"
  # The work a real install does (fetch and compile a runtime), for benchmarks: with the
  # build variable HTTPD_INSTALL_MB=N, N MiB hashed and a runtime of N/32 MiB written.
  mb=$(cat "$CNB_PLATFORM_DIR/env/HTTPD_INSTALL_MB" 2>/dev/null || echo 0)
  if [ "$mb" -gt 0 ]; then
    echo "compiling httpd ($mb MiB)"
    head -c $((mb * 1048576)) /dev/zero | sha256sum > "$L/checksum"
    head -c $((mb * 32768)) /dev/urandom > "$L/runtime.bin"
  fi
fi
printf '[types]\nlaunch = true\nbuild = true\ncache = true\n\n[metadata]\nversion = "1"\n' > "$L.toml"

C="$CNB_LAYERS_DIR/counter"
mkdir -p "$C"
n=$(cat "$C/count" 2>/dev/null || echo 0)
echo $((n + 1)) > "$C/count"
printf '[types]\ncache = true\n' > "$C.toml"

mkdir -p "$CNB_LAYERS_DIR/scratch"
echo junk > "$CNB_LAYERS_DIR/scratch/junk"
printf '[metadata]\nnote = "no types"\n' > "$CNB_LAYERS_DIR/scratch.toml"

O="$CNB_LAYERS_DIR/launch-only"
if [ -e "$O.toml" ] && [ ! -d "$O" ]; then
  echo "reusing launch-only"
else
  mkdir -p "$O"
  echo "only at launch" > "$O/README"
fi
printf '[types]\nlaunch = true\n' > "$O.toml"

builds=$(sed -n 's/^builds = //p' "$CNB_LAYERS_DIR/store.toml" 2>/dev/null || true)
printf '[metadata]\nbuilds = %s\n' $((${builds:-0} + 1)) > "$CNB_LAYERS_DIR/store.toml"
printf '[[labels]]\nkey = "io.test.httpd"\nvalue = "yes"\n' > "$CNB_LAYERS_DIR/launch.toml"
"#;

const PROCFILE_DETECT: &str = r#"[ -f Procfile ] || exit 100
if [ -d static ]; then
  printf '[[requires]]\nname = "httpd"\n\n[requires.metadata]\nroot = "static"\n' >> "$CNB_BUILD_PLAN_PATH"
fi
"#;

const PROCFILE_BUILD: &str = r#"{
  echo "serve=$(command -v serve || true)"
  echo "HTTPD_BUILT=${HTTPD_BUILT:-}"
  echo "PORT_SET=${PORT+yes}"
  echo "HTTPD_ROOT=${HTTPD_ROOT:-}"
} > .build-observations
out="$CNB_LAYERS_DIR/launch.toml"
: > "$out"
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in ''|'#'*) continue ;; esac
  type=${line%%:*}
  cmd=${line#*:}
  cmd=${cmd# }
  default=false
  [ "$type" = web ] && default=true
  cmd=$(printf '%s' "$cmd" | sed 's/\\/\\\\/g; s/"/\\"/g')
  printf '[[processes]]\ntype = "%s"\ncommand = ["sh", "-c", "%s"]\ndefault = %s\n\n' "$type" "$cmd" "$default" >> "$out"
done < Procfile
printf '[[processes]]\ntype = "greet"\ncommand = ["echo", "hello"]\nargs = ["world"]\n\n' >> "$out"
printf '[[processes]]\ntype = "env-dump"\ncommand = ["env"]\n\n' >> "$out"
printf '[[slices]]\npaths = ["static"]\n' >> "$out"
"#;

/// A builder's buildpacks: components `(id, detect, build)`, one composite
/// `(id, [(member, optional)])`, and the order's groups.
struct Spec<'a> {
    components: &'a [(&'a str, &'a str, &'a str)],
    composite: (&'a str, &'a [(&'a str, bool)]),
    order: &'a [&'a [&'a str]],
}

impl Spec<'_> {
    fn write(&self, files: &mut Vec<CnbFile>) {
        for (id, detect, build) in self.components {
            component(files, id, detect, build);
        }
        composite(files, self.composite.0, self.composite.1);
        order(files, self.order);
    }
}

const HTTPD: Spec = Spec {
    components: &[
        ("test/httpd", HTTPD_DETECT, HTTPD_BUILD),
        ("test/procfile", PROCFILE_DETECT, PROCFILE_BUILD),
        (
            "test/needs-python",
            "printf '[[requires]]\\nname = \"python\"\\n' >> \"$CNB_BUILD_PLAN_PATH\"\n",
            "echo \"needs-python: nobody provides python, this never runs\" >&2\nexit 1\n",
        ),
    ],
    composite: (
        "test/web-meta",
        &[("test/procfile", false), ("test/needs-python", true)],
    ),
    order: &[&["test/httpd", "test/web-meta"], &["test/procfile"]],
};

const RUNTIME_DETECT: &str = r#"[ -f runtime.txt ] || exit 100
printf '[[provides]]\nname = "runtime"\n\n[[or]]\n\n[[or.provides]]\nname = "runtime-lite"\n' >> "$CNB_BUILD_PLAN_PATH"
"#;

const RUNTIME_BUILD: &str = r#"flavour=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$CNB_BP_PLAN_PATH" | head -n 1)
R="$CNB_LAYERS_DIR/rt"
mkdir -p "$R/bin" "$R/env.launch"
printf '#!/bin/sh\necho "runtime %s (%s)"\n' "$(cat runtime.txt)" "$flavour" > "$R/bin/rt-version"
chmod 755 "$R/bin/rt-version"
printf '%s' "$flavour" > "$R/env.launch/RUNTIME_FLAVOUR.override"
printf '[types]\nlaunch = true\nbuild = true\n' > "$R.toml"
echo "runtime: installed $flavour"
"#;

const APP_DETECT: &str = r#"[ -f main.sh ] || exit 100
name=runtime
[ -f LITE ] && name=runtime-lite
printf '[[requires]]\nname = "%s"\n' "$name" >> "$CNB_BUILD_PLAN_PATH"
"#;

const APP_BUILD: &str = r#"command -v rt-version > /dev/null || { echo "app: rt-version is not on PATH" >&2; exit 1; }
rt-version > .runtime-at-build
D="$CNB_LAYERS_DIR/deps"
mkdir -p "$D/env.launch/main" "$D/lib"
printf 'hi' > "$D/env.launch/APP_GREETING.default"
printf 'main' > "$D/env.launch/main/APP_ROLE.override"
echo "a library" > "$D/lib/libdeps.txt"
printf '[types]\nlaunch = true\n\n[metadata]\nfiles = 1\n' > "$D.toml"
cat > "$CNB_LAYERS_DIR/launch.toml" <<'EOF'
[[processes]]
type = "main"
command = ["sh", "main.sh"]
args = ["default-arg"]
default = true

[[processes]]
type = "version"
command = ["rt-version"]
working-dir = "sub"

[[labels]]
key = "io.test.pipeline"
value = "yes"
EOF
"#;

const PIPELINE: Spec = Spec {
    components: &[
        ("test/runtime", RUNTIME_DETECT, RUNTIME_BUILD),
        ("test/app", APP_DETECT, APP_BUILD),
        (
            "test/lint",
            "printf '[[requires]]\\nname = \"linter\"\\n' >> \"$CNB_BUILD_PLAN_PATH\"\n",
            "echo \"lint: nobody provides a linter, this never runs\" >&2\nexit 1\n",
        ),
    ],
    composite: (
        "test/stack",
        &[("test/runtime", false), ("test/lint", true)],
    ),
    order: &[&["test/stack", "test/app"]],
};

/// A layer of `files` under `/cnb`: `/cnb`, every parent directory once, sorted (so a
/// parent comes before its children), then the files: a well-formed tree.
fn cnb_layer(files: &[CnbFile]) -> LayerBuilder {
    let mut cnb = LayerBuilder::new();
    cnb.dir("cnb", 0o755);
    let dirs: std::collections::BTreeSet<String> = files
        .iter()
        .flat_map(|file| {
            std::path::Path::new(&file.path)
                .ancestors()
                .skip(1)
                .filter(|dir| !dir.as_os_str().is_empty())
                .map(|dir| format!("cnb/{}", dir.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    for dir in &dirs {
        cnb.dir(dir, 0o755);
    }
    for file in files {
        cnb.file(
            &format!("cnb/{}", file.path),
            file.mode,
            file.content.as_bytes(),
        );
    }
    cnb
}

/// The busybox rootfs with the `cnb` user and its home.
fn cnb_rootfs() -> Result<LayerBuilder, FixtureError> {
    let mut layer = busybox_rootfs(PASSWD, GROUP)?;
    layer
        .dir("home", 0o755)
        .dir_owned("home/cnb", 0o755, (CNB_USER_ID, CNB_GROUP_ID));
    Ok(layer)
}

fn cnb_config(entrypoint: Option<Vec<String>>, env: Vec<String>) -> ConfigOverride {
    ConfigOverride {
        entrypoint,
        cmd: None,
        env: Some(env),
        working_dir: None,
        user: Some(format!("{CNB_USER_ID}:{CNB_GROUP_ID}")),
    }
}

/// The run image: the busybox rootfs with the `cnb` user, `User 1000:1000`, one layer.
pub fn cnb_run_image() -> Result<BuiltImage, FixtureError> {
    Ok(ImageBuilder::new()
        .layer(cnb_rootfs()?.build(LayerCompression::Gzip))
        .config(cnb_config(None, vec![PATH_ENV.to_string()]).apply())
        .build())
}

/// A builder image: the run image's rootfs, then a layer with `/cnb` (order, run image
/// `run_image`, buildpacks), `/workspace` and `/layers` owned by the build user.
pub fn cnb_builder_image(builder: CnbBuilder, run_image: &str) -> Result<BuiltImage, FixtureError> {
    let mut cnb = cnb_layer(&builder.cnb_files(run_image));
    cnb.dir_owned("workspace", 0o755, (CNB_USER_ID, CNB_GROUP_ID))
        .dir_owned("layers", 0o755, (CNB_USER_ID, CNB_GROUP_ID))
        .dir_owned("platform", 0o755, (CNB_USER_ID, CNB_GROUP_ID));
    Ok(ImageBuilder::new()
        .layer(cnb_rootfs()?.build(LayerCompression::Gzip))
        .layer(cnb.build(LayerCompression::Gzip))
        .config(
            cnb_config(
                None,
                vec![
                    PATH_ENV.to_string(),
                    format!("CNB_USER_ID={CNB_USER_ID}"),
                    format!("CNB_GROUP_ID={CNB_GROUP_ID}"),
                ],
            )
            .apply(),
        )
        .build())
}

/// Buildpackage fixtures (Distribution spec): images whose layers hold only buildpacks
/// under `/cnb/buildpacks/<escaped id>/<version>/`, one layer per buildpack, labelled
/// `io.buildpacks.buildpackage.metadata` and `io.buildpacks.buildpack.layers`. Their
/// buildpacks are none of the builders': `--buildpack` must bring them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnbBuildpackage {
    /// `test/extra@0.0.2`: always detects; its launch layer has `bin/extra-hello`
    /// (prints `hello from test/extra`), the default process `extra`.
    Extra,
    /// The composite `test/extra-meta@0.0.3` = `[test/extra@0.0.2, test/greeting@0.0.1
    /// (optional)]`, carrying all three; `test/greeting` adds the process `greeting`
    /// (`echo greetings from a composite`).
    Meta,
}

const EXTRA_BUILD: &str = r#"L="$CNB_LAYERS_DIR/extra"
mkdir -p "$L/bin"
printf '#!/bin/sh\necho "hello from test/extra"\n' > "$L/bin/extra-hello"
chmod 755 "$L/bin/extra-hello"
printf '[types]\nlaunch = true\n' > "$L.toml"
printf '[[processes]]\ntype = "extra"\ncommand = ["extra-hello"]\ndefault = true\n' > "$CNB_LAYERS_DIR/launch.toml"
echo "extra: built by a buildpackage"
"#;

const GREETING_BUILD: &str = r#"printf '[[processes]]\ntype = "greeting"\ncommand = ["echo", "greetings from a composite"]\n' > "$CNB_LAYERS_DIR/launch.toml"
echo "greeting: built by a composite buildpackage"
"#;

impl CnbBuildpackage {
    /// The buildpack it stands for: `(id, version)`.
    pub fn key(self) -> (&'static str, &'static str) {
        match self {
            CnbBuildpackage::Extra => ("test/extra", "0.0.2"),
            CnbBuildpackage::Meta => ("test/extra-meta", "0.0.3"),
        }
    }

    /// Every buildpack it carries: `(id, version)` and its files (paths under `/cnb`).
    pub fn buildpacks(self) -> Vec<((&'static str, &'static str), Vec<CnbFile>)> {
        let extra = {
            let mut files = Vec::new();
            component_at(&mut files, "test/extra", "0.0.2", "exit 0\n", EXTRA_BUILD);
            (("test/extra", "0.0.2"), files)
        };
        match self {
            CnbBuildpackage::Extra => vec![extra],
            CnbBuildpackage::Meta => {
                let mut greeting = Vec::new();
                component(&mut greeting, "test/greeting", "exit 0\n", GREETING_BUILD);
                let mut meta = Vec::new();
                composite_at(
                    &mut meta,
                    "test/extra-meta",
                    "0.0.3",
                    &[
                        ("test/extra", "0.0.2", false),
                        ("test/greeting", "0.0.1", true),
                    ],
                );
                vec![
                    extra,
                    (("test/greeting", "0.0.1"), greeting),
                    (("test/extra-meta", "0.0.3"), meta),
                ]
            }
        }
    }

    /// The buildpackage image.
    pub fn image(self) -> BuiltImage {
        let layers: Vec<(&str, &str, BuiltBlob)> = self
            .buildpacks()
            .into_iter()
            .map(|((id, version), files)| {
                (id, version, cnb_layer(&files).build(LayerCompression::Gzip))
            })
            .collect();
        let (id, version) = self.key();
        let mut listed: std::collections::BTreeMap<&str, serde_json::Value> = Default::default();
        for (layer_id, layer_version, layer) in &layers {
            listed.insert(
                layer_id,
                serde_json::json!({ *layer_version: {
                    "api": "0.10",
                    "layerDiffID": layer.diff_id,
                    "homepage": format!("https://example.test/{layer_id}"),
                }}),
            );
        }
        let labels = [
            (
                "io.buildpacks.buildpackage.metadata",
                serde_json::json!({ "id": id, "version": version, "stacks": [{ "id": "*" }] }),
            ),
            ("io.buildpacks.buildpack.layers", serde_json::json!(listed)),
        ];
        buildpackage(layers.into_iter().map(|(_, _, layer)| layer), &labels)
    }

    /// Writes the buildpackage as a `.cnb` file at `path` (a tar of its OCI layout).
    pub fn write_cnb_file(self, path: &std::path::Path) -> Result<(), FixtureError> {
        self.image().write_archive(path, "latest")
    }

    /// Writes the buildpack it stands for as a directory at `dir` (`buildpack.toml` at
    /// its root), as `--buildpack DIR` takes one; only [`CnbBuildpackage::Extra`]'s is a
    /// component buildpack that needs nothing else.
    pub fn write_dir(self, dir: &std::path::Path) -> Result<(), FixtureError> {
        let (id, version) = self.key();
        let prefix = format!("buildpacks/{}/{version}/", id.replace('/', "_"));
        let files: Vec<CnbFile> = self
            .buildpacks()
            .into_iter()
            .flat_map(|(_, files)| files)
            .filter_map(|f| {
                let path = f.path.strip_prefix(&prefix)?.to_string();
                Some(CnbFile { path, ..f })
            })
            .collect();
        write_files(dir, &files)
    }
}

/// Buildpackages that must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostileBuildpackage {
    /// Its labels name the buildpack `../../etc` (version `x`): a path, not an id.
    PathInLabel,
    /// A well-labelled `test/extra@0.0.2` whose layer also writes `/etc/profile.d/evil.sh`.
    OutsideTree,
}

/// A hostile buildpackage image (see [`HostileBuildpackage`]).
pub fn cnb_hostile_buildpackage(kind: HostileBuildpackage) -> BuiltImage {
    let mut files = Vec::new();
    component_at(&mut files, "test/extra", "0.0.2", "exit 0\n", EXTRA_BUILD);
    let mut layer = cnb_layer(&files);
    let id = match kind {
        HostileBuildpackage::PathInLabel => "../../etc",
        HostileBuildpackage::OutsideTree => {
            layer.dir("etc", 0o755).dir("etc/profile.d", 0o755).file(
                "etc/profile.d/evil.sh",
                0o755,
                b"echo evil\n",
            );
            "test/extra"
        }
    };
    let version = if id == "test/extra" { "0.0.2" } else { "x" };
    let labels = [
        (
            "io.buildpacks.buildpackage.metadata",
            serde_json::json!({ "id": id, "version": version }),
        ),
        (
            "io.buildpacks.buildpack.layers",
            serde_json::json!({ id: { version: { "api": "0.10" } } }),
        ),
    ];
    buildpackage(
        std::iter::once(layer.build(LayerCompression::Gzip)),
        &labels,
    )
}

/// An image of `layers` with `labels` (values as JSON text) and nothing else in its
/// config, as buildpackages are.
fn buildpackage(
    layers: impl Iterator<Item = BuiltBlob>,
    labels: &[(&str, serde_json::Value)],
) -> BuiltImage {
    let labels = labels
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    layers
        .fold(ImageBuilder::new(), ImageBuilder::layer)
        .config(RuntimeConfig {
            labels: Some(labels),
            ..RuntimeConfig::default()
        })
        .build()
}

/// Writes `files` under `dir` with their modes.
fn write_files(dir: &std::path::Path, files: &[CnbFile]) -> Result<(), FixtureError> {
    use std::os::unix::fs::PermissionsExt as _;
    for file in files {
        let path = dir.join(&file.path);
        let io = |action| io_error(action, &path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("create"))?;
        }
        std::fs::write(&path, &file.content).map_err(io("write"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))
            .map_err(io("chmod"))?;
    }
    Ok(())
}
