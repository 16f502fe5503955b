//! API versions (`<major>[.<minor>]`), as `buildpack.toml` and `group.toml` carry them.

use std::fmt;

/// A Buildpack or Platform API version. `"1"` is `1.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Api {
    pub major: u32,
    pub minor: u32,
}

/// Why an API version was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("`{0}` is not an API version of the form <major>[.<minor>]")]
    Malformed(String),
    #[error("Buildpack API {0} is not supported (supported: {min} to {max})", min = Api::OLDEST_BUILDPACK, max = Api::NEWEST_BUILDPACK)]
    Unsupported(Api),
}

impl Api {
    /// The oldest Buildpack API this lifecycle runs (the reference lifecycle's oldest).
    pub const OLDEST_BUILDPACK: Api = Api::new(0, 7);
    /// The newest Buildpack API this lifecycle runs.
    pub const NEWEST_BUILDPACK: Api = Api::new(0, 12);

    pub const fn new(major: u32, minor: u32) -> Api {
        Api { major, minor }
    }

    /// Parses `<major>` or `<major>.<minor>`: digits only (no sign, no spaces, no third part).
    pub fn parse(text: &str) -> Result<Api, ApiError> {
        let malformed = || ApiError::Malformed(text.to_string());
        let number = |part: &str| -> Result<u32, ApiError> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            part.parse().map_err(|_| malformed())
        };
        match text.split_once('.') {
            None => Ok(Api::new(number(text)?, 0)),
            Some((major, minor)) => Ok(Api::new(number(major)?, number(minor)?)),
        }
    }

    /// Parses a buildpack's `api` and checks this lifecycle supports it.
    pub fn parse_buildpack(text: &str) -> Result<Api, ApiError> {
        let api = Api::parse(text)?;
        if api < Api::OLDEST_BUILDPACK || api > Api::NEWEST_BUILDPACK {
            return Err(ApiError::Unsupported(api));
        }
        Ok(api)
    }

    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Api::new(major, minor)
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_alone_means_minor_zero() {
        assert_eq!(Api::parse("1"), Ok(Api::new(1, 0)));
        assert_eq!(Api::parse("0.10"), Ok(Api::new(0, 10)));
        // Minors compare as numbers, not as text: 0.10 is after 0.9.
        assert!(Api::new(0, 10) > Api::new(0, 9));
    }

    #[test]
    fn malformed_versions_are_refused() {
        for text in ["", "0.", ".1", "0.1.2", "+1", "0.-1", " 0.1", "v1", "0.x"] {
            assert_eq!(
                Api::parse(text),
                Err(ApiError::Malformed(text.into())),
                "{text:?}"
            );
        }
    }

    #[test]
    fn buildpack_apis_outside_the_supported_range_are_refused() {
        assert_eq!(Api::parse_buildpack("0.10"), Ok(Api::new(0, 10)));
        assert_eq!(
            Api::parse_buildpack("0.6"),
            Err(ApiError::Unsupported(Api::new(0, 6)))
        );
        assert_eq!(
            Api::parse_buildpack("0.13"),
            Err(ApiError::Unsupported(Api::new(0, 13)))
        );
        assert_eq!(
            Api::parse_buildpack("1"),
            Err(ApiError::Unsupported(Api::new(1, 0)))
        );
        assert!(Api::new(0, 10).at_least(0, 9) && !Api::new(0, 10).at_least(0, 11));
    }
}
