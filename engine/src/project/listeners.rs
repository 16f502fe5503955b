//! Who listens on a TCP port, from `/proc`: the listening sockets of a port
//! (`/proc/net/tcp` and `tcp6`, by inode) and the processes holding them
//! (`/proc/PID/fd/*` links read `socket:[INODE]`).
//!
//! Two questions use it: whose is a fixed port that is already taken (so
//! that `up` can name the process instead of failing later with "address in
//! use"), and does a service's port answer from the service itself (a TCP
//! or HTTP probe must not pass because some other process listens there).
//! Processes of other users cannot be looked into without privileges: their
//! sockets stay anonymous, never mistaken for a service's.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

/// TCP state `LISTEN` as `/proc/net/tcp` writes it.
const LISTEN: &str = "0A";

/// The inodes of the TCP sockets listening on `port`, on any local address,
/// IPv4 or IPv6.
pub fn listening_sockets(port: u16) -> io::Result<BTreeSet<u64>> {
    let mut sockets = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match fs::read_to_string(table) {
            Ok(text) => sockets.extend(parse_listening(&text, port)),
            // No IPv6 in this kernel: nothing listens there.
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(sockets)
}

/// The listening sockets on `port` in the text of a `/proc/net/tcp` table.
fn parse_listening(table: &str, port: u16) -> impl Iterator<Item = u64> + '_ {
    table.lines().skip(1).filter_map(move |line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let (_, local_port) = local.rsplit_once(':')?;
        if u16::from_str_radix(local_port, 16).ok()? != port || *fields.get(3)? != LISTEN {
            return None;
        }
        fields.get(9)?.parse().ok()
    })
}

/// A process that listens on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command name (`comm`), when readable.
    pub name: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} (pid {})", self.pid),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

/// The first process found holding one of `sockets`, among those whose
/// descriptors this process may read.
pub fn holder_of(sockets: &BTreeSet<u64>) -> Option<Holder> {
    if sockets.is_empty() {
        return None;
    }
    let pids = fs::read_dir("/proc").ok()?.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        name.to_str()?.parse::<u32>().ok()
    });
    for pid in pids {
        if holds_any(pid, sockets) {
            let name = fs::read_to_string(format!("/proc/{pid}/comm"))
                .ok()
                .map(|comm| comm.trim_end().to_string());
            return Some(Holder { pid, name });
        }
    }
    None
}

/// Whether `root` or one of its descendants holds one of `sockets`: the
/// service's own process tree (for a container, the shim and everything in
/// the container, which run below the service's process on the host).
pub fn held_within(root: u32, sockets: &BTreeSet<u64>) -> bool {
    if sockets.is_empty() {
        return false;
    }
    let mut to_visit = vec![root];
    let mut seen = BTreeSet::new();
    while let Some(pid) = to_visit.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if holds_any(pid, sockets) {
            return true;
        }
        to_visit.extend(children(pid));
    }
    false
}

/// The children of every thread of `pid` (a process's children are listed
/// under the thread that forked them).
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Whether one of `pid`'s descriptors is one of `sockets`.
fn holds_any(pid: u32, sockets: &BTreeSet<u64>) -> bool {
    let fd_dir = format!("/proc/{pid}/fd");
    let Ok(fds) = fs::read_dir(&fd_dir) else {
        return false;
    };
    fds.filter_map(|fd| fd.ok())
        .any(|fd| socket_inode(&fd.path()).is_some_and(|inode| sockets.contains(&inode)))
}

/// The inode of the socket a `/proc/PID/fd/N` link names.
fn socket_inode(link: &Path) -> Option<u64> {
    let target = fs::read_link(link).ok()?;
    let target = target.to_str()?;
    target
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:E462 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn only_listening_sockets_of_the_port_count() {
        let found: Vec<u64> = parse_listening(TABLE, 8080).collect();
        assert_eq!(found, [4242], "an established connection is no listener");
        assert_eq!(parse_listening(TABLE, 8081).collect::<Vec<_>>(), [4444]);
        assert!(parse_listening(TABLE, 80).next().is_none());
    }

    #[test]
    fn this_process_is_found_holding_its_listener() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let sockets = listening_sockets(port).unwrap();
        assert_eq!(sockets.len(), 1);
        let me = std::process::id();
        assert!(held_within(me, &sockets));
        let holder = holder_of(&sockets).unwrap();
        assert_eq!(holder.pid, me);
        assert!(holder.to_string().ends_with(&format!("(pid {me})")));
        // A child of ours does not hold it, nor does pid 1's tree below us.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(!held_within(child.id(), &sockets));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(listener);
        assert!(listening_sockets(port).unwrap().is_empty());
    }

    #[test]
    fn a_listener_in_a_descendant_belongs_to_the_tree() {
        // A shell that starts a listener below itself (which ends when its
        // stdin closes).
        let script = "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', 0)); \
                      s.listen(); print(s.getsockname()[1], flush=True); sys.stdin.read()";
        let mut shell = std::process::Command::new("sh")
            .args(["-c", &format!("python3 -c \"{script}\"; true")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(shell.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let sockets = listening_sockets(port).unwrap();
        assert!(held_within(shell.id(), &sockets));
        assert!(!held_within(std::process::id() + 1_000_000, &sockets));
        let holder = holder_of(&sockets).unwrap();
        assert_eq!(holder.name.as_deref(), Some("python3"));
        drop(shell.stdin.take());
        assert!(shell.wait().unwrap().success());
    }
}
