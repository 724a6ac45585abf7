use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where a command is in its life.
///
/// pending -> sent -> acknowledged | error | command_format_error
/// sent -> not_now -> sent ... (the device will retry later)
/// pending | not_now -> cancelled (admin) | expired (clock)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Pending,
    Sent,
    NotNow,
    Acknowledged,
    Error,
    CommandFormatError,
    Cancelled,
    Expired,
}

impl CommandStatus {
    pub const ALL: [CommandStatus; 8] = [
        CommandStatus::Pending,
        CommandStatus::Sent,
        CommandStatus::NotNow,
        CommandStatus::Acknowledged,
        CommandStatus::Error,
        CommandStatus::CommandFormatError,
        CommandStatus::Cancelled,
        CommandStatus::Expired,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            CommandStatus::Pending => "pending",
            CommandStatus::Sent => "sent",
            CommandStatus::NotNow => "not_now",
            CommandStatus::Acknowledged => "acknowledged",
            CommandStatus::Error => "error",
            CommandStatus::CommandFormatError => "command_format_error",
            CommandStatus::Cancelled => "cancelled",
            CommandStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<CommandStatus> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Still to be done by the device: counts as queued.
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            CommandStatus::Pending | CommandStatus::Sent | CommandStatus::NotNow
        )
    }
}

/// A command to put in a device's queue.
#[derive(Debug, Clone)]
pub struct NewCommand {
    pub uuid: String,
    pub device_id: String,
    pub request_type: String,
    /// The command plist as sent to the device, or its sealed form.
    pub payload: Vec<u8>,
    pub payload_sealed: bool,
    pub priority: i32,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: String,
}

/// A command as the admin API shows it (payload left out: it may hold secrets).
#[derive(Debug, Clone, Serialize)]
pub struct CommandRecord {
    pub uuid: String,
    pub device_id: String,
    pub request_type: String,
    pub priority: i32,
    pub status: CommandStatus,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub delivery_count: i32,
    pub not_now_count: i32,
    /// The device's report as it sent it (XML plist text).
    pub result_raw: Option<String>,
    /// Parsed fields of the report: status, error chain, command-specific facts.
    pub result: Option<serde_json::Value>,
    /// The report, sealed, when it carries a secret (`result_raw` is then None and
    /// `result` shows markers): opened only for an admin who asks for this command.
    #[serde(skip)]
    pub result_sealed: Option<Vec<u8>>,
}
