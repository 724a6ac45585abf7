//! Android devices (`devices` + `android_devices`) and AMAPI policies on sea-orm; the
//! [`AndroidStore`] methods in android.rs call these.

use super::events::insert_event;
use super::*;
use crate::domain::event::{kinds, NewEvent};
use crate::domain::Platform;
use crate::storage::entities::{android_devices, android_policies, devices, enrollments};
use crate::storage::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

fn to_state(
    m: android_devices::Model,
    enrollment_id: Option<String>,
    d: Option<&devices::Model>,
) -> AndroidDeviceState {
    let json = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
    AndroidDeviceState {
        device_id: m.device_id,
        record: AndroidDeviceRecord {
            name: m.name,
            enrollment_id,
            serial_number: d.and_then(|d| d.serial_number.clone()),
            imei: d.and_then(|d| d.imei.clone()),
            model: d.and_then(|d| d.model.clone()),
            os_version: d.and_then(|d| d.os_version.clone()),
            build_version: d.and_then(|d| d.build_version.clone()),
            management_mode: m.management_mode,
            ownership: m.ownership,
            state: m.state,
            applied_state: m.applied_state,
            api_level: m.api_level,
            security_patch_level: m.security_patch_level,
            policy_name: m.policy_name,
            applied_policy_name: m.applied_policy_name,
            applied_policy_version: m.applied_policy_version,
            policy_compliant: m.policy_compliant,
            non_compliance: json(m.non_compliance),
            security_posture: json(m.security_posture),
            encryption_status: m.encryption_status,
            encrypted: d.and_then(|d| d.hardware_encrypted),
            device_secure: d.and_then(|d| d.passcode_present),
            enrolled_at: d.and_then(|d| d.enrolled_at),
            last_status_report_at: m.last_status_report_at,
            observed_at: m.observed_at,
            facts: serde_json::from_str(&m.facts).unwrap_or_default(),
        },
        updated_at: m.updated_at,
    }
}

async fn load<C: sea_orm::ConnectionTrait>(
    db: &C,
    m: Option<android_devices::Model>,
) -> StoreResult<Option<AndroidDeviceState>> {
    let Some(m) = m else { return Ok(None) };
    let d = devices::Entity::find_by_id(m.device_id.clone())
        .one(db)
        .await?;
    let enrollment = d.as_ref().and_then(|d| d.enrollment_id.clone());
    Ok(Some(to_state(m, enrollment, d.as_ref())))
}

pub(super) async fn by_id(store: &SqlStore, id: &str) -> StoreResult<Option<AndroidDeviceState>> {
    let m = android_devices::Entity::find_by_id(id)
        .one(store.connection())
        .await?;
    load(store.connection(), m).await
}

pub(super) async fn by_name(
    store: &SqlStore,
    name: &str,
) -> StoreResult<Option<AndroidDeviceState>> {
    let m = android_devices::Entity::find()
        .filter(android_devices::Column::Name.eq(name))
        .one(store.connection())
        .await?;
    load(store.connection(), m).await
}

/// Whether AMAPI's state means the device is under management.
fn enrolled(state: Option<&str>) -> bool {
    !matches!(state, Some("DELETED") | Some("PROVISIONING"))
}

fn android_row(
    device_id: &str,
    r: &AndroidDeviceRecord,
    now: DateTime<Utc>,
) -> android_devices::ActiveModel {
    let text = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    android_devices::ActiveModel {
        device_id: Set(device_id.to_owned()),
        name: Set(r.name.clone()),
        management_mode: Set(r.management_mode.clone()),
        ownership: Set(r.ownership.clone()),
        state: Set(r.state.clone()),
        applied_state: Set(r.applied_state.clone()),
        api_level: Set(r.api_level),
        security_patch_level: Set(r.security_patch_level.clone()),
        policy_name: Set(r.policy_name.clone()),
        applied_policy_name: Set(r.applied_policy_name.clone()),
        applied_policy_version: Set(r.applied_policy_version),
        policy_compliant: Set(r.policy_compliant),
        non_compliance: Set(text(&r.non_compliance)),
        security_posture: Set(text(&r.security_posture)),
        encryption_status: Set(r.encryption_status.clone()),
        last_status_report_at: Set(r.last_status_report_at),
        observed_at: Set(r.observed_at),
        facts: Set(r.facts.to_string()),
        updated_at: Set(now),
        // Moved only by record_usage (never by a status report).
        usage_log_watermark: sea_orm::NotSet,
    }
}

