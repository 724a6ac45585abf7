//! Profile signing, checked with the real `openssl cms -verify` and, for the signed
//! and unsigned enrollment profile, with the vendor schema checker. The profiles are
//! also written to `$MDM_ARTIFACTS_DIR/apple/<os>/` for the CI's schema check.

use std::path::{Path, PathBuf};
use std::process::Command;

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::OctetString;
use der::{Decode, Encode};
use enrollment::signing::{sign_profile, SigningError, SigningIdentity};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509Builder, X509NameBuilder, X509};
use profiles::enrollment_profile::{build_enrollment_profile, EnrollmentProfileSpec};

const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";

fn openssl_available(test: &str) -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED {test}: openssl not installed (apt-get install openssl)");
    }
    ok
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enroll-signing-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `openssl cms -verify` on `signed` trusting `ca_pem`; returns the extracted
/// content, or the error output.
fn openssl_verify(
    dir: &Path,
    signed: &[u8],
    ca_pem: &[u8],
    purpose_any: bool,
) -> Result<Vec<u8>, String> {
    let input = dir.join("signed.mobileconfig");
    let ca = dir.join("trust.pem");
    let out = dir.join("content.plist");
    std::fs::write(&input, signed).unwrap();
    std::fs::write(&ca, ca_pem).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut cmd = Command::new("openssl");
    cmd.args(["cms", "-verify", "-inform", "DER", "-in"])
        .arg(&input)
        .arg("-CAfile")
        .arg(&ca)
        .arg("-out")
        .arg(&out);
    if purpose_any {
        cmd.args(["-purpose", "any"]);
    }
    let result = cmd.output().unwrap();
    if result.status.success() {
        Ok(std::fs::read(&out).unwrap())
    } else {
        Err(String::from_utf8_lossy(&result.stderr).into_owned())
    }
}

fn sample_plist() -> Vec<u8> {
    // CRLF-free, LF line endings and non-ASCII text: signing must keep every byte.
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n<dict>\n\t<key>PayloadDisplayName</key>\n\t<string>Urz\xc4\x85d</string>\n</dict>\n</plist>\n".to_vec()
}

fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

struct Issued {
    cert: X509,
    key: PKey<Private>,
}

/// A certificate for `cn`, signed by `issuer` (self-signed when None).
fn issue(
    cn: &str,
    issuer: Option<&Issued>,
    ca: bool,
    days_valid: (i64, i64),
    server_auth: bool,
) -> Issued {
    let key = rsa_key(2048);
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = BigNum::from_u32(rand_u32())
        .unwrap()
        .to_asn1_integer()
        .unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
        .unwrap();
    b.set_pubkey(&key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now + days_valid.0 * 86400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now + days_valid.1 * 86400).unwrap())
        .unwrap();
    if ca {
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
    } else {
        b.append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap(),
        )
        .unwrap();
        if server_auth {
            // What a public CA issues for a web server (Let's Encrypt and the like).
            b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
                .unwrap();
        }
    }
    let signer = issuer.map_or(&key, |i| &i.key);
    b.sign(signer, MessageDigest::sha256()).unwrap();
    Issued {
        cert: b.build(),
        key,
    }
}

fn rand_u32() -> u32 {
    let mut buf = [0u8; 4];
    openssl::rand::rand_bytes(&mut buf).unwrap();
    u32::from_be_bytes(buf) | 1
}

/// What the CMS structure says, decoded independently of OpenSSL.
struct Parsed {
    content: Vec<u8>,
    digest_oids: Vec<String>,
    signer_digest_oids: Vec<String>,
    certificates: usize,
}

fn parse_cms(der: &[u8]) -> Parsed {
    let info = ContentInfo::from_der(der).expect("ContentInfo");
    assert_eq!(info.content_type.to_string(), "1.2.840.113549.1.7.2");
    let sd: SignedData = info.content.decode_as().expect("SignedData");
    let econtent = sd
        .encap_content_info
        .econtent
        .expect("content is attached, not detached");
    let octets: OctetString = econtent.decode_as().unwrap();
    Parsed {
        content: octets.as_bytes().to_vec(),
        digest_oids: sd
            .digest_algorithms
            .iter()
            .map(|a| a.oid.to_string())
            .collect(),
        signer_digest_oids: sd
            .signer_infos
            .0
            .iter()
            .map(|s| s.digest_alg.oid.to_string())
            .collect(),
        certificates: sd.certificates.map_or(0, |c| c.0.len()),
    }
}

