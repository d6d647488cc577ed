//! Injected faults: mid-stream exceptions, throttling, malformed answers, dropped connections and delays.

use super::*;

#[tokio::test]
async fn midstream_exception_records_nothing() {
    let sim = sim().await;
    let body = prompt("[[sim fault=midstream after=2 exception=throttlingException]]");
    let r = send(&sim, &format!("/model/{NOVA}/converse-stream"), &body).await;
    assert_eq!(r.status(), 200);
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.error, None);
    let kinds: Vec<String> = f
        .messages
        .iter()
        .map(|m| {
            format!(
                "{}:{}{}",
                h(m, ":message-type"),
                h(m, ":event-type"),
                h(m, ":exception-type")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "event:messageStart",
            "event:contentBlockDelta",
            "event:contentBlockDelta",
            "exception:throttlingException"
        ]
    );
    assert_eq!(
        payload(&f.messages[3]),
        json!({"message": "Too many requests, please wait before trying again."})
    );

    let body = prompt("[[sim fault=midstream]]");
    let r = send(
        &sim,
        &format!("/model/{CLAUDE}/invoke-with-response-stream"),
        &body,
    )
    .await;
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.messages.len(), 4); // message_start, content_block_start, one delta, exception
    assert_eq!(
        h(&f.messages[3], ":exception-type"),
        "modelStreamErrorException"
    );
    assert_eq!(payload(&f.messages[3])["originalStatusCode"], 500);

    // Not a stream: a model error.
    let (status, headers, _) = post(&sim, &format!("/model/{NOVA}/converse"), &body).await;
    assert_eq!(status, 424);
    assert_eq!(
        header(&headers, "x-amzn-errortype"),
        format!("ModelErrorException:{BEDROCK_NS}")
    );
    assert!(sim.stats().tokens.is_empty());
}

#[tokio::test]
async fn throttle_fault_shape() {
    let sim = sim().await;
    let body = prompt("[[sim fault=throttle]]");
    for path in [
        "converse",
        "converse-stream",
        "invoke",
        "invoke-with-response-stream",
    ] {
        let (status, headers, v) = post_json(&sim, &format!("/model/{NOVA}/{path}"), &body).await;
        assert_eq!(status, 429, "{path}");
        assert_eq!(
            header(&headers, "x-amzn-errortype"),
            format!("ThrottlingException:{BEDROCK_NS}")
        );
        assert_eq!(header(&headers, "content-type"), "application/json");
        assert!(headers.contains_key("x-amzn-requestid"));
        assert_eq!(
            v,
            json!({"message": "Too many requests, please wait before trying again."})
        );
    }
    let (status, _, v) = post_json(
        &sim,
        &format!("/model/{NOVA}/converse"),
        &prompt("[[sim fault=unknown_model]]"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"message": "The provided model identifier is invalid."})
    );
    let stats = sim.stats();
    assert_eq!(stats.requests, 5);
    assert!(stats.tokens.is_empty());
}

#[tokio::test]
async fn malformed_faults() {
    let sim = sim().await;
    let body = prompt("[[sim fault=malformed]]");
    let (status, headers, bytes) = post(&sim, &format!("/model/{NOVA}/invoke"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(bytes, "{\"output\": ");

    let body = prompt("[[sim fault=malformed after=2 chunks=3]]");
    let r = send(&sim, &format!("/model/{NOVA}/converse-stream"), &body).await;
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.messages.len(), 3);
    assert!(f.error.unwrap().contains("decode"));
    assert!(sim.stats().tokens.is_empty());
}

#[tokio::test]
async fn drop_fault_cuts_the_connection() {
    let sim = sim().await;
    // Not a stream: the connection closes before a status line is sent.
    let body = prompt("[[sim fault=drop]]");
    let mut tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "POST /model/{NOVA}/converse HTTP/1.1\r\nhost: sim\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the connection must be closed");
    assert_eq!(String::from_utf8_lossy(&received), "");

    // A stream: headers and `after` deltas, then the body fails.
    let body = prompt("[[sim fault=drop after=2]]");
    let r = send(&sim, &format!("/model/{NOVA}/converse-stream"), &body).await;
    assert_eq!(r.status(), 200);
    let f = read_frames(r, Instant::now()).await;
    assert_eq!(f.messages.len(), 3);
    assert!(f.error.unwrap().starts_with("body"));
    assert!(sim.stats().tokens.is_empty());
    assert_eq!(sim.stats().by_operation.get("ConverseStream"), Some(&1));
}

#[tokio::test]
async fn delay_holds_back_the_headers() {
    let sim = sim().await;
    let started = Instant::now();
    let (status, _, _) = post(
        &sim,
        &format!("/model/{NOVA}/converse"),
        &prompt("[[sim delay_ms=120 fault=internal]]"),
    )
    .await;
    assert_eq!(status, 500);
    assert!(started.elapsed() >= Duration::from_millis(120));
}
