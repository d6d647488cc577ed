//! Route: which family and operation a request is, and for which model.
//!
//! Routing works on the raw path exactly as the client sent it: SDKs percent-encode the model id
//! label (`:` as `%3A`, `/` in ARNs as `%2F`), and the forwarded request must keep those bytes so
//! its signature matches what Bedrock computes. Only the extracted label is decoded. Each API
//! family ([`crate::api`]) says which paths are its own.

use http::Method;

use crate::api::{FAMILIES, Route};

/// Classifies a request by method and raw path (query string excluded). `None` means the path
/// is not a Bedrock Runtime operation and must not be forwarded.
pub fn route(method: &Method, raw_path: &str) -> Option<Route> {
    let path = raw_path.strip_prefix('/')?;
    // Every operation's path has a handful of segments: they are borrowed on the stack.
    let mut segments = [""; 8];
    let mut count = 0;
    for segment in path.split('/') {
        *segments.get_mut(count)? = segment;
        count += 1;
    }
    let segments = &segments[..count];
    FAMILIES.iter().find_map(|f| f.route(method, segments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Operation;

    fn post(path: &str) -> Option<Route> {
        route(&Method::POST, path)
    }

    #[test]
    fn operations_by_path() {
        let cases = [
            ("converse", Operation::Converse),
            ("converse-stream", Operation::ConverseStream),
            ("invoke", Operation::InvokeModel),
            (
                "invoke-with-response-stream",
                Operation::InvokeModelWithResponseStream,
            ),
            ("count-tokens", Operation::CountTokens),
            (
                "invoke-with-bidirectional-stream",
                Operation::InvokeModelWithBidirectionalStream,
            ),
        ];
        for (action, op) in cases {
            let r = post(&format!("/model/amazon.nova-micro-v1%3A0/{action}")).unwrap();
            assert_eq!(r.operation, op, "{action}");
            assert_eq!(r.model_id.as_deref(), Some("amazon.nova-micro-v1:0"));
        }
    }

    #[test]
    fn bare_colon_and_encoded_arn() {
        let r = post("/model/amazon.nova-micro-v1:0/converse").unwrap();
        assert_eq!(r.model_id.as_deref(), Some("amazon.nova-micro-v1:0"));
        let r = post(
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Famazon.nova-lite-v1%3A0/invoke",
        )
        .unwrap();
        assert_eq!(
            r.model_id.as_deref(),
            Some("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0")
        );
    }

    #[test]
    fn unencoded_arn_slash() {
        let r = post(
            "/model/arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0/converse",
        )
        .unwrap();
        assert_eq!(r.operation, Operation::Converse);
        assert_eq!(
            r.model_id.as_deref(),
            Some("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0")
        );
    }

    #[test]
    fn other_operations_and_unknown_paths() {
        assert_eq!(
            post("/guardrail/gr1/version/1/apply").unwrap().operation,
            Operation::ApplyGuardrail
        );
        assert_eq!(
            post("/async-invoke").unwrap().operation,
            Operation::StartAsyncInvoke
        );
        assert_eq!(
            route(&Method::GET, "/async-invoke/arn%3Ax")
                .unwrap()
                .operation,
            Operation::Other
        );
        for bad in [
            "/",
            "",
            "/model",
            "/model/x",
            "/model//converse",
            "/model/x/explode",
            "/foundation-models",
            "/model/%FF/converse",
            "/guardrail/x/apply",
        ] {
            assert_eq!(post(bad), None, "{bad}");
        }
        assert_eq!(route(&Method::GET, "/model/x/converse"), None);
    }
}
