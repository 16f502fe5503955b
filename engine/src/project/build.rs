//! A built service's build (`build = {...}`), below both the primitives and the
//! supervisor: its settings resolved ([`ServiceBuild`]: the builder from the service or
//! the user config, the tag), the fingerprint of its source and settings, and the record
//! of its last successful build in `.locald/build-<service>`, which says whether `up`
//! must build again.
//!
//! The fingerprint covers the build settings and the source tree under `path` less
//! `.git/` and `.locald/` at its top and what the tree's `.gitignore` files ignore (as
//! git reads them, negations and `**` included; only the `.gitignore` files inside the
//! tree count, so the result does not depend on what lies above it; as in git, a
//! directory counts only through what it holds). Each file or link counts
//! by its path, type, permissions, size and modification and change times, as `make`
//! and cargo judge freshness: no file is read, so a huge file costs nothing to check,
//! and a rewrite that restores the modification time still moves the change time.
//! Links are not followed (their target text counts): a link out of the tree is the
//! link, as the build copies it. The tree may be a hostile checkout, which `up` reads in
//! the supervisor: a `.gitignore` is read only if it is a regular file and no link (as
//! git does), and bounded.
//!
//! The record holds the fingerprint and the digest of the image the build stored; it is
//! written (whole, never through a link) only once the image is stored, so a build
//! killed half-way leaves the previous record, and the next `up` builds again.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::state_dir::{self, StateDir};
use crate::model::{Project, Service};
use crate::program::Program;

