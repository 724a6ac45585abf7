//! The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.
//! Written by hand next to the handlers; a test walks every path in it against the
//! running server so the two cannot drift apart silently.

use actix_web::HttpResponse;
use serde_json::{json, Value};

fn error_responses() -> Value {
    json!({
        "400": { "$ref": "#/components/responses/Error" },
        "422": { "$ref": "#/components/responses/Error" },
        "401": { "$ref": "#/components/responses/Error" },
        "404": { "$ref": "#/components/responses/Error" },
        "409": { "$ref": "#/components/responses/Error" },
        "413": { "$ref": "#/components/responses/Error" },
        "429": { "$ref": "#/components/responses/Error" },
        "503": { "$ref": "#/components/responses/Error" }
    })
}

fn with_errors(mut ok: Value) -> Value {
    if let (Some(map), Some(errors)) = (ok.as_object_mut(), error_responses().as_object()) {
        for (k, v) in errors {
            map.insert(k.clone(), v.clone());
        }
    }
    ok
}

fn id_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" }, "description": what })
}

/// A text a device shows or looks up: not blank, at most 1,000 characters
/// (profiles::commands::MAX_TEXT_CHARS).
fn device_text() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 1000, "pattern": "\\S" })
}

fn device_texts() -> Value {
    json!({ "type": "array", "minItems": 1, "maxItems": 1000, "items": device_text() })
}

/// The queue options every command body may carry (services/commands.rs).
fn queue_options() -> Vec<(&'static str, Value)> {
    vec![
        (
            "priority",
            json!({ "type": "integer", "minimum": -1000, "maximum": 1000, "description": "higher first; default 0" }),
        ),
        (
            "expires_at",
            json!({ "type": "string", "format": "date-time", "description": "in the future" }),
        ),
        (
            "expires_in_seconds",
            json!({ "type": "integer", "minimum": 1, "maximum": 31_536_000 }),
        ),
    ]
}

