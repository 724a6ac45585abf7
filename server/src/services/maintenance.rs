//! Background upkeep of the queue: expire overdue commands, prune old results, so the
//! queue's size follows what is in flight, not the fleet's history.

use crate::storage::Storage;
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

pub struct Maintenance {
    pub store: Arc<dyn Storage>,
    pub retention: chrono::Duration,
    pub interval: Duration,
}

impl Maintenance {
    pub async fn run_once(&self) -> Result<(u64, u64), crate::storage::StoreError> {
        let now = Utc::now();
        let expired = self.store.expire(now).await?;
        let pruned = self.store.prune(now - self.retention).await?
            + self.store.prune_push_attempts(now - self.retention).await?
            + self
                .store
                .prune_challenges(now - chrono::Duration::days(1))
                .await?;
        if expired + pruned > 0 {
            tracing::info!(expired, pruned, "queue maintenance");
        }
        Ok((expired, pruned))
    }

    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.interval);
            loop {
                tick.tick().await;
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "queue maintenance failed; retrying next interval");
                }
            }
        })
    }
}
