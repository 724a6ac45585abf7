//! The short way to check an `Mdm-Signature`: a detached CMS SignedData whose signer
//! certificate's chain verified before, checked with that certificate's cached key.
//!
//! Why: a device sends a signed request every time it connects, and openssl's
//! `PKCS7_verify` costs most of an idle connect (decoding every certificate of the
//! message, re-encoding the signed attributes, fetching algorithms under a lock on
//! each call). The checks themselves are few (RFC 5652 §5.4, §5.6): the signer the
//! SignerInfo names, the messageDigest attribute against the body's digest, and the
//! signature over the DER of the signed attributes (or over the body when there are
//! none). Those are made here, on the bytes as received, with the public key and the
//! issuer and serial number kept from the certificate whose chain verified.
//!
//! Only a success is an answer. Anything unusual (BER, another signer identifier, a
//! signature algorithm other than RSA PKCS#1 v1.5 or ECDSA, a failed check) returns
//! None, and the caller goes the full way through openssl, which gives the verdict
//! and the error. So this path can only accept what the full path accepts.

use super::{VerifiedChains, VerifiedIdentity};
use crate::scep::DigestAlgorithm;
use der::asn1::{AnyRef, ObjectIdentifier};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use openssl::md::{Md, MdRef};
use openssl::md_ctx::MdCtx;
use openssl::pkey::{Id, PKey, Public};
use openssl::x509::X509;
use std::sync::{Arc, OnceLock};

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// What the short way needs of a certificate whose chain verified: its public key,
/// and the DER of its issuer and serial number, which a SignerInfo names it by.
pub struct SignerKey {
    key: PKey<Public>,
    issuer_and_serial: Vec<u8>,
}

impl SignerKey {
    /// None for a certificate not read as plain DER here (then it has no short way).
    pub fn of(cert: &X509) -> Option<Self> {
        let der = cert.to_der().ok()?;
        let certificate = AnyRef::from_der(&der).ok()?;
        let parts = elements(certificate.value())?;
        let tbs = elements(parts.first()?.0.value())?;
        // [0] version is optional: the serial number follows it when present.
        let at = usize::from(tbs.first()?.0.tag() == context(0));
        let serial = tbs.get(at)?;
        let issuer = tbs.get(at + 2)?;
        if serial.0.tag() != Tag::Integer || issuer.0.tag() != Tag::Sequence {
            return None;
        }
        Some(SignerKey {
            key: cert.public_key().ok()?,
            issuer_and_serial: [issuer.1, serial.1].concat(),
        })
    }
}

/// A signer whose chain verified, with the key it signs with.
pub(super) type Signer = (Arc<VerifiedIdentity>, Arc<SignerKey>);

