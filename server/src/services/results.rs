//! Command results at rest. A device's answer can carry a secret: the Activation Lock
//! bypass code, an unlock token, a FileVault recovery key, an unused app redemption
//! code. Such an answer is stored sealed, bound to its command's uuid (a database
//! writer cannot move it to another command), and its parsed form shows a marker in
//! place of each secret; the admin who asks for that one command
//! (`GET /api/v1/commands/{uuid}`) gets it opened. Answers without a secret, nearly
//! all of them, stay in clear: listing a device's commands decrypts nothing.

use super::{seal_purpose, ServiceError, ServiceResult};
use crate::domain::CommandRecord;
use enrollment::seal::Sealer;
use plist::{Dictionary, Value};

/// Keys whose values are secrets in a device's answer, from Apple's response schemas:
/// ActivationLockBypassCode, UnlockToken, the FileVault personal recovery key
/// (SecurityInfo's FDE_PersonalRecoveryKeyCMS and FDE_PersonalRecoveryKeyDeviceKey),
/// a rotated FileVault key (EncryptedNewRecoveryKey), ManagedApplicationList's
/// UnusedRedemptionCode. Then the secret keys of commands (as profiles' SECRET_KEYS,
/// plus BypassCode and the recovery lock and firmware passwords), should a device
/// ever echo them back.
const SECRET_KEYS: &[&str] = &[
    "ActivationLockBypassCode",
    "BypassCode",
    "UnlockToken",
    "FDE_PersonalRecoveryKeyCMS",
    "FDE_PersonalRecoveryKeyDeviceKey",
    "EncryptedNewRecoveryKey",
    "UnusedRedemptionCode",
    "PIN",
    "Password",
    "CurrentPassword",
    "NewPassword",
    "passwordHash",
    "RecoveryLockPassword",
    "FirmwarePassword",
];

/// Stands in the parsed result where a secret was.
pub const SEALED_MARKER: &str = "<sealed>";

/// Keys of a report that are its envelope, not the command's answer.
const ENVELOPE: &[&str] = &[
    "UDID",
    "Status",
    "CommandUUID",
    "ErrorChain",
    "UserID",
    "EnrollmentID",
];

/// What is stored of a device's answer.
pub struct Protected {
    /// The report as an XML plist; sealed when it carries a secret.
    pub raw: Vec<u8>,
    /// The answer's fields as JSON, each secret replaced by [`SEALED_MARKER`].
    pub fields: serde_json::Value,
    /// The keys whose values were sealed (empty: the raw report is in clear).
    pub sealed_fields: Vec<String>,
}

/// Prepares a report of command `command_uuid` for storage: secrets out of the
/// parsed fields, and the raw report sealed if it held any.
pub fn protect(
    sealer: &Sealer,
    command_uuid: &str,
    report: &Dictionary,
) -> ServiceResult<Protected> {
    let mut raw = Vec::new();
    Value::Dictionary(report.clone())
        .to_writer_xml(&mut raw)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut answer = Value::Dictionary(answer_of(report));
    let mut sealed_fields = Vec::new();
    redact(&mut answer, &mut sealed_fields);
    sealed_fields.sort();
    if !sealed_fields.is_empty() {
        raw = sealer
            .seal(seal_purpose::COMMAND_RESULT, command_uuid, &raw)
            .map_err(|e| ServiceError::Internal(format!("command {command_uuid} result: {e}")))?;
    }
    Ok(Protected {
        raw,
        fields: crate::plist_json::to_json(&answer),
        sealed_fields,
    })
}

/// Opens the sealed result of a command an admin asked for: `result_raw` and the
/// secret fields are filled in. A result that does not open (another master key, or
/// moved from another command's row) is an internal error for this command.
pub fn reveal(sealer: &Sealer, record: &mut CommandRecord) -> ServiceResult<()> {
    let Some(sealed) = record.result_sealed.take() else {
        return Ok(());
    };
    let failed = |e: String| {
        ServiceError::Internal(format!(
            "command {} result cannot be opened: {e}",
            record.uuid
        ))
    };
    let raw = sealer
        .open(seal_purpose::COMMAND_RESULT, &record.uuid, &sealed)
        .map_err(|e| failed(e.to_string()))?;
    // Our own serialization of a report that passed the device limits, read back
    // through the same bounded reader all the same.
    let report = profiles::bounded::read_dictionary(&raw, &Default::default())
        .map_err(|e| failed(e.to_string()))?;
    let fields = crate::plist_json::to_json(&Value::Dictionary(answer_of(&report)));
    if let Some(serde_json::Value::Object(result)) = record.result.as_mut() {
        result.insert("fields".into(), fields);
    }
    record.result_raw = Some(String::from_utf8_lossy(&raw).into_owned());
    Ok(())
}

