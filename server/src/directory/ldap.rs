//! Reading the directory over LDAP (ldap3 on tokio, TLS through native-tls, which is
//! OpenSSL here): connect with LDAPS or StartTLS, verify the server's certificate
//! against the configured CA (or the system's roots), simple bind, then read users
//! and groups with subtree searches, paged (RFC 2696) when the server lists the
//! control in its root DSE. Read-only: nothing is ever written to the directory.
//!
//! The bind password is given to ldap3 for the bind and appears in no message: the
//! errors below say what failed (connect, TLS, bind, search) with the URL and bind
//! DN, never the password.

use super::{AttributeMap, LdapGroup, LdapUser, Snapshot, SourceConfig};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use std::collections::HashMap;
use std::time::Duration;

/// TCP connect plus TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait for any one answer (the bind, each search entry).
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// Entries per page: under Active Directory's MaxPageSize (1000).
const PAGE_SIZE: i32 = 500;
const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

/// Why the directory could not be read; the message is for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LdapFailure(pub String);

/// Where a URL points and how it is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub ldaps: bool,
    pub host: String,
    pub port: u16,
}

/// Checks an LDAP URL and its transport security: `ldaps://host[:port]`, or
/// `ldap://host[:port]` with StartTLS. Plain `ldap://` without StartTLS carries the
/// bind password in clear and is refused unless `allow_plaintext` says the admin
/// accepts that.
pub fn check_url(url: &str, start_tls: bool, allow_plaintext: bool) -> Result<Endpoint, String> {
    let (ldaps, rest) = if let Some(rest) = url.strip_prefix("ldaps://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("ldap://") {
        (false, rest)
    } else {
        return Err(format!(
            "url {url:?} must start with ldaps:// (LDAP over TLS) or ldap:// (with StartTLS)"
        ));
    };
    let hostport = rest.trim_end_matches('/');
    if hostport.is_empty() || hostport.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "url {url:?} must be scheme://host[:port] only (the base DN is given on its own)"
        ));
    }
    // host, host:port, [v6], [v6]:port
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("url {url:?}: unclosed [ in the host"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("url {url:?}: {p:?} is not a port number"))
        })
        .transpose()?;
    if host.is_empty() {
        return Err(format!("url {url:?} names no host"));
    }
    if ldaps && start_tls {
        return Err(
            "start_tls applies to ldap:// URLs; ldaps:// is TLS from the first byte".into(),
        );
    }
    if !ldaps && !start_tls && !allow_plaintext {
        return Err(format!(
            "refusing plain {url}: without TLS the bind password and every user's data cross the network in clear. \
             Use ldaps://, or StartTLS (start_tls, --start-tls); only if you accept the risk, say so with \
             insecure_plaintext (--insecure-plaintext)"
        ));
    }
    Ok(Endpoint {
        ldaps,
        host: host.to_owned(),
        port: port.unwrap_or(if ldaps { 636 } else { 389 }),
    })
}

/// The certificates of a CA bundle (PEM), refused when it holds none.
pub fn parse_ca_pem(pem: &str) -> Result<Vec<openssl::x509::X509>, String> {
    openssl::x509::X509::stack_from_pem(pem.as_bytes())
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| "ca_pem holds no PEM certificate".to_owned())
}

fn tls_connector(ca_pem: Option<&str>) -> Result<native_tls::TlsConnector, LdapFailure> {
    let mut builder = native_tls::TlsConnector::builder();
    builder.min_protocol_version(Some(native_tls::Protocol::Tlsv12));
    if let Some(pem) = ca_pem {
        // Only the configured CA: a directory's certificate from a private CA is the
        // usual case, and a public CA has no business vouching for it then.
        builder.disable_built_in_roots(true);
        for cert in parse_ca_pem(pem).map_err(LdapFailure)? {
            let der = cert
                .to_der()
                .map_err(|e| LdapFailure(format!("ca_pem: {e}")))?;
            let cert = native_tls::Certificate::from_der(&der)
                .map_err(|e| LdapFailure(format!("ca_pem: {e}")))?;
            builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| LdapFailure(format!("TLS setup: {e}")))
}

/// What went wrong, said for an admin: which step, against which server.
fn describe(step: &str, config: &SourceConfig, e: LdapError) -> LdapFailure {
    let url = &config.url;
    let message = match e {
        LdapError::LdapResult { result } if result.rc == 49 => format!(
            "the directory at {url} refused the bind DN {:?} or its password (invalidCredentials){}",
            config.bind_dn,
            detail(&result.text)
        ),
        LdapError::LdapResult { result } => format!(
            "{step} at {url}: the directory answered {} ({}){}",
            result.rc,
            result_name(result.rc),
            detail(&result.text)
        ),
        LdapError::NativeTLS { source } => {
            let text = source.to_string();
            let hint = if text.contains("certificate verify failed") {
                if config.ca_pem.is_some() {
                    ": the directory's certificate is not issued by the configured CA (ca_pem, --ca-file), or does not name this host"
                } else {
                    ": the directory's certificate is not trusted by the system's roots; give its CA (ca_pem, --ca-file)"
                }
            } else {
                ""
            };
            format!("TLS with {url} failed{hint} ({text})")
        }
        LdapError::Io { source } => format!("cannot reach {url}: {source}"),
        LdapError::Timeout { .. } => format!("{step} at {url}: no answer in time"),
        other => format!("{step} at {url}: {other}"),
    };
    LdapFailure(message)
}

fn detail(text: &str) -> String {
    let text = text.trim_matches(char::from(0)).trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

fn result_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        _ => "error",
    }
}

