//! Text that a registry controls never reaches the terminal raw: an error
//! body with escape sequences (retitle the window, clear the screen, set the
//! clipboard with OSC 52) and a bidirectional override is shown escaped in
//! locald's error message.

use locald_image::testing::{
    BlobMisbehaviour, HostileRegistry, ImageBuilder, LayerBuilder, LayerCompression,
};

use crate::harness::Project;

const HOSTILE_BODY: &[u8] =
    b"denied\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\r\xc2\x9b31m\xe2\x80\xaefdp.exe";

#[test]
fn a_registry_error_body_cannot_drive_the_terminal() {
    let registry = HostileRegistry::start();
    let mut layer = LayerBuilder::new();
    layer.file("file", 0o644, b"content");
    let image = ImageBuilder::new()
        .layer(layer.build(LayerCompression::Gzip))
        .build();
    registry.serve_image("1", &image);
    registry.misbehave_blob(
        &image.layers[0].digest,
        BlobMisbehaviour::ErrorBody(HOSTILE_BODY),
    );
    let data = tempfile::tempdir().unwrap();
    let project = Project::new();
    let reference = format!("{}/hostile/text:1", registry.addr());
    let outcome = project
        .locald(["image", "pull", &reference])
        .env("LOCALD_DATA_DIR", data.path().to_str().unwrap())
        .code(1);
    let stderr = &outcome.stderr;
    assert!(stderr.contains("HTTP 500"), "{stderr:?}");
    for raw in ['\u{1b}', '\u{7}', '\r', '\u{9b}', '\u{202e}'] {
        assert!(
            !stderr.contains(raw),
            "{raw:?} reached the terminal: {stderr:?}"
        );
    }
    assert!(
        stderr.contains("denied\\u{1b}]0;pwned\\u{7}"),
        "the body is still shown, escaped: {stderr:?}"
    );
}

/// Listing a checkout's tasks, the careful first look at one you distrust,
/// shows its descriptions and commands escaped.
#[test]
fn a_checkouts_task_list_cannot_drive_the_terminal() {
    let project = Project::with_toml(
        r#"
[tasks]
described = { command = "true", description = "copy\u001b]52;c;cm0gLXJmIH4=\u0007me" }
bare = "echo \u001b[2J cleared"
"#,
    )
    .file(
        "tasks/titled.rhai",
        "// titled\u{1b}]0;pwned\u{7} \u{202e}txt.exe\n0\n",
    );
    let outcome = project.locald(["task"]).success();
    let stdout = &outcome.stdout;
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(
            !stdout.contains(raw),
            "{raw:?} reached the terminal: {stdout:?}"
        );
    }
    for shown in [
        "copy\\u{1b}]52;c;cm0gLXJmIH4=\\u{7}me",
        "echo \\u{1b}[2J cleared",
        "titled\\u{1b}]0;pwned\\u{7} \\u{202e}txt.exe",
    ] {
        assert!(stdout.contains(shown), "{shown} in {stdout:?}");
    }
}
