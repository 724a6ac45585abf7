//! Database schema, one migration per change. A migration is never edited after it
//! lands; a change to the schema is a new migration.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_protocol_core;
mod m20261121_000002_push;
mod m20261121_000003_enrollment;
mod m20261201_000004_identity_bindings;
mod m20261201_000005_enrollment_url_uses;
mod m20261201_000006_revocation;
mod m20261201_000007_android_enterprise;
mod m20261201_000008_android_devices;
mod m20261201_000009_android_operations;
mod m20261201_000010_android_usage_logs;
mod m20261201_000020_incident_register;
mod m20261201_000030_directory;
mod m20261201_000031_policies;
mod m20261201_000034_admin_accounts;
mod m20261201_000035_migrated_token_expiry;
mod m20261201_000036_audit_keyed_chain;
mod m20261202_000037_admin_language;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_protocol_core::Migration),
            Box::new(m20261121_000002_push::Migration),
            Box::new(m20261121_000003_enrollment::Migration),
            Box::new(m20261201_000004_identity_bindings::Migration),
            Box::new(m20261201_000005_enrollment_url_uses::Migration),
            Box::new(m20261201_000006_revocation::Migration),
            Box::new(m20261201_000007_android_enterprise::Migration),
            Box::new(m20261201_000008_android_devices::Migration),
            Box::new(m20261201_000009_android_operations::Migration),
            Box::new(m20261201_000010_android_usage_logs::Migration),
            Box::new(m20261201_000020_incident_register::Migration),
            Box::new(m20261201_000030_directory::Migration),
            Box::new(m20261201_000031_policies::Migration),
            Box::new(m20261201_000034_admin_accounts::Migration),
            Box::new(m20261201_000035_migrated_token_expiry::Migration),
            Box::new(m20261201_000036_audit_keyed_chain::Migration),
            Box::new(m20261202_000037_admin_language::Migration),
        ]
    }
}
