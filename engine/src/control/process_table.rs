//! `locald ps` output: an aligned table of the processes the supervisor
//! runs, or JSON for scripts.

use std::time::Duration;

use crate::supervisor::protocol::now_unix_ms;
use crate::supervisor::ProcessInfo;

/// Print the processes as a table (or pretty JSON with `json`) to stdout.
pub fn print_processes(processes: &[ProcessInfo], json: bool) {
    let text = if json {
        serde_json::to_string_pretty(processes).unwrap_or_else(|_| "[]".to_string())
    } else {
        render_table(processes, now_unix_ms())
    };
    crate::sandbox::stdout::print_line(&text);
}

/// How long ago, at one-second precision, in its largest unit only (`ps`
/// style: `3s ago`, `5m ago`, `2h ago`, `4days ago`).
fn started(since_unix_ms: u64, now_unix_ms: u64) -> String {
    let seconds = now_unix_ms.saturating_sub(since_unix_ms) / 1000;
    let rounded = match seconds {
        0..60 => seconds,
        60..3600 => seconds / 60 * 60,
        3600..86400 => seconds / 3600 * 3600,
        _ => seconds / 86400 * 86400,
    };
    format!(
        "{} ago",
        humantime::format_duration(Duration::from_secs(rounded))
    )
}

fn render_table(processes: &[ProcessInfo], now: u64) -> String {
    let header = [
        "ID", "SERVICE", "KIND", "PID", "STARTED", "STATE", "COMMAND",
    ]
    .map(str::to_string);
    let rows: Vec<[String; 7]> = processes
        .iter()
        .map(|process| {
            let service = if process.one_off {
                format!("{} (run)", process.service)
            } else {
                process.service.clone()
            };
            let state = match process.exit_code {
                Some(code) => format!("{} ({code})", process.state),
                None => process.state.clone(),
            };
            [
                process.id.clone(),
                service,
                process.kind.clone(),
                process
                    .pid
                    .map_or_else(|| "-".to_string(), |pid| pid.to_string()),
                started(process.started_unix_ms, now),
                state,
                // One line per process, whatever the command holds.
                process.command.replace(['\n', '\r'], " "),
            ]
        })
        .collect();
    // Commands and names come from the project: never escape codes.
    crate::sandbox::terminal_text::for_terminal(&super::status_table::align(&header, &rows))
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_services_and_runs_with_their_exit_codes() {
        let now = 1_000_000_000;
        let processes = [
            ProcessInfo {
                id: "a1b2c3".into(),
                service: "web".into(),
                kind: "host".into(),
                pid: Some(4242),
                started_unix_ms: now - 125_000,
                state: "healthy".into(),
                command: "python3 -m http.server $PORT".into(),
                ..ProcessInfo::default()
            },
            ProcessInfo {
                id: "0c0c0c".into(),
                service: "db".into(),
                one_off: true,
                kind: "container".into(),
                pid: None,
                started_unix_ms: now - 3_000,
                state: "exited".into(),
                command: "psql -c 'select 1'".into(),
                exit_code: Some(3),
            },
        ];
        assert_eq!(
            render_table(&processes, now),
            "ID      SERVICE   KIND       PID   STARTED  STATE       COMMAND\n\
             a1b2c3  web       host       4242  2m ago   healthy     python3 -m http.server $PORT\n\
             0c0c0c  db (run)  container  -     3s ago   exited (3)  psql -c 'select 1'"
        );
    }
}
