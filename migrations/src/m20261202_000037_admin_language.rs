//! The console's language, chosen per admin and remembered (issue 13): `admins.language`
//! holds `en`, `pl` or `uk`; NULL until the admin picks one (the browser's
//! Accept-Language decides until then).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Admins {
    Table,
    Language,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Admins::Table)
                    .add_column(ColumnDef::new(Admins::Language).string_len(8).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Admins::Table)
                    .drop_column(Admins::Language)
                    .to_owned(),
            )
            .await
    }
}
