//! Rhai front end: lowers the map a script passes to `service(name, #{...})`
//! (and to `task(name, ...)`) into the value tree. Rhai values carry no source spans; the script engine
//! reports the call's position itself.

use rhai::{Dynamic, Map};

use super::value::{Node, NodeKind};

/// Lowers a Rhai object map. Rhai maps are sorted by key, so that is the
/// order the rules see.
pub(crate) fn lower_map(map: &Map) -> Node {
    let entries = map
        .iter()
        .map(|(key, value)| (key.to_string(), lower(value)))
        .collect();
    Node::new(NodeKind::Table(entries))
}

/// Lowers one Rhai value (`task(name, "line")` gives a string).
pub(crate) fn lower(value: &Dynamic) -> Node {
    let kind = if value.is_unit() {
        NodeKind::Null
    } else if let Ok(b) = value.as_bool() {
        NodeKind::Bool(b)
    } else if let Ok(i) = value.as_int() {
        NodeKind::Int(i)
    } else if let Ok(f) = value.as_float() {
        NodeKind::Float(f)
    } else if let Ok(c) = value.as_char() {
        NodeKind::Str(c.to_string())
    } else if value.is_string() {
        NodeKind::Str(value.clone().into_string().unwrap_or_default())
    } else if let Some(array) = value.read_lock::<rhai::Array>() {
        NodeKind::Array(array.iter().map(lower).collect())
    } else if let Some(map) = value.read_lock::<Map>() {
        return lower_map(&map);
    } else {
        NodeKind::Other(format!("a value of type `{}`", value.type_name()))
    };
    Node::new(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowers_every_rhai_shape() {
        let engine = rhai::Engine::new();
        let map: Map = engine
            .eval(r#"#{ s: "x", c: 'y', i: 3, f: 1.5, b: true, u: (), a: [1, "z"], m: #{ k: "v" }, p: Fn("f") }"#)
            .unwrap();
        let node = lower_map(&map);
        assert_eq!(node.get("s").unwrap().kind, NodeKind::Str("x".into()));
        assert_eq!(node.get("c").unwrap().kind, NodeKind::Str("y".into()));
        assert_eq!(node.get("i").unwrap().kind, NodeKind::Int(3));
        assert_eq!(node.get("f").unwrap().kind, NodeKind::Float(1.5));
        assert_eq!(node.get("b").unwrap().kind, NodeKind::Bool(true));
        assert!(node.get("u").unwrap().is_null());
        assert_eq!(node.get("a").unwrap().describe(), "an array");
        assert_eq!(
            node.get("m").unwrap().get("k").unwrap().kind,
            NodeKind::Str("v".into())
        );
        assert_eq!(node.get("p").unwrap().describe(), "a value of type `Fn`");
    }
}
