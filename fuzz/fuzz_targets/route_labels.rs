//! Routing and the label guard: whatever path and app name a client sends, no panic, a model
//! id the router extracts survives re-encoding, and the labels that reach the metrics stay
//! within their caps across the whole fuzzing run.
//!
//! Input: byte 0 (bit 0: POST or GET, bit 1: Bedrock vouched for the call, bits 2-3: which
//! header carries the app name), then the raw path, then optionally a NUL byte and the value of
//! that header.
#![no_main]

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use bedrock_meter::proxy::identify::open::{APP_HEADER, app_name};
use bedrock_meter::meter::labels::{self, LabelGuard};
use bedrock_meter::metrics::Metrics;
use bedrock_meter::api::{MAX_MODEL_ID_LEN, Operation};
use bedrock_meter::proxy::route::route;
use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const MAX_APPS: usize = 4;
const MAX_MODELS: usize = 4;

/// One guard for the whole run, as in the proxy: its caps must hold across every input.
struct Shared {
    guard: LabelGuard,
    metrics: Metrics,
    apps: Mutex<HashSet<String>>,
    models: Mutex<HashSet<String>>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| Shared {
        guard: LabelGuard::new(MAX_APPS, MAX_MODELS),
        metrics: Metrics::new().unwrap(),
        apps: Mutex::new(HashSet::new()),
        models: Mutex::new(HashSet::new()),
    })
}

fn action(op: Operation) -> &'static str {
    match op {
        Operation::Converse => "converse",
        Operation::ConverseStream => "converse-stream",
        Operation::InvokeModel => "invoke",
        Operation::InvokeModelWithResponseStream => "invoke-with-response-stream",
        Operation::CountTokens => "count-tokens",
        _ => "invoke-with-bidirectional-stream",
    }
}

/// Everything but RFC 3986's unreserved characters, as the SDKs encode a label.
const LABEL: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn is_fixed(label: &str) -> bool {
    [
        labels::INVALID,
        labels::OTHER,
        labels::UNVERIFIED,
        labels::UNKNOWN_APP,
        labels::NO_MODEL,
        // Keys mode's placeholder: a client may declare it, and it never takes a slot.
        bedrock_meter::proxy::identify::UNAUTHENTICATED,
    ]
    .contains(&label)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let method = if flags & 1 == 0 {
        Method::POST
    } else {
        Method::GET
    };
    let vouched = flags & 2 != 0;
    let (path, app) = match rest.iter().position(|&b| b == 0) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let path = String::from_utf8_lossy(path);

    let routed = route(&method, &path);
    let model_id = routed.as_ref().and_then(|r| r.model_id.clone());
    if let (Some(r), Some(id)) = (&routed, &model_id) {
        assert!(!id.is_empty() && id.len() <= MAX_MODEL_ID_LEN, "{id:?}");
        // The id survives the SDKs' own encoding of it.
        let encoded = percent_encoding::utf8_percent_encode(id, LABEL).to_string();
        let again = route(
            &Method::POST,
            &format!("/model/{encoded}/{}", action(r.operation)),
        );
        assert_eq!(again.as_ref(), Some(r), "{id:?} as {encoded:?}");
    }

    let s = shared();
    let mut headers = HeaderMap::new();
    let header =
        ["user-agent", "x-amz-user-agent", APP_HEADER, APP_HEADER][usize::from(flags >> 2) & 3];
    if let Some(v) = app.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        headers.insert(header, v);
    }
    let declared = app_name(&headers);
    if let Some(name) = declared {
        let value = headers[header].to_str().unwrap();
        assert!(
            !name.is_empty() && value.contains(name),
            "{name:?} from {value:?}"
        );
    }

    let app_label = s
        .guard
        .app(declared.unwrap_or(labels::UNKNOWN_APP), &s.metrics);
    if !is_fixed(&app_label) {
        assert_eq!(Some(&*app_label), declared);
        assert!(bedrock_meter::names::valid_app(&app_label));
        let mut apps = s.apps.lock().unwrap();
        apps.insert(app_label.to_string());
        assert!(apps.len() <= MAX_APPS, "{apps:?}");
    }

    let model_label = s.guard.model(model_id.as_deref(), vouched, &s.metrics);
    if !is_fixed(&model_label) {
        assert_eq!(Some(&*model_label), model_id.as_deref());
        assert!(model_label.len() <= 256);
        assert!(
            model_label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
        );
        let mut models = s.models.lock().unwrap();
        models.insert(model_label.to_string());
        assert!(models.len() <= MAX_MODELS, "{models:?}");
    }
});
