//! AWS-shaped error responses: status, `x-amzn-ErrorType`, and a JSON body that is exactly one
//! object with a `message`, which is what the AWS SDKs' rest-json error decoders expect.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

pub const ERROR_TYPE_HEADER: &str = "x-amzn-errortype";

/// Builds an error response in the shape Bedrock uses, so SDKs surface `error_type` as the
/// modeled (or generic) exception with `message`.
pub fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(error_type) {
        headers.insert(ERROR_TYPE_HEADER, value);
    }
    response
}

/// An error and its sources, one line, for messages and logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn shape() {
        let r = aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "no \"such\" path",
        );
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[ERROR_TYPE_HEADER], "UnknownOperationException");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v, serde_json::json!({"message": "no \"such\" path"}));
    }
}
