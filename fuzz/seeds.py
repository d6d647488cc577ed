#!/usr/bin/env python3
"""Writes the checked-in seed corpora under fuzz/seeds/<target>/.

Each seed is a small, real input in the target's input format (see the comment at the top of
each fuzz_targets/*.rs): event-stream frames encoded per the AWS event-stream format (prelude,
string headers, payload, CRC-32s) with the payloads Bedrock sends, Converse bodies and
InvokeModel headers, request paths, model ids and Authorization headers.

Deterministic: running it again rewrites the same bytes. Other files in fuzz/seeds/ (inputs
from past crashes, kept as regression seeds) are left alone. Usage: python3 fuzz/seeds.py
"""
import base64
import json
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- event stream -------------------------------------------------------------------------

def frame(headers, payload):
    """One event-stream message: string headers (type 7) and a payload."""
    hb = b""
    for name, value in headers:
        n, v = name.encode(), value.encode()
        hb += struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + hb + payload
    return message + struct.pack(">I", zlib.crc32(message))


PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def event(event_type, payload, index=0):
    payload = dict(payload, p=PAD[: (index * 7) % len(PAD) + 1])
    return frame(
        [
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def exception(exception_type, message):
    return frame(
        [
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json.dumps({"message": message}).encode(),
    )


def error(code, message):
    return frame(
        [(":error-code", code), (":error-message", message), (":message-type", "error")], b""
    )


def converse_stream(usage, extra=None):
    frames = [
        event("messageStart", {"role": "assistant"}, 0),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}, 1),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " there"}}, 2),
        event("contentBlockStop", {"contentBlockIndex": 0}, 3),
        event("messageStop", {"stopReason": "end_turn"}, 4),
    ]
    metadata = {"usage": usage, "metrics": {"latencyMs": 120}}
    metadata.update(extra or {})
    frames.append(event("metadata", metadata, 5))
    return frames


def chunk(obj, index):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return event("chunk", {"bytes": base64.b64encode(raw).decode()}, index)


def invoke_stream(metrics):
    return [
        chunk({"type": "message_start", "message": {"role": "assistant"}}, 0),
        chunk({"type": "content_block_delta", "delta": {"text": "Hello"}}, 1),
        chunk(
            {
                "type": "message_stop",
                "amazon-bedrock-invocationMetrics": metrics,
            },
            2,
        ),
    ]


def stream_seed(name, kind, frames, step=0, seed=0x0123456789ABCDEF):
    flags = kind | (step << 1)
    write("eventstream_tap", name, bytes([flags]) + struct.pack("<Q", seed) + b"".join(frames))


def eventstream_seeds():
    usage = {"inputTokens": 25, "outputTokens": 9, "totalTokens": 34}
    cached = {
        "inputTokens": 3,
        "outputTokens": 40,
        "totalTokens": 2543,
        "cacheReadInputTokens": 1500,
        "cacheWriteInputTokens": 1000,
        "cacheDetails": [{"ttl": "5m", "inputTokens": 400}, {"ttl": "1h", "inputTokens": 600}],
    }
    served = {"serviceTier": {"type": "flex"}, "performanceConfig": {"latency": "optimized"}}
    metrics = {
        "inputTokenCount": 25,
        "outputTokenCount": 9,
        "invocationLatency": 240,
        "firstByteLatency": 80,
        "cacheReadInputTokenCount": 0,
        "cacheWriteInputTokenCount": 0,
    }
    conv = converse_stream(usage)
    stream_seed("converse-usage", 0, conv)
    stream_seed("converse-cache-tier", 0, converse_stream(cached, served), step=3)
    stream_seed(
        "converse-exception", 0, conv[:3] + [exception("modelStreamErrorException", "boom")]
    )
    stream_seed("converse-error", 0, conv[:2] + [error("InternalFailure", "oops")], step=1)
    stream_seed("converse-truncated", 0, [b"".join(conv)[:-7]], step=2)
    corrupt = bytearray(b"".join(conv))
    corrupt[len(conv[0]) + 20] ^= 0xFF
    stream_seed("converse-corrupt", 0, [bytes(corrupt)], step=5)
    inv = invoke_stream(metrics)
    stream_seed("invoke-usage", 1, inv)
    stream_seed(
        "invoke-cache",
        1,
        invoke_stream(dict(metrics, cacheReadInputTokenCount=7, cacheWriteInputTokenCount=11)),
        step=4,
    )
    stream_seed("invoke-throttled", 1, inv[:1] + [exception("throttlingException", "slow down")])
    stream_seed(
        "invoke-key-in-text",
        1,
        [chunk({"delta": {"text": "amazon-bedrock-invocationMetrics"}}, 0)] + inv[2:],
        step=2,
    )