pub(super) async fn upsert(
    store: &SqlStore,
    r: AndroidDeviceRecord,
    now: DateTime<Utc>,
) -> StoreResult<AndroidUpsert> {
    let txn = store.begin_write().await?;
    let existing = android_devices::Entity::find()
        .filter(android_devices::Column::Name.eq(r.name.as_str()))
        .one(&txn)
        .await?;
    let is_enrolled = enrolled(r.state.as_deref());
    if let Some(existing) = existing {
        if r.observed_at < existing.observed_at {
            return Ok(AndroidUpsert::Stale(existing.device_id));
        }
        let previous = load(&txn, Some(existing.clone()))
            .await?
            .expect("just read");
        // The same report again (a redelivery, a sync of a quiet device): nothing to
        // write. The enrollment link is set once, at first sight.
        let same = AndroidDeviceRecord {
            enrollment_id: previous.record.enrollment_id.clone(),
            ..r.clone()
        };
        if same == previous.record {
            return Ok(AndroidUpsert::Updated(Box::new(previous)));
        }
        android_row(&existing.device_id, &r, now)
            .update(&txn)
            .await?;
        let mut update = devices::Entity::update_many()
            .col_expr(
                devices::Column::SerialNumber,
                Expr::value(r.serial_number.clone()),
            )
            .col_expr(
                devices::Column::ReportedSerialNumber,
                Expr::value(r.serial_number.clone()),
            )
            .col_expr(devices::Column::Imei, Expr::value(r.imei.clone()))
            .col_expr(devices::Column::Model, Expr::value(r.model.clone()))
            .col_expr(
                devices::Column::OsVersion,
                Expr::value(r.os_version.clone()),
            )
            .col_expr(
                devices::Column::BuildVersion,
                Expr::value(r.build_version.clone()),
            )
            .col_expr(devices::Column::HardwareEncrypted, Expr::value(r.encrypted))
            .col_expr(
                devices::Column::PasscodePresent,
                Expr::value(r.device_secure),
            )
            .col_expr(
                devices::Column::PasscodeCompliant,
                Expr::value(r.policy_compliant),
            )
            .col_expr(devices::Column::Enrolled, Expr::value(is_enrolled))
            .col_expr(devices::Column::UpdatedAt, Expr::value(now));
        if let Some(seen) = r.last_status_report_at {
            update = update.col_expr(devices::Column::LastSeenAt, Expr::value(seen));
        }
        if !is_enrolled && previous.record.state.as_deref() != r.state.as_deref() {
            update = update.col_expr(devices::Column::UnenrolledAt, Expr::value(now));
        }
        update
            .filter(devices::Column::Id.eq(existing.device_id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        return Ok(AndroidUpsert::Updated(Box::new(previous)));
    }
    // First sight: link to the enrollment the token named (an Android one only).
    let enrollment = match &r.enrollment_id {
        Some(id) => {
            enrollments::Entity::find_by_id(id.as_str())
                .filter(enrollments::Column::Platform.eq(Platform::Android.as_str()))
                .one(&txn)
                .await?
        }
        None => None,
    };
    if let Some(e) = &enrollment {
        enrollments::Entity::update_many()
            .col_expr(
                enrollments::Column::Uses,
                Expr::col(enrollments::Column::Uses).add(1),
            )
            .filter(enrollments::Column::Id.eq(e.id.as_str()))
            .exec(&txn)
            .await?;
    }
    let id = uuid::Uuid::new_v4().to_string();
    devices::ActiveModel {
        id: Set(id.clone()),
        platform: Set(Platform::Android.as_str().to_owned()),
        udid: Set(None),
        serial_number: Set(r.serial_number.clone()),
        imei: Set(r.imei.clone()),
        model: Set(r.model.clone()),
        model_name: Set(r.facts["hardwareInfo"]["brand"].as_str().map(str::to_owned)),
        product_name: Set(None),
        os_family: Set("Android".into()),
        os_version: Set(r.os_version.clone()),
        build_version: Set(r.build_version.clone()),
        device_name: Set(None),
        topic: Set(None),
        push_token: Set(None),
        push_magic: Set(None),
        unlock_token: Set(None),
        bootstrap_token: Set(None),
        awaiting_configuration: Set(false),
        identity_fingerprint: Set(None),
        identity_subject: Set(None),
        identity_not_after: Set(None),
        enrolled: Set(is_enrolled),
        enrolled_at: Set(Some(r.enrolled_at.unwrap_or(now))),
        unenrolled_at: Set(None),
        last_seen_at: Set(r.last_status_report_at.or(r.enrolled_at)),
        hardware_encrypted: Set(r.encrypted),
        passcode_present: Set(r.device_secure),
        passcode_compliant: Set(r.policy_compliant),
        installed_profiles: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        push_token_invalid_at: Set(None),
        last_push_at: Set(None),
        enrollment_id: Set(enrollment.as_ref().map(|e| e.id.clone())),
        assigned_user: Set(enrollment.as_ref().and_then(|e| e.assigned_user.clone())),
        assigned_group: Set(enrollment.as_ref().and_then(|e| e.assigned_group.clone())),
        released_at: Set(None),
        reenrollment_approved_until: Set(None),
        reenrollment_keep_queue: Set(false),
        reported_serial_number: Set(r.serial_number.clone()),
        identity_revoked_at: Set(None),
        identity_revocation_reason: Set(None),
        retired_at: Set(None),
        compliant: Set(None),
        compliance_reasons: Set(None),
        compliance_checked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    android_row(&id, &r, now).insert(&txn).await?;
    insert_event(
        &txn,
        NewEvent::new(
            kinds::DEVICE_ENROLLED,
            format!(
                "Android device {} ({}) enrolled",
                r.serial_number.as_deref().unwrap_or("?"),
                r.model.as_deref().unwrap_or("?")
            ),
        )
        .device(&id)
        .data(serde_json::json!({
            "platform": "android",
            "amapi_name": r.name,
            "enrollment_id": enrollment.as_ref().map(|e| &e.id),
            "management_mode": r.management_mode,
            "ownership": r.ownership,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(AndroidUpsert::Created(id))
}

pub(super) async fn set_policy_name(
    store: &SqlStore,
    device_id: &str,
    name: &str,
) -> StoreResult<()> {
    android_devices::Entity::update_many()
        .col_expr(android_devices::Column::PolicyName, Expr::value(name))
        .filter(android_devices::Column::DeviceId.eq(device_id))
        .exec(store.connection())
        .await?;
    Ok(())
}

pub(super) async fn policy(
    store: &SqlStore,
    name: &str,
) -> StoreResult<Option<(String, Option<i64>)>> {
    Ok(android_policies::Entity::find_by_id(name)
        .one(store.connection())
        .await?
        .map(|m| (m.content_hash, m.version)))
}

pub(super) async fn put_policy(
    store: &SqlStore,
    name: &str,
    content_hash: &str,
    version: Option<i64>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    android_policies::Entity::insert(android_policies::ActiveModel {
        name: Set(name.to_owned()),
        content_hash: Set(content_hash.to_owned()),
        version: Set(version),
        patched_at: Set(at),
    })
    .on_conflict(
        OnConflict::column(android_policies::Column::Name)
            .update_columns([
                android_policies::Column::ContentHash,
                android_policies::Column::Version,
                android_policies::Column::PatchedAt,
            ])
            .to_owned(),
    )
    .exec(store.connection())
    .await?;
    Ok(())
}

pub(super) async fn usage_watermark(
    store: &SqlStore,
    device_id: &str,
) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(android_devices::Entity::find_by_id(device_id)
        .one(store.connection())
        .await?
        .and_then(|m| m.usage_log_watermark))
}

pub(super) async fn record_usage(
    store: &SqlStore,
    device_id: &str,
    previous: Option<DateTime<Utc>>,
    watermark: DateTime<Utc>,
    events: Vec<NewEvent>,
) -> StoreResult<bool> {
    let txn = store.begin_write().await?;
    let mut update = android_devices::Entity::update_many()
        .col_expr(
            android_devices::Column::UsageLogWatermark,
            Expr::value(watermark),
        )
        .filter(android_devices::Column::DeviceId.eq(device_id));
    // Compare-and-set: a batch handled meanwhile by another puller wins.
    update = match previous {
        Some(p) => update.filter(android_devices::Column::UsageLogWatermark.eq(p)),
        None => update.filter(android_devices::Column::UsageLogWatermark.is_null()),
    };
    if update.exec(&txn).await?.rows_affected != 1 {
        return Ok(false);
    }
    for e in events {
        insert_event(&txn, e).await?;
    }
    txn.commit().await?;
    Ok(true)
}
