//! The blocking client of a running supervisor, used by the CLI verbs
//! (`status`, `start`, `stop`, `restart`, `down`). Connecting also clears
//! the files a killed supervisor left behind.
//!
//! Every step is bounded, so a stopped (SIGSTOP) or wedged supervisor cannot
//! hang the CLI: connecting and writing by `SO_SNDTIMEO` (the kernel bounds a
//! Unix socket `connect` by it when the listen backlog is full), reading by
//! `SO_RCVTIMEO`. The supervisor answers a request that takes time (a stop
//! waiting for its grace period, `down`) with a `working` line every
//! [`super::protocol::HEARTBEAT`] once it has taken the request up, so the
//! read timeout bounds the silence, not the work. A request the client gave
//! up on is tied to its connection: the supervisor drops it unexecuted when
//! it finds the connection closed (see `server.rs`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    connect, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, UnixAddr,
};
use nix::sys::time::TimeVal;

use crate::program::Program;
use crate::project::state_dir::StateDir;
use crate::supervisor::console::StopWaits;
use crate::supervisor::protocol::{
    now_unix_ms, ProcessInfo, ReloadReport, Request, Response, ServiceStatus,
};
use crate::supervisor::wait::{Baseline, WaitOutcome};
use crate::supervisor::SupervisorError;

/// How long the CLI waits for the supervisor to accept a connection or to
/// say anything (an answer or a `working` line) before giving up on it,
/// unless [`ANSWER_TIMEOUT_VAR`] says otherwise.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variable overriding [`ANSWER_TIMEOUT`] (a duration such as
/// `2s` or `500ms`): for slow machines, and for tests.
pub const ANSWER_TIMEOUT_VAR: &str = "LOCALD_ANSWER_TIMEOUT";

/// [`ANSWER_TIMEOUT`], or what [`ANSWER_TIMEOUT_VAR`] sets (when it parses).
pub fn answer_timeout() -> Duration {
    std::env::var(ANSWER_TIMEOUT_VAR)
        .ok()
        .and_then(|text| humantime::parse_duration(text.trim()).ok())
        .filter(|timeout| !timeout.is_zero())
        .unwrap_or(ANSWER_TIMEOUT)
}

/// How often a wait for an answer looks at the interrupt flag, in ms.
const LOOK: u16 = 20;
/// How long after its timeout a `wait` request may still be answered.
const WAIT_MARGIN: Duration = Duration::from_secs(1);

/// A connection to a live supervisor.
pub struct Client {
    stream: BufReader<UnixStream>,
    socket: PathBuf,
    state: StateDir,
    timeout: Duration,
}

/// Connect to `socket`, bounded by `timeout` (also left on the socket as its
/// write timeout).
fn connect_bounded(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let fd: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    setsockopt(&fd, sockopt::SendTimeout, &timeval(timeout)).map_err(io::Error::from)?;
    let address = UnixAddr::new(path).map_err(io::Error::from)?;
    match connect(fd.as_raw_fd(), &address) {
        Ok(()) => Ok(UnixStream::from(fd)),
        // A full backlog past SO_SNDTIMEO: the supervisor accepts nothing.
        Err(nix::errno::Errno::EAGAIN) => Err(io::Error::from(io::ErrorKind::TimedOut)),
        Err(errno) => Err(io::Error::from(errno)),
    }
}

/// A socket timeout; never zero, which the kernel reads as "no timeout".
fn timeval(timeout: Duration) -> TimeVal {
    let timeout = timeout.max(Duration::from_millis(1));
    TimeVal::new(timeout.as_secs() as _, timeout.subsec_micros() as _)
}

