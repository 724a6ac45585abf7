//! Delivery of what changed only.
//!
//! For each device in scope: place it in its groups, order its policies, compile each
//! for its platform with its user's attributes, and compare with what it was last
//! sent. Apple: the SHA-256 of the unsigned profile, per device and policy
//! (`device_policy_outputs`); a different hash queues InstallProfile (signed, sealed
//! at rest like every profile), a policy no longer assigned queues RemoveProfile,
//! an equal hash queues nothing. Android: the merged AMAPI policy, whose hash the
//! Android service compares before calling Google.
//!
//! Reads are batched for the whole scope (devices, users, groups, assignments,
//! documents, outputs: a few statements per thousand devices) and the changes commit
//! in one transaction with their commands, each conditional on the hash read, so a
//! concurrent delivery on another instance never queues the same change twice.

use super::documents;
use super::resolve::{groups_of, policies_for};
use crate::domain::device::os_from_family;
use crate::domain::event::NewEvent;
use crate::domain::NewCommand;
use crate::services::{seal_purpose, ServiceError, ServiceResult};
use crate::storage::{
    DeviceGroupRow, DirectoryUserRow, OutputChange, PolicyOutputRow, PolicyTarget, Storage,
};
use base64::Engine as _;
use enrollment::seal::Sealer;
use profiles::commands::{BuildContext, CommandSpec};
use profiles::policy::{self, PolicyDocument, UserAttributes};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Devices named in the report's lists (the counts are always complete).
const LISTED: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub device_id: String,
    pub policy: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Note {
    pub platform: String,
    pub policy: String,
    pub path: String,
    pub message: String,
}

/// What a delivery did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeliveryReport {
    pub dry_run: bool,
    pub devices: usize,
    pub apple_installs: usize,
    pub apple_removals: usize,
    pub apple_unchanged: usize,
    pub android_devices: usize,
    pub android_updated: usize,
    pub installed_on: Vec<String>,
    pub removed_from: Vec<String>,
    pub problems: Vec<Problem>,
    /// What a platform cannot express, per policy: reported, never dropped silently.
    pub platform_notes: Vec<Note>,
}

/// Everything a delivery reads, loaded once for its whole scope.
pub struct World {
    pub targets: Vec<PolicyTarget>,
    pub users: HashMap<String, DirectoryUserRow>,
    pub groups: Vec<DeviceGroupRow>,
    pub assignments: Vec<crate::storage::AssignmentRow>,
    pub names: HashMap<String, String>,
    pub documents: HashMap<String, (i32, PolicyDocument)>,
}

impl World {
    pub async fn load(
        store: &dyn Storage,
        sealer: &Sealer,
        scope: Option<&[String]>,
        overrides: &HashMap<String, PolicyDocument>,
    ) -> ServiceResult<World> {
        let targets = store.policy_targets(scope).await?;
        let mut usernames: Vec<String> = targets
            .iter()
            .filter_map(|t| t.assigned_user.clone())
            .collect();
        usernames.sort();
        usernames.dedup();
        let users = store
            .users_for_policies(&usernames)
            .await?
            .into_iter()
            .map(|u| (u.username.clone(), u))
            .collect();
        let groups = store.device_groups().await?;
        let assignments = store.assignments().await?;
        let policies = store.policies().await?;
        let names = policies
            .iter()
            .map(|p| (p.id.clone(), p.name.clone()))
            .collect();
        let ids: Vec<String> = policies.iter().map(|p| p.id.clone()).collect();
        let mut documents = HashMap::new();
        for v in store.current_versions(&ids).await? {
            let doc = documents::open(sealer, &v.policy_id, v.version, &v.document_sealed)?;
            documents.insert(v.policy_id.clone(), (v.version, doc));
        }
        for (id, doc) in overrides {
            let version = documents.get(id).map_or(1, |(v, _)| v + 1);
            documents.insert(id.clone(), (version, doc.clone()));
        }
        Ok(World {
            targets,
            users,
            groups,
            assignments,
            names,
            documents,
        })
    }

    pub fn user_of(&self, target: &PolicyTarget) -> Option<&DirectoryUserRow> {
        target
            .assigned_user
            .as_deref()
            .and_then(|u| self.users.get(u))
    }