def sonic_usage(speech_in, text_in, speech_out, text_out, index):
    total = {
        "input": {"speechTokens": speech_in, "textTokens": text_in},
        "output": {"speechTokens": speech_out, "textTokens": text_out},
    }
    return chunk({"event": {"usageEvent": {"details": {"delta": total, "total": total}}}}, index)


def bidirectional_seeds():
    """The response side of a Nova Sonic session (eventstream_tap, bit 7), and the request
    side (duplex_frames): a client's events as unsigned frames."""
    answer = [
        sonic_usage(4, 20, 0, 0, 0),
        chunk({"event": {"audioOutput": {"content": "AAAA"}}}, 1),
        chunk({"event": {"textOutput": {"content": "the \"usageEvent\" word"}}}, 2),
        sonic_usage(8, 20, 3, 4, 3),
    ]
    stream_seed("sonic-usage", 0x80, answer)
    stream_seed("sonic-timeout", 0x80, answer[:2] + [exception("modelTimeoutException", "late")])
    events = [
        {"sessionStart": {}},
        {"textInput": {"content": "hello"}},
        {"audioInput": {"content": "AAAAAAAA"}},
        {"sessionEnd": {}},
    ]
    frames = b"".join(chunk({"event": e}, i) for i, e in enumerate(events))
    seed = struct.pack("<Q", 0x0123456789ABCDEF)
    write("duplex_frames", "unsigned-events", bytes([2]) + seed + frames)
    write("duplex_frames", "unsigned-truncated", bytes([4]) + seed + frames[:-5])
    write("duplex_frames", "keys-mode-unsigned", bytes([3]) + seed + frames)


# --- usage parsers ------------------------------------------------------------------------

def usage_seeds():
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18},
        "metrics": {"latencyMs": 12},
    }
    cached = dict(
        body,
        usage={
            "inputTokens": 2,
            "outputTokens": 3,
            "totalTokens": 11,
            "cacheReadInputTokens": 0,
            "cacheWriteInputTokens": 6,
            "cacheDetails": [{"ttl": "5m", "inputTokens": 2}, {"ttl": "1h", "inputTokens": 4}],
        },
        serviceTier={"type": "priority"},
        performanceConfig={"latency": "optimized"},
    )
    write("usage_parsers", "converse", json.dumps(body).encode())
    write("usage_parsers", "converse-cache-tier", json.dumps(cached).encode())
    headers = (
        "x-amzn-bedrock-input-token-count: 12\n"
        "x-amzn-bedrock-output-token-count: 34\n"
        "x-amzn-bedrock-cache-read-input-token-count: 5\n"
        "x-amzn-bedrock-cache-write-input-token-count: 6\n"
        "x-amzn-bedrock-service-tier: flex\n"
        "x-amzn-bedrock-performanceconfig-latency: optimized\n"
        "x-amzn-bedrock-invocation-latency: 321\n\n"
    )
    write("usage_parsers", "invoke-headers", headers.encode() + b'{"content":[]}')
    write(
        "usage_parsers",
        "invoke-bad-count",
        b"x-amzn-bedrock-input-token-count:  12 \nx-amzn-bedrock-output-token-count: lots\n\n",
    )


# --- routing and labels -------------------------------------------------------------------

