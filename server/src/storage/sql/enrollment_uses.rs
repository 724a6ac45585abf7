//! [`EnrollmentUseStore`] on sea-orm: `enrollments.url_uses`, kept out of the
//! enrollment entity so that reading and writing enrollments never races with the
//! counter (an increment in SQL, not a read-modify-write).

use super::*;
use crate::storage::*;
use sea_orm::sea_query::{Alias, Expr, Query};
use std::collections::HashMap;

fn table() -> Alias {
    Alias::new("enrollments")
}
fn id() -> Alias {
    Alias::new("id")
}
fn url_uses() -> Alias {
    Alias::new("url_uses")
}

#[async_trait]
impl EnrollmentUseStore for SqlStore {
    async fn count_enrollment_url_use(&self, enrollment_id: &str) -> StoreResult<()> {
        let stmt = Query::update()
            .table(table())
            .value(url_uses(), Expr::col(url_uses()).add(1))
            .and_where(Expr::col(id()).eq(enrollment_id))
            .to_owned();
        self.db
            .execute(self.db.get_database_backend().build(&stmt))
            .await?;
        Ok(())
    }

    async fn enrollment_url_uses(&self, ids: &[String]) -> StoreResult<HashMap<String, i64>> {
        let mut uses = HashMap::with_capacity(ids.len());
        for batch in ids.chunks(LOOKUP_BATCH) {
            let stmt = Query::select()
                .columns([id(), url_uses()])
                .from(table())
                .and_where(Expr::col(id()).is_in(batch.iter().cloned()))
                .to_owned();
            let rows = self
                .db
                .query_all(self.db.get_database_backend().build(&stmt))
                .await?;
            for row in rows {
                uses.insert(row.try_get("", "id")?, row.try_get("", "url_uses")?);
            }
        }
        Ok(uses)
    }
}
