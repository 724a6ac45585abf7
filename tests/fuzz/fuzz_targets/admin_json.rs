//! JSON bodies of the admin API. The request structs live in the server crate, which
//! this fuzz crate does not depend on (it would build actix, sea-orm and sqlx with
//! sanitizer flags for little gain): serde_json itself is fuzzed as `Value`, and the
//! one body type that carries real structure, `profiles::commands::CommandSpec`
//! (flattened into `POST /api/v1/commands` and the per-device command route), is
//! deserialized and, when valid, built into a command plist for every OS, as the
//! server does before queueing it. `Raw` commands parse admin-written plist XML there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiles::commands::{AppleOs, BuildContext, CommandSpec};

const OSES: [AppleOs; 3] = [AppleOs::Ios, AppleOs::MacOs, AppleOs::TvOs];

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<serde_json::Value>(data);
    if let Ok(spec) = serde_json::from_slice::<CommandSpec>(data) {
        let _ = spec.request_type();
        for os in OSES {
            let ctx = BuildContext {
                os,
                unlock_token: Some(b"unlock-token"),
            };
            let _ = spec.build_with_uuid(&ctx, "00000000-0000-4000-8000-000000000000");
        }
    }
});