/// Connects, secures the connection and binds.
async fn connect(config: &SourceConfig) -> Result<Ldap, LdapFailure> {
    let endpoint =
        check_url(&config.url, config.start_tls, config.allow_plaintext).map_err(LdapFailure)?;
    if config.bind_password.expose().is_empty() {
        // An empty password makes a simple bind anonymous (RFC 4513 5.1.2).
        return Err(LdapFailure("the bind password is empty".into()));
    }
    let mut settings = LdapConnSettings::new()
        .set_conn_timeout(CONNECT_TIMEOUT)
        .set_starttls(config.start_tls && !endpoint.ldaps);
    if endpoint.ldaps || config.start_tls {
        settings = settings.set_connector(tls_connector(config.ca_pem.as_deref())?);
    }
    let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &config.url)
        .await
        .map_err(|e| describe("connect", config, e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection closed with an error");
        }
    });
    ldap.with_timeout(OP_TIMEOUT)
        .simple_bind(&config.bind_dn, config.bind_password.expose())
        .await
        .and_then(|r| r.success())
        .map_err(|e| describe("bind", config, e))?;
    Ok(ldap)
}

/// Connects and binds, then lets go: checks a configuration before it is stored.
pub async fn check(config: &SourceConfig) -> Result<(), LdapFailure> {
    let mut ldap = connect(config).await?;
    let _ = ldap.unbind().await;
    Ok(())
}

/// Whether the root DSE lists the paged-results control.
async fn supports_paging(ldap: &mut Ldap) -> bool {
    let Ok(result) = ldap
        .with_timeout(OP_TIMEOUT)
        .search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"])
        .await
    else {
        return false;
    };
    let Ok((entries, _)) = result.success() else {
        return false;
    };
    entries.into_iter().any(|e| {
        SearchEntry::construct(e)
            .attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("supportedControl"))
            .any(|(_, v)| v.iter().any(|oid| oid == PAGED_RESULTS_OID))
    })
}

async fn search_all(
    ldap: &mut Ldap,
    config: &SourceConfig,
    what: &str,
    filter: &str,
    attrs: Vec<String>,
    paged: bool,
) -> Result<Vec<SearchEntry>, LdapFailure> {
    let step = format!("searching {what} under {:?} with {filter}", config.base_dn);
    let mut adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> =
        vec![Box::new(EntriesOnly::new())];
    if paged {
        adapters.push(Box::new(PagedResults::new(PAGE_SIZE)));
    }
    let mut stream = ldap
        .with_timeout(OP_TIMEOUT)
        .streaming_search_with(adapters, &config.base_dn, Scope::Subtree, filter, attrs)
        .await
        .map_err(|e| describe(&step, config, e))?;
    let mut entries = Vec::new();
    loop {
        match stream.next().await {
            Ok(Some(entry)) => entries.push(SearchEntry::construct(entry)),
            Ok(None) => break,
            Err(e) => return Err(describe(&step, config, e)),
        }
    }
    // A result short of success (a size limit hit, ...) is a partial list: taking it
    // would flag everyone missing from it as removed.
    stream
        .finish()
        .await
        .success()
        .map_err(|e| describe(&step, config, e))?;
    Ok(entries)
}

/// An entry's attributes by lower-cased name.
struct Attrs {
    text: HashMap<String, Vec<String>>,
    binary: HashMap<String, Vec<Vec<u8>>>,
}

