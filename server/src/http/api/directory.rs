//! Users, groups and the office's directory: `/directory/source` (where the directory
//! is; the bind password is taken, sealed and never shown), `/directory/sync`,
//! `/users` (list, the off-boarding list with `?disabled=true`, by hand, CSV import)
//! and `/groups`.

use super::Admin;
use crate::directory::plan::{UserInput, UserPatch};
use crate::http::error::ApiError;
use crate::services::directory::{DirectoryService, SourceRequest};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/directory/source", web::get().to(show_source))
        .route("/directory/source", web::put().to(put_source))
        .route("/directory/sync", web::post().to(sync))
        .route("/users", web::get().to(list_users))
        .route("/users", web::post().to(create_user))
        .route("/users/import", web::post().to(import))
        .route("/users/{username}", web::get().to(show_user))
        .route("/users/{username}", web::patch().to(update_user))
        .route("/users/{username}", web::delete().to(delete_user))
        .route("/groups", web::get().to(list_groups))
        .route("/groups/{name}", web::get().to(show_group));
}

type Directory = web::Data<DirectoryService>;

fn json_body<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

async fn show_source(dir: Directory, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let view = dir.source().await?.ok_or_else(|| {
        ApiError::not_found(
            "no directory is configured: PUT /api/v1/directory/source (mdm directory configure)",
        )
    })?;
    Ok(HttpResponse::Ok().json(view))
}

async fn put_source(
    dir: Directory,
    admin: Admin,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let req: SourceRequest = json_body(body.into_inner())?;
    Ok(HttpResponse::Ok().json(dir.configure(&admin.0.name, req).await?))
}

