//! Choosing the host's image from a multi-architecture index.

use crate::oci::{Descriptor, Index};

/// The OCI architecture name of the machine we run on.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The entry of `index` for linux on the host architecture, skipping
/// attestation manifests (platform `unknown/unknown`). For arm64 the `v8`
/// variant (or none) is preferred.
pub fn select_host_manifest(index: &Index) -> Option<&Descriptor> {
    select_manifest(index, "linux", host_architecture())
}

pub fn select_manifest<'a>(
    index: &'a Index,
    os: &str,
    architecture: &str,
) -> Option<&'a Descriptor> {
    let candidates = index.manifests.iter().filter(|entry| {
        entry
            .platform
            .as_ref()
            .is_some_and(|p| p.os == os && p.architecture == architecture)
    });
    let mut best: Option<&Descriptor> = None;
    for entry in candidates {
        let variant = entry.platform.as_ref().and_then(|p| p.variant.as_deref());
        if matches!(variant, None | Some("v8")) {
            return Some(entry);
        }
        best = best.or(Some(entry));
    }
    best
}

/// `os/arch[/variant]` of each entry, for error messages.
pub fn describe_platforms(index: &Index) -> String {
    let platforms: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|entry| entry.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if platforms.is_empty() {
        "none".to_string()
    } else {
        platforms.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Platform;

    fn entry(arch: &str, variant: Option<&str>, digest: &str) -> Descriptor {
        let mut d = Descriptor::new(crate::oci::MEDIA_TYPE_OCI_MANIFEST, digest.into(), 1);
        d.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: variant.map(Into::into),
        });
        d
    }

    #[test]
    fn picks_the_matching_platform_not_the_first() {
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                entry("arm", Some("v7"), "a"),
                entry("arm64", Some("v8"), "b"),
                entry("amd64", None, "c"),
            ],
        };
        assert_eq!(
            select_manifest(&index, "linux", "amd64").unwrap().digest,
            "c"
        );
        assert_eq!(
            select_manifest(&index, "linux", "arm64").unwrap().digest,
            "b"
        );
        assert!(select_manifest(&index, "linux", "s390x").is_none());
        assert_eq!(
            describe_platforms(&index),
            "linux/arm/v7, linux/arm64/v8, linux/amd64"
        );
    }
}
