//! Compose's variable substitution, as `docker compose` applies it to every
//! string of the file before reading it: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
//! `${VAR+alt}` (defaults may hold substitutions themselves), and `$$` for a
//! literal `$`. Variables come from the caller (the environment, then the
//! project's `.env`).

/// What substitution could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// `${VAR:?message}` with VAR unset (or empty).
    Required { name: String, message: String },
    /// A `${` without its `}`, or a name that is not one.
    Syntax(String),
}

/// `text` with its variables substituted. `unset` collects the names that
/// were neither set nor given a default (they become empty, as in compose).
pub(crate) fn interpolate(
    text: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, Problem> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let end = closing_brace(braced)
                .ok_or_else(|| Problem::Syntax(format!("`${{` without `}}` in `{text}`")))?;
            out.push_str(&expand(&braced[..end], vars, unset)?);
            rest = &braced[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 {
                // A lone `$` (before a space, a digit, the end): kept.
                out.push('$');
                rest = after;
            } else {
                out.push_str(&lookup(&after[..len], vars, unset));
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` closing a `${`, nested `${…}` skipped.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'$' if bytes.get(index + 1) == Some(&b'{') => {
                depth += 1;
                index += 1;
            }
            b'}' if depth == 0 => return Some(index),
            b'}' => depth -= 1,
            _ => {}
        }
        index += 1;
    }
    None
}

/// The length of the variable name at the start of `text`.
fn name_len(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(text.len(), |(index, _)| index)
}

fn lookup(name: &str, vars: &dyn Fn(&str) -> Option<String>, unset: &mut Vec<String>) -> String {
    vars(name).unwrap_or_else(|| {
        if !unset.iter().any(|seen| seen == name) {
            unset.push(name.to_string());
        }
        String::new()
    })
}

/// The inside of one `${…}`.
fn expand(
    inner: &str,
    vars: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, Problem> {
    let len = name_len(inner);
    if len == 0 {
        return Err(Problem::Syntax(format!("`${{{inner}}}` names no variable")));
    }
    let (name, operator) = inner.split_at(len);
    let value = vars(name);
    // `:` makes an empty value count as unset.
    let (colon, operator) = match operator.strip_prefix(':') {
        Some(rest) => (true, rest),
        None => (false, operator),
    };
    let set = value.as_deref().is_some_and(|v| !colon || !v.is_empty());
    let Some(kind) = operator.chars().next() else {
        return if colon {
            Err(Problem::Syntax(format!(
                "`${{{inner}}}`: `:` needs `-`, `?` or `+` after it"
            )))
        } else {
            Ok(lookup(name, vars, unset))
        };
    };
    let argument = &operator[kind.len_utf8()..];
    match kind {
        '-' if set => Ok(value.unwrap_or_default()),
        '-' => interpolate(argument, vars, unset),
        '+' if set => interpolate(argument, vars, unset),
        '+' => Ok(String::new()),
        '?' if set => Ok(value.unwrap_or_default()),
        '?' => Err(Problem::Required {
            name: name.to_string(),
            message: interpolate(argument, vars, unset)?,
        }),
        _ => Err(Problem::Syntax(format!(
            "`${{{inner}}}` is not a substitution compose knows"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "USER" => Some("ana".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("8080".into()),
            _ => None,
        }
    }

    fn run(text: &str) -> (Result<String, Problem>, Vec<String>) {
        let mut unset = Vec::new();
        let result = interpolate(text, &vars, &mut unset);
        (result, unset)
    }

    fn ok(text: &str) -> String {
        run(text).0.unwrap()
    }

    #[test]
    fn plain_and_braced_names() {
        assert_eq!(ok("$USER-${PORT}x"), "ana-8080x");
        assert_eq!(ok("cost: $$5, $ alone, $1"), "cost: $5, $ alone, $1");
        assert_eq!(ok("no variables"), "no variables");
    }

    #[test]
    fn defaults_alternatives_and_requirements() {
        assert_eq!(ok("${MISSING:-5432}"), "5432");
        assert_eq!(ok("${EMPTY:-fallback}"), "fallback");
        assert_eq!(ok("${EMPTY-fallback}"), "");
        assert_eq!(ok("${MISSING-${PORT}}"), "8080");
        assert_eq!(ok("${USER:+set}${MISSING:+set}"), "set");
        assert_eq!(ok("${USER:?needed}"), "ana");
        assert_eq!(
            run("${MISSING:?set MISSING in .env}").0,
            Err(Problem::Required {
                name: "MISSING".into(),
                message: "set MISSING in .env".into()
            })
        );
    }

    #[test]
    fn unset_variables_become_empty_and_are_reported_once() {
        let (result, unset) = run("${A}$A${B:-b}");
        assert_eq!(result.unwrap(), "b");
        assert_eq!(unset, ["A"]);
    }

    #[test]
    fn broken_syntax_is_an_error() {
        assert!(matches!(run("${USER").0, Err(Problem::Syntax(_))));
        assert!(matches!(run("${}").0, Err(Problem::Syntax(_))));
        assert!(matches!(run("${USER:}").0, Err(Problem::Syntax(_))));
        assert!(matches!(run("${USER/x/y}").0, Err(Problem::Syntax(_))));
    }
}
