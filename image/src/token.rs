//! The parts of the registry token protocol (Docker's, which OCI registries
//! follow) that parse what a registry sends: the `WWW-Authenticate: Bearer`
//! challenge of a 401 and the token endpoint's JSON answer. The requests
//! themselves are in `pull.rs`, with their bodies bounded like every other
//! response (oci-client read the token answer whole, without a bound).

use std::collections::HashMap;

/// Largest token endpoint answer accepted (1 MiB): a JSON object with a JWT
/// of a few KiB, sometimes with a refresh token beside it.
pub(crate) const MAX_TOKEN_RESPONSE_BYTES: u64 = 1 << 20;

/// A `Bearer` challenge: where to get a token, and for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// Parses `Bearer realm="…",service="…",scope="…"`; `None` for another
/// scheme (`Basic`) or a challenge without a realm.
pub(crate) fn parse_bearer_challenge(header: &str) -> Option<BearerChallenge> {
    let header = header.trim_start();
    let (scheme, rest) = header.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = parse_params(rest);
    Some(BearerChallenge {
        realm: params.remove("realm")?,
        service: params.remove("service"),
        scope: params.remove("scope"),
    })
}

/// `key=value` or `key="quoted, \"escaped\" value"` pairs separated by commas
/// (RFC 9110 auth-params). Keys are lowercased.
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            return params;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.insert(key, value);
    }
}

/// The token of a token endpoint's answer: `token`, else `access_token`
/// (OAuth2 style); `None` when it has neither.
pub(crate) fn parse_token(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token.filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse_like_docker_hub_and_others_send_them() {
        assert_eq!(
            parse_bearer_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Some(BearerChallenge {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            })
        );
        assert_eq!(
            parse_bearer_challenge(r#"bearer  Realm = "https://r/t?a=b,c" , service=plain"#),
            Some(BearerChallenge {
                realm: "https://r/t?a=b,c".into(),
                service: Some("plain".into()),
                scope: None,
            })
        );
        assert_eq!(
            parse_bearer_challenge(r#"Bearer realm="with \"quote\"""#).map(|c| c.realm),
            Some(r#"with "quote""#.to_string())
        );
        assert_eq!(parse_bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(parse_bearer_challenge(r#"Bearer service="no realm""#), None);
        assert_eq!(parse_bearer_challenge("Bearer"), None);
    }

    #[test]
    fn tokens_are_read_from_either_field() {
        assert_eq!(
            parse_token(br#"{"token":"t","access_token":"a"}"#),
            Some("t".into())
        );
        assert_eq!(
            parse_token(br#"{"token":"","access_token":"a"}"#),
            Some("a".into())
        );
        assert_eq!(parse_token(br#"{"expires_in":300}"#), None);
        assert_eq!(parse_token(b"not json"), None);
    }
}
