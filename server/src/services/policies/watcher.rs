//! What the event stream asks of policies, read by a cursor like the incident rules:
//!
//! * `device.enrolled`: the new device gets its policies at once (and is asked for
//!   its security state when one is installed).
//! * `directory.user_changed` / `directory.user_disabled` / `directory.user_removed`:
//!   the user's devices are re-rendered (their attributes fill the profiles); only
//!   outputs that changed are queued.
//! * `command.result` of InstallProfile (acknowledged): the output is marked
//!   installed and the device asked for SecurityInfo and ProfileList; of
//!   SecurityInfo, ProfileList or RemoveProfile: the device is evaluated.
//! * Android status changes (`android.*` with a device): the device is evaluated.
//!
//! Every action is idempotent (deliveries compare hashes under a condition; an
//! evaluation only stores state), so two instances reading the same events, or one
//! reading them again after a crash, do no harm. A schedule delivers to the whole
//! fleet (nothing is queued where nothing changed; a failed Google call is retried)
//! and asks every Apple device that has policies for its state once per
//! `state_interval`.

use super::PolicyService;
use crate::domain::event::kinds;
use crate::domain::{Event, EventFilter};
use crate::services::ServiceResult;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const PAGE: u64 = 500;

pub struct PolicyWatcher {
    pub service: Arc<PolicyService>,
    pub interval: Duration,
    pub state_interval: Duration,
}

#[derive(Default)]
struct Work {
    deliver: BTreeSet<String>,
    query: BTreeSet<String>,
    evaluate: BTreeSet<String>,
    users: BTreeSet<String>,
    acknowledged: Vec<String>,
}

fn text<'a>(event: &'a Event, key: &str) -> Option<&'a str> {
    event.data.get(key).and_then(|v| v.as_str())
}

impl PolicyWatcher {
    fn read(event: &Event, work: &mut Work) {
        let device = event.device_id.clone();
        match event.kind.as_str() {
            kinds::DEVICE_ENROLLED => {
                if let Some(d) = device {
                    // Its policies at once; its state is asked for once a profile is
                    // installed (a device without policies is sent nothing).
                    work.deliver.insert(d.clone());
                    work.evaluate.insert(d);
                }
            }
            "directory.user_changed" | "directory.user_disabled" | "directory.user_removed" => {
                if let Some(u) = text(event, "username") {
                    work.users.insert(u.to_owned());
                }
            }
            kinds::COMMAND_RESULT => {
                let (Some(d), Some(request)) = (device, text(event, "request_type")) else {
                    return;
                };
                let acknowledged = text(event, "status") == Some("acknowledged");
                match request {
                    "InstallProfile" if acknowledged => {
                        if let Some(uuid) = text(event, "command_uuid") {
                            work.acknowledged.push(uuid.to_owned());
                        }
                        work.query.insert(d.clone());
                        work.evaluate.insert(d);
                    }
                    "SecurityInfo" | "ProfileList" | "RemoveProfile" | "InstallProfile" => {
                        work.evaluate.insert(d);
                    }
                    _ => {}
                }
            }
            k if k.starts_with("android.") && k != kinds::ANDROID_DEVICE_REMOVED => {
                if let Some(d) = device {
                    work.evaluate.insert(d);
                }
            }
            _ => {}
        }
    }

    /// Handles the events after the stored position; returns how many it read.
    pub async fn run_once(&self) -> ServiceResult<usize> {
        let store = &self.service.store;
        let after = store.policy_cursor().await?;
        let events = store
            .events(&EventFilter {
                after_id: Some(after),
                limit: Some(PAGE),
                ..Default::default()
            })
            .await?;
        let mut work = Work::default();
        for event in &events {
            Self::read(event, &mut work);
        }
        for uuid in &work.acknowledged {
            store.policy_output_acknowledged(uuid).await?;
        }
        if !work.users.is_empty() {
            let targets = store.policy_targets(None).await?;
            for t in targets {
                if t.assigned_user
                    .as_ref()
                    .is_some_and(|u| work.users.contains(u))
                {
                    work.deliver.insert(t.device_id.clone());
                    work.evaluate.insert(t.device_id);
                }
            }
        }
        if !work.deliver.is_empty() {
            let scope: Vec<String> = work.deliver.iter().cloned().collect();
            self.service
                .deliver("policies", Some(&scope), false)
                .await?;
        }
        if !work.query.is_empty() {
            let scope: Vec<String> = work.query.iter().cloned().collect();
            self.service.query_state("policies", &scope).await?;
        }
        if !work.evaluate.is_empty() {
            let scope: Vec<String> = work.evaluate.iter().cloned().collect();
            self.service.evaluate(&scope).await?;
        }
        if let Some(last) = events.last() {
            store.advance_policy_cursor(last.id).await?;
        }
        Ok(events.len())
    }

    pub fn spawn(self) {
        tokio::spawn(async move {
            let mut last_sweep = tokio::time::Instant::now();
            loop {
                match self.run_once().await {
                    Ok(n) if n as u64 == PAGE => continue,
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "policy watcher failed; will retry"),
                }
                if last_sweep.elapsed() >= self.state_interval {
                    last_sweep = tokio::time::Instant::now();
                    if let Err(e) = self.sweep().await {
                        tracing::error!(error = %e, "scheduled compliance queries failed");
                    }
                }
                tokio::time::sleep(self.interval).await;
            }
        });
    }

    /// The schedule: a delivery to the whole fleet (it queues nothing where nothing
    /// changed, and retries what a failed call to Google left undone), and every
    /// enrolled Apple device with policies is asked for its state.
    async fn sweep(&self) -> ServiceResult<()> {
        let report = self.service.deliver("policies", None, false).await?;
        for p in &report.problems {
            tracing::warn!(device = %p.device_id, policy = %p.policy, problem = %p.message, "scheduled policy delivery");
        }
        let targets = self.service.store.policy_targets(None).await?;
        let apple: Vec<String> = targets
            .into_iter()
            .filter(|t| t.platform == "apple")
            .map(|t| t.device_id)
            .collect();
        let mut with_policies: Vec<String> = self
            .service
            .store
            .policy_outputs(&apple)
            .await?
            .into_iter()
            .map(|o| o.device_id)
            .collect();
        with_policies.sort();
        with_policies.dedup();
        let apple = with_policies;
        for chunk in apple.chunks(1000) {
            self.service.query_state("policies", chunk).await?;
        }
        Ok(())
    }
}
