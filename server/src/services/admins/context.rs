//! The address an admin API request came from, for the audit trail: set around each
//! `/api/v1` request (http/api/session.rs's middleware) and added by the event log to
//! the data of every event with an actor recorded while the request runs, so that
//! every admin.* event says where its admin was, without each service passing it on.

tokio::task_local! {
    static ADDRESS: Option<String>;
}

/// Runs `f` with `address` as the current request's.
pub async fn with_address<F: std::future::Future>(address: Option<String>, f: F) -> F::Output {
    ADDRESS.scope(address, f).await
}

/// The current admin request's address, if any.
pub fn current_address() -> Option<String> {
    ADDRESS.try_with(|a| a.clone()).ok().flatten()
}

/// `data` with `"address"` added when an admin request is running and the event has
/// none of its own (an object or no data; other data is left as it is).
pub fn annotate(data: serde_json::Value) -> serde_json::Value {
    let Some(address) = current_address() else {
        return data;
    };
    match data {
        serde_json::Value::Null => serde_json::json!({ "address": address }),
        serde_json::Value::Object(mut map) => {
            map.entry("address")
                .or_insert(serde_json::Value::String(address));
            serde_json::Value::Object(map)
        }
        other => other,
    }
}
