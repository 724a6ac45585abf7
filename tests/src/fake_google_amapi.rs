//! The fake AMAPI's resources and methods (see fake_google.rs for the service as a
//! whole), and the phone side: a simulated device that enrolls with a token, reports
//! status, and runs commands, publishing the notifications AMAPI would.

use crate::fake_google::{error, new_id, FakeGoogle, State};
use actix_web::HttpResponse;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The provisioning extras Android Device Policy's QR code carries (Google's format).
pub const DPC_COMPONENT: &str =
    "com.google.android.apps.work.clouddpc/.receivers.CloudDeviceAdminReceiver";
pub const DPC_CHECKSUM: &str = "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg";
pub const DPC_DOWNLOAD: &str =
    "https://play.google.com/managed/downloadManagingApp?identifier=setup";
pub const DPC_TOKEN_EXTRA: &str = "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_duration(d: &str) -> Option<i64> {
    d.strip_suffix('s')?.parse::<f64>().ok().map(|s| s as i64)
}

fn enterprise_topic(s: &State, device_name: &str) -> Option<(String, Vec<String>)> {
    let enterprise = device_name.split("/devices/").next()?;
    let e = s.enterprises.get(enterprise)?;
    let topic = e["pubsubTopic"].as_str()?.to_owned();
    let types = e["enabledNotificationTypes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some((topic, types))
}

/// Publishes `resource` to the device's enterprise topic if the type is enabled.
fn notify(s: &mut State, device_name: &str, kind: &str, resource: &Value) {
    if let Some((topic, types)) = enterprise_topic(s, device_name) {
        if types.iter().any(|t| t == kind) {
            s.publish_locked(&topic, kind, resource);
        }
    }
}

pub(crate) fn amapi(
    state: &Arc<Mutex<State>>,
    method: &str,
    _method_id: &str,
    path: &str,
    query: &HashMap<String, String>,
    body: Value,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    let seg: Vec<&str> = path.split('/').collect();
    let full = |n: usize| seg[1..n].join("/");
    match (method, seg.as_slice()) {
        ("POST", ["v1", "signupUrls"]) => {
            let (Some(project), Some(callback)) =
                (query.get("projectId"), query.get("callbackUrl"))
            else {
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    "projectId and callbackUrl are required",
                );
            };
            if !callback.starts_with("https://") {
                return error(400, "INVALID_ARGUMENT", "callbackUrl must be https");
            }
            let code = new_id();
            let name = format!("signupUrls/C{code}");
            s.add_signup(name.clone(), project.clone(), callback.clone());
            HttpResponse::Ok().json(json!({
                "name": name,
                "url": format!("https://enterprise.google.com/signup/android/email?origin=android&thirdPartyToken=B{code}&c={code}"),
            }))
        }
        ("POST", ["v1", "enterprises"]) => {
            let (Some(project), Some(signup), Some(token)) = (
                query.get("projectId"),
                query.get("signupUrlName"),
                query.get("enterpriseToken"),
            ) else {
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    "projectId, signupUrlName and enterpriseToken are required",
                );
            };
            let topic = body["pubsubTopic"].as_str().map(str::to_owned);
            let Some(entry) = s.signup_mut(signup) else {
                return error(400, "INVALID_ARGUMENT", "unknown signupUrlName");
            };
            if &entry.0 != project || entry.2.as_deref() != Some(token.as_str()) {
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    "the enterprise token is invalid or was used already",
                );
            }
            entry.2 = None;
            if let Some(t) = &topic {
                if !s.topic_exists(t) {
                    return error(400, "INVALID_ARGUMENT", format!("Pub/Sub topic {t} does not exist or android-cloud-policy@system.gserviceaccount.com cannot publish to it"));
                }
            }
            let name = format!("enterprises/LC{}", new_id());
            let mut e = body.clone();
            e["name"] = name.clone().into();
            if e.get("enterpriseDisplayName").is_none() {
                e["enterpriseDisplayName"] = "Town Hall".into();
            }
            s.enterprises.insert(name, e.clone());
            HttpResponse::Ok().json(e)
        }
        ("GET", ["v1", "enterprises", _]) => match s.enterprises.get(&full(3)) {
            Some(e) => HttpResponse::Ok().json(e),
            None => error(
                404,
                "NOT_FOUND",
                format!("Requested entity was not found: {}", full(3)),
            ),
        },
        (_, ["v1", "enterprises", _, ..]) if !s.enterprises.contains_key(&full(3)) => error(
            404,
            "NOT_FOUND",
            format!("Enterprise {} not found", full(3)),
        ),
        ("POST", ["v1", "enterprises", _, "enrollmentTokens"]) => {
            let enterprise = full(3);
            let mut t = body;
            let secs = match t["duration"].as_str() {
                None => 3600,
                // AMAPI: from a minute to about 10,000 years.
                Some(d) => match parse_duration(d) {
                    Some(s) if s >= 60 => s,
                    _ => {
                        return error(
                            400,
                            "INVALID_ARGUMENT",
                            "duration must be at least one minute",
                        )
                    }
                },
            };
            if let Some(data) = t["additionalData"].as_str() {
                if data.len() > 1024 {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        "additionalData is longer than 1024 characters",
                    );
                }
            }
            let id = new_id();
            let value: String = new_id().to_uppercase();
            t["name"] = format!("{enterprise}/enrollmentTokens/{id}").into();
            t["value"] = value.clone().into();
            t["expirationTimestamp"] = (chrono::Utc::now() + chrono::Duration::seconds(secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .into();
            if let Some(p) = t["policyName"].as_str() {
                if !p.contains('/') {
                    t["policyName"] = format!("{enterprise}/policies/{p}").into();
                }
            }
            let mut extras = serde_json::Map::new();
            extras.insert(DPC_TOKEN_EXTRA.into(), value.into());
            t["qrCode"] = json!({
                "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": DPC_COMPONENT,
                "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": DPC_CHECKSUM,
                "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": DPC_DOWNLOAD,
                "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": Value::Object(extras),
            })
            .to_string()
            .into();
            s.enrollment_tokens
                .insert(t["name"].as_str().unwrap().to_owned(), t.clone());
            HttpResponse::Ok().json(t)
        }
        ("GET", ["v1", "enterprises", _, "enrollmentTokens", _]) => {
            match s.enrollment_tokens.get(&full(5)) {
                Some(t) => HttpResponse::Ok().json(t),
                None => error(404, "NOT_FOUND", "enrollment token not found"),
            }
        }
        ("DELETE", ["v1", "enterprises", _, "enrollmentTokens", _]) => {
            match s.enrollment_tokens.remove(&full(5)) {
                Some(_) => HttpResponse::Ok().json(json!({})),
                None => error(404, "NOT_FOUND", "enrollment token not found"),
            }
        }
        ("PATCH", ["v1", "enterprises", _, "policies", _]) => {
            let name = full(5);
            let version = s
                .policies
                .get(&name)
                .and_then(|p| p["version"].as_str().and_then(|v| v.parse::<i64>().ok()))
                .unwrap_or(0)
                + 1;
            let mut p = body;
            p["name"] = name.clone().into();
            p["version"] = version.to_string().into();
            s.policies.insert(name, p.clone());
            HttpResponse::Ok().json(p)
        }
        ("GET", ["v1", "enterprises", _, "policies", _]) => match s.policies.get(&full(5)) {
            Some(p) => HttpResponse::Ok().json(p),
            None => error(404, "NOT_FOUND", "policy not found"),
        },
        ("GET", ["v1", "enterprises", _, "devices"]) => {
            let prefix = format!("{}/devices/", full(3));
            let size = query
                .get("pageSize")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(100)
                .clamp(1, s.page_size_cap.max(1));
            let after = query.get("pageToken").cloned().unwrap_or_default();
            let mut page: Vec<Value> = s
                .devices
                .range(after.clone()..)
                .filter(|(k, _)| k.starts_with(&prefix) && **k != after)
                .take(size + 1)
                .map(|(_, v)| v.clone())
                .collect();
            let next = if page.len() > size {
                page.truncate(size);
                page.last()
                    .and_then(|d| d["name"].as_str())
                    .map(str::to_owned)
            } else {
                None
            };
            let mut answer = json!({});
            if !page.is_empty() {
                answer["devices"] = Value::Array(page);
            }
            if let Some(n) = next {
                answer["nextPageToken"] = n.into();
            }
            HttpResponse::Ok().json(answer)
        }
        ("GET", ["v1", "enterprises", _, "devices", _]) => match s.devices.get(&full(5)) {
            Some(d) => HttpResponse::Ok().json(d),
            None => error(404, "NOT_FOUND", "device not found"),
        },
        ("PATCH", ["v1", "enterprises", _, "devices", _]) => {
            let name = full(5);
            let mask = query.get("updateMask").cloned().unwrap_or_default();
            let Some(d) = s.devices.get_mut(&name) else {
                return error(404, "NOT_FOUND", "device not found");
            };
            for field in mask.split(',').filter(|f| !f.is_empty()) {
                if let Some(v) = body.get(field) {
                    d[field] = v.clone();
                }
            }
            let d = d.clone();
            HttpResponse::Ok().json(d)
        }
        ("DELETE", ["v1", "enterprises", _, "devices", _]) => {
            let name = full(5);
            match s.devices.remove(&name) {
                Some(mut d) => {
                    s.deleted_devices.push((name.clone(), query.clone()));
                    d["state"] = "DELETED".into();
                    HttpResponse::Ok().json(json!({}))
                }
                None => error(404, "NOT_FOUND", "device not found"),
            }
        }
        ("POST", ["v1", "enterprises", _, "devices", last]) if last.ends_with(":issueCommand") => {
            let name = format!(
                "{}/devices/{}",
                full(3),
                last.trim_end_matches(":issueCommand")
            );
            let Some(device) = s.devices.get(&name).cloned() else {
                return error(404, "NOT_FOUND", "device not found");
            };
            if device["state"] != "ACTIVE" {
                return error(400, "FAILED_PRECONDITION", "the device is not active");
            }
            let id = new_id();
            let mut command = body;
            command["createTime"] = now().into();
            let operation = json!({
                "name": format!("{name}/operations/{id}"),
                "metadata": {
                    "@type": "type.googleapis.com/google.android.devicemanagement.v1.Command",
                    // Echo of the command, as AMAPI's metadata is.
                },
                "done": false,
            });
            let mut operation = operation;
            if let Some(m) = operation["metadata"].as_object_mut() {
                if let Some(c) = command.as_object() {
                    for (k, v) in c {
                        m.insert(k.clone(), v.clone());
                    }
                }
            }
            s.operations.insert(
                operation["name"].as_str().unwrap().to_owned(),
                operation.clone(),
            );
            HttpResponse::Ok().json(operation)
        }
        ("GET", ["v1", "enterprises", _, "devices", _, "operations", _]) => {
            match s.operations.get(&full(7)) {
                Some(o) => HttpResponse::Ok().json(o),
                None => error(404, "NOT_FOUND", "operation not found"),
            }
        }
        _ => error(
            404,
            "NOT_FOUND",
            format!("the fake does not implement {method} /{path}"),
        ),
    }
}

