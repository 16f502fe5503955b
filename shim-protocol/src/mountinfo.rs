//! `/proc/self/mountinfo`, the calling process's mount table, as the runtime (unmounting what a
//! dead container left, finding cgroup hierarchies) and the shim (cgroup hierarchies) read it.
//!
//! Mount points there are escaped: space, tab, newline and backslash are written `\ooo`. Every
//! reader unescapes them ([`unescape`]): a mount point with a space in it must name the real
//! directory, not a path that does not exist (two of the three copies of this code there were
//! did not).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Where the calling process's mount table is.
pub const PATH: &str = "/proc/self/mountinfo";

/// Reads [`PATH`].
pub fn read() -> io::Result<String> {
    std::fs::read_to_string(PATH)
}

/// Every mount point in `text` (of mountinfo), unescaped, in its order.
pub fn mount_points(text: &str) -> Vec<PathBuf> {
    text.lines()
        // `ID PARENT MAJ:MIN ROOT MOUNT_POINT …`
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape(point)))
        .collect()
}

/// Undoes mountinfo's escaping of a path: `\` and three octal digits stand for that byte;
/// anything else is kept as it is.
pub fn unescape(path: &str) -> OsString {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape("/mnt/a\\040b"), OsString::from("/mnt/a b"));
        assert_eq!(
            unescape("/a\\011b\\012c\\134d"),
            OsString::from("/a\tb\nc\\d")
        );
        assert_eq!(unescape("/plain"), OsString::from("/plain"));
        assert_eq!(unescape("/end\\04"), OsString::from("/end\\04"));
        assert_eq!(unescape("/bad\\089"), OsString::from("/bad\\089"));
        assert_eq!(unescape("/big\\777"), OsString::from("/big\\777"));
        assert_eq!(
            unescape("/raw\\377"),
            OsString::from_vec(b"/raw\xff".to_vec())
        );
    }

    #[test]
    fn every_mount_point_is_listed_unescaped() {
        let text = "\
43 42 254:0 / / rw,relatime - ext4 /dev/vda rw
50 43 0:40 / /tmp/with\\040space rw shared:3 - tmpfs tmpfs rw
";
        assert_eq!(
            mount_points(text),
            [PathBuf::from("/"), PathBuf::from("/tmp/with space")]
        );
        let live = mount_points(&read().unwrap());
        assert!(live.contains(&PathBuf::from("/")), "{live:?}");
    }
}
