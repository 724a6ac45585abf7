//! Device identity in storage: which certificate speaks for which device.
//!
//! `identity_bindings` has one row per certificate fingerprint ever bound; its primary
//! key decides races the reads cannot. Authenticate's whole decision (create, refresh,
//! move to a new certificate, or refuse) and an enrollment's use are one transaction
//! here, so that a refusal leaves nothing behind.

use super::devices::new_device_row;
use super::queue::cancel_open;
use super::SqlStore;
use crate::cache::Change;
use crate::storage::entities::{devices, identity_bindings, issued_certificates};
use crate::storage::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set};

/// Records that `fingerprint` speaks for `device_id`. The primary key on the
/// fingerprint makes a concurrent second binding of the same certificate fail.
pub(super) async fn bind(
    txn: &sea_orm::DatabaseTransaction,
    fingerprint: &str,
    device_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let inserted = identity_bindings::ActiveModel {
        fingerprint: Set(fingerprint.to_owned()),
        device_id: Set(device_id.to_owned()),
        bound_at: Set(now),
        retired_at: Set(None),
    }
    .insert(txn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        // Another transaction bound this certificate between our read and this insert.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Err(StoreError::Conflict(
                "this certificate was just bound to a device by another request".into(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Counts one use of enrollment `enrollment_id` for a device that binds through it,
/// if it still admits devices (not revoked, under its limit), and links the device
/// and its certificate to it. Conditional, so two devices racing for the last use
/// cannot both win.
async fn link_to_enrollment(
    txn: &sea_orm::DatabaseTransaction,
    device_id: &str,
    fingerprint: &str,
    enrollment_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<crate::domain::enrollment::Enrollment, BindingRefusal>> {
    use crate::storage::entities::enrollments;
    let counted = enrollments::Entity::update_many()
        .col_expr(
            enrollments::Column::Uses,
            Expr::col(enrollments::Column::Uses).add(1),
        )
        .filter(enrollments::Column::Id.eq(enrollment_id))
        .filter(enrollments::Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(enrollments::Column::MaxUses.is_null())
                .add(
                    Expr::col(enrollments::Column::Uses)
                        .lt(Expr::col(enrollments::Column::MaxUses)),
                ),
        )
        .exec(txn)
        .await?;
    if counted.rows_affected != 1 {
        return Ok(Err(BindingRefusal::EnrollmentClosed {
            message: "the enrollment this certificate came from admits no more devices (revoked or used up)".into(),
        }));
    }
    let Some(row) = enrollments::Entity::find_by_id(enrollment_id)
        .one(txn)
        .await?
    else {
        return Ok(Err(BindingRefusal::EnrollmentClosed {
            message: "the enrollment this certificate came from no longer exists".into(),
        }));
    };
    let (enrollment, _) = super::enrollment::enrollment_from_row(row);
    devices::Entity::update_many()
        .col_expr(
            devices::Column::EnrollmentId,
            Expr::value(enrollment.id.clone()),
        )
        .col_expr(
            devices::Column::AssignedUser,
            Expr::value(enrollment.assigned_user.clone()),
        )
        .col_expr(
            devices::Column::AssignedGroup,
            Expr::value(enrollment.assigned_group.clone()),
        )
        .col_expr(devices::Column::UpdatedAt, Expr::value(now))
        .filter(devices::Column::Id.eq(device_id))
        .exec(txn)
        .await?;
    issued_certificates::Entity::update_many()
        .col_expr(
            issued_certificates::Column::DeviceId,
            Expr::value(device_id),
        )
        .filter(issued_certificates::Column::Fingerprint.eq(fingerprint))
        .exec(txn)
        .await?;
    Ok(Ok(enrollment))
}

/// Ends a certificate's binding for good, and revokes it (with the RFC 5280 `reason`)
/// if our CA issued it.
pub(super) async fn retire(
    txn: &sea_orm::DatabaseTransaction,
    fingerprint: &str,
    now: DateTime<Utc>,
    reason: &str,
) -> StoreResult<()> {
    identity_bindings::Entity::update_many()
        .col_expr(identity_bindings::Column::RetiredAt, Expr::value(now))
        .filter(identity_bindings::Column::Fingerprint.eq(fingerprint))
        .exec(txn)
        .await?;
    issued_certificates::Entity::update_many()
        .col_expr(issued_certificates::Column::RevokedAt, Expr::value(now))
        .col_expr(
            issued_certificates::Column::RevocationReason,
            Expr::value(reason),
        )
        .filter(issued_certificates::Column::Fingerprint.eq(fingerprint))
        .filter(issued_certificates::Column::RevokedAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

pub(super) async fn authenticate(
    store: &SqlStore,
    record: AuthenticateRecord,
    rules: BindingRules,
) -> StoreResult<Result<AuthenticateOutcome, BindingRefusal>> {
    let now = rules.now;
    let fingerprint = record.identity_fingerprint.clone();
    let txn = store.begin_write().await?;
    let binding = identity_bindings::Entity::find_by_id(fingerprint.as_str())
        .one(&txn)
        .await?;
    let existing = devices::Entity::find()
        .filter(devices::Column::Udid.eq(record.udid.as_str()))
        .one(&txn)
        .await?;
    // The certificate's own history first: it speaks for one device, ever.
    if let Some(b) = &binding {
        if b.retired_at.is_some() {
            return Ok(Err(BindingRefusal::Retired {
                device_id: b.device_id.clone(),
            }));
        }
        if existing.as_ref().map(|d| d.id.as_str()) != Some(b.device_id.as_str()) {
            return Ok(Err(BindingRefusal::BoundToAnotherDevice {
                device_id: b.device_id.clone(),
            }));
        }
    }
    let Some(row) = existing else {
        let row = new_device_row(record, now, false);
        let device_id = row.id.clone().unwrap();
        row.insert(&txn).await?;
        bind(&txn, &fingerprint, &device_id, now).await?;
        let linked_enrollment = match &rules.enrollment_id {
            Some(id) => {
                match link_to_enrollment(&txn, &device_id, &fingerprint, id, now).await? {
                    Ok(enrollment) => Some(enrollment),
                    // Dropping the transaction rolls the new device back.
                    Err(refusal) => return Ok(Err(refusal)),
                }
            }
            None => None,
        };
        let change = Change::Device(device_id.clone());
        super::notify::announce(&txn, &change).await?;
        txn.commit().await?;
        store.changed(&change);
        return Ok(Ok(AuthenticateOutcome {
            device_id,
            was_known: false,
            rebound_from: None,
            approved: false,
            linked_enrollment,
            cancelled_commands: 0,
        }));
    };
    let device_id = row.id.clone();
    let same_certificate = row.identity_fingerprint.as_deref() == Some(fingerprint.as_str());
    // A revoked identity comes back only through a new enrollment: a fresh
    // certificate from our SCEP server, issued after the revocation. No approval,
    // renewal or external certificate revives it.
    let revoked_at = row.identity_revoked_at;
    let approved = revoked_at.is_none()
        && row
            .reenrollment_approved_until
            .is_some_and(|until| until > now);
    let released = row.released_at.is_some();
    let issued_after_revocation = match revoked_at {
        None => true,
        Some(at) => rules
            .certificate_issued_at
            .is_some_and(|issued| issued > at),
    };
    let may_move = approved || (released && rules.rebind_released && issued_after_revocation);
    if !(same_certificate || may_move) && revoked_at.is_some() {
        return Ok(Err(BindingRefusal::RevokedNeedsNewEnrollment { device_id }));
    }
    if !(same_certificate || may_move) {
        return Ok(Err(BindingRefusal::DeviceHeld {
            device_id,
            current_fingerprint: row.identity_fingerprint,
        }));
    }
    let keep_queue = !same_certificate && approved && row.reenrollment_keep_queue;
    let previous = row.identity_fingerprint.clone();
    // A device re-enrolling through the enrollment it already belongs to is not a
    // new use of it.
    let newly_linked = rules
        .enrollment_id
        .clone()
        .filter(|id| row.enrollment_id.as_deref() != Some(id.as_str()));
    let mut active: devices::ActiveModel = row.into();
    macro_rules! refresh {
        ($($field:ident),*) => {$(
            if record.$field.is_some() { active.$field = Set(record.$field.clone()); }
        )*};
    }
    refresh!(
        serial_number,
        imei,
        model,
        model_name,
        product_name,
        os_version,
        build_version,
        device_name,
        topic
    );
    active.os_family = Set(record.os_family.clone());
    active.identity_fingerprint = Set(Some(fingerprint.clone()));
    active.identity_subject = Set(Some(record.identity_subject.clone()));
    active.identity_not_after = Set(Some(record.identity_not_after.clone()));
    // A new enrollment: the old push token is void until TokenUpdate.
    active.push_token = Set(None);
    active.push_magic = Set(None);
    active.enrolled = Set(false);
    active.last_seen_at = Set(Some(now));
    active.updated_at = Set(now);
    let mut rebound_from = None;
    if !same_certificate {
        // Secrets escrowed by the previous holder of this record never reach the
        // new certificate: the device escrows its own again at TokenUpdate.
        active.unlock_token = Set(None);
        active.bootstrap_token = Set(None);
        active.released_at = Set(None);
        active.reenrollment_approved_until = Set(None);
        active.reenrollment_keep_queue = Set(false);
        active.identity_revoked_at = Set(None);
        active.identity_revocation_reason = Set(None);
        active.retired_at = Set(None);
        if let Some(old) = &previous {
            retire(&txn, old, now, "superseded").await?;
        }
        rebound_from = previous;
    }
    active.update(&txn).await?;
    if binding.is_none() {
        bind(&txn, &fingerprint, &device_id, now).await?;
    }
    let linked_enrollment = match &newly_linked {
        Some(id) => match link_to_enrollment(&txn, &device_id, &fingerprint, id, now).await? {
            Ok(enrollment) => Some(enrollment),
            Err(refusal) => return Ok(Err(refusal)),
        },
        None => None,
    };
    let cancelled_commands = if keep_queue {
        0
    } else {
        cancel_open(&txn, &device_id, now).await?
    };
    // Whatever an instance knew of this device (its certificate, its queue) is void.
    let change = Change::Device(device_id.clone());
    super::notify::announce(&txn, &change).await?;
    txn.commit().await?;
    store.changed(&change);
    Ok(Ok(AuthenticateOutcome {
        device_id,
        was_known: true,
        rebound_from,
        approved: approved && !same_certificate,
        linked_enrollment,
        cancelled_commands,
    }))
}