#[test]
fn generated_identity_has_the_documented_shape() {
    let id = SigningIdentity::generate("Town Hall profile signing", "Town Hall", 3).unwrap();
    let cert = &id.cert;
    assert!(id.chain.is_empty());
    assert_eq!(cert.public_key().unwrap().bits(), 2048);
    assert!(cert.public_key().unwrap().public_eq(&id.key));
    assert!(cert.verify(&id.key).unwrap(), "self-signed");
    let cn = cert
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .unwrap()
        .data()
        .as_slice()
        .to_vec();
    assert_eq!(cn, b"Town Hall profile signing");
    let org = cert
        .subject_name()
        .entries_by_nid(Nid::ORGANIZATIONNAME)
        .next()
        .unwrap()
        .data()
        .as_slice()
        .to_vec();
    assert_eq!(org, b"Town Hall");
    // Roughly three years, and already valid.
    let now = Asn1Time::days_from_now(0).unwrap();
    let diff = now.diff(cert.not_after()).unwrap();
    assert!((3 * 365..=3 * 366).contains(&diff.days), "{diff:?}");
    assert!(cert.not_before() <= now);

    let text = String::from_utf8(cert.to_text().unwrap()).unwrap();
    assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(!text.contains("Certificate Sign"), "{text}");
    assert!(text.contains("E-mail Protection"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");

    // PEM export round-trips through the importer.
    let again =
        SigningIdentity::from_pem(&id.cert_pem().unwrap(), &id.key_pem().unwrap(), None).unwrap();
    assert_eq!(again.cert.to_der().unwrap(), id.cert.to_der().unwrap());
    assert!(id.chain_pem().unwrap().is_empty());
}

#[test]
fn generate_rejects_bad_parameters() {
    for (cn, years) in [("", 1), (" ", 1), ("x", 0), ("x", 31)] {
        match SigningIdentity::generate(cn, "Org", years) {
            Err(SigningError::InvalidParameter(_)) => {}
            other => panic!("{cn:?}/{years}: {other:?}"),
        }
    }
    // The organization is optional.
    SigningIdentity::generate("Signer", "", 1).unwrap();
}

#[test]
fn signed_profile_structure() {
    let id = SigningIdentity::generate("Signer", "Org", 1).unwrap();
    let plist = sample_plist();
    let signed = sign_profile(&plist, &id).unwrap();
    let parsed = parse_cms(&signed);
    assert_eq!(parsed.content, plist, "content attached byte for byte");
    assert_eq!(parsed.digest_oids, [SHA256_OID]);
    assert_eq!(parsed.signer_digest_oids, [SHA256_OID]);
    assert_eq!(parsed.certificates, 1, "the signer certificate is included");
    assert!(matches!(
        sign_profile(b"", &id),
        Err(SigningError::InvalidParameter(_))
    ));
}

#[test]
fn openssl_verifies_a_profile_signed_with_the_generated_identity() {
    if !openssl_available("openssl_verifies_a_profile_signed_with_the_generated_identity") {
        return;
    }
    let dir = temp_dir("generated");
    let id = SigningIdentity::generate("Signer", "Org", 1).unwrap();
    let plist = sample_plist();
    let signed = sign_profile(&plist, &id).unwrap();
    let ca = id.cert_pem().unwrap();
    // `-purpose any`, as the brief asks; and OpenSSL's default S/MIME signing purpose,
    // which the emailProtection EKU satisfies.
    for purpose_any in [true, false] {
        let content = openssl_verify(&dir, &signed, &ca, purpose_any)
            .unwrap_or_else(|e| panic!("purpose any {purpose_any}: {e}"));
        assert_eq!(content, plist);
    }
    // A different trust anchor must fail: the check is real.
    let other = SigningIdentity::generate("Other", "Org", 1).unwrap();
    assert!(openssl_verify(&dir, &signed, &other.cert_pem().unwrap(), true).is_err());
    // So must a modified file.
    let mut tampered = signed.clone();
    let at = tampered
        .windows(4)
        .position(|w| w == b"dict")
        .expect("content is visible in the DER");
    tampered[at] = b'D';
    assert!(openssl_verify(&dir, &tampered, &ca, true).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn openssl_verifies_a_profile_signed_with_an_imported_chain() {
    if !openssl_available("openssl_verifies_a_profile_signed_with_an_imported_chain") {
        return;
    }
    let dir = temp_dir("chain");
    let root = issue("Test Root CA", None, true, (-1, 3650), false);
    let intermediate = issue("Test Intermediate CA", Some(&root), true, (-1, 1825), false);
    let leaf = issue(
        "mdm.townhall.example",
        Some(&intermediate),
        false,
        (-1, 90),
        true,
    );

    // A "fullchain" file: leaf, intermediate (and the root, which some CAs include).
    let mut fullchain = leaf.cert.to_pem().unwrap();
    fullchain.extend(intermediate.cert.to_pem().unwrap());
    fullchain.extend(root.cert.to_pem().unwrap());
    let id = SigningIdentity::from_pem(
        &leaf.cert.to_pem().unwrap(),
        &leaf.key.private_key_to_pem_pkcs8().unwrap(),
        Some(&fullchain),
    )
    .unwrap();
    assert_eq!(id.chain.len(), 2, "the repeated leaf is dropped");

    let plist = sample_plist();
    let signed = sign_profile(&plist, &id).unwrap();
    assert_eq!(parse_cms(&signed).certificates, 3);
    let content = openssl_verify(&dir, &signed, &root.cert.to_pem().unwrap(), true).unwrap();
    assert_eq!(content, plist);

    // Only the intermediate as chain, root left out: devices have the root already.
    let id = SigningIdentity::from_pem(
        &leaf.cert.to_pem().unwrap(),
        &leaf.key.rsa().unwrap().private_key_to_pem().unwrap(),
        Some(&intermediate.cert.to_pem().unwrap()),
    )
    .unwrap();
    let signed = sign_profile(&plist, &id).unwrap();
    assert_eq!(parse_cms(&signed).certificates, 2);
    let content = openssl_verify(&dir, &signed, &root.cert.to_pem().unwrap(), true).unwrap();
    assert_eq!(content, plist);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn from_pem_rejects_mistakes() {
    let root = issue("Root", None, true, (-1, 3650), false);
    let leaf = issue("Leaf", Some(&root), false, (-1, 90), true);
    let leaf_pem = leaf.cert.to_pem().unwrap();
    let leaf_key = leaf.key.private_key_to_pem_pkcs8().unwrap();

    let other_key = rsa_key(2048).private_key_to_pem_pkcs8().unwrap();
    assert!(matches!(
        SigningIdentity::from_pem(&leaf_pem, &other_key, None),
        Err(SigningError::KeyMismatch)
    ));

    let encrypted = leaf
        .key
        .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"secret")
        .unwrap();
    let err = SigningIdentity::from_pem(&leaf_pem, &encrypted, None).unwrap_err();
    assert!(matches!(err, SigningError::EncryptedKey), "{err}");
    assert!(err.to_string().contains("openssl pkey"));

    assert!(matches!(
        SigningIdentity::from_pem(b"not pem", &leaf_key, None),
        Err(SigningError::BadPem { .. })
    ));
    assert!(matches!(
        SigningIdentity::from_pem(&leaf_pem, b"not pem", None),
        Err(SigningError::BadPem { .. })
    ));
    assert!(matches!(
        SigningIdentity::from_pem(&leaf_pem, &leaf_key, Some(b"garbage")),
        Err(SigningError::BadPem { .. })
    ));

    // A chain that does not contain the issuer.
    let stranger = issue("Some other CA", None, true, (-1, 3650), false);
    let err =
        SigningIdentity::from_pem(&leaf_pem, &leaf_key, Some(&stranger.cert.to_pem().unwrap()))
            .unwrap_err();
    assert!(matches!(err, SigningError::ChainMismatch(_)), "{err}");
    assert!(err.to_string().contains("CN=Root"), "{err}");

    let expired = issue("Old", Some(&root), false, (-400, -10), true);
    assert!(matches!(
        SigningIdentity::from_pem(
            &expired.cert.to_pem().unwrap(),
            &expired.key.private_key_to_pem_pkcs8().unwrap(),
            None
        ),
        Err(SigningError::Expired(_))
    ));

    // RSA 1024 is below what we sign with.
    let weak_key = rsa_key(1024);
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "weak").unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&weak_key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&weak_key, MessageDigest::sha256()).unwrap();
    assert!(matches!(
        SigningIdentity::from_pem(
            &b.build().to_pem().unwrap(),
            &weak_key.private_key_to_pem_pkcs8().unwrap(),
            None
        ),
        Err(SigningError::UnsupportedKey(_))
    ));
}

#[test]
fn ec_identity_signs_too() {
    let group = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "ec signer")
        .unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let id = SigningIdentity::from_pem(
        &b.build().to_pem().unwrap(),
        &key.private_key_to_pem_pkcs8().unwrap(),
        None,
    )
    .unwrap();
    let signed = sign_profile(&sample_plist(), &id).unwrap();
    let parsed = parse_cms(&signed);
    assert_eq!(parsed.signer_digest_oids, [SHA256_OID]);
    assert_eq!(parsed.content, sample_plist());
}

fn artifacts_dir() -> PathBuf {
    std::env::var_os("MDM_ARTIFACTS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/mdm-artifacts"),
        PathBuf::from,
    )
}

