//! Turns the signals the shim must react to into bytes on a pipe, so the single-threaded main loop
//! can wait for them with `poll()` beside the terminal file descriptors.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::pipe2;

// The signals forwarded to the container's init as they are, and those that ask it to stop:
// the same list `locald __service-init` forwards, since a container service runs under it.
pub use locald_shim_protocol::signals::{is_stop_request, FORWARDED_SIGNALS};

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
    /// Installs handlers for [`FORWARDED_SIGNALS`] and SIGCHLD. Handlers (unlike ignored dispositions)
    /// are reset by `execve`, so the container's processes start with default dispositions.
    pub fn install() -> Result<SignalPipe> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("signal pipe")?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::Relaxed);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in FORWARDED_SIGNALS.iter().copied().chain([Signal::SIGCHLD]) {
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

    /// Every forwarded signal reaches the pipe instead of its default disposition: before the
    /// list was shared, SIGALRM (a valid `stop_signal`) killed this test binary, as it killed
    /// the shim without its clean-up.
    #[test]
    fn every_forwarded_signal_comes_out_of_the_pipe() {
        let pipe = SignalPipe::install().unwrap();
        for signal in FORWARDED_SIGNALS {
            nix::sys::signal::raise(signal).unwrap();
            assert!(pipe.drain().contains(&signal), "{signal}");
        }
        nix::sys::signal::raise(Signal::SIGCHLD).unwrap();
        assert!(pipe.drain().contains(&Signal::SIGCHLD));
    }
}
