# The console's administration pages (audit log, admins and roles, settings, users
# and groups) in English: the reference. Every message here must exist in pl and uk.
nav-audit = Audit log
nav-admins = Admins and roles
nav-settings = Settings
nav-directory = Users and groups

## Audit log
audit-chain = Integrity of the audit trail
audit-chain-intact = Verified
audit-chain-broken = Broken
audit-chain-records = { $count ->
    [one] { $n } record checked; every link holds.
   *[other] { $n } records checked; every link holds.
}
audit-chain-problems = { $count ->
    [one] { $n } problem found:
   *[other] { $n } problems found:
}
audit-chain-head = Chain head (record · hash): { $value }
audit-chain-where = Where the chain is broken
audit-anchor = Published anchor
audit-anchor-hint = Optional: SEQ:HASH from an audit.anchor event, to check that the chain still holds it.
audit-anchor-invalid = The anchor was not checked: { $value }
audit-anchor-found = Anchor { $value } is still in the chain.
audit-anchor-missing = Anchor { $value } is no longer in the chain.
audit-verify = Verify
audit-records = Records
audit-records-count = { $count ->
    [one] { $n } record
   *[other] { $n } records
}
audit-export-csv = Export the whole trail (CSV)
audit-seq = No.
audit-at = When
audit-actor = Who
audit-address = From
audit-action = Action
audit-outcome = Outcome
audit-outcome-success = Success
audit-outcome-failure = Failure
audit-outcome-denied = Denied
audit-newer = Newer records
audit-older = Older records

## Admins and roles
admins-accounts = Admin accounts
admins-count = { $count ->
    [one] { $n } admin
   *[other] { $n } admins
}
admins-name = User name
admins-display-name = Name
admins-groups = Groups
admins-roles = Roles
admins-mfa = Second factor
admins-mfa-on = On
admins-mfa-off = Off
admins-last-login = Last login
admins-state = State
admins-active = Active
admins-disabled = Disabled
admins-actions = Actions
admins-disable = Disable
admins-disable-reason = Reason for disabling { $value }
admins-reason = Reason (optional)
admins-enable = Enable
admins-reset-mfa = Reset second factor
admins-disable-hint = Disabling ends the admin's sessions and tokens at once and removes it from its groups; enabling does not give the groups back. Resetting the second factor ends its sessions; it sets up a new one at the next login.
admins-done-disabled = { $value } was disabled; its sessions have ended.
admins-done-enabled = { $value } was enabled again. Add it to its groups to give it rights.
admins-done-mfa-reset = The second factor of { $value } was reset.
admins-roles-heading = Roles
admins-role = Role
admins-role-description = Who gets it
admins-critical = Critical
admins-critical-yes = Critical
admins-critical-no = Not critical
admins-granted-to = Granted to groups
admins-rights = Rights
admins-rights-count = { $count ->
    [one] { $n } right
   *[other] { $n } rights
}
admins-matrix = Role matrix
admins-matrix-hint = Which role grants which right. Critical roles (*) need a second factor.
admins-matrix-csv = Export CSV
admins-right = Right
admins-granted = granted
admins-not-granted = not granted
right-devices-read = list and show devices, their commands and push attempts
right-devices-query = send information queries (device information, security information, profiles and more)
right-devices-lock = lock a device
right-devices-lost-mode = lost mode: turn on and off, locate, play a sound
right-devices-wipe = erase a device
right-devices-manage = retire, revoke and delete devices, approve re-enrollments, push now
right-commands-send = any other command (profiles, restart, passcode, raw) and cancel commands
right-enrollments-read = list and show enrollments
right-enrollments-write = create and revoke enrollments
right-policies-read = read policies, device groups and compliance
right-policies-write = change policies, assignments and device groups; deliver
right-directory-read = read directory users and groups, the off-boarding list
right-directory-write = configure and sync the directory, change users by hand
right-users-offboard = off-board a user: retire or wipe their devices
right-push-read = show the push certificate
right-push-write = upload the push certificate
right-android-read = show the link to Android Enterprise
right-android-write = connect Android Enterprise, sync devices
right-incidents-read = read the incident register, its history, evidence and reports
right-incidents-write = file and update incidents, evidence, personal lost-report links, replay deliveries
right-incidents-approve = approve or deny an action waiting for a second administrator
right-events-read = read the event stream and the server's counters
right-exports = bulk exports: the incident register, the audit trail
right-admins-read = list admins, admin groups, roles, the role matrix, tokens and sessions
right-admins-manage = create, disable and enable admins; reset passwords and second factors; group members; others' tokens and sessions
right-roles-manage = change roles and which groups hold them
right-audit-read = read and verify the audit trail, the yearly access review