impl Attrs {
    fn of(entry: &SearchEntry) -> Attrs {
        let mut text: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in &entry.attrs {
            text.entry(k.to_ascii_lowercase())
                .or_default()
                .extend(v.iter().cloned());
        }
        let mut binary: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        for (k, v) in &entry.bin_attrs {
            binary
                .entry(k.to_ascii_lowercase())
                .or_default()
                .extend(v.iter().cloned());
        }
        Attrs { text, binary }
    }

    fn all(&self, name: &str) -> &[String] {
        self.text
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The first non-empty value.
    fn first(&self, name: &str) -> Option<String> {
        self.all(name)
            .iter()
            .map(|v| v.trim())
            .find(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// entryUUID (OpenLDAP and most servers), objectGUID (Active Directory), or None.
    fn external_id(&self) -> Option<String> {
        if let Some(uuid) = self.first("entryUUID") {
            return Some(uuid.to_ascii_lowercase());
        }
        let guid = self
            .binary
            .get("objectguid")
            .and_then(|v| v.first().cloned())
            .or_else(|| {
                self.all("objectGUID")
                    .first()
                    .map(|s| s.as_bytes().to_vec())
            })?;
        ad_guid(&guid)
    }
}

/// Active Directory's objectGUID as the usual text: the first three fields are
/// little-endian.
pub fn ad_guid(bytes: &[u8]) -> Option<String> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

fn user_attrs(map: &AttributeMap) -> Vec<String> {
    let mut attrs = vec![
        map.username.clone(),
        map.upn.clone(),
        map.email.clone(),
        map.display_name.clone(),
        "cn".into(),
        map.department.clone(),
        "entryUUID".into(),
        "objectGUID".into(),
    ];
    attrs.extend(map.disabled.clone());
    dedup(attrs)
}

fn group_attrs(map: &AttributeMap) -> Vec<String> {
    dedup(vec![
        map.group_name.clone(),
        "member".into(),
        "uniqueMember".into(),
        "memberUid".into(),
        "entryUUID".into(),
        "objectGUID".into(),
    ])
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|a| seen.insert(a.to_ascii_lowercase()))
        .collect()
}

/// A user entry in our terms; None (with why) when it cannot be one.
pub fn user_from_entry(entry: &SearchEntry, map: &AttributeMap) -> Result<LdapUser, String> {
    let a = Attrs::of(entry);
    let username = a
        .first(&map.username)
        .ok_or_else(|| format!("{}: no {} (username), left out", entry.dn, map.username))?;
    let email = a.first(&map.email).unwrap_or_default();
    let upn = a
        .first(&map.upn)
        .or_else(|| (!email.is_empty()).then(|| email.clone()))
        .unwrap_or_else(|| username.clone());
    let display_name = a
        .first(&map.display_name)
        .or_else(|| a.first("cn"))
        .unwrap_or_else(|| username.clone());
    let disabled = map
        .disabled
        .as_deref()
        .is_some_and(|attr| map.is_disabled(a.all(attr)));
    Ok(LdapUser {
        external_id: a.external_id().unwrap_or_else(|| entry.dn.clone()),
        dn: entry.dn.clone(),
        username,
        upn,
        email,
        display_name,
        department: a.first(&map.department),
        disabled,
    })
}

/// Active Directory hands out large multi-valued attributes in ranges
/// (`member;range=0-1499`): the key of such a slice and where the next one starts
/// (None after the last, `member;range=1500-*`).
pub fn range_slice(key: &str, attr: &str) -> Option<Option<u64>> {
    let lower = key.to_ascii_lowercase();
    let rest = lower.strip_prefix(&format!("{};range=", attr.to_ascii_lowercase()))?;
    let (_, high) = rest.split_once('-')?;
    if high == "*" {
        Some(None)
    } else {
        high.parse::<u64>().ok().map(|h| Some(h + 1))
    }
}

/// The values of `attr` of a group, following Active Directory's ranges.
async fn member_values(
    ldap: &mut Ldap,
    config: &SourceConfig,
    entry: &SearchEntry,
    attr: &str,
) -> Result<Vec<String>, LdapFailure> {
    let mut values = Vec::new();
    let mut next = None;
    for (k, v) in &entry.attrs {
        if k.eq_ignore_ascii_case(attr) {
            values.extend(v.iter().cloned());
        } else if let Some(after) = range_slice(k, attr) {
            values.extend(v.iter().cloned());
            next = after;
        }
    }
    // Bounded: a group of a million members is 700 slices of 1500.
    let mut rounds = 0;
    while let Some(start) = next.take() {
        rounds += 1;
        if rounds > 10_000 {
            return Err(LdapFailure(format!(
                "{}: too many ranges of {attr}",
                entry.dn
            )));
        }
        let wanted = format!("{attr};range={start}-*");
        let step = format!("reading {wanted} of {}", entry.dn);
        let result = ldap
            .with_timeout(OP_TIMEOUT)
            .search(
                &entry.dn,
                Scope::Base,
                "(objectClass=*)",
                vec![wanted.as_str()],
            )
            .await
            .and_then(|r| r.success())
            .map_err(|e| describe(&step, config, e))?;
        for e in result.0 {
            for (k, v) in SearchEntry::construct(e).attrs {
                if let Some(after) = range_slice(&k, attr) {
                    values.extend(v);
                    next = after;
                }
            }
        }
    }
    Ok(values)
}

/// Reads every user and group the configuration selects.
pub async fn fetch(config: &SourceConfig) -> Result<Snapshot, LdapFailure> {
    let mut ldap = connect(config).await?;
    let paged = supports_paging(&mut ldap).await;
    let map = &config.attributes;
    let mut snapshot = Snapshot {
        paged,
        ..Default::default()
    };
    let entries = search_all(
        &mut ldap,
        config,
        "users",
        &config.user_filter,
        user_attrs(map),
        paged,
    )
    .await?;
    for entry in &entries {
        match user_from_entry(entry, map) {
            Ok(user) => snapshot.users.push(user),
            Err(why) => snapshot.warnings.push(why),
        }
    }
    let entries = search_all(
        &mut ldap,
        config,
        "groups",
        &config.group_filter,
        group_attrs(map),
        paged,
    )
    .await?;
    for entry in &entries {
        let a = Attrs::of(entry);
        let Some(name) = a.first(&map.group_name) else {
            snapshot.warnings.push(format!(
                "{}: no {} (group name), left out",
                entry.dn, map.group_name
            ));
            continue;
        };
        let mut member_dns = member_values(&mut ldap, config, entry, "member").await?;
        member_dns.extend(member_values(&mut ldap, config, entry, "uniqueMember").await?);
        snapshot.groups.push(LdapGroup {
            dn: entry.dn.clone(),
            external_id: a.external_id().unwrap_or_else(|| entry.dn.clone()),
            name,
            member_dns,
            member_uids: a.all("memberUid").to_vec(),
        });
    }
    let _ = ldap.unbind().await;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_their_security() {
        let e = check_url("ldaps://dc1.town.example", false, false).unwrap();
        assert_eq!(
            (e.ldaps, e.host.as_str(), e.port),
            (true, "dc1.town.example", 636)
        );
        let e = check_url("ldap://127.0.0.1:3389/", true, false).unwrap();
        assert_eq!((e.ldaps, e.port), (false, 3389));
        let refused = check_url("ldap://dc1", false, false).unwrap_err();
        assert!(refused.contains("insecure_plaintext"), "{refused}");
        assert!(check_url("ldap://dc1", false, true).is_ok());
        assert!(check_url("ldaps://dc1", true, false).is_err());
        assert!(check_url("http://dc1", false, false).is_err());
        assert!(check_url("ldaps://dc1/dc=example", false, false).is_err());
        assert!(check_url("ldaps://dc1:99999", false, false).is_err());
        assert!(check_url("ldaps://", false, false).is_err());
    }

    #[test]
    fn ad_guids_read_as_microsoft_writes_them() {
        let bytes = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(
            ad_guid(&bytes).unwrap(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert!(ad_guid(&[1, 2, 3]).is_none());
    }

    #[test]
    fn member_ranges() {
        assert_eq!(
            range_slice("member;range=0-1499", "member"),
            Some(Some(1500))
        );
        assert_eq!(range_slice("Member;Range=1500-*", "member"), Some(None));
        assert_eq!(range_slice("member", "member"), None);
        assert_eq!(range_slice("memberUid", "member"), None);
    }

    fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: dn.into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn users_fall_back_where_attributes_are_missing() {
        let map = super::super::Flavor::OpenLdap.default_attributes();
        let u = user_from_entry(
            &entry(
                "uid=jan,ou=people,dc=example,dc=org",
                &[
                    ("UID", &["jan"]),
                    ("cn", &["Jan Kowalski"]),
                    ("entryUUID", &["ABC-1"]),
                ],
            ),
            &map,
        )
        .unwrap();
        assert_eq!(u.username, "jan");
        assert_eq!(u.display_name, "Jan Kowalski");
        assert_eq!(u.upn, "jan");
        assert_eq!(u.external_id, "abc-1");
        assert!(!u.disabled);
        let none = user_from_entry(&entry("cn=x,dc=example,dc=org", &[("cn", &["x"])]), &map);
        assert!(none.is_err());
    }
}