/// The identity of the request's signer, if the short way proves it.
///
/// Every element is taken with the tag RFC 5652 gives it: openssl's parser refuses
/// any other (the `mdm_signature` fuzz target found a SignerInfo whose
/// digestAlgorithm was tagged SET, which a tag-blind walk took for its SEQUENCE).
/// `first_seen` is asked for a signer whose chain is not among `chains`: given the
/// carried certificate's DER and fingerprint, it verifies its chain (or says None).
pub(super) fn verify(
    der: &[u8],
    body: &[u8],
    chains: &dyn VerifiedChains,
    first_seen: &dyn Fn(&[u8], &str) -> Option<Signer>,
    now: i64,
) -> Option<Arc<VerifiedIdentity>> {
    let content_info = AnyRef::from_der(der).ok()?;
    let content_info = contents(&content_info, Tag::Sequence)?;
    let [(content_type, _), (explicit, _)] = content_info.as_slice() else {
        return None;
    };
    if oid(content_type)? != SIGNED_DATA {
        return None;
    }
    let explicit = contents(explicit, context(0))?;
    let [(signed_data, _)] = explicit.as_slice() else {
        return None;
    };
    let signed_data = contents(signed_data, Tag::Sequence)?;
    // version, digestAlgorithms, encapContentInfo, [0] certificates, signerInfos:
    // detached (no eContent), carrying its certificates, without CRLs.
    let [(version, _), (algorithms, _), (encapsulated, _), (certificates, _), (signer_infos, _)] =
        signed_data.as_slice()
    else {
        return None;
    };
    if !is_integer(version) {
        return None;
    }
    let encapsulated = contents(encapsulated, Tag::Sequence)?;
    if encapsulated.len() != 1 || oid(&encapsulated[0].0)? != DATA {
        return None;
    }
    // openssl digests the body with each announced algorithm and looks the signer's
    // up among them: all must be known, and the signer's must be one.
    let announced = contents(algorithms, Tag::Set)?
        .iter()
        .map(|(algorithm, _)| digest_of(algorithm).map(|_| algorithm_oid(algorithm)))
        .collect::<Option<Option<Vec<_>>>>()??;
    let signer_infos = contents(signer_infos, Tag::Set)?;
    let [(signer_info, _)] = signer_infos.as_slice() else {
        return None;
    };

    // version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature;
    // no unsigned attributes.
    let fields = contents(signer_info, Tag::Sequence)?;
    let (attributes, next) = match fields.get(3)? {
        (attrs, raw) if attrs.tag() == context(0) => (Some((attrs, *raw)), 4),
        _ => (None, 3),
    };
    if fields.len() != next + 2 || !is_integer(&fields[0].0) {
        return None;
    }
    // The signer is the carried certificate the SignerInfo names by issuer and
    // serial number, if its chain verified here before.
    let (sid, _) = &fields[1];
    if sid.tag() != Tag::Sequence {
        return None;
    }
    // Exactly one carried certificate, the signer's, as devices send it: openssl
    // takes the first certificate that matches the SignerInfo, so another copy
    // carried beside it would make the two ways look at different keys.
    let certificates = contents(certificates, context(0))?;
    let [(certificate, raw)] = certificates.as_slice() else {
        return None;
    };
    if certificate.tag() != Tag::Sequence {
        return None;
    }
    let sha256 = digest_of_name(DigestAlgorithm::Sha256)?;
    let fingerprint = hex::encode(digest(sha256, raw)?);
    let (identity, key) = chains
        .signer(&fingerprint, now)
        .or_else(|| first_seen(raw, &fingerprint))?;
    if sid.value() != key.issuer_and_serial.as_slice() {
        return None;
    }
    let md = digest_of(&fields[2].0)?;
    if !announced.contains(&algorithm_oid(&fields[2].0)?) {
        return None;
    }
    let (signature_algorithm, _) = &fields[next];
    let (signature, _) = &fields[next + 1];
    if signature.tag() != Tag::OctetString || !key_fits(signature_algorithm, &key.key)? {
        return None;
    }
    let set;
    let signed = match attributes {
        Some((attrs, raw)) => {
            if !message_digest_matches(attrs, md, body)? {
                return None;
            }
            // §5.4: the signature covers the attributes' DER with the SET OF tag,
            // not the [0] IMPLICIT tag they travel under.
            let mut tagged = raw.to_vec();
            tagged[0] = 0x31;
            set = tagged;
            set.as_slice()
        }
        None => body,
    };
    let mut ctx = MdCtx::new().ok()?;
    ctx.digest_verify_init(Some(md), &key.key).ok()?;
    ctx.digest_verify(signed, signature.value())
        .ok()?
        .then_some(identity)
}

/// The messageDigest attribute equals the body's digest (and contentType, when
/// present, says id-data).
fn message_digest_matches(attributes: &AnyRef<'_>, md: &MdRef, body: &[u8]) -> Option<bool> {
    let mut matched = None;
    for (attribute, _) in elements(attributes.value())? {
        let parts = contents(&attribute, Tag::Sequence)?;
        let [(kind, _), (values, _)] = parts.as_slice() else {
            return None;
        };
        let values = contents(values, Tag::Set)?;
        let [(value, _)] = values.as_slice() else {
            return None;
        };
        if !plain(value) {
            return None;
        }
        match oid(kind)? {
            // openssl reads the first one: a second, whatever it says, is left to it.
            MESSAGE_DIGEST if value.tag() == Tag::OctetString && matched.is_none() => {
                matched = Some(digest(md, body)? == value.value());
            }
            MESSAGE_DIGEST => return None,
            CONTENT_TYPE if oid(value)? != DATA => return None,
            _ => {}
        }
    }
    matched
}

/// Whether the signature algorithm is one this path checks (RSA PKCS#1 v1.5 or
/// ECDSA) and fits the key; None for any other (the full path decides).
fn key_fits(algorithm: &AnyRef<'_>, key: &PKey<Public>) -> Option<bool> {
    const RSA_PKCS1: [&str; 5] = [
        "1.2.840.113549.1.1.1",  // rsaEncryption
        "1.2.840.113549.1.1.5",  // sha1WithRSAEncryption
        "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
        "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
        "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
    ];
    const ECDSA: [&str; 4] = [
        "1.2.840.10045.4.1",   // ecdsa-with-SHA1
        "1.2.840.10045.4.3.2", // ecdsa-with-SHA256
        "1.2.840.10045.4.3.3", // ecdsa-with-SHA384
        "1.2.840.10045.4.3.4", // ecdsa-with-SHA512
    ];
    let algorithm = algorithm_oid(algorithm)?.to_string();
    let family: &[&str] = match key.id() {
        Id::RSA => &RSA_PKCS1,
        Id::EC => &ECDSA,
        _ => return None,
    };
    family.contains(&algorithm.as_str()).then_some(true)
}

