//! Tests of `keys`.

use super::*;

const GOOD: &str = r#"
[[key]]
access_key_id = "AKIDCHECKOUT01"
secret_access_key = "checkout-secret"
app = "checkout"

[[key]]
access_key_id = "AKIDSEARCH01"
secret_access_key = "search-secret"
session_token = "search-token"
app = "search"

[[key]]
bearer_token = "bedrock-api-key-0123456789"
app = "batch"
region = "eu-west-1"
"#;

#[test]
fn parses_both_kinds() {
    let loaded = Keys::parse(GOOD, "keys.toml").unwrap();
    assert!(loaded.warnings.is_empty());
    let keys = loaded.keys;
    assert_eq!(keys.len(), 3);
    let k = keys.sigv4("AKIDCHECKOUT01").unwrap();
    assert_eq!(&*k.app, "checkout");
    assert_eq!(k.credentials.secret_access_key(), "checkout-secret");
    assert_eq!(k.credentials.session_token(), None);
    let s = keys.sigv4("AKIDSEARCH01").unwrap();
    assert_eq!(s.credentials.session_token(), Some("search-token"));
    let bearer = keys.bearer("bedrock-api-key-0123456789").unwrap();
    assert_eq!(
        (&*bearer.app, bearer.region.as_deref()),
        ("batch", Some("eu-west-1"))
    );
    assert_eq!(keys.bearer_apps_without_region(), Vec::<&str>::new());
    assert!(keys.bearer("bedrock-api-key-012345678").is_none());
    assert!(keys.sigv4("AKIDNOPE").is_none());
}

#[test]
fn errors_have_lines_and_no_secrets() {
    let text = r#"[[key]]
access_key_id = "AKID1"
secret_access_key = "s1"
app = "bad app"

[[key]]
access_key_id = "AKID2"
app = "two"

[[key]]
bearer_token = "short-secret"
app = "three"

[[key]]
access_key_id = "AKID1"
secret_access_key = "s1"
app = "four"

[[key]]
access_key_id = "AKID5"
secret_access_key = "s5"
app = "five"

[[key]]
access_key_id = "AKID5"
secret_access_key = "s5"
app = "six"
"#;
    let errors = Keys::parse(text, "k.toml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        [
            r#"k.toml:4: app "bad app" must match [A-Za-z0-9._-]{1,64}"#,
            "k.toml:6: access_key_id and secret_access_key go together",
            "k.toml:11: bearer_token is shorter than 16 characters",
            r#"k.toml:25: access_key_id "AKID5" appears twice"#,
        ]
        .join("\n")
    );
    for e in &errors.0 {
        assert!(!e.to_string().contains("short-secret"), "{e}");
    }
}

#[test]
fn syntax_errors_do_not_echo_the_line() {
    let text = "[[key]]\nsecret_access_key = \"hunter2hunter2\napp = \"x\"\n";
    let errors = Keys::parse(text, "k.toml").unwrap_err();
    assert_eq!(
        errors.to_string(),
        "k.toml:2: not a valid keys file: invalid basic string, expected `\"`"
    );
    assert!(!errors.to_string().contains("hunter2"), "{errors}");
    let unknown = "[[key]]\nsecret = \"x\"\napp = \"a\"\n";
    assert_eq!(
        Keys::parse(unknown, "k.toml").unwrap_err().to_string(),
        "k.toml:2: not a valid keys file: unknown field `secret`, expected one of `app`, \
         `access_key_id`, `secret_access_key`, `session_token`, `bearer_token`, `client_cert`, `region`, `tags`"
    );
}

