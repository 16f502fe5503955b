//! The command-line grammar.

use std::path::PathBuf;

use clap::{ArgAction, Parser};
use clap_complete::ArgValueCandidates;
use serde::Serialize;

use super::completion::{self, service_candidates, task_candidates};

#[derive(Debug, Parser)]
#[command(
    name = "locald",
    version,
    about = "Run your project's local development environment",
    after_help = "Every verb is a built-in Rhai script: `locald stdlib NAME` shows it."
)]
pub struct Cli {
    /// More diagnostics (-v debug, -vv trace); RUST_LOG overrides. Given
    /// before the verb (`locald -v up`): after it, `-v` is a container volume.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    /// Run as if started in DIR
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Subcommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Write a first locald.toml: from a Procfile or compose file here, or a commented starter
    Init(Init),
    /// Run the project's services (foreground, or -d for a background supervisor)
    Up(Up),
    /// Stop every service and the background supervisor
    Down(NoArgs),
    /// Show the services and their state
    Status(Json),
    /// List the processes the supervisor runs: services' and one-off runs'
    Ps(Ps),
    /// Show what services (or one-off runs, by ID) printed
    Logs(Logs),
    /// Start stopped services
    Start(SomeServices),
    /// Stop services (all without names); the supervisor keeps running
    Stop(Services),
    /// Restart services (all without names)
    Restart(Services),
    /// Apply locald.toml to the running supervisor: start new services, restart changed ones, stop removed ones
    Reload(NoArgs),
    /// Print the address of the supervisor's web dashboard and open it in a browser
    Dashboard(DashboardArgs),
    /// Run a scratch command with a free $PORT, then offer to save it as a service
    Try(Try),
    /// Run a one-off command with a service's environment
    Run(Run),
    /// Run a command inside a running service (or process, by ID from `ps`)
    Exec(Exec),
    /// List the project's tasks, or run one with its arguments (`locald task test --release`)
    Task(Task),
    /// Print the Rhai script that locald.toml compiles to
    Compile(Compile),
    /// Build an image from source with Cloud Native Buildpacks, into the image store
    Build(Build),
    /// Run a Rhai task script with locald's primitives (its words are `args.argv`)
    Script(Script),
    /// Run containers with the embedded runtime (no Docker daemon)
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage the image store shared by all projects
    #[command(subcommand)]
    Image(ImageCommand),
    /// Add services to locald.toml
    #[command(subcommand)]
    Service(ServiceCommand),
    /// An interactive Rhai session with locald's primitives
    Repl,
    /// List the built-in scripts, or print one
    Stdlib { name: Option<String> },
    /// Print the shell code that completes locald's commands, service and task names
    /// (bash: `source <(locald completions bash)` in ~/.bashrc; zsh: the same in
    /// ~/.zshrc; fish: `locald completions fish | source` in config.fish)
    Completions {
        #[arg(value_enum)]
        shell: completion::Shell,
    },
}

// Each verb's arguments are one struct: clap parses it, and serde turns it
// into the `args` map of the verb's script (`super::script_args`), so a key
// is a field name, written once. `command` words are `#[serde(skip)]`: they
// become a `Program`, which serde cannot build (see `ScriptArgs::command`).

// A verb without arguments: its script gets an empty `args`.
#[derive(Debug, clap::Args, Serialize)]
pub struct NoArgs {}

