//! Test support: a fixture that starts the real `mdm` binary, an Apple device
//! simulator that signs its requests like an iPhone or a Mac, and the artifacts
//! folder that the schema check reads.

pub mod android_fixture;
pub mod answers;
pub mod artifacts;
pub mod bench;
pub mod console;
pub mod enroll;
pub mod fake_apns;
pub mod fake_google;
pub mod fake_google_amapi;
pub mod fake_google_schema;
pub mod fake_mdmcert;
pub mod fixture;
pub mod hostile;
pub mod private_postgres;
pub mod restartable;
pub mod simulator;
pub mod slapd;
pub mod smtp;
pub mod totp;

/// Runs a scenario `async fn name(backend: Backend)` once on SQLite and once on
/// PostgreSQL (when MDM_TEST_POSTGRES_URL names a server), as two tests.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::fixture::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::fixture::Backend::postgres_from_env() {
                    Some(backend) => super::$name(backend).await,
                    None if std::env::var_os("MDM_REQUIRE_POSTGRES").is_some() => panic!(
                        "MDM_REQUIRE_POSTGRES is set but MDM_TEST_POSTGRES_URL is not"
                    ),
                    None => eprintln!(
                        "SKIPPED {}::postgres: MDM_TEST_POSTGRES_URL is not set (CI sets it)",
                        stringify!($name)
                    ),
                }
            }
        }
    )*};
}
