//! `/admins`, `/admin-groups`, `/roles` (and the role matrix), and off-boarding
//! (`/users/{username}/offboard`, `/offboarding`).

use super::Admin;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::services::admins::offboarding::OffboardRequest;
use crate::services::admins::{NewAdmin, RoleUpdate};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admins", web::get().to(list))
        .route("/admins", web::post().to(create))
        .route("/admins/{name}", web::get().to(show))
        .route("/admins/{name}/disable", web::post().to(disable))
        .route("/admins/{name}/enable", web::post().to(enable))
        .route("/admins/{name}/password", web::post().to(reset_password))
        .route("/admins/{name}/totp", web::delete().to(reset_totp))
        .route("/admin-groups", web::get().to(groups))
        .route("/admin-groups/{name}", web::put().to(put_group))
        .route("/admin-groups/{name}", web::delete().to(delete_group))
        .route(
            "/admin-groups/{name}/members",
            web::post().to(group_members),
        )
        .route("/admin-groups/{name}/roles", web::post().to(group_roles))
        .route("/roles", web::get().to(roles))
        .route("/roles/matrix", web::get().to(matrix))
        .route("/roles/matrix.csv", web::get().to(matrix_csv))
        .route("/roles/{name}", web::put().to(put_role))
        .route("/roles/{name}", web::delete().to(delete_role))
        .route("/users/{username}/offboard", web::post().to(offboard))
        .route("/offboarding", web::get().to(offboarding_list))
        .route("/offboarding/{id}", web::get().to(offboarding_show));
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let items = state.admins.accounts.admins().await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut new: NewAdmin = parse(&body)?;
    // Set by another admin: the owner of the account changes it at the first login.
    new.temporary = true;
    let view = state
        .admins
        .accounts
        .create_admin_as(admin.caller(), new)
        .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn show(
    state: web::Data<AppState>,
    _admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.admins.accounts.admin(&name).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DisableRequest {
    reason: Option<String>,
}

async fn disable(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: DisableRequest = parse(&body)?;
    Ok(HttpResponse::Ok().json(
        state
            .admins
            .accounts
            .disable(&admin.0.name, &name, body.reason)
            .await?,
    ))
}

async fn enable(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.admins.accounts.enable(&admin.0.name, &name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordReset {
    password: String,
}

async fn reset_password(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: PasswordReset = parse(&body)?;
    Ok(HttpResponse::Ok().json(
        state
            .admins
            .accounts
            .reset_password(&admin.0.name, &name, body.password, true)
            .await?,
    ))
}

async fn reset_totp(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(
        state
            .admins
            .accounts
            .reset_totp(&admin.0.name, &name)
            .await?,
    ))
}

async fn groups(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(json!({ "items": state.admins.accounts.groups().await? })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GroupRequest {
    #[serde(default)]
    description: String,
}

async fn put_group(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: GroupRequest = parse(&body)?;
    let created = state
        .admins
        .accounts
        .put_group(&admin.0.name, &name, &body.description)
        .await?;
    let group = state
        .admins
        .accounts
        .groups()
        .await?
        .into_iter()
        .find(|g| g.name == *name);
    Ok(if created {
        HttpResponse::Created().json(group)
    } else {
        HttpResponse::Ok().json(group)
    })
}

async fn delete_group(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .admins
        .accounts
        .delete_group(&admin.0.name, &name)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": name.into_inner() })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Change {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

async fn group_members(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: Change = parse(&body)?;
    state
        .admins
        .accounts
        .change_group(admin.caller(), &name, body.add, body.remove, vec![], vec![])
        .await?;
    group_view(&state, &name).await
}

async fn group_roles(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: Change = parse(&body)?;
    state
        .admins
        .accounts
        .change_group(admin.caller(), &name, vec![], vec![], body.add, body.remove)
        .await?;
    group_view(&state, &name).await
}

async fn group_view(state: &AppState, name: &str) -> Result<HttpResponse, ApiError> {
    let group = state
        .admins
        .accounts
        .groups()
        .await?
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no admin group {name:?}")))?;
    Ok(HttpResponse::Ok().json(group))
}

async fn roles(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(json!({ "items": state.admins.accounts.roles().await? })))
}

async fn matrix(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.admins.accounts.matrix().await?))
}

async fn matrix_csv(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(state.admins.accounts.matrix_csv().await?))
}

async fn put_role(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: RoleUpdate = parse(&body)?;
    let (role, created) = state
        .admins
        .accounts
        .put_role(admin.caller(), &name, body)
        .await?;
    Ok(if created {
        HttpResponse::Created().json(role)
    } else {
        HttpResponse::Ok().json(role)
    })
}

async fn delete_role(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .admins
        .accounts
        .delete_role(&admin.0.name, &name)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": name.into_inner() })))
}

async fn offboard(
    state: web::Data<AppState>,
    admin: Admin,
    username: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: OffboardRequest = parse(&body)?;
    // Off-boarding retires and wipes: the caller needs those rights as well.
    use crate::services::admins::offboarding::DeviceAction;
    let actions: Vec<DeviceAction> = body.devices.values().copied().chain(body.default).collect();
    if actions.contains(&DeviceAction::Wipe) {
        admin.require("devices.wipe")?;
    }
    if actions.contains(&DeviceAction::Retire) {
        admin.require("devices.manage")?;
    }
    let row = state
        .admins
        .offboarding
        .offboard(&admin.0, &username, body)
        .await?;
    Ok(HttpResponse::Accepted().json(row))
}

async fn offboarding_list(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.admins.offboarding.pending_list().await?))
}

