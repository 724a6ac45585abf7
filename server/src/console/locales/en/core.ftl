# The console's English messages: the reference catalogue. Every message here must
# exist in pl.ftl and uk.ftl (a test compares them).
product = MDM console
skip-to-content = Skip to content
nav-label = Main
nav-dashboard = Dashboard
nav-devices = Devices
nav-enrollments = Enrollments
nav-incidents = Incident register
language = Language
language-apply = Apply
signed-in-as = Signed in as { $value }
logout = Log out
back = Back
back-to-dashboard = Back to the dashboard
back-to-devices = Back to the devices
continue = Continue
none = None
previous = Previous page
next = Next page
pages = Pages
search = Search
select-all = Select all
select-device = Select { $value }
device = Device
approve = Approve
deny = Deny

## Months (short, as dates are written)
month-1 = Jan
month-2 = Feb
month-3 = Mar
month-4 = Apr
month-5 = May
month-6 = Jun
month-7 = Jul
month-8 = Aug
month-9 = Sep
month-10 = Oct
month-11 = Nov
month-12 = Dec

## Login
login-title = Log in
username = User name
password = Password
login-submit = Log in
login-refused = Wrong user name or password.
login-locked = Too many failed logins: wait a few minutes, then try again.
login-expired = Your session has ended. Please log in again.
totp-title = Second factor
totp-explain = Enter the 6-digit code from your authenticator app, or one of your recovery codes.
totp-code = Code
totp-submit = Verify
totp-refused = That code was not accepted. Try the current code.
password-title = Change your password
password-forced = You must choose a new password before you continue.
password-current = Current password
password-new = New password
password-confirm = New password again
password-submit = Change password
password-mismatch = The two new passwords differ.
password-rule = { $count ->
    [one] At least { $n } character.
   *[other] At least { $n } characters.
}
enrol-title = Set up the second factor
enrol-explain = Scan this QR code with an authenticator app (for example FreeOTP or Google Authenticator), then enter the code it shows.
enrol-qr-alt = QR code for the authenticator app
enrol-secret = Or type this key:
enrol-uri = Show the otpauth link
enrol-submit = Turn on
recovery-title = Your recovery codes
recovery-explain = Keep these codes somewhere safe. Each logs you in once if you lose your phone. They are not shown again.

## Notices after an action
done-locked = The lock was sent to the device.
done-wipe-queued = The wipe was sent to the device.
done-lost-mode = Lost mode was sent to the device.
done-queued = The command was queued.
done-revoked = Revoked.
done-created = Created.
done-filed = The incident was filed in the register.
done-classified = The incident was classified.
done-closed = The incident was closed.
done-password-changed = Your password was changed.
done-totp-enabled = The second factor is on.
done-language = Language saved.
done-action-recorded = The response action was recorded.

## Errors
error-forbidden = Not allowed
error-forbidden-text = Your roles do not grant the right this needs.
error-csrf = The form has expired
error-csrf-text = The page's security token was missing or out of date. Go back, reload the page and try again.
error-not-found = Not found
error-not-found-text = There is no such page or record.
error-bad-request = The request was not understood
error-refused = The server refused
error-internal = Something went wrong
error-internal-text = The server could not show this page. The error was logged.
field-not-a-number = { $value } must be a whole number.

## Dashboard
fleet = Fleet
fleet-total = Devices
fleet-noncompliant = Not compliant
platform-apple = Apple
platform-android = Android
incidents-by-level = Open incidents by level
incidents-open = { $count ->
    [one] { $n } open incident
   *[other] { $n } open incidents
}
health = Connections
health-push = Apple push certificate
health-google = Google (Android Enterprise)
health-ok = OK
health-missing = Missing
health-expired = Expired
health-expiring = Expires soon
health-failing = Failing
health-signup-pending = Sign-up not finished
health-not-connected = Not connected
health-push-missing = No push certificate: Apple devices cannot be reached.
health-google-missing = Android devices cannot be enrolled until the enterprise is connected.
health-expires-on = Expires on { $value }
health-expired-on = Expired on { $value }
days-left = { $count ->
    [one] { $n } day left
   *[other] { $n } days left
}
level-0 = non-critical
level-1 = low
level-2 = medium
level-3 = high
level-4 = critical
level-5 = emergency