/// Why a service's build cannot be planned or checked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceBuildError {
    #[error("service `{0}` is not built from source (it has no `build`)")]
    NotBuilt(String),
    #[error(
        "service `{service}` has no builder: set one in its `build` (`build = {{ builder = \
         \"REF\" }}` in locald.toml), or a default for every project in {user_config} \
         (`[build]` then `builder = \"REF\"`)"
    )]
    NoBuilder {
        service: String,
        user_config: String,
    },
    #[error(transparent)]
    UserConfig(#[from] locald_image::UserConfigError),
    #[error("cannot read the source of service `{service}` in {}: {reason}", .path.display())]
    Source {
        service: String,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot read the image store: {0}")]
    Store(#[from] locald_image::Error),
}

/// A built service's build, settled: what `locald build SVC` and `up` build with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceBuild {
    pub service: String,
    /// The absolute source directory.
    pub source: PathBuf,
    pub builder: String,
    pub buildpacks: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Where the image is stored (the service's `image`).
    pub tag: String,
}

impl ServiceBuild {
    /// The build of `service`, its builder taken from the user config when it names
    /// none.
    pub fn of(service: &Service) -> Result<ServiceBuild, ServiceBuildError> {
        let (Some(build), Some(tag)) = (&service.build, &service.image) else {
            return Err(ServiceBuildError::NotBuilt(service.name.clone()));
        };
        let builder = match &build.builder {
            Some(builder) => builder.clone(),
            None => locald_image::user_config::configured_default_builder()?.ok_or_else(|| {
                ServiceBuildError::NoBuilder {
                    service: service.name.clone(),
                    user_config: locald_image::user_config::user_config_path().map_or_else(
                        || "~/.config/locald/config.toml".to_string(),
                        |path| path.display().to_string(),
                    ),
                }
            })?,
        };
        Ok(ServiceBuild {
            service: service.name.clone(),
            source: build.path.clone(),
            builder,
            buildpacks: build.buildpacks.clone(),
            env: build.env.clone(),
            tag: tag.clone(),
        })
    }

    /// The fingerprint of the settings and the source tree (see the module's doc).
    pub fn fingerprint(&self) -> Result<String, ServiceBuildError> {
        let mut hash = Sha256::new();
        // Every field framed by its length, so no two different inputs run together.
        let mut put = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        put(b"locald build fingerprint 1");
        put(self.builder.as_bytes());
        put(self.tag.as_bytes());
        for buildpack in &self.buildpacks {
            put(b"buildpack");
            put(buildpack.as_bytes());
        }
        for (name, value) in &self.env {
            put(b"env");
            put(name.as_bytes());
            put(value.as_bytes());
        }
        for entry in self.source_entries()? {
            put(&entry);
        }
        Ok(hex::encode(hash.finalize()))
    }

    /// One line of bytes per entry of the source tree, in path order.
    fn source_entries(&self) -> Result<Vec<Vec<u8>>, ServiceBuildError> {
        use std::os::unix::ffi::OsStrExt;
        let fail = |path: &Path, reason: String| ServiceBuildError::Source {
            service: self.service.clone(),
            path: path.to_path_buf(),
            reason,
        };
        let top = std::fs::metadata(&self.source).map_err(|e| fail(&self.source, e.to_string()))?;
        if !top.is_dir() {
            return Err(fail(&self.source, "not a directory".into()));
        }
        let mut entries = Vec::new();
        for path in source_files(&self.source).map_err(|(path, reason)| fail(&path, reason))? {
            let path = path.as_path();
            let relative = path.strip_prefix(&self.source).unwrap_or(path);
            let metadata =
                std::fs::symlink_metadata(path).map_err(|e| fail(path, e.to_string()))?;
            let mut line = relative.as_os_str().as_bytes().to_vec();
            line.push(0);
            let kind = metadata.file_type();
            // As git does, a directory counts only through what it holds: one whose
            // files are all ignored is no source.
            if kind.is_dir() {
                continue;
            }
            let what = if kind.is_symlink() {
                let target = std::fs::read_link(path).map_err(|e| fail(path, e.to_string()))?;
                format!("link {}", target.display())
            } else {
                format!(
                    "file {:o} {} {}.{} {}.{}",
                    metadata.mode(),
                    metadata.size(),
                    metadata.mtime(),
                    metadata.mtime_nsec(),
                    metadata.ctime(),
                    metadata.ctime_nsec()
                )
            };
            line.extend_from_slice(what.as_bytes());
            entries.push(line);
        }
        entries.sort();
        Ok(entries)
    }

    /// Whether the last successful build recorded in `project`'s state directory was of
    /// this fingerprint and its image is still stored under the tag, unchanged.
    pub fn is_current(
        &self,
        project: &Project,
        fingerprint: &str,
    ) -> Result<bool, ServiceBuildError> {
        let Some(record) = read_record(&project.root, &self.service) else {
            return Ok(false);
        };
        if record.fingerprint != fingerprint {
            return Ok(false);
        }
        let store = locald_image::ImageStore::open_default()?;
        Ok(store
            .resolve(&self.tag)?
            .is_some_and(|image| image.manifest_digest == record.digest))
    }
}

/// The launcher in a built image. Its entrypoint is `/cnb/process/<type>`, which runs that
/// process type; a command of one's own goes to the launcher instead, which gives it the
/// launch environment (the layers' `env.launch`, their `bin` on `PATH`), as
/// `docker run --entrypoint launcher IMAGE CMD` does for `pack`-built images.
pub const LAUNCHER: &str = "/cnb/lifecycle/launcher";

/// The entrypoint and arguments that run `program` through the launcher of a built
/// image: a shell line as the launcher's shell text (`sh -c LINE`), an argv after `--`
/// (run directly).
pub fn through_launcher(program: &Program) -> (Vec<String>, Vec<String>) {
    let args = match program {
        Program::Shell(line) => vec![line.clone()],
        Program::Exec(words) => std::iter::once("--".to_string())
            .chain(words.iter().cloned())
            .collect(),
    };
    (vec![LAUNCHER.to_string()], args)
}

/// Bytes of one `.gitignore` read, at most.
const GITIGNORE_BYTES: u64 = 1 << 20;

/// Every path under `root` (not followed through links), less `.git` and `.locald` at its
/// top and what the tree's `.gitignore` files ignore (a deeper one's rules first, as git
/// reads them; an ignored directory is not entered). Unsorted. What a build copies
/// (`script::api::build`) and what the fingerprint covers, so that they never differ.
///
/// The tree may be a hostile checkout, read by `up` in the supervisor: a `.gitignore` is
/// read only if it is a regular file and not a link (git does not follow a link there
/// either; `-> /dev/zero` would be read forever, a FIFO would block), bounded.
pub fn source_files(root: &Path) -> Result<Vec<PathBuf>, (PathBuf, String)> {
    use ignore::gitignore::Gitignore;
    use ignore::Match;
    let mut found = Vec::new();
    // (depth, the rules of a directory at that depth) for the directories above the one
    // being read: a depth-first walk pops the rules of those it has left.
    let mut rules: Vec<(usize, Gitignore)> = Vec::new();
    let mut pending = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        while rules.last().is_some_and(|(d, _)| *d >= depth) {
            rules.pop();
        }
        if let Some(gitignore) = read_gitignore(&dir)? {
            rules.push((depth, gitignore));
        }
        let io = |e: std::io::Error| (dir.clone(), e.to_string());
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if depth == 0 && (name == ".git" || name == ".locald") {
                continue;
            }
            let path = entry.path();
            let is_dir = entry.file_type().map_err(io)?.is_dir();
            let ignored =
                rules
                    .iter()
                    .rev()
                    .find_map(|(_, rules)| match rules.matched(&path, is_dir) {
                        Match::None => None,
                        Match::Ignore(_) => Some(true),
                        Match::Whitelist(_) => Some(false),
                    });
            if ignored == Some(true) {
                continue;
            }
            if is_dir {
                pending.push((path.clone(), depth + 1));
            }
            found.push(path);
        }
    }
    Ok(found)
}

