# Policies and device groups (server/src/console/policies.rs).
nav-policies = Policies
cancel = Cancel
minutes = { $count ->
    [one] { $n } minute
   *[other] { $n } minutes
}
done-group-created = The device group was created.
done-policy-saved = The policy was saved and is being delivered.
done-assigned = The policy was assigned.
done-unassigned = The assignment was removed.
policy-new = New policy
policy-title = Policy { $value }
policy-preview-title = Review the changes to { $value }
policy-name = Name
policy-version = Version
policy-updated = Changed
policy-assigned-to = Assigned to
policy-current-version = Current version: { $value }
policy-description = Description
policy-form = Edit in a form
policy-file = Edit the file
policy-form-hint = The form changes the name, description and passcode rules; Wi-Fi, mail and certificates are edited in the file.
policy-format = Format
policy-text = Policy file
policy-preview = Check and preview
policy-passcode = Passcode
passcode-required = A passcode is required
passcode-min-length = Minimum length (4 to 16)
passcode-alphanumeric = Letters required, not only digits
passcode-allow-simple = Simple passcodes allowed (1111, 1234)
passcode-auto-lock = Auto-lock after
passcode-max-failed = Failed attempts before the device is wiped (2 to 11)
passcode-max-age = Days before the passcode must be changed
passcode-history = Earlier passcodes that may not be reused
passcode-grace = Minutes after locking before the passcode is asked (0 to 240)
policy-not-a-number = must be a whole number
policy-allowed = allowed:
policy-invalid = { $count ->
    [one] The policy has { $n } error; nothing was saved.
   *[other] The policy has { $n } errors; nothing was saved.
}
policy-name-fixed = The name of this policy is { $value }; a policy under another name is a new policy.
policy-changes = Changes
policy-field = Field
policy-before = Now
policy-after = After applying
policy-unchanged = Nothing changes: the document equals the current version.
policy-findings = Office rules this policy breaks
policy-notes = What a platform cannot apply
policy-installs = { $count ->
    [one] { $n } device gets a new profile
   *[other] { $n } devices get a new profile
}
policy-would-queue = Applying reaches: { $value }
policy-note = Note for the version history
policy-apply = Apply
policy-unassign = Remove
policy-assign-group = Assign to group
policy-assign = Assign
groups = Device groups
group-new = New device group
group-name = Name
group-kind = Kind
group-match = Matches
group-match-hint = For a directory group, a department or an enrollment group: the name it matches. Empty for a manual group.
group-create = Create
group-kind-manual = Manual
group-kind-directory-group = Directory group
group-kind-department = Department
group-kind-enrollment = Enrollment group
policy-output-queued = Being sent
policy-output-installed = Installed
policy-output-removing = Being removed
reason-security-unreported = Security state not reported yet
reason-passcode-missing = No passcode set
reason-passcode-weak = The passcode is too weak for the policy
reason-encryption-off = Encryption is off
reason-compliance-unreported = Compliance not reported yet
reason-google-no-details = Not compliant with its policy (Google gave no details)
reason-profile-queued = The profile of policy { $value } is not installed yet
reason-profile-missing = The profile of policy { $value } is missing from the device
reason-passcode-android = Passcode missing or too weak ({ $value })
reason-wifi-psk = Wi-Fi { $value } uses a shared key; the office requires domain credentials
finding-passcode-required = no passcode is required; the clean screen policy asks for a PIN or password at start-up and when waking
finding-passcode-auto-lock = the screen must lock automatically after at most { $value } minutes (clean desk and clean screen policy)
finding-passcode-grace-period = the device must ask for the passcode as soon as it locks (clean screen policy)
finding-passcode-simple = simple passcodes (1234, 1111) must not be allowed (password policy)
finding-passcode-min-length = the passcode must have at least { $value } characters (password policy)
finding-passcode-failed-attempts = at most { $value } failed attempts may be allowed before the wipe (password policy)
finding-wifi-psk = Wi-Fi must use the user's domain credentials, not a shared key (password policy)
finding-mail-ssl = mail must connect with SSL/TLS so that passwords are encrypted in transit (password policy)
