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
    /// More diagnostics (-v debug, -vv trace); RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count, global = true)]
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
        /// With --wait: give up after this long (e.g. 30s, 2m)
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
    /// An interactive Rhai session with locald's primitives
    Repl,
    /// List the built-in scripts, or print one
    Stdlib { name: Option<String> },
}