#[derive(Debug, clap::Args, Serialize)]
pub struct Init {
    /// Import this Procfile or compose file (default: the first of Procfile,
    /// compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml here)
    #[arg(long, value_name = "FILE")]
    pub from: Option<String>,
    /// Replace an existing locald.toml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Up {
    /// Start a background supervisor and return
    #[arg(short, long)]
    pub detach: bool,
    /// With -d: return once every service is healthy (non-zero if one fails)
    #[arg(long, requires = "detach")]
    pub wait: bool,
    /// With --wait: give up after this long (30 for seconds, or 30s, 2m)
    #[arg(long, value_name = "DURATION", requires = "wait")]
    pub timeout: Option<String>,
    /// Serve no dashboard this time (see `[dashboard]` in locald.toml)
    #[arg(long)]
    pub no_dashboard: bool,
    /// Only these services (and what they depend on)
    #[arg(add = ArgValueCandidates::new(service_candidates))]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct DashboardArgs {
    /// Only print the address
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Json {
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Ps {
    /// Also the finished one-off runs whose log is kept, with their exit code
    #[arg(short, long)]
    pub all: bool,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Logs {
    /// Only these services (all, interleaved, without names)
    #[arg(value_name = "SERVICE", add = ArgValueCandidates::new(service_candidates))]
    pub services: Vec<String>,
    /// Keep printing new lines
    #[arg(short, long)]
    pub follow: bool,
    /// How many lines from the end [default: 100, or all with --since]
    #[arg(short = 'n', long)]
    pub lines: Option<u32>,
    /// Only lines since then: a duration back from now (10m, 1h30m) or an
    /// RFC 3339 time (2024-05-01T12:00:00Z)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show the time of each line
    #[arg(short, long)]
    pub timestamps: bool,
}

/// One service or more.
#[derive(Debug, clap::Args, Serialize)]
pub struct SomeServices {
    #[arg(value_name = "SERVICE", required = true, add = ArgValueCandidates::new(service_candidates))]
    pub services: Vec<String>,
}

/// Services; none means all.
#[derive(Debug, clap::Args, Serialize)]
pub struct Services {
    #[arg(value_name = "SERVICE", add = ArgValueCandidates::new(service_candidates))]
    pub services: Vec<String>,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Try {
    /// Save the command as service NAME without asking
    #[arg(long, value_name = "NAME", conflicts_with = "no_save")]
    pub save: Option<String>,
    /// Never offer to save
    #[arg(long)]
    pub no_save: bool,
    /// The command: one quoted shell line (`'server --port $PORT'`) or words
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    #[serde(skip)]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Run {
    /// Run it under the running supervisor and return at once, printing its
    /// ID: output to `locald logs ID`, shown by `locald ps`, stopped by
    /// `locald stop ID`
    #[arg(short, long)]
    pub detach: bool,
    #[arg(add = ArgValueCandidates::new(service_candidates))]
    pub service: String,
    /// The command: one quoted shell line or words
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    #[serde(skip)]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Tasks are `[tasks]` in locald.toml (test = \"cargo test\", or a table with command, description, service, depends_on) and the files tasks/NAME.rhai."
)]
pub struct Task {
    /// The task to run (without one: list the tasks), then its arguments,
    /// as given: appended to a command, quoted for the shell; `args.argv`
    /// of a script
    // One list, so that every word after the name is the task's, even one
    // that is locald's own flag (`--help`, `-C DIR`).
    #[arg(
        value_name = "NAME [ARGS]",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        add = ArgValueCandidates::new(task_candidates)
    )]
    pub words: Vec<String>,
}

/// The script's `args`: `name` (`()` to list) and `argv`.
impl Serialize for Task {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (name, argv) = match self.words.split_first() {
            Some((name, argv)) => (Some(name), argv),
            None => (None, &[][..]),
        };
        let mut args = serializer.serialize_struct("Task", 2)?;
        args.serialize_field("name", &name)?;
        args.serialize_field("argv", argv)?;
        args.end()
    }
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Exec {
    /// Pass stdin on to the command
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command the terminal (an error without one)
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass yours)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory: a host service's relative to its own; a container's in it
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as this user
    #[arg(short, long)]
    pub user: Option<String>,
    /// A running service, or a process ID (or its start) from `locald ps`
    #[arg(value_name = "SERVICE|ID", add = ArgValueCandidates::new(service_candidates))]
    pub target: String,
    /// The command: one quoted shell line or words
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    #[serde(skip)]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Compile {
    /// The config file (default: the project's locald.toml)
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<String>,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Build {
    /// A built service of the project (`build = {...}`), or the app's source directory
    /// (default: every built service, else the current directory)
    #[arg(value_name = "SERVICE|PATH")]
    pub path: Option<String>,
    /// The builder image (default: a service's, else `[build] builder` of the user config)
    #[arg(long, value_name = "REF")]
    pub builder: Option<String>,
    /// Use this buildpack instead of the builder's order (repeatable, in order): an
    /// image, a .cnb file, a directory, or ID[@VERSION] of the builder's
    #[arg(short, long, value_name = "REF")]
    pub buildpack: Vec<String>,
    /// Set a build environment variable (KEY=VALUE, or KEY to pass yours)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The name to store the image under (default: locald-build/<dir name>-<digest>:latest)
    #[arg(short, long, value_name = "NAME")]
    pub tag: Option<String>,
    /// Show every buildpack's detect output too
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct Script {
    #[serde(skip)]
    pub file: PathBuf,
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub argv: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ContainerCommand {
    /// Run a command in a new container of IMAGE (pulled when missing)
    Run(ContainerRun),
}

#[derive(Debug, clap::Args, Serialize)]
pub struct ContainerRun {
    /// Keep stdin open and forward it to the container
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the container a terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container when it exits: always done, as no container
    /// outlives its run; accepted for Docker habits
    #[arg(long)]
    pub rm: bool,
    /// Run an init (tini) as PID 1: it forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass yours)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Bind-mount a host path (HOST:CONTAINER[:ro])
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volumes: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User inside the container (name or uid[:gid])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Replace the image's entrypoint
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// When to pull the image
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = Pull::Missing)]
    pub pull: Pull,
    /// Grant a capability (NET_RAW, SYS_PTRACE..., or ALL)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Take a capability away (or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// seccomp=unconfined, seccomp=FILE.json, or no-new-privileges=false
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// The image reference (e.g. alpine, redis:7, 127.0.0.1:5000/app:dev)
    pub image: String,
    /// The command (replaces the image's Cmd)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    #[serde(skip)]
    pub command: Vec<String>,
}

/// `container run --pull WHEN`; the script gets it as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pull {
    Always,
    Missing,
    Never,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Fetch an image into the store
    Pull(ImageReference),
    /// List stored images
    #[command(alias = "list")]
    Ls(Json),
    /// Remove images from the store
    #[command(alias = "remove")]
    Rm(ImageReferences),
    /// Delete data that no stored image uses
    Prune(NoArgs),
    /// Import an OCI layout directory, or a rootfs tarball, into the store
    Import(ImageImport),
}