## Devices
devices-count = { $count ->
    [one] { $n } device
   *[other] { $n } devices
}
filter-any = Any
filter-platform = Platform
filter-compliance = Compliance
filter-user = User
filter-group = Group
filter-apply = Filter
compliance-compliant = Compliant
compliance-noncompliant = Not compliant
compliance-unknown = Not evaluated
compliance-checked = Last evaluated: { $value }
device-name = Name
device-platform = Platform
device-model = Model
device-os = Operating system
device-serial = Serial number
device-udid = UDID
device-imei = IMEI
device-user = User
device-group = Group
device-enrolled-at = Enrolled
device-last-seen = Last seen
device-identity = Device identity
device-compliance = Compliance
device-facts = Facts
device-actions = Actions
device-history = Command history
identity-revoked = Revoked
identity-valid-until = Valid until { $value }
lock-title = Lock
lock-message = Message on the lock screen
lock-phone = Phone number on the lock screen
lock-submit = Lock the device
wipe-title = Wipe
wipe-warning = Erases everything on the device and returns it to factory settings. This cannot be undone.
wipe-type-serial = Type the device's serial number to confirm
wipe-type-id = Type the device's id to confirm (it has not reported a serial number yet)
wipe-submit = Wipe the device
wipe-refused = Not wiped: { $value }
command-type = Command
command-status = Status
command-created = Queued
command-by = By
command-completed = Finished
command-result = Result
status-pending = Queued
status-sent = Sent
status-notnow = Device busy
status-acknowledged = Done
status-error = Failed
status-commandformaterror = Refused by the device
status-cancelled = Cancelled
status-expired = Expired
bulk-action = With the selected devices
bulk-query = Refresh information
bulk-lock = Lock
bulk-submit = Run
bulk-none-selected = Select at least one device.
bulk-unknown-action = Unknown action.
bulk-not-apple = information is refreshed by Android Device Policy itself
bulk-refused = Not sent
progress-title = Progress
progress-refresh = Refresh
commands-count = { $count ->
    [one] { $n } command finished
   *[other] { $n } commands finished
}

## Enrollments
enrollment-new = New enrollment
enrollment-name = Name
enrollment-hours = Valid for (hours)
enrollment-max_uses = Number of devices (empty: no limit)
enrollment-user = For user
enrollment-group = Into group
enrollment-create = Create
enrollment-state = State
enrollment-uses = Devices enrolled
enrollment-expires = Expires
enrollment-url = Address
enrollment-active = Active
enrollment-expired = Expired
enrollment-revoked = Revoked
enrollment-used-up = Used up
enrollment-show-all = Show expired and revoked too
enrollment-show-active = Show active only
enrollment-qr-alt = Enrollment QR code for { $value }
enrollment-how-apple = Open the camera on the iPhone or iPad, scan the code, and install the profile it offers in Settings.
enrollment-how-android = On a new or reset Android phone, tap the welcome screen six times, then scan the code.
enrollment-print = Print view
enrollment-revoke = Revoke

## Incident register
incidents-count = { $count ->
    [one] { $n } incident
   *[other] { $n } incidents
}
incident-number = No. { $value }:
incident-file = File an incident
incident-file-submit = File
incident-type-hint = A short name such as lost_device or stolen_device.
incident-devices-hint = Device ids, separated by commas.
incident-bad-date = The expected completion date is not a date.
incident-classify = Classify
incident-classify-submit = Save the classification
incident-action = Record a response action
incident-action-description = What was done
incident-action-submit = Record
incident-close = Close
incident-closing-report = Closing report
incident-close-submit = Close the incident
incident-approvals = Actions waiting for approval
incident-evidence = Evidence
incident-history = History
incident-status-not-started = Not started
incident-status-in-progress = In progress
incident-status-completed = Completed
classification-reported = Reported
classification-confirmed = Confirmed
classification-rejected = Rejected
register-columns = Register entry
register-number = No.
register-name = Incident name
register-type = Type
register-level = Level
register-classification = Classification
register-plan = Response action plan
register-actions = Date and time of response actions
register-expected = Expected completion of all response actions
register-resources = Technical, software and financial resources
register-evidence-procedure = Procedure for collecting evidence
register-evidence-location = Where the evidence is kept
register-responsible = Person responsible
register-status = Status
register-comments = Comments
register-devices = Devices
register-detected = Detected
register-source = Detected by
evidence-kind = Kind
evidence-source = Source
evidence-collected = Collected
history-at = When
history-change = Change
export-csv = Export CSV
export-json = Export JSON
export-pdf = Report (PDF)
done-evidence-collected = The evidence was collected; its SHA-256 is in the list.
evidence-collect = Collect evidence
evidence-device-facts = The device's record (facts, compliance, identity)
evidence-events = The device's events
evidence-note = A written note
evidence-note-text = Note (for a written note)
evidence-collect-submit = Collect