/// The rules of `dir/.gitignore`, if it is a regular file (not a link, a FIFO or a device).
fn read_gitignore(dir: &Path) -> Result<Option<ignore::gitignore::Gitignore>, (PathBuf, String)> {
    use locald_shim_protocol::regular_file::{open_regular_with, Links};
    let path = dir.join(".gitignore");
    let fail = |reason: String| (path.clone(), reason);
    let file = match open_regular_with(OpenOptions::new().read(true), &path, Links::Refuse) {
        Ok(file) => file,
        // Missing, a link (ELOOP), or not a regular file: no rules, as for git.
        Err(_) => return Ok(None),
    };
    let mut bytes = Vec::new();
    file.take(GITIGNORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > GITIGNORE_BYTES {
        return Err(fail(format!("larger than {GITIGNORE_BYTES} bytes")));
    }
    let mut builder = ignore::gitignore::GitignoreBuilder::new(dir);
    for line in String::from_utf8_lossy(&bytes).lines() {
        // A line git cannot read is no rule, as in git.
        let _ = builder.add_line(Some(path.clone()), line);
    }
    builder.build().map(Some).map_err(|e| fail(e.to_string()))
}

/// What the supervisor hands the process that builds a service
/// (`locald __build-service`, in [`BUILD_REQUEST_ENV`] as JSON): the build as the
/// supervisor loaded it, so the process does not read the config again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRequest {
    pub project_root: PathBuf,
    pub build: ServiceBuild,
}

/// The hidden entry the supervisor runs a service's build through.
pub const BUILD_ENTRY: &str = "__build-service";
/// The variable holding its [`BuildRequest`] (the environment rather than the argv: the
/// build's env may hold secrets, and another user can read a process's argv).
pub const BUILD_REQUEST_ENV: &str = "LOCALD_BUILD_REQUEST";

/// What `.locald/build-<service>` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub fingerprint: String,
    /// The manifest digest of the image the build stored.
    pub digest: String,
}

/// The record's file.
fn record_path(state: &StateDir, service: &str) -> PathBuf {
    state.path().join(format!("build-{service}"))
}

