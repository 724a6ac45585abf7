//! SCEP messages come from anyone who can reach /scep: the parser must answer an
//! error, never panic, on truncated, mutated or random bytes.

use enrollment::ca::CertificateAuthority;
use enrollment::scep::client::{build_request, RequestOptions};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::X509NameBuilder;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn parse_request_never_panics_on_mangled_messages() {
    let ca = CertificateAuthority::generate("Fuzz CA", "Fuzz", 1).unwrap();
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "fuzz").unwrap();
    let name = name.build();
    let mut opts = RequestOptions::new(&key, &name, ca.cert());
    opts.challenge = Some("challenge");
    let valid = build_request(&opts).unwrap().der;
    assert!(enrollment::scep::parse_request(&valid, &ca).is_ok());

    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for cut in (0..valid.len()).step_by(7) {
        assert!(enrollment::scep::parse_request(&valid[..cut], &ca).is_err());
    }
    for _ in 0..1500 {
        let mut mutated = valid.clone();
        for _ in 0..(1 + rng.next() % 3) {
            let at = (rng.next() as usize) % mutated.len();
            mutated[at] = rng.next() as u8;
        }
        let _ = enrollment::scep::parse_request(&mutated, &ca);
    }
    for _ in 0..500 {
        let len = (rng.next() % 512) as usize;
        let mut random: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(first) = random.first_mut() {
            *first = 0x30; // looks like a SEQUENCE, to get past the first check
        }
        let _ = enrollment::scep::parse_request(&random, &ca);
    }
}
