//! The keys-mode verifier's cost: header precheck plus SigV4 signature check of a signed 2 KB
//! Converse request, on one core. Also the cost of the proxy's own re-signing, for scale.
//!
//! cargo run --release --example verify-bench -- [ITERATIONS]

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use aws_credential_types::Credentials;
use bedrock_meter::aws::sigv4;
use bedrock_meter::proxy::identify::{KeyStore, Keys, Verdict, verify_body};
use http::Request;

const KEYS: &str = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-virtual-secret-0123456789abcdef"
app = "checkout"
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let store = KeyStore::new(Keys::parse(KEYS, "bench")?.keys);
    let credentials = Credentials::new(
        "AKIDCHECKOUT01",
        "checkout-virtual-secret-0123456789abcdef",
        None,
        None,
        "bench",
    );
    let text = "x".repeat(1_950);
    let body = format!(r#"{{"messages":[{{"role":"user","content":[{{"text":"{text}"}}]}}]}}"#);
    let body = body.as_bytes();
    let (mut parts, ()) = Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:8080/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse")
        .header("content-type", "application/json")
        .header(
            "user-agent",
            "aws-sdk-rust/1.3.9 ua/2.1 api/bedrockruntime/1.153.0 os/linux lang/rust/1.95.0",
        )
        .header(
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 ua/2.1 api/bedrockruntime/1.153.0 os/linux lang/rust/1.95.0",
        )
        .header(
            "amz-sdk-invocation-id",
            "6c3f8d0e-2f7b-4d43-9a57-0f1f2b3c4d5e",
        )
        .header("amz-sdk-request", "attempt=1; max=1")
        .body(())?
        .into_parts();
    let now = SystemTime::now();
    sigv4::sign(&mut parts, body, &credentials, "us-east-1", now)?;
    println!(
        "request: {} B body, {} headers",
        body.len(),
        parts.headers.len()
    );

    let verify_once = || -> bool {
        match store.precheck(&parts.headers, now) {
            Ok(Verdict::Signed { credentials, .. }) => {
                verify_body(&parts, body, &credentials, now).is_ok()
            }
            _ => false,
        }
    };
    if !verify_once() {
        return Err("the benchmark request does not verify".into());
    }
    // Warm-up, then five timed rounds; the median round is reported.
    for _ in 0..iterations / 10 {
        black_box(verify_once());
    }
    let mut verify = Vec::new();
    let mut sign = Vec::new();
    let mut hash = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iterations {
            black_box(verify_once());
        }
        verify.push(t.elapsed().as_nanos() as f64 / f64::from(iterations));

        let t = Instant::now();
        for _ in 0..iterations {
            let mut p = parts.clone();
            sigv4::sign(&mut p, black_box(body), &credentials, "us-east-1", now)?;
            black_box(p);
        }
        sign.push(t.elapsed().as_nanos() as f64 / f64::from(iterations));

        let t = Instant::now();
        for _ in 0..iterations {
            black_box(<sha2::Sha256 as sha2::Digest>::digest(black_box(body)));
        }
        hash.push(t.elapsed().as_nanos() as f64 / f64::from(iterations));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (v, s, h) = (median(&mut verify), median(&mut sign), median(&mut hash));
    println!(
        "verify (precheck + signature over 2 KB): {:.2} µs/request",
        v / 1000.0
    );
    println!(
        "re-sign (proxy's own SigV4, for scale):  {:.2} µs/request",
        s / 1000.0
    );
    println!(
        "SHA-256 of the 2 KB body alone:          {:.2} µs",
        h / 1000.0
    );
    println!("ratio verify / re-sign: {:.2}", v / s);
    Ok(())
}