#[test]
fn mixed_or_incomplete_entries_are_refused() {
    // Each refusal names the file, the line to fix and what is wrong with it: the message
    // is what the operator sees.
    for (text, message) in [
        (
            "[[key]]\napp = \"a\"\n",
            "k.toml:1: a key needs access_key_id and secret_access_key, bearer_token, or client_cert",
        ),
        (
            "[[key]]\napp = \"a\"\naccess_key_id = \"AKID\"\n",
            "k.toml:1: access_key_id and secret_access_key go together",
        ),
        (
            "[[key]]\napp = \"a\"\naccess_key_id = \"AKID\"\nsecret_access_key = \"s\"\nbearer_token = \"0123456789abcdef\"\n",
            "k.toml:1: a key gives either bearer_token or access_key_id/secret_access_key, not both",
        ),
        (
            "[[key]]\napp = \"a\"\nbearer_token = \"0123456789abcdef\"\nsession_token = \"t\"\n",
            "k.toml:4: session_token goes with access_key_id, not bearer_token",
        ),
        (
            "[[key]]\napp = \"a\"\naccess_key_id = \"AK/ID\"\nsecret_access_key = \"s\"\n",
            r#"k.toml:3: access_key_id "AK/ID" must be 1 to 128 letters and digits"#,
        ),
        (
            "[[key]]\napp = \"a\"\naccess_key_id = \"AKID\"\nsecret_access_key = \"s\"\nregion = \"us-east-1\"\n",
            "k.toml:5: region goes with bearer_token or client_cert (a SigV4 signature names its own)",
        ),
        (
            "[[key]]\napp = \"a\"\nclient_cert = \"spiffe://m/a\"\nbearer_token = \"0123456789abcdef\"\n",
            "k.toml:1: a client_cert key gives no access_key_id, secret_access_key, session_token or bearer_token",
        ),
        (
            "[[key]]\napp = \"a\"\nclient_cert = \"\"\n",
            "k.toml:3: client_cert must be 1 to 512 printable characters: a URI or DNS name, or the subject's common name",
        ),
        (
            "[[key]]\napp = \"a\"\nclient_cert = \"spiffe://m/a\"\n[[key]]\napp = \"b\"\nclient_cert = \"spiffe://m/a\"\n",
            r#"k.toml:6: client_cert "spiffe://m/a" appears twice"#,
        ),
        (
            "[[key]]\napp = \"a\"\nbearer_token = \"0123456789abcdef\"\nregion = \"Mars\"\n",
            r#"k.toml:4: region "Mars" is not an AWS Region id"#,
        ),
    ] {
        let errors = Keys::parse(text, "k.toml").unwrap_err();
        assert_eq!(errors.to_string(), message, "{text}");
    }
    let empty = Keys::parse("", "k.toml").unwrap();
    assert!(empty.keys.is_empty());
    assert_eq!(
        empty.warnings,
        vec![KeysError {
            file: "k.toml".into(),
            line: 0,
            message: "no [[key]] entries: every request will be refused".into(),
        }]
    );
}

#[test]
fn a_client_certificate_proves_the_key_of_its_first_listed_name() {
    let text = r#"
[[key]]
client_cert = "spiffe://mesh/ns/ledger/sa/api"
app = "ledger"
region = "eu-west-1"

[[key]]
client_cert = "ledger.internal"
app = "ledger-by-dns"
"#;
    let keys = Keys::parse(text, "k.toml").unwrap().keys;
    assert_eq!(keys.len(), 2);
    assert!(keys.has_certificate_keys());
    // URI names come first in a certificate's names, so the SPIFFE ID wins over the DNS name.
    let both =
        ClientCertificate::from_names(&["spiffe://mesh/ns/ledger/sa/api", "ledger.internal"]);
    let key = keys.certificate(&both).unwrap();
    assert_eq!(
        (&*key.app, key.region.as_deref()),
        ("ledger", Some("eu-west-1"))
    );
    let dns = ClientCertificate::from_names(&["ledger.internal", "ledger"]);
    assert_eq!(&*keys.certificate(&dns).unwrap().app, "ledger-by-dns");
    // Exact comparison: no prefix, no case folding.
    for names in [
        &["spiffe://mesh/ns/ledger"][..],
        &["LEDGER.internal"],
        &["other"],
    ] {
        assert!(
            keys.certificate(&ClientCertificate::from_names(names))
                .is_none()
        );
    }
}

#[test]
fn session_tags_are_checked_and_kept_per_app() {
    let text = "[[key]]\nbearer_token = \"0123456789abcdef0\"\napp = \"pay\"\ntags = { team = \"payments\", cost-center = \"4711\" }\n\
                [[key]]\nbearer_token = \"0123456789abcdef1\"\napp = \"pay\"\ntags = { cost-center = \"4711\", team = \"payments\" }\n";
    let keys = Keys::parse(text, "k.toml").unwrap().keys;
    let tags = keys.tags("pay").unwrap();
    assert_eq!(
        &*tags,
        &[
            ("cost-center".to_owned(), "4711".to_owned()),
            ("team".to_owned(), "payments".to_owned())
        ]
    );
    assert!(keys.tags("other").is_none());
    // The second key's tags (line 8) are checked; the first key gives team = payments.
    for (tags, message) in [
        (
            "{ app = \"x\" }",
            r#"tag key "app" is the meter's: it always carries the app"#,
        ),
        (
            "{ Team = \"a\", team = \"a\" }",
            r#"tag key "team" appears twice (tag keys ignore case)"#,
        ),
        (
            "{ \"t{x}\" = \"a\" }",
            r#"tag key "t{x}" must be 1 to 128 letters, digits, spaces and _ . : / = + - @"#,
        ),
        (
            "{ team = \"other\" }",
            r#"app "pay" has keys with different tags: it has one session, so every key of it gives the same tags"#,
        ),
    ] {
        let text = format!(
            "[[key]]\nbearer_token = \"0123456789abcdef0\"\napp = \"pay\"\ntags = {{ team = \"payments\" }}\n\
             [[key]]\nbearer_token = \"0123456789abcdef1\"\napp = \"pay\"\ntags = {tags}\n"
        );
        assert_eq!(
            Keys::parse(&text, "k.toml").unwrap_err().to_string(),
            format!("k.toml:8: {message}"),
            "{tags}"
        );
    }
}
