//! The plain names and checks that the request path, the meter, the metrics and the tools share:
//! the app header, the fixed app labels, the auth-failure reasons, and what a valid app name and
//! Region id look like. A leaf: it uses nothing else of the crate, so any module may use it
//! without making an import circle.

/// The header a client that cannot set an SDK app id may declare its app with (open mode).
pub const APP_HEADER: &str = "x-bedrock-meter-app";

/// The `app` label of a request refused before it was attributed (keys mode).
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// The `app` label of a request that declared no app (open mode).
pub const UNKNOWN_APP: &str = "unknown";

/// The longest app name; longer names are labelled `invalid`.
pub const MAX_APP_LEN: usize = 64;

/// The `reason` label values of `bedrock_auth_failures_total`, one per kind of keys-mode refusal.
pub const AUTH_FAILURE_REASONS: [&str; 7] = [
    "missing",
    "malformed",
    "unknown_key",
    "bad_session_token",
    "bad_signature",
    "expired",
    "unknown_bearer_token",
];

/// An app name: `[A-Za-z0-9._-]{1,64}`.
pub fn valid_app(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_APP_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// An AWS Region id: `eu-west-1`, `us-gov-west-1`, `ap-southeast-2`… It becomes part of the
/// upstream host name, so nothing else may pass.
pub fn valid_region(s: &str) -> bool {
    // Called for every forwarded request, so it allocates nothing: a two-letter area, then
    // lowercase words, then a number, with at least one word.
    if s.len() > 32 {
        return false;
    }
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    let mut parts = s.split('-');
    if !parts
        .next()
        .is_some_and(|area| area.len() == 2 && lower(area))
    {
        return false;
    }
    let (mut count, mut last) = (0, "");
    for part in parts {
        if count > 0 && !lower(last) {
            return false;
        }
        (count, last) = (count + 1, part);
    }
    count >= 2 && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions() {
        for ok in [
            "us-east-1",
            "eu-west-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "eu-central-2",
        ] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-EAST-1",
            "us-east-1a",
            "us--1",
            "us-east-1.evil.com",
            "a-b-1",
            "us-east-1/",
            "us_east_1",
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
        assert!(!valid_region(&format!("us-{}-1", "a".repeat(40))));
    }

    #[test]
    fn apps() {
        assert!(valid_app("checkout.v2_a-b"));
        assert!(valid_app(&"x".repeat(64)));
        assert!(!valid_app(&"x".repeat(65)));
        assert!(!valid_app(""));
        assert!(!valid_app("a b"));
    }
}
