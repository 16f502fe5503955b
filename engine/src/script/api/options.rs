//! Option maps of primitives (`run_command(cmd, #{ env, cwd })`,
//! `run_container(image, #{ … })`, `up(project, #{ … })`, …) read into typed
//! structs: `#[derive(Deserialize)]` with `deny_unknown_fields`, through
//! [`rhai::serde::from_dynamic`]'s deserializer, so a misspelt option is an
//! error that names it and the known ones, and a value of the wrong type names
//! its option.
//!
//! `()` for an option means "not given" (scripts pass values such as
//! `args.workdir` that may be `()`), so such entries are dropped before the
//! struct reads the map and the struct's default applies.
//!
//! Values that serde cannot carry (a `Program`, a `Volume`) are read by a
//! field type whose `Deserialize` takes the value as a [`Dynamic`] (rhai's
//! deserializer hands a `Dynamic` over as it is) and converts it.

use std::fmt;

use rhai::{Dynamic, EvalAltResult, LexError, Map, ParseErrorType};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

/// An option map a primitive cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("{primitive}: unknown option `{option}` (known: {})", known.join(", "))]
    Unknown {
        primitive: &'static str,
        option: String,
        known: &'static [&'static str],
    },
    #[error("{primitive}: option `{option}`: {reason}")]
    Invalid {
        primitive: &'static str,
        /// Where in the map: `tty`, `volumes[1]`, `env.PORT`.
        option: String,
        reason: String,
    },
}

/// Reads `options`, the option map of `primitive`, into `T` (a struct with
/// `#[serde(deny_unknown_fields, default)]`); `()` entries are not given.
pub fn read<T: DeserializeOwned>(primitive: &'static str, options: Map) -> Result<T, OptionsError> {
    let known = option_names::<T>();
    let mut given = options;
    given.retain(|_, value| !value.is_unit());
    // `deny_unknown_fields` refuses the key too, but its error is serde's
    // text; this one names the primitive and lists the options it knows.
    if let Some(option) = given.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(OptionsError::Unknown {
            primitive,
            option: option.to_string(),
            known,
        });
    }
    let map = Dynamic::from_map(given);
    serde_path_to_error::deserialize(rhai::serde::DynamicDeserializer::new(&map)).map_err(|e| {
        OptionsError::Invalid {
            primitive,
            option: e.path().to_string(),
            reason: reason(*e.into_inner()),
        }
    })
}

/// Reads one argument that is not an option map (`sleep`'s duration) as
/// option values are read; the error is the reason alone.
pub fn read_value<T: DeserializeOwned>(value: &Dynamic) -> Result<T, String> {
    T::deserialize(rhai::serde::DynamicDeserializer::new(value)).map_err(|e| reason(*e))
}

/// What rhai's deserializer said, without rhai's wrapping ("Syntax error",
/// "Output type incorrect").
fn reason(error: EvalAltResult) -> String {
    match error {
        EvalAltResult::ErrorMismatchOutputType(wanted, given, _) => {
            format!(
                "expected {}, not {}",
                type_words(&wanted),
                type_words(&given)
            )
        }
        EvalAltResult::ErrorParsing(
            ParseErrorType::BadInput(LexError::ImproperSymbol(_, text)),
            _,
        ) if !text.is_empty() => text,
        other => other.to_string(),
    }
}

/// A type as a script author knows it: `an array`, not `alloc::vec::Vec<…>`.
/// Rhai names the Rust type a field wanted and the script type it was given.
fn type_words(name: &str) -> String {
    // The outer type decides: `Vec<String>` is an array of anything.
    let outer = name.split('<').next().unwrap_or(name);
    let last = outer.rsplit("::").next().unwrap_or(outer);
    match last {
        "Vec" | "array" | "Array" => "an array".into(),
        "BTreeMap" | "HashMap" | "map" | "Map" => "a map".into(),
        "String" | "str" | "string" | "ImmutableString" | "PathBuf" => "a string".into(),
        "bool" => "true or false".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => "an integer".into(),
        "f32" | "f64" => "a number".into(),
        "char" => "a character".into(),
        "()" => "()".into(),
        other => format!("a {other}"),
    }
}

/// The field names of the struct `T`, as serde's derive declares them: the
/// one list of known options, so the error cannot drift from the struct.
pub(crate) fn option_names<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldNames) {
        Err(Captured(fields)) => fields,
        Ok(_) => &[],
    }
}

/// A deserializer that only records the fields `deserialize_struct` is
/// given, then stops.
struct FieldNames;

#[derive(Debug)]
struct Captured(&'static [&'static str]);

impl fmt::Display for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a struct")
    }
}

impl std::error::Error for Captured {}

impl de::Error for Captured {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Captured(&[])
    }
}

impl<'de> Deserializer<'de> for FieldNames {
    type Error = Captured;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Captured> {
        Err(Captured(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Captured> {
        Err(Captured(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// An option given as one string or an array of strings (`cap_add: "ALL"`).
pub fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a string or an array of strings")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// The value of an environment variable: a string, or a number or boolean
/// written as text (`#{ PORT: 8080 }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue(pub String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_char<E: de::Error>(self, v: char) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
        }
        deserializer.deserialize_any(Text)
    }
}

/// An environment map option (`env: #{ KEY: value }`) as strings.
pub fn env_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let map = std::collections::BTreeMap::<String, EnvValue>::deserialize(deserializer)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Example {
        flag: bool,
        name: Option<String>,
        #[serde(deserialize_with = "one_or_many")]
        items: Vec<String>,
        #[serde(deserialize_with = "env_map")]
        env: BTreeMap<String, String>,
    }

    fn map(source: &str) -> Map {
        rhai::Engine::new().eval(source).unwrap()
    }

    fn example(source: &str) -> Result<Example, OptionsError> {
        read("example", map(source))
    }

    #[test]
    fn a_good_map_is_read_and_unit_means_not_given() {
        let options = example(
            r#"#{ flag: true, name: (), items: "one", env: #{ PORT: 8080, ON: true, A: "b" } }"#,
        )
        .unwrap();
        assert_eq!(
            options,
            Example {
                flag: true,
                name: None,
                items: vec!["one".into()],
                env: BTreeMap::from([
                    ("A".into(), "b".into()),
                    ("ON".into(), "true".into()),
                    ("PORT".into(), "8080".into()),
                ]),
            }
        );
        assert_eq!(example("#{}").unwrap(), Example::default());
        assert_eq!(
            example(r#"#{ items: ["a", "b"] }"#).unwrap().items,
            ["a", "b"]
        );
    }

    #[test]
    fn a_misspelt_option_is_named_with_the_known_ones() {
        let error = example("#{ flg: true }").unwrap_err();
        assert_eq!(
            error.to_string(),
            "example: unknown option `flg` (known: flag, name, items, env)"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_option() {
        let error = example(r#"#{ flag: "yes" }"#).unwrap_err().to_string();
        assert_eq!(
            error,
            "example: option `flag`: expected true or false, not a string"
        );
        let error = example(r#"#{ name: ["x"] }"#).unwrap_err().to_string();
        assert_eq!(
            error,
            "example: option `name`: expected a string, not an array"
        );
        let error = example("#{ items: 3 }").unwrap_err().to_string();
        assert!(
            error.starts_with("example: option `items`: ")
                && error.contains("a string or an array of strings"),
            "{error}"
        );
        let error = example("#{ env: #{ A: [1] } }").unwrap_err().to_string();
        assert!(
            error.starts_with("example: option `env.A`: ")
                && error.contains("a string, a number or a boolean"),
            "{error}"
        );
    }
}