/// The digest an AlgorithmIdentifier names, if devices sign with it.
fn digest_of(identifier: &AnyRef<'_>) -> Option<&'static MdRef> {
    digest_of_name(DigestAlgorithm::from_oid(&algorithm_oid(identifier)?)?)
}

/// The pre-fetched digest. Fetched once: OpenSSL 3 otherwise looks the algorithm up,
/// under a lock, on every use.
fn digest_of_name(algorithm: DigestAlgorithm) -> Option<&'static MdRef> {
    static DIGESTS: OnceLock<Option<[Md; 4]>> = OnceLock::new();
    let digests = DIGESTS
        .get_or_init(|| {
            let fetch = |name| Md::fetch(None, name, None).ok();
            Some([
                fetch("SHA1")?,
                fetch("SHA256")?,
                fetch("SHA384")?,
                fetch("SHA512")?,
            ])
        })
        .as_ref()?;
    Some(match algorithm {
        DigestAlgorithm::Sha1 => &digests[0],
        DigestAlgorithm::Sha256 => &digests[1],
        DigestAlgorithm::Sha384 => &digests[2],
        DigestAlgorithm::Sha512 => &digests[3],
    })
}

fn digest(md: &MdRef, data: &[u8]) -> Option<Vec<u8>> {
    let mut ctx = MdCtx::new().ok()?;
    ctx.digest_init(md).ok()?;
    ctx.digest_update(data).ok()?;
    let mut out = vec![0; md.size()];
    ctx.digest_final(&mut out).ok()?;
    Some(out)
}

fn oid(any: &AnyRef<'_>) -> Option<ObjectIdentifier> {
    any.decode_as().ok()
}

/// The algorithm of an AlgorithmIdentifier: a SEQUENCE of the OID and, if any,
/// NULL parameters (what devices send; openssl would read other parameters, which
/// the full way is left to judge).
fn algorithm_oid(identifier: &AnyRef<'_>) -> Option<ObjectIdentifier> {
    match contents(identifier, Tag::Sequence)?.as_slice() {
        [(algorithm, _)] => oid(algorithm),
        [(algorithm, _), (parameters, _)]
            if parameters.tag() == Tag::Null && parameters.value().is_empty() =>
        {
            oid(algorithm)
        }
        _ => None,
    }
}

/// An INTEGER in minimal encoding (openssl refuses padded ones).
fn is_integer(any: &AnyRef<'_>) -> bool {
    any.decode_as::<der::asn1::IntRef<'_>>().is_ok()
}

/// An attribute value openssl reads without complaint: the universal primitives it
/// checks (BOOLEAN, NULL, INTEGER, OID, BIT STRING) well encoded; anything else is
/// kept as it came.
fn plain(value: &AnyRef<'_>) -> bool {
    match value.tag() {
        Tag::Boolean => value.decode_as::<bool>().is_ok(),
        Tag::Null => value.value().is_empty(),
        Tag::Integer => is_integer(value),
        Tag::ObjectIdentifier => oid(value).is_some(),
        Tag::BitString => value.decode_as::<der::asn1::BitStringRef<'_>>().is_ok(),
        _ => true,
    }
}

fn context(number: u8) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::new(number),
    }
}

/// The elements inside `any`, if it has this tag.
fn contents<'a>(any: &AnyRef<'a>, tag: Tag) -> Option<Vec<(AnyRef<'a>, &'a [u8])>> {
    if any.tag() != tag {
        return None;
    }
    elements(any.value())
}

/// The DER elements one after another in `bytes`, each with its encoding as it
/// stands there (tag, length and value).
fn elements(bytes: &[u8]) -> Option<Vec<(AnyRef<'_>, &[u8])>> {
    let mut reader = SliceReader::new(bytes).ok()?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        let start = usize::try_from(reader.position()).ok()?;
        let element: AnyRef<'_> = reader.decode().ok()?;
        let end = usize::try_from(reader.position()).ok()?;
        out.push((element, bytes.get(start..end)?));
    }
    Some(out)
}
