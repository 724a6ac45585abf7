//! Android Enterprise: the office's connection to Google's Android Management API.
//!
//! `android_enterprises` holds one row (id `current`): the service-account key sealed
//! with the master key (it signs the token requests; never stored in clear), the
//! Pub/Sub topic and subscription, the pending sign-up (the name `signupUrls.create`
//! returned and the SHA-256 of the secret our callback URL carries, so only the
//! browser that was sent to Google can finish it), then the enterprise created from
//! it, its notification types, and the health of the link (last sync, last error).
//! A new `mdm android connect` replaces the row: one office, one enterprise.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AndroidEnterprises {
    Table,
    Id,
    ProjectId,
    ClientEmail,
    ServiceAccountSealed,
    PubsubTopic,
    PubsubSubscription,
    SignupUrlName,
    SignupUrl,
    SignupSecretHash,
    EnterpriseName,
    EnterpriseDisplayName,
    NotificationTypes,
    ConnectedBy,
    ConnectedAt,
    EnterpriseCreatedAt,
    LastSyncAt,
    LastPullAt,
    LastError,
    LastErrorAt,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).timestamp_with_time_zone().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use AndroidEnterprises as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .col(
                        ColumnDef::new(T::Id)
                            .string_len(16)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(T::ProjectId).string_len(128).not_null())
                    .col(ColumnDef::new(T::ClientEmail).string_len(320).not_null())
                    .col(ColumnDef::new(T::ServiceAccountSealed).binary().not_null())
                    .col(ColumnDef::new(T::PubsubTopic).string_len(512).null())
                    .col(ColumnDef::new(T::PubsubSubscription).string_len(512).null())
                    .col(ColumnDef::new(T::SignupUrlName).string_len(512).null())
                    .col(ColumnDef::new(T::SignupUrl).text().null())
                    .col(ColumnDef::new(T::SignupSecretHash).string_len(64).null())
                    .col(ColumnDef::new(T::EnterpriseName).string_len(256).null())
                    .col(
                        ColumnDef::new(T::EnterpriseDisplayName)
                            .string_len(512)
                            .null(),
                    )
                    .col(ColumnDef::new(T::NotificationTypes).text().not_null())
                    .col(ColumnDef::new(T::ConnectedBy).string_len(256).not_null())
                    .col(ts(T::ConnectedAt).not_null())
                    .col(ts(T::EnterpriseCreatedAt).null())
                    .col(ts(T::LastSyncAt).null())
                    .col(ts(T::LastPullAt).null())
                    .col(ColumnDef::new(T::LastError).text().null())
                    .col(ts(T::LastErrorAt).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AndroidEnterprises::Table).to_owned())
            .await
    }
}
