//! Waking devices so they fetch queued commands. Apple devices only connect when
//! APNs tells them to (`services::push::PushService`); Android's agent will have its
//! own waker behind the same trait.

use async_trait::async_trait;

#[async_trait]
pub trait DeviceWaker: Send + Sync {
    /// Asks the devices to connect. Must not fail the caller: a missed push is
    /// retried by the waker itself, the queued commands stay queued either way.
    async fn wake(&self, device_ids: &[String]);
}