impl Client {
    /// Connect to the supervisor of the project whose state directory is
    /// `state_dir`; `None` when none runs (stale socket and pid files from a
    /// dead one are removed on the way). Bounded by [`answer_timeout`].
    pub fn connect(state_dir: &Path) -> Result<Option<Client>, SupervisorError> {
        let state = StateDir::new(state_dir);
        // Refuse to talk through a `.locald` someone else prepared.
        if !state.check()? {
            return Ok(None);
        }
        let socket = state.socket();
        let timeout = answer_timeout();
        match connect_bounded(&socket, timeout) {
            Ok(stream) => {
                let mut client = Client {
                    stream: BufReader::new(stream),
                    socket,
                    state,
                    timeout,
                };
                client.set_timeout(timeout)?;
                Ok(Some(client))
            }
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                // A supervisor that holds the lock is alive (maybe still
                // binding its socket): leave its files alone.
                if !state.is_locked() {
                    state.remove_runtime_files();
                }
                Ok(None)
            }
            Err(error) if is_timeout(&error) => Err(not_answering(&state, timeout)),
            Err(source) => Err(SupervisorError::Connection {
                path: socket,
                source,
            }),
        }
    }

    /// Bound every later wait for the supervisor (its next line, a write) to
    /// `timeout` instead of [`answer_timeout`]; `up --wait --timeout` uses it
    /// so that it ends at its own timeout.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), SupervisorError> {
        let stream = self.stream.get_ref();
        let apply = |option| -> io::Result<()> {
            match option {
                true => setsockopt(stream, sockopt::ReceiveTimeout, &timeval(timeout)),
                false => setsockopt(stream, sockopt::SendTimeout, &timeval(timeout)),
            }
            .map_err(io::Error::from)
        };
        apply(true)
            .and_then(|()| apply(false))
            .map_err(|source| SupervisorError::Connection {
                path: self.socket.clone(),
                source,
            })?;
        self.timeout = timeout;
        Ok(())
    }

    fn io_error(&self, source: io::Error) -> SupervisorError {
        if is_timeout(&source) {
            not_answering(&self.state, self.timeout)
        } else {
            SupervisorError::Connection {
                path: self.socket.clone(),
                source,
            }
        }
    }

    fn request(&mut self, request: &Request) -> Result<Response, SupervisorError> {
        self.send(request)?;
        self.answer(|_| {})
    }

    fn send(&mut self, request: &Request) -> Result<(), SupervisorError> {
        let mut line = serde_json::to_vec(request)
            .map_err(|error| SupervisorError::Protocol(error.to_string()))?;
        line.push(b'\n');
        if let Err(error) = self.stream.get_mut().write_all(&line) {
            return Err(self.io_error(error));
        }
        Ok(())
    }

    /// The answer to the request sent; `working` runs at each interim line.
    fn answer(&mut self, working: impl FnMut(&Client)) -> Result<Response, SupervisorError> {
        self.answer_by(Client::next_line, working)
    }

    /// [`Client::answer`], each line read by `next`.
    fn answer_by(
        &mut self,
        mut next: impl FnMut(&mut Client) -> Result<String, SupervisorError>,
        mut working: impl FnMut(&Client),
    ) -> Result<Response, SupervisorError> {
        let response = loop {
            let answer = next(self)?;
            let response: Response = serde_json::from_str(answer.trim_end())
                .map_err(|error| SupervisorError::Protocol(error.to_string()))?;
            // Still working on it, and alive: wait for the next line.
            if !response.working {
                break response;
            }
            working(self);
        };
        if response.ok {
            Ok(response)
        } else {
            Err(SupervisorError::Rejected {
                message: response
                    .error
                    .unwrap_or_else(|| "request failed".to_string()),
                diagnostic: response.diagnostic,
            })
        }
    }

    /// The dashboard's address (with its token), `None` when it serves none.
    pub fn dashboard(&mut self) -> Result<Option<String>, SupervisorError> {
        Ok(self.request(&Request::Dashboard)?.dashboard)
    }

    /// The supervisor's next line, bounded by the read timeout.
    fn next_line(&mut self) -> Result<String, SupervisorError> {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => Err(SupervisorError::Protocol(
                "the supervisor closed the connection".into(),
            )),
            Ok(_) => Ok(line),
            Err(error) => Err(self.io_error(error)),
        }
    }

    /// [`Client::next_line`], waiting for it in slices of [`LOOK`] that look
    /// at the interrupt flag (a read blocked in the kernel would only end at
    /// the read timeout), and giving up at `limit`.
    fn next_line_interruptible(
        &mut self,
        (limit, whole): (Instant, Duration),
    ) -> Result<String, SupervisorError> {
        let silent_since = Instant::now();
        while self.stream.buffer().is_empty() {
            if crate::sandbox::interrupt::take() {
                return Err(SupervisorError::Interrupted);
            }
            let now = Instant::now();
            if now >= limit {
                return Err(not_answering(&self.state, whole));
            }
            if now.duration_since(silent_since) >= self.timeout {
                return Err(not_answering(&self.state, self.timeout));
            }
            let mut fds = [PollFd::new(
                self.stream.get_ref().as_fd(),
                PollFlags::POLLIN,
            )];
            match poll(&mut fds, PollTimeout::from(LOOK)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => {}
                Ok(_) => break,
                Err(errno) => return Err(self.io_error(io::Error::from(errno))),
            }
        }
        self.next_line()
    }

    /// Returns once `services` (those not stopped, when `None`) are ready,
    /// one of them fails after `baseline` (the counters of when the request
    /// is taken up, when `None`), or `timeout` passes: the supervisor's
    /// verdict. It follows the services' state changes; the client only
    /// waits for the answer, ended at once by Ctrl-C
    /// ([`SupervisorError::Interrupted`]; the supervisor drops the wait when
    /// the connection closes). Bounded like every request: by the read
    /// timeout between two lines (the supervisor says `working` every
    /// [`crate::supervisor::protocol::HEARTBEAT`]), and in all by `timeout`
    /// plus that margin.
    pub fn wait(
        &mut self,
        services: Option<Vec<String>>,
        baseline: Option<Baseline>,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, SupervisorError> {
        self.send(&Request::Wait {
            services,
            baseline,
            // Saturated, never wrapped: a timeout past u64 milliseconds
            // (584 million years) is as good as none.
            timeout_ms: timeout
                .map(|timeout| u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
        })?;
        // The supervisor answers at the timeout; the margin is for that
        // answer to arrive. Far in the future when the wait is unbounded
        // (or its end is past what an `Instant` can hold, which a script's
        // `timeout` may ask for): then only Ctrl-C and a silent supervisor
        // end it.
        let far = Duration::from_secs(100 * 365 * 86_400);
        let whole = timeout
            .and_then(|timeout| timeout.checked_add(self.timeout.min(WAIT_MARGIN)))
            .unwrap_or(far)
            .min(far);
        let limit = (Instant::now() + whole, whole);
        let response = self.answer_by(|client| client.next_line_interruptible(limit), |_| {})?;
        response
            .wait
            .ok_or_else(|| SupervisorError::Protocol("a wait answered without its outcome".into()))
    }

    pub fn status(&mut self) -> Result<Vec<ServiceStatus>, SupervisorError> {
        let response = self.request(&Request::Status)?;
        Ok(response.services.unwrap_or_default())
    }

    /// The processes the supervisor runs (`all`: and the finished one-off
    /// runs whose log is kept).
    pub fn processes(&mut self, all: bool) -> Result<Vec<ProcessInfo>, SupervisorError> {
        let response = self.request(&Request::Ps { all })?;
        Ok(response.processes.unwrap_or_default())
    }

    /// Start `command` in `service`'s world as a one-off run under the
    /// supervisor; returns at once with its process (its ID).
    pub fn run_detached(
        &mut self,
        service: &str,
        command: &Program,
    ) -> Result<ProcessInfo, SupervisorError> {
        let response = self.request(&Request::Run {
            service: service.to_string(),
            program: command.clone(),
        })?;
        response
            .processes
            .and_then(|mut processes| processes.pop())
            .ok_or_else(|| SupervisorError::Protocol("no process in the answer".into()))
    }

    /// Start a service (and what it depends on).
    pub fn start(&mut self, service: &str) -> Result<(), SupervisorError> {
        self.request(&Request::Start {
            service: service.to_string(),
        })
        .map(drop)
    }

    /// Stop one service, or all of them (dependents first) with `None`;
    /// returns once the processes are gone. The supervisor keeps running.
    pub fn stop(&mut self, service: Option<&str>) -> Result<(), SupervisorError> {
        let service = service.map(str::to_string);
        self.send(&Request::Stop {
            service: service.clone(),
        })?;
        self.stopping(service)
    }

    /// Stop (if running) and start a service again.
    pub fn restart(&mut self, service: &str) -> Result<(), SupervisorError> {
        self.send(&Request::Restart {
            service: service.to_string(),
        })?;
        self.stopping(Some(service.to_string()))
    }

    /// The answer to a `stop` or `restart` of `service` (all with `None`):
    /// once the wait is noticeable, says which services it waits for and
    /// that a Ctrl-C kills them now; a Ctrl-C (or SIGTERM) meanwhile has the
    /// supervisor kill them, and the stop ends at once.
    fn stopping(&mut self, service: Option<String>) -> Result<(), SupervisorError> {
        let asked = Instant::now();
        let mut waits = StopWaits::default();
        let mut killed = false;
        self.answer(|client| {
            if !killed && crate::sandbox::interrupt::take() {
                killed = true;
                let kill = Request::Kill {
                    service: service.clone(),
                };
                if let Ok(Some(mut other)) = Client::connect(client.state.path()) {
                    if other.request(&kill).is_ok() {
                        match &service {
                            Some(name) => eprintln!("locald: killing {name} now"),
                            None => eprintln!("locald: killing every service still stopping"),
                        }
                    }
                }
            }
            if !killed && asked.elapsed() >= StopWaits::NOTICEABLE {
                client.say_waits(&mut waits);
            }
        })
        .map(drop)
    }

    /// Have the supervisor read the project's config again and apply it;
    /// returns once removed and changed services are stopped and the new
    /// ones are started (not yet healthy). A config error leaves everything
    /// as it was and comes back as [`SupervisorError::Rejected`].
    pub fn reload(&mut self) -> Result<ReloadReport, SupervisorError> {
        Ok(self.request(&Request::Reload)?.reload.unwrap_or_default())
    }

    /// Stop everything and end the supervisor; returns once every process
    /// is gone and the supervisor has exited. Says which services it waits
    /// for once the wait is noticeable; a Ctrl-C (or SIGTERM) meanwhile has
    /// the supervisor kill them at once.
    pub fn down(&mut self) -> Result<(), SupervisorError> {
        self.send(&Request::Down { force: false })?;
        let asked = Instant::now();
        let mut waits = StopWaits::default();
        // Held until the end: the supervisor drops a request whose
        // connection closed before it took it up.
        let mut forced: Option<Client> = None;
        self.answer(|client| {
            if forced.is_none() {
                forced = client.force_if_interrupted();
            }
            if forced.is_none() && asked.elapsed() >= StopWaits::NOTICEABLE {
                client.say_waits(&mut waits);
            }
        })?;
        // The supervisor holds this connection until it exits (bounded by
        // the read timeout: it exits within moments of answering).
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Err(error) if is_timeout(&error) => Err(self.io_error(error)),
            _ => Ok(()),
        }
    }
}