/// One schema per command type: its own parameters (required ones required, nothing
/// else accepted), the queue options, and for a bulk request the device ids. Apple's
/// RequestTypes (profiles::commands::CommandSpec) and, for one device, AMAPI's
/// command types (services/android/commands.rs).
fn command_schema(bulk: bool) -> Value {
    let pin = json!({ "type": "string", "pattern": "^[0-9]{6}$", "description": "macOS: the Find My PIN" });
    let flag = json!({ "type": "boolean" });
    let none = || Vec::<(&str, Value)>::new();
    // (type, parameters, required, at least one of)
    type Variant = (
        &'static str,
        Vec<(&'static str, Value)>,
        Vec<&'static str>,
        Vec<&'static str>,
    );
    let mut variants: Vec<Variant> = vec![
        (
            "DeviceLock",
            vec![
                ("message", device_text()),
                ("phone_number", device_text()),
                ("pin", pin.clone()),
            ],
            vec![],
            vec![],
        ),
        // Well formed here, and refused (422): a wipe goes through /devices/{id}/wipe,
        // which asks for confirmation. Listed so that a caller without devices.wipe
        // hears 403, not a schema error.
        (
            "EraseDevice",
            vec![
                ("pin", pin.clone()),
                ("preserve_data_plan", flag.clone()),
                ("disallow_proximity_setup", flag.clone()),
            ],
            vec![],
            vec![],
        ),
        (
            "InstallProfile",
            vec![(
                "payload",
                json!({ "type": "string", "minLength": 1, "contentEncoding": "base64", "description": "base64 of the .mobileconfig, signed or not" }),
            )],
            vec!["payload"],
            vec![],
        ),
        (
            "RemoveProfile",
            vec![("identifier", device_text())],
            vec!["identifier"],
            vec![],
        ),
        ("ProfileList", none(), vec![], vec![]),
        (
            "DeviceInformation",
            vec![("queries", device_texts())],
            vec![],
            vec![],
        ),
        ("SecurityInfo", none(), vec![], vec![]),
        ("CertificateList", none(), vec![], vec![]),
        (
            "InstalledApplicationList",
            vec![
                ("identifiers", device_texts()),
                ("managed_apps_only", flag.clone()),
            ],
            vec![],
            vec![],
        ),
        (
            "RestartDevice",
            vec![("notify_user", flag.clone())],
            vec![],
            vec![],
        ),
        ("ShutDownDevice", none(), vec![], vec![]),
        ("ClearPasscode", none(), vec![], vec![]),
        (
            "EnableLostMode",
            vec![
                ("message", device_text()),
                ("phone_number", device_text()),
                ("footnote", device_text()),
            ],
            vec![],
            vec!["message", "phone_number"],
        ),
        ("DisableLostMode", none(), vec![], vec![]),
        ("DeviceLocation", none(), vec![], vec![]),
        ("PlayLostModeSound", none(), vec![], vec![]),
        (
            "Raw",
            vec![(
                "plist",
                json!({ "type": "string", "minLength": 1, "description": "the command plist (XML): the whole command or its Command dictionary; the server assigns the CommandUUID" }),
            )],
            vec!["plist"],
            vec![],
        ),
    ];
    if !bulk {
        let android_text =
            json!({ "type": "string", "minLength": 1, "maxLength": 4096, "pattern": "\\S" });
        variants.extend([
            ("LOCK", none(), vec![], vec![]),
            // Refused here (422), with where to send them instead.
            ("WIPE", none(), vec![], vec![]),
            ("RELINQUISH_OWNERSHIP", none(), vec![], vec![]),
            ("REBOOT", none(), vec![], vec![]),
            ("STOP_LOST_MODE", none(), vec![], vec![]),
            ("REQUEST_DEVICE_INFO", none(), vec![], vec![]),
            ("RESET_PASSWORD", vec![
                ("new_password", json!({ "type": "string", "description": "empty removes the password" })),
                ("flags", json!({ "type": "array", "items": { "type": "string", "enum": ["REQUIRE_ENTRY", "DO_NOT_ASK_CREDENTIALS_ON_BOOT", "LOCK_NOW"] } })),
            ], vec![], vec![]),
            ("START_LOST_MODE", ["message", "phone_number", "email", "address", "organization"].into_iter().map(|k| (k, android_text.clone())).collect(), vec![],
                vec!["message", "phone_number", "email", "address", "organization"]),
            ("CLEAR_APP_DATA", vec![("package_names", json!({ "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 1 } }))], vec!["package_names"], vec![]),
        ]);
    }
    let one_of: Vec<Value> = variants
        .into_iter()
        .map(|(name, parameters, required, any_of)| {
            let mut properties = serde_json::Map::new();
            properties.insert("type".into(), json!({ "type": "string", "enum": [name] }));
            for (key, schema) in parameters.into_iter().chain(queue_options()) {
                properties.insert(key.into(), schema);
            }
            let mut required: Vec<&str> = std::iter::once("type").chain(required).collect();
            if bulk {
                properties.insert("device_ids".into(), json!({ "type": "array", "minItems": 1, "maxItems": 100_000, "items": { "type": "string", "minLength": 1 } }));
                required.push("device_ids");
            }
            let mut schema = json!({ "title": name, "type": "object", "additionalProperties": false,
                "required": required, "properties": properties });
            // Said in words, not as anyOf: schemathesis's negative generation for an
            // anyOf inside oneOf fails internally (4.32); the server answers 422.
            if !any_of.is_empty() {
                schema["description"] = json!(format!("at least one of: {}", any_of.join(", ")));
            }
            schema
        })
        .collect();
    json!({ "oneOf": one_of })
}

pub fn spec() -> Value {
    let device_id = id_param(
        "id",
        "Device id (server-assigned UUID), or explicitly udid:<UDID> or serial:<serial number>",
    );
    let command_uuid = id_param("uuid", "CommandUUID");
    let enrollment_id = id_param("id", "Enrollment id");
    let incident_id = id_param("id", "Incident id, or its register number");
    let json_body = |schema: &str| json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    let ok = |code: &str, schema: &str, what: &str| json!({ code: { "description": what, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "MDM server admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Devices, commands and events. Every call needs 'Authorization: Bearer <token>' (a session from POST /session or `mdm login`, an API token, or the first start's MDM_ADMIN_TOKEN) or the console's session cookie, and the right its operation names in x-required-right (403 otherwise). Errors are {\"error\": \"message\"}."
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "bearer": [] }],
        "paths": {
            "/devices": { "get": {
                "summary": "List devices",
                "parameters": [
                    { "name": "platform", "in": "query", "schema": { "type": "string", "enum": ["apple", "android"] } },
                    { "name": "enrolled", "in": "query", "schema": { "type": "boolean" } },
                    { "name": "serial_number", "in": "query", "schema": { "type": "string" } },
                    { "name": "udid", "in": "query", "schema": { "type": "string" } },
                    { "name": "os_family", "in": "query", "schema": { "type": "string" } },
                    { "name": "search", "in": "query", "schema": { "type": "string" }, "description": "substring of name, serial, model or UDID" },
                    { "name": "noncompliant", "in": "query", "schema": { "type": "boolean" }, "description": "true: only devices evaluated as not compliant; false: only compliant ones" },
                    { "name": "user", "in": "query", "schema": { "type": "string" }, "description": "only devices enrolled for this user" },
                    { "name": "group", "in": "query", "schema": { "type": "string" }, "description": "only devices enrolled into this group" },
                    { "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0 } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
                ],
                "responses": with_errors(ok("200", "DevicePage", "A page of devices"))
            }},
            "/devices/{id}": {
                "get": {
                    "summary": "Show a device", "parameters": [device_id],
                    "responses": with_errors(ok("200", "Device", "The device"))
                },
                "delete": {
                    "summary": "Delete a device record and its commands, after revoking its identity (events stay)",
                    "parameters": [device_id],
                    "responses": with_errors(ok("200", "Revocation", "Deleted"))
                }
            },
            "/devices/{id}/revoke": { "post": {
                "summary": "Revoke the device's identity certificate: refused from now on, listed in the CRL; the device comes back only through a new enrollment",
                "parameters": [device_id],
                "requestBody": { "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "properties": {
                        "reason": { "type": "string", "enum": ["unspecified", "key_compromise", "affiliation_changed", "superseded", "cessation_of_operation"], "default": "unspecified" },
                        "comment": { "type": "string" }
                    } } } } },
                "responses": with_errors(ok("200", "Revocation", "Revoked"))
            }},
            "/devices/{id}/retire": { "post": {
                "summary": "Retire the device: its identity is revoked, its queue cancelled, the record kept",
                "parameters": [device_id],
                "requestBody": { "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "properties": {
                        "comment": { "type": "string" }
                    } } } } },
                "responses": with_errors(ok("200", "Revocation", "Retired"))
            }},
            "/devices/{id}/commands": {
                "post": {
                    "summary": "Queue a command to a device. Apple: {\"type\": \"<RequestType>\", ...}. Android: an AMAPI command sent at once, {\"type\": \"LOCK\" | \"RESET_PASSWORD\" (new_password, flags) | \"REBOOT\" | \"START_LOST_MODE\" (message, phone_number, email, address, organization) | \"STOP_LOST_MODE\" | \"CLEAR_APP_DATA\" (package_names) | \"REQUEST_DEVICE_INFO\"}; refused (400) when the device's management mode or API level cannot run it", "parameters": [device_id],
                    "requestBody": json_body("CommandRequest"),
                    "responses": with_errors(ok("202", "Queued", "Queued"))
                },
                "get": {
                    "summary": "A device's commands, newest first", "parameters": [device_id,
                        { "name": "offset", "in": "query", "schema": { "type": "integer" } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer" } }],
                    "responses": with_errors(ok("200", "CommandPage", "A page of commands"))
                }
            },
            "/devices/{id}/lock": { "post": {
                "summary": "Lock a device now (Apple: DeviceLock, urgent priority; Android: AMAPI LOCK, no message or PIN)", "parameters": [device_id],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LockRequest" } } } },
                "responses": with_errors(ok("202", "Queued", "Lock queued"))
            }},
            "/devices/{id}/wipe": { "post": {
                "summary": "Erase a device; confirmed with the serial number it reported in DeviceInformation or Google reported (its id before that). Android: AMAPI WIPE, then devices.delete once acknowledged", "parameters": [device_id],
                "requestBody": json_body("WipeRequest"),
                "responses": with_errors(ok("202", "Queued", "Wipe queued"))
            }},
            "/devices/{id}/reenrollment": { "post": {
                "summary": "Approve a re-enrollment with a new certificate (otherwise held) for a limited time",
                "parameters": [device_id],
                "requestBody": { "required": false, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "properties": {
                        "keep_queue": { "type": "boolean", "default": false },
                        "hours": { "type": "integer", "minimum": 1, "maximum": 168, "default": 24 }
                    } } } } },
                "responses": with_errors(json!({ "200": { "description": "Approved until the given time",
                    "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "device_id": { "type": "string" },
                        "approved_until": { "type": "string", "format": "date-time" },
                        "keep_queue": { "type": "boolean" } } } } } } }))
            }},
            "/commands": { "post": {
                "summary": "Queue one command to many devices in one transaction",
                "requestBody": json_body("BulkCommandRequest"),
                "responses": with_errors(json!({ "202": { "description": "Queued to all devices",
                    "content": { "application/json": { "schema": { "type": "object", "properties": {
                        "count": { "type": "integer" },
                        "commands": { "type": "array", "items": { "$ref": "#/components/schemas/Queued" } } } } } } } }))
            }},
            "/commands/{uuid}": {
                "get": { "summary": "A command with its status and result", "parameters": [command_uuid.clone()],
                         "responses": with_errors(ok("200", "Command", "The command")) }
            },
            "/commands/{uuid}/cancel": {
                "post": { "summary": "Cancel a pending command: it is not sent, and stays in the history as cancelled", "parameters": [command_uuid],
                         "responses": with_errors(json!({
                            "200": { "description": "Cancelled", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Command" } } } },
                            "409": { "$ref": "#/components/responses/Error" } })) }
            },
            "/incidents": {
                "get": {
                    "summary": "The incident register, by number (filters: level, min_level, status, classification, device, from, to)",
                    "parameters": [
                        { "name": "level", "in": "query", "schema": { "type": "integer", "minimum": 0, "maximum": 5 } },
                        { "name": "min_level", "in": "query", "schema": { "type": "integer", "minimum": 0, "maximum": 5 } },
                        { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["not_started", "in_progress", "completed"] } },
                        { "name": "classification", "in": "query", "schema": { "type": "string", "enum": ["reported", "confirmed", "rejected"] } },
                        { "name": "device", "in": "query", "schema": { "type": "string" } },
                        { "name": "from", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                        { "name": "to", "in": "query", "schema": { "type": "string", "format": "date-time" } },
                        { "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0 } },
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
                    ],
                    "responses": with_errors(json!({ "200": { "description": "A page of incidents" } }))
                },
                "post": {
                    "summary": "File an incident (name, type, level 0-5, devices, users, plan, resources, evidence procedure and location, responsible person, comments); the type's playbooks run",
                    "requestBody": json_body("NewIncident"),
                    "responses": with_errors(ok("201", "Incident", "Filed"))
                }
            },
            "/incidents/{id}": {
                "get": { "summary": "An incident (by id or register number)", "parameters": [incident_id.clone()],
                         "responses": with_errors(ok("200", "Incident", "The incident")) },
                "patch": { "summary": "Change register columns of an open incident", "parameters": [incident_id.clone()],
                           "requestBody": { "required": true, "content": { "application/json": { "schema": {
                               "type": "object", "minProperties": 1, "additionalProperties": false, "properties": {
                                   "name": { "type": "string" }, "type": { "type": "string" }, "status": { "type": "string" },
                                   "devices": { "type": "array", "items": { "type": "string" } }, "users": { "type": "array", "items": { "type": "string" } },
                                   "response_plan": { "type": "string" }, "expected_completion": { "type": "string", "format": "date" },
                                   "resources": { "$ref": "#/components/schemas/NewIncident/properties/resources" },
                                   "evidence_procedure": { "type": "string" }, "evidence_location": { "type": "string" },
                                   "responsible": { "$ref": "#/components/schemas/NewIncident/properties/responsible" },
                                   "comments": { "type": "string" } } } } } },
                           "responses": with_errors(ok("200", "Incident", "Changed")) }
            },
            "/incidents/{id}/history": { "get": { "summary": "Who changed what, when: the incident's links of the register's hash chain", "parameters": [incident_id.clone()],
                "responses": with_errors(json!({ "200": { "description": "The history" } })) } },
            "/incidents/{id}/classify": { "post": { "summary": "Confirm or reject (and set the level); confirmation runs the type's playbooks", "parameters": [incident_id.clone()],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["classification"], "properties": {
                    "classification": { "type": "string", "enum": ["confirmed", "rejected"] }, "level": { "type": "integer", "minimum": 0, "maximum": 5 } } } } } },
                "responses": with_errors(ok("200", "Incident", "Classified")) } },
            "/incidents/{id}/actions": { "post": { "summary": "Record a dated response action", "parameters": [incident_id.clone()],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["description"], "properties": {
                    "description": { "type": "string" }, "at": { "type": "string", "format": "date-time" } } } } } },
                "responses": with_errors(ok("200", "Incident", "Recorded")) } },
            "/incidents/{id}/close": { "post": { "summary": "Close with the closing report", "parameters": [incident_id.clone()],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["closing_report"], "properties": {
                    "closing_report": { "type": "string" } } } } } },
                "responses": with_errors(ok("200", "Incident", "Closed")) } },
            "/incidents/{id}/evidence": {
                "get": { "summary": "Evidence collected, with SHA-256", "parameters": [incident_id.clone()],
                         "responses": with_errors(json!({ "200": { "description": "The evidence" } })) },
                "post": { "summary": "Collect evidence from the server's records: {kind: device_facts|command_result|events|note, ...}", "parameters": [incident_id.clone()],
                          "requestBody": { "required": true, "content": { "application/json": { "schema": { "oneOf": [
                              { "type": "object", "additionalProperties": false, "required": ["kind", "device_id"], "properties": {
                                  "kind": { "type": "string", "enum": ["device_facts", "events", "status_report"] }, "device_id": { "type": "string", "minLength": 1 } } },
                              { "type": "object", "additionalProperties": false, "required": ["kind", "command_uuid"], "properties": {
                                  "kind": { "type": "string", "enum": ["command_result"] }, "command_uuid": { "type": "string", "minLength": 1 } } },
                              { "type": "object", "additionalProperties": false, "required": ["kind", "text"], "properties": {
                                  "kind": { "type": "string", "enum": ["note"] }, "text": { "type": "string", "minLength": 1, "pattern": "\\S" } } } ] } } } },
                          "responses": with_errors(json!({ "201": { "description": "Collected and hashed into the chain" } })) }
            },
            "/incidents/{id}/approvals": { "get": { "summary": "Actions waiting for a second administrator", "parameters": [incident_id.clone()],
                "responses": with_errors(json!({ "200": { "description": "The approvals" } })) } },
            "/incidents/{id}/approvals/{approval}/approve": { "post": { "summary": "Approve (a second administrator): the action runs", "parameters": [incident_id.clone(), id_param("approval", "Approval id")],
                "responses": with_errors(ok("200", "Incident", "Approved")) } },
            "/incidents/{id}/approvals/{approval}/deny": { "post": { "summary": "Deny a waiting action", "parameters": [incident_id.clone(), id_param("approval", "Approval id")],
                "responses": with_errors(ok("200", "Incident", "Denied")) } },
            "/incidents/{id}/report.html": { "get": { "summary": "Printable report of one incident with history and evidence", "parameters": [incident_id],
                "responses": with_errors(json!({ "200": { "description": "HTML", "content": { "text/html": {} } } })) } },
            "/incidents/report.html": { "get": { "summary": "Printable register of a period (list filters)",
                "responses": with_errors(json!({ "200": { "description": "HTML", "content": { "text/html": {} } } })) } },
            "/incidents/export.csv": { "get": { "summary": "The register as CSV, Appendix A's columns in its order",
                "responses": with_errors(json!({ "200": { "description": "CSV", "content": { "text/csv": {} } } })) } },
            "/incidents/export.json": { "get": { "summary": "The register as JSON rows, Appendix A's columns in its order",
                "responses": with_errors(json!({ "200": { "description": "columns and rows" } })) } },
            "/incidents/figures": { "get": { "summary": "Incidents by level and status, lost-to-lock time, fleet compliance",
                "responses": with_errors(json!({ "200": { "description": "Figures" } })) } },
            "/incidents/verify": { "get": { "summary": "Walk the register's hash chain: intact, or what was altered",
                "responses": with_errors(json!({ "200": { "description": "{intact, incidents, links, evidence, head_hash, problems}" } })) } },
            "/lost-report-links": {
                "get": { "summary": "Personal 'report my device lost' links (never their tokens)",
                         "responses": with_errors(json!({ "200": { "description": "The links" } })) },
                "post": { "summary": "A personal link for a user and their devices; the URL is shown in this answer only",
                          "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["user", "devices"], "properties": {
                              "user": { "type": "string" }, "devices": { "type": "array", "minItems": 1, "maxItems": 50, "items": { "type": "string" } } } } } } },
                          "responses": with_errors(json!({ "201": { "description": "Created, with url" } })) }
            },
            "/lost-report-links/{id}": { "delete": { "summary": "Revoke a personal link", "parameters": [id_param("id", "Link id")],
                "responses": with_errors(json!({ "204": { "description": "Revoked" } })) } },
            "/deliveries": { "get": {
                "summary": "The delivery log of webhooks and syslog receivers, newest first",
                "parameters": [
                    { "name": "receiver", "in": "query", "schema": { "type": "string" } },
                    { "name": "status", "in": "query", "schema": { "type": "string", "enum": ["pending", "failed", "delivered"] } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } }
                ],
                "responses": with_errors(json!({ "200": { "description": "Deliveries" } }))
            }},
            "/deliveries/{id}/replay": { "post": { "summary": "Send a delivery again", "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1, "maximum": 9_007_199_254_740_991_i64 }, "description": "Delivery id" }],
                "responses": with_errors(json!({ "202": { "description": "Queued again" } })) } },
            "/events": { "get": {
                "summary": "The event stream (device, security and admin events), oldest first",
                "parameters": [
                    { "name": "device_id", "in": "query", "schema": { "type": "string" } },
                    { "name": "kind", "in": "query", "schema": { "type": "string" }, "description": "a kind, or a prefix ending in '.'" },
                    { "name": "after_id", "in": "query", "schema": { "type": "integer" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer" } }
                ],
                "responses": with_errors(json!({ "200": { "description": "Events", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Event" } } } } } } } }))
            }},
            "/metrics": { "get": {
                "summary": "Counters since the server started: refused SCEP requests, enrollment URL uses, failed admin authentications",
                "responses": with_errors(json!({ "200": { "description": "Counters", "content": { "application/json": { "schema": {
                    "type": "object", "properties": {
                        "scep_refused": { "type": "integer" }, "scep_unknown_challenge": { "type": "integer" },
                        "enrollment_url_uses": { "type": "integer" }, "enrollment_url_unknown": { "type": "integer" },
                        "admin_auth_failures": { "type": "integer" }, "admin_auth_throttled": { "type": "integer" } } } } } } }))
            }},
            "/devices/{id}/push": { "post": {
                "summary": "Push the device now (APNs) and report what APNs answered", "parameters": [device_id],
                "responses": with_errors(ok("200", "DevicePush", "The outcome"))
            }},
            "/devices/{id}/push-attempts": { "get": {
                "summary": "Recorded push attempts of the device, newest first", "parameters": [device_id,
                    { "name": "limit", "in": "query", "schema": { "type": "integer" } }],
                "responses": with_errors(json!({ "200": { "description": "Attempts", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "items": { "type": "array", "items": { "type": "object", "properties": {
                        "attempted_at": { "type": "string", "format": "date-time" }, "attempt": { "type": "integer" },
                        "status": { "type": ["integer", "null"] }, "reason": { "type": ["string", "null"] },
                        "apns_id": { "type": ["string", "null"] } } } } } } } } } }))
            }},
            "/push-certificate": {
                "get": { "summary": "The MDM push certificate in use, its topic and expiry (warning from 30 days before)",
                         "responses": with_errors(ok("200", "PushCertificate", "The certificate")) },
                "put": { "summary": "Upload or renew the MDM push certificate (PEM with key, PEM alone for the key kept by `mdm push-cert request`, or PKCS#12 with password); a renewal must keep the topic, and a certificate alone must be for the kept key (409 otherwise)",
                         "requestBody": json_body("PushCertificateUpload"),
                         "responses": with_errors(json!({
                            "200": { "description": "Installed", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/PushCertificate" } } } },
                            "409": { "$ref": "#/components/responses/Error" } })) }
            },
            "/android": {
                "get": { "summary": "Android Enterprise: the enterprise, its Pub/Sub topic, subscription and notification types, the last sync and pull, the last error",
                         "responses": with_errors(ok("200", "AndroidStatus", "The link to Google")) }
            },
            "/android/connect": {
                "post": { "summary": "Store the Google service-account key (sealed) and get the Android Enterprise sign-up URL; Google sends the admin's browser back to /android/signup-callback, which creates the enterprise",
                          "requestBody": json_body("AndroidConnect"),
                          "responses": with_errors(ok("200", "AndroidSignup", "The sign-up URL")) }
            },
            "/android/sync": {
                "post": { "summary": "Read every Android device from Google now (devices.list) instead of at the next periodic sync",
                          "responses": with_errors(ok("200", "AndroidSync", "Devices read")) }
            },
            "/enrollments": {
                "post": { "summary": "Create an enrollment (a QR code devices enroll with)",
                          "requestBody": json_body("EnrollmentRequest"),
                          "responses": with_errors(ok("201", "Enrollment", "Created")) },
                "get": { "summary": "List enrollments (active ones unless all=true)",
                         "parameters": [{ "name": "all", "in": "query", "schema": { "type": "boolean" } }],
                         "responses": with_errors(json!({ "200": { "description": "Enrollments", "content": { "application/json": { "schema": {
                            "type": "object", "properties": { "items": { "type": "array", "items": { "$ref": "#/components/schemas/Enrollment" } } } } } } } })) }
            },
            "/enrollments/{id}": {
                "get": { "summary": "Show an enrollment", "parameters": [enrollment_id],
                         "responses": with_errors(ok("200", "Enrollment", "The enrollment")) },
                "delete": { "summary": "Revoke an enrollment: its QR code admits no more devices", "parameters": [enrollment_id],
                            "responses": with_errors(ok("200", "Enrollment", "Revoked")) }
            },
            "/enrollments/{id}/qr.png": { "get": {
                "summary": "The enrollment's QR code as PNG", "parameters": [enrollment_id,
                    { "name": "scale", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 32 } }],
                "responses": with_errors(json!({ "200": { "description": "PNG", "content": { "image/png": {} } } }))
            }},
            "/enrollments/{id}/qr.svg": { "get": {
                "summary": "The enrollment's QR code as SVG", "parameters": [enrollment_id],
                "responses": with_errors(json!({ "200": { "description": "SVG", "content": { "image/svg+xml": {} } } }))
            }},
            "/openapi.json": { "get": { "summary": "This document", "security": [],
                "responses": { "200": { "description": "OpenAPI document" } } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": { "Error": { "description": "Error", "content": { "application/json": { "schema": {
                "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } } } } } },
            "schemas": {
                "NewIncident": { "type": "object", "required": ["name", "type", "level"], "properties": {
                    "name": { "type": "string" }, "type": { "type": "string" }, "level": { "type": "integer", "minimum": 0, "maximum": 5 },
                    "devices": { "type": "array", "items": { "type": "string" } }, "users": { "type": "array", "items": { "type": "string" } },
                    "detected_at": { "type": "string", "format": "date-time" }, "detection_source": { "type": "string" },
                    "response_plan": { "type": "string" }, "expected_completion": { "type": "string", "format": "date" },
                    "resources": { "type": "object", "properties": {
                        "technical": { "type": "string" }, "software": { "type": "string" }, "financial": { "type": "string" } } },
                    "evidence_procedure": { "type": "string" }, "evidence_location": { "type": "string" },
                    "responsible": { "type": "object", "properties": {
                        "full_name": { "type": "string" }, "position_company": { "type": "string" }, "phone": { "type": "string" } } },
                    "comments": { "type": "string" } } },
                "Incident": { "type": "object", "properties": {
                    "id": { "type": "string" }, "number": { "type": "integer" }, "name": { "type": "string" },
                    "incident_type": { "type": "string" }, "level": { "type": "integer" }, "level_name": { "type": "string" },
                    "level_colour": { "type": "string", "enum": ["white", "green", "yellow", "orange", "red", "black"] },
                    "classification": { "type": "string" }, "status": { "type": "string" },
                    "response_actions": { "type": "array" }, "closing_report": { "type": ["string", "null"] } } },
                "Revocation": { "type": "object", "properties": {
                    "device_id": { "type": "string" },
                    "reason": { "type": "string" },
                    "certificates_revoked": { "type": "integer" },
                    "cancelled_commands": { "type": "integer" },
                    "already_revoked": { "type": "boolean" } } },
                "Device": { "type": "object", "properties": {
                    "id": { "type": "string" }, "platform": { "type": "string", "enum": ["apple", "android"] },
                    "udid": { "type": ["string", "null"] }, "serial_number": { "type": ["string", "null"] },
                    "model": { "type": ["string", "null"] }, "product_name": { "type": ["string", "null"] },
                    "os_family": { "type": "string" }, "os_version": { "type": ["string", "null"] },
                    "build_version": { "type": ["string", "null"] }, "device_name": { "type": ["string", "null"] },
                    "topic": { "type": ["string", "null"] }, "push_token": { "type": ["string", "null"], "description": "hex" },
                    "push_magic": { "type": ["string", "null"] }, "has_unlock_token": { "type": "boolean" },
                    "has_bootstrap_token": { "type": "boolean" }, "enrolled": { "type": "boolean" },
                    "enrolled_at": { "type": ["string", "null"], "format": "date-time" },
                    "last_seen_at": { "type": ["string", "null"], "format": "date-time" },
                    "identity_fingerprint": { "type": ["string", "null"], "description": "SHA-256 of the identity certificate" },
                    "identity_revoked_at": { "type": ["string", "null"], "format": "date-time", "description": "When the identity was revoked (wiped, retired, checked out, by hand)" },
                    "identity_revocation_reason": { "type": ["string", "null"] },
                    "retired_at": { "type": ["string", "null"], "format": "date-time" },
                    "hardware_encrypted": { "type": ["boolean", "null"] }, "passcode_present": { "type": ["boolean", "null"] },
                    "passcode_compliant": { "type": ["boolean", "null"] },
                    "push_token_invalid_at": { "type": ["string", "null"], "format": "date-time" },
                    "last_push_at": { "type": ["string", "null"], "format": "date-time" },
                    "enrollment_id": { "type": ["string", "null"] }, "assigned_user": { "type": ["string", "null"] },
                    "assigned_group": { "type": ["string", "null"] },
                    "installed_profiles": { "type": ["array", "null"], "items": { "type": "object" } } } },
                "DevicePage": { "type": "object", "properties": {
                    "items": { "type": "array", "items": { "$ref": "#/components/schemas/Device" } },
                    "total": { "type": "integer" }, "offset": { "type": "integer" }, "limit": { "type": "integer" } } },
                "CommandRequest": command_schema(false),
                "BulkCommandRequest": command_schema(true),
                "LockRequest": { "type": "object", "additionalProperties": false, "description": "Apple only; Android's LOCK takes none of them",
                    "properties": { "message": device_text(), "phone_number": device_text(),
                        "pin": { "type": "string", "pattern": "^[0-9]{6}$", "description": "macOS: the Find My PIN" } } },
                "WipeRequest": { "type": "object", "properties": {
                    "confirm": { "type": "string", "description": "the device's serial number (or UDID if it has none)" },
                    "pin": { "type": "string" }, "preserve_data_plan": { "type": "boolean" }, "disallow_proximity_setup": { "type": "boolean" },
                    "flags": { "type": "array", "description": "Android only: AMAPI wipeDataFlags", "items": { "type": "string", "enum": ["PRESERVE_RESET_PROTECTION_DATA", "WIPE_EXTERNAL_STORAGE", "WIPE_ESIMS"] } },
                    "reason": { "type": "string", "description": "Android only: shown to the user of a work profile" } } },
                "Queued": { "type": "object", "properties": { "device_id": { "type": "string" }, "command_uuid": { "type": "string" }, "request_type": { "type": "string" } } },
                "Command": { "type": "object", "properties": {
                    "uuid": { "type": "string" }, "device_id": { "type": "string" }, "request_type": { "type": "string" },
                    "priority": { "type": "integer" },
                    "status": { "type": "string", "enum": ["pending", "sent", "not_now", "acknowledged", "error", "command_format_error", "cancelled", "expired"] },
                    "created_by": { "type": "string" }, "created_at": { "type": "string", "format": "date-time" },
                    "expires_at": { "type": ["string", "null"], "format": "date-time" },
                    "delivered_at": { "type": ["string", "null"], "format": "date-time" },
                    "completed_at": { "type": ["string", "null"], "format": "date-time" },
                    "delivery_count": { "type": "integer" }, "not_now_count": { "type": "integer" },
                    "result_raw": { "type": ["string", "null"], "description": "the device's report, XML plist; a report carrying a secret (result.sealed_fields) is stored sealed and given only by GET /commands/{uuid}, null in lists" },
                    "result": { "type": ["object", "null"], "description": "status, error_chain and fields of the report; a secret's value reads \"<sealed>\" (keys in sealed_fields) except in GET /commands/{uuid}" } } },
                "CommandPage": { "type": "object", "properties": {
                    "items": { "type": "array", "items": { "$ref": "#/components/schemas/Command" } },
                    "total": { "type": "integer" }, "offset": { "type": "integer" }, "limit": { "type": "integer" } } },
                "PushCertificate": { "type": "object", "properties": {
                    "topic": { "type": "string" }, "subject": { "type": "string" }, "fingerprint": { "type": "string" },
                    "not_before": { "type": "string", "format": "date-time" }, "not_after": { "type": "string", "format": "date-time" },
                    "days_left": { "type": "integer" }, "warning": { "type": ["string", "null"] },
                    "uploaded_by": { "type": "string" }, "uploaded_at": { "type": "string", "format": "date-time" } } },
                "PushCertificateUpload": { "type": "object", "properties": {
                    "certificate_pem": { "type": "string" },
                    "private_key_pem": { "type": "string", "description": "omit to use the push key the server kept" },
                    "pkcs12_base64": { "type": "string" }, "password": { "type": "string" } } },
                "DevicePush": { "type": "object", "properties": {
                    "device_id": { "type": "string" },
                    "outcome": { "type": "string", "enum": ["delivered", "token_invalid", "configuration_error", "retries_exhausted", "rejected", "no_push_token", "push_token_invalid", "no_push_certificate"] },
                    "http_status": { "type": ["integer", "null"] }, "reason": { "type": ["string", "null"] },
                    "apns_id": { "type": ["string", "null"] }, "attempts": { "type": "integer" } } },
                "EnrollmentRequest": { "type": "object", "required": ["platform", "name"], "properties": {
                    "platform": { "type": "string", "enum": ["apple", "android"] }, "name": { "type": "string" },
                    "expires_at": { "type": "string", "format": "date-time" }, "expires_in_hours": { "type": "integer", "minimum": 1, "maximum": 8_760_000 },
                    "max_uses": { "type": "integer", "minimum": 1, "maximum": 2_147_483_647 }, "user": { "type": "string" }, "group": { "type": "string" },
                    "android": { "type": "object", "properties": {
                        "wifi": { "type": "object", "required": ["ssid", "security_type"], "properties": {
                            "ssid": { "type": "string" }, "hidden": { "type": "boolean" },
                            "security_type": { "type": "string", "enum": ["NONE", "WPA", "WEP", "EAP"] },
                            "password": { "type": "string" }, "eap_method": { "type": "string" }, "phase2_auth": { "type": "string" },
                            "identity": { "type": "string" }, "anonymous_identity": { "type": "string" }, "domain": { "type": "string" },
                            "ca_certificate": { "type": "string" }, "user_certificate": { "type": "string" } } },
                        "locale": { "type": "string" }, "time_zone": { "type": "string" },
                        "leave_all_system_apps_enabled": { "type": "boolean" },
                        "work_profile": { "type": "boolean", "description": "Android Enterprise: a work profile (personal use allowed) instead of a fully managed device" } } } } },
                "AndroidConnect": { "type": "object", "required": ["service_account"], "properties": {
                    "service_account": { "type": "object", "description": "the service account's JSON key file, as downloaded" },
                    "pubsub_topic": { "type": "string", "description": "projects/<project>/topics/<topic>" },
                    "pubsub_subscription": { "type": "string", "description": "projects/<project>/subscriptions/<subscription>" } } },
                "AndroidSignup": { "type": "object", "properties": {
                    "project_id": { "type": "string" }, "client_email": { "type": "string" }, "signup_url": { "type": "string" } } },
                "AndroidSync": { "type": "object", "properties": { "devices": { "type": "integer" } } },
                "AndroidStatus": { "type": "object", "properties": {
                    "state": { "type": "string", "enum": ["signup_pending", "enterprise_created", "error"] },
                    "enterprise": { "type": ["string", "null"] }, "enterprise_display_name": { "type": ["string", "null"] },
                    "project_id": { "type": "string" }, "client_email": { "type": "string" },
                    "pubsub_topic": { "type": ["string", "null"] }, "pubsub_subscription": { "type": ["string", "null"] },
                    "notification_types": { "type": "array", "items": { "type": "string" } },
                    "signup_url": { "type": ["string", "null"] },
                    "last_sync_at": { "type": ["string", "null"], "format": "date-time" },
                    "last_pull_at": { "type": ["string", "null"], "format": "date-time" },
                    "last_error": { "type": ["string", "null"] }, "last_error_at": { "type": ["string", "null"], "format": "date-time" } } },
                "Enrollment": { "type": "object", "properties": {
                    "id": { "type": "string" }, "platform": { "type": "string" }, "name": { "type": "string" },
                    "state": { "type": "string", "enum": ["active", "expired", "revoked", "used_up"] },
                    "url": { "type": "string" }, "token": { "type": "string" },
                    "qr_payload": { "type": "string", "description": "the URL (Apple) or the provisioning JSON (Android)" },
                    "expires_at": { "type": ["string", "null"], "format": "date-time" }, "max_uses": { "type": ["integer", "null"] },
                    "uses": { "type": "integer" }, "revoked_at": { "type": ["string", "null"], "format": "date-time" },
                    "assigned_user": { "type": ["string", "null"] }, "assigned_group": { "type": ["string", "null"] },
                    "created_by": { "type": "string" }, "created_at": { "type": "string", "format": "date-time" },
                    "options": { "type": "object" } } },
                "Event": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "occurred_at": { "type": "string", "format": "date-time" },
                    "kind": { "type": "string" }, "severity": { "type": ["integer", "null"], "minimum": 0, "maximum": 5 },
                    "device_id": { "type": ["string", "null"] }, "actor": { "type": ["string", "null"] },
                    "message": { "type": "string" }, "data": {} } }
            }
        }
    })
}

