//! The `Mdm-Signature` header of every device request: base64, a detached CMS
//! SignedData over the body, a signer certificate and its chain to the device CA.
//! Input layout: see `mdm_fuzz::split_signature_input`.
#![no_main]

use enrollment::identity::DeviceCa;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// Built once: the store is the same for every input, as in the server.
fn trust() -> &'static DeviceCa {
    static CA: OnceLock<DeviceCa> = OnceLock::new();
    CA.get_or_init(mdm_fuzz::device_ca)
}

fuzz_target!(|data: &[u8]| {
    if let Some((header, body)) = mdm_fuzz::split_signature_input(data) {
        let _ = trust().verify_mdm_signature(&header, body);
    }
});
