//! sea-orm entities, one file per table. Only the storage module sees these; the rest
//! of the server works with the domain types in `crate::domain`.

pub mod admin_tokens;
pub mod android_devices;
pub mod android_enterprises;
pub mod android_operations;
pub mod android_policies;
pub mod certificate_revocation_lists;
pub mod commands;
pub mod deliveries;
pub mod delivery_cursors;
pub mod devices;
pub mod enrollments;
pub mod events;
pub mod identity_bindings;
pub mod incident_approvals;
pub mod incident_devices;
pub mod incident_event_links;
pub mod incident_evidence;
pub mod incident_history;
pub mod incident_register_head;
pub mod incident_rule_cursor;
pub mod incidents;
pub mod issued_certificates;
pub mod lost_report_links;
pub mod pki_objects;
pub mod push_attempts;
pub mod push_certificates;
pub mod scep_challenges;
pub mod user_channels;