/// The whole document: every module's paths, each operation with its right
/// (http/api/rights.rs).
pub fn full_document() -> Value {
    let mut doc = spec();
    super::directory::describe(&mut doc);
    super::policies::describe(&mut doc);
    super::incidents::describe(&mut doc);
    super::session::describe(&mut doc);
    super::admins::describe(&mut doc);
    super::audit::describe(&mut doc);
    super::rights::annotate(&mut doc);
    bound_integer_parameters(&mut doc);
    declare_refusals(&mut doc);
    close_request_bodies(&mut doc);
    doc
}

/// A request body names every field it takes: a field the document does not list
/// is refused (400), not silently ignored, so that a misspelt option never takes
/// effect as its default. Set on each top-level body object that does not say
/// otherwise (composed schemas state their own).
fn close_request_bodies(doc: &mut Value) {
    let mut referenced = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for operations in paths.values_mut() {
            let Some(operations) = operations.as_object_mut() else {
                continue;
            };
            for operation in operations.values_mut() {
                // get_mut, not indexing: IndexMut would add the missing keys.
                let Some(schema) = operation
                    .get_mut("requestBody")
                    .and_then(|b| b.get_mut("content"))
                    .and_then(|c| c.get_mut("application/json"))
                    .and_then(|j| j.get_mut("schema"))
                else {
                    continue;
                };
                if let Some(name) = schema["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    referenced.push(name.to_owned());
                } else if schema.is_object() {
                    close(schema);
                }
            }
        }
    }
    for name in referenced {
        if let Some(schema) = doc
            .get_mut("components")
            .and_then(|c| c.get_mut("schemas"))
            .and_then(|s| s.get_mut(name.as_str()))
        {
            close(schema);
        }
    }
}