    /// The device's policies, highest precedence first (only those with a document).
    pub fn policies_of(&self, target: &PolicyTarget) -> Vec<String> {
        let groups = groups_of(target, self.user_of(target), &self.groups);
        policies_for(&target.device_id, &groups, &self.assignments, &self.names)
            .into_iter()
            .filter(|id| self.documents.contains_key(id))
            .collect()
    }

    pub fn name(&self, policy_id: &str) -> String {
        self.names
            .get(policy_id)
            .cloned()
            .unwrap_or_else(|| policy_id.to_owned())
    }
}

pub fn user_attributes(user: &DirectoryUserRow) -> UserAttributes {
    UserAttributes {
        username: user.username.clone(),
        upn: user.upn.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        department: user.department.clone(),
        groups: user.groups.clone(),
    }
}

/// Whether the document asks for a per-device certificate (EAP-TLS).
pub fn needs_certificate(doc: &PolicyDocument) -> bool {
    doc.wifi.iter().any(|n| {
        matches!(
            &n.security,
            policy::WifiSecurity::Enterprise {
                eap: policy::Eap::Tls,
                ..
            }
        )
    })
}

pub struct AppleSettings {
    pub identifier_prefix: String,
    pub organization: String,
    pub public_url: String,
}

pub struct Deliverer<'a> {
    pub store: &'a dyn Storage,
    pub sealer: &'a Sealer,
    pub pki: &'a crate::services::pki::Pki,
    pub apple: &'a AppleSettings,
}

/// The SCEP challenge of a per-device Wi-Fi certificate is good this long: a phone
/// may take days to come online and install the profile.
const WIFI_CHALLENGE_DAYS: i64 = 14;

