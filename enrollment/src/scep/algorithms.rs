//! The algorithms SCEP messages may name, and how each maps onto openssl.

use der::asn1::{Any, ObjectIdentifier as Oid};
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, Id, PKeyRef};
use x509_cert::spki::AlgorithmIdentifierOwned;

pub(crate) mod oid {
    use der::asn1::ObjectIdentifier as Oid;

    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    pub const ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");

    pub const CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    pub const CHALLENGE_PASSWORD: Oid = Oid::new_unwrap("1.2.840.113549.1.9.7");

    pub const SCEP_MESSAGE_TYPE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.2");
    pub const SCEP_PKI_STATUS: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.3");
    pub const SCEP_FAIL_INFO: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.4");
    pub const SCEP_SENDER_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.5");
    pub const SCEP_RECIPIENT_NONCE: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.6");
    pub const SCEP_TRANSACTION_ID: Oid = Oid::new_unwrap("2.16.840.1.113733.1.9.7");

    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    pub const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
    pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
    pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");

    pub const SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

    pub const DES_CBC: Oid = Oid::new_unwrap("1.3.14.3.2.7");
    pub const DES_EDE3_CBC: Oid = Oid::new_unwrap("1.2.840.113549.3.7");
    pub const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
    pub const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
    pub const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
}

/// Digest of a PKIMessage's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub(crate) fn from_oid(oid: &Oid) -> Option<Self> {
        Some(match *oid {
            oid::SHA1 => DigestAlgorithm::Sha1,
            oid::SHA256 => DigestAlgorithm::Sha256,
            oid::SHA384 => DigestAlgorithm::Sha384,
            oid::SHA512 => DigestAlgorithm::Sha512,
            _ => return None,
        })
    }

    pub(crate) fn oid(self) -> Oid {
        match self {
            DigestAlgorithm::Sha1 => oid::SHA1,
            DigestAlgorithm::Sha256 => oid::SHA256,
            DigestAlgorithm::Sha384 => oid::SHA384,
            DigestAlgorithm::Sha512 => oid::SHA512,
        }
    }

    pub(crate) fn message_digest(self) -> MessageDigest {
        match self {
            DigestAlgorithm::Sha1 => MessageDigest::sha1(),
            DigestAlgorithm::Sha256 => MessageDigest::sha256(),
            DigestAlgorithm::Sha384 => MessageDigest::sha384(),
            DigestAlgorithm::Sha512 => MessageDigest::sha512(),
        }
    }

    /// With NULL parameters, as openssl writes them: RFC 5754 lets readers accept
    /// either form, and the strictest SCEP clients are openssl-based.
    pub(crate) fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: Some(Any::null()),
        }
    }
}

/// The symmetric cipher of an EnvelopedData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    /// Single DES: read only, because micromdm's `scepclient` (Go pkcs7's default)
    /// still encrypts requests with it. Never used for replies.
    DesCbc,
    /// Read only: for clients that ignore the `AES` capability.
    DesEde3Cbc,
    Aes128Cbc,
    Aes192Cbc,
    Aes256Cbc,
}

impl ContentCipher {
    pub(crate) fn from_oid(oid: &Oid) -> Option<Self> {
        Some(match *oid {
            oid::DES_CBC => ContentCipher::DesCbc,
            oid::DES_EDE3_CBC => ContentCipher::DesEde3Cbc,
            oid::AES128_CBC => ContentCipher::Aes128Cbc,
            oid::AES192_CBC => ContentCipher::Aes192Cbc,
            oid::AES256_CBC => ContentCipher::Aes256Cbc,
            _ => return None,
        })
    }

    pub(crate) fn key_len(self) -> usize {
        match self {
            ContentCipher::DesCbc => 8,
            ContentCipher::DesEde3Cbc => 24,
            ContentCipher::Aes128Cbc => 16,
            ContentCipher::Aes192Cbc => 24,
            ContentCipher::Aes256Cbc => 32,
        }
    }

    pub(crate) fn iv_len(self) -> usize {
        match self {
            ContentCipher::DesCbc | ContentCipher::DesEde3Cbc => 8,
            _ => 16,
        }
    }

    /// The openssl name, for fetching the implementation.
    pub(crate) fn openssl_name(self) -> &'static str {
        match self {
            ContentCipher::DesCbc => "DES-CBC",
            ContentCipher::DesEde3Cbc => "DES-EDE3-CBC",
            ContentCipher::Aes128Cbc => "AES-128-CBC",
            ContentCipher::Aes192Cbc => "AES-192-CBC",
            ContentCipher::Aes256Cbc => "AES-256-CBC",
        }
    }

    /// What a reply to a request encrypted with `self` is encrypted with: the same AES
    /// the client chose, else AES-256 (openssl 3 based clients cannot decrypt DES
    /// without its legacy provider, and every SCEP client we know decrypts AES).
    pub fn for_reply(self) -> ContentCipher {
        match self {
            ContentCipher::Aes128Cbc | ContentCipher::Aes192Cbc | ContentCipher::Aes256Cbc => self,
            ContentCipher::DesCbc | ContentCipher::DesEde3Cbc => ContentCipher::Aes256Cbc,
        }
    }

    pub(crate) fn symm(self) -> openssl::symm::Cipher {
        match self {
            ContentCipher::DesCbc => openssl::symm::Cipher::des_cbc(),
            ContentCipher::DesEde3Cbc => openssl::symm::Cipher::des_ede3_cbc(),
            ContentCipher::Aes128Cbc => openssl::symm::Cipher::aes_128_cbc(),
            ContentCipher::Aes192Cbc => openssl::symm::Cipher::aes_192_cbc(),
            ContentCipher::Aes256Cbc => openssl::symm::Cipher::aes_256_cbc(),
        }
    }
}

/// The SignerInfo `signatureAlgorithm` for a key, written the way openssl writes it
/// (plain `rsaEncryption` for RSA: the digest is named by `digestAlgorithm`).
pub(crate) fn signature_identifier<T: HasPublic>(
    key: &PKeyRef<T>,
    digest: DigestAlgorithm,
) -> Option<AlgorithmIdentifierOwned> {
    match key.id() {
        Id::RSA => Some(AlgorithmIdentifierOwned {
            oid: oid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        }),
        Id::EC => Some(AlgorithmIdentifierOwned {
            oid: match digest {
                DigestAlgorithm::Sha1 => oid::ECDSA_WITH_SHA1,
                DigestAlgorithm::Sha256 => oid::ECDSA_WITH_SHA256,
                DigestAlgorithm::Sha384 => oid::ECDSA_WITH_SHA384,
                DigestAlgorithm::Sha512 => oid::ECDSA_WITH_SHA512,
            },
            parameters: None,
        }),
        _ => None,
    }
}

/// The PKCS#10 signature algorithm for a key, always with SHA-256.
pub(crate) fn csr_signature_identifier<T: HasPublic>(
    key: &PKeyRef<T>,
) -> Option<AlgorithmIdentifierOwned> {
    match key.id() {
        Id::RSA => Some(AlgorithmIdentifierOwned {
            oid: oid::SHA256_WITH_RSA,
            parameters: Some(Any::null()),
        }),
        Id::EC => signature_identifier(key, DigestAlgorithm::Sha256),
        _ => None,
    }
}