fn close(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let composed = ["allOf", "oneOf", "anyOf"]
        .iter()
        .any(|k| object.contains_key(*k));
    if object.contains_key("properties")
        && !composed
        && !object.contains_key("additionalProperties")
    {
        object.insert("additionalProperties".into(), Value::Bool(false));
    }
    // A required text is a name, a URL, a reason: blank is no value, and the
    // services refuse it.
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    // Nested objects are read by the same strict structs.
    for property in properties.values_mut() {
        if property.get("type").and_then(Value::as_str) == Some("object") {
            close(property);
        }
    }
    // An optional field may be given as null, which means absent (the CLI sends
    // unset options so, and the services read them as Option).
    for (name, property) in properties.iter_mut() {
        if required.contains(name) {
            continue;
        }
        let Some(property) = property.as_object_mut() else {
            continue;
        };
        if let Some(Value::String(kind)) = property.get("type").cloned() {
            property.insert("type".into(), json!([kind, "null"]));
            if let Some(Value::Array(values)) = property.get_mut("enum") {
                values.push(Value::Null);
            }
        }
    }
    for name in required {
        let Some(property) = properties.get_mut(&name).and_then(Value::as_object_mut) else {
            continue;
        };
        let free_text = property.get("type").and_then(Value::as_str) == Some("string")
            && !["minLength", "pattern", "enum", "format", "const"]
                .iter()
                .any(|k| property.contains_key(*k));
        if free_text {
            property.insert("minLength".into(), json!(1));
            property.insert("pattern".into(), json!("\\S"));
        }
    }
}

