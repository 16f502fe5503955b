//! The blocking client of a running supervisor, used by the CLI verbs
//! (`status`, `start`, `stop`, `restart`, `down`). Connecting also clears
//! the files a killed supervisor left behind.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::protocol::{ReloadReport, Request, Response, ServiceStatus};
use super::state_dir::StateDir;
use super::SupervisorError;

/// A connection to a live supervisor.
pub struct Client {
    stream: BufReader<UnixStream>,
    socket: PathBuf,
}

impl Client {
    /// Connect to the supervisor of the project whose state directory is
    /// `state_dir`; `None` when none runs (stale socket and pid files from a
    /// dead one are removed on the way).
    pub fn connect(state_dir: &Path) -> Result<Option<Client>, SupervisorError> {
        let state = StateDir::new(state_dir);
        let socket = state.socket();
        match UnixStream::connect(&socket) {
            Ok(stream) => Ok(Some(Client {
                stream: BufReader::new(stream),
                socket,
            })),
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
            Err(source) => Err(SupervisorError::Connection {
                path: socket,
                source,
            }),
        }
    }

    fn request(&mut self, request: &Request) -> Result<Response, SupervisorError> {
        let connection = |source| SupervisorError::Connection {
            path: self.socket.clone(),
            source,
        };
        let mut line = serde_json::to_vec(request)
            .map_err(|error| SupervisorError::Protocol(error.to_string()))?;
        line.push(b'\n');
        self.stream.get_mut().write_all(&line).map_err(connection)?;
        let mut answer = String::new();
        let read =
            self.stream
                .read_line(&mut answer)
                .map_err(|source| SupervisorError::Connection {
                    path: self.socket.clone(),
                    source,
                })?;
        if read == 0 {
            return Err(SupervisorError::Protocol(
                "the supervisor closed the connection".into(),
            ));
        }
        let response: Response = serde_json::from_str(answer.trim_end())
            .map_err(|error| SupervisorError::Protocol(error.to_string()))?;
        if response.ok {
            Ok(response)
        } else {
            Err(SupervisorError::Rejected(
                response
                    .error
                    .unwrap_or_else(|| "request failed".to_string()),
            ))
        }
    }

    pub fn status(&mut self) -> Result<Vec<ServiceStatus>, SupervisorError> {
        let response = self.request(&Request::Status)?;
        Ok(response.services.unwrap_or_default())
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
        self.request(&Request::Stop {
            service: service.map(str::to_string),
        })
        .map(drop)
    }

    /// Stop (if running) and start a service again.
    pub fn restart(&mut self, service: &str) -> Result<(), SupervisorError> {
        self.request(&Request::Restart {
            service: service.to_string(),
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
    /// is gone and the supervisor has exited.
    pub fn down(&mut self) -> Result<(), SupervisorError> {
        self.request(&Request::Down)?;
        // The supervisor holds this connection until it exits.
        let mut rest = Vec::new();
        let _ = self.stream.read_to_end(&mut rest);
        Ok(())
    }
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
    fn requests_and_rejections_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(StateDir::new(dir.path()).socket()).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "{\"command\":\"restart\",\"service\":\"web\"}\n");
            reader
                .get_mut()
                .write_all(b"{\"ok\":false,\"error\":\"nope\"}\n")
                .unwrap();
        });
        let mut client = Client::connect(dir.path()).unwrap().unwrap();
        let error = client.restart("web").unwrap_err();
        assert!(matches!(error, SupervisorError::Rejected(ref message) if message == "nope"));
        server.join().unwrap();
    }
}