/// 200 with what the sync did, or 502 with why the directory could not be read or
/// its answer was refused (nothing changed).
async fn sync(dir: Directory, admin: Admin) -> Result<HttpResponse, ApiError> {
    match dir.sync(&admin.0.name).await? {
        Ok(summary) => Ok(HttpResponse::Ok().json(summary)),
        Err(why) => Err(ApiError::new(StatusCode::BAD_GATEWAY, why)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersQuery {
    disabled: Option<bool>,
}

async fn list_users(
    dir: Directory,
    _admin: Admin,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = dir.users(query.disabled).await?;
    Ok(HttpResponse::Ok().json(json!({ "total": items.len(), "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    upn: String,
    email: String,
    display_name: String,
    department: Option<String>,
    groups: Option<Vec<String>>,
}

async fn create_user(
    dir: Directory,
    admin: Admin,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let u: NewUser = json_body(body.into_inner())?;
    let user = dir
        .create_user(
            &admin.0.name,
            UserInput {
                row: 0,
                username: u.username,
                upn: u.upn,
                email: u.email,
                display_name: u.display_name,
                department: u.department,
                groups: u.groups,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(user))
}

/// `text/csv` as the body, or JSON `{"csv": "..."}`. 400 lists every problem with
/// its row and column, and nothing is written.
async fn import(
    dir: Directory,
    admin: Admin,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let csv: Vec<u8> = if content_type.starts_with("application/json") {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct CsvBody {
            csv: String,
        }
        let b: CsvBody = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "invalid JSON body (want {{\"csv\": \"...\"}}): {e}"
            ))
        })?;
        b.csv.into_bytes()
    } else {
        body.to_vec()
    };
    match dir.import_csv(&admin.0.name, &csv).await? {
        Ok(summary) => Ok(HttpResponse::Ok().json(summary)),
        Err(errors) => Ok(HttpResponse::UnprocessableEntity().json(json!({
            "error": format!(
                "the CSV file was not imported ({} problem{}): {}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                errors.join("; ")
            ),
            "errors": errors,
        }))),
    }
}

async fn show_user(
    dir: Directory,
    _admin: Admin,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(dir.user(&username).await?))
}

/// A field absent is left as it is; `"department": null` clears it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    upn: Option<String>,
    email: Option<String>,
    display_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    department: Option<Option<String>>,
    groups: Option<Vec<String>>,
    disabled: Option<bool>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn update_user(
    dir: Directory,
    admin: Admin,
    username: web::Path<String>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let p: PatchBody = json_body(body.into_inner())?;
    let patch = UserPatch {
        upn: p.upn,
        email: p.email,
        display_name: p.display_name,
        department: p.department,
        groups: p.groups,
        disabled: p.disabled,
    };
    Ok(HttpResponse::Ok().json(dir.update_user(&admin.0.name, &username, patch).await?))
}

async fn delete_user(
    dir: Directory,
    admin: Admin,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(dir.delete_user(&admin.0.name, &username).await?))
}

async fn list_groups(dir: Directory, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let items = dir.groups().await?;
    Ok(HttpResponse::Ok().json(json!({ "total": items.len(), "items": items })))
}

async fn show_group(
    dir: Directory,
    _admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(dir.group(&name).await?))
}

/// The paths and schemas of this module in openapi.json (added to the document
/// openapi.rs writes).
pub fn describe(doc: &mut Value) {
    let errors = |mut ok: Value| {
        for code in ["400", "401", "404", "409", "413", "429", "503"] {
            ok[code] = json!({ "$ref": "#/components/responses/Error" });
        }
        ok
    };
    let ok = |code: &str, schema: &str, what: &str| json!({ code: { "description": what, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } } });
    let body = |schema: &str| json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } });
    let username = json!({ "name": "username", "in": "path", "required": true, "schema": { "type": "string" }, "description": "The username (compared exactly, else ignoring case)" });
    let mut sync_responses = errors(ok("200", "DirectorySync", "What the sync did"));
    sync_responses["502"] = json!({ "description": "The directory could not be read (unreachable, TLS, bind refused) or its answer was refused; nothing changed", "content": { "application/json": { "schema": { "type": "object", "properties": { "error": { "type": "string" } } } } } });
    let mut import_responses = errors(ok("200", "UserImport", "Imported"));
    import_responses["400"] = json!({ "description": "Nothing imported: every problem with its row and column", "content": { "application/json": { "schema": {
        "type": "object", "properties": { "error": { "type": "string" }, "errors": { "type": "array", "items": { "type": "string" } } } } } } });
    let paths = [
        (
            "/directory/source",
            json!({
                "get": { "summary": "The office's directory: where it is, how it is read, the last sync; never the bind password (bind_password_set)",
                         "responses": errors(ok("200", "DirectorySource", "The configuration")) },
                "put": { "summary": "Configure the directory (LDAPS, or ldap:// with start_tls; plain ldap:// only with insecure_plaintext). The bind password is sealed at once and never returned; omitted, the stored one is kept. The server connects and binds first (unless verify=false): a configuration that does not work is refused (400) and nothing is saved",
                         "requestBody": body("DirectorySourceRequest"),
                         "responses": errors(ok("200", "DirectorySource", "Saved")) }
            }),
        ),
        (
            "/directory/sync",
            json!({
                "post": { "summary": "Sync users and groups from the directory now, in one transaction: new users created, changed ones updated (directory.user_changed), disabled ones flagged, those gone from the directory disabled as removed (never deleted)",
                          "responses": sync_responses }
            }),
        ),
        (
            "/users",
            json!({
                "get": { "summary": "Users with their groups and devices; disabled=true is the off-boarding list (disabled in the directory, removed from it, or by hand)",
                         "parameters": [{ "name": "disabled", "in": "query", "schema": { "type": "boolean" } }],
                         "responses": errors(json!({ "200": { "description": "Users", "content": { "application/json": { "schema": {
                            "type": "object", "properties": { "total": { "type": "integer" }, "items": { "type": "array", "items": { "$ref": "#/components/schemas/User" } } } } } } } })) },
                "post": { "summary": "Add a user by hand (source manual)",
                          "requestBody": body("NewUser"),
                          "responses": errors(ok("201", "User", "Created")) }
            }),
        ),
        (
            "/users/import",
            json!({
                "post": { "summary": "Import users from CSV (username,upn,email,display_name,department,groups; groups separated by ';'), all rows or none. Body: text/csv, or JSON {\"csv\": \"...\"}",
                          "requestBody": { "required": true, "content": {
                              "text/csv": { "schema": { "type": "string" } },
                              "application/json": { "schema": { "type": "object", "required": ["csv"], "properties": { "csv": { "type": "string" } } } } } },
                          "responses": import_responses }
            }),
        ),
        (
            "/users/{username}",
            json!({
                "get": { "summary": "A user with groups and devices", "parameters": [username.clone()],
                         "responses": errors(ok("200", "User", "The user")) },
                "patch": { "summary": "Change a user: upn, email, display_name, department (null clears), groups, disabled. A directory user's attributes and groups are the directory's (409): only disabled can be set",
                           "parameters": [username.clone()],
                           "requestBody": body("UserPatch"),
                           "responses": errors(ok("200", "User", "Changed")) },
                "delete": { "summary": "Delete a user added by hand or imported, without devices (directory users are never deleted: 409)",
                            "parameters": [username],
                            "responses": errors(json!({ "200": { "description": "Deleted" } })) }
            }),
        ),
        (
            "/groups",
            json!({
                "get": { "summary": "Groups of users (from the directory, imports, by hand) with their number of members",
                         "responses": errors(json!({ "200": { "description": "Groups", "content": { "application/json": { "schema": {
                            "type": "object", "properties": { "total": { "type": "integer" }, "items": { "type": "array", "items": { "$ref": "#/components/schemas/UserGroup" } } } } } } } })) }
            }),
        ),
        (
            "/groups/{name}",
            json!({
                "get": { "summary": "A group and its members' usernames",
                         "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }],
                         "responses": errors(ok("200", "UserGroup", "The group")) }
            }),
        ),
    ];
    if let Some(map) = doc["paths"].as_object_mut() {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
    let attributes = json!({ "type": "object", "properties": {
        "username": { "type": "string", "description": "default uid (AD: sAMAccountName)" },
        "upn": { "type": "string", "description": "default mail (AD: userPrincipalName)" },
        "email": { "type": "string", "description": "default mail" },
        "display_name": { "type": "string", "description": "default displayName, falling back to cn" },
        "department": { "type": "string", "description": "default departmentNumber (AD: department)" },
        "group_name": { "type": "string", "description": "default cn" },
        "disabled": { "type": ["string", "null"], "description": "attribute marking a disabled account: default pwdAccountLockedTime (present: disabled); AD userAccountControl (bit 2); \"\" for none" },
        "disabled_value": { "type": ["string", "null"], "description": "the value of it that means disabled" } } });
    let schemas = [
        (
            "DirectorySourceRequest",
            json!({ "type": "object", "required": ["url", "bind_dn", "base_dn"], "additionalProperties": false, "properties": {
            "flavor": { "type": "string", "enum": ["openldap", "active_directory"], "default": "openldap" },
            "url": { "type": "string", "description": "ldaps://host[:port] or ldap://host[:port]" },
            "start_tls": { "type": "boolean" }, "insecure_plaintext": { "type": "boolean" },
            "bind_dn": { "type": "string" },
            "bind_password": { "type": "string", "writeOnly": true, "description": "sealed at once, never returned; omit to keep the stored one" },
            "base_dn": { "type": "string" }, "user_filter": { "type": "string" }, "group_filter": { "type": "string" },
            "attributes": attributes.clone(),
            "ca_pem": { "type": "string", "description": "PEM CA certificate(s) for the directory's TLS certificate (default: the system's roots)" },
            "interval_seconds": { "type": "integer", "description": "0: on demand only; else 5 to 604800 (default 3600)" },
            "verify": { "type": "boolean", "default": true, "description": "connect and bind before saving" } } }),
        ),
        (
            "DirectorySource",
            json!({ "type": "object", "properties": {
            "flavor": { "type": "string" }, "url": { "type": "string" }, "start_tls": { "type": "boolean" },
            "insecure_plaintext": { "type": "boolean" }, "bind_dn": { "type": "string" },
            "bind_password_set": { "type": "boolean" }, "base_dn": { "type": "string" },
            "user_filter": { "type": "string" }, "group_filter": { "type": "string" }, "attributes": attributes,
            "ca_pem": { "type": ["string", "null"] }, "interval_seconds": { "type": "integer" },
            "last_sync_at": { "type": ["string", "null"], "format": "date-time" },
            "last_sync_status": { "type": ["string", "null"], "enum": ["ok", "failed", null] },
            "last_sync_error": { "type": ["string", "null"] }, "last_sync_counts": { "type": ["object", "null"] },
            "next_sync_at": { "type": ["string", "null"], "format": "date-time" },
            "updated_by": { "type": "string" }, "updated_at": { "type": "string", "format": "date-time" } } }),
        ),
        (
            "DirectorySync",
            json!({ "type": "object", "properties": {
            "users": { "type": "integer" }, "groups": { "type": "integer" }, "created": { "type": "integer" },
            "updated": { "type": "integer" }, "unchanged": { "type": "integer" }, "disabled": { "type": "integer" },
            "enabled": { "type": "integer" }, "removed": { "type": "integer" },
            "groups_created": { "type": "integer" }, "groups_updated": { "type": "integer" }, "groups_deleted": { "type": "integer" },
            "memberships_added": { "type": "integer" }, "memberships_removed": { "type": "integer" },
            "unresolved_members": { "type": "integer" }, "paged": { "type": "boolean" },
            "warnings": { "type": "array", "items": { "type": "string" } }, "warnings_total": { "type": "integer" } } }),
        ),
        (
            "User",
            json!({ "type": "object", "properties": {
            "username": { "type": "string" }, "upn": { "type": "string" }, "email": { "type": "string" },
            "display_name": { "type": "string" }, "department": { "type": ["string", "null"] },
            "groups": { "type": "array", "items": { "type": "string" } },
            "disabled": { "type": "boolean" }, "source": { "type": "string", "enum": ["ldap", "csv", "manual"] },
            "external_id": { "type": ["string", "null"], "description": "LDAP entryUUID (objectGUID), or the DN" },
            "disabled_reason": { "type": ["string", "null"], "enum": ["disabled in the directory", "removed from the directory", "disabled by hand", null] },
            "disabled_at": { "type": ["string", "null"], "format": "date-time" },
            "synced_at": { "type": ["string", "null"], "format": "date-time" },
            "created_at": { "type": "string", "format": "date-time" }, "updated_at": { "type": "string", "format": "date-time" },
            "devices": { "type": "array", "items": { "type": "object", "properties": {
                "id": { "type": "string" }, "platform": { "type": "string" }, "device_name": { "type": ["string", "null"] },
                "serial_number": { "type": ["string", "null"] }, "model": { "type": ["string", "null"] },
                "enrolled": { "type": "boolean" }, "last_seen_at": { "type": ["string", "null"], "format": "date-time" } } } } } }),
        ),
        (
            "NewUser",
            json!({ "type": "object", "required": ["username", "upn", "email", "display_name"], "additionalProperties": false, "properties": {
            "username": { "type": "string" }, "upn": { "type": "string" }, "email": { "type": "string" },
            "display_name": { "type": "string" }, "department": { "type": "string" },
            "groups": { "type": "array", "items": { "type": "string" } } } }),
        ),
        (
            "UserPatch",
            json!({ "type": "object", "additionalProperties": false, "properties": {
            "upn": { "type": "string" }, "email": { "type": "string" }, "display_name": { "type": "string" },
            "department": { "type": ["string", "null"] }, "groups": { "type": "array", "items": { "type": "string" } },
            "disabled": { "type": "boolean", "description": "true: disabled by hand; false: enabled" } } }),
        ),
        (
            "UserImport",
            json!({ "type": "object", "properties": {
            "rows": { "type": "integer" }, "created": { "type": "integer" }, "updated": { "type": "integer" },
            "unchanged": { "type": "integer" }, "groups_created": { "type": "integer" },
            "memberships_added": { "type": "integer" }, "memberships_removed": { "type": "integer" } } }),
        ),
        (
            "UserGroup",
            json!({ "type": "object", "properties": {
            "name": { "type": "string" }, "source": { "type": "string", "enum": ["ldap", "csv", "manual"] },
            "external_id": { "type": ["string", "null"] }, "members": { "type": "integer" },
            "usernames": { "type": "array", "items": { "type": "string" }, "description": "GET /groups/{name} only" } } }),
        ),
    ];
    if let Some(map) = doc["components"]["schemas"].as_object_mut() {
        for (name, schema) in schemas {
            map.insert(name.to_owned(), schema);
        }
    }
}
