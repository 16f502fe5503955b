//! The IDs `locald ps` shows: every process the supervisor starts (a
//! service's run, a one-off run) gets a short ID, unique in the project for
//! as long as the process lives, and for a one-off run as long as its log is
//! kept (so `locald logs ID` never means two runs).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// Hex digits in an ID: 16.7 million values, so a random pick collides
/// with a live one about never, and is drawn again when it does.
const ID_DIGITS: usize = 6;

/// The IDs in use in one supervisor.
#[derive(Debug)]
pub struct Ids {
    live: Mutex<BTreeSet<String>>,
    /// Where one-off runs keep their logs (`ID.log`): an ID with a log
    /// there is taken.
    runs_dir: PathBuf,
}

impl Ids {
    pub fn new(runs_dir: PathBuf) -> Ids {
        Ids {
            live: Mutex::new(BTreeSet::new()),
            runs_dir,
        }
    }

    /// A new ID, reserved until [`Ids::release`].
    pub fn allocate(&self) -> String {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let id = random_id();
            if live.contains(&id) || self.runs_dir.join(format!("{id}.log")).exists() {
                continue;
            }
            live.insert(id.clone());
            return id;
        }
    }

    pub fn release(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// Six random lowercase hex digits (from the kernel's generator; the clock
/// and a counter if it fails, still unique within the caller's checks).
fn random_id() -> String {
    let mut bytes = [0u8; 4];
    // SAFETY: writes at most `bytes.len()` bytes into our buffer.
    let read = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    let value = if read == bytes.len() as isize {
        u32::from_ne_bytes(bytes)
    } else {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        nanos.wrapping_mul(2654435761) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
    };
    format!("{:06x}", value & 0xff_ffff)[..ID_DIGITS].to_string()
}

/// `host` or `container`, as `ps` says it.
pub fn kind(service: &crate::model::Service) -> &'static str {
    if service.is_container() {
        "container"
    } else {
        "host"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_hex_and_never_reused_while_live_or_logged() {
        let dir = tempfile::tempdir().unwrap();
        let ids = Ids::new(dir.path().to_path_buf());
        let many: BTreeSet<String> = (0..2000).map(|_| ids.allocate()).collect();
        assert_eq!(many.len(), 2000, "no ID handed out twice while live");
        for id in &many {
            assert_eq!(id.len(), 6);
            assert!(id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
        // A released ID whose run left a log stays taken.
        let kept = many.iter().next().unwrap().clone();
        std::fs::write(dir.path().join(format!("{kept}.log")), "").unwrap();
        for id in &many {
            ids.release(id);
        }
        assert!((0..5000).all(|_| {
            let id = ids.allocate();
            ids.release(&id);
            id != kept
        }));
    }
}