fn enrollment_spec(ca_der: Vec<u8>) -> EnrollmentProfileSpec {
    EnrollmentProfileSpec {
        organization: "Town Hall".into(),
        display_name: "Town Hall MDM".into(),
        identifier: "gov.townhall.mdm.enrollment".into(),
        ca_certificate_der: ca_der,
        server_roots_der: vec![],
        scep_url: "https://mdm.townhall.example/scep".into(),
        scep_challenge: "5f0c1d2e3a4b".into(),
        scep_subject_cn: "mdm-device-9A8B7C6D-1234-4E5F-8A9B-0C1D2E3F4A5B".into(),
        scep_key_size: 2048,
        scep_key_usage: 5,
        server_url: "https://mdm.townhall.example/mdm".into(),
        check_in_url: "https://mdm.townhall.example/checkin".into(),
        topic: Some("com.apple.mgmt.External.0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()),
        access_rights: 8191,
        check_out_when_removed: true,
        server_capabilities: vec![
            "com.apple.mdm.per-user-connections".into(),
            "com.apple.mdm.bootstraptoken".into(),
        ],
        sign_message: true,
    }
}

/// The real enrollment profile, with a real device CA, unsigned and signed: written
/// where the CI's schema check finds it, checked with the schema checker here too,
/// and the signed one verified with openssl.
#[test]
fn enrollment_profile_artifacts_pass_the_schema_checker() {
    let ca = issue("Town Hall Device CA", None, true, (-1, 3650), false);
    let built = build_enrollment_profile(&enrollment_spec(ca.cert.to_der().unwrap())).unwrap();
    let id = SigningIdentity::generate("Town Hall profile signing", "Town Hall", 1).unwrap();
    let signed = sign_profile(&built.plist_xml, &id).unwrap();
    assert_eq!(parse_cms(&signed).content, built.plist_xml);

    let mut files = Vec::new();
    for platform in ["iOS", "macOS"] {
        let dir = artifacts_dir().join("apple").join(platform);
        std::fs::create_dir_all(&dir).unwrap();
        let signed_path = dir.join("profile-enrollment.mobileconfig");
        let unsigned_path = dir.join("profile-enrollment-unsigned.mobileconfig");
        std::fs::write(&signed_path, &signed).unwrap();
        std::fs::write(&unsigned_path, &built.plist_xml).unwrap();
        files.push((platform, signed_path, unsigned_path));
    }

    if !openssl_available("enrollment_profile_artifacts_pass_the_schema_checker") {
        return;
    }
    let dir = temp_dir("artifacts");
    let content = openssl_verify(&dir, &signed, &id.cert_pem().unwrap(), true).unwrap();
    assert_eq!(content, built.plist_xml);
    std::fs::remove_dir_all(&dir).ok();

    let checker =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/mdm-schema-check");
    if !checker.exists() {
        println!(
            "SKIPPED schema check in enrollment_profile_artifacts_pass_the_schema_checker: {} not found",
            checker.display()
        );
        return;
    }
    let python_ok = Command::new("python3")
        .args(["-c", "import yaml, jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !python_ok {
        println!("SKIPPED schema check in enrollment_profile_artifacts_pass_the_schema_checker: python3 with pyyaml and jsonschema is missing (pip install pyyaml jsonschema)");
        return;
    }
    for (platform, signed_path, unsigned_path) in files {
        let out = Command::new(&checker)
            .args(["--platform", platform])
            .arg(&signed_path)
            .arg(&unsigned_path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{platform}: {report}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains("(signed profile)"), "{report}");
        assert!(report.contains("(profile)"), "{report}");
        assert!(!report.contains("warning"), "{report}");
    }
}

#[test]
fn signing_keeps_the_der_encoding_of_the_certificates() {
    // The chain goes into the CMS as given: a device must find the same certificates.
    let root = issue("Root", None, true, (-1, 3650), false);
    let leaf = issue("Leaf", Some(&root), false, (-1, 90), true);
    let id = SigningIdentity::from_pem(
        &leaf.cert.to_pem().unwrap(),
        &leaf.key.private_key_to_pem_pkcs8().unwrap(),
        Some(&root.cert.to_pem().unwrap()),
    )
    .unwrap();
    let signed = sign_profile(&sample_plist(), &id).unwrap();
    let info = ContentInfo::from_der(&signed).unwrap();
    let sd: SignedData = info.content.decode_as().unwrap();
    let mut ders: Vec<Vec<u8>> = sd
        .certificates
        .unwrap()
        .0
        .iter()
        .map(|c| c.to_der().unwrap())
        .collect();
    ders.sort();
    let mut want = vec![leaf.cert.to_der().unwrap(), root.cert.to_der().unwrap()];
    want.sort();
    assert_eq!(ders, want);
}
