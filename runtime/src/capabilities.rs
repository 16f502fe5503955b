//! Linux capability names and the capability set of a container: Docker's default set minus
//! `CAP_NET_RAW` (containers share the host's network namespace, where a raw or packet socket
//! would see the host's own traffic), adjusted by `--cap-add` / `--cap-drop` with Docker's rules.

/// Every capability Linux defines, in bit order (`CAP_CHOWN` is bit 0, `CAP_CHECKPOINT_RESTORE`
/// bit 40). A capability's bit is its index here.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities a container gets by default: Docker's default set (moby
/// `oci/caps/defaults.go`) without `CAP_NET_RAW`, as podman does. Add it back with
/// `--cap-add NET_RAW` (`ping` needs it).
pub const DEFAULT_CAPABILITIES: [&str; 13] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The word `--cap-add` / `--cap-drop` take for every capability.
pub const ALL_WORD: &str = "ALL";

/// A capability name that is neither a Linux capability nor `ALL`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{name}` (write a name such as NET_RAW or CAP_NET_RAW, or ALL)")]
pub struct CapabilityError {
    pub name: String,
}

/// The canonical name (`CAP_NET_RAW`, or `ALL`) of `name`, written with or without the `CAP_`
/// prefix, in any case, as Docker accepts it.
pub fn canonical_name(name: &str) -> Result<String, CapabilityError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == ALL_WORD {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(CapabilityError {
            name: name.to_string(),
        })
    }
}

/// The capability set of a container given `adds` and `drops` (canonical names, see
/// [`canonical_name`]), with Docker's rules (moby `oci/caps.TweakCapabilities`): `ALL` in `adds`
/// grants every capability but the dropped ones; otherwise `ALL` in `drops` keeps only the added
/// ones; otherwise the default set minus `drops`, plus `adds`. `last_cap` is the highest
/// capability bit the running kernel knows (`/proc/sys/kernel/cap_last_cap`): `ALL` never names a
/// capability the kernel would reject. The result is in bit order, without duplicates.
pub fn resolve(adds: &[String], drops: &[String], last_cap: usize) -> Vec<String> {
    let has = |list: &[String], name: &str| list.iter().any(|item| item == name);
    let known = &ALL_CAPABILITIES[..=last_cap.min(ALL_CAPABILITIES.len() - 1)];
    let chosen: Vec<&str> = if has(adds, ALL_WORD) {
        known
            .iter()
            .copied()
            .filter(|cap| !has(drops, cap))
            .collect()
    } else if has(drops, ALL_WORD) {
        adds.iter().map(String::as_str).collect()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|cap| !has(drops, cap))
            .chain(adds.iter().map(String::as_str))
            .collect()
    };
    ALL_CAPABILITIES
        .iter()
        .filter(|cap| chosen.contains(cap))
        .map(|cap| cap.to_string())
        .collect()
}

/// The highest capability bit this kernel knows, from `/proc/sys/kernel/cap_last_cap`; all of
/// [`ALL_CAPABILITIES`] when it cannot be read.
pub fn kernel_last_cap() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(ALL_CAPABILITIES.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_accepted_with_or_without_prefix_in_any_case() {
        assert_eq!(canonical_name("NET_RAW").unwrap(), "CAP_NET_RAW");
        assert_eq!(canonical_name("cap_net_raw").unwrap(), "CAP_NET_RAW");
        assert_eq!(canonical_name("Sys_Admin").unwrap(), "CAP_SYS_ADMIN");
        assert_eq!(canonical_name("all").unwrap(), "ALL");
        let error = canonical_name("NET_RAWW").unwrap_err();
        assert_eq!(error.name, "NET_RAWW");
        assert!(error.to_string().contains("unknown capability `NET_RAWW`"));
        assert!(canonical_name("").is_err());
        assert!(canonical_name("CAP_").is_err());
    }

    #[test]
    fn bits_follow_the_kernel_numbering() {
        let bit = |name: &str| ALL_CAPABILITIES.iter().position(|c| *c == name).unwrap();
        assert_eq!(bit("CAP_NET_RAW"), 13);
        assert_eq!(bit("CAP_SYS_ADMIN"), 21);
        assert_eq!(bit("CAP_CHECKPOINT_RESTORE"), 40);
    }

    #[test]
    fn the_default_set_is_dockers_without_net_raw() {
        let caps = resolve(&[], &[], 40);
        assert_eq!(caps.len(), 13);
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(caps.contains(&"CAP_NET_BIND_SERVICE".to_string()));
    }

    #[test]
    fn adds_and_drops_follow_docker() {
        let caps = resolve(&names(&["CAP_NET_RAW"]), &names(&["CAP_CHOWN"]), 40);
        assert!(caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(caps.len(), 13);

        // ALL added: everything the kernel knows but the drops.
        let all = resolve(&names(&["ALL"]), &names(&["CAP_SYS_ADMIN"]), 40);
        assert_eq!(all.len(), 40);
        assert!(!all.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(resolve(&names(&["ALL"]), &[], 37).len(), 38);

        // ALL dropped: only the adds.
        assert_eq!(
            resolve(&names(&["CAP_KILL", "CAP_KILL"]), &names(&["ALL"]), 40),
            names(&["CAP_KILL"])
        );
        assert!(resolve(&[], &names(&["ALL"]), 40).is_empty());
    }
}