/// What a simulated phone is.
#[derive(Debug, Clone)]
pub struct Phone {
    pub serial: String,
    pub model: String,
    pub api_level: i64,
    /// DEVICE_OWNER (fully managed) or PROFILE_OWNER (work profile).
    pub management_mode: String,
}

impl Default for Phone {
    fn default() -> Self {
        Phone {
            serial: format!("R5C{}", new_id()[..8].to_uppercase()),
            model: "Pixel 8".into(),
            api_level: 34,
            management_mode: "DEVICE_OWNER".into(),
        }
    }
}

impl FakeGoogle {
    /// A phone scans the QR code with `token_value` and enrolls: the device appears
    /// with its token's policy and additional data, and ENROLLMENT is published.
    /// Returns the device's name, or Google's refusal.
    pub fn enroll_phone(&self, token_value: &str, phone: &Phone) -> Result<String, String> {
        let mut s = self.state.lock().unwrap();
        let token = s
            .enrollment_tokens
            .values()
            .find(|t| t["value"] == token_value)
            .cloned()
            .ok_or("the enrollment token is not valid (deleted or never made)")?;
        let expiry =
            chrono::DateTime::parse_from_rfc3339(token["expirationTimestamp"].as_str().unwrap())
                .unwrap();
        if expiry < chrono::Utc::now() {
            return Err("the enrollment token expired".into());
        }
        let name = token["name"].as_str().unwrap().to_owned();
        if token["oneTimeOnly"] == true {
            s.enrollment_tokens.remove(&name);
        }
        let enterprise = name.split("/enrollmentTokens/").next().unwrap().to_owned();
        let device_name = format!("{enterprise}/devices/3{}", new_id());
        let ownership = if phone.management_mode == "PROFILE_OWNER" {
            "PERSONALLY_OWNED"
        } else {
            "COMPANY_OWNED"
        };
        let device = json!({
            "name": device_name,
            "managementMode": phone.management_mode,
            "state": "ACTIVE",
            "appliedState": "ACTIVE",
            "ownership": ownership,
            "apiLevel": phone.api_level,
            "enrollmentTime": now(),
            "enrollmentTokenName": name,
            "enrollmentTokenData": token["additionalData"],
            "policyName": token["policyName"],
            "policyCompliant": false,
            "hardwareInfo": {
                "brand": "google", "hardware": "shiba", "manufacturer": "Google",
                "model": phone.model, "serialNumber": phone.serial,
            },
            "softwareInfo": {
                "androidVersion": "14", "securityPatchLevel": "2026-10-05",
                "androidBuildNumber": "AP2A.240805.005",
            },
        });
        s.devices.insert(device_name.clone(), device.clone());
        notify(&mut s, &device_name, "ENROLLMENT", &device);
        Ok(device_name)
    }

