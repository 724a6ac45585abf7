//! `mdm serve`: open the store, load keys, start the HTTP server and upkeep.

use crate::config::ServeConfig;
use crate::http::{self, AppState};
use crate::services::apple::AppleService;
use crate::services::commands::CommandService;
use crate::services::maintenance::Maintenance;
use crate::services::push::{PushConfig, PushService};
use crate::services::tokens::TokenService;
use crate::storage::{SqlStore, Storage};
use actix_web::{web, App, HttpServer};
use enrollment::identity::DeviceCa;
use std::io::Write;
use std::sync::Arc;

/// Opens (and migrates) the database the configuration names.
pub async fn open_store(config: &ServeConfig) -> anyhow::Result<SqlStore> {
    if config.database_url.starts_with("sqlite:") {
        crate::keys::private_data_dir(&config.data_dir)?;
        // Before SQLite opens it: SQLite would create it (and its -wal, -shm) 0644.
        crate::keys::private_sqlite_file(&config.database_url)?;
    }
    SqlStore::connect(&config.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))
}

pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    crate::keys::private_data_dir(&config.data_dir)?;
    let sealer = crate::keys::load_master_key(&config.master_key_file)?;
    // What the device path may answer without the database (server/src/cache): kept
    // current by this store's commits and, on PostgreSQL, the other instances'.
    let device_cache = crate::cache::DeviceCache::new();
    let sql = open_store(&config)
        .await?
        .with_device_cache(device_cache.clone());
    sql.keep_current(device_cache.clone(), &config.database_url);
    let store: Arc<dyn Storage> = Arc::new(sql);
    let last_seen = crate::services::apple::last_seen::LastSeen::new(store.clone());
    last_seen.spawn();
    let mut pki = crate::services::pki::load_or_create(&store, &sealer, &config.organization)
        .await
        .map_err(|e| anyhow::anyhow!("built-in PKI: {e}"))?;
    // Device certificates name where the CRL is published (http/pki.rs).
    pki.device_ca
        .set_crl_distribution_point(&format!(
            "{}{}",
            config.public_url,
            crate::http::pki::DEVICE_CA_CRL_PATH
        ))
        .map_err(|e| anyhow::anyhow!("device CA: {e}"))?;
    let pki = Arc::new(pki);
    // Devices prove themselves with certificates from the built-in CA, or from CAs
    // the admin names (devices enrolled elsewhere before).
    let mut trusted = vec![pki.device_ca.cert().clone()];
    if let Some(path) = &config.device_ca {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read device CA {}: {e}", path.display()))?;
        let extra = openssl::x509::X509::stack_from_pem(&pem)
            .ok()
            .filter(|certs| !certs.is_empty())
            .ok_or_else(|| {
                anyhow::anyhow!("device CA {}: no PEM certificate in it", path.display())
            })?;
        tracing::info!(certificates = extra.len(), path = %path.display(), "additional device CA loaded");
        trusted.extend(extra);
    }
    let device_ca = DeviceCa::from_certs(trusted).map_err(|e| anyhow::anyhow!("device CA: {e}"))?;
    let env_token = std::env::var("MDM_ADMIN_TOKEN").ok();
    crate::services::tokens::check_env_token(env_token.as_deref()).map_err(anyhow::Error::msg)?;
    if env_token.as_deref().is_some_and(|t| !t.is_empty()) {
        tracing::warn!(
            "MDM_ADMIN_TOKEN is set: a bootstrap credential with every right (owner), meant for the first start only. \
             Create an owner account (`mdm admin create <name> --display-name \"...\" --group owners` on this host), \
             log in with it (`mdm login`), then restart the server without MDM_ADMIN_TOKEN"
        );
    }
    let mut apns = config.apns.clone();
    if let Some(path) = &config.apns_ca_cert {
        apns.extra_ca_pem = Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("cannot read APNs CA {}: {e}", path.display()))?,
        );
    }
    let push = PushService::new(
        store.clone(),
        sealer.clone(),
        PushConfig {
            apns,
            coalesce: config.push_coalesce,
            repush_interval: config.repush_interval,
        },
    );
    push.reload()
        .await
        .map_err(|e| anyhow::anyhow!("loading the push certificate: {e}"))?;
    if push.info().is_none() {
        tracing::warn!("no push certificate uploaded (mdm push-cert upload): devices get commands only when they check in on their own");
    }
    push.spawn_flusher();
    push.spawn_repush();
    push.spawn_reload();
    let server_tls_ca = pki.server_tls_ca.clone();
    // What phones must trust for our HTTPS, installed by the enrollment profile.
    let server_trust = crate::tls::server_trust(&config, &server_tls_ca)?;
    let android = Arc::new(
        crate::services::android::AndroidService::new(
            store.clone(),
            sealer.clone(),
            config.android.clone(),
            config.public_url.clone(),
        )
        .map_err(|e| anyhow::anyhow!("Android: {e}"))?,
    );
    android.spawn_workers(config.android_pull_interval, config.android_sync_interval);
    let topic_source = push.clone();
    let enrollments = crate::services::enrollments::EnrollmentService::new(
        store.clone(),
        sealer.clone(),
        pki.clone(),
        config.public_url.clone(),
        config.organization.clone(),
        Box::new(move || topic_source.info().map(|i| i.topic)),
    )
    .with_server_trust(server_trust)
    .with_android(android.clone());
    // A profile that could not be built would be a 500 at a phone's enrollment: the
    // configuration is tried now instead.
    enrollments.check_profile_configuration().map_err(|e| {
        anyhow::anyhow!("the enrollment profile cannot be built with this configuration: {e}")
    })?;
    let revocation = Arc::new(crate::services::revocation::RevocationService::new(
        store.clone(),
        pki.clone(),
    ));
    let scep = crate::services::scep::ScepService::new(
        store.clone(),
        pki.clone(),
        config.organization.clone(),
        config.renewal_window,
    );
    android.set_revocation(revocation.clone());
    // Incident playbooks act on devices through the same services as admins.
    let playbooks = Arc::new(crate::services::playbooks::PlaybookRunner::new(
        store.clone(),
        CommandService::new(
            store.clone(),
            sealer.clone(),
            push.clone(),
            config.command_ttl,
        ),
        android.clone(),
        revocation.clone(),
        config.incidents.plans.clone(),
        config.incidents.playbooks.clone(),
    ));
    // Policies: compiled per device, delivered where they changed (services/policies).
    let policies = Arc::new(crate::services::policies::PolicyService::new(
        store.clone(),
        sealer.clone(),
        pki.clone(),
        crate::services::policies::deliver::AppleSettings {
            identifier_prefix: "mdm".into(),
            organization: config.organization.clone(),
            public_url: config.public_url.clone(),
        },
        android.clone(),
        push.clone(),
    ));
    crate::services::policies::watcher::PolicyWatcher {
        service: policies.clone(),
        interval: std::time::Duration::from_millis(500),
        state_interval: std::time::Duration::from_secs(24 * 3600),
    }
    .spawn();
    // Users and groups from the office's directory, synced on its schedule.
    let directory =
        crate::services::directory::DirectoryService::new(store.clone(), sealer.clone());
    directory.spawn_scheduler();
    let directory = web::Data::new(directory);
    // Admin accounts, sessions, roles (services/admins); the audit trail tails the
    // event stream; off-boardings are tracked until every device is done.
    // The audit chain's links are HMACs under a key derived from the master key.
    let audit_key =
        crate::services::admins::audit::audit_key(&sealer).map_err(anyhow::Error::msg)?;
    let admins = Arc::new(crate::services::admins::AdminServices {
        accounts: crate::services::admins::AdminService::new(
            store.clone(),
            sealer.clone(),
            config.admin.clone(),
            env_token.as_deref(),
        ),
        offboarding: Arc::new(
            crate::services::admins::offboarding::OffboardingService::new(
                store.clone(),
                CommandService::new(
                    store.clone(),
                    sealer.clone(),
                    push.clone(),
                    config.command_ttl,
                ),
                android.clone(),
                revocation.clone(),
            ),
        ),
        audit_key: audit_key.clone(),
    });
    let audit_trail = crate::services::admins::audit::AuditTrail::new(
        store.clone(),
        std::time::Duration::from_millis(500),
        audit_key,
        config.audit_anchors.clone(),
    );
    // Records an earlier release hashed without the key are linked into the keyed
    // chain before anything is served (verification refuses an unkeyed chain).
    audit_trail
        .seal_legacy()
        .await
        .map_err(|e| anyhow::anyhow!("audit trail: {e}"))?;
    audit_trail.spawn();
    admins
        .offboarding
        .clone()
        .spawn_tracker(std::time::Duration::from_secs(5));
    let state = web::Data::new(AppState {
        admins,
        policies,
        android,
        enrollments,
        scep,
        reenrollment: crate::services::reenrollment::ReenrollmentService::new(
            store.clone(),
            config.reenrollment,
        ),
        apple: AppleService::new(
            store.clone(),
            sealer.clone(),
            revocation.clone(),
            device_cache,
            last_seen.clone(),
        ),
        revocation,
        lost_reports: crate::services::lost_reports::LostReportService::new(
            store.clone(),
            config.public_url.clone(),
        ),
        incidents: crate::services::incidents::IncidentService::new(
            store.clone(),
            playbooks.clone(),
        ),
        commands: CommandService::new(
            store.clone(),
            sealer.clone(),
            push.clone(),
            config.command_ttl,
        ),
        tokens: TokenService::new(store.clone()),
        store: store.clone(),
        push,
        device_ca,
        trust_client_cert_header: config.trust_client_cert_header,
    });
    // Events out to webhooks, syslog and e-mail receivers (services/notify.rs).
    let receivers = crate::services::notify::receivers(
        &config.incidents.webhooks,
        &config.incidents.syslogs,
        &config.incidents.emails,
    )
    .map_err(|e| anyhow::anyhow!("--incident-rules: {e}"))?;
    let notifier = crate::services::notify::Notifier::new(
        store.clone(),
        receivers,
        std::time::Duration::from_millis(500),
    );
    notifier
        .init_cursors()
        .await
        .map_err(|e| anyhow::anyhow!("delivery receivers: {e}"))?;
    notifier.spawn();
    // Incidents filed from the event stream (services/incident_rules.rs).
    crate::services::incident_rules::IncidentRules::new(
        store.clone(),
        config.incidents.rules.clone(),
        playbooks,
        std::time::Duration::from_secs(1),
    )
    .spawn();
    Maintenance {
        store: store.clone(),
        retention: config.result_retention,
        interval: config.maintenance_interval,
    }
    .spawn();

    let body_limits = http::BodyLimits {
        device: config.max_body_bytes,
        api: config.max_api_body_bytes,
    };
    let limits = web::Data::new(http::limits::Limits::new(config.abuse.clone()));
    let abuse = config.abuse.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(directory.clone())
            .app_data(limits.clone())
            // Wrapped inside the logger, so that refusals are logged too.
            .wrap(actix_web::middleware::from_fn(http::limits::guard))
            // %r would log enrollment tokens and SCEP challenges: the request line is
            // written redacted (http/redact.rs).
            .wrap(
                actix_web::middleware::Logger::new("%a \"%{request}xi\" %s %b %Dms")
                    .custom_request_replace("request", http::redact::request_line),
            )
            .configure(|cfg| http::configure(cfg, body_limits))
    })
    .workers(config.workers)
    // Slow clients are cut off: the head within header_timeout (408), the body within
    // body_timeout (http/limits.rs), idle kept-alive connections after keep_alive.
    .client_request_timeout(abuse.header_timeout)
    .client_disconnect_timeout(abuse.disconnect_timeout)
    .keep_alive(if abuse.keep_alive.is_zero() {
        actix_web::http::KeepAlive::Disabled
    } else {
        actix_web::http::KeepAlive::Timeout(abuse.keep_alive)
    })
    .max_connections(abuse.max_connections)
    // Before any bind: actix only takes the callback for listeners bound after it.
    .on_connect(http::limits::watch_connection(&abuse));
    let (server, scheme) = if config.plain_http {
        (server.bind(config.listen)?, "http")
    } else {
        let https = crate::tls::https(&config, server_tls_ca.clone())?;
        if let Some(renewer) = https.renewer {
            renewer.spawn();
        }
        (server.bind_openssl(config.listen, https.acceptor)?, "https")
    };
    for addr in server.addrs() {
        // Tests and scripts read this line to learn the port when --listen used :0.
        println!("mdm listening on {scheme}://{addr}");
    }
    std::io::stdout().flush().ok();
    tracing::info!(public_url = %config.public_url, database = %redact_url(&config.database_url), "server started");
    server.run().await?;
    // The device times noted since the last flush (services/apple/last_seen.rs).
    last_seen.flush().await;
    Ok(())
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}
