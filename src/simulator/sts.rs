//! STS `AssumeRole`, as the simulator serves it for `--assume-role` (`POST /`, the awsQuery
//! protocol: a form-encoded body, an XML answer), and the sessions it has handed out, so that
//! every Bedrock call signed with a session's credentials is known to be that session's.
//!
//! Each session gets its own key id, secret and token. A call signed by a session must be for
//! the app the session is named after: the simulator compares the session name with the app
//! the call's request metadata names (key `app`) and refuses a call signed for another app.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use http::request::Parts;
use http::{Response, StatusCode, header};
use percent_encoding::percent_decode_str;

use super::body::SimBody;
use super::stats::{AssumedRole, Recorder};

/// A session the simulator handed out.
#[derive(Clone, Debug)]
pub struct Session {
    pub name: String,
    pub credentials: Credentials,
}

/// The simulator's STS: its sessions, and whether it is answering.
#[derive(Debug, Default)]
pub struct Sts {
    sessions: Mutex<HashMap<String, Session>>,
    issued: AtomicU64,
    down: AtomicBool,
    /// Lifetime of the sessions handed out, overriding the `DurationSeconds` asked for.
    lifetime: Option<Duration>,
}

impl Sts {
    pub fn new(lifetime: Option<Duration>) -> Sts {
        Sts {
            lifetime,
            ..Sts::default()
        }
    }

    /// While down, `AssumeRole` answers 503 `ServiceUnavailable`.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    /// The session whose key id this is.
    pub fn session(&self, access_key_id: &str) -> Option<Session> {
        self.sessions.lock().ok()?.get(access_key_id).cloned()
    }

    /// Answers an STS request (`Action=AssumeRole`; any other action is refused).
    pub fn answer(&self, body: &[u8], recorder: &Recorder) -> Response<SimBody> {
        if self.down.load(Ordering::Relaxed) {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Receiver",
                "ServiceUnavailable",
                "STS is down (simulated).",
            );
        }
        let form = form(body);
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        if field("Action") != Some("AssumeRole") {
            return error(
                StatusCode::BAD_REQUEST,
                "Sender",
                "InvalidAction",
                "The simulator's STS serves AssumeRole only.",
            );
        }
        let (Some(role_arn), Some(name)) = (field("RoleArn"), field("RoleSessionName")) else {
            return error(
                StatusCode::BAD_REQUEST,
                "Sender",
                "ValidationError",
                "RoleArn and RoleSessionName are required.",
            );
        };
        let name_ok = (2..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        if !name_ok {
            return error(
                StatusCode::BAD_REQUEST,
                "Sender",
                "ValidationError",
                "RoleSessionName must be 2 to 64 characters of [\\w+=,.@-].",
            );
        }
        let mut tags = Vec::new();
        for n in 1.. {
            let key = field(&format!("Tags.member.{n}.Key"));
            let Some(key) = key else { break };
            let value = field(&format!("Tags.member.{n}.Value")).unwrap_or_default();
            tags.push((key.to_owned(), value.to_owned()));
        }
        let asked = field("DurationSeconds")
            .and_then(|d| d.parse::<u64>().ok())
            .unwrap_or(3600);
        let lifetime = self.lifetime.unwrap_or(Duration::from_secs(asked));
        let expiry = SystemTime::now() + lifetime;
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        let key_id = format!("ASIASIM{n:013}");
        let secret = format!("sim-session-secret-{n}-{name}");
        let token = format!("sim-session-token-{n}-{name}");
        let credentials = Credentials::new(
            &key_id,
            &secret,
            Some(token.clone()),
            Some(expiry),
            "simulator-sts",
        );
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(
                key_id.clone(),
                Session {
                    name: name.to_owned(),
                    credentials,
                },
            );
        }
        recorder.assumed_role(AssumedRole {
            role_arn: role_arn.to_owned(),
            session_name: name.to_owned(),
            tags,
            duration_seconds: asked,
        });
        let account = role_arn.split(':').nth(4).unwrap_or("123456789012");
        let role = role_arn.rsplit('/').next().unwrap_or("role");
        let xml = format!(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROASIMULATOR:{name}</AssumedRoleId>
      <Arn>arn:aws:sts::{account}:assumed-role/{role}/{name}</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{key_id}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <PackedPolicySize>1</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>sim-sts-{n}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
"#,
            expiration = crate::time::rfc3339_millis(expiry),
        );
        xml_response(StatusCode::OK, xml)
    }
}

/// Whether a request is for STS: the awsQuery protocol posts a form to `/`.
pub fn is_sts(parts: &Parts) -> bool {
    parts.method == http::Method::POST
        && parts.uri.path() == "/"
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// An `application/x-www-form-urlencoded` body's fields, decoded.
fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// STS's awsQuery error shape.
pub fn error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response<SimBody> {
    let xml = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>{kind}</Type>
    <Code>{code}</Code>
    <Message>{message}</Message>
  </Error>
  <RequestId>sim-sts-error</RequestId>
</ErrorResponse>
"#
    );
    xml_response(status, xml)
}

fn xml_response(status: StatusCode, xml: String) -> Response<SimBody> {
    let mut response = Response::new(SimBody::bytes(xml));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        assert_eq!(
            form(b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&Tags.member.1.Value=a+b"),
            vec![
                ("Action".to_owned(), "AssumeRole".to_owned()),
                ("RoleArn".to_owned(), "arn:aws:iam::1:role/r".to_owned()),
                ("Tags.member.1.Value".to_owned(), "a b".to_owned()),
            ]
        );
    }
}
