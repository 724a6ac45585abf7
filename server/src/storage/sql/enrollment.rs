//! The sea-orm implementation of [`EnrollmentStore`].

use super::*;
use crate::domain::enrollment::Enrollment;
use crate::domain::Platform;
use crate::storage::entities::{
    devices, enrollments, issued_certificates, pki_objects, scep_challenges,
};
use crate::storage::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};

pub(super) fn enrollment_from_row(m: enrollments::Model) -> (Enrollment, Vec<u8>) {
    (
        Enrollment {
            id: m.id,
            platform: Platform::parse(&m.platform).unwrap_or(Platform::Apple),
            name: m.name,
            created_by: m.created_by,
            created_at: m.created_at,
            expires_at: m.expires_at,
            max_uses: m.max_uses,
            uses: m.uses,
            revoked_at: m.revoked_at,
            assigned_user: m.assigned_user,
            assigned_group: m.assigned_group,
            options: serde_json::from_str(&m.options).unwrap_or(serde_json::Value::Null),
        },
        m.token_sealed,
    )
}

fn issued_from_row(m: issued_certificates::Model) -> IssuedCertificate {
    IssuedCertificate {
        serial: m.serial,
        fingerprint: m.fingerprint,
        subject: m.subject,
        enrollment_id: m.enrollment_id,
        device_id: m.device_id,
        renewed_from: m.renewed_from,
        issued_at: m.issued_at,
        not_after: m.not_after,
        purpose: m.purpose,
    }
}

fn issued_row(c: IssuedCertificate) -> issued_certificates::ActiveModel {
    issued_certificates::ActiveModel {
        serial: Set(c.serial),
        fingerprint: Set(c.fingerprint),
        subject: Set(c.subject),
        enrollment_id: Set(c.enrollment_id),
        device_id: Set(c.device_id),
        renewed_from: Set(c.renewed_from),
        issued_at: Set(c.issued_at),
        not_after: Set(c.not_after),
        revoked_at: Set(None),
        revocation_reason: Set(None),
        purpose: Set(c.purpose),
    }
}

