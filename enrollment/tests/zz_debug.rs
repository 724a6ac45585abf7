mod common;
use enrollment::ca::CertificateAuthority;
use enrollment::scep::client::{self, RequestOptions};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::X509NameBuilder;
#[test]
#[ignore]
fn debug_server() {
    let ca = CertificateAuthority::generate("Debug CA", "Example", 1).unwrap();
    let server = common::ScepServer::start(ca, "secret");
    std::fs::write("/tmp/vtest/ca.pem", server.ca.cert_pem()).unwrap();
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "dbg").unwrap();
    let name = name.build();
    let mut opts = RequestOptions::new(&key, &name, server.ca.cert());
    opts.challenge = Some("secret");
    let req = client::build_request(&opts).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&req.der);
    std::fs::write(
        "/tmp/vtest/msg.p7",
        format!("-----BEGIN PKCS7-----\n{b64}\n-----END PKCS7-----\n"),
    )
    .unwrap();
    std::fs::write("/tmp/vtest/url", &server.url).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(240));
    eprintln!("{:?}", server.exchanges());
}
