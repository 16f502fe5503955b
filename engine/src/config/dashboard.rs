//! `[dashboard]` of `locald.toml` (and `dashboard(#{...})` of
//! `locald.rhai`): whether the supervisor serves its web dashboard, and on
//! which port.

use super::convert::{self, wrong_type};
use super::diagnostic::{KeyPath, Problem};
use super::value::{Node, NodeKind};
use crate::model::{DashboardSettings, PortSpec, Service};

const KEYS: &[&str] = &["enabled", "port"];

/// Reads the `[dashboard]` table.
pub(crate) fn build_dashboard(
    node: &Node,
    path: &KeyPath,
) -> Result<DashboardSettings, Vec<Problem>> {
    let entries = convert::table(node, path).map_err(|problem| {
        vec![problem.with_help("write [dashboard] with enabled = false, or port = 4000")]
    })?;
    let mut settings = DashboardSettings::default();
    let mut problems = Vec::new();
    for (key, value) in entries {
        let key_path = path.key(key);
        match key.as_str() {
            "enabled" => match &value.kind {
                NodeKind::Bool(enabled) => settings.enabled = *enabled,
                _ => problems.push(wrong_type(value, &key_path, "true or false")),
            },
            "port" => match convert::integer_in(value, &key_path, 1, 65535) {
                Ok(port) => settings.port = Some(port as u16),
                Err(problem) => problems.push(problem),
            },
            _ => problems.push(convert::unknown_key(
                key,
                value,
                key_path,
                KEYS,
                "[dashboard]",
            )),
        }
    }
    match problems.is_empty() {
        true => Ok(settings),
        false => Err(problems),
    }
}

/// A fixed dashboard port that a service fixes too would fail one of them
/// at every `up`: the name of that service.
pub(crate) fn port_taken_by<'a>(
    settings: &DashboardSettings,
    services: impl IntoIterator<Item = &'a Service>,
) -> Option<&'a str> {
    let port = settings.port?;
    services
        .into_iter()
        .find(|service| service.port == PortSpec::Fixed(port))
        .map(|service| service.name.as_str())
}
