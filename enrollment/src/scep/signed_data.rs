//! SignedData (RFC 5652 §5), the outer layer of every PKIMessage.
//!
//! Signatures are checked by openssl's PKCS#7 code, which verifies over the signed
//! attributes exactly as received and reads BER; the attributes themselves are read
//! from openssl's DER re-encoding, since openssl exposes no accessor for them.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, AnyRef, OctetString, OctetStringRef, SetOfVec};
use der::{Decode, Encode, Tagged};
use openssl::hash::hash;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKeyRef, Private};
use openssl::sign::Signer;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use super::algorithms::{oid, signature_identifier, DigestAlgorithm};
use super::attributes::{attribute, context_tag, decode_attributes, PkiAttributes};

/// Why a SignedData could not be read or verified.
#[derive(Debug)]
pub(crate) enum SignedDataError {
    /// Not a single-signer SignedData we can parse.
    Malformed(String),
    /// A digest we do not accept.
    UnsupportedDigest(String),
    /// The signature or message digest does not verify.
    BadSignature,
    /// The signer's certificate is not among those it may be.
    UnknownSigner,
}

/// A SignedData parsed but not yet verified: enough to answer even a bad request.
pub(crate) struct Parsed {
    p7: Pkcs7,
    /// Where the signer's certificate was found, for the verification to use too.
    lookup: (Stack<X509>, Pkcs7Flags),
    pub signer: X509,
    pub attributes: PkiAttributes,
    /// `None` when the signer used a digest we refuse.
    pub digest: Option<DigestAlgorithm>,
    pub digest_name: String,
}

impl Parsed {
    /// Reads a SignedData with exactly one signer, whose certificate it must carry
    /// (or, with `signer_cert`, whose certificate must be that one).
    pub fn read(der: &[u8], signer_cert: Option<&X509>) -> Result<Parsed, SignedDataError> {
        let p7 = Pkcs7::from_der(der)
            .map_err(|e| SignedDataError::Malformed(format!("not PKCS#7: {e}")))?;
        if p7.type_().map(|t| t.nid()) != Some(openssl::nid::Nid::PKCS7_SIGNED) {
            return Err(SignedDataError::Malformed("not a SignedData".into()));
        }
        let normalized = p7
            .to_der()
            .map_err(|e| SignedDataError::Malformed(e.to_string()))?;
        let (digest_alg, signed_attrs) = signer_info(&normalized)?;

        let lookup = signer_lookup(signer_cert)?;
        let signers = p7
            .signers(&lookup.0, lookup.1)
            .map_err(|_| SignedDataError::UnknownSigner)?;
        let signer = signers
            .get(0)
            .ok_or(SignedDataError::UnknownSigner)?
            .to_owned();

        Ok(Parsed {
            p7,
            lookup,
            signer,
            attributes: PkiAttributes::read(&signed_attrs),
            digest: DigestAlgorithm::from_oid(&digest_alg.oid),
            digest_name: digest_alg.oid.to_string(),
        })
    }

    /// Checks the signature (over the signed attributes, whose messageDigest must
    /// match the content) and returns the encapsulated content and the digest used.
    pub fn verify(&self) -> Result<(Vec<u8>, DigestAlgorithm), SignedDataError> {
        let digest = self
            .digest
            .ok_or_else(|| SignedDataError::UnsupportedDigest(self.digest_name.clone()))?;
        let (certs, flags) = &self.lookup;
        // The signer's certificate is judged by the caller (self-signed for PKCSReq,
        // issued by us for RenewalReq), so no chain building here.
        let store = X509StoreBuilder::new()
            .map_err(|e| SignedDataError::Malformed(e.to_string()))?
            .build();
        let mut content = Vec::new();
        self.p7
            .verify(
                certs,
                &store,
                None,
                Some(&mut content),
                *flags | Pkcs7Flags::NOVERIFY | Pkcs7Flags::BINARY,
            )
            .map_err(|_| SignedDataError::BadSignature)?;
        Ok((content, digest))
    }
}

/// The certificates to find the signer among, and how: only `signer_cert` when
/// given, else the ones the message carries.
fn signer_lookup(signer_cert: Option<&X509>) -> Result<(Stack<X509>, Pkcs7Flags), SignedDataError> {
    let mut certs = Stack::new().map_err(|e| SignedDataError::Malformed(e.to_string()))?;
    match signer_cert {
        Some(cert) => {
            certs
                .push(cert.clone())
                .map_err(|e| SignedDataError::Malformed(e.to_string()))?;
            Ok((certs, Pkcs7Flags::NOINTERN))
        }
        None => Ok((certs, Pkcs7Flags::empty())),
    }
}

