//! The usage readers of non-streaming responses: the Converse JSON body and InvokeModel's
//! token-count headers. No panic, and what they return agrees with the input.
//!
//! Input, like an HTTP response: header lines `name: value`, an empty line, then the body. With
//! no empty line the whole input is the body.
#![no_main]

use bedrock_meter::api::Served;
use bedrock_meter::api::converse;
use bedrock_meter::api::invoke::{
    self, CACHE_READ_HEADER, CACHE_WRITE_HEADER, INPUT_TOKENS_HEADER, OUTPUT_TOKENS_HEADER,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn split(data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let Some(at) = data.windows(2).position(|w| w == b"\n\n") else {
        return (headers, data);
    };
    for line in data[..at].split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            // `append`: repeated headers stay repeated, as on the wire.
            headers.append(name, value);
        }
    }
    (headers, &data[at + 2..])
}

/// The first value of `name` as the reader should see it.
fn count(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fuzz_target!(|data: &[u8]| {
    let (headers, body) = split(data);

    if let Ok((u, _served)) = converse::read_body(body) {
        // The 1-hour share of cache writes can never exceed the cache writes.
        assert!(u.cache_write_1h <= u.cache_write, "{u:?}");
        assert!(u.prompt_total() >= u.input);
    }

    match invoke::read_headers(&headers) {
        Ok(u) => {
            assert_eq!(Some(u.input), count(&headers, INPUT_TOKENS_HEADER));
            // Embedding models send no output header: their output is 0.
            assert_eq!(u.output, count(&headers, OUTPUT_TOKENS_HEADER).unwrap_or(0));
            assert_eq!(
                u.cache_read,
                count(&headers, CACHE_READ_HEADER).unwrap_or(0)
            );
            assert_eq!(
                u.cache_write,
                count(&headers, CACHE_WRITE_HEADER).unwrap_or(0)
            );
            assert_eq!(u.cache_write_1h, 0);
        }
        Err(missing) => {
            // Refused only when the input count is absent or some count is not a number.
            let required = count(&headers, INPUT_TOKENS_HEADER).is_some();
            let optional_ok = [OUTPUT_TOKENS_HEADER, CACHE_READ_HEADER, CACHE_WRITE_HEADER]
                .iter()
                .all(|h| headers.get(*h).is_none() || count(&headers, h).is_some());
            assert!(!(required && optional_ok), "{missing:?} for {headers:?}");
        }
    }

    let _: Served = Served::from_headers(&headers);
});
