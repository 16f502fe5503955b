//! TOML front end: parses `locald.toml` with `toml_edit` (which keeps byte
//! spans of keys and values) and lowers it into the value tree.

use toml_edit::{Item, TableLike, Value};

use super::diagnostic::Span;
use super::value::{Node, NodeKind};

/// Parses `source` into the value tree of its root table.
pub(crate) fn parse(source: &str) -> Result<Node, toml_edit::TomlError> {
    let document = toml_edit::Document::parse(source)?;
    let mut root = lower_table(document.as_table());
    root.span = Some(0..source.len());
    Ok(root)
}

pub(crate) fn lower_table(table: &dyn TableLike) -> Node {
    let entries = table
        .iter()
        .map(|(key, item)| {
            let mut node = lower_item(item);
            node.key_span = table.key(key).and_then(|k| k.span());
            (key.to_owned(), node)
        })
        .collect();
    Node::new(NodeKind::Table(entries))
}

fn lower_item(item: &Item) -> Node {
    let (mut node, span) = match item {
        Item::None => (Node::new(NodeKind::Null), None),
        Item::Value(value) => return lower_value(value),
        Item::Table(table) => (lower_table(table), table.span()),
        Item::ArrayOfTables(array) => (
            Node::new(NodeKind::Other("an array of tables".to_owned())),
            array.span(),
        ),
    };
    node.span = span;
    node
}

fn lower_value(value: &Value) -> Node {
    let kind = match value {
        Value::String(s) => NodeKind::Str(s.value().clone()),
        Value::Integer(i) => NodeKind::Int(*i.value()),
        Value::Float(f) => NodeKind::Float(*f.value()),
        Value::Boolean(b) => NodeKind::Bool(*b.value()),
        Value::Datetime(_) => NodeKind::Other("a date-time".to_owned()),
        Value::Array(array) => NodeKind::Array(array.iter().map(lower_value).collect()),
        Value::InlineTable(table) => return with_span(lower_table(table), table.span()),
    };
    with_span(Node::new(kind), value.span())
}

fn with_span(mut node: Node, span: Option<Span>) -> Node {
    node.span = span;
    node
}

/// A headline and help for a `toml_edit` syntax error. The parser's message
/// is kept; a repeated `[services.NAME]` table gets a message of its own
/// because "duplicate key" alone does not say that a service was declared twice.
pub(crate) fn explain_syntax_error(
    source: &str,
    error: &toml_edit::TomlError,
) -> (String, Option<String>) {
    let message = error.message().trim().to_owned();
    if message != "duplicate key" {
        return (format!("invalid TOML: {message}"), None);
    }
    let Some(span) = error.span() else {
        return (format!("invalid TOML: {message}"), None);
    };
    let key = source.get(span.clone()).unwrap_or("").trim_matches('"');
    let line_start = source[..span.start].rfind('\n').map_or(0, |n| n + 1);
    let line = source[line_start..].lines().next().unwrap_or("").trim();
    if line.starts_with("[services.") {
        let header = format!("[services.{key}]");
        let first = source
            .lines()
            .position(|l| l.trim().starts_with(header.as_str()))
            .map(|n| n + 1);
        let help = match first {
            Some(first_line) => format!("`{key}` is already declared on line {first_line}"),
            None => format!("`{key}` is already declared above"),
        };
        return (format!("duplicate service `{key}`"), Some(help));
    }
    (
        format!("duplicate key `{key}`"),
        Some("each key may appear once in a table".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_tables_in_order_with_spans() {
        let source = "[services.web]\ncommand = \"x\"\nport = 80\nenv = { B = 1, A = true }\n";
        let root = parse(source).unwrap();
        let web = root.get("services").unwrap().get("web").unwrap();
        let keys: Vec<&str> = web
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["command", "port", "env"]);
        let command = web.get("command").unwrap();
        assert_eq!(command.kind, NodeKind::Str("x".into()));
        assert_eq!(&source[command.span.clone().unwrap()], "\"x\"");
        assert_eq!(&source[command.key_span.clone().unwrap()], "command");
        assert_eq!(&source[web.span.clone().unwrap()], "[services.web]");
        let env = web.get("env").unwrap();
        let env_keys: Vec<&str> = env
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(env_keys, ["B", "A"]);
    }

    #[test]
    fn duplicate_service_tables_are_named_as_such() {
        let source = "[services.db]\nimage = \"r\"\n\n[services.db]\nimage = \"r\"\n";
        let error = parse(source).unwrap_err();
        let (message, help) = explain_syntax_error(source, &error);
        assert_eq!(message, "duplicate service `db`");
        assert_eq!(help.as_deref(), Some("`db` is already declared on line 1"));
    }
}
