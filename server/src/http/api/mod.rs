//! The admin REST API under /api/v1: JSON, bearer tokens, described by openapi.json.

mod auth;
mod commands;
mod devices;
mod enrollments;
mod events;
mod openapi;
mod push;

pub use auth::Admin;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi::document))
        .configure(devices::configure)
        .configure(commands::configure)
        .configure(events::configure)
        .configure(push::configure)
        .configure(enrollments::configure);
}
