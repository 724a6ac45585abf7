//! `GET /api/v1/metrics`: the process's counters (metrics.rs) for admins, as JSON.
//! Read-only; admins only, since the counts tell how the server is being probed.

use super::Admin;
use crate::metrics::METRICS;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(show));
}

async fn show(_admin: Admin) -> HttpResponse {
    HttpResponse::Ok().json(METRICS.snapshot())
}
