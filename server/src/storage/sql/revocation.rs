//! Revocation of device identities, and the stored CRL every instance serves.

use super::queue::cancel_open;
use super::SqlStore;
use crate::cache::Change;
use crate::storage::entities::{
    certificate_revocation_lists, devices, identity_bindings, issued_certificates,
};
use crate::storage::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

#[async_trait]
impl RevocationStore for SqlStore {
    async fn revoke_device_identity(
        &self,
        device_id: &str,
        reason: &str,
        effect: RevocationEffect,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<RevocationOutcome>> {
        let txn = self.begin_write().await?;
        let Some(row) = devices::Entity::find_by_id(device_id).one(&txn).await? else {
            return Ok(None);
        };
        let fingerprint = row.identity_fingerprint.clone();
        let already_revoked = row.identity_revoked_at.is_some();
        if let Some(fp) = &fingerprint {
            identity_bindings::Entity::update_many()
                .col_expr(identity_bindings::Column::RetiredAt, Expr::value(at))
                .filter(identity_bindings::Column::Fingerprint.eq(fp.as_str()))
                .filter(identity_bindings::Column::RetiredAt.is_null())
                .exec(&txn)
                .await?;
        }
        // Every certificate our CA issued to the device: the current one, and any
        // renewed-from one a renewal left unrevoked in an earlier release.
        let mut mine = Condition::any().add(issued_certificates::Column::DeviceId.eq(device_id));
        if let Some(fp) = &fingerprint {
            mine = mine.add(issued_certificates::Column::Fingerprint.eq(fp.as_str()));
        }
        let revoked = issued_certificates::Entity::update_many()
            .col_expr(issued_certificates::Column::RevokedAt, Expr::value(at))
            .col_expr(
                issued_certificates::Column::RevocationReason,
                Expr::value(reason),
            )
            .filter(mine)
            .filter(issued_certificates::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected;
        let cancelled_commands = cancel_open(&txn, device_id, at).await?;
        if effect == RevocationEffect::Delete {
            // Commands and user channels go with the record (ON DELETE CASCADE); the
            // retired binding and the revoked certificates stay, so the certificate
            // can never speak again and the CRL keeps listing it.
            devices::Entity::delete_by_id(device_id).exec(&txn).await?;
        } else {
            let mut active: devices::ActiveModel = row.into();
            if !already_revoked {
                active.identity_revoked_at = Set(Some(at));
                active.identity_revocation_reason = Set(Some(reason.to_owned()));
            }
            if effect == RevocationEffect::Retire {
                active.retired_at = Set(Some(at));
            }
            if *active.enrolled.as_ref() {
                active.unenrolled_at = Set(Some(at));
            }
            active.enrolled = Set(false);
            active.push_token = Set(None);
            active.push_magic = Set(None);
            active.unlock_token = Set(None);
            active.bootstrap_token = Set(None);
            active.reenrollment_approved_until = Set(None);
            if active.released_at.as_ref().is_none() {
                active.released_at = Set(Some(at));
            }
            active.updated_at = Set(at);
            active.update(&txn).await?;
        }
        // No instance may keep accepting the certificate from its cache.
        let change = Change::Device(device_id.to_owned());
        super::notify::announce(&txn, &change).await?;
        txn.commit().await?;
        self.changed(&change);
        Ok(Some(RevocationOutcome {
            certificates_revoked: revoked,
            cancelled_commands,
            fingerprint,
            already_revoked,
        }))
    }

    async fn certificate_revocation(
        &self,
        fingerprint: &str,
    ) -> StoreResult<Option<(DateTime<Utc>, Option<String>)>> {
        let row: Option<(Option<DateTime<Utc>>, Option<String>)> =
            issued_certificates::Entity::find()
                .select_only()
                .column(issued_certificates::Column::RevokedAt)
                .column(issued_certificates::Column::RevocationReason)
                .filter(issued_certificates::Column::Fingerprint.eq(fingerprint))
                .into_tuple()
                .one(self.connection())
                .await?;
        Ok(row.and_then(|(at, reason)| at.map(|at| (at, reason))))
    }

    async fn revoked_certificates(
        &self,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevokedCertificate>> {
        let rows: Vec<(String, Option<DateTime<Utc>>, Option<String>)> =
            issued_certificates::Entity::find()
                .select_only()
                .column(issued_certificates::Column::Serial)
                .column(issued_certificates::Column::RevokedAt)
                .column(issued_certificates::Column::RevocationReason)
                .filter(issued_certificates::Column::RevokedAt.is_not_null())
                // An expired certificate fails validation on its dates already; RFC
                // 5280 lets the CRL drop it.
                .filter(issued_certificates::Column::NotAfter.gt(now))
                .order_by_asc(issued_certificates::Column::RevokedAt)
                .into_tuple()
                .all(self.connection())
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(serial, at, reason)| {
                at.map(|revoked_at| RevokedCertificate {
                    serial,
                    revoked_at,
                    reason,
                })
            })
            .collect())
    }

    async fn latest_revocation(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let latest: Option<Option<DateTime<Utc>>> = issued_certificates::Entity::find()
            .select_only()
            .column_as(issued_certificates::Column::RevokedAt.max(), "latest")
            .into_tuple()
            .one(self.connection())
            .await?;
        Ok(latest.flatten())
    }

    async fn crl(&self, ca: &str) -> StoreResult<Option<StoredCrl>> {
        Ok(certificate_revocation_lists::Entity::find_by_id(ca)
            .one(self.connection())
            .await?
            .map(|m| StoredCrl {
                ca: m.ca,
                number: m.number,
                der: m.der,
                this_update: m.this_update,
                next_update: m.next_update,
                covers_until: m.covers_until,
                entries: m.entries,
            }))
    }

    async fn put_crl(&self, crl: StoredCrl, replacing: Option<i64>) -> StoreResult<bool> {
        let row = certificate_revocation_lists::ActiveModel {
            ca: Set(crl.ca.clone()),
            number: Set(crl.number),
            der: Set(crl.der),
            this_update: Set(crl.this_update),
            next_update: Set(crl.next_update),
            covers_until: Set(crl.covers_until),
            entries: Set(crl.entries),
        };
        match replacing {
            None => {
                let inserted = certificate_revocation_lists::Entity::insert(row)
                    .on_conflict(
                        OnConflict::column(certificate_revocation_lists::Column::Ca)
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_without_returning(self.connection())
                    .await?;
                Ok(inserted == 1)
            }
            // Conditional on the number read: of two instances rebuilding at once,
            // one stores its CRL and the other serves that one.
            Some(previous) => {
                let updated = certificate_revocation_lists::Entity::update_many()
                    .set(row)
                    .filter(certificate_revocation_lists::Column::Ca.eq(crl.ca.as_str()))
                    .filter(certificate_revocation_lists::Column::Number.eq(previous))
                    .exec(self.connection())
                    .await?;
                Ok(updated.rows_affected == 1)
            }
        }
    }
}
