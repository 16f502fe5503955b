//! The command-line grammar.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

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
    /// Run the project's services (foreground, or -d for a background supervisor)
    Up {
        /// Start a background supervisor and return
        #[arg(short, long)]
        detach: bool,
        /// With -d: return once every service is healthy (non-zero if one fails)
        #[arg(long, requires = "detach")]
        wait: bool,
        /// With --wait: give up after this long (30 for seconds, or 30s, 2m)
        #[arg(long, value_name = "DURATION", requires = "wait")]
        timeout: Option<String>,
        /// Only these services (and what they depend on)
        services: Vec<String>,
    },
    /// Stop every service and the background supervisor
    Down,
    /// Show the services and their state
    Status {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show what services printed
    Logs {
        /// Only this service
        service: Option<String>,
        /// Keep printing new lines
        #[arg(short, long)]
        follow: bool,
        /// How many lines from the end
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: u32,
    },
    /// Start a stopped service
    Start { service: String },
    /// Stop a service (all services without a name); the supervisor keeps running
    Stop { service: Option<String> },
    /// Restart a service
    Restart { service: String },
    /// Apply locald.toml to the running supervisor: start new services, restart changed ones, stop removed ones
    Reload,
    /// Run a scratch command with a free $PORT, then offer to save it as a service
    Try {
        /// Save the command as service NAME without asking
        #[arg(long, value_name = "NAME", conflicts_with = "no_save")]
        save: Option<String>,
        /// Never offer to save
        #[arg(long)]
        no_save: bool,
        /// The command: one quoted shell line (`'server --port $PORT'`) or words
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Run a one-off command with a service's environment
    #[command(alias = "exec")]
    Run {
        service: String,
        /// The command: one quoted shell line or words
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Print the Rhai script that locald.toml compiles to
    Compile {
        /// The config file (default: the project's locald.toml)
        #[arg(short = 'f', long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Run a Rhai task script with locald's primitives (its words are `args.argv`)
    Script {
        file: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
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
}

#[derive(Debug, clap::Subcommand)]
pub enum ContainerCommand {
    /// Run a command in a new container of IMAGE (pulled when missing)
    Run {
        /// Keep stdin open and forward it to the container
        #[arg(short, long)]
        interactive: bool,
        /// Give the container a terminal
        #[arg(short, long)]
        tty: bool,
        /// Remove the container when it exits (always done; accepted for Docker habits)
        #[arg(long)]
        rm: bool,
        /// Set an environment variable (KEY=VALUE, or KEY to pass yours)
        #[arg(short, long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Bind-mount a host path (HOST:CONTAINER[:ro])
        #[arg(short, long = "volume", value_name = "HOST:CONTAINER[:ro]")]
        volume: Vec<String>,
        /// Working directory inside the container
        #[arg(short, long, value_name = "DIR")]
        workdir: Option<String>,
        /// User inside the container (name or uid[:gid])
        #[arg(short, long)]
        user: Option<String>,
        /// Replace the image's entrypoint
        #[arg(long, value_name = "PROGRAM")]
        entrypoint: Option<String>,
        /// When to pull the image
        #[arg(long, value_name = "WHEN", default_value = "missing", value_parser = ["always", "missing", "never"])]
        pull: String,
        /// Grant a capability (NET_RAW, SYS_PTRACE..., or ALL)
        #[arg(long = "cap-add", value_name = "CAP")]
        cap_add: Vec<String>,
        /// Take a capability away (or ALL)
        #[arg(long = "cap-drop", value_name = "CAP")]
        cap_drop: Vec<String>,
        /// seccomp=unconfined, seccomp=FILE.json, or no-new-privileges=false
        #[arg(long = "security-opt", value_name = "OPT")]
        security_opt: Vec<String>,
        /// The image reference (e.g. alpine, redis:7, 127.0.0.1:5000/app:dev)
        image: String,
        /// The command (replaces the image's Cmd)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// Fetch an image into the store
    Pull { reference: String },
    /// List stored images
    #[command(alias = "list")]
    Ls {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Remove images from the store
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        references: Vec<String>,
    },
    /// Delete data that no stored image uses
    Prune,
    /// Import an OCI layout directory, or a rootfs tarball, into the store
    Import {
        /// A directory in OCI layout, or a .tar / .tar.gz of a root filesystem
        path: PathBuf,
        /// The name to store it under (required for a tarball)
        #[arg(long)]
        name: Option<String>,
    },
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
    Container {
        image: String,
        /// The service's name
        #[arg(long)]
        name: String,
        /// A fixed $PORT for the service
        #[arg(long)]
        port: Option<u16>,
        /// The command (replaces the image's Cmd)
        #[arg(long)]
        command: Option<String>,
    },
    /// A host service running COMMAND
    Command {
        /// The service's name
        #[arg(long)]
        name: String,
        /// A fixed $PORT for the service
        #[arg(long)]
        port: Option<u16>,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
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
        let super::Subcommand::Container(super::ContainerCommand::Run {
            interactive,
            tty,
            env,
            volume,
            cap_add,
            cap_drop,
            security_opt,
            image,
            command,
            ..
        }) = cli.command
        else {
            panic!("not container run");
        };
        assert!(interactive && tty);
        assert_eq!(env, ["A=1"]);
        assert_eq!(volume, ["/x:/y:ro"]);
        assert_eq!(cap_add, ["NET_RAW", "SYS_PTRACE"]);
        assert_eq!(cap_drop, ["ALL"]);
        assert_eq!(security_opt, ["seccomp=unconfined"]);
        assert_eq!(image, "img");
        assert_eq!(command, ["sh", "-c", "echo"]);
    }
}
