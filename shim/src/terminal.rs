//! Terminal support: receiving the pty master from the container over the console socket,
//! putting the caller's terminal in raw mode (restored on drop), and keeping window sizes in step.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::cmsg_space;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

/// Waits for libcontainer's init to send the pty master over the console socket.
pub fn receive_pty_master(listener: &UnixListener) -> Result<OwnedFd> {
    let (stream, _) = listener
        .accept()
        .context("accepting on the console socket")?;
    let mut name = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = cmsg_space!([std::os::fd::RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receiving the pty master")?;
    for cmsg in message
        .cmsgs()
        .context("reading the console socket message")?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("the console socket message carried no file descriptor")
}

/// Binds the console socket at `path`, replacing a stale one from a killed shim.
pub fn bind_console_socket(path: &Path) -> Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))
}

/// Puts a terminal in raw mode and restores its previous settings when dropped, so every exit
/// path of the shim that unwinds normally gives the user their terminal back.
pub struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    /// Returns `None` when `fd` is not a terminal (nothing to change).
    pub fn enter(fd: BorrowedFd<'fd>) -> Result<Option<RawMode<'fd>>> {
        if !nix::unistd::isatty(fd).unwrap_or(false) {
            return Ok(None);
        }
        let saved = termios::tcgetattr(fd).context("tcgetattr")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).context("tcsetattr(raw)")?;
        Ok(Some(RawMode { fd, saved }))
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of the terminal `from` (if it is one) onto the pty `to`.
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read and write one `winsize` through a valid pointer.
    unsafe {
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

/// The first of stdin/stdout that is a terminal: where the user's window size comes from.
pub fn user_terminal<'a>(stdin: BorrowedFd<'a>, stdout: BorrowedFd<'a>) -> Option<BorrowedFd<'a>> {
    [stdin, stdout]
        .into_iter()
        .find(|fd| nix::unistd::isatty(fd.as_fd()).unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::pty::openpty;

    #[test]
    fn raw_mode_is_restored_on_drop() {
        let pty = openpty(None, None).unwrap();
        let before = termios::tcgetattr(pty.slave.as_fd()).unwrap();
        assert!(before.local_flags.contains(termios::LocalFlags::ICANON));
        {
            let _raw = RawMode::enter(pty.slave.as_fd()).unwrap().unwrap();
            let during = termios::tcgetattr(pty.slave.as_fd()).unwrap();
            assert!(!during.local_flags.contains(termios::LocalFlags::ICANON));
        }
        let after = termios::tcgetattr(pty.slave.as_fd()).unwrap();
        assert!(after.local_flags.contains(termios::LocalFlags::ICANON));
    }

    #[test]
    fn raw_mode_skips_non_terminals() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        assert!(RawMode::enter(read.as_fd()).unwrap().is_none());
    }

    #[test]
    fn window_size_is_copied() {
        let source = openpty(None, None).unwrap();
        let target = openpty(None, None).unwrap();
        let size = libc::winsize {
            ws_row: 33,
            ws_col: 101,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        unsafe { libc::ioctl(source.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        copy_window_size(source.slave.as_fd(), target.master.as_fd());
        let mut got: libc::winsize = unsafe { std::mem::zeroed() };
        unsafe { libc::ioctl(target.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut got) };
        assert_eq!((got.ws_row, got.ws_col), (33, 101));
    }

    #[test]
    fn pty_master_travels_over_the_console_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = bind_console_socket(&path).unwrap();
        let pty = openpty(None, None).unwrap();
        let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let fds = [pty.master.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
        nix::sys::socket::sendmsg::<()>(
            client.as_raw_fd(),
            &iov,
            &[nix::sys::socket::ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let received = receive_pty_master(&listener).unwrap();
        // The received descriptor is the same pty: writing to it shows up on the slave.
        nix::unistd::write(&received, b"x\n").unwrap();
        let mut buf = [0u8; 8];
        let n = nix::unistd::read(pty.slave.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..1], b"x", "read {n} bytes");
    }
}