/// What is needed of the one SignerInfo of a DER SignedData: its digest algorithm
/// and signed attributes. Both the SignedData and the SignerInfo are walked as
/// sequences of opaque elements: the certificates and the signer's serial number
/// are the client's business and not always strict DER (certmonger's are not), and
/// openssl has already matched the signer to its certificate.
fn signer_info(der: &[u8]) -> Result<(AlgorithmIdentifierOwned, Vec<Attribute>), SignedDataError> {
    let malformed = |e: der::Error| SignedDataError::Malformed(e.to_string());
    let info = ContentInfo::from_der(der).map_err(malformed)?;
    let fields: Vec<AnyRef<'_>> = info.content.decode_as().map_err(malformed)?;
    let last = fields
        .last()
        .ok_or_else(|| SignedDataError::Malformed("empty SignedData".into()))?;
    let signer_infos: SetOfVec<AnyRef<'_>> = last.decode_as().map_err(malformed)?;
    let mut infos = signer_infos.iter();
    let signer_info = match (infos.next(), infos.next()) {
        (Some(info), None) => info,
        _ => {
            return Err(SignedDataError::Malformed(
                "a PKIMessage has exactly one signer".into(),
            ))
        }
    };
    // version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature
    let fields: Vec<AnyRef<'_>> = signer_info.decode_as().map_err(malformed)?;
    let digest = fields
        .get(2)
        .ok_or_else(|| SignedDataError::Malformed("truncated SignerInfo".into()))?
        .decode_as::<AlgorithmIdentifierOwned>()
        .map_err(malformed)?;
    let attributes = match fields.get(3).filter(|f| f.tag() == context_tag(0)) {
        Some(attrs) => decode_attributes(attrs.value()).map_err(malformed)?,
        None => Vec::new(),
    };
    Ok((digest, attributes))
}

/// Builds a DER ContentInfo holding a SignedData over `content` (encapsulated as
/// id-data), signed by `key`/`cert` with the SCEP `attributes` plus contentType and
/// messageDigest, carrying `cert` and `extra_certs`.
pub(crate) fn sign(
    content: &[u8],
    attributes: &PkiAttributes,
    cert: &X509,
    key: &PKeyRef<Private>,
    digest: DigestAlgorithm,
    extra_certs: &[&X509],
) -> Result<Vec<u8>, BuildError> {
    let signer = to_certificate(cert)?;
    let md = digest.message_digest();
    let content_digest = hash(md, content)?;

    let mut signed_attrs: Attributes = SetOfVec::new();
    signed_attrs.insert(attribute(oid::CONTENT_TYPE, Any::encode_from(&oid::DATA)?)?)?;
    signed_attrs.insert(attribute(
        oid::MESSAGE_DIGEST,
        Any::encode_from(&OctetStringRef::new(&content_digest)?)?,
    )?)?;
    for attr in attributes.to_attributes()? {
        signed_attrs.insert(attr)?;
    }
    // RFC 5652 §5.4: the signature covers the attributes' DER as a SET (tag 0x31),
    // not as the [0] IMPLICIT field they are carried in.
    let mut signer_ctx = Signer::new(md, key)?;
    signer_ctx.update(&signed_attrs.to_der()?)?;
    let signature = signer_ctx.sign_to_vec()?;
    let signature_algorithm = signature_identifier(key, digest)
        .ok_or_else(|| BuildError("the signing key is neither RSA nor EC".into()))?;

    let info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: signer.tbs_certificate.issuer.clone(),
            serial_number: signer.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest.identifier(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm,
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(digest.identifier())?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(info)?;

    let mut certs = vec![signer];
    for extra in extra_certs {
        certs.push(to_certificate(extra)?);
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: Some(Any::encode_from(&OctetStringRef::new(content)?)?),
        },
        certificates: Some(certificate_set(certs)?),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    wrap(oid::SIGNED_DATA, &signed)
}

/// A "certs-only" degenerate SignedData (RFC 8894 §3.4): no content, no signers.
pub(crate) fn certs_only(certs: &[&X509]) -> Result<Vec<u8>, BuildError> {
    let certs = certs
        .iter()
        .map(|c| to_certificate(c))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: None,
        },
        certificates: Some(certificate_set(certs)?),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    wrap(oid::SIGNED_DATA, &signed)
}

/// The certificates of a certs-only SignedData, in the order they are encoded.
pub(crate) fn read_certs_only(der: &[u8]) -> Result<Vec<X509>, BuildError> {
    let p7 = Pkcs7::from_der(der)?;
    let certs = p7
        .signed()
        .and_then(|s| s.certificates())
        .ok_or_else(|| BuildError("no certificates in the degenerate SignedData".into()))?;
    Ok(certs.iter().map(|c| c.to_owned()).collect())
}

pub(crate) fn wrap<T: der::EncodeValue + der::Tagged>(
    content_type: der::asn1::ObjectIdentifier,
    content: &T,
) -> Result<Vec<u8>, BuildError> {
    let info = ContentInfo {
        content_type,
        content: Any::encode_from(content)?,
    };
    Ok(info.to_der()?)
}

fn certificate_set(certs: Vec<Certificate>) -> Result<CertificateSet, BuildError> {
    let mut set = SetOfVec::new();
    for cert in certs {
        set.insert(CertificateChoices::Certificate(cert))?;
    }
    Ok(CertificateSet(set))
}

pub(crate) fn to_certificate(cert: &X509) -> Result<Certificate, BuildError> {
    Ok(Certificate::from_der(&cert.to_der()?)?)
}

/// A message could not be encoded: a bug or an unusable key, never the peer's fault.
#[derive(Debug)]
pub(crate) struct BuildError(pub String);

impl From<der::Error> for BuildError {
    fn from(e: der::Error) -> Self {
        BuildError(format!("DER encoding: {e}"))
    }
}

impl From<openssl::error::ErrorStack> for BuildError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        BuildError(format!("openssl: {e}"))
    }
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
