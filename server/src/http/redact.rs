//! Request targets with their secrets taken out, for the access log and any other log
//! line that names a request.
//!
//! Why: the access log goes to whoever reads the logs (a SIEM, a support ticket), and
//! an enrollment URL read there is a fresh SCEP challenge for anyone. What is replaced
//! by [`REDACTED`]:
//! * every path segment after an `enroll` segment (the enrollment token, and whatever
//!   a client appended to it);
//! * the value of every query parameter whose name, percent-decoded and in any case,
//!   contains a word that secrets are named by (token, secret, password, challenge,
//!   key, message: the SCEP PKIOperation `message=` carries the challenge, ...);
//! * every query part without `=` (a bare value cannot be told apart from a secret).
//!
//! Pure string work on what the client sent: nothing here can fail.

/// What a secret is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Words a query parameter name carries when its value is a secret. `message` is the
/// SCEP PKIOperation by GET (the CSR with the challenge), `sig`/`signature` signed
/// URLs, `auth`/`code`/`pin`/`otp` credentials of every kind.
const SECRET_NAME_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "pass",
    "challenge",
    "key",
    "message",
    "sig",
    "auth",
    "code",
    "pin",
    "otp",
    "magic",
    "credential",
    "session",
];

/// The access log's request line (`%r`: method, target, version) with the target
/// redacted; registered with `Logger::custom_request_replace` in serve.rs.
pub fn request_line(req: &actix_web::dev::ServiceRequest) -> String {
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |pq| pq.as_str());
    format!(
        "{} {} {:?}",
        req.method(),
        redact_target(target),
        req.version()
    )
}

/// A request target (path, optionally `?query`) with its secrets replaced.
pub fn redact_target(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = redact_path(path);
    if let Some(query) = query {
        out.push('?');
        out.push_str(&redact_query(query));
    }
    out
}

/// The path with every segment after an `enroll` segment replaced.
fn redact_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut after_enroll = false;
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if after_enroll && !segment.is_empty() {
            out.push_str(REDACTED);
        } else {
            out.push_str(segment);
        }
        if percent_decode(segment).eq_ignore_ascii_case("enroll") {
            after_enroll = true;
        }
    }
    out
}

/// The query with secret values and bare parts replaced; names and order kept.
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|part| match part.split_once('=') {
            Some((name, _)) if is_secret_name(name) => format!("{name}={REDACTED}"),
            Some(_) => part.to_owned(),
            None if part.is_empty() => String::new(),
            None => REDACTED.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_secret_name(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    SECRET_NAME_WORDS.iter().any(|w| name.contains(w))
}

/// `%XX` decoded (and `+` as a space); anything malformed is kept as it is. Lossy
/// UTF-8: only used to compare names.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrollment_tokens_are_redacted() {
        assert_eq!(redact_target("/enroll/abcDEF123"), "/enroll/<redacted>");
        assert_eq!(
            redact_target("/enroll/tok/extra/segments"),
            "/enroll/<redacted>/<redacted>/<redacted>"
        );
        assert_eq!(redact_target("/enroll/"), "/enroll/");
        assert_eq!(redact_target("//ENROLL/tok"), "//ENROLL/<redacted>");
        assert_eq!(redact_target("/%65nroll/tok"), "/%65nroll/<redacted>");
        assert_eq!(
            redact_target("/enroll/tok?token=x&token=y"),
            "/enroll/<redacted>?token=<redacted>&token=<redacted>"
        );
    }

    #[test]
    fn secret_query_values_are_redacted_and_others_kept() {
        assert_eq!(
            redact_target("/scep?operation=PKIOperation&message=MIIB%2Babc"),
            "/scep?operation=PKIOperation&message=<redacted>"
        );
        assert_eq!(
            redact_target("/scep?operation=GetCACert"),
            "/scep?operation=GetCACert"
        );
        assert_eq!(
            redact_target("/android/enroll?enterpriseToken=s3cret&x=1"),
            "/android/enroll?enterpriseToken=<redacted>&x=1"
        );
        assert_eq!(
            redact_target("/x?ChallengePassword=a&api_key=b&%70assword=c"),
            "/x?ChallengePassword=<redacted>&api_key=<redacted>&%70assword=<redacted>"
        );
        assert_eq!(
            redact_target("/api/v1/events?kind=scep.refused&limit=10"),
            "/api/v1/events?kind=scep.refused&limit=10"
        );
        assert_eq!(redact_target("/x?bareSecret&a=1&"), "/x?<redacted>&a=1&");
    }

    #[test]
    fn plain_paths_are_untouched() {
        for path in ["/", "/healthz", "/mdm/checkin", "/api/v1/devices/abc", ""] {
            assert_eq!(redact_target(path), path);
        }
    }

    #[test]
    fn malformed_percent_escapes_do_not_panic() {
        for s in ["%", "%G", "%4", "/enroll/%", "/x?%=1", "/x?a%=%", "%e2%82"] {
            let _ = redact_target(s);
            let _ = percent_decode(s);
        }
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41+b"), "A b");
    }
}
