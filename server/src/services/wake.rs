//! Waking devices so they fetch queued commands. Apple devices only connect when
//! APNs tells them to; the push issue plugs an APNs waker in here. Until a push
//! certificate is configured, devices pick commands up on their next own check-in.

use async_trait::async_trait;

#[async_trait]
pub trait DeviceWaker: Send + Sync {
    /// Asks the devices to connect. Must not fail the caller: a missed push is
    /// retried by the waker itself, the queued commands stay queued either way.
    async fn wake(&self, device_ids: &[String]);
}

/// Used while no push provider is configured: records nothing, sends nothing.
pub struct NoPushConfigured;

#[async_trait]
impl DeviceWaker for NoPushConfigured {
    async fn wake(&self, device_ids: &[String]) {
        tracing::debug!(
            devices = device_ids.len(),
            "no push provider configured; devices get their commands at their next check-in"
        );
    }
}
