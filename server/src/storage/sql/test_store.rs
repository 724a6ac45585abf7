//! Stores for the storage tests: a temporary SQLite file (removed with its WAL when
//! dropped), and the rows their queues hang on.

use super::SqlStore;
use std::path::PathBuf;

/// A migrated store on a new SQLite file under the temporary directory.
pub(super) struct TempSqlite {
    pub store: SqlStore,
    file: PathBuf,
}

impl TempSqlite {
    pub async fn open(purpose: &str) -> Self {
        let file = std::env::temp_dir().join(format!("mdm-{purpose}-{}.db", uuid::Uuid::new_v4()));
        let store = SqlStore::connect(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .unwrap();
        TempSqlite { store, file }
    }
}

impl std::ops::Deref for TempSqlite {
    type Target = SqlStore;
    fn deref(&self) -> &SqlStore {
        &self.store
    }
}

impl Drop for TempSqlite {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.file.display()));
        }
    }
}

/// An Apple device row with nothing but its id, for the storage tests' queues.
pub(super) async fn test_device(store: &SqlStore, id: &str, now: chrono::DateTime<chrono::Utc>) {
    use sea_orm::{ActiveModelTrait, Set};
    crate::storage::entities::devices::ActiveModel {
        id: Set(id.into()),
        platform: Set("apple".into()),
        os_family: Set("iOS".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&store.db)
    .await
    .unwrap();
}
