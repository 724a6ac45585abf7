//! "Report my device lost": a personal link an admin gives a device's user, who opens
//! it (no admin account, no login) and reports one of their devices lost or stolen.
//! The report files an incident like any other, so the lost-device playbook locks the
//! phone at once. The link's token is stored hashed only and shown once; the link can
//! be revoked; wrong tokens count against the address like enrollment guesses.

use super::incidents::{IncidentService, NewIncident};
use super::tokens::{generate_token, hash_token};
use super::{ServiceError, ServiceResult};
use crate::domain::incident::{Incident, LostReportLink};
use crate::storage::Storage;
use std::sync::Arc;

pub const LOST_PATH: &str = "/lost";
/// Longest free text a user may write about where the device went.
const MAX_DETAILS: usize = 2000;

pub struct LostReportService {
    store: Arc<dyn Storage>,
    public_url: String,
}

/// A link as the admin sees it once: with its URL.
#[derive(Debug, serde::Serialize)]
pub struct CreatedLink {
    #[serde(flatten)]
    pub link: LostReportLink,
    pub url: String,
}

/// What the page shows about a device: name and model, nothing more.
#[derive(Debug, Clone)]
pub struct ReportableDevice {
    pub id: String,
    pub label: String,
}

impl LostReportService {
    pub fn new(store: Arc<dyn Storage>, public_url: String) -> Self {
        LostReportService { store, public_url }
    }

    pub async fn create(
        &self,
        admin: &str,
        user: &str,
        devices: Vec<String>,
    ) -> ServiceResult<CreatedLink> {
        let user = user.trim();
        if user.is_empty() || user.len() > 64 || user.chars().any(char::is_control) {
            return Err(ServiceError::BadRequest(
                "user must be a user name of 1 to 64 characters".into(),
            ));
        }
        if devices.is_empty() || devices.len() > 50 {
            return Err(ServiceError::BadRequest(
                "name the user's devices (1 to 50 device ids)".into(),
            ));
        }
        for id in &devices {
            if self.store.device(id).await?.is_none() {
                return Err(ServiceError::NotFound(format!("device {id} not found")));
            }
        }
        let token = generate_token().trim_start_matches("mdm_").to_owned();
        let link = self
            .store
            .create_lost_link(user, &devices, &hash_token(&token), admin)
            .await?;
        Ok(CreatedLink {
            url: format!("{}{LOST_PATH}/{token}", self.public_url),
            link,
        })
    }

    pub async fn list(&self) -> ServiceResult<Vec<LostReportLink>> {
        Ok(self.store.lost_links().await?)
    }

    pub async fn revoke(&self, id: &str) -> ServiceResult<()> {
        if self.store.revoke_lost_link(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "no active lost-report link {id}"
            )))
        }
    }

    /// The link a token opens, with the devices it may report; NotFound for an
    /// unknown or revoked token.
    pub async fn open(
        &self,
        token: &str,
    ) -> ServiceResult<(LostReportLink, Vec<ReportableDevice>)> {
        let link = self
            .store
            .lost_link_by_hash(&hash_token(token))
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(
                    "This link is not valid (it may have been revoked). Please call your IT department.".into(),
                )
            })?;
        let mut devices = Vec::new();
        for id in &link.devices {
            if let Some(d) = self.store.device(id).await? {
                let label = [
                    d.device_name.clone(),
                    d.model_name.clone().or(d.model.clone()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", ");
                devices.push(ReportableDevice {
                    id: d.id,
                    label: if label.is_empty() {
                        "Device".into()
                    } else {
                        label
                    },
                });
            }
        }
        Ok((link, devices))
    }

    /// Files the user's report as an incident (the lost-device playbook then acts).
    pub async fn report(
        &self,
        incidents: &IncidentService,
        token: &str,
        device_id: &str,
        stolen: bool,
        details: &str,
    ) -> ServiceResult<Incident> {
        let (link, devices) = self.open(token).await?;
        let Some(device) = devices.iter().find(|d| d.id == device_id) else {
            return Err(ServiceError::BadRequest(
                "Please choose one of the devices listed.".into(),
            ));
        };
        let details = details.trim();
        if details.chars().count() > MAX_DETAILS {
            return Err(ServiceError::BadRequest(format!(
                "Please keep the description under {MAX_DETAILS} characters."
            )));
        }
        self.store.lost_link_used(&link.id).await?;
        let (incident_type, level, word) = if stolen {
            ("stolen_device", 3, "stolen")
        } else {
            ("lost_device", 2, "lost")
        };
        incidents
            .file(
                &format!("user:{} (personal link)", link.user),
                NewIncident {
                    name: format!("{} reported {word} by {}", device.label, link.user),
                    incident_type: incident_type.into(),
                    level,
                    devices: vec![device.id.clone()],
                    users: vec![link.user.clone()],
                    detected_at: None,
                    detection_source: Some("user report (personal link)".into()),
                    response_plan: String::new(),
                    expected_completion: None,
                    resources: Default::default(),
                    evidence_procedure: String::new(),
                    evidence_location: String::new(),
                    responsible: Default::default(),
                    comments: details.to_owned(),
                },
            )
            .await
    }
}