fn answer_of(report: &Dictionary) -> Dictionary {
    let mut fields = report.clone();
    for key in ENVELOPE {
        fields.remove(key);
    }
    fields
}

/// Replaces every secret value (at any depth) by the marker, noting its key once.
fn redact(value: &mut Value, found: &mut Vec<String>) {
    match value {
        Value::Dictionary(dict) => {
            for (key, item) in dict.iter_mut() {
                if SECRET_KEYS.contains(&key.as_str()) {
                    *item = Value::String(SEALED_MARKER.into());
                    if !found.contains(key) {
                        found.push(key.clone());
                    }
                } else {
                    redact(item, found);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(extra: &[(&str, Value)]) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("UDID".into(), Value::String("udid-1".into()));
        d.insert("Status".into(), Value::String("Acknowledged".into()));
        d.insert("CommandUUID".into(), Value::String("cmd-1".into()));
        for (k, v) in extra {
            d.insert((*k).into(), v.clone());
        }
        d
    }

    #[test]
    fn answers_without_secrets_stay_in_clear() {
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let r = report(&[("ProfileList", Value::Array(vec![]))]);
        let p = protect(&sealer, "cmd-1", &r).unwrap();
        assert!(p.sealed_fields.is_empty());
        assert!(p.raw.starts_with(b"<?xml"));
        assert!(!enrollment::seal::is_sealed(&p.raw));
        assert_eq!(p.fields, serde_json::json!({ "ProfileList": [] }));
    }

    #[test]
    fn secrets_are_sealed_to_their_command_and_redacted_at_any_depth() {
        let sealer = Sealer::new(&Sealer::generate_key()).unwrap();
        let mut apps = Dictionary::new();
        let mut app = Dictionary::new();
        app.insert("UnusedRedemptionCode".into(), Value::String("RC-9".into()));
        apps.insert("com.example.app".into(), Value::Dictionary(app));
        let r = report(&[
            (
                "ActivationLockBypassCode",
                Value::String("AB12-CD34".into()),
            ),
            ("ManagedApplicationList", Value::Dictionary(apps)),
        ]);
        let p = protect(&sealer, "cmd-1", &r).unwrap();
        assert_eq!(
            p.sealed_fields,
            vec!["ActivationLockBypassCode", "UnusedRedemptionCode"]
        );
        assert!(enrollment::seal::is_sealed(&p.raw));
        assert!(!p.raw.windows(9).any(|w| w == b"AB12-CD34"));
        let text = p.fields.to_string();
        assert!(
            !text.contains("AB12-CD34") && !text.contains("RC-9"),
            "{text}"
        );
        assert_eq!(p.fields["ActivationLockBypassCode"], SEALED_MARKER);

        let record = |uuid: &str| CommandRecord {
            uuid: uuid.into(),
            device_id: "d".into(),
            request_type: "ActivationLockBypassCode".into(),
            priority: 0,
            status: crate::domain::CommandStatus::Acknowledged,
            created_by: "admin".into(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            expires_at: None,
            delivered_at: None,
            completed_at: None,
            delivery_count: 1,
            not_now_count: 0,
            result_raw: None,
            result: Some(serde_json::json!({ "fields": p.fields.clone() })),
            result_sealed: Some(p.raw.clone()),
        };
        let mut shown = record("cmd-1");
        reveal(&sealer, &mut shown).unwrap();
        assert!(shown.result_raw.unwrap().contains("AB12-CD34"));
        assert_eq!(
            shown.result.unwrap()["fields"]["ActivationLockBypassCode"],
            "AB12-CD34"
        );
        // The same sealed answer copied to another command's row does not open.
        let mut moved = record("cmd-2");
        let err = reveal(&sealer, &mut moved).unwrap_err();
        assert!(matches!(err, ServiceError::Internal(_)), "{err:?}");
    }
}
