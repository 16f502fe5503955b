//! The value tree the validation rules run over. Both front ends — TOML
//! (with byte spans) and Rhai maps (without) — lower into it, so there is one
//! set of rules for both.

use super::diagnostic::Span;

/// A configuration value with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: NodeKind,
    /// Span of the value itself (for a `[table]`, its header).
    pub span: Option<Span>,
    /// Span of the key that names this value, when it has one.
    pub key_span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// Rhai's `()`: treated as if the key were absent.
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Node>),
    /// Keys in the order they were written.
    Table(Vec<(String, Node)>),
    /// Anything the schema never accepts (a TOML datetime, a Rhai function
    /// pointer); holds the description used in "found ..." messages.
    Other(String),
}

impl Node {
    pub(crate) fn new(kind: NodeKind) -> Self {
        Node {
            kind,
            span: None,
            key_span: None,
        }
    }

    /// "a string", "an integer", ... for "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "`()`".to_owned(),
            NodeKind::Bool(_) => "a boolean".to_owned(),
            NodeKind::Int(_) => "an integer".to_owned(),
            NodeKind::Float(_) => "a float".to_owned(),
            NodeKind::Str(_) => "a string".to_owned(),
            NodeKind::Array(_) => "an array".to_owned(),
            NodeKind::Table(_) => "a table".to_owned(),
            NodeKind::Other(description) => description.clone(),
        }
    }

    /// The span to point at for a problem with this value: the value, or
    /// failing that the key naming it.
    pub(crate) fn best_span(&self) -> Option<Span> {
        self.span.clone().or_else(|| self.key_span.clone())
    }

    /// The span to point at for a problem with the key itself.
    pub(crate) fn key_or_value_span(&self) -> Option<Span> {
        self.key_span.clone().or_else(|| self.span.clone())
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    pub(crate) fn as_table(&self) -> Option<&[(String, Node)]> {
        match &self.kind {
            NodeKind::Table(entries) => Some(entries),
            _ => None,
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.as_table()?
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, node)| node)
    }
}