/// The record of `service`'s last successful build; `None` when there is none or it
/// cannot be read (then the service is built again).
pub fn read_record(project_root: &Path, service: &str) -> Option<BuildRecord> {
    let path = record_path(&StateDir::new(&project_root.join(".locald")), service);
    let mut file = state_dir::open_file(OpenOptions::new().read(true), &path).ok()?;
    let mut text = String::new();
    // A record is two short lines; anything longer is not one.
    file.by_ref().take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records a successful build of `service` (the state directory made if missing).
pub fn write_record(
    project_root: &Path,
    service: &str,
    record: &BuildRecord,
) -> Result<(), std::io::Error> {
    let state = StateDir::new(&project_root.join(".locald"));
    state.ensure().map_err(std::io::Error::other)?;
    let json = serde_json::to_string(record).map_err(std::io::Error::other)?;
    state_dir::write_file(&record_path(&state, service), json.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Build;

    fn built(source: &Path) -> ServiceBuild {
        ServiceBuild {
            service: "web".into(),
            source: source.to_path_buf(),
            builder: "registry.local/builder:1".into(),
            buildpacks: Vec::new(),
            env: BTreeMap::new(),
            tag: "locald-build/p-web:latest".into(),
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_fingerprint_follows_the_source_and_the_settings() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("index.html"), "hello");
        write(&root.join("src/app.sh"), "echo");
        let build = built(root);
        let first = build.fingerprint().unwrap();
        assert_eq!(build.fingerprint().unwrap(), first, "stable");

        // An edit moves it, even one of the same size that restores the mtime.
        let before = std::fs::metadata(root.join("index.html")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(&root.join("index.html"), "jello");
        let restored = filetime_of(&before);
        set_mtime(&root.join("index.html"), restored);
        let edited = build.fingerprint().unwrap();
        assert_ne!(edited, first);

        // New files count; so does each setting.
        write(&root.join("src/new.sh"), "");
        let added = build.fingerprint().unwrap();
        assert_ne!(added, edited);
        for changed in [
            ServiceBuild {
                builder: "other:1".into(),
                ..build.clone()
            },
            ServiceBuild {
                buildpacks: vec!["bp:1".into()],
                ..build.clone()
            },
            ServiceBuild {
                env: BTreeMap::from([("BP_X".into(), "1".into())]),
                ..build.clone()
            },
        ] {
            assert_ne!(changed.fingerprint().unwrap(), added, "{changed:?}");
        }
    }

    #[test]
    fn git_locald_and_ignored_files_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("index.html"), "hello");
        // Odd patterns: a negation, `**`, an anchored path, a directory-only rule.
        write(
            &root.join(".gitignore"),
            "*.log\n!keep.log\n**/tmp/**\n/build\nnode_modules/\n# a comment\n\\#literal\n",
        );
        write(&root.join("sub/.gitignore"), "local-only\n");
        let build = built(root);
        let first = build.fingerprint().unwrap();
        for ignored in [
            ".git/HEAD",
            ".locald/logs/web.log",
            "debug.log",
            "a/b/tmp/x",
            "build/out",
            "node_modules/pkg/index.js",
            "#literal",
            "sub/local-only",
        ] {
            write(&root.join(ignored), "x");
            assert_eq!(build.fingerprint().unwrap(), first, "{ignored} counted");
        }
        for counted in ["keep.log", "src/build/out", "sub/.locald/x", "local-only"] {
            let before = build.fingerprint().unwrap();
            write(&root.join(counted), "x");
            assert_ne!(
                build.fingerprint().unwrap(),
                before,
                "{counted} not counted"
            );
        }
    }

    /// The fingerprint of `build`, or a panic if it takes more than a few seconds.
    fn fingerprint_in_time(build: ServiceBuild) -> Result<String, ServiceBuildError> {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(build.fingerprint()));
        result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the fingerprint never ended")
    }

    #[test]
    fn a_hostile_gitignore_is_not_read() {
        // A checkout (git keeps links) whose .gitignore is read forever if followed.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("index.html"), "hello");
        std::os::unix::fs::symlink("/dev/zero", root.join(".gitignore")).unwrap();
        // An unpacked tarball can hold a FIFO, whose open blocks.
        std::fs::create_dir(root.join("sub")).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("sub/.gitignore"))
            .status()
            .unwrap();
        assert!(status.success());
        write(&root.join("sub/page.html"), "x");
        let first = fingerprint_in_time(built(root)).unwrap();
        // No rules came from them: everything still counts.
        write(&root.join("sub/page.html"), "changed");
        assert_ne!(fingerprint_in_time(built(root)).unwrap(), first);
    }

    #[test]
    fn a_huge_gitignore_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let big = std::fs::File::create(root.join(".gitignore")).unwrap();
        big.set_len(GITIGNORE_BYTES + 1).unwrap();
        let error = fingerprint_in_time(built(root)).unwrap_err().to_string();
        assert!(
            error.contains(".gitignore") && error.contains("larger than"),
            "{error}"
        );
    }

    #[test]
    fn links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(&root.join("index.html"), "hello");
        write(&outside.path().join("secret"), "s");
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        let build = built(root);
        let first = build.fingerprint().unwrap();
        // What is behind the link is not the source: editing it changes nothing.
        write(&outside.path().join("secret"), "changed");
        write(&outside.path().join("more"), "x");
        assert_eq!(build.fingerprint().unwrap(), first);
        // Where the link points does.
        std::fs::remove_file(root.join("out")).unwrap();
        std::os::unix::fs::symlink("/elsewhere", root.join("out")).unwrap();
        assert_ne!(build.fingerprint().unwrap(), first);
    }

    #[test]
    fn commands_go_through_the_launcher() {
        let (entrypoint, args) = through_launcher(&Program::Shell("echo $X".into()));
        assert_eq!(
            (entrypoint, args),
            (vec![LAUNCHER.to_string()], vec!["echo $X".to_string()])
        );
        let (_, args) = through_launcher(&Program::Exec(vec!["env".into(), "-0".into()]));
        assert_eq!(args, ["--", "env", "-0"]);
    }

    #[test]
    fn a_missing_source_is_named() {
        let build = built(Path::new("/nonexistent/src"));
        let error = build.fingerprint().unwrap_err().to_string();
        assert!(
            error.contains("service `web`") && error.contains("/nonexistent/src"),
            "{error}"
        );
    }

    #[test]
    fn a_service_without_a_builder_says_where_to_set_one() {
        let mut service = Service::new("web", Path::new("/p"));
        assert!(matches!(
            ServiceBuild::of(&service),
            Err(ServiceBuildError::NotBuilt(_))
        ));
        service.build = Some(Build {
            path: "/p".into(),
            builder: Some("b:1".into()),
            buildpacks: vec!["bp:1".into()],
            env: BTreeMap::new(),
        });
        service.image = Some("locald-build/p-web:latest".into());
        let build = ServiceBuild::of(&service).unwrap();
        assert_eq!(
            (
                build.builder.as_str(),
                build.tag.as_str(),
                build.buildpacks.len()
            ),
            ("b:1", "locald-build/p-web:latest", 1)
        );
        let error = ServiceBuildError::NoBuilder {
            service: "web".into(),
            user_config: "/home/me/.config/locald/config.toml".into(),
        }
        .to_string();
        assert!(
            error.contains("service `web` has no builder")
                && error.contains("locald.toml")
                && error.contains("/home/me/.config/locald/config.toml"),
            "{error}"
        );
    }

    #[test]
    fn records_are_written_whole_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(read_record(root, "web"), None);
        let record = BuildRecord {
            fingerprint: "f".into(),
            digest: "sha256:d".into(),
        };
        write_record(root, "web", &record).unwrap();
        assert_eq!(read_record(root, "web"), Some(record.clone()));
        // A link planted where the record goes is replaced, not written through.
        let target = root.join("elsewhere");
        write(&target, "mine");
        let path = root.join(".locald/build-api");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert_eq!(read_record(root, "api"), None, "read through a link");
        write_record(root, "api", &record).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine");
        assert_eq!(read_record(root, "api"), Some(record));
    }

    fn filetime_of(metadata: &std::fs::Metadata) -> libc::timespec {
        libc::timespec {
            tv_sec: metadata.mtime(),
            tv_nsec: metadata.mtime_nsec(),
        }
    }

    /// Sets the modification time back, as `touch -r` does.
    fn set_mtime(path: &Path, mtime: libc::timespec) {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            mtime,
        ];
        // SAFETY: a valid C string and two timespecs, as utimensat wants.
        let done = unsafe { libc::utimensat(libc::AT_FDCWD, name.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(done, 0);
    }
}
