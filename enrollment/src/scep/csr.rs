//! PKCS#10 request attributes, which openssl does not expose: the challenge
//! password (RFC 2985 §5.4.1) is how a device proves it may enroll.

use der::asn1::{AnyRef, SetOfVec};
use der::{Decode, Tag, Tagged};
use x509_cert::attr::Attribute;

use super::algorithms::oid;
use super::attributes::{
    attribute, context_tag, decode_attributes, single_value, string_value, text,
};

/// The challengePassword of a DER CSR. The request is walked element by element so
/// that nothing but the attributes has to be strict DER.
pub(crate) fn challenge_password(csr_der: &[u8]) -> der::Result<Option<String>> {
    let request: Vec<AnyRef<'_>> = Vec::from_der(csr_der)?;
    let info = request.first().ok_or_else(|| Tag::Sequence.value_error())?;
    let fields: Vec<AnyRef<'_>> = info.decode_as()?;
    // version, subject, subjectPKInfo, then attributes as [0] IMPLICIT SET OF.
    let Some(attributes) = fields.iter().find(|f| f.tag() == context_tag(0)) else {
        return Ok(None);
    };
    Ok(decode_attributes(attributes.value())?
        .iter()
        .find(|a| a.oid == oid::CHALLENGE_PASSWORD)
        .and_then(single_value)
        .and_then(text))
}

/// The attribute set of a CSR carrying `challenge`, as the client builds it.
pub(crate) fn challenge_attributes(challenge: Option<&str>) -> der::Result<SetOfVec<Attribute>> {
    let mut attrs = SetOfVec::new();
    if let Some(challenge) = challenge {
        attrs.insert(attribute(
            oid::CHALLENGE_PASSWORD,
            string_value(challenge)?,
        )?)?;
    }
    Ok(attrs)
}
