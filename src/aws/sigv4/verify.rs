//! Verifying a received request's SigV4 signature, as AWS would: the header checks that need no
//! body first ([`precheck`]), then the signature over the body ([`verify`]).

use super::*;

/// The checks that need only the headers: the `Authorization` header parses, `x-amz-date` is
/// signed, agrees with the credential scope's date and lies within `max_skew` of `now`. Cheap,
/// so a caller can refuse before reading a body.
pub fn precheck(
    headers: &HeaderMap,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(Authorization<'_>, SystemTime), SigV4Error> {
    let auth_value = headers
        .get(header::AUTHORIZATION)
        .ok_or(SigV4Error::Missing)?
        .to_str()
        .map_err(|_| SigV4Error::Malformed("not ASCII"))?;
    let auth = parse_authorization(auth_value)?;
    if !auth.signed_headers.contains(&X_AMZ_DATE) {
        return Err(SigV4Error::Malformed("x-amz-date is not signed"));
    }
    let amz_date = headers
        .get(X_AMZ_DATE)
        .and_then(|v| v.to_str().ok())
        .ok_or(SigV4Error::Malformed("no x-amz-date header"))?;
    let time = parse_amz_date(amz_date).ok_or(SigV4Error::Malformed("bad x-amz-date"))?;
    if !amz_date.starts_with(auth.date) {
        return Err(SigV4Error::Malformed("scope date differs from x-amz-date"));
    }
    let (skew, future) = match now.duration_since(time) {
        Ok(d) => (d, false),
        Err(e) => (e.duration(), true),
    };
    if skew > max_skew {
        let minutes = i64::try_from(max_skew.as_secs() / 60).unwrap_or(i64::MAX);
        return Err(SigV4Error::Expired {
            request_time: amz_date.to_owned(),
            server_time: format_amz_date(now),
            skew_minutes: if future { -minutes } else { minutes },
        });
    }
    Ok((auth, time))
}

/// Verifies the SigV4 signature of a received request against `credentials` (the secret the
/// caller looked up by the access key id in the header). `now` and `max_skew` bound the request
/// time. The caller checks the access key id, region and service it expects.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    credentials: &Credentials,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    verify_hashed(parts, &PayloadHash::of(body), credentials, now, max_skew)
}

/// [`verify`] for a body whose hash is already known.
pub fn verify_hashed(
    parts: &Parts,
    payload: &PayloadHash,
    credentials: &Credentials,
    now: SystemTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    let (auth, time) = precheck(&parts.headers, now, max_skew)?;

    // HTTP/2 clients carry the host in `:authority`, which hyper exposes on the URI.
    let authority = parts.uri.authority().map(|a| a.as_str());
    let mut signable: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        if *name == X_AMZ_DATE || *name == X_AMZ_SECURITY_TOKEN {
            continue; // the signer adds these itself, from `time` and the identity
        }
        let mut values = parts.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            match (*name, authority) {
                ("host", Some(a)) => signable.push(("host", a)),
                _ => return Err(SigV4Error::Mismatch),
            }
        }
        for value in values {
            let value = value.to_str().map_err(|_| SigV4Error::Mismatch)?;
            signable.push((name, value));
        }
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = format!("https://signing.invalid{path_and_query}");

    // A session token is part of the secret: it must be sent and signed exactly when the
    // credentials have one.
    let token_signed = auth.signed_headers.contains(&X_AMZ_SECURITY_TOKEN);
    let token_sent = parts.headers.get(X_AMZ_SECURITY_TOKEN);
    match (token_signed, token_sent, credentials.session_token()) {
        (true, Some(sent), Some(expected)) => {
            if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(SigV4Error::BadSessionToken);
            }
        }
        (false, None, None) => {}
        // Signed but not sent, or sent but not signed, is a broken signature; a token where the
        // key has none (or none where it has one) is a wrong token.
        (true, None, _) | (false, Some(_), Some(_)) => return Err(SigV4Error::Mismatch),
        _ => return Err(SigV4Error::BadSessionToken),
    }

    let identity: Identity = credentials.clone().into();
    let params = signing_params_with_region(&identity, auth.region, auth.service, time)?;
    let request = SignableRequest::new(
        parts.method.as_str(),
        uri.as_str(),
        signable.into_iter(),
        SignableBody::Precomputed(payload.as_str().to_owned()),
    )
    .map_err(|_| SigV4Error::Mismatch)?;
    let expected = sigv4_sign(request, &params)
        .map_err(|e| SigV4Error::Signing(e.to_string()))?
        .signature()
        .to_owned();
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigV4Error::Mismatch)
    }
}
