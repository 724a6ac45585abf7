//! What an iPhone does with an enrollment URL: download the signed profile, check
//! its signature, read the SCEP and MDM payloads, get an identity certificate from
//! the SCEP server, and become a device that checks in with that certificate.

use crate::artifacts;
use crate::simulator::SimDevice;
use enrollment::scep::client::{build_request, parse_cert_rep, CertRepOutcome, RequestOptions};
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Name, X509};
use plist::{Dictionary, Value};

/// The parts of an enrollment profile a device acts on.
#[derive(Debug, Clone)]
pub struct ProfileContents {
    pub signed: Vec<u8>,
    pub xml: Vec<u8>,
    pub signer: X509,
    pub root_ca: X509,
    /// Every certificate the profile installs as a trusted root (com.apple.security.root
    /// payloads): the device CA, then the roots of the server's HTTPS certificate.
    pub roots: Vec<X509>,
    pub scep_url: String,
    pub challenge: String,
    pub subject_cn: String,
    pub server_url: String,
    pub check_in_url: String,
    pub topic: Option<String>,
    pub identity_certificate_uuid: String,
    pub scep_payload_uuid: String,
}

fn payload<'a>(content: &'a [Value], kind: &str) -> &'a Dictionary {
    content
        .iter()
        .filter_map(Value::as_dictionary)
        .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(kind))
        .unwrap_or_else(|| panic!("profile has no {kind} payload"))
}

fn string(d: &Dictionary, key: &str) -> String {
    d.get(key)
        .and_then(Value::as_string)
        .unwrap_or_else(|| panic!("payload has no {key}"))
        .to_owned()
}

/// Downloads and checks an Apple enrollment profile (signature with the certificate
/// it carries; content type), and writes it to the artifacts folder.
///
/// Over HTTPS the download does not verify the server's certificate: the phone's
/// browser has nothing to verify it with before the profile is installed, and the user
/// goes past its warning (docs/enrollment.md). Everything after the download trusts
/// only the roots the profile installs.
pub async fn fetch_profile(url: &str) -> ProfileContents {
    let resp = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .expect("download the enrollment profile");
    assert_eq!(
        resp.status(),
        200,
        "enrollment URL answered {}",
        resp.status()
    );
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-apple-aspen-config")
    );
    let signed = resp.bytes().await.unwrap().to_vec();
    read_profile(signed)
}

pub fn read_profile(signed: Vec<u8>) -> ProfileContents {
    let p7 = Pkcs7::from_der(&signed).expect("the profile is CMS SignedData");
    let signers = p7
        .signers(&Stack::new().unwrap(), Pkcs7Flags::empty())
        .expect("signer certificate included");
    let signer = signers.get(0).expect("a signer").to_owned();
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(signer.clone()).unwrap();
    // Trust the signer itself: the built-in signing identity is self-signed, and
    // this checks the signature over the content, which is what matters here.
    let mut xml = Vec::new();
    p7.verify(
        &Stack::new().unwrap(),
        &store.build(),
        None,
        Some(&mut xml),
        Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
    )
    .expect("the profile signature verifies");
    // As the server served it (signed), and its content.
    for platform in ["iOS", "macOS"] {
        artifacts::write_apple(platform, "profile-enrollment-served.mobileconfig", &signed);
        artifacts::write_apple(
            platform,
            "profile-enrollment-served-content.mobileconfig",
            &xml,
        );
    }

    let top: Dictionary = plist::from_bytes(&xml).expect("profile plist");
    let content = top
        .get("PayloadContent")
        .and_then(Value::as_array)
        .expect("PayloadContent");
    let root = payload(content, "com.apple.security.root");
    let root_ca = X509::from_der(
        root.get("PayloadContent")
            .and_then(Value::as_data)
            .expect("CA data"),
    )
    .expect("root payload holds a DER certificate");
    let roots = content
        .iter()
        .filter_map(Value::as_dictionary)
        .filter(|p| {
            p.get("PayloadType").and_then(Value::as_string) == Some("com.apple.security.root")
        })
        .map(|p| {
            X509::from_der(
                p.get("PayloadContent")
                    .and_then(Value::as_data)
                    .expect("root data"),
            )
            .expect("root payload holds a DER certificate")
        })
        .collect();
    let scep = payload(content, "com.apple.security.scep");
    let scep_content = scep
        .get("PayloadContent")
        .and_then(Value::as_dictionary)
        .expect("SCEP PayloadContent");
    let subject_cn = scep_content
        .get("Subject")
        .and_then(Value::as_array)
        .and_then(|rdns| rdns.first())
        .and_then(Value::as_array)
        .and_then(|rdn| rdn.first())
        .and_then(Value::as_array)
        .and_then(|pair| pair.get(1))
        .and_then(Value::as_string)
        .expect("Subject CN")
        .to_owned();
    let mdm = payload(content, "com.apple.mdm");
    ProfileContents {
        signed: signed.clone(),
        xml: xml.clone(),
        signer,
        root_ca,
        roots,
        scep_url: string(scep_content, "URL"),
        challenge: string(scep_content, "Challenge"),
        subject_cn,
        server_url: string(mdm, "ServerURL"),
        check_in_url: string(mdm, "CheckInURL"),
        topic: mdm
            .get("Topic")
            .and_then(Value::as_string)
            .map(str::to_owned),
        identity_certificate_uuid: string(mdm, "IdentityCertificateUUID"),
        scep_payload_uuid: string(scep, "PayloadUUID"),
    }
}

