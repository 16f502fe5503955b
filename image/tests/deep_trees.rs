//! Images whose trees are deeper than the process may hold descriptors: the store must still
//! unpack their whiteouts, remove them and prune them. `std::fs::remove_dir_all` keeps one
//! descriptor per level, so an image nesting more directories than the descriptor limit (1,024
//! for most users; a layer path may nest about 2,000) made `image prune` fail for good with
//! EMFILE and its whiteouts fail the pull.
//!
//! Its own test binary: it lowers this process's descriptor limit.

use locald_image::testing::{ImageBuilder, LayerBuilder, LayerCompression};
use locald_image::ImageStore;

/// The soft descriptor limit for this process, far below the tree's depth.
const FD_LIMIT: u64 = 128;
const DEPTH: usize = 400;

fn deep_path() -> String {
    let mut path = "d/".repeat(DEPTH);
    path.push_str("leaf");
    path
}

#[test]
fn trees_deeper_than_the_descriptor_limit_are_whited_out_removed_and_pruned() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit buffer for the kernel to fill, then to read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = FD_LIMIT;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }

    let tmp = tempfile::tempdir().unwrap();
    let store = ImageStore::open(tmp.path().join("images")).unwrap();

    // One layer makes the deep tree, the next whites it out.
    let mut deep = LayerBuilder::new();
    deep.file_long_path(&deep_path(), 0o644, b"deepest");
    let mut whiteout = LayerBuilder::new();
    whiteout.whiteout("", "d").file("kept", 0o644, b"kept");
    let hidden = ImageBuilder::new()
        .layer(deep.build(LayerCompression::Gzip))
        .layer(whiteout.build(LayerCompression::Gzip))
        .build();
    let layout = tmp.path().join("hidden");
    hidden.write_layout(&layout, "latest").unwrap();
    let stored = store.import_oci_layout(&layout, Some("hidden")).unwrap();
    assert!(
        !stored.rootfs.join("d").exists(),
        "the whiteout hid the tree"
    );
    assert!(stored.rootfs.join("kept").exists());

    // The deep tree itself stays in an image's rootfs, and goes with it.
    let mut deep = LayerBuilder::new();
    deep.file_long_path(&deep_path(), 0o644, b"deepest");
    let image = ImageBuilder::new()
        .layer(deep.build(LayerCompression::Gzip))
        .build();
    let layout = tmp.path().join("deep");
    image.write_layout(&layout, "latest").unwrap();
    let stored = store.import_oci_layout(&layout, Some("deep")).unwrap();
    assert!(stored.rootfs.join(deep_path()).is_file());
    store.remove("deep").unwrap();
    store.remove("hidden").unwrap();
    let report = store.prune().unwrap();
    assert_eq!(report.removed_rootfs, 2);
    assert!(!stored.rootfs.exists());
}