## Settings
settings-push-topic = Topic
settings-push-subject = Subject
settings-push-fingerprint = Fingerprint (SHA-256)
settings-push-not-before = Valid from
settings-push-not-after = Valid until
settings-push-uploaded = Uploaded
settings-push-expired = The push certificate expired on { $value }: no Apple device can be reached until it is renewed.
settings-push-renew-soon = The push certificate expires on { $value }. Renew it at Apple's Push Certificates Portal with the same Apple ID, keeping the topic, before then.
settings-push-upload = Upload the push certificate
settings-push-renew = Upload a renewed push certificate
settings-push-explain = Give either the certificate in PEM with its private key, the certificate alone (for the key kept by "mdm push-cert request"), or a PKCS#12 file with its password. A renewal must keep the topic.
settings-push-pem = Certificate and key (PEM)
settings-push-certificate-file = Certificate file
settings-push-certificate-text = Or paste the certificate
settings-push-key-file = Private key file
settings-push-key-text = Or paste the private key
settings-push-key-hint = Leave empty when the server made the request (its key was kept).
settings-push-pkcs12 = Or a PKCS#12 file
settings-push-pkcs12-file = PKCS#12 file (.p12)
settings-push-pkcs12-password = Its password
settings-push-submit = Upload
settings-push-give-one = Give the certificate (with its key, or alone for the key the server kept) or a PKCS#12 file, not both.
settings-push-bad-base64 = The pasted PKCS#12 is not valid base64.
settings-push-refused = The push certificate was not accepted: { $value }
settings-push-too-large = The upload is larger than { $n } KiB: that is not a push certificate.
settings-done-push-uploaded = The push certificate was installed.
settings-android-enterprise = Enterprise
settings-android-project = Google Cloud project
settings-android-account = Service account
settings-android-connected = Connected
settings-android-topic = Pub/Sub topic
settings-android-last-sync = Last device sync
settings-android-last-pull = Last notification pull
settings-android-signup = The sign-up is not finished. Open this link with the office's Google account:
settings-android-last-error = Last error: { $value }
settings-android-not-connected = Android Enterprise is not connected: Android devices cannot be enrolled. Connect it on the server with:

## Users and groups
directory-source = Directory
directory-not-configured = No directory is configured. Users added by hand or imported from CSV are listed below. Configure the office's directory on the server with:
directory-never-synced = Not synced yet
directory-url = Address
directory-flavor = Kind
directory-base-dn = Base DN
directory-bind-dn = Read as
directory-last-sync = Last sync
directory-last-counts = Last sync's changes
directory-next-sync = Next sync
directory-no-schedule = Only on request
directory-configured = Configured
directory-sync-now = Sync now
directory-sync-failed = The sync failed: { $value }
directory-done-synced = The directory was synced.
directory-users = Users
directory-users-count = { $count ->
    [one] { $n } user
   *[other] { $n } users
}
directory-user-state = State
directory-user-active = Active
directory-user-disabled = Disabled
directory-username = User name
directory-display-name = Name
directory-email = E-mail
directory-department = Department
directory-groups = Groups
directory-group = Group
directory-origin = Source
directory-source-ldap = Directory
directory-source-csv = CSV import
directory-source-manual = By hand
directory-members = Members
directory-groups-count = { $count ->
    [one] { $n } group
   *[other] { $n } groups
}
directory-members-count = { $count ->
    [one] { $n } member
   *[other] { $n } members
}
audit-chain-unchecked = Not verified yet
audit-chain-unchecked-hint = Verifying reads the whole trail: press Verify to check every record's link now.
settings-done-android-connected = Connected to Google. Open the sign-up link to create the enterprise.
settings-android-connect = Connect to Google
settings-android-new-key = Replace the service-account key
settings-android-explain = The JSON key of a service account of your Google Cloud project with the Android Management API enabled; the Pub/Sub topic and subscription are optional (without them devices are synced periodically).
settings-android-key-file = Service-account key file (JSON)
settings-android-key-text = Or paste the key
settings-android-topic-field = Pub/Sub topic
settings-android-subscription-field = Pub/Sub subscription
settings-android-connect-submit = Connect
settings-android-bad-key = The key is not JSON: { $value }
settings-android-give-key = Choose the key file or paste the key.