impl Deliverer<'_> {
    fn context(
        &self,
        policy_id: &str,
        device_id: &str,
        scep: Option<policy::ScepParams>,
    ) -> policy::AppleContext {
        policy::AppleContext {
            identifier_prefix: self.apple.identifier_prefix.clone(),
            organization: self.apple.organization.clone(),
            policy_key: policy_id.to_owned(),
            device_key: device_id.to_owned(),
            scep,
        }
    }

    fn scep_params(&self, device_id: &str, challenge: String) -> policy::ScepParams {
        policy::ScepParams {
            url: format!("{}/scep", self.apple.public_url),
            challenge,
            subject_cn: format!("wifi-{device_id}"),
            key_size: 2048,
            ca_fingerprint: None,
        }
    }

    /// Compiles, compares and (unless `dry_run`) queues, for every Apple device in
    /// the world; counts the Android ones (the caller hands them to the Android
    /// service, which calls Google).
    pub async fn deliver_apple(
        &self,
        world: &World,
        dry_run: bool,
        actor: &str,
        report: &mut DeliveryReport,
    ) -> ServiceResult<()> {
        let apple: Vec<&PolicyTarget> = world
            .targets
            .iter()
            .filter(|t| t.platform == "apple")
            .collect();
        report.devices = world.targets.len();
        report.android_devices = world
            .targets
            .iter()
            .filter(|t| t.platform == "android")
            .count();
        let ids: Vec<String> = apple.iter().map(|t| t.device_id.clone()).collect();
        // Each device's outputs by policy: looked up per device, never scanned.
        let mut outputs: HashMap<String, HashMap<String, PolicyOutputRow>> = HashMap::new();
        for row in self.store.policy_outputs(&ids).await? {
            outputs
                .entry(row.device_id.clone())
                .or_default()
                .insert(row.policy_id.clone(), row);
        }
        let none = HashMap::new();
        let mut notes: HashSet<Note> = HashSet::new();
        let mut changes = Vec::new();
        for target in apple {
            let user = world.user_of(target).map(user_attributes);
            let wanted = world.policies_of(target);
            let mine = outputs.get(&target.device_id).unwrap_or(&none);
            for policy_id in &wanted {
                let (version, doc) = &world.documents[policy_id];
                let previous = mine.get(policy_id);
                // Compiled from the same inputs as what the device has: the same
                // bytes, known without compiling (a fraction of the cost).
                let input_hash = self.input_hash(policy_id, *version, target, user.as_ref());
                if previous.is_some_and(|p| p.input_hash == input_hash) {
                    report.apple_unchanged += 1;
                    continue;
                }
                let tls = needs_certificate(doc);
                let placeholder = tls.then(|| self.scep_params(&target.device_id, String::new()));
                let compiled = match policy::compile_apple(
                    doc,
                    user.as_ref(),
                    &self.context(policy_id, &target.device_id, placeholder),
                ) {
                    Ok(c) => c,
                    Err(errors) => {
                        report.problems.push(Problem {
                            device_id: target.device_id.clone(),
                            policy: world.name(policy_id),
                            message: errors
                                .iter()
                                .map(|e| format!("{}: {}", e.path, e.message))
                                .collect::<Vec<_>>()
                                .join("; "),
                        });
                        continue;
                    }
                };
                for n in &compiled.notes {
                    notes.insert(Note {
                        platform: n.platform.clone(),
                        policy: world.name(policy_id),
                        path: n.path.clone(),
                        message: n.message.clone(),
                    });
                }
                let hash = hex::encode(openssl::sha::sha256(&compiled.plist));
                if let Some(p) = previous.filter(|p| p.output_hash == hash) {
                    // New inputs, same bytes (a new version that changed nothing this
                    // device gets): nothing is sent; the inputs are remembered.
                    report.apple_unchanged += 1;
                    if !dry_run {
                        changes.push(OutputChange::Refresh {
                            device_id: target.device_id.clone(),
                            policy_id: policy_id.clone(),
                            expected: p.output_hash.clone(),
                            input_hash,
                        });
                    }
                    continue;
                }
                report.apple_installs += 1;
                if report.installed_on.len() < LISTED {
                    report.installed_on.push(target.device_id.clone());
                }
                if dry_run {
                    continue;
                }
                let plist = if tls {
                    let challenge = self.wifi_challenge(target).await?;
                    policy::compile_apple(
                        doc,
                        user.as_ref(),
                        &self.context(
                            policy_id,
                            &target.device_id,
                            Some(self.scep_params(&target.device_id, challenge)),
                        ),
                    )
                    .map_err(|e| ServiceError::Internal(format!("{e:?}")))?
                    .plist
                } else {
                    compiled.plist
                };
                let signed = enrollment::signing::sign_profile(&plist, &self.pki.signing)
                    .map_err(|e| ServiceError::Internal(format!("signing the profile: {e}")))?;
                let command = self.command(
                    target,
                    &CommandSpec::InstallProfile {
                        payload: base64::engine::general_purpose::STANDARD.encode(signed),
                    },
                    actor,
                )?;
                changes.push(OutputChange::Install {
                    row: PolicyOutputRow {
                        device_id: target.device_id.clone(),
                        policy_id: policy_id.clone(),
                        identifier: compiled.identifier.clone(),
                        output_hash: hash,
                        input_hash,
                        policy_version: *version,
                        command_uuid: Some(command.uuid.clone()),
                        status: "queued".into(),
                    },
                    expected: previous.map(|p| p.output_hash.clone()),
                    command,
                });
            }
            // What the device has from a policy no longer its own goes.
            let wanted: HashSet<&String> = wanted.iter().collect();
            let mut stale: Vec<&PolicyOutputRow> = mine
                .values()
                .filter(|o| !wanted.contains(&o.policy_id))
                .collect();
            stale.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
            for old in stale {
                report.apple_removals += 1;
                if report.removed_from.len() < LISTED {
                    report.removed_from.push(target.device_id.clone());
                }
                if dry_run {
                    continue;
                }
                let command = self.command(
                    target,
                    &CommandSpec::RemoveProfile {
                        identifier: old.identifier.clone(),
                    },
                    actor,
                )?;
                changes.push(OutputChange::Remove {
                    device_id: target.device_id.clone(),
                    policy_id: old.policy_id.clone(),
                    expected: old.output_hash.clone(),
                    command,
                });
            }
        }
        let mut notes: Vec<Note> = notes.into_iter().collect();
        notes.sort();
        report.platform_notes.extend(notes);
        let queued = report.apple_installs + report.apple_removals;
        if !dry_run && !changes.is_empty() {
            let mut events = Vec::new();
            if queued > 0 {
                events.push(
                    NewEvent::new(
                        crate::domain::event::kinds::POLICY_PROFILES_QUEUED,
                        format!(
                            "policy profiles queued: {} install(s), {} removal(s)",
                            report.apple_installs, report.apple_removals
                        ),
                    )
                    .actor(actor)
                    .data(serde_json::json!({
                        "installs": report.apple_installs,
                        "removals": report.apple_removals,
                        "devices": report.installed_on.iter().chain(&report.removed_from).take(LISTED).collect::<Vec<_>>(),
                    })),
                );
            }
            // What holds afterwards: a change another delivery made differently in the
            // meantime (a newer version, say) is not reported; one it made the same is.
            let in_effect = self.store.apply_policy_outputs(changes, events).await?;
            let mut installed = Vec::new();
            let mut removed = Vec::new();
            for change in &in_effect {
                match change {
                    OutputChange::Install { row, .. } => installed.push(&row.device_id),
                    OutputChange::Remove { device_id, .. } => removed.push(device_id),
                    OutputChange::Refresh { .. } => {}
                }
            }
            report.apple_installs = installed.len();
            report.apple_removals = removed.len();
            report.installed_on = installed.into_iter().take(LISTED).cloned().collect();
            report.removed_from = removed.into_iter().take(LISTED).cloned().collect();
        }
        Ok(())
    }

    /// SHA-256 of everything a device's profile for a policy is compiled from: the
    /// policy version, the device, its OS, its user's attributes, the profile
    /// settings, and the server's version (a new release may compile differently;
    /// its first delivery compiles again and re-sends only what really changed).
    fn input_hash(
        &self,
        policy_id: &str,
        version: i32,
        target: &PolicyTarget,
        user: Option<&UserAttributes>,
    ) -> String {
        let user = user.map(|u| {
            serde_json::json!([
                u.username,
                u.upn,
                u.email,
                u.display_name,
                u.department,
                u.groups
            ])
        });
        let inputs = serde_json::json!([
            env!("CARGO_PKG_VERSION"),
            policy_id,
            version,
            target.device_id,
            target.os_family,
            user,
            self.apple.identifier_prefix,
            self.apple.organization,
            self.apple.public_url,
        ]);
        hex::encode(openssl::sha::sha256(inputs.to_string().as_bytes()))
    }

    pub fn command(
        &self,
        target: &PolicyTarget,
        spec: &CommandSpec,
        actor: &str,
    ) -> ServiceResult<NewCommand> {
        let built = spec
            .build(&BuildContext {
                os: os_from_family(&target.os_family),
                unlock_token: None,
            })
            .map_err(|e| ServiceError::Internal(format!("{e}")))?;
        // A profile may carry a Wi-Fi key or a SCEP challenge: sealed at rest, like
        // every InstallProfile.
        let payload = if built.sensitive {
            self.sealer
                .seal(
                    seal_purpose::COMMAND_PAYLOAD,
                    &built.command_uuid,
                    &built.plist_xml,
                )
                .map_err(|e| ServiceError::Internal(e.to_string()))?
        } else {
            built.plist_xml
        };
        Ok(NewCommand {
            uuid: built.command_uuid,
            device_id: target.device_id.clone(),
            request_type: built.request_type,
            payload,
            payload_sealed: built.sensitive,
            priority: 0,
            expires_at: None,
            created_by: actor.to_owned(),
        })
    }

    /// A one-time SCEP challenge for the device's Wi-Fi certificate, bound to the
    /// device (good while it is managed; not an enrollment use). What it issues has
    /// purpose `wifi` and is never accepted as a device identity.
    async fn wifi_challenge(&self, target: &PolicyTarget) -> ServiceResult<String> {
        let Some(enrollment_id) = &target.enrollment_id else {
            return Err(ServiceError::BadRequest(format!(
                "device {} came through no enrollment of this server: it cannot get an EAP-TLS certificate from our CA",
                target.device_id
            )));
        };
        let mut bytes = [0u8; 20];
        openssl::rand::rand_bytes(&mut bytes).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let challenge = hex::encode(bytes);
        let expires = chrono::Utc::now() + chrono::Duration::days(WIFI_CHALLENGE_DAYS);
        self.store
            .create_device_challenge(
                enrollment_id,
                &target.device_id,
                &crate::services::tokens::hash_token(&challenge),
                expires,
            )
            .await?;
        Ok(challenge)
    }
}
