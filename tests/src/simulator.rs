//! An Apple device, simulated: it holds an identity key and certificate, signs every
//! request body into an `Mdm-Signature` header as iOS and macOS do, and walks the
//! protocol: Authenticate -> TokenUpdate -> Idle -> command results -> CheckOut.

use crate::artifacts;
use enrollment::identity::testing::{sign_detached, TestCa};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use plist::{Dictionary, Value};
use reqwest::StatusCode;

pub const CHECKIN_PATH: &str = "/mdm/checkin";
pub const SERVER_PATH: &str = "/mdm/connect";

/// What the server answered.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A command the device received.
#[derive(Debug, Clone)]
pub struct Received {
    pub uuid: String,
    pub request_type: String,
    /// The inner `Command` dictionary.
    pub command: Dictionary,
    pub raw: Vec<u8>,
}

/// How a request is signed (tests of refusals use the odd ones).
pub enum Signing<'a> {
    Own,
    None,
    With(&'a PKey<Private>, &'a X509),
    Header(String),
    ClientCert(&'a X509),
}

pub struct SimDevice {
    pub udid: String,
    pub serial: String,
    pub product_name: String,
    /// Apple's schema name for the OS: "iOS" or "macOS".
    pub platform: &'static str,
    pub key: PKey<Private>,
    pub cert: X509,
    pub push_token: Vec<u8>,
    pub push_magic: String,
    pub unlock_token: Vec<u8>,
    base_url: String,
    http: reqwest::Client,
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    openssl::rand::rand_bytes(&mut b).unwrap();
    b
}

impl SimDevice {
    /// An iPhone with a fresh identity certificate from `ca`.
    pub fn iphone(base_url: &str, ca: &TestCa) -> Self {
        Self::new(base_url, ca, "iPhone15,2", "iOS")
    }

    pub fn mac(base_url: &str, ca: &TestCa) -> Self {
        Self::new(base_url, ca, "MacBookPro18,3", "macOS")
    }

    pub fn new(base_url: &str, ca: &TestCa, product_name: &str, platform: &'static str) -> Self {
        let udid = uuid::Uuid::new_v4().to_string().to_uppercase();
        let (key, cert) = ca.issue(&format!("device {udid}"));
        Self::with_identity(base_url, udid, key, cert, product_name, platform)
    }

    pub fn with_identity(
        base_url: &str,
        udid: String,
        key: PKey<Private>,
        cert: X509,
        product_name: &str,
        platform: &'static str,
    ) -> Self {
        SimDevice {
            serial: format!("SN{}", &hex::encode(random_bytes(5)).to_uppercase()),
            udid,
            product_name: product_name.into(),
            platform,
            key,
            cert,
            push_token: random_bytes(32),
            push_magic: uuid::Uuid::new_v4().to_string().to_uppercase(),
            unlock_token: random_bytes(48),
            base_url: base_url.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Talks HTTPS trusting only `roots` (what the enrollment profile installed), with
    /// certificate and host name verification on.
    pub fn trusting(mut self, roots: &[X509]) -> Self {
        let mut builder = reqwest::Client::builder().tls_built_in_root_certs(false);
        for root in roots {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_der(&root.to_der().unwrap()).unwrap(),
            );
        }
        self.http = builder.build().unwrap();
        self
    }

    pub fn id_fields(&self) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("UDID".into(), self.udid.clone().into());
        d
    }

    pub async fn send(&self, path: &str, body: Vec<u8>, signing: Signing<'_>) -> Reply {
        let mut req = self
            .http
            .put(format!("{}{path}", self.base_url))
            .header("Content-Type", "application/x-apple-aspen-mdm-checkin");
        match signing {
            Signing::Own => {
                req = req.header("Mdm-Signature", sign_detached(&self.key, &self.cert, &body))
            }
            Signing::With(k, c) => req = req.header("Mdm-Signature", sign_detached(k, c, &body)),
            Signing::Header(h) => req = req.header("Mdm-Signature", h),
            Signing::ClientCert(cert) => {
                use base64::Engine;
                let der = cert.to_der().unwrap();
                req = req.header(
                    "Client-Cert",
                    format!(
                        ":{}:",
                        base64::engine::general_purpose::STANDARD.encode(der)
                    ),
                )
            }
            Signing::None => {}
        }
        let resp = req.body(body).send().await.expect("device request");
        Reply {
            status: resp.status(),
            body: resp.bytes().await.unwrap().to_vec(),
        }
    }

    fn xml(dict: Dictionary) -> Vec<u8> {
        plist_xml(Value::Dictionary(dict))
    }

    /// Sends a check-in message (MessageType plus identity fields plus `fields`).
    pub async fn checkin(&self, message_type: &str, fields: Dictionary) -> Reply {
        let mut d = self.id_fields();
        d.insert("MessageType".into(), message_type.into());
        for (k, v) in fields {
            d.insert(k, v);
        }
        let user_channel = d.contains_key("UserID");
        let body = Self::xml(d);
        // Apple's schema does not fit a few messages real devices send: it leaves out
        // the UDID of bootstrap-token messages, and for macOS it requires user keys
        // (UserLongName) even on the device channel, which has no user. Those are
        // not written for the schema check.
        let schema_gap = matches!(message_type, "SetBootstrapToken" | "GetBootstrapToken")
            || (matches!(message_type, "TokenUpdate" | "DeclarativeManagement")
                && self.platform == "macOS"
                && !user_channel);
        if !schema_gap {
            artifacts::write_apple(
                self.platform,
                &format!("checkin-{message_type}.plist"),
                &body,
            );
        }
        self.send(CHECKIN_PATH, body, Signing::Own).await
    }