/// The checks a challenge must pass, on whatever connection (plain or transaction).
async fn check<C: ConnectionTrait>(
    db: &C,
    challenge_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Result<(scep_challenges::Model, Enrollment), ChallengeRefusal>> {
    let Some(challenge) = scep_challenges::Entity::find()
        .filter(scep_challenges::Column::ChallengeHash.eq(challenge_hash))
        .one(db)
        .await?
    else {
        return Ok(Err(ChallengeRefusal::Unknown));
    };
    if challenge.used_at.is_some() {
        return Ok(Err(ChallengeRefusal::AlreadyUsed));
    }
    if challenge.expires_at <= now {
        return Ok(Err(ChallengeRefusal::Expired));
    }
    let Some(row) = enrollments::Entity::find_by_id(challenge.enrollment_id.clone())
        .one(db)
        .await?
    else {
        return Ok(Err(ChallengeRefusal::Unknown));
    };
    let (enrollment, _) = enrollment_from_row(row);
    if let Some(device_id) = &challenge.device_id {
        // A device's Wi-Fi certificate: good while that device is managed, whatever
        // became of the enrollment it once came through (used up, expired).
        let managed = devices::Entity::find_by_id(device_id.clone())
            .one(db)
            .await?
            .is_some_and(|d| {
                d.enrolled && d.retired_at.is_none() && d.identity_revoked_at.is_none()
            });
        if !managed {
            return Ok(Err(ChallengeRefusal::Enrollment(
                "the device this Wi-Fi certificate was meant for is no longer managed".into(),
            )));
        }
        if enrollment.revoked_at.is_some() {
            return Ok(Err(ChallengeRefusal::Enrollment(
                "the enrollment the device came through was revoked".into(),
            )));
        }
        return Ok(Ok((challenge, enrollment)));
    }
    if let Some(message) = enrollment.refusal(now) {
        return Ok(Err(ChallengeRefusal::Enrollment(message)));
    }
    Ok(Ok((challenge, enrollment)))
}

#[async_trait]
impl EnrollmentStore for SqlStore {
    async fn create_enrollment(&self, new: NewEnrollment) -> StoreResult<()> {
        let e = new.enrollment;
        enrollments::ActiveModel {
            id: Set(e.id),
            platform: Set(e.platform.as_str().to_owned()),
            name: Set(e.name),
            token_hash: Set(new.token_hash),
            token_sealed: Set(new.token_sealed),
            created_by: Set(e.created_by),
            created_at: Set(e.created_at),
            expires_at: Set(e.expires_at),
            max_uses: Set(e.max_uses),
            uses: Set(0),
            revoked_at: Set(None),
            assigned_user: Set(e.assigned_user),
            assigned_group: Set(e.assigned_group),
            options: Set(e.options.to_string()),
        }
        .insert(self.connection())
        .await?;
        Ok(())
    }

    async fn enrollments(&self, include_inactive: bool) -> StoreResult<Vec<(Enrollment, Vec<u8>)>> {
        let now = Utc::now();
        let rows = enrollments::Entity::find()
            .order_by_desc(enrollments::Column::CreatedAt)
            .all(self.connection())
            .await?;
        Ok(rows
            .into_iter()
            .map(enrollment_from_row)
            .filter(|(e, _)| include_inactive || e.refusal(now).is_none())
            .collect())
    }

    async fn enrollment(&self, id: &str) -> StoreResult<Option<(Enrollment, Vec<u8>)>> {
        Ok(enrollments::Entity::find_by_id(id)
            .one(self.connection())
            .await?
            .map(enrollment_from_row))
    }

    async fn enrollment_by_token_hash(&self, hash: &str) -> StoreResult<Option<Enrollment>> {
        Ok(enrollments::Entity::find()
            .filter(enrollments::Column::TokenHash.eq(hash))
            .one(self.connection())
            .await?
            .map(|m| enrollment_from_row(m).0))
    }

    async fn revoke_enrollment(&self, id: &str, at: DateTime<Utc>) -> StoreResult<Enrollment> {
        enrollments::Entity::update_many()
            .col_expr(enrollments::Column::RevokedAt, Expr::value(at))
            .filter(enrollments::Column::Id.eq(id))
            .filter(enrollments::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        self.enrollment(id)
            .await?
            .map(|(e, _)| e)
            .ok_or_else(|| StoreError::NotFound(format!("enrollment {id} not found")))
    }

    async fn create_challenge(
        &self,
        enrollment_id: &str,
        challenge_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        scep_challenges::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            challenge_hash: Set(challenge_hash.to_owned()),
            enrollment_id: Set(enrollment_id.to_owned()),
            created_at: Set(Utc::now()),
            expires_at: Set(expires_at),
            used_at: Set(None),
            device_id: Set(None),
        }
        .insert(self.connection())
        .await?;
        Ok(())
    }

    async fn create_device_challenge(
        &self,
        enrollment_id: &str,
        device_id: &str,
        challenge_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        scep_challenges::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            challenge_hash: Set(challenge_hash.to_owned()),
            enrollment_id: Set(enrollment_id.to_owned()),
            created_at: Set(Utc::now()),
            expires_at: Set(expires_at),
            used_at: Set(None),
            device_id: Set(Some(device_id.to_owned())),
        }
        .insert(self.connection())
        .await?;
        Ok(())
    }

    async fn check_challenge(
        &self,
        challenge_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Enrollment, ChallengeRefusal>> {
        Ok(check(self.connection(), challenge_hash, now)
            .await?
            .map(|(_, e)| e))
    }

    async fn redeem_challenge(
        &self,
        challenge_hash: &str,
        issued: IssuedCertificate,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<Enrollment, ChallengeRefusal>> {
        let txn = self.begin_write().await?;
        let (challenge, enrollment) = match check(&txn, challenge_hash, now).await? {
            Ok(found) => found,
            Err(refusal) => return Ok(Err(refusal)),
        };
        // Conditional updates: of two devices racing with one challenge, or for the
        // last use of an enrollment, exactly one wins.
        let used = scep_challenges::Entity::update_many()
            .col_expr(scep_challenges::Column::UsedAt, Expr::value(now))
            .filter(scep_challenges::Column::Id.eq(challenge.id.as_str()))
            .filter(scep_challenges::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if used.rows_affected != 1 {
            return Ok(Err(ChallengeRefusal::AlreadyUsed));
        }
        // Uses count devices, not certificates: the use is counted when a device
        // first authenticates with this certificate (DeviceStore::authenticate). A
        // used-up enrollment is refused by `check` above.
        let wifi = challenge.device_id.is_some();
        issued_row(IssuedCertificate {
            enrollment_id: Some(enrollment.id.clone()),
            device_id: challenge.device_id.clone().or(issued.device_id.clone()),
            purpose: if wifi {
                "wifi".into()
            } else {
                issued.purpose.clone()
            },
            ..issued
        })
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Ok(enrollment))
    }

    async fn issued_certificate(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<IssuedCertificate>> {
        Ok(issued_certificates::Entity::find()
            .filter(issued_certificates::Column::Fingerprint.eq(fingerprint))
            .one(self.connection())
            .await?
            .map(issued_from_row))
    }

    async fn record_renewal(
        &self,
        issued: IssuedCertificate,
    ) -> StoreResult<Result<String, String>> {
        let now = Utc::now();
        let txn = self.begin_write().await?;
        let old = issued.renewed_from.clone().unwrap_or_default();
        let Some(device) = devices::Entity::find()
            .filter(devices::Column::IdentityFingerprint.eq(old.as_str()))
            .one(&txn)
            .await?
        else {
            return Ok(Err(
                "the signing certificate is not the current certificate of any device".into(),
            ));
        };
        if !device.enrolled {
            return Ok(Err(
                "the signing certificate's device is not enrolled (checked out or never finished)"
                    .into(),
            ));
        }
        let Some(previous) = issued_certificates::Entity::find()
            .filter(issued_certificates::Column::Fingerprint.eq(old.as_str()))
            .one(&txn)
            .await?
        else {
            return Ok(Err(
                "the signing certificate was not issued by this server".into()
            ));
        };
        if previous.revoked_at.is_some() {
            return Ok(Err("the signing certificate was revoked".into()));
        }
        if let Some(enrollment_id) = &previous.enrollment_id {
            let revoked = enrollments::Entity::find_by_id(enrollment_id.clone())
                .one(&txn)
                .await?
                .is_none_or(|e| e.revoked_at.is_some());
            if revoked {
                return Ok(Err(
                    "the enrollment the signing certificate came from was revoked".into(),
                ));
            }
        }
        issued_row(IssuedCertificate {
            device_id: Some(device.id.clone()),
            enrollment_id: previous.enrollment_id,
            ..issued.clone()
        })
        .insert(&txn)
        .await?;
        // Conditional on the device still holding the old certificate: of two renewals
        // racing with one certificate, one wins.
        let moved = devices::Entity::update_many()
            .col_expr(
                devices::Column::IdentityFingerprint,
                Expr::value(issued.fingerprint.clone()),
            )
            .col_expr(
                devices::Column::IdentitySubject,
                Expr::value(issued.subject.clone()),
            )
            .col_expr(
                devices::Column::IdentityNotAfter,
                Expr::value(issued.not_after.to_rfc3339()),
            )
            .col_expr(devices::Column::UpdatedAt, Expr::value(now))
            .filter(devices::Column::Id.eq(device.id.as_str()))
            .filter(devices::Column::IdentityFingerprint.eq(old.as_str()))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 {
            return Ok(Err("the signing certificate was renewed already".into()));
        }
        // The device now speaks with the new certificate only; the old one is retired
        // (and revoked) so it can neither renew again nor enroll anything.
        super::identity::retire(&txn, &old, now, "superseded").await?;
        super::identity::bind(&txn, &issued.fingerprint, &device.id, now).await?;
        let change = Change::Device(device.id.clone());
        super::notify::announce(&txn, &change).await?;
        txn.commit().await?;
        self.changed(&change);
        Ok(Ok(device.id))
    }

    async fn pki_object(&self, name: &str) -> StoreResult<Option<PkiObject>> {
        Ok(pki_objects::Entity::find_by_id(name)
            .one(self.connection())
            .await?
            .map(|m| PkiObject {
                name: m.name,
                certificate_pem: m.certificate_pem,
                chain_pem: m.chain_pem,
                private_key_sealed: m.private_key_sealed,
                imported: m.imported,
                created_at: m.created_at,
            }))
    }

    async fn put_pki_object(&self, o: PkiObject, replace: bool) -> StoreResult<bool> {
        let row = pki_objects::ActiveModel {
            name: Set(o.name),
            certificate_pem: Set(o.certificate_pem),
            chain_pem: Set(o.chain_pem),
            private_key_sealed: Set(o.private_key_sealed),
            imported: Set(o.imported),
            created_at: Set(o.created_at),
        };
        let mut conflict = OnConflict::column(pki_objects::Column::Name);
        if replace {
            conflict.update_columns([
                pki_objects::Column::CertificatePem,
                pki_objects::Column::ChainPem,
                pki_objects::Column::PrivateKeySealed,
                pki_objects::Column::Imported,
                pki_objects::Column::CreatedAt,
            ]);
        } else {
            conflict.do_nothing();
        }
        let result = pki_objects::Entity::insert(row)
            .on_conflict(conflict)
            .exec_without_returning(self.connection())
            .await?;
        Ok(result == 1)
    }

    async fn prune_challenges(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(scep_challenges::Entity::delete_many()
            .filter(scep_challenges::Column::ExpiresAt.lt(before))
            .exec(self.connection())
            .await?
            .rows_affected)
    }
}
