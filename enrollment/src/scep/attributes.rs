//! The SCEP signed attributes (RFC 8894 §3.2.1): reading them leniently from any
//! client, writing them the way the strictest clients read them.

use der::asn1::{Any, ObjectIdentifier as Oid, OctetStringRef, SetOfVec, Utf8StringRef};
use der::asn1::{Ia5StringRef, PrintableStringRef};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::attr::Attribute;

use super::algorithms::oid;

/// The SCEP attributes a PKIMessage may carry; all optional here, the caller
/// decides which its message type requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PkiAttributes {
    pub message_type: Option<String>,
    pub pki_status: Option<String>,
    pub fail_info: Option<String>,
    pub transaction_id: Option<String>,
    pub sender_nonce: Option<Vec<u8>>,
    pub recipient_nonce: Option<Vec<u8>>,
}

impl PkiAttributes {
    /// Picks the SCEP attributes out of a SignerInfo's signed attributes. A value of
    /// an unexpected type reads as absent.
    pub fn read(attrs: &[Attribute]) -> Self {
        let mut out = PkiAttributes::default();
        for attr in attrs.iter() {
            let Some(value) = single_value(attr) else {
                continue;
            };
            match attr.oid {
                oid::SCEP_MESSAGE_TYPE => out.message_type = text(value),
                oid::SCEP_PKI_STATUS => out.pki_status = text(value),
                oid::SCEP_FAIL_INFO => out.fail_info = text(value),
                oid::SCEP_TRANSACTION_ID => out.transaction_id = text(value),
                oid::SCEP_SENDER_NONCE => out.sender_nonce = octets(value),
                oid::SCEP_RECIPIENT_NONCE => out.recipient_nonce = octets(value),
                _ => {}
            }
        }
        out
    }

    /// The attributes to sign. The numeric ones are PrintableStrings, as RFC 8894
    /// says and as openssl-based clients (certmonger) insist on.
    pub fn to_attributes(&self) -> der::Result<Vec<Attribute>> {
        let mut out = Vec::new();
        let texts = [
            (oid::SCEP_MESSAGE_TYPE, &self.message_type),
            (oid::SCEP_PKI_STATUS, &self.pki_status),
            (oid::SCEP_FAIL_INFO, &self.fail_info),
            (oid::SCEP_TRANSACTION_ID, &self.transaction_id),
        ];
        for (oid, value) in texts {
            if let Some(value) = value {
                out.push(attribute(oid, string_value(value)?)?);
            }
        }
        let nonces = [
            (oid::SCEP_SENDER_NONCE, &self.sender_nonce),
            (oid::SCEP_RECIPIENT_NONCE, &self.recipient_nonce),
        ];
        for (oid, value) in nonces {
            if let Some(value) = value {
                out.push(attribute(
                    oid,
                    Any::encode_from(&OctetStringRef::new(value)?)?,
                )?);
            }
        }
        Ok(out)
    }
}

/// The attributes in the contents of a `[0] IMPLICIT SET OF Attribute` field (as in
/// a SignerInfo or a CSR), read one by one: no re-sorting, no duplicate check.
pub(crate) fn decode_attributes(contents: &[u8]) -> der::Result<Vec<Attribute>> {
    let mut reader = SliceReader::new(contents)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(Attribute::decode(&mut reader)?);
    }
    Ok(out)
}

/// The tag of an IMPLICIT constructed context-specific field `[n]`.
pub(crate) fn context_tag(n: u8) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::new(n),
    }
}

pub(crate) fn attribute(oid: Oid, value: Any) -> der::Result<Attribute> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

/// A PrintableString when the text allows it (RFC 8894's type for transaction IDs),
/// else UTF8String rather than failing on an unusual client-chosen ID.
pub(crate) fn string_value(text: &str) -> der::Result<Any> {
    match PrintableStringRef::new(text) {
        Ok(p) => Any::encode_from(&p),
        Err(_) => Any::encode_from(&Utf8StringRef::new(text)?),
    }
}

/// The value of an attribute that must have exactly one (a SET OF with more is
/// ambiguous, so it is ignored).
pub(crate) fn single_value(attr: &Attribute) -> Option<&Any> {
    let mut values = attr.values.iter();
    match (values.next(), values.next()) {
        (Some(v), None) => Some(v),
        _ => None,
    }
}

/// Text of any string type clients use for SCEP and PKCS#9 attributes.
pub(crate) fn text(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::PrintableString => PrintableStringRef::new(bytes).ok().map(|s| s.to_string()),
        Tag::Ia5String => Ia5StringRef::new(bytes).ok().map(|s| s.to_string()),
        Tag::Utf8String => std::str::from_utf8(bytes).ok().map(str::to_owned),
        // T.61 in theory; in practice clients put Latin-1 there.
        Tag::TeletexString => Some(bytes.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            let pairs = bytes.chunks_exact(2);
            if !pairs.remainder().is_empty() {
                return None;
            }
            let units: Vec<u16> = pairs.map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn octets(value: &Any) -> Option<Vec<u8>> {
    (value.tag() == Tag::OctetString).then(|| value.value().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn round_trip() {
        let attrs = PkiAttributes {
            message_type: Some("19".into()),
            transaction_id: Some("ABC+/=".into()),
            sender_nonce: Some(vec![1, 2, 3]),
            recipient_nonce: Some(vec![4]),
            pki_status: Some("0".into()),
            fail_info: None,
        };
        let mut set = SetOfVec::new();
        for a in attrs.to_attributes().unwrap() {
            set.insert(a).unwrap();
        }
        let der = set.to_der().unwrap();
        let back = PkiAttributes::read(&decode_attributes(&der[2..]).unwrap());
        assert_eq!(back, attrs);
    }

    #[test]
    fn transaction_ids_outside_printable_string_survive() {
        let v = string_value("ID_with_underscore").unwrap();
        assert_eq!(v.tag(), Tag::Utf8String);
        assert_eq!(text(&v).unwrap(), "ID_with_underscore");
        let bmp = Any::new(Tag::BmpString, vec![0, b'h', 0, b'i']).unwrap();
        assert_eq!(text(&bmp).unwrap(), "hi");
    }
}
