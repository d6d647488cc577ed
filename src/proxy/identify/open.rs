//! Open mode: the app a request belongs to, as the client declares it.
//!
//! Every AWS SDK puts `app/NAME` in `User-Agent` when `AWS_SDK_UA_APP_ID` (or the SDK's app id
//! setting) is set; the Rust SDK also puts it in `x-amz-user-agent`. Clients that cannot set an
//! app id may send the header `x-bedrock-meter-app`. The raw name returned here is validated and
//! bounded by the label guard.

use http::HeaderMap;

pub use crate::names::APP_HEADER;

/// The client-declared app name, if any, in order of precedence.
pub fn app_name(headers: &HeaderMap) -> Option<&str> {
    let from_ua = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(app_from_user_agent)
    };
    from_ua("user-agent")
        .or_else(|| from_ua("x-amz-user-agent"))
        .or_else(|| {
            headers
                .get(APP_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        })
}

/// The `NAME` of the first `app/NAME` token of a user agent string.
fn app_from_user_agent(ua: &str) -> Option<&str> {
    ua.split_ascii_whitespace()
        .find_map(|token| token.strip_prefix("app/"))
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn precedence() {
        let rust_ua = "aws-sdk-rust/1.3.9 ua/2.1 api/bedrockruntime/1.153.0 os/linux lang/rust/1.95.0 app/checkout";
        assert_eq!(
            app_name(&headers(&[("user-agent", rust_ua)])),
            Some("checkout")
        );
        assert_eq!(
            app_name(&headers(&[
                ("user-agent", "Boto3/1.40.0 md/Botocore#1.40.0 app/search"),
                ("x-amz-user-agent", "aws-sdk-js/3 app/other"),
                (APP_HEADER, "header-app"),
            ])),
            Some("search")
        );
        assert_eq!(
            app_name(&headers(&[
                ("user-agent", "curl/8"),
                ("x-amz-user-agent", "aws-sdk-rust/1 app/billing"),
            ])),
            Some("billing")
        );
        assert_eq!(
            app_name(&headers(&[
                ("user-agent", "curl/8"),
                (APP_HEADER, " batch ")
            ])),
            Some("batch")
        );
        assert_eq!(app_name(&headers(&[("user-agent", "curl/8 app/")])), None);
        assert_eq!(app_name(&HeaderMap::new()), None);
    }
}
