//! The office's directory, client side: where it is and how it maps onto users and
//! groups (this file), reading it over LDAP ([`ldap`]), turning what was read, a CSV
//! file or an admin's edit into changes of the stored users and groups ([`plan`],
//! pure), and the CSV format ([`csv_import`]). The service that runs them is
//! `services/directory.rs`; storage is `storage/sql/directory.rs`.

pub mod csv_import;
pub mod ldap;
pub mod plan;

use serde::Serialize;

/// Event kinds this module writes.
pub mod kinds {
    /// A user's attributes or groups changed (or the user was created): the policy
    /// engine renders that user's devices again. Data: {username, changed, ...}.
    pub const USER_CHANGED: &str = "directory.user_changed";
    /// A user was disabled (in the directory, or by hand). Data: {username, reason}.
    pub const USER_DISABLED: &str = "directory.user_disabled";
    /// A user left the directory: disabled, never deleted. Data: {username}.
    pub const USER_REMOVED: &str = "directory.user_removed";
    /// A disabled user is enabled again. Data: {username}.
    pub const USER_ENABLED: &str = "directory.user_enabled";
    pub const SYNC_COMPLETED: &str = "directory.sync_completed";
    pub const SYNC_FAILED: &str = "directory.sync_failed";
    pub const ADMIN_SOURCE_CONFIGURED: &str = "admin.directory_configured";
    pub const ADMIN_USER_CREATED: &str = "admin.user_created";
    pub const ADMIN_USER_UPDATED: &str = "admin.user_updated";
    pub const ADMIN_USER_DELETED: &str = "admin.user_deleted";
    pub const ADMIN_USERS_IMPORTED: &str = "admin.users_imported";
}

/// Why a user is disabled (`directory_users.disabled_reason`).
pub mod reasons {
    pub const DISABLED_IN_DIRECTORY: &str = "disabled in the directory";
    pub const REMOVED_FROM_DIRECTORY: &str = "removed from the directory";
    pub const DISABLED_BY_HAND: &str = "disabled by hand";
}

/// Where a user or group came from (`source`).
pub mod sources {
    pub const LDAP: &str = "ldap";
    pub const CSV: &str = "csv";
    pub const MANUAL: &str = "manual";
}

/// The kind of directory server: it sets the defaults of filters and attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    #[serde(alias = "openldap")]
    OpenLdap,
    #[serde(alias = "ad", alias = "active-directory")]
    ActiveDirectory,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::OpenLdap => "openldap",
            Flavor::ActiveDirectory => "active_directory",
        }
    }

    pub fn parse(s: &str) -> Option<Flavor> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "openldap" | "open_ldap" => Some(Flavor::OpenLdap),
            "active_directory" | "ad" => Some(Flavor::ActiveDirectory),
            _ => None,
        }
    }

    pub fn default_user_filter(self) -> &'static str {
        match self {
            Flavor::OpenLdap => "(objectClass=inetOrgPerson)",
            Flavor::ActiveDirectory => "(&(objectCategory=person)(objectClass=user))",
        }
    }

    pub fn default_group_filter(self) -> &'static str {
        match self {
            Flavor::OpenLdap => {
                "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
            }
            Flavor::ActiveDirectory => "(objectClass=group)",
        }
    }

    pub fn default_attributes(self) -> AttributeMap {
        match self {
            Flavor::OpenLdap => AttributeMap {
                username: "uid".into(),
                upn: "mail".into(),
                email: "mail".into(),
                display_name: "displayName".into(),
                department: "departmentNumber".into(),
                group_name: "cn".into(),
                disabled: Some("pwdAccountLockedTime".into()),
                disabled_value: None,
            },
            Flavor::ActiveDirectory => AttributeMap {
                username: "sAMAccountName".into(),
                upn: "userPrincipalName".into(),
                email: "mail".into(),
                display_name: "displayName".into(),
                department: "department".into(),
                group_name: "cn".into(),
                disabled: Some("userAccountControl".into()),
                disabled_value: None,
            },
        }
    }
}