def route_seeds():
    seeds = {
        "converse": (0, "/model/amazon.nova-micro-v1%3A0/converse", "app/checkout"),
        "converse-stream-vouched": (
            2 | (2 << 2),
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
            "search.v2_beta-1",
        ),
        "invoke-arn": (
            2,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Famazon.nova-lite-v1%3A0/invoke",
            "aws-sdk-rust/1.3 app/batch os/linux",
        ),
        "unencoded-arn": (
            2 | (1 << 2),
            "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.amazon.nova-2-lite-v1:0/invoke-with-response-stream",
            "aws-sdk-rust/1.3 app/reports",
        ),
        "count-tokens": (0, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/count-tokens", None),
        "guardrail": (0, "/guardrail/gr-123/version/1/apply", "app/x y"),
        "async": (1, "/async-invoke/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aasync-invoke%2Fabc", None),
        "bad-utf8": (2, "/model/%FF%FE/converse", "bad name"),
    }
    for name, (flags, path, app) in seeds.items():
        data = bytes([flags]) + path.encode()
        if app is not None:
            data += b"\0" + app.encode()
        write("route_labels", name, data)


# --- rate card ----------------------------------------------------------------------------

def rate_card_seeds():
    now = 13 << 4  # about 2026
    seeds = {
        "bare-id": (now, "amazon.nova-micro-v1:0", "us-east-1", "1000 200 0 0 0"),
        "geo-profile-cache": (
            now,
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "us-west-2",
            "250000 4000 1500 1000 600",
        ),
        "global-flex": (now | (2 << 1), "global.amazon.nova-2-lite-v1:0", "eu-west-1", "10 20 0 0 0"),
        "foundation-arn": (
            now | 1,
            "arn:aws:bedrock:us-east-2::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "us-east-2",
            "5 5 0 0 0",
        ),
        "provisioned-arn": (
            now | (1 << 1),
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123",
            "",
            "1 1 1 1 1",
        ),
        "inference-profile-arn": (
            now | 8,
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
            "",
            "18446744073709551615 18446744073709551615 0 0 0",
        ),
        "reserved-unknown": (now | (3 << 1), "acme.unknown-model-v9", "ap-south-1", "1 2 3 4 5"),
        "early": (0, "amazon.nova-lite-v1:0", "us-east-1", "1 1 0 0 0"),
    }
    for name, (flags, model, region, counts) in seeds.items():
        write("rate_card_resolve", name, bytes([flags]) + f"{model}\n{region}\n{counts}".encode())


# --- SigV4 and keys ------------------------------------------------------------------------

def sigv4_seeds():
    path = "/model/amazon.nova-micro-v1%3A0/converse"
    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    sig = "3f" * 32
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKIDCHECKOUT01/20260101/us-east-1/bedrock/aws4_request, "
        f"SignedHeaders=content-type;host;x-amz-date, Signature={sig}"
    )
    seeds = {
        # Not signed here.
        "raw-sigv4": (0, [auth, "20260101T000000Z", path]),
        "raw-sigv4-token": (
            0,
            [
                auth.replace("x-amz-date", "x-amz-date;x-amz-security-token"),
                "20251231T235500Z",
                path,
                "x-amz-security-token: session-token",
            ],
        ),
        "raw-bearer": (0, ["Bearer fuzz-bearer-token-0123456789", "", path]),
        "raw-bearer-wrong": (0, ["bearer  fuzz-bearer-token-012345678 ", "", path]),
        # Signed here.
        "signed-right": (1, ["checkout-secret", "", "", path]),
        "signed-wrong": (1, ["checkout-secreT", "", "", path]),
        "signed-session": (1 | 8, ["session-secret", "session-token", "", path]),
        "signed-mutated": (1 | 2, ["checkout-secret", "", "17 32", path]),
        "signed-tampered": (1 | 4, ["checkout-secret", "", "", path]),
        "signed-late": (1 | (8 << 4), ["checkout-secret", "", "", path]),
        "signed-extra-headers": (
            1,
            ["checkout-secret", "", "", path + "?x=1", "x-amz-meta: a", "accept: */*"],
        ),
    }
    for name, (flags, lines) in seeds.items():
        write("sigv4_auth", name, bytes([flags]) + "\n".join(lines).encode() + b"\n\n" + body)


if __name__ == "__main__":
    eventstream_seeds()
    bidirectional_seeds()
    usage_seeds()
    route_seeds()
    rate_card_seeds()
    sigv4_seeds()
