//! Readers for the golden fixtures in `tests/fixtures/golden/` (sources in its README.md):
//! recorded Bedrock Runtime responses kept as VCR cassettes (YAML), and the AWS SigV4 test
//! suite's requests.
//!
//! The cassette reader understands only what the stored cassettes use: per interaction a
//! `response:` with `headers:` (`name:` followed by `- value` items, or `name: value`), a
//! `body: string:` that is a `!!binary |` block (base64) or a `|-` / `|` literal block, and a
//! `status: code:`. Anything else in a response section stops the test, so a fixture is never
//! half read.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, Request, request::Parts};

/// A fixture's path under `tests/fixtures/golden/`.
pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden")
        .join(rel)
}

pub fn bytes(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn text(rel: &str) -> String {
    String::from_utf8(bytes(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One recorded response of a cassette.
#[derive(Debug, Default)]
pub struct Recorded {
    /// `None` for an excerpt that stops after the headers.
    pub status: Option<u16>,
    /// In recorded order, names as recorded.
    pub headers: Vec<(String, String)>,
    /// Empty when the response was stored as `parsed_body` (not read) or not stored at all.
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A YAML scalar as the cassettes write it: plain, or single-quoted (`''` is a quote).
fn scalar(s: &str) -> String {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    assert!(
        !s.starts_with('"') && !s.starts_with('!') && !s.starts_with('|'),
        "unsupported scalar {s:?}"
    );
    s.to_owned()
}

/// Reads the block scalar that starts after `lines[start - 1]`, indented by `at` spaces.
fn block(lines: &[&str], start: usize, at: usize) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut i = start;
    while i < lines.len() && (lines[i].is_empty() || indent(lines[i]) >= at) {
        out.push(lines[i].get(at..).unwrap_or("").to_owned());
        i += 1;
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    (out, i)
}

/// Every `response:` of a cassette (or of an excerpt of one), in order.
pub fn responses(cassette: &str) -> Vec<Recorded> {
    let lines: Vec<&str> = cassette.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] != "  response:" {
            i += 1;
            continue;
        }
        i += 1;
        let mut rec = Recorded::default();
        while i < lines.len() && indent(lines[i]) >= 4 {
            let line = lines[i];
            assert_eq!(indent(line), 4, "unexpected line {line:?}");
            match line.trim() {
                "headers:" => {
                    i += 1;
                    while i < lines.len() && indent(lines[i]) >= 6 {
                        let entry = lines[i].trim();
                        let (name, rest) = entry.split_once(':').expect("header name");
                        i += 1;
                        if !rest.trim().is_empty() {
                            rec.headers.push((name.to_owned(), scalar(rest)));
                            continue;
                        }
                        while i < lines.len()
                            && indent(lines[i]) == 6
                            && lines[i].trim_start().starts_with("- ")
                        {
                            let value = &lines[i].trim_start()[2..];
                            rec.headers.push((name.to_owned(), scalar(value)));
                            i += 1;
                        }
                    }
                }
                "body:" => {
                    i += 1;
                    let head = lines[i].trim();
                    i += 1;
                    let (content, next) = block(&lines, i, 8);
                    i = next;
                    rec.body = match head {
                        "string: !!binary |" => STANDARD.decode(content.concat()).unwrap(),
                        "string: |-" => content.join("\n").into_bytes(),
                        "string: |" => (content.join("\n") + "\n").into_bytes(),
                        other => panic!("unsupported body {other:?}"),
                    };
                }
                "parsed_body:" => {
                    // Kept as YAML by the recorder; the tests use a JSON file instead.
                    i += 1;
                    while i < lines.len() && indent(lines[i]) >= 6 {
                        i += 1;
                    }
                }
                "status:" => {
                    i += 1;
                    while i < lines.len() && indent(lines[i]) >= 6 {
                        if let Some(code) = lines[i].trim().strip_prefix("code: ") {
                            rec.status = Some(code.parse().unwrap());
                        }
                        i += 1;
                    }
                }
                other => panic!("unsupported response section {other:?}"),
            }
        }
        out.push(rec);
    }
    out
}

/// The single response of a one-interaction cassette.
pub fn response(rel: &str) -> Recorded {
    let mut all = responses(&text(rel));
    assert_eq!(all.len(), 1, "{rel}");
    all.remove(0)
}

/// An HTTP/1.1 request as the SigV4 test suite writes it: request line, `Name:value` header
/// lines, a blank line, the body.
#[derive(Clone, Debug)]
pub struct SuiteRequest {
    pub method: String,
    /// Path and query exactly as on the request line.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SuiteRequest {
    pub fn parse(text: &str) -> SuiteRequest {
        let (head, body) = match text.split_once("\n\n") {
            Some((h, b)) => (h, b),
            None => (text.trim_end_matches('\n'), ""),
        };
        let mut lines = head.lines();
        let request_line = lines.next().expect("request line");
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap().to_owned();
        let target = parts.next().unwrap().to_owned();
        assert!(
            matches!(parts.next(), None | Some("HTTP/1.1")),
            "{request_line}"
        );
        let headers = lines
            .map(|l| {
                let (name, value) = l.split_once(':').expect("header line");
                // A field value never includes the optional whitespace around it (RFC 9110).
                (name.to_owned(), value.trim_matches([' ', '\t']).to_owned())
            })
            .collect();
        SuiteRequest {
            method,
            target,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// As a server receives it: origin-form target, every header.
    pub fn received(&self) -> Parts {
        self.parts(&self.target)
    }

    /// As a client hands it to a signer: absolute URI on the `Host`.
    pub fn outgoing(&self) -> Parts {
        let host = self.header("host").expect("Host header");
        self.parts(&format!("https://{host}{}", self.target))
    }

    fn parts(&self, uri: &str) -> Parts {
        let mut builder = Request::builder().method(self.method.as_str()).uri(uri);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder.body(()).unwrap().into_parts().0
    }
}

/// The `Authorization` header of a signed request.
pub fn authorization(req: &SuiteRequest) -> &str {
    req.header("authorization").expect("Authorization header")
}

/// The hex signature at the end of an `Authorization` header.
pub fn signature_of(authorization: &str) -> &str {
    authorization
        .rsplit_once("Signature=")
        .expect("Signature=")
        .1
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
