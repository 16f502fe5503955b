//! What the engine's errors become when a primitive throws them into a
//! script: a plain message, a rendered configuration diagnostic (which the
//! CLI shows whole), or an interrupt (which ends the script). Decided here,
//! by the error's type, once; the CLI reads the kind back from the
//! [`ScriptError`](crate::sandbox::ScriptError), never from the text.

use rhai::{EvalAltResult, NativeCallContext};

use crate::config::{ConfigError, EditError};
use crate::project::LoadError;
use crate::sandbox::Thrown;
use crate::sandbox::{ErrorKind, ScriptError};
use crate::script::api::capture::CaptureError;
use crate::script::api::config::ConfigApiError;
use crate::script::api::supervisor::SteerError;
use crate::script::api::tasks::RunError;
use crate::script::api::waiting::WaitError;
use crate::supervisor::SupervisorError;

/// Throws `error` into the calling script at the primitive's call site.
pub(crate) fn throw(ctx: &NativeCallContext, error: impl Into<Thrown>) -> Box<EvalAltResult> {
    error.into().at(ctx.call_position())
}

impl From<ConfigError> for Thrown {
    fn from(error: ConfigError) -> Self {
        Thrown::Diagnostic(error.to_string())
    }
}

impl From<LoadError> for Thrown {
    fn from(error: LoadError) -> Self {
        match error {
            LoadError::Config(error) => error.into(),
            // An interrupted `locald.rhai` stays a message: it shows where
            // the load stopped.
            other => Thrown::Message(other.to_string()),
        }
    }
}

impl From<EditError> for Thrown {
    fn from(error: EditError) -> Self {
        match error {
            EditError::InvalidConfig(error) => error.into(),
            other => Thrown::Message(other.to_string()),
        }
    }
}

impl From<ConfigApiError> for Thrown {
    fn from(error: ConfigApiError) -> Self {
        match error {
            ConfigApiError::Edit(error) => error.into(),
            ConfigApiError::Load(error) => error.into(),
            ConfigApiError::Config(error) => error.into(),
            other => Thrown::Message(other.to_string()),
        }
    }
}

impl From<SteerError> for Thrown {
    fn from(error: SteerError) -> Self {
        match error {
            SteerError::Supervisor(error) => error.into(),
            other => Thrown::Message(other.to_string()),
        }
    }
}

impl From<SupervisorError> for Thrown {
    fn from(error: SupervisorError) -> Self {
        match error {
            SupervisorError::Interrupted => Thrown::Interrupted,
            // A reload the running supervisor refused: its reply says
            // whether the message is the config diagnostic it rendered.
            SupervisorError::Rejected {
                message,
                diagnostic: true,
            } => Thrown::Diagnostic(message),
            other => Thrown::Message(other.to_string()),
        }
    }
}

impl From<RunError> for Thrown {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Interrupted => Thrown::Interrupted,
            RunError::Script(error) => error.into(),
            other => Thrown::Message(other.to_string()),
        }
    }
}

/// A script run by a primitive (a task script) that failed: its interrupt
/// stops the caller too; a config diagnostic stays one; any other error keeps
/// the script's file, line and column in its text.
impl From<ScriptError> for Thrown {
    fn from(error: ScriptError) -> Self {
        match error.kind {
            ErrorKind::Interrupted => Thrown::Interrupted,
            ErrorKind::Diagnostic => Thrown::Diagnostic(error.message),
            ErrorKind::Message => Thrown::Message(error.to_string()),
        }
    }
}

impl From<CaptureError> for Thrown {
    fn from(error: CaptureError) -> Self {
        match error {
            CaptureError::Interrupted => Thrown::Interrupted,
            other => Thrown::Message(other.to_string()),
        }
    }
}

impl From<WaitError> for Thrown {
    fn from(error: WaitError) -> Self {
        match error {
            WaitError::Interrupted => Thrown::Interrupted,
            WaitError::Steer(error) => error.into(),
            other => Thrown::Message(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config_error() -> ConfigError {
        crate::config::load_toml(Path::new("locald.toml"), "[services.web]\ncomand = \"x\"\n")
            .expect_err("an unknown key")
    }

    #[test]
    fn a_config_error_is_a_diagnostic_wherever_it_comes_from() {
        let rendered = config_error().to_string();
        assert!(rendered.starts_with("error: unknown key"), "{rendered}");
        let expected = Thrown::Diagnostic(rendered.clone());
        assert_eq!(Thrown::from(config_error()), expected);
        assert_eq!(Thrown::from(LoadError::Config(config_error())), expected);
        assert_eq!(
            Thrown::from(EditError::InvalidConfig(config_error())),
            expected
        );
    }

    #[test]
    fn other_errors_are_messages_even_when_their_text_starts_with_error() {
        let load = LoadError::NoConfig("error".into());
        assert!(matches!(Thrown::from(load), Thrown::Message(_)));
        let edit = EditError::InvalidName("error: x".into());
        assert!(matches!(Thrown::from(edit), Thrown::Message(_)));
        let protocol = SupervisorError::Protocol("error: x".into());
        assert!(matches!(Thrown::from(protocol), Thrown::Message(_)));
    }

    #[test]
    fn an_interrupted_supervisor_call_interrupts_the_script() {
        assert_eq!(
            Thrown::from(SupervisorError::Interrupted),
            Thrown::Interrupted
        );
    }
}
