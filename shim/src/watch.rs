//! Watching the running container until its init exits: signals forwarded (a stop request
//! escalated to SIGKILL after the stop timeout), the terminal relayed, and the exit status reaped.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use locald_shim_protocol::exit::signal_exit_code;

use crate::signals::{self, SignalPipe};
use crate::terminal::{self, RawMode};

/// Watches the running container: forwards signals, escalates a stop request to SIGKILL after the
/// stop timeout, pumps the terminal, and returns the exit status once the init is gone.
pub(crate) struct ContainerWatch<'a> {
    pub(crate) init: Pid,
    pub(crate) signals: &'a SignalPipe,
    pub(crate) stop_timeout: std::time::Duration,
    pub(crate) kill_deadline: Option<Instant>,
    pub(crate) stop_requested: bool,
}

impl ContainerWatch<'_> {
    fn poll_timeout(&self) -> PollTimeout {
        match self.kill_deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up so that we never spin on a zero timeout before the deadline.
                let millis = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    /// Handles pending signals; `window_changed` is set on SIGWINCH for the terminal pump.
    fn handle_signals(&mut self, window_changed: &mut bool) {
        for signal in self.signals.drain() {
            match signal {
                Signal::SIGCHLD => {}
                Signal::SIGWINCH => *window_changed = true,
                signal if signals::is_stop_request(signal) && self.stop_requested => {
                    // A second stop request: the user means it.
                    let _ = kill(self.init, Signal::SIGKILL);
                }
                signal => {
                    let _ = kill(self.init, signal);
                    if signals::is_stop_request(signal) {
                        self.stop_requested = true;
                        // A timeout too long to be a time (years) is no deadline at all.
                        self.kill_deadline = Instant::now().checked_add(self.stop_timeout);
                    }
                }
            }
        }
        if let Some(deadline) = self.kill_deadline {
            if Instant::now() >= deadline {
                let _ = kill(self.init, Signal::SIGKILL);
                self.kill_deadline = None;
            }
        }
    }

    /// The init's exit status if it has exited (reaping it).
    fn try_reap(&self) -> Result<Option<i32>> {
        match waitpid(self.init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Some(signal_exit_code(signal as i32))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => Ok(None),
            Err(err) => Err(err).context("waiting for the container's init"),
        }
    }

    /// Non-terminal mode: the container has the shim's own stdio; only signals and the optional
    /// /dev/null substitute pipes need attention.
    pub(crate) fn run_plain(&mut self, mut discard: Vec<OwnedFd>) -> Result<i32> {
        let mut scratch = [0u8; 8192];
        loop {
            if let Some(status) = self.try_reap()? {
                return Ok(status);
            }
            let mut fds = vec![PollFd::new(self.signals.fd(), PollFlags::POLLIN)];
            fds.extend(
                discard
                    .iter()
                    .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, self.poll_timeout()) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("poll"),
            }
            let finished: Vec<bool> = fds[1..]
                .iter()
                .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            let mut index = 0;
            discard.retain(|fd| {
                let ready = finished[index];
                index += 1;
                !ready || matches!(nix::unistd::read(fd.as_fd(), &mut scratch), Ok(n) if n > 0)
            });
            self.handle_signals(&mut false);
        }
    }

    /// Terminal mode: relay the user's stdin to the pty master and the master to stdout, in raw
    /// mode, and keep the pty's window size equal to the user's.
    pub(crate) fn run_with_terminal(&mut self, master: OwnedFd) -> Result<i32> {
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        let user_terminal = terminal::user_terminal(stdin.as_fd(), stdout.as_fd());
        let _raw = RawMode::enter(stdin.as_fd())?;
        set_nonblocking(master.as_fd())?;

        let mut stdin_open = true;
        let mut master_open = true;
        let mut exit_status = None;
        let mut buffer = [0u8; 16384];
        loop {
            if exit_status.is_none() {
                exit_status = self.try_reap()?;
            }
            // Once the init is gone, the rest of its pid namespace is killed and the pty's slave
            // side closes: drain what is left, then finish.
            if let Some(status) = exit_status {
                if !master_open || !drain_master(&master, &mut buffer) {
                    return Ok(status);
                }
            }
            let mut fds = vec![
                PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                PollFd::new(
                    master.as_fd(),
                    if master_open {
                        PollFlags::POLLIN
                    } else {
                        PollFlags::empty()
                    },
                ),
            ];
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            let timeout = if exit_status.is_some() {
                PollTimeout::from(50u8)
            } else {
                self.poll_timeout()
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(err) => return Err(err).context("poll"),
            }
            let master_ready = fds[1].revents().is_some_and(|r| !r.is_empty());
            let stdin_ready = stdin_open && fds[2].revents().is_some_and(|r| !r.is_empty());
            drop(fds);

            if master_ready {
                match nix::unistd::read(master.as_fd(), &mut buffer) {
                    Ok(0) | Err(Errno::EIO) => master_open = false,
                    Ok(n) => write_all_stdout(&buffer[..n]),
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(err) => return Err(err).context("reading the pty"),
                }
            }
            if stdin_ready {
                match nix::unistd::read(stdin.as_fd(), &mut buffer) {
                    Ok(0) => stdin_open = false,
                    Ok(n) => {
                        if write_all_fd(master.as_fd(), &buffer[..n]).is_err() {
                            stdin_open = false;
                        }
                    }
                    Err(Errno::EAGAIN | Errno::EINTR) => {}
                    Err(_) => stdin_open = false,
                }
            }
            let mut window_changed = false;
            self.handle_signals(&mut window_changed);
            if window_changed {
                if let Some(user) = user_terminal {
                    terminal::copy_window_size(user, master.as_fd());
                }
            }
        }
    }
}

/// Reads what the pty still holds; returns false once it is closed or empty.
fn drain_master(master: &OwnedFd, buffer: &mut [u8]) -> bool {
    loop {
        match nix::unistd::read(master.as_fd(), buffer) {
            Ok(0) | Err(Errno::EIO) => return false,
            Ok(n) => write_all_stdout(&buffer[..n]),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => return true,
            Err(_) => return false,
        }
    }
}

fn write_all_stdout(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
}

fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(100u8));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).context("F_GETFL")?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).context("F_SETFL")?;
    Ok(())
}