async fn offboarding_show(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.admins.offboarding.show(&id).await?))
}

pub fn describe(doc: &mut Value) {
    let errors = |mut ok: Value| {
        for code in ["400", "401", "404", "409", "429", "503"] {
            ok[code] = json!({ "$ref": "#/components/responses/Error" });
        }
        ok
    };
    let obj = |code: &str, what: &str| json!({ code: { "description": what, "content": { "application/json": { "schema": { "type": "object" } } } } });
    let body = |props: Value, required: &[&str]| {
        json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "additionalProperties": false, "required": required, "properties": props } } } })
    };
    let optional = |props: Value| {
        json!({ "required": false, "content": { "application/json": { "schema": {
        "type": "object", "additionalProperties": false, "properties": props } } } })
    };
    let name =
        json!({ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } });
    let change = optional(
        json!({ "add": { "type": "array", "items": { "type": "string" } }, "remove": { "type": "array", "items": { "type": "string" } } }),
    );
    let paths = [
        (
            "/admins",
            json!({
                "get": { "summary": "Admin accounts: groups, roles, MFA state, password age, last login, lockout, disabled", "responses": errors(obj("200", "Admins")) },
                "post": { "summary": "Create an admin account (name identifying the person, e.g. jan.kowalski; a temporary password under the office's rules: it must change at the first login; admin groups)",
                          "requestBody": body(json!({ "name": { "type": "string" }, "display_name": { "type": "string" }, "email": { "type": "string" },
                              "password": { "type": "string", "format": "password" }, "groups": { "type": "array", "items": { "type": "string" } }, "temporary": { "type": "boolean" } }),
                              &["name", "display_name", "password"]),
                          "responses": errors(obj("201", "Created")) }
            }),
        ),
        (
            "/admins/{name}",
            json!({ "get": { "summary": "An admin account", "parameters": [name.clone()], "responses": errors(obj("200", "The admin")) } }),
        ),
        (
            "/admins/{name}/disable",
            json!({ "post": { "summary": "Disable an admin: its sessions and tokens refused from the next request on, every instance; removed from all admin groups",
            "parameters": [name.clone()], "requestBody": optional(json!({ "reason": { "type": "string" } })), "responses": errors(obj("200", "Disabled")) } }),
        ),
        (
            "/admins/{name}/enable",
            json!({ "post": { "summary": "Enable an admin again (its groups must be granted anew)", "parameters": [name.clone()], "responses": errors(obj("200", "Enabled")) } }),
        ),
        (
            "/admins/{name}/password",
            json!({ "post": { "summary": "Set a temporary password (must change at the next login)", "parameters": [name.clone()],
            "requestBody": body(json!({ "password": { "type": "string", "format": "password" } }), &["password"]), "responses": errors(obj("200", "Set")) } }),
        ),
        (
            "/admins/{name}/totp",
            json!({ "delete": { "summary": "Reset an admin's second factor (a lost phone); its sessions end, it enrols again at the next login", "parameters": [name.clone()], "responses": errors(obj("200", "Reset")) } }),
        ),
        (
            "/admin-groups",
            json!({ "get": { "summary": "Admin groups with their members and roles (roles are granted to groups, never to a person)", "responses": errors(obj("200", "Groups")) } }),
        ),
        (
            "/admin-groups/{name}",
            json!({
                "put": { "summary": "Create an admin group or change its description", "parameters": [name.clone()],
                         "requestBody": optional(json!({ "description": { "type": "string" } })),
                         "responses": errors(json!({ "200": obj("200", "Saved")["200"], "201": obj("201", "Created")["201"] })) },
                "delete": { "summary": "Delete an admin group (its members lose its roles)", "parameters": [name.clone()], "responses": errors(obj("200", "Deleted")) }
            }),
        ),
        (
            "/admin-groups/{name}/members",
            json!({ "post": { "summary": "Add and remove members (admin names)", "parameters": [name.clone()], "requestBody": change.clone(), "responses": errors(obj("200", "The group")) } }),
        ),
        (
            "/admin-groups/{name}/roles",
            json!({ "post": { "summary": "Grant and revoke roles", "parameters": [name.clone()], "requestBody": change, "responses": errors(obj("200", "The group")) } }),
        ),
        (
            "/roles",
            json!({ "get": { "summary": "Roles: description (who gets it), rights, critical", "responses": errors(obj("200", "Roles")) } }),
        ),
        (
            "/roles/matrix",
            json!({ "get": { "summary": "The role matrix in the access policy's columns: system name, role name, description, rights, critical (with the groups holding each role, and every right explained)", "responses": errors(obj("200", "The matrix")) } }),
        ),
        (
            "/roles/matrix.csv",
            json!({ "get": { "summary": "The role matrix as CSV, the policy's columns in its order",
            "responses": errors(json!({ "200": { "description": "CSV", "content": { "text/csv": {} } } })) } }),
        ),
        (
            "/roles/{name}",
            json!({
                "put": { "summary": "Create or change a role: description, rights (or \"*\": every right), critical (administrative privileges, sensitive data or remote actions: its holders need a second factor)",
                         "parameters": [name.clone()],
                         "requestBody": body(json!({ "description": { "type": "string" }, "rights": { "type": "array", "items": { "type": "string" } }, "critical": { "type": "boolean" } }), &["description", "rights", "critical"]),
                         "responses": errors(json!({ "200": obj("200", "Saved")["200"], "201": obj("201", "Created")["201"] })) },
                "delete": { "summary": "Delete a role no group holds and no token carries (built-in roles are edited, not deleted)", "parameters": [name], "responses": errors(obj("200", "Deleted")) }
            }),
        ),
        (
            "/users/{username}/offboard",
            json!({ "post": {
            "summary": "Off-board a user: each of their devices retired (management and company data removed) or wiped, chosen per device ({devices: {<device id>: retire|wipe}, default}); every device must get one. Each device's result is tracked (GET /offboarding/{id})",
            "parameters": [{ "name": "username", "in": "path", "required": true, "schema": { "type": "string" } }],
            "requestBody": body(json!({ "devices": { "type": "object", "additionalProperties": { "type": "string", "enum": ["retire", "wipe"] } },
                "default": { "type": "string", "enum": ["retire", "wipe"] }, "comment": { "type": "string" } }), &[]),
            "responses": errors(obj("202", "Started: the devices' results")) } }),
        ),
        (
            "/offboarding",
            json!({ "get": { "summary": "Users disabled in (or removed from) the directory, with their devices and their latest off-boarding", "responses": errors(obj("200", "The off-boarding list")) } }),
        ),
        (
            "/offboarding/{id}",
            json!({ "get": { "summary": "An off-boarding and each device's result (pending until a wipe is acknowledged)",
            "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }], "responses": errors(obj("200", "The off-boarding")) } }),
        ),
    ];
    if let Some(map) = doc["paths"].as_object_mut() {
        for (path, item) in paths {
            map.insert(path.to_owned(), item);
        }
    }
}