    pub async fn authenticate(&self) -> Reply {
        let mut d = Dictionary::new();
        d.insert("Topic".into(), "com.apple.mgmt.External.test-topic".into());
        d.insert("SerialNumber".into(), self.serial.clone().into());
        if self.platform == "macOS" {
            // Macs identify by model; iPhones by product name and OS version.
            d.insert("Model".into(), self.product_name.clone().into());
            d.insert("ModelName".into(), "MacBook Pro".into());
            d.insert(
                "DeviceName".into(),
                format!("Town hall {}", &self.serial).into(),
            );
        } else {
            d.insert("ProductName".into(), self.product_name.clone().into());
            d.insert("OSVersion".into(), "18.1".into());
            d.insert("BuildVersion".into(), "22B83".into());
        }
        self.checkin("Authenticate", d).await
    }

    pub async fn token_update(&self) -> Reply {
        let mut d = Dictionary::new();
        d.insert("Topic".into(), "com.apple.mgmt.External.test-topic".into());
        d.insert("Token".into(), Value::Data(self.push_token.clone()));
        d.insert("PushMagic".into(), self.push_magic.clone().into());
        if self.platform == "macOS" {
            d.insert("NotOnConsole".into(), false.into());
        } else {
            d.insert("UnlockToken".into(), Value::Data(self.unlock_token.clone()));
        }
        self.checkin("TokenUpdate", d).await
    }

    /// Authenticate + TokenUpdate, asserting both succeed.
    pub async fn enroll(&self) {
        let a = self.authenticate().await;
        assert_eq!(a.status, StatusCode::OK, "Authenticate: {}", a.text());
        let t = self.token_update().await;
        assert_eq!(t.status, StatusCode::OK, "TokenUpdate: {}", t.text());
    }

    pub async fn check_out(&self) -> Reply {
        let mut d = Dictionary::new();
        d.insert("Topic".into(), "com.apple.mgmt.External.test-topic".into());
        self.checkin("CheckOut", d).await
    }

    /// Sends a report; returns the raw reply.
    pub async fn report_raw(&self, status: &str, uuid: Option<&str>, extra: Dictionary) -> Reply {
        let mut d = self.id_fields();
        d.insert("Status".into(), status.into());
        if let Some(u) = uuid {
            d.insert("CommandUUID".into(), u.into());
        }
        for (k, v) in extra {
            d.insert(k, v);
        }
        let body = Self::xml(d);
        self.send(SERVER_PATH, body, Signing::Own).await
    }

    /// Sends a report and reads the next command, asserting the server said 200.
    pub async fn report(
        &self,
        status: &str,
        uuid: Option<&str>,
        extra: Dictionary,
    ) -> Option<Received> {
        let reply = self.report_raw(status, uuid, extra).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{status} report: {}",
            reply.text()
        );
        if reply.body.is_empty() {
            return None;
        }
        let outer: Dictionary =
            plist::from_bytes(&reply.body).expect("command is a plist dictionary");
        let uuid = outer
            .get("CommandUUID")
            .and_then(Value::as_string)
            .expect("CommandUUID")
            .to_owned();
        let command = outer
            .get("Command")
            .and_then(Value::as_dictionary)
            .expect("Command dictionary")
            .clone();
        let request_type = command
            .get("RequestType")
            .and_then(Value::as_string)
            .expect("RequestType")
            .to_owned();
        artifacts::write_apple(
            self.platform,
            &format!("command-{request_type}.plist"),
            &reply.body,
        );
        Some(Received {
            uuid,
            request_type,
            command,
            raw: reply.body,
        })
    }

    pub async fn idle(&self) -> Option<Received> {
        self.report("Idle", None, Dictionary::new()).await
    }

    pub async fn acknowledge(&self, uuid: &str) -> Option<Received> {
        self.report("Acknowledged", Some(uuid), Dictionary::new())
            .await
    }

    pub async fn acknowledge_with(&self, uuid: &str, result: Dictionary) -> Option<Received> {
        self.report("Acknowledged", Some(uuid), result).await
    }

    pub async fn not_now(&self, uuid: &str) -> Option<Received> {
        self.report("NotNow", Some(uuid), Dictionary::new()).await
    }

    pub async fn error(&self, uuid: &str, code: i64) -> Option<Received> {
        let mut chain = Dictionary::new();
        chain.insert("ErrorCode".into(), Value::Integer(code.into()));
        chain.insert("ErrorDomain".into(), "MCMDMErrorDomain".into());
        chain.insert("LocalizedDescription".into(), "Simulated failure".into());
        let mut extra = Dictionary::new();
        extra.insert(
            "ErrorChain".into(),
            Value::Array(vec![Value::Dictionary(chain)]),
        );
        self.report("Error", Some(uuid), extra).await
    }

    /// Answers every queued command with Acknowledged; returns their request types.
    pub async fn drain(&self) -> Vec<String> {
        let mut seen = Vec::new();
        let mut next = self.idle().await;
        while let Some(cmd) = next {
            seen.push(cmd.request_type.clone());
            next = self.acknowledge(&cmd.uuid).await;
        }
        seen
    }
}

fn plist_xml(value: Value) -> Vec<u8> {
    let mut out = Vec::new();
    value.to_writer_xml(&mut out).unwrap();
    out
}

/// A plist body from key/value pairs, as a device writes one (for requests built by
/// hand: hostile, foreign or benchmark bodies).
pub fn plist_body(entries: Vec<(&str, Value)>) -> Vec<u8> {
    plist_xml(Value::Dictionary(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    ))
}
