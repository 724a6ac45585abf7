//! A real directory server for the directory tests: Debian's `slapd` (OpenLDAP),
//! started on free loopback ports with a configuration of its own in a temporary
//! folder (slapd.conf, mdb backend, the ppolicy overlay for `pwdAccountLockedTime`),
//! TLS with a CA and server certificate made here (so both StartTLS on the ldap://
//! port and LDAPS are tried), and a fixture tree loaded with `slapadd` before it
//! starts:
//!
//! - `ou=people`: jan, anna, zofia (a display name with Polish letters), piotr;
//! - `ou=groups`: `staff` (jan, anna, zofia) and `it` (jan, piotr), groupOfNames;
//! - `cn=reader`: the account the MDM binds as (read-only).
//!
//! Stopped (killed) when dropped. Without slapd installed, [`Slapd::start`] prints
//! "SKIPPED: slapd not installed (apt-get install slapd)" and returns None.

use crate::fixture::TempDir;
use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Name, X509};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE_DN: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
/// Zofia's display name: non-ASCII on purpose.
pub const ZOFIA_DISPLAY_NAME: &str = "Zofia Żółkiewska-Łęcka";

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const LDAPMODIFY: &str = "/usr/bin/ldapmodify";

pub struct Slapd {
    /// ldap://127.0.0.1:PORT (StartTLS offered).
    pub ldap_url: String,
    /// ldaps://127.0.0.1:PORT.
    pub ldaps_url: String,
    /// The CA that issued the server's certificate.
    pub ca_pem: String,
    /// Another CA, which did not.
    pub wrong_ca_pem: String,
    /// The read-only account's password (what the MDM is configured with).
    pub reader_password: String,
    admin_password: String,
    child: Child,
    dir: TempDir,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).unwrap();
    hex::encode(b)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut n = X509Name::builder().unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    bn.to_asn1_integer().unwrap()
}

/// A self-signed CA.
fn make_ca(cn: &str) -> (PKey<Private>, X509) {
    let key = key();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    b.set_subject_name(&name(cn)).unwrap();
    b.set_issuer_name(&name(cn)).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (key, b.build())
}

