//! Slice patterns (`[[slices]] paths` of `launch.toml`), matched as the reference
//! lifecycle's Go `filepath.Glob` does relative to the app: `*` is any run of characters
//! but `/`, `?` one such character, `[…]` a class (ranges, `^` or `!` negation), `\`
//! escapes; a pattern matching a directory takes everything under it.

/// A compiled slice pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    segments: Vec<Vec<char>>,
}

impl Pattern {
    pub fn new(pattern: &str) -> Pattern {
        let trimmed = pattern.trim_start_matches("./").trim_matches('/');
        Pattern {
            segments: trimmed
                .split('/')
                .filter(|s| !s.is_empty() && *s != ".")
                .map(|s| s.chars().collect())
                .collect(),
        }
    }

    /// True when the pattern matches `path` (relative, `/`-separated) or one of its parent
    /// directories.
    pub fn matches_path_or_parent(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        if self.segments.is_empty() || parts.len() < self.segments.len() {
            return false;
        }
        self.segments
            .iter()
            .zip(&parts)
            .all(|(segment, part)| matches(segment, &part.chars().collect::<Vec<_>>()))
    }
}

/// One path segment against one pattern segment.
fn matches(pattern: &[char], name: &[char]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|skip| matches(rest, &name[skip..])),
        Some(('?', rest)) => !name.is_empty() && matches(rest, &name[1..]),
        Some(('[', rest)) => match (class(rest), name.split_first()) {
            (Some((accepts, after)), Some((c, name_rest))) => {
                accepts(*c) && matches(after, name_rest)
            }
            _ => false,
        },
        Some(('\\', rest)) => match (rest.split_first(), name.split_first()) {
            (Some((p, rest)), Some((c, name_rest))) => p == c && matches(rest, name_rest),
            _ => false,
        },
        Some((p, rest)) => name.first() == Some(p) && matches(rest, &name[1..]),
    }
}

type Class<'a> = (Box<dyn Fn(char) -> bool + 'a>, &'a [char]);

/// A `[…]` class (after its `[`): what it accepts and the pattern after its `]`. An
/// unterminated class matches nothing, as Go's `ErrBadPattern` makes the glob empty.
fn class(pattern: &[char]) -> Option<Class<'_>> {
    let (negated, body) = match pattern.first() {
        Some('^' | '!') => (true, &pattern[1..]),
        _ => (false, pattern),
    };
    let end = body.iter().skip(1).position(|c| *c == ']')? + 1;
    let items = &body[..end];
    let accepts = move |c: char| {
        let mut i = 0;
        let mut found = false;
        while i < items.len() {
            if i + 2 < items.len() && items[i + 1] == '-' {
                found |= items[i] <= c && c <= items[i + 2];
                i += 3;
            } else {
                found |= items[i] == c;
                i += 1;
            }
        }
        found != negated
    };
    Some((Box::new(accepts), &body[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn patterns_match_segments_and_everything_under_a_match() {
        let cases = [
            ("static", "static", true),
            ("static", "static/css/site.css", true),
            ("static", "statics", false),
            ("./static/", "static/a", true),
            ("*.txt", "notes.txt", true),
            ("*.txt", "dir/notes.txt", false),
            ("*/notes.txt", "dir/notes.txt", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("[ab", "a", false),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("public/*.js", "public/app.js", true),
            ("public/*.js", "public/app.css", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches_path_or_parent(path),
                expected,
                "{pattern} against {path}"
            );
        }
    }
}
