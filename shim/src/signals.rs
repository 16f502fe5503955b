//! Turns the signals the shim must react to into bytes on a pipe, so the single-threaded main loop
//! can wait for them with `poll()` beside the terminal file descriptors.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::pipe2;

/// Signals forwarded to the container's init as they are.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Signals that ask the container to stop: after the first, the shim escalates to SIGKILL when
/// the stop timeout runs out or when a second one arrives.
pub fn is_stop_request(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP | Signal::SIGQUIT
    )
}

/// The write end of the self-pipe, for the async-signal-safe handler (-1 until installed).
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = WAKE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signo as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe only drops a duplicate wake-up.
        unsafe {
            let saved_errno = *libc::__errno_location();
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved_errno;
        }
    }
}

/// The read side of the self-pipe; handlers stay installed for the life of the process.
pub struct SignalPipe {
    read: OwnedFd,
    // Kept open so the handler's descriptor stays valid.
    _write: OwnedFd,
}

impl SignalPipe {
    /// Installs handlers for [`FORWARDED`] and SIGCHLD. Handlers (unlike ignored dispositions)
    /// are reset by `execve`, so the container's processes start with default dispositions.
    pub fn install() -> Result<SignalPipe> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("signal pipe")?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in FORWARDED.iter().copied().chain([Signal::SIGCHLD]) {
            // SAFETY: the handler only calls async-signal-safe functions.
            unsafe { sigaction(signal, &action) }
                .with_context(|| format!("installing a handler for {signal}"))?;
        }
        Ok(SignalPipe {
            read,
            _write: write,
        })
    }

    /// Returns the signals received since the last call, in arrival order, without blocking.
    pub fn drain(&self) -> Vec<Signal> {
        let mut received = Vec::new();
        let mut buffer = [0u8; 64];
        loop {
            match nix::unistd::read(self.read.as_fd(), &mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend(
                    buffer[..n]
                        .iter()
                        .filter_map(|&signo| Signal::try_from(i32::from(signo)).ok()),
                ),
            }
        }
        received
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_signals_come_out_of_the_pipe() {
        let pipe = SignalPipe::install().unwrap();
        nix::sys::signal::raise(Signal::SIGUSR1).unwrap();
        nix::sys::signal::raise(Signal::SIGWINCH).unwrap();
        let received = pipe.drain();
        assert!(received.contains(&Signal::SIGUSR1), "{received:?}");
        assert!(received.contains(&Signal::SIGWINCH), "{received:?}");
        assert!(pipe.drain().is_empty());
    }

    #[test]
    fn stop_requests_are_the_terminating_signals() {
        assert!(is_stop_request(Signal::SIGTERM));
        assert!(is_stop_request(Signal::SIGINT));
        assert!(!is_stop_request(Signal::SIGWINCH));
        assert!(!is_stop_request(Signal::SIGUSR1));
    }
}
