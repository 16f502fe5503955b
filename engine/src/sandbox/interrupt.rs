//! Ctrl-C for scripts: SIGINT sets a flag that the engine's progress hook
//! turns into a clean termination of the running script. While a command runs
//! in the foreground (`run_command`: `try`, `run`, task scripts), the
//! terminal's SIGINT reaches that command too, and SIGTERM/SIGHUP are
//! forwarded to it; the flag stays up, so the script ends once the command has
//! exited, as make and just do. A script that means to go on after its
//! command was stopped (`try` offering to save a server) clears it with
//! [`take`] (`run_command`'s `on_interrupt: "continue"`).
//!
//! Long primitives that do not return to the engine (an image pull) wait on
//! [`requested`] beside their work and stop it when the flag goes up. The
//! signal that stopped a script decides the exit status: 128 + its number
//! (130 for SIGINT, 143 for SIGTERM), as a shell reports it.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The last signal that set `INTERRUPTED`.
static SIGNAL: AtomicI32 = AtomicI32::new(libc::SIGINT);
/// How often [`requested`] looks at the flag: a signal handler may only
/// touch atomics, so waiting means polling; this is what makes "at once".
const POLL: std::time::Duration = std::time::Duration::from_millis(10);
/// Pid of the foreground child, to which SIGTERM/SIGHUP are forwarded.
static FOREGROUND_CHILD: AtomicI32 = AtomicI32::new(0);
static INSTALL: Once = Once::new();

extern "C" fn on_interrupt(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

extern "C" fn on_terminate(sig: libc::c_int) {
    let child = FOREGROUND_CHILD.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
    SIGNAL.store(sig, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Installs the handlers once per process.
pub fn install() {
    INSTALL.call_once(|| {
        let int = SigAction::new(
            SigHandler::Handler(on_interrupt),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        let term = SigAction::new(
            SigHandler::Handler(on_terminate),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handlers only touch atomics and call kill(2).
        unsafe {
            let _ = signal::sigaction(Signal::SIGINT, &int);
            let _ = signal::sigaction(Signal::SIGTERM, &term);
            let _ = signal::sigaction(Signal::SIGHUP, &term);
        }
    });
}

/// Stops the running script (or follow, or wait) as `signal` would have:
/// for what is not a signal, such as stdout closed by its reader (SIGPIPE,
/// which the Rust runtime ignores).
pub fn raise(signal: libc::c_int) {
    SIGNAL.store(signal, Ordering::SeqCst);
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// True once Ctrl-C was pressed and not yet consumed.
pub fn take() -> bool {
    INTERRUPTED.swap(false, Ordering::SeqCst)
}

/// True once Ctrl-C was pressed and not yet consumed; leaves it for
/// [`take`].
pub fn pending() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Returns once Ctrl-C (or SIGTERM/SIGHUP) arrives, consuming it: the
/// caller stops what it does and ends the script as interrupted.
pub async fn requested() {
    while !take() {
        tokio::time::sleep(POLL).await;
    }
}

/// The last signal that stopped (or is stopping) the script: what a
/// primitive passes on to the processes it started.
pub fn signal() -> i32 {
    SIGNAL.load(Ordering::SeqCst)
}

/// The exit status of a script stopped by a signal: 128 + the signal.
pub fn exit_code() -> i32 {
    locald_shim_protocol::exit::signal_exit_code(SIGNAL.load(Ordering::SeqCst))
}

/// Marks `pid` as the foreground child for the lifetime of the guard. A
/// signal that arrived meanwhile stays pending: it was meant for the script
/// too.
pub struct ForegroundChild;

impl ForegroundChild {
    pub fn enter(pid: u32) -> Self {
        FOREGROUND_CHILD.store(pid as i32, Ordering::SeqCst);
        // A signal that came while the child was being started found no
        // child to pass it to: pass it now, or the script would wait for a
        // command that was never told to stop (a SIGTERM sent to locald
        // alone reaches the child only through us).
        if INTERRUPTED.load(Ordering::SeqCst) {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(pid as i32, SIGNAL.load(Ordering::SeqCst)) };
        }
        ForegroundChild
    }
}

impl Drop for ForegroundChild {
    fn drop(&mut self) {
        FOREGROUND_CHILD.store(0, Ordering::SeqCst);
    }
}