/// The directory's certificate: 127.0.0.1 and localhost.
fn make_server_cert(ca_key: &PKey<Private>, ca: &X509) -> (PKey<Private>, X509) {
    let key = key();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&serial()).unwrap();
    b.set_subject_name(&name("localhost")).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(Some(ca), None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
        .unwrap();
    b.sign(ca_key, MessageDigest::sha256()).unwrap();
    (key, b.build())
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// One LDIF attribute line, base64 when the value is not plain ASCII.
pub fn ldif_attr(name: &str, value: &str) -> String {
    let safe = value.is_ascii()
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ')
        && !value.contains(['\n', '\r', '\0']);
    if safe {
        format!("{name}: {value}\n")
    } else {
        format!(
            "{name}:: {}\n",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

/// A person entry under ou=people.
pub fn person_ldif(uid: &str, display: &str, department: &str) -> String {
    let sn = display.split_whitespace().last().unwrap_or(uid);
    format!(
        "dn: uid={uid},ou=people,{BASE_DN}\nobjectClass: inetOrgPerson\nuid: {uid}\n{}{}mail: {uid}@example.org\n{}{}\n",
        ldif_attr("cn", display),
        ldif_attr("sn", sn),
        ldif_attr("displayName", display),
        ldif_attr("departmentNumber", department),
    )
}

fn tree(reader_password: &str) -> String {
    let mut ldif = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example Town Hall\n\n\
         dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: {reader_password}\n\n\
         dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for (uid, display, dept) in [
        ("jan", "Jan Kowalski", "IT"),
        ("anna", "Anna Nowak", "Finance"),
        ("zofia", ZOFIA_DISPLAY_NAME, "Registry"),
        ("piotr", "Piotr Wiśniewski", "IT"),
    ] {
        ldif += &person_ldif(uid, display, dept);
        ldif += "\n";
    }
    for (cn, members) in [
        ("staff", &["jan", "anna", "zofia"][..]),
        ("it", &["jan", "piotr"][..]),
    ] {
        ldif += &format!("dn: cn={cn},ou=groups,{BASE_DN}\nobjectClass: groupOfNames\ncn: {cn}\n");
        for m in members {
            ldif += &format!("member: uid={m},ou=people,{BASE_DN}\n");
        }
        ldif += "\n";
    }
    ldif
}

impl Slapd {
    pub fn installed() -> bool {
        Path::new(SLAPD).exists() && Path::new(SLAPADD).exists() && Path::new(LDAPMODIFY).exists()
    }

    /// Starts a fresh directory, or None (printing SKIPPED) when slapd is missing.
    pub async fn start() -> Option<Slapd> {
        if !Self::installed() {
            eprintln!("SKIPPED: slapd not installed (apt-get install slapd)");
            return None;
        }
        let slapd = tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .expect("start slapd");
        Some(slapd)
    }

    fn start_blocking() -> Slapd {
        let dir = TempDir::new("mdm-slapd");
        let d = dir.0.clone();
        std::fs::create_dir_all(d.join("db")).unwrap();
        let (ca_key, ca) = make_ca("Test Directory CA");
        let (_, wrong_ca) = make_ca("Some Other CA");
        let (server_key, server_cert) = make_server_cert(&ca_key, &ca);
        write(&d.join("ca.pem"), &ca.to_pem().unwrap());
        write(&d.join("server.pem"), &server_cert.to_pem().unwrap());
        write(
            &d.join("server.key"),
            &server_key.private_key_to_pem_pkcs8().unwrap(),
        );
        let admin_password = format!("admin-{}", random_hex(8));
        let reader_password = format!("reader-{}", random_hex(12));
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload ppolicy\n\
             pidfile {dir}/slapd.pid\n\
             argsfile {dir}/slapd.args\n\
             TLSCACertificateFile {dir}/ca.pem\n\
             TLSCertificateFile {dir}/server.pem\n\
             TLSCertificateKeyFile {dir}/server.key\n\
             database mdb\n\
             maxsize 33554432\n\
             suffix \"{BASE_DN}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {admin_password}\n\
             directory {dir}/db\n\
             index objectClass eq\n\
             overlay ppolicy\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by users read by * none\n",
            dir = d.display()
        );
        write(&d.join("slapd.conf"), conf.as_bytes());
        write(&d.join("tree.ldif"), tree(&reader_password).as_bytes());
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("tree.ldif"))
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (ldap_port, ldaps_port) = (free_port(), free_port());
        let log = std::fs::File::create(d.join("slapd.log")).unwrap();
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{ldap_port}/ ldaps://127.0.0.1:{ldaps_port}/"
            ))
            // -d keeps it in the foreground (no fork), so dropping the child stops it.
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start slapd");
        let mut slapd = Slapd {
            ldap_url: format!("ldap://127.0.0.1:{ldap_port}"),
            ldaps_url: format!("ldaps://127.0.0.1:{ldaps_port}"),
            ca_pem: String::from_utf8(ca.to_pem().unwrap()).unwrap(),
            wrong_ca_pem: String::from_utf8(wrong_ca.to_pem().unwrap()).unwrap(),
            reader_password,
            admin_password,
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = [ldap_port, ldaps_port]
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                break;
            }
            if let Ok(Some(status)) = slapd.child.try_wait() {
                panic!("slapd exited ({status}): {}", slapd.log());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not listen within 20 s: {}",
                slapd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        slapd
    }

    /// What slapd wrote (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("slapd.log")).unwrap_or_default()
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.0.join("ca.pem")
    }

    /// Runs ldapmodify as the directory's administrator (LDIF with changetype lines).
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new(LDAPMODIFY)
            .args([
                "-x",
                "-H",
                &self.ldap_url,
                "-D",
                ADMIN_DN,
                "-w",
                &self.admin_password,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ldapmodify");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ldapmodify failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            ldif
        );
    }

    /// Deletes an entry.
    pub fn delete(&self, dn: &str) {
        self.modify(&format!("dn: {dn}\nchangetype: delete\n"));
    }

    /// Locks an account the OpenLDAP way (ppolicy's permanent lock).
    pub fn lock(&self, uid: &str) {
        self.modify(&format!(
            "dn: uid={uid},ou=people,{BASE_DN}\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n"
        ));
    }

    pub fn unlock(&self, uid: &str) {
        self.modify(&format!(
            "dn: uid={uid},ou=people,{BASE_DN}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"
        ));
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
