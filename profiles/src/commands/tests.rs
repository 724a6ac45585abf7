use super::*;
use std::path::PathBuf;

const TOKEN: &[u8] = b"\x01\x02unlock-token";

const PROFILE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>PayloadContent</key><array/>
<key>PayloadDisplayName</key><string>Test</string>
<key>PayloadIdentifier</key><string>com.example.test</string>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadUUID</key><string>6F1D2C1E-3E0B-4F7A-9A43-0B8F3C2B1A00</string>
<key>PayloadVersion</key><integer>1</integer>
</dict></plist>"#;

fn ctx(os: AppleOs) -> BuildContext<'static> {
    BuildContext {
        os,
        unlock_token: Some(TOKEN),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn s(v: &str) -> Option<String> {
    Some(v.into())
}

/// The inner Command dictionary of a built command, read back from its XML.
fn command_of(built: &BuiltCommand) -> Dictionary {
    let mut full = Value::from_reader_xml(&built.plist_xml[..])
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert_eq!(full.len(), 2);
    assert_eq!(
        full["CommandUUID"].as_string(),
        Some(built.command_uuid.as_str())
    );
    let command = full.remove("Command").unwrap().into_dictionary().unwrap();
    assert_eq!(
        command["RequestType"].as_string(),
        Some(built.request_type.as_str())
    );
    command
}

fn keys(command: &Dictionary) -> Vec<&str> {
    let mut keys: Vec<_> = command.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn build(spec: &CommandSpec, os: AppleOs) -> Result<BuiltCommand, BuildError> {
    spec.build(&ctx(os))
}

/// Every variant with no options set.
fn minimal() -> Vec<CommandSpec> {
    use CommandSpec::*;
    vec![
        DeviceLock {
            message: None,
            phone_number: None,
            pin: None,
        },
        EraseDevice {
            pin: None,
            preserve_data_plan: None,
            disallow_proximity_setup: None,
        },
        InstallProfile {
            payload: b64(PROFILE.as_bytes()),
        },
        RemoveProfile {
            identifier: "com.example.test".into(),
        },
        ProfileList,
        DeviceInformation { queries: None },
        SecurityInfo,
        CertificateList,
        InstalledApplicationList {
            identifiers: None,
            managed_apps_only: None,
        },
        RestartDevice { notify_user: None },
        ShutDownDevice,
        ClearPasscode,
        EnableLostMode {
            message: s("Lost"),
            phone_number: None,
            footnote: None,
        },
        DisableLostMode,
        DeviceLocation,
        PlayLostModeSound,
    ]
}

/// Every variant with every option the platform accepts, for the schema checker.
fn rich(os: AppleOs) -> Vec<CommandSpec> {
    use CommandSpec::*;
    let mac = os == AppleOs::MacOs;
    let ios_only = |v| (!mac).then_some(v);
    vec![
        DeviceLock {
            message: s("Lost phone"),
            phone_number: s("+48 123 456 789"),
            pin: mac.then(|| "123456".into()),
        },
        EraseDevice {
            pin: mac.then(|| "654321".into()),
            preserve_data_plan: ios_only(true),
            disallow_proximity_setup: ios_only(false),
        },
        InstallProfile { payload: b64(PROFILE.as_bytes()) },
        RemoveProfile { identifier: "com.example.test".into() },
        ProfileList,
        DeviceInformation { queries: None },
        SecurityInfo,
        CertificateList,
        InstalledApplicationList {
            identifiers: Some(vec!["com.apple.Pages".into()]),
            managed_apps_only: Some(true),
        },
        RestartDevice { notify_user: mac.then_some(true) },
        ShutDownDevice,
        ClearPasscode,
        EnableLostMode {
            message: s("Please return"),
            phone_number: s("+48 123 456 789"),
            footnote: s("Reward offered"),
        },
        DisableLostMode,
        DeviceLocation,
        PlayLostModeSound,
        Raw {
            plist: "<plist version=\"1.0\"><dict><key>RequestType</key><string>ManagedApplicationList</string>\
                    <key>Identifiers</key><array><string>com.example.app</string></array></dict></plist>"
                .into(),
        },
    ]
}

/// Where Apple's schema says each command exists, written out independently of the code.
fn schema_platforms(request_type: &str) -> &'static [&'static str] {
    match request_type {
        "DeviceLock" => &["iOS", "macOS", "visionOS", "watchOS"],
        "RestartDevice" => &["iOS", "macOS", "tvOS"],
        "ShutDownDevice" => &["iOS", "macOS"],
        "ClearPasscode" => &["iOS", "visionOS", "watchOS"],
        "EnableLostMode" | "DisableLostMode" | "DeviceLocation" | "PlayLostModeSound" => &["iOS"],
        _ => &["iOS", "macOS", "tvOS", "visionOS", "watchOS"],
    }
}

const EVERY_OS: [AppleOs; 7] = [
    AppleOs::Ios,
    AppleOs::IpadOs,
    AppleOs::MacOs,
    AppleOs::TvOs,
    AppleOs::WatchOs,
    AppleOs::VisionOs,
    AppleOs::Unknown,
];

#[test]
fn every_variant_builds_exactly_where_the_schema_supports_it() {
    for os in EVERY_OS {
        for spec in minimal() {
            let rt = spec.request_type();
            let supported =
                os == AppleOs::Unknown || schema_platforms(&rt).contains(&os.schema_name());
            match build(&spec, os) {
                Ok(built) => {
                    assert!(supported, "{rt} built on {os}");
                    assert_eq!(built.request_type, rt);
                    command_of(&built);
                }
                Err(e) => {
                    assert!(!supported, "{rt} on {os}: {e}");
                    assert_eq!(
                        e,
                        BuildError::UnsupportedCommand {
                            request_type: e_rt(&e),
                            os
                        }
                    );
                    assert_eq!(e.to_string(), format!("{rt} is not supported on {os}"));
                }
            }
        }
    }
}

fn e_rt(e: &BuildError) -> &'static str {
    match e {
        BuildError::UnsupportedCommand { request_type, .. } => request_type,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rich_commands_carry_the_expected_keys() {
    let expected: &[(&str, &[&str], &[&str])] = &[
        // (RequestType, keys besides RequestType on iOS, on macOS)
        (
            "DeviceLock",
            &["Message", "PhoneNumber"],
            &["Message", "PIN", "PhoneNumber"],
        ),
        (
            "EraseDevice",
            &["DisallowProximitySetup", "PreserveDataPlan"],
            &["PIN"],
        ),
        ("InstallProfile", &["Payload"], &["Payload"]),
        ("RemoveProfile", &["Identifier"], &["Identifier"]),
        ("ProfileList", &[], &[]),
        ("DeviceInformation", &["Queries"], &["Queries"]),
        ("SecurityInfo", &[], &[]),
        ("CertificateList", &[], &[]),
        (
            "InstalledApplicationList",
            &["Identifiers", "ManagedAppsOnly"],
            &["Identifiers", "ManagedAppsOnly"],
        ),
        ("RestartDevice", &[], &["NotifyUser"]),
        ("ShutDownDevice", &[], &[]),
        ("ClearPasscode", &["UnlockToken"], &[]),
        (
            "EnableLostMode",
            &["Footnote", "Message", "PhoneNumber"],
            &[],
        ),
        ("DisableLostMode", &[], &[]),
        ("DeviceLocation", &[], &[]),
        ("PlayLostModeSound", &[], &[]),
        ("ManagedApplicationList", &["Identifiers"], &["Identifiers"]),
    ];
    for os in [AppleOs::Ios, AppleOs::MacOs] {
        let built: Vec<_> = rich(os)
            .iter()
            .filter_map(|spec| build(spec, os).ok())
            .collect();
        for (rt, on_ios, on_mac) in expected {
            let want = if os == AppleOs::Ios { on_ios } else { on_mac };
            let Some(b) = built.iter().find(|b| b.request_type == *rt) else {
                assert!(want.is_empty() && !schema_platforms(rt).contains(&os.schema_name()));
                continue;
            };
            let mut want = want.to_vec();
            want.push("RequestType");
            want.sort_unstable();
            assert_eq!(keys(&command_of(b)), want, "{rt} on {os}");
        }
    }
}

#[test]
fn values_are_written_with_apple_types() {
    let lock = build(&rich(AppleOs::MacOs)[0], AppleOs::MacOs).unwrap();
    let c = command_of(&lock);
    assert_eq!(c["PIN"].as_string(), Some("123456"));
    assert_eq!(c["Message"].as_string(), Some("Lost phone"));
    assert!(lock.sensitive);

    let profile = CommandSpec::InstallProfile {
        payload: b64(PROFILE.as_bytes()),
    };
    let c = command_of(&build(&profile, AppleOs::Ios).unwrap());
    assert_eq!(c["Payload"].as_data(), Some(PROFILE.as_bytes()));

    let clear = build(&CommandSpec::ClearPasscode, AppleOs::Ios).unwrap();
    assert_eq!(command_of(&clear)["UnlockToken"].as_data(), Some(TOKEN));
    assert!(clear.sensitive);

    let erase = CommandSpec::EraseDevice {
        pin: None,
        preserve_data_plan: Some(true),
        disallow_proximity_setup: None,
    };
    let built = build(&erase, AppleOs::Ios).unwrap();
    assert_eq!(
        command_of(&built)["PreserveDataPlan"].as_boolean(),
        Some(true)
    );
    assert!(!built.sensitive, "no secret without a PIN");
    assert!(
        build(&rich(AppleOs::MacOs)[1], AppleOs::MacOs)
            .unwrap()
            .sensitive
    );
    assert!(
        !build(&CommandSpec::ProfileList, AppleOs::Ios)
            .unwrap()
            .sensitive
    );
    let profile = CommandSpec::InstallProfile {
        payload: "PD94bWwgdmVyc2lvbj0iMS4wIj8+PHBsaXN0IHZlcnNpb249IjEuMCI+PGRpY3QvPjwvcGxpc3Q+"
            .into(),
    };
    assert!(
        build(&profile, AppleOs::Ios).unwrap().sensitive,
        "profiles may hold passwords"
    );
}

#[test]
fn default_queries_follow_the_platform() {
    let queries = |os| -> Vec<String> {
        let built = build(&CommandSpec::DeviceInformation { queries: None }, os).unwrap();
        command_of(&built)["Queries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q.as_string().unwrap().to_owned())
            .collect()
    };
    let (ios, mac, any) = (
        queries(AppleOs::Ios),
        queries(AppleOs::MacOs),
        queries(AppleOs::Unknown),
    );
    for needed in [
        "OSVersion",
        "BuildVersion",
        "ProductName",
        "Model",
        "ModelName",
        "SerialNumber",
        "DeviceName",
        "UDID",
        "IsSupervised",
        "IsActivationLockEnabled",
    ] {
        assert!(
            ios.iter().any(|q| q == needed) && mac.iter().any(|q| q == needed),
            "{needed}"
        );
    }
    assert!(ios.contains(&"IMEI".into()) && !mac.contains(&"IMEI".into()));
    assert!(mac.contains(&"IsAppleSilicon".into()) && !ios.contains(&"IsAppleSilicon".into()));
    assert_eq!(any.len(), DEFAULT_QUERIES.len());

    let given = CommandSpec::DeviceInformation {
        queries: Some(vec!["UDID".into()]),
    };
    let c = command_of(&build(&given, AppleOs::Ios).unwrap());
    assert_eq!(c["Queries"], Value::Array(vec!["UDID".into()]));
}

#[test]
fn validation_errors() {
    use BuildError::*;
    use CommandSpec::*;
    let lock = |pin: &str| DeviceLock {
        message: None,
        phone_number: None,
        pin: s(pin),
    };
    let cases: Vec<(CommandSpec, AppleOs, BuildError, &str)> = vec![
        (
            lock("123456"),
            AppleOs::Ios,
            UnsupportedKey { request_type: "DeviceLock", key: "PIN", supported: "macOS".into() },
            "DeviceLock PIN is only supported on macOS",
        ),
        (lock("12345"), AppleOs::MacOs, InvalidPin, "PIN must be exactly 6 digits"),
        (lock("12345a"), AppleOs::MacOs, InvalidPin, "PIN must be exactly 6 digits"),
        (lock("1234567"), AppleOs::Unknown, InvalidPin, "PIN must be exactly 6 digits"),
        (
            EraseDevice { pin: s("123456"), preserve_data_plan: None, disallow_proximity_setup: None },
            AppleOs::IpadOs,
            UnsupportedKey { request_type: "EraseDevice", key: "PIN", supported: "macOS".into() },
            "EraseDevice PIN is only supported on macOS",
        ),
        (
            EraseDevice { pin: None, preserve_data_plan: Some(true), disallow_proximity_setup: None },
            AppleOs::MacOs,
            UnsupportedKey { request_type: "EraseDevice", key: "PreserveDataPlan", supported: "iOS, watchOS".into() },
            "EraseDevice PreserveDataPlan is only supported on iOS, watchOS",
        ),
        (
            EraseDevice { pin: None, preserve_data_plan: None, disallow_proximity_setup: Some(true) },
            AppleOs::MacOs,
            UnsupportedKey { request_type: "EraseDevice", key: "DisallowProximitySetup", supported: "iOS".into() },
            "EraseDevice DisallowProximitySetup is only supported on iOS",
        ),
        (
            RestartDevice { notify_user: Some(true) },
            AppleOs::Ios,
            UnsupportedKey { request_type: "RestartDevice", key: "NotifyUser", supported: "macOS".into() },
            "RestartDevice NotifyUser is only supported on macOS",
        ),
        (
            DeviceLock { message: s("Hi"), phone_number: None, pin: None },
            AppleOs::VisionOs,
            UnsupportedKey {
                request_type: "DeviceLock",
                key: "Message",
                supported: "iOS, macOS, tvOS, watchOS".into(),
            },
            "DeviceLock Message is only supported on iOS, macOS, tvOS, watchOS",
        ),
        (
            DeviceLock { message: s(""), phone_number: None, pin: None },
            AppleOs::Ios,
            Empty { request_type: "DeviceLock", key: "Message" },
            "DeviceLock Message must not be empty",
        ),
        (
            EnableLostMode { message: None, phone_number: s("  "), footnote: None },
            AppleOs::Ios,
            Empty { request_type: "EnableLostMode", key: "PhoneNumber" },
            "EnableLostMode PhoneNumber must not be empty",
        ),
        (
            EnableLostMode { message: None, phone_number: None, footnote: s("Thanks") },
            AppleOs::Ios,
            LostModeNeedsContact,
            "EnableLostMode needs a message or a phone number",
        ),
        (
            EnableLostMode { message: s("Lost"), phone_number: None, footnote: None },
            AppleOs::MacOs,
            UnsupportedCommand { request_type: "EnableLostMode", os: AppleOs::MacOs },
            "EnableLostMode is not supported on macOS",
        ),
        (
            ShutDownDevice,
            AppleOs::TvOs,
            UnsupportedCommand { request_type: "ShutDownDevice", os: AppleOs::TvOs },
            "ShutDownDevice is not supported on tvOS",
        ),
        (
            RemoveProfile { identifier: String::new() },
            AppleOs::Ios,
            Empty { request_type: "RemoveProfile", key: "Identifier" },
            "RemoveProfile Identifier must not be empty",
        ),
        (
            DeviceInformation { queries: Some(vec![]) },
            AppleOs::Ios,
            Empty { request_type: "DeviceInformation", key: "Queries" },
            "DeviceInformation Queries must not be empty",
        ),
        (
            InstalledApplicationList { identifiers: Some(vec!["a".into(), "".into()]), managed_apps_only: None },
            AppleOs::Ios,
            Empty { request_type: "InstalledApplicationList", key: "Identifiers" },
            "InstalledApplicationList Identifiers must not be empty",
        ),
        (InstallProfile { payload: "not base64!".into() }, AppleOs::Ios, InvalidBase64, "payload is not valid base64"),
        (InstallProfile { payload: " \n".into() }, AppleOs::Ios, EmptyPayload, "payload is empty"),
        (
            InstallProfile { payload: b64(b"hello") },
            AppleOs::Ios,
            NotAProfile,
            "payload is not a configuration profile (neither a plist nor signed data)",
        ),
        (Raw { plist: "<plist>".into() }, AppleOs::Ios, InvalidRawPlist(String::new()), ""),
        (
            Raw { plist: "<plist version=\"1.0\"><array/></plist>".into() },
            AppleOs::Ios,
            RawNotADictionary,
            "raw plist is not a dictionary",
        ),
        (
            Raw { plist: "<plist version=\"1.0\"><dict><key>Queries</key><array/></dict></plist>".into() },
            AppleOs::Ios,
            RawMissingRequestType,
            "raw plist has no RequestType",
        ),
        (
            Raw {
                plist: "<plist version=\"1.0\"><dict><key>Command</key><dict><key>RequestType</key>\
                        <string>ProfileList</string></dict><key>Extra</key><true/></dict></plist>"
                    .into(),
            },
            AppleOs::Ios,
            RawUnexpectedKey("Extra".into()),
            "raw plist has an unexpected top-level key Extra; only CommandUUID and Command belong there",
        ),
    ];
    for (spec, os, want, message) in cases {
        let got = build(&spec, os).unwrap_err();
        if let InvalidRawPlist(detail) = &got {
            assert!(
                got.to_string()
                    .starts_with("raw plist is not a valid plist: "),
                "{detail}"
            );
            continue;
        }
        assert_eq!(got, want, "{spec:?} on {os}");
        assert_eq!(got.to_string(), message);
    }
}

#[test]
fn clear_passcode_needs_an_unlock_token() {
    for token in [None, Some(&[][..])] {
        let ctx = BuildContext {
            os: AppleOs::Ios,
            unlock_token: token,
        };
        let err = CommandSpec::ClearPasscode.build(&ctx).unwrap_err();
        assert_eq!(err, BuildError::MissingUnlockToken);
        assert_eq!(
            err.to_string(),
            "ClearPasscode needs the device's UnlockToken, which this device never sent"
        );
    }
}

#[test]
fn payload_base64_may_be_wrapped_and_unpadded() {
    let wrapped: String = b64(PROFILE.as_bytes())
        .trim_end_matches('=')
        .as_bytes()
        .chunks(76)
        .map(|line| format!("{}\n", std::str::from_utf8(line).unwrap()))
        .collect();
    let c = command_of(
        &build(
            &CommandSpec::InstallProfile { payload: wrapped },
            AppleOs::Ios,
        )
        .unwrap(),
    );
    assert_eq!(c["Payload"].as_data(), Some(PROFILE.as_bytes()));
    // Signed profiles are DER: they start with a SEQUENCE tag.
    let signed = CommandSpec::InstallProfile {
        payload: b64(&[0x30, 0x82, 0x01, 0x00]),
    };
    assert!(build(&signed, AppleOs::MacOs).is_ok());
}

#[test]
fn raw_accepts_both_shapes_and_gets_a_fresh_uuid() {
    let inner = "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>\
        <key>ManagedOnly</key><true/><key>RequestType</key><string>ProfileList</string>\
        <key>Zeta</key><string>z</string></dict></plist>";
    let full = "<plist version=\"1.0\"><dict><key>CommandUUID</key><string>admin-chosen</string>\
        <key>Command</key><dict><key>RequestType</key><string>DeviceLock</string>\
        <key>PIN</key><string>123456</string></dict></dict></plist>";

    let spec = CommandSpec::Raw {
        plist: inner.into(),
    };
    assert_eq!(spec.request_type(), "ProfileList");
    let built = spec
        .build_with_uuid(&ctx(AppleOs::Ios), "FIXED-UUID")
        .unwrap();
    assert_eq!(built.command_uuid, "FIXED-UUID");
    assert!(!built.sensitive);
    let c = command_of(&built);
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        ["RequestType", "ManagedOnly", "Zeta"]
    );

    let spec = CommandSpec::Raw { plist: full.into() };
    assert_eq!(spec.request_type(), "DeviceLock");
    let built = build(&spec, AppleOs::Unknown).unwrap();
    assert_ne!(built.command_uuid, "admin-chosen");
    assert!(built.sensitive, "a PIN is a secret");
    assert_eq!(command_of(&built)["PIN"].as_string(), Some("123456"));

    let nested = "<plist version=\"1.0\"><dict><key>RequestType</key><string>Settings</string>\
        <key>Settings</key><array><dict><key>UnlockToken</key><data>AQI=</data></dict></array></dict></plist>";
    assert!(
        build(
            &CommandSpec::Raw {
                plist: nested.into()
            },
            AppleOs::Ios
        )
        .unwrap()
        .sensitive
    );
    assert_eq!(
        CommandSpec::Raw {
            plist: "junk".into()
        }
        .request_type(),
        "Raw"
    );
}

#[test]
fn uuids_are_upper_case_and_unique() {
    let a = build(&CommandSpec::ProfileList, AppleOs::Ios).unwrap();
    let b = build(&CommandSpec::ProfileList, AppleOs::Ios).unwrap();
    assert_ne!(a.command_uuid, b.command_uuid);
    for id in [&a.command_uuid, &b.command_uuid] {
        assert_eq!(*id, id.to_uppercase());
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    }
    assert_eq!(
        CommandSpec::ProfileList
            .build_with_uuid(&ctx(AppleOs::Ios), " ")
            .unwrap_err(),
        BuildError::EmptyCommandUuid
    );
}

#[test]
fn debug_output_hides_secrets() {
    let built = build(&CommandSpec::ClearPasscode, AppleOs::Ios).unwrap();
    let shown = format!("{built:?}");
    assert!(shown.contains("redacted") && !shown.contains("UnlockToken"));
    assert!(format!(
        "{:?}",
        build(&CommandSpec::ProfileList, AppleOs::Ios).unwrap()
    )
    .contains("ProfileList"));
}

/// The admin API's JSON object, as serde sees it. The crate has no JSON dependency;
/// plist's Value is another self-describing format, and internally tagged enums and
/// flatten go through the same serde buffering for both.
fn admin<T: serde::de::DeserializeOwned>(fields: &[(&str, Value)]) -> Result<T, plist::Error> {
    let object: Dictionary = fields.iter().map(|(k, v)| (*k, v.clone())).collect();
    plist::from_value(&Value::Dictionary(object))
}

#[test]
fn admin_api_objects() {
    let t = |name: &str| ("type", Value::from(name));
    let lock = [
        t("DeviceLock"),
        ("message", "Lost phone".into()),
        ("phone_number", "+48 1".into()),
    ];
    let spec: CommandSpec = admin(&lock).unwrap();
    assert_eq!(
        spec,
        CommandSpec::DeviceLock {
            message: s("Lost phone"),
            phone_number: s("+48 1"),
            pin: None
        }
    );
    assert_eq!(
        plist::from_value::<CommandSpec>(&plist::to_value(&spec).unwrap()).unwrap(),
        spec
    );
    assert_eq!(
        admin::<CommandSpec>(&[t("ProfileList")]).unwrap(),
        CommandSpec::ProfileList
    );
    assert!(admin::<CommandSpec>(&[t("DeviceLock"), ("pinn", "123456".into())]).is_err());
    assert!(admin::<CommandSpec>(&[t("Nope")]).is_err());

    // The server embeds the spec in its request body with #[serde(flatten)].
    #[derive(Deserialize, Debug)]
    struct Queue {
        device: String,
        #[serde(flatten)]
        command: CommandSpec,
    }
    let device = ("device", Value::from("D1"));
    let q: Queue = admin(&[
        device.clone(),
        t("RestartDevice"),
        ("notify_user", true.into()),
    ])
    .unwrap();
    assert_eq!(q.device, "D1");
    assert_eq!(
        q.command,
        CommandSpec::RestartDevice {
            notify_user: Some(true)
        }
    );
    assert!(admin::<Queue>(&[device, t("RestartDevice"), ("bogus", 1.into())]).is_err());
}

#[test]
fn os_from_product() {
    for (product, os) in [
        ("iPhone15,2", AppleOs::Ios),
        ("iPod9,1", AppleOs::Ios),
        ("iPad13,1", AppleOs::IpadOs),
        ("iPadOS", AppleOs::IpadOs),
        ("MacBookPro18,3", AppleOs::MacOs),
        ("Mac14,2", AppleOs::MacOs),
        ("iMac21,1", AppleOs::MacOs),
        ("VirtualMac2,1", AppleOs::MacOs),
        ("Mac OS X", AppleOs::MacOs),
        ("macOS", AppleOs::MacOs),
        ("AppleTV14,1", AppleOs::TvOs),
        ("Apple TV", AppleOs::TvOs),
        ("Watch6,1", AppleOs::WatchOs),
        ("watchOS", AppleOs::WatchOs),
        ("RealityDevice14,1", AppleOs::VisionOs),
        ("Apple Vision Pro", AppleOs::VisionOs),
        ("iOS", AppleOs::Ios),
        ("iPhone OS", AppleOs::Ios),
        ("", AppleOs::Unknown),
        ("Pixel 8", AppleOs::Unknown),
    ] {
        assert_eq!(AppleOs::from_product(product), os, "{product}");
    }
    assert_eq!(AppleOs::IpadOs.schema_name(), "iOS");
    assert_eq!(AppleOs::VisionOs.schema_name(), "visionOS");
}

/// Writes every command, as built for iOS and macOS, where
/// `mdm-schema-check --platform <os> $MDM_ARTIFACTS_DIR/apple/<os>/*.plist` finds it.
#[test]
fn writes_artifacts_for_schema_check() {
    let root = std::env::var_os("MDM_ARTIFACTS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/mdm-artifacts"),
        PathBuf::from,
    );
    for os in [AppleOs::Ios, AppleOs::MacOs] {
        let dir = root.join("apple").join(os.schema_name());
        std::fs::create_dir_all(&dir).unwrap();
        let mut written = 0;
        for spec in rich(os) {
            if !schema_platforms(&spec.request_type()).contains(&os.schema_name()) {
                continue;
            }
            let built = build(&spec, os).unwrap_or_else(|e| panic!("{spec:?} on {os}: {e}"));
            let path = dir.join(format!("command-{}.plist", built.request_type));
            std::fs::write(path, &built.plist_xml).unwrap();
            written += 1;
        }
        assert!(written >= 10);
    }
}