#[derive(Debug, clap::Args, Serialize)]
pub struct ImageReference {
    pub reference: String,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct ImageReferences {
    #[arg(required = true)]
    pub references: Vec<String>,
}

#[derive(Debug, clap::Args, Serialize)]
pub struct ImageImport {
    /// A directory in OCI layout, a tar of one (an OCI archive, a .cnb file), or a .tar /
    /// .tar.gz of a root filesystem
    pub path: String,
    /// The name to store it under (required for a tarball)
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ServiceCommand {
    /// Add a service to locald.toml (comments and formatting are kept)
    #[command(subcommand)]
    Add(ServiceAdd),
}

#[derive(Debug, clap::Subcommand)]
pub enum ServiceAdd {
    /// A container service running IMAGE
    Container(ServiceAddContainer),
    /// A host service running COMMAND
    Command(ServiceAddCommand),
}

#[derive(Debug, clap::Args, Serialize)]
pub struct ServiceAddContainer {
    pub image: String,
    /// The service's name
    #[arg(long)]
    pub name: String,
    /// A fixed $PORT for the service
    #[arg(long)]
    pub port: Option<u16>,
    /// The command (replaces the image's Cmd)
    #[arg(long)]
    pub command: Option<String>,
}

// Shares `service-add` with `ServiceAddContainer`: its `image` is always
// `()`, which is how the script tells a host service.
#[derive(Debug, clap::Args, Serialize)]
pub struct ServiceAddCommand {
    #[arg(skip)]
    pub image: Option<String>,
    /// The service's name
    #[arg(long)]
    pub name: String,
    /// A fixed $PORT for the service
    #[arg(long)]
    pub port: Option<u16>,
    /// The command: one quoted shell line (`'server --port $PORT'`), or words
    /// after `--`. Options may come after it, as with `container`
    #[arg(required = true, value_name = "COMMAND")]
    #[serde(skip)]
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn docker_style_container_run_parses() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "locald",
            "container",
            "run",
            "-it",
            "-e",
            "A=1",
            "-v",
            "/x:/y:ro",
            "--cap-add",
            "NET_RAW",
            "--cap-add=SYS_PTRACE",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "seccomp=unconfined",
            "img",
            "sh",
            "-c",
            "echo",
        ])
        .expect("parses");
        let super::Subcommand::Container(super::ContainerCommand::Run(super::ContainerRun {
            interactive,
            tty,
            env,
            volumes,
            cap_add,
            cap_drop,
            security_opt,
            image,
            command,
            ..
        })) = cli.command
        else {
            panic!("not container run");
        };
        assert!(interactive && tty);
        assert_eq!(env, ["A=1"]);
        assert_eq!(volumes, ["/x:/y:ro"]);
        assert_eq!(cap_add, ["NET_RAW", "SYS_PTRACE"]);
        assert_eq!(cap_drop, ["ALL"]);
        assert_eq!(security_opt, ["seccomp=unconfined"]);
        assert_eq!(image, "img");
        assert_eq!(command, ["sh", "-c", "echo"]);
    }

    #[test]
    fn service_add_command_takes_options_after_the_command() {
        use clap::Parser;
        let parse = |words: &[&str]| {
            let cli =
                Cli::try_parse_from(["locald", "service", "add", "command"].iter().chain(words))
                    .unwrap_or_else(|e| panic!("{words:?}: {e}"));
            let super::Subcommand::Service(super::ServiceCommand::Add(super::ServiceAdd::Command(
                add,
            ))) = cli.command
            else {
                panic!("not service add command");
            };
            (add.name, add.port, add.command)
        };
        let expected = |command: &[&str]| {
            (
                "web".to_string(),
                Some(8000),
                command.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            parse(&["python3 app.py", "--name", "web", "--port", "8000"]),
            expected(&["python3 app.py"])
        );
        assert_eq!(
            parse(&[
                "--name",
                "web",
                "--port",
                "8000",
                "--",
                "python3",
                "-m",
                "http.server"
            ]),
            expected(&["python3", "-m", "http.server"])
        );
        assert_eq!(
            parse(&["--name=web", "serve", "--port=8000"]),
            expected(&["serve"])
        );
    }
}
