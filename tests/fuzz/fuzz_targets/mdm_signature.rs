//! The `Mdm-Signature` header of every device request: base64, a detached CMS
//! SignedData over the body, a signer certificate and its chain to the device CA.
//! Input layout: see `mdm_fuzz::split_signature_input`.
//!
//! Each input is verified twice: with the certificates kept from earlier inputs
//! (the short way, for a signer seen before) and without (openssl's full PKCS#7
//! verification). Whatever the short way accepts, the full way must accept as the
//! same certificate.
#![no_main]

use enrollment::identity::testing::KeptChains;
use enrollment::identity::DeviceCa;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Built once: the store is the same for every input, as in the server.
fn trust() -> &'static DeviceCa {
    static CA: OnceLock<DeviceCa> = OnceLock::new();
    CA.get_or_init(mdm_fuzz::device_ca)
}

fn kept() -> &'static KeptChains {
    static KEPT: OnceLock<KeptChains> = OnceLock::new();
    KEPT.get_or_init(KeptChains::default)
}

fuzz_target!(|data: &[u8]| {
    if let Some((header, body)) = mdm_fuzz::split_signature_input(data) {
        let short = trust().verify_mdm_signature_with(&header, body, kept());
        let full = trust().verify_mdm_signature(&header, body);
        if let Ok(identity) = short {
            assert_eq!(
                full.map(|id| id.fingerprint),
                Ok(identity.fingerprint.clone()),
                "the short way accepted what the full way does not"
            );
        }
    }
});
