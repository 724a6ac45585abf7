//! Command reports (`PUT /mdm/connect`): the decoder, and the readers of the results
//! the server stores on the device record, must never panic on device bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = profiles::report::decode(data) {
        let _ = report.status.as_str();
        // The server reads device facts from Acknowledged results of these commands.
        for request_type in ["DeviceInformation", "SecurityInfo", "ProfileList"] {
            let _ = profiles::report::device_facts(request_type, &report.raw);
        }
    }
});
