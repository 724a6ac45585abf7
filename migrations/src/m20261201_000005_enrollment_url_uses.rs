//! How often each enrollment's URL was used: `enrollments.url_uses` counts every
//! fetch of a valid enrollment URL (Apple profile downloads, refused anonymous
//! fetches of Android enrollments), which admins see on the enrollment. It is apart
//! from `uses`, which counts devices enrolled: a URL passed around shows here first.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Enrollments {
    Table,
    UrlUses,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Enrollments::Table)
                    .add_column(
                        ColumnDef::new(Enrollments::UrlUses)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Enrollments::Table)
                    .drop_column(Enrollments::UrlUses)
                    .to_owned(),
            )
            .await
    }
}
