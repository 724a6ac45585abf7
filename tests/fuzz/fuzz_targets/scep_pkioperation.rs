//! SCEP `PKIOperation` (`POST /scep?operation=PKIOperation`), read as the server
//! does: `scep::parse_request` (SignedData, its attributes and signature, the
//! EnvelopedData decrypted with the CA key, the CSR), then the failure reply the
//! server builds from whatever envelope was learnt, which also reads device bytes.
#![no_main]

use enrollment::ca::CertificateAuthority;
use enrollment::scep::{self, FailInfo};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn ca() -> &'static CertificateAuthority {
    static CA: OnceLock<CertificateAuthority> = OnceLock::new();
    CA.get_or_init(mdm_fuzz::scep_ca)
}

fuzz_target!(|data: &[u8]| {
    match scep::parse_request(data, ca()) {
        Ok(request) => {
            let _ = format!("{request:?}");
            let _ = scep::cert_rep_failure(&request.envelope(), FailInfo::BadRequest, ca());
        }
        Err(e) => {
            let _ = scep::cert_rep_failure(&e.envelope, e.fail_info, ca());
        }
    }
});
