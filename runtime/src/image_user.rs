//! Resolves Docker's `User` (`uid[:gid]`, `name[:group]`) against the image's own /etc/passwd and
//! /etc/group, never following a symlink out of the image's rootfs.

use std::fs;
use std::io::Read;

use locald_shim_protocol::regular_file::{open_regular_with, Links};
use std::path::Path;

/// Errors while resolving a container user.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?} is not in the image's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} is not in the image's /etc/group")]
    UnknownGroup(String),
}

/// The ids the container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups the image's /etc/group lists the user in.
    pub additional_gids: Vec<u32>,
    /// From /etc/passwd, used for `HOME` when the image does not set it.
    pub home: Option<String>,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `user` (empty means root) with the image's account files under `rootfs`.
pub fn resolve(user: &str, rootfs: &Path) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_image_file(rootfs, "passwd")
        .map(|text| parse_passwd(&text))
        .unwrap_or_default();
    let groups = read_image_file(rootfs, "group")
        .map(|text| parse_group(&text))
        .unwrap_or_default();

    let entry = if user_part.is_empty() {
        passwd.iter().find(|e| e.uid == 0)
    } else if let Ok(uid) = user_part.parse::<u32>() {
        passwd.iter().find(|e| e.uid == uid)
    } else {
        Some(
            passwd
                .iter()
                .find(|e| e.name == user_part)
                .ok_or_else(|| UserError::UnknownUser(user_part.to_string()))?,
        )
    };
    let uid = match user_part.parse::<u32>() {
        Ok(uid) => uid,
        Err(_) => entry.map(|e| e.uid).unwrap_or(0),
    };
    let gid = match group_part {
        Some(group) => match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|g| g.name == group)
                .map(|g| g.gid)
                .ok_or_else(|| UserError::UnknownGroup(group.to_string()))?,
        },
        // Docker: a uid that is not in /etc/passwd runs with gid 0.
        None => entry.map(|e| e.gid).unwrap_or(0),
    };
    let additional_gids = match (group_part, entry) {
        (None, Some(entry)) => groups
            .iter()
            .filter(|g| g.gid != gid && g.members.contains(&entry.name))
            .map(|g| g.gid)
            .collect(),
        _ => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: entry.map(|e| e.home.clone()),
    })
}

/// Reads `<rootfs>/etc/<name>` only if neither `etc` nor the file is a symlink (an image must not
/// make us read host files) and the file is a regular one: layers may carry FIFOs, and a
/// blocking open of an `/etc/passwd` FIFO would hang whoever builds the container's spec (the
/// supervisor included) for good, hence `O_NONBLOCK`.
fn read_image_file(rootfs: &Path, name: &str) -> Option<String> {
    let etc = rootfs.join("etc");
    if !fs::symlink_metadata(&etc).ok()?.is_dir() {
        return None;
    }
    let mut file = open_regular_with(
        fs::OpenOptions::new().read(true),
        &etc.join(name),
        Links::Refuse,
    )
    .ok()?;
    let mut text = String::new();
    // Account files are small; a huge one is not an account file.
    file.by_ref().take(4 << 20).read_to_string(&mut text).ok()?;
    Some(text)
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 7 {
                return None;
            }
            Some(PasswdEntry {
                name: fields[0].to_string(),
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
                home: fields[5].to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 4 {
                return None;
            }
            Some(GroupEntry {
                name: fields[0].to_string(),
                gid: fields[2].parse().ok()?,
                members: fields[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs_with_accounts() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nbroken line\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:root\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_and_numbers_resolve() {
        let rootfs = rootfs_with_accounts();
        let app = resolve("app", rootfs.path()).unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.additional_gids, vec![50]);
        assert_eq!(app.home.as_deref(), Some("/home/app"));

        assert_eq!(resolve("1000", rootfs.path()).unwrap().gid, 1000);
        assert_eq!(resolve("app:staff", rootfs.path()).unwrap().gid, 50);
        assert_eq!(resolve("app:7", rootfs.path()).unwrap().gid, 7);
        let root = resolve("", rootfs.path()).unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(root.additional_gids, vec![10]);
    }

    #[test]
    fn unknown_numeric_uid_gets_gid_zero() {
        let rootfs = rootfs_with_accounts();
        let user = resolve("4242", rootfs.path()).unwrap();
        assert_eq!((user.uid, user.gid, user.home), (4242, 0, None));
        assert_eq!(resolve("4242:4243", rootfs.path()).unwrap().gid, 4243);
    }

    #[test]
    fn unknown_names_are_errors() {
        let rootfs = rootfs_with_accounts();
        assert!(matches!(
            resolve("nobody", rootfs.path()),
            Err(UserError::UnknownUser(_))
        ));
        assert!(matches!(
            resolve("app:nogroup", rootfs.path()),
            Err(UserError::UnknownGroup(_))
        ));
    }

    #[test]
    fn symlinked_account_files_are_not_followed() {
        let rootfs = tempfile::tempdir().unwrap();
        fs::create_dir(rootfs.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", rootfs.path().join("etc/passwd")).unwrap();
        // The host's root account would resolve; the image has none, so names are unknown.
        assert!(resolve("root", rootfs.path()).is_err());
        assert_eq!(resolve("0", rootfs.path()).unwrap().uid, 0);
    }

    #[test]
    fn fifo_account_files_are_skipped_without_blocking() {
        // An image's layers may carry FIFOs; nobody opens their other end, so a blocking open
        // would hang this test (and the supervisor) for good.
        let rootfs = tempfile::tempdir().unwrap();
        fs::create_dir(rootfs.path().join("etc")).unwrap();
        for name in ["passwd", "group"] {
            nix::unistd::mkfifo(
                &rootfs.path().join("etc").join(name),
                nix::sys::stat::Mode::from_bits_truncate(0o644),
            )
            .unwrap();
        }
        let root = resolve("", rootfs.path()).unwrap();
        assert_eq!((root.uid, root.gid, root.home), (0, 0, None));
        assert!(matches!(
            resolve("app", rootfs.path()),
            Err(UserError::UnknownUser(_))
        ));
    }
}
