//! The Cloud Native Buildpacks fixture images go through a real registry into a store
//! like any image: a run image and both builders, pushed, pulled and unpacked with their
//! `/cnb` tree, build user and ownership as a platform reads them.

use std::os::unix::fs::MetadataExt as _;

use locald_image::testing::{
    cnb_builder_image, cnb_run_image, push_image, CnbBuilder, TestRegistry, CNB_GROUP_ID,
    CNB_USER_ID,
};
use locald_image::{ImageStore, PullOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builders_and_run_image_push_pull_and_unpack() {
    let registry = TestRegistry::start();
    let run = cnb_run_image().unwrap();
    push_image(registry.addr(), "cnb/run:1", &run)
        .await
        .unwrap();
    let run_ref = format!("{}/cnb/run:1", registry.addr());
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("images")).unwrap();

    let (stored_run, _) = store.pull(&run_ref, &PullOptions::default()).await.unwrap();
    assert_eq!(stored_run.config.user.as_deref(), Some("1000:1000"));
    let passwd = std::fs::read_to_string(stored_run.rootfs.join("etc/passwd")).unwrap();
    assert!(passwd.contains("cnb:x:1000:1000:"), "{passwd}");
    assert_eq!(
        std::fs::metadata(stored_run.rootfs.join("home/cnb"))
            .unwrap()
            .uid(),
        CNB_USER_ID as u32
    );

    for (builder, name, buildpacks) in [
        (
            CnbBuilder::Httpd,
            "cnb/httpd-builder:1",
            &[
                "test_httpd",
                "test_procfile",
                "test_needs-python",
                "test_web-meta",
            ][..],
        ),
        (
            CnbBuilder::Pipeline,
            "cnb/pipeline-builder:1",
            &["test_runtime", "test_app", "test_lint", "test_stack"][..],
        ),
    ] {
        let image = cnb_builder_image(builder, &run_ref).unwrap();
        push_image(registry.addr(), name, &image).await.unwrap();
        let reference = format!("{}/{name}", registry.addr());
        let (stored, _) = store
            .pull(&reference, &PullOptions::default())
            .await
            .unwrap();
        let config = &stored.config;
        assert_eq!(config.user.as_deref(), Some("1000:1000"), "{name}");
        assert!(config.env.contains(&format!("CNB_USER_ID={CNB_USER_ID}")));
        assert!(config.env.contains(&format!("CNB_GROUP_ID={CNB_GROUP_ID}")));
        let cnb = stored.rootfs.join("cnb");
        let run_toml = std::fs::read_to_string(cnb.join("run.toml")).unwrap();
        assert_eq!(run_toml, format!("[[images]]\nimage = \"{run_ref}\"\n"));
        assert!(std::fs::read_to_string(cnb.join("order.toml"))
            .unwrap()
            .starts_with("[[order]]\n"));
        for escaped in buildpacks {
            let bp = cnb.join("buildpacks").join(escaped).join("0.0.1");
            assert!(bp.join("buildpack.toml").is_file(), "{}", bp.display());
            if !matches!(*escaped, "test_web-meta" | "test_stack") {
                let detect = std::fs::metadata(bp.join("bin/detect")).unwrap();
                assert_eq!(detect.mode() & 0o777, 0o755, "{escaped}");
            }
        }
        for owned in ["workspace", "layers", "platform", "home/cnb"] {
            let meta = std::fs::metadata(stored.rootfs.join(owned)).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid()),
                (CNB_USER_ID as u32, CNB_GROUP_ID as u32),
                "{owned} in {name}"
            );
        }
        // The buildpacks run in the image: busybox's sh reads them.
        let output = std::process::Command::new("chroot")
            .arg(&stored.rootfs)
            .args([
                "/bin/sh",
                "-n",
                &format!("/cnb/buildpacks/{}/0.0.1/bin/build", buildpacks[0]),
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
}