/// Every operation's refusals, whichever module described it: 400 (the request
/// breaks this document, http/api/contract.rs), 422 (well formed, refused for what
/// it says), 401 (no or a wrong credential) unless public, 404 when it names
/// something by a path parameter.
fn declare_refusals(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let public = operation["security"].as_array().is_some_and(Vec::is_empty);
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let mut codes = vec!["400", "422"];
            if !public {
                codes.push("401");
            }
            if path.contains('{') {
                codes.push("404");
            }
            for code in codes {
                responses
                    .entry(code)
                    .or_insert(json!({ "$ref": "#/components/responses/Error" }));
            }
        }
    }
}

/// Integer query and path parameters get the bounds the server parses: `offset` and
/// ids from 0, `limit` 1 to 1,000 (pages are cut there), and nothing past 2^53 - 1
/// (the largest integer every JSON client reads exactly), where a module said none.
fn bound_integer_parameters(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for operations in paths.values_mut() {
        let Some(operations) = operations.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut() {
            let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for parameter in parameters {
                let limit = parameter.get("name").and_then(Value::as_str) == Some("limit");
                let Some(schema) = parameter.get_mut("schema") else {
                    continue;
                };
                if schema.get("type").and_then(Value::as_str) != Some("integer") {
                    continue;
                }
                if schema.get("minimum").is_none() {
                    schema["minimum"] = json!(if limit { 1 } else { 0 });
                }
                if schema.get("maximum").is_none() {
                    schema["maximum"] = if limit {
                        json!(1000)
                    } else {
                        json!(9_007_199_254_740_991_i64)
                    };
                }
            }
        }
    }
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(full_document())
}
