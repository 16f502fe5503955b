//! `locald status` output: an aligned table, or JSON for scripts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::supervisor::protocol::ServiceStatus;

/// Print the statuses as a table (or pretty JSON with `json`) to stdout.
pub fn print_status(statuses: &[ServiceStatus], json: bool) {
    let text = if json {
        serde_json::to_string_pretty(statuses).unwrap_or_else(|_| "[]".to_string())
    } else {
        render_table(statuses, now_unix_ms())
    };
    crate::sandbox::stdout::print_line(&text);
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value
        .map(|value| value.to_string())
        .unwrap_or_else(|| "-".to_string())
}

/// How long ago, at one-second precision.
fn age(since_unix_ms: u64, now_unix_ms: u64) -> String {
    if since_unix_ms == 0 {
        return "-".to_string();
    }
    let seconds = now_unix_ms.saturating_sub(since_unix_ms) / 1000;
    format!(
        "{} ago",
        humantime::format_duration(Duration::from_secs(seconds))
    )
}

fn render_table(statuses: &[ServiceStatus], now: u64) -> String {
    let header = [
        "SERVICE", "STATE", "PID", "PORT", "RESTARTS", "EXIT", "SINCE",
    ]
    .map(str::to_string);
    let rows: Vec<[String; 7]> = statuses
        .iter()
        .map(|status| {
            [
                status.name.clone(),
                status.state.clone(),
                optional(status.pid),
                optional(status.port),
                status.restarts.to_string(),
                optional(status.exit_code),
                age(status.since_unix_ms, now),
            ]
        })
        .collect();
    align(&header, &rows)
}

/// The header and rows as lines of columns two spaces apart, each as wide
/// as its widest cell (`status` and `ps` tables).
pub(super) fn align<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.clone().map(|cell| cell.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:width$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_shows_missing_values() {
        let statuses = vec![
            ServiceStatus {
                name: "db".into(),
                state: "healthy".into(),
                pid: Some(4242),
                port: Some(5432),
                restarts: 0,
                failures: 0,
                exit_code: None,
                since_unix_ms: 10_000,
                stopping: None,
                process: None,
            },
            ServiceStatus {
                name: "worker".into(),
                state: "failed".into(),
                pid: None,
                port: Some(40001),
                restarts: 3,
                failures: 4,
                exit_code: Some(1),
                since_unix_ms: 0,
                stopping: None,
                process: None,
            },
        ];
        let table = render_table(&statuses, 75_000);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "SERVICE  STATE    PID   PORT   RESTARTS  EXIT  SINCE"
        );
        assert_eq!(
            lines[1],
            "db       healthy  4242  5432   0         -     1m 5s ago"
        );
        assert_eq!(lines[2], "worker   failed   -     40001  3         1     -");
    }
}
