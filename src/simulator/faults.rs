//! Error responses in the exact form Bedrock sends them, and the faults a directive can inject
//! before any answer is sent.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::body::SimBody;
use super::directives::Fault;
use crate::aws::error::aws_error;

/// Bedrock qualifies its modeled error types with the Coral namespace; SDKs strip it.
const BEDROCK_NS: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";
/// Authentication and routing errors come from the generic Coral front end instead.
const CORAL_NS: &str = "http://internal.amazon.com/coral/com.amazon.coral.service/";

pub const THROTTLED: &str = "Too many requests, please wait before trying again.";

pub fn bedrock_error(status: StatusCode, error_type: &str, message: &str) -> Response<SimBody> {
    aws_error(status, &format!("{error_type}:{BEDROCK_NS}"), message).map(SimBody::from)
}

pub fn coral_error(status: StatusCode, error_type: &str, message: &str) -> Response<SimBody> {
    aws_error(status, &format!("{error_type}:{CORAL_NS}"), message).map(SimBody::from)
}

pub fn validation(message: &str) -> Response<SimBody> {
    bedrock_error(StatusCode::BAD_REQUEST, "ValidationException", message)
}

/// What Bedrock answers for a model id it does not know (or a prompt router it cannot find).
pub fn unknown_model() -> Response<SimBody> {
    bedrock_error(
        StatusCode::BAD_REQUEST,
        "ValidationException",
        UNKNOWN_MODEL,
    )
}

const UNKNOWN_MODEL: &str = "The provided model identifier is invalid.";

/// The response for a fault that strikes before any answer, or `None` when the fault belongs
/// to the stream producer (it happens after some frames were sent).
pub fn before_answer(fault: Fault, stream: bool) -> Option<Response<SimBody>> {
    if stream && matches!(fault, Fault::Malformed | Fault::Drop | Fault::Midstream) {
        return None;
    }
    let (status, error_type, message) = match fault {
        Fault::Throttle => (
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            THROTTLED,
        ),
        Fault::Validation => (
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        ),
        Fault::UnknownModel => return Some(unknown_model()),
        Fault::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "The server encountered an internal error while processing the request.",
        ),
        Fault::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        Fault::Timeout => (
            StatusCode::REQUEST_TIMEOUT,
            "ModelTimeoutException",
            "Model has timed out in processing the request. Try your request again.",
        ),
        Fault::ModelError | Fault::Midstream => (
            StatusCode::FAILED_DEPENDENCY,
            "ModelErrorException",
            "The model returned an error. Try your request again.",
        ),
        Fault::Malformed => return Some(malformed_json()),
        // Failing the body before anything is written makes the server close the connection
        // without sending the status line.
        Fault::Drop => return Some(Response::new(SimBody::Fail)),
    };
    Some(bedrock_error(status, error_type, message))
}

/// A 200 whose JSON body stops short, as a cut-off upstream would leave it.
fn malformed_json() -> Response<SimBody> {
    let mut response = Response::new(SimBody::Full(http_body_util::Full::new(
        Bytes::from_static(b"{\"output\": "),
    )));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::error::ERROR_TYPE_HEADER;
    use http_body_util::BodyExt;

    async fn parts(r: Response<SimBody>) -> (u16, String, String) {
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get(ERROR_TYPE_HEADER)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        (status, kind, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn status_and_type_per_fault() {
        let cases = [
            (Fault::Throttle, 429, "ThrottlingException"),
            (Fault::Validation, 400, "ValidationException"),
            (Fault::UnknownModel, 400, "ValidationException"),
            (Fault::Internal, 500, "InternalServerException"),
            (Fault::Unavailable, 503, "ServiceUnavailableException"),
            (Fault::ModelError, 424, "ModelErrorException"),
            (Fault::Timeout, 408, "ModelTimeoutException"),
        ];
        for (fault, status, kind) in cases {
            for stream in [false, true] {
                let (s, k, _) = parts(before_answer(fault, stream).unwrap()).await;
                assert_eq!(s, status, "{fault:?}");
                assert_eq!(k, format!("{kind}:{BEDROCK_NS}"), "{fault:?}");
            }
        }
        let (s, k, _) = parts(before_answer(Fault::Midstream, false).unwrap()).await;
        assert_eq!(
            (s, k.as_str()),
            (424, &*format!("ModelErrorException:{BEDROCK_NS}"))
        );
        let (_, _, body) = parts(before_answer(Fault::UnknownModel, false).unwrap()).await;
        assert_eq!(
            body,
            r#"{"message":"The provided model identifier is invalid."}"#
        );
    }

    #[tokio::test]
    async fn stream_faults_are_left_to_the_stream() {
        for fault in [Fault::Malformed, Fault::Drop, Fault::Midstream] {
            assert!(before_answer(fault, true).is_none(), "{fault:?}");
        }
        let (s, _, body) = parts(before_answer(Fault::Malformed, false).unwrap()).await;
        assert_eq!((s, body.as_str()), (200, "{\"output\": "));
        let dropped = before_answer(Fault::Drop, false).unwrap();
        assert!(dropped.into_body().collect().await.is_err());
    }
}