/// Which LDAP attribute fills which field of a user or group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeMap {
    pub username: String,
    pub upn: String,
    pub email: String,
    /// Falls back to `cn`, then the username, when an entry lacks it.
    pub display_name: String,
    pub department: String,
    pub group_name: String,
    /// How a disabled account shows: `userAccountControl` without a value tests
    /// Active Directory's ACCOUNTDISABLE bit (2); another attribute without a value
    /// means disabled when present (OpenLDAP's `pwdAccountLockedTime`); with a value,
    /// disabled when the attribute has that value (ignoring case).
    pub disabled: Option<String>,
    pub disabled_value: Option<String>,
}

impl AttributeMap {
    /// Whether an entry's values of the disabled attribute say "disabled".
    pub fn is_disabled(&self, values: &[String]) -> bool {
        let Some(attr) = &self.disabled else {
            return false;
        };
        match &self.disabled_value {
            None if attr.eq_ignore_ascii_case("userAccountControl") => values
                .iter()
                .filter_map(|v| v.trim().parse::<i64>().ok())
                .any(|uac| uac & 0x2 != 0),
            None => values.iter().any(|v| !v.trim().is_empty()),
            Some(wanted) => values
                .iter()
                .any(|v| v.trim().eq_ignore_ascii_case(wanted.trim())),
        }
    }
}

/// A secret in memory: never printed, not even by `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// How to reach and read the directory, with the bind password opened.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub flavor: Flavor,
    pub url: String,
    pub start_tls: bool,
    pub allow_plaintext: bool,
    pub bind_dn: String,
    pub bind_password: Secret,
    pub base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    pub attributes: AttributeMap,
    /// PEM certificates to trust for the directory's TLS certificate; None: the
    /// system's roots.
    pub ca_pem: Option<String>,
}

/// A user entry as read from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUser {
    pub dn: String,
    pub external_id: String,
    pub username: String,
    pub upn: String,
    pub email: String,
    pub display_name: String,
    pub department: Option<String>,
    pub disabled: bool,
}

/// A group entry as read from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapGroup {
    pub dn: String,
    pub external_id: String,
    pub name: String,
    /// DNs of members (`member`, `uniqueMember`).
    pub member_dns: Vec<String>,
    /// Usernames of members (`memberUid` of a posixGroup).
    pub member_uids: Vec<String>,
}

/// Everything one sync read from the directory.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub users: Vec<LdapUser>,
    pub groups: Vec<LdapGroup>,
    /// Entries left out, and why (no username, ...).
    pub warnings: Vec<String>,
    /// Whether the server answered the paged-results control.
    pub paged: bool,
}

/// A DN compared as LDAP compares it, near enough: no spaces around separators, case
/// ignored.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    for part in split_unescaped(dn, ',') {
        if !out.is_empty() {
            out.push(',');
        }
        let mut rdn = String::new();
        for (i, ava) in split_unescaped(part, '+').into_iter().enumerate() {
            if i > 0 {
                rdn.push('+');
            }
            match ava.split_once('=') {
                Some((k, v)) => {
                    rdn.push_str(&k.trim().to_lowercase());
                    rdn.push('=');
                    rdn.push_str(&v.trim().to_lowercase());
                }
                None => rdn.push_str(&ava.trim().to_lowercase()),
            }
        }
        out.push_str(&rdn);
    }
    out
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_detection() {
        let ad = Flavor::ActiveDirectory.default_attributes();
        assert!(ad.is_disabled(&["514".into()]));
        assert!(!ad.is_disabled(&["512".into()]));
        assert!(!ad.is_disabled(&[]));
        let ol = Flavor::OpenLdap.default_attributes();
        assert!(ol.is_disabled(&["000001010000Z".into()]));
        assert!(!ol.is_disabled(&[]));
        let custom = AttributeMap {
            disabled: Some("employeeType".into()),
            disabled_value: Some("Disabled".into()),
            ..ol
        };
        assert!(custom.is_disabled(&["staff".into(), "disabled".into()]));
        assert!(!custom.is_disabled(&["staff".into()]));
    }

    #[test]
    fn dns_compare_ignoring_case_and_spaces() {
        assert_eq!(
            normalize_dn("uid=Jan, ou=People,dc=Example,dc=org"),
            normalize_dn("UID=jan,ou=people, dc=example,dc=org")
        );
        assert_eq!(
            normalize_dn(r"cn=Kowalski\, Jan,ou=people"),
            r"cn=kowalski\, jan,ou=people"
        );
    }

    #[test]
    fn the_secret_is_never_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
    }
}
