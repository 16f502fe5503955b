//! The project's state directory `.locald/` (mode 0700): where the control
//! socket, pid and lock files, persisted ports and service logs live.
//!
//! The directory sits in the project's tree, which may come from someone
//! else (a cloned repository can carry a `.locald/` full of symlinks). So
//! locald refuses a `.locald/` (or `.locald/logs/`) that is a symlink, is
//! not a directory, is owned by another user or is writable by group or
//! others, and it never follows a symlink inside: files are opened with
//! `O_NOFOLLOW` ([`open_file`]) and small files are replaced whole through a
//! fresh temporary file (`O_CREAT|O_EXCL|O_NOFOLLOW`) renamed over the old
//! name ([`write_file`]), which replaces a planted link rather than writing
//! through it.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use locald_shim_protocol::regular_file::{open_regular_with, Links, NotRegular};
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("cannot prepare state directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    #[error(
        "refusing to use state directory {path}: {reason}; \
         remove it (`rm -rf {path}`) and locald creates a private one"
    )]
    Unsafe { path: PathBuf, reason: String },
}

/// Paths inside one project's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// What `.locald/.gitignore` says.
const GITIGNORE: &str =
    "# Written by locald: its state (sockets, logs, ports) stays out of git.\n*\n";

impl StateDir {
    pub fn new(path: &Path) -> Self {
        StateDir {
            root: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("supervisor.sock")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.root.join("supervisor.pid")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("supervisor.lock")
    }

    pub fn supervisor_log(&self) -> PathBuf {
        self.root.join("supervisor.log")
    }

    pub fn ports_file(&self) -> PathBuf {
        self.root.join("ports.json")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn service_log(&self, service: &str) -> PathBuf {
        self.logs_dir().join(format!("{service}.log"))
    }

    /// Where one-off runs (`run --detach`) keep their logs, one file per
    /// run ID: beside the services' logs, out of their listing.
    pub fn runs_dir(&self) -> PathBuf {
        self.logs_dir().join("runs")
    }

    pub fn run_log(&self, id: &str) -> PathBuf {
        self.runs_dir().join(format!("{id}.log"))
    }

    /// Create `.locald/`, `.locald/logs/` and `.locald/logs/runs/` private to
    /// the user (0700), also
    /// tightening them when they already exist; refuse them when they are
    /// not safe to use (see [`StateDir::check`]).
    pub fn ensure(&self) -> Result<(), StateDirError> {
        for dir in [self.root.clone(), self.logs_dir(), self.runs_dir()] {
            let create = |source| StateDirError::Create {
                path: dir.clone(),
                source,
            };
            // Not recursive: the project root exists, and only the last
            // component is ours to create. An existing entry is checked below.
            let created = match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => true,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => false,
                Err(error) => return Err(create(error)),
            };
            check_dir(&dir)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(create)?;
            if created && dir == self.root {
                self.write_gitignore()?;
            }
        }
        Ok(())
    }

    /// `.locald/.gitignore` ignoring everything, so that no socket, log or
    /// port file lands in git whatever the project's own `.gitignore` says.
    /// Written once, when locald creates the directory: one a person removed
    /// stays removed.
    fn write_gitignore(&self) -> Result<(), StateDirError> {
        let path = self.root.join(".gitignore");
        let mut file = open_file(
            OpenOptions::new().write(true).create_new(true).mode(0o600),
            &path,
        )
        .map_err(|source| StateDirError::Create {
            path: path.clone(),
            source,
        })?;
        file.write_all(GITIGNORE.as_bytes())
            .map_err(|source| StateDirError::Create { path, source })
    }

    /// Whether the state directory exists (`Ok(false)` when not), refusing
    /// one that is unsafe: a symlink, not a directory, owned by another user,
    /// or writable by group or others.
    pub fn check(&self) -> Result<bool, StateDirError> {
        match fs::symlink_metadata(&self.root) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            _ => check_dir(&self.root).map(|()| true),
        }
    }

