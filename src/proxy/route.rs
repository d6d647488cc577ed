//! Route: which Bedrock Runtime operation a request is, and for which model.
//!
//! Routing works on the raw path exactly as the client sent it: SDKs percent-encode the model id
//! label (`:` as `%3A`, `/` in ARNs as `%2F`), and the forwarded request must keep those bytes so
//! its signature matches what Bedrock computes. Only the extracted label is decoded.

use http::Method;
use percent_encoding::percent_decode_str;

/// The Bedrock Runtime operations the meter tells apart (the `operation` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Converse,
    ConverseStream,
    InvokeModel,
    InvokeModelWithResponseStream,
    CountTokens,
    ApplyGuardrail,
    Other,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Converse,
        Operation::ConverseStream,
        Operation::InvokeModel,
        Operation::InvokeModelWithResponseStream,
        Operation::CountTokens,
        Operation::ApplyGuardrail,
        Operation::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Converse => "Converse",
            Operation::ConverseStream => "ConverseStream",
            Operation::InvokeModel => "InvokeModel",
            Operation::InvokeModelWithResponseStream => "InvokeModelWithResponseStream",
            Operation::CountTokens => "CountTokens",
            Operation::ApplyGuardrail => "ApplyGuardrail",
            Operation::Other => "Other",
        }
    }

    /// Operations whose response is an `application/vnd.amazon.eventstream`.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Operation::ConverseStream | Operation::InvokeModelWithResponseStream
        )
    }

    /// Dense index, for per-operation handle arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A recognised Bedrock Runtime call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub operation: Operation,
    /// The model id label, percent-decoded; `None` for operations not addressed to a model.
    pub model_id: Option<String>,
}

/// Longest model id we accept as a label. Bedrock's own limit for ARNs is 2048; anything longer
/// than this is not a model id any client would send, and it would bloat metric labels.
pub const MAX_MODEL_ID_LEN: usize = 2048;

/// Classifies a request by method and raw path (query string excluded). `None` means the path
/// is not a Bedrock Runtime operation and must not be forwarded.
pub fn route(method: &Method, raw_path: &str) -> Option<Route> {
    let segments: Vec<&str> = raw_path.strip_prefix('/')?.split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["model", label, action]) => {
            let operation = match *action {
                "converse" => Operation::Converse,
                "converse-stream" => Operation::ConverseStream,
                "invoke" => Operation::InvokeModel,
                "invoke-with-response-stream" => Operation::InvokeModelWithResponseStream,
                "count-tokens" => Operation::CountTokens,
                "invoke-with-bidirectional-stream" => Operation::Other,
                _ => return None,
            };
            let model_id = decode_label(label)?;
            Some(Route {
                operation,
                model_id: Some(model_id),
            })
        }
        // Hand-written clients sometimes leave the `/` of an ARN unencoded; the action is then
        // still the last segment and everything between `model/` and it is the label.
        (&Method::POST, ["model", rest @ .., action]) if rest.len() > 1 => {
            let joined = rest.join("/");
            route(
                method,
                &format!("/model/{}/{}", joined.replace('/', "%2F"), action),
            )
        }
        (&Method::POST, ["guardrail", id, "version", version, "apply"])
            if !id.is_empty() && !version.is_empty() =>
        {
            Some(Route {
                operation: Operation::ApplyGuardrail,
                model_id: None,
            })
        }
        (&Method::POST | &Method::GET, ["async-invoke"]) | (&Method::GET, ["async-invoke", _]) => {
            Some(Route {
                operation: Operation::Other,
                model_id: None,
            })
        }
        _ => None,
    }
}

fn decode_label(label: &str) -> Option<String> {
    if label.is_empty() || label.len() > MAX_MODEL_ID_LEN * 3 {
        return None;
    }
    let decoded = percent_decode_str(label).decode_utf8().ok()?;
    if decoded.is_empty() || decoded.len() > MAX_MODEL_ID_LEN {
        return None;
    }
    Some(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("invoke-with-bidirectional-stream", Operation::Other),
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
        assert_eq!(post("/async-invoke").unwrap().operation, Operation::Other);
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