impl Client {
    /// On a Ctrl-C, a second connection asking for a forced `down`.
    fn force_if_interrupted(&self) -> Option<Client> {
        if !crate::sandbox::interrupt::take() {
            return None;
        }
        let mut other = Client::connect(self.state.path()).ok().flatten()?;
        other.send(&Request::Down { force: true }).ok()?;
        eprintln!("locald: killing every service still running");
        Some(other)
    }

    /// Says which services the stop waits for (see [`StopWaits`]), reading
    /// their status on a second connection; silent if that fails (the
    /// supervisor may be exiting).
    fn say_waits(&self, waits: &mut StopWaits) {
        let Some(statuses) = Client::connect(self.state.path())
            .ok()
            .flatten()
            .and_then(|mut other| other.status().ok())
        else {
            return;
        };
        if let Some(notice) = waits.notice(&statuses, now_unix_ms(), "Ctrl-C") {
            eprintln!("locald: {notice}");
        }
    }
}

/// The error for a supervisor that stayed silent for `waited`, naming its
/// pid (from its pid file) so the user can look at it.
fn not_answering(state: &StateDir, waited: Duration) -> SupervisorError {
    SupervisorError::NotAnswering {
        pid: state
            .read_pid()
            .map_or_else(|| "unknown".to_string(), |pid| pid.to_string()),
        waited,
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn no_socket_means_no_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Client::connect(dir.path()).unwrap().is_none());
    }

    #[test]
    fn stale_socket_and_pid_file_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        // A socket nobody listens on: what a killed supervisor leaves.
        drop(UnixListener::bind(state.socket()).unwrap());
        std::fs::write(state.pid_file(), "999999").unwrap();
        assert!(Client::connect(dir.path()).unwrap().is_none());
        assert!(!state.socket().exists());
        assert!(!state.pid_file().exists());
    }

    #[test]
    fn files_of_a_starting_supervisor_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let _lock = state.try_lock().unwrap().unwrap();
        drop(UnixListener::bind(state.socket()).unwrap());
        assert!(Client::connect(dir.path()).unwrap().is_none());
        assert!(state.socket().exists(), "the lock holder owns its files");
    }

    #[test]
    fn a_silent_supervisor_times_out_naming_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        // Listening but never accepting: what a SIGSTOPped supervisor looks
        // like (the kernel completes connections into the backlog).
        let _listener = UnixListener::bind(state.socket()).unwrap();
        std::fs::write(state.pid_file(), "4242\n").unwrap();
        let mut client = Client::connect(dir.path()).unwrap().unwrap();
        client.set_timeout(Duration::from_millis(100)).unwrap();
        let error = client.status().unwrap_err();
        assert!(
            matches!(error, SupervisorError::NotAnswering { .. }),
            "{error}"
        );
        let message = error.to_string();
        assert!(
            message.contains("(pid 4242) did not answer within 100ms"),
            "{message}"
        );
        assert!(message.contains("kill -CONT 4242"), "{message}");
        assert!(matches!(
            client.stop(Some("web")).unwrap_err(),
            SupervisorError::NotAnswering { .. }
        ));
    }

    #[test]
    fn connecting_to_a_full_backlog_is_bounded() {
        use nix::sys::socket::{bind, listen, Backlog};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.sock");
        let listener = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(listener.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        listen(&listener, Backlog::new(0).unwrap()).unwrap();
        // Fill the backlog with connections nobody accepts.
        let mut pending = Vec::new();
        loop {
            let fd = socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )
            .unwrap();
            match connect(fd.as_raw_fd(), &UnixAddr::new(&path).unwrap()) {
                Ok(()) => pending.push(fd),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(errno) => panic!("unexpected {errno}"),
            }
            assert!(pending.len() < 64, "the backlog never filled");
        }
        let error = connect_bounded(&path, Duration::from_millis(100)).unwrap_err();
        assert!(is_timeout(&error), "{error}");
    }

    #[test]
    fn requests_and_rejections_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(StateDir::new(dir.path()).socket()).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "{\"command\":\"restart\",\"service\":\"web\"}\n");
            // Still working, then the answer: the client waits past the first.
            reader
                .get_mut()
                .write_all(b"{\"ok\":true,\"working\":true}\n{\"ok\":false,\"error\":\"nope\"}\n")
                .unwrap();
        });
        let mut client = Client::connect(dir.path()).unwrap().unwrap();
        let error = client.restart("web").unwrap_err();
        assert!(
            matches!(error, SupervisorError::Rejected { ref message, diagnostic: false } if message == "nope")
        );
        server.join().unwrap();
    }
}