    /// Refuse a `logs/` that is not a private directory of ours.
    pub fn check_logs(&self) -> Result<(), StateDirError> {
        check_dir(&self.logs_dir())
    }

    /// The pid the pid file names, if it is there and holds one.
    pub fn read_pid(&self) -> Option<u32> {
        let mut text = String::new();
        open_file(OpenOptions::new().read(true), &self.pid_file())
            .ok()?
            .take(64)
            .read_to_string(&mut text)
            .ok()?;
        text.trim().parse().ok()
    }

    /// Write this process's pid to the pid file (replaced whole, never
    /// written through a link).
    pub fn write_pid(&self) -> io::Result<()> {
        write_file(
            &self.pid_file(),
            format!("{}\n", std::process::id()).as_bytes(),
        )
    }

    /// Take the supervisor lock: held for the life of a supervisor, released
    /// by the kernel however it dies. `Ok(None)` when another supervisor holds it.
    pub fn try_lock(&self) -> Result<Option<Flock<File>>, StateDirError> {
        let path = self.lock_file();
        let lock_error = |source| StateDirError::Lock {
            path: path.clone(),
            source,
        };
        let file = open_file(
            OpenOptions::new().create(true).truncate(false).write(true),
            &path,
        )
        .map_err(lock_error)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(lock_error(io::Error::from(errno))),
        }
    }

    /// Whether a live supervisor holds the lock right now.
    pub fn is_locked(&self) -> bool {
        if !self.lock_file().exists() {
            return false;
        }
        matches!(self.try_lock(), Ok(None))
    }

    /// Remove this supervisor's socket (the one with `identity`: device and
    /// inode) and pid file (naming this process), and nothing that replaced
    /// them.
    pub fn remove_own_runtime_files(&self, identity: (u64, u64)) {
        let socket = self.socket();
        if fs::symlink_metadata(&socket)
            .is_ok_and(|metadata| (metadata.dev(), metadata.ino()) == identity)
        {
            let _ = fs::remove_file(&socket);
        }
        if self.read_pid() == Some(std::process::id()) {
            let _ = fs::remove_file(self.pid_file());
        }
    }

    /// Remove the socket and pid file a dead supervisor left behind.
    pub fn remove_runtime_files(&self) {
        for path in [self.socket(), self.pid_file()] {
            if let Err(error) = fs::remove_file(&path) {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %error, "cannot remove stale file");
                }
            }
        }
    }
}