    /// The phone applies its policy (the version the policy has now) and sends a
    /// status report: compliant unless `non_compliance` names settings.
    pub fn report_status(&self, device_name: &str, non_compliance: &[Value]) -> Value {
        let mut s = self.state.lock().unwrap();
        let mut d = s
            .devices
            .get(device_name)
            .cloned()
            .expect("a device of the fake");
        let policy = d["policyName"].as_str().unwrap_or_default().to_owned();
        if let Some(p) = s.policies.get(&policy) {
            d["appliedPolicyName"] = policy.clone().into();
            d["appliedPolicyVersion"] = p["version"].clone();
        }
        d["policyCompliant"] = non_compliance.is_empty().into();
        if non_compliance.is_empty() {
            d.as_object_mut().unwrap().remove("nonComplianceDetails");
        } else {
            d["nonComplianceDetails"] = Value::Array(non_compliance.to_vec());
        }
        d["lastStatusReportTime"] = now().into();
        d["lastPolicySyncTime"] = now().into();
        d["securityPosture"] = json!({ "devicePosture": "SECURE" });
        d["deviceSettings"] = json!({ "isEncrypted": true, "encryptionStatus": "ENCRYPTED_PER_USER", "isDeviceSecure": true });
        s.devices.insert(device_name.to_owned(), d.clone());
        notify(&mut s, device_name, "STATUS_REPORT", &d);
        d
    }

