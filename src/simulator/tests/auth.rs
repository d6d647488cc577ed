//! SigV4 verification of signed calls, and h2c with prior knowledge.

use super::*;

pub(super) fn creds(secret: &str) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("AKIDSIMULATOR", secret, None, None, "test")
}

async fn signed(
    sim: &Simulator,
    creds: &aws_credential_types::Credentials,
    body: &str,
) -> (StatusCode, HeaderMap, Value) {
    let req = Request::post(format!("{}/model/{NOVA}/converse", sim.url()))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (mut parts, ()) = req.into_parts();
    crate::aws::sigv4::sign(
        &mut parts,
        body.as_bytes(),
        creds,
        "us-east-1",
        SystemTime::now(),
    )
    .unwrap();
    let req = Request::from_parts(parts, Full::new(Bytes::from(body.to_owned())));
    let r = client().request(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&body).unwrap(),
    )
}

#[tokio::test]
async fn signature_verification() {
    let sim = Simulator::start(SimulatorConfig {
        expect_credentials: Some(creds("right-secret")),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let body = prompt("[[sim input=3 output=4]]");
    let (status, _, v) = signed(&sim, &creds("right-secret"), &body).await;
    assert_eq!(status, 200, "{v}");
    let s = sim.stats();
    assert_eq!((s.signatures_valid, s.signatures_invalid), (1, 0));

    let (status, headers, v) = signed(&sim, &creds("wrong-secret"), &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("InvalidSignatureException:{CORAL_NS}")
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("The request signature we calculated")
    );
    let s = sim.stats();
    assert_eq!((s.signatures_valid, s.signatures_invalid), (1, 1));

    let other =
        aws_credential_types::Credentials::new("AKIDOTHER", "right-secret", None, None, "t");
    let (status, headers, _) = signed(&sim, &other, &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("UnrecognizedClientException:{CORAL_NS}")
    );
    let (status, headers, _) = post(&sim, &format!("/model/{NOVA}/converse"), &body).await;
    assert_eq!(status, 403);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("UnrecognizedClientException:{CORAL_NS}")
    );

    let s = sim.stats();
    assert_eq!(
        (s.requests, s.signatures_valid, s.signatures_invalid),
        (4, 1, 3)
    );
    // Only the accepted call's usage counts.
    assert_eq!(
        tokens(&s),
        [
            ("amazon.nova-micro-v1:0".to_owned(), "input", 3),
            ("amazon.nova-micro-v1:0".to_owned(), "output", 4)
        ]
    );
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let sim = sim().await;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/model/{NOVA}/converse-stream", sim.url()))
        .body(Full::new(Bytes::from(prompt("[[sim chunks=2]]"))))
        .unwrap();
    let r = client.request(req).await.unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    let f = read_frames(r, Instant::now()).await;
    assert_eq!((f.messages.len(), f.error), (6, None));
}