/// Refuse a state directory (or its `logs/`) that someone else could have
/// prepared: only a real directory of ours, not writable by others, is used.
fn check_dir(dir: &Path) -> Result<(), StateDirError> {
    let unsafe_dir = |reason: String| StateDirError::Unsafe {
        path: dir.to_path_buf(),
        reason,
    };
    let metadata = fs::symlink_metadata(dir).map_err(|source| StateDirError::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    if metadata.file_type().is_symlink() {
        return Err(unsafe_dir("it is a symbolic link".into()));
    }
    if !metadata.is_dir() {
        return Err(unsafe_dir("it is not a directory".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if metadata.uid() != me {
        return Err(unsafe_dir(format!(
            "it is owned by uid {}, not by you (uid {me})",
            metadata.uid()
        )));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(unsafe_dir(format!(
            "it is writable by group or others (mode {:o})",
            metadata.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Open a file under the state directory without following a symlink at
/// its name, and refuse anything but a regular file with one link (a FIFO
/// would block, a hard link would write into another file). `O_NONBLOCK`
/// makes opening a FIFO fail or return at once instead of hanging; it does
/// nothing to regular files.
pub fn open_file(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let refuse = |what: &str| {
        io::Error::other(format!(
            "{} is {what}; locald only uses regular files in its state directory \
             (remove it and try again)",
            path.display()
        ))
    };
    let file = open_regular_with(options, path, Links::Refuse).map_err(|error| {
        match error.raw_os_error() {
            Some(libc::ELOOP) => refuse("a symbolic link"),
            Some(libc::ENXIO) => refuse("a FIFO or socket"),
            _ if NotRegular::of(&error).is_some() => refuse("not a regular file"),
            _ => error,
        }
    })?;
    if file.metadata()?.nlink() > 1 {
        return Err(refuse("a hard link to another file"));
    }
    Ok(file)
}

/// Replace `path` with `contents` (mode 0600): write a fresh temporary file
/// beside it (`O_EXCL|O_NOFOLLOW`, so nothing planted is written through)
/// and rename it over `path`, which replaces a symlink or hard link there
/// instead of following it. Readers see the old file or the new one.
pub fn write_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name to write to"))?;
    let temp = path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
        file.write_all(contents)?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinked_or_foreign_state_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let link = dir.path().join("linked");
        symlink(&elsewhere, &link).unwrap();
        let error = StateDir::new(&link).ensure().unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(StateDir::new(&link).check().is_err());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

        let logs_linked = StateDir::new(&dir.path().join("logs-linked"));
        fs::create_dir(logs_linked.path()).unwrap();
        symlink(&elsewhere, logs_linked.logs_dir()).unwrap();
        assert!(matches!(
            logs_linked.ensure(),
            Err(StateDirError::Unsafe { .. })
        ));

        let open = StateDir::new(&dir.path().join("open"));
        fs::create_dir(open.path()).unwrap();
        fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let error = open.ensure().unwrap_err();
        assert!(
            error.to_string().contains("writable by group or others"),
            "{error}"
        );

        let foreign = StateDir::new(&dir.path().join("foreign"));
        fs::create_dir(foreign.path()).unwrap();
        std::os::unix::fs::chown(foreign.path(), Some(65534), Some(65534)).unwrap();
        let error = foreign.ensure().unwrap_err();
        assert!(error.to_string().contains("owned by uid 65534"), "{error}");
        assert!(error
            .to_string()
            .contains(&foreign.path().display().to_string()));
    }

    #[test]
    fn state_files_are_never_written_through_links() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(&dir.path().join(".locald"));
        state.ensure().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        symlink(&victim, state.pid_file()).unwrap();
        symlink(&victim, state.lock_file()).unwrap();

        // The pid file is replaced whole: the link goes, the target stays.
        state.write_pid().unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!fs::symlink_metadata(state.pid_file()).unwrap().is_symlink());
        assert_eq!(state.read_pid(), Some(std::process::id()));

        // The lock file cannot be replaced (a holder locks its inode): refused.
        let error = state.try_lock().unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");

        // A hard link would write into the other file: refused too.
        let hard = state.path().join("hard");
        fs::hard_link(&victim, &hard).unwrap();
        let error = open_file(OpenOptions::new().append(true), &hard).unwrap_err();
        assert!(error.to_string().contains("hard link"), "{error}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn ensure_creates_private_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(&dir.path().join(".locald"));
        fs::create_dir(state.path()).unwrap();
        fs::set_permissions(state.path(), fs::Permissions::from_mode(0o755)).unwrap();
        state.ensure().unwrap();
        for path in [state.path().to_path_buf(), state.logs_dir()] {
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", path.display());
        }
    }

    #[test]
    fn a_new_state_dir_ignores_itself_in_git_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(&dir.path().join(".locald"));
        state.ensure().unwrap();
        let gitignore = dir.path().join(".locald/.gitignore");
        let text = fs::read_to_string(&gitignore).unwrap();
        assert_eq!(text.lines().last(), Some("*"));
        // Removed by a person: not written again.
        fs::remove_file(&gitignore).unwrap();
        state.ensure().unwrap();
        assert!(!gitignore.exists());
        // An existing state dir from before is left as it is.
        let old = StateDir::new(&dir.path().join("old"));
        fs::create_dir(dir.path().join("old")).unwrap();
        old.ensure().unwrap();
        assert!(!dir.path().join("old/.gitignore").exists());
    }

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        assert!(!state.is_locked());
        let held = state.try_lock().unwrap().expect("first lock succeeds");
        assert!(state.try_lock().unwrap().is_none());
        assert!(state.is_locked());
        drop(held);
        assert!(!state.is_locked());
    }
}