    /// Changes the device as Google would see it (posture, state...) without a
    /// notification: only a sync finds it.
    pub fn edit_device(&self, device_name: &str, edit: impl FnOnce(&mut Value)) {
        let mut s = self.state.lock().unwrap();
        if let Some(d) = s.devices.get_mut(device_name) {
            edit(d);
        }
    }

    /// The phone finishes the operation: done, with an error code (`Some("API_LEVEL")`)
    /// or not; COMMAND is published. A wipe also removes the device.
    pub fn finish_operation(&self, operation: &str, error_code: Option<&str>) {
        self.finish_operation_with(operation, error_code, true)
    }

    /// Operations not done yet, oldest name first, with their command type.
    pub fn open_operations(&self) -> Vec<(String, String)> {
        let s = self.state.lock().unwrap();
        s.operations
            .values()
            .filter(|o| o["done"] != true)
            .map(|o| {
                (
                    o["name"].as_str().unwrap().to_owned(),
                    o["metadata"]["type"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// [`Self::finish_operation`]; without `notify` the COMMAND notification is lost.
    pub fn finish_operation_with(
        &self,
        operation: &str,
        error_code: Option<&str>,
        notify_it: bool,
    ) {
        let mut s = self.state.lock().unwrap();
        let Some(mut op) = s.operations.get(operation).cloned() else {
            panic!("no operation {operation}");
        };
        op["done"] = true.into();
        if let Some(code) = error_code {
            op["metadata"]["errorCode"] = code.into();
            op["error"] = json!({ "code": 9, "message": format!("command failed: {code}") });
        } else {
            op["response"] = json!({});
        }
        s.operations.insert(operation.to_owned(), op.clone());
        let device = operation.split("/operations/").next().unwrap().to_owned();
        if error_code.is_none() && op["metadata"]["type"] == "WIPE" {
            if let Some(d) = s.devices.get_mut(&device) {
                d["state"] = "DELETED".into();
                d["appliedState"] = "DELETED".into();
            }
        }
        if notify_it {
            notify(&mut s, &device, "COMMAND", &op);
        }
    }

    /// Usage logs the phone uploads (BatchUsageLogEvents), as a USAGE_LOGS notification.
    pub fn upload_usage_logs(&self, device_name: &str, events: Vec<Value>) {
        let mut s = self.state.lock().unwrap();
        let batch = json!({
            "device": device_name,
            "retrievalTime": now(),
            "usageLogEvents": events,
        });
        notify(&mut s, device_name, "USAGE_LOGS", &batch);
    }

    /// Adds `count` devices directly (the benchmark's fleet), without notifications.
    pub fn add_devices(&self, enterprise: &str, count: usize) {
        let mut s = self.state.lock().unwrap();
        for i in 0..count {
            let name = format!("{enterprise}/devices/b{i:08}");
            s.devices.insert(
                name.clone(),
                json!({
                    "name": name, "managementMode": "DEVICE_OWNER", "state": "ACTIVE",
                    "ownership": "COMPANY_OWNED", "apiLevel": 34, "enrollmentTime": now(),
                    "policyCompliant": true,
                    "hardwareInfo": { "model": "Pixel 8", "serialNumber": format!("BENCH{i:08}") },
                    "softwareInfo": { "androidVersion": "14", "securityPatchLevel": "2026-10-05" },
                }),
            );
        }
    }

    pub fn device(&self, name: &str) -> Option<Value> {
        self.state.lock().unwrap().devices.get(name).cloned()
    }

    pub fn enterprise_names(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .enterprises
            .keys()
            .cloned()
            .collect()
    }

    /// Google deletes the enterprise (the admin removed it in the Play console).
    pub fn delete_enterprise(&self, name: &str) {
        self.state.lock().unwrap().enterprises.remove(name);
    }
}
