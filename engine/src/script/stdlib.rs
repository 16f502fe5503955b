//! The built-in scripts (`stdlib/*.rhai`), embedded in the binary. Every CLI
//! verb is one of these; `locald stdlib` lists them and `locald stdlib NAME`
//! prints one, so users can read and copy how a verb is made.

/// `(name, source)` of every built-in script.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("init", include_str!("../../../stdlib/init.rhai")),
    ("up", include_str!("../../../stdlib/up.rhai")),
    ("down", include_str!("../../../stdlib/down.rhai")),
    ("status", include_str!("../../../stdlib/status.rhai")),
    ("ps", include_str!("../../../stdlib/ps.rhai")),
    ("logs", include_str!("../../../stdlib/logs.rhai")),
    ("start", include_str!("../../../stdlib/start.rhai")),
    ("stop", include_str!("../../../stdlib/stop.rhai")),
    ("restart", include_str!("../../../stdlib/restart.rhai")),
    ("reload", include_str!("../../../stdlib/reload.rhai")),
    ("dashboard", include_str!("../../../stdlib/dashboard.rhai")),
    ("try", include_str!("../../../stdlib/try.rhai")),
    ("run", include_str!("../../../stdlib/run.rhai")),
    ("exec", include_str!("../../../stdlib/exec.rhai")),
    ("task", include_str!("../../../stdlib/task.rhai")),
    ("compile", include_str!("../../../stdlib/compile.rhai")),
    (
        "container-run",
        include_str!("../../../stdlib/container-run.rhai"),
    ),
    (
        "image-pull",
        include_str!("../../../stdlib/image-pull.rhai"),
    ),
    ("image-ls", include_str!("../../../stdlib/image-ls.rhai")),
    ("image-rm", include_str!("../../../stdlib/image-rm.rhai")),
    (
        "image-prune",
        include_str!("../../../stdlib/image-prune.rhai"),
    ),
    (
        "image-import",
        include_str!("../../../stdlib/image-import.rhai"),
    ),
    (
        "service-add",
        include_str!("../../../stdlib/service-add.rhai"),
    ),
];

/// The source of the built-in script `name`.
pub fn get(name: &str) -> Option<&'static str> {
    SCRIPTS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