/// The outcome of one SCEP request.
pub enum ScepResult {
    Issued(X509),
    Refused(enrollment::scep::FailInfo),
}

/// Sends a PKCSReq (or RenewalReq with `renew_with`) for `key` to `scep_url`
/// (rewritten onto `base_url`, since the profile names the public URL).
pub async fn scep_request(
    base_url: &str,
    ca: &X509,
    key: &PKey<Private>,
    subject_cn: &str,
    challenge: Option<&str>,
    renew_with: Option<(&X509, &PKey<Private>)>,
) -> ScepResult {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, subject_cn)
        .unwrap();
    let name = name.build();
    let mut opts = RequestOptions::new(key, &name, ca);
    opts.challenge = challenge;
    opts.renew_with = renew_with;
    let request = build_request(&opts).expect("build the SCEP request");
    let resp = reqwest::Client::new()
        .post(format!("{base_url}/scep?operation=PKIOperation"))
        .header("Content-Type", "application/x-pki-message")
        .body(request.der.clone())
        .send()
        .await
        .expect("SCEP request");
    assert_eq!(
        resp.status(),
        200,
        "SCEP answers failures as CertRep, not HTTP errors"
    );
    let body = resp.bytes().await.unwrap();
    match parse_cert_rep(&body, &request, ca).expect("a CertRep signed by the CA") {
        CertRepOutcome::Success(cert) => ScepResult::Issued(cert),
        CertRepOutcome::Failure(fail) => ScepResult::Refused(fail),
        CertRepOutcome::Pending => panic!("this server never answers PENDING"),
    }
}

pub fn rsa_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

/// The whole iPhone path: profile → SCEP → a device with the issued identity.
pub async fn enroll_iphone(base_url: &str, enrollment_url: &str) -> (SimDevice, ProfileContents) {
    let profile = fetch_profile(enrollment_url).await;
    // GetCACert must give the same CA the profile installs as root.
    let ca_der = reqwest::get(format!("{base_url}/scep?operation=GetCACert"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let ca = X509::from_der(&ca_der).expect("GetCACert answers a DER certificate");
    assert_eq!(ca.to_der().unwrap(), profile.root_ca.to_der().unwrap());
    let key = rsa_key();
    let cert = match scep_request(
        base_url,
        &ca,
        &key,
        &profile.subject_cn,
        Some(&profile.challenge),
        None,
    )
    .await
    {
        ScepResult::Issued(cert) => cert,
        ScepResult::Refused(fail) => panic!("SCEP refused the profile's own challenge: {fail:?}"),
    };
    let udid = uuid::Uuid::new_v4().to_string().to_uppercase();
    let device = SimDevice::with_identity(base_url, udid, key, cert, "iPhone15,2", "iOS");
    (device, profile)
}
