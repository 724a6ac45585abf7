//! A simulated Apple device's answers to what policies make the server ask: the
//! profile inside an InstallProfile (its CMS signature checked), SecurityInfo and
//! ProfileList replies, and a loop that answers a device's whole queue.

use crate::simulator::{Received, SimDevice};
use plist::{Dictionary, Value as Plist};

/// The profile inside an InstallProfile command: its CMS signature checked by
/// openssl against the signer it carries, its content parsed.
pub fn installed_profile(cmd: &Received) -> (Vec<u8>, Dictionary) {
    assert_eq!(cmd.request_type, "InstallProfile");
    let signed = cmd
        .command
        .get("Payload")
        .and_then(Plist::as_data)
        .expect("InstallProfile carries the profile")
        .to_vec();
    let pkcs7 = openssl::pkcs7::Pkcs7::from_der(&signed).expect("a signed profile (CMS)");
    let certs = pkcs7
        .signed()
        .and_then(|s| s.certificates())
        .expect("the signer's chain");
    let store = openssl::x509::store::X509StoreBuilder::new()
        .unwrap()
        .build();
    let mut content = Vec::new();
    pkcs7
        .verify(
            certs,
            &store,
            None,
            Some(&mut content),
            openssl::pkcs7::Pkcs7Flags::NOVERIFY,
        )
        .expect("the signature verifies");
    let dict = plist::from_bytes::<Dictionary>(&content).expect("a plist profile");
    (signed, dict)
}

/// A SecurityInfo reply: a passcode present and compliant, or none.
pub fn security_info(passcode_present: bool) -> Dictionary {
    let mut s = Dictionary::new();
    s.insert("HardwareEncryptionCaps".into(), Plist::Integer(3.into()));
    s.insert("PasscodePresent".into(), passcode_present.into());
    s.insert("PasscodeCompliant".into(), passcode_present.into());
    s.insert(
        "PasscodeCompliantWithProfiles".into(),
        passcode_present.into(),
    );
    let mut r = Dictionary::new();
    r.insert("SecurityInfo".into(), Plist::Dictionary(s));
    r
}

/// A ProfileList reply listing these managed profiles.
pub fn profile_list(identifiers: &[&str]) -> Dictionary {
    let list = identifiers
        .iter()
        .map(|id| {
            let mut p = Dictionary::new();
            p.insert("PayloadIdentifier".into(), (*id).into());
            p.insert("PayloadDisplayName".into(), "staff".into());
            p.insert("IsManaged".into(), true.into());
            Plist::Dictionary(p)
        })
        .collect();
    let mut r = Dictionary::new();
    r.insert("ProfileList".into(), Plist::Array(list));
    r
}

/// Answers the device's queue: InstallProfile and RemoveProfile acknowledged,
/// SecurityInfo and ProfileList with these answers. Returns the request types seen.
pub async fn answer(device: &SimDevice, passcode: bool, installed: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = device.idle().await;
    while let Some(cmd) = next {
        seen.push(cmd.request_type.clone());
        next = match cmd.request_type.as_str() {
            "SecurityInfo" => {
                device
                    .acknowledge_with(&cmd.uuid, security_info(passcode))
                    .await
            }
            "ProfileList" => {
                device
                    .acknowledge_with(&cmd.uuid, profile_list(installed))
                    .await
            }
            _ => device.acknowledge(&cmd.uuid).await,
        };
    }
    seen
}
