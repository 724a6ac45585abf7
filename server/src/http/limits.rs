//! Abuse limits on the endpoints that answer anyone: how often one device identity or
//! one network address may call the MDM endpoints, how often one address may call
//! the enrollment URL and SCEP, how many wrong enrollment tokens and SCEP challenges
//! one address may try, how many failed admin authentications one address may make
//! (the admin API's extractor asks, http/api/auth.rs), and how long a client may take
//! to send a request body.
//!
//! Why: a QR code on an office wall is an invitation to the internet, and every device
//! request costs a CMS verification and database work. A flood from one address or one
//! enrolled identity must not take the server away from everyone else, a guess at a
//! token must cost the guesser (never the device holding the right token elsewhere),
//! and a client that sends a byte now and then must not hold a connection for ever.
//! Over a limit the answer is 429 with `Retry-After`, decided before the body is read
//! and before anything is written.
//!
//! Counting uses `governor`'s keyed GCRA limiters (lock-free per key, exact wait times
//! for `Retry-After`). Memory stays bounded: a key whose state is back to "fresh" is
//! indistinguishable from an absent key, so the periodic sweep drops it without
//! changing any decision; what is left are keys seen within their last limit window.
//! IPv6 clients are counted per /64, the block one subscriber usually gets, so rotating
//! addresses inside it buys nothing.
//!
//! Slow clients: actix bounds the head of a connection's first request only, and has no
//! body timeout. The body gets a deadline here ([`DeadlinePayload`]); every connection
//! gets a watchdog ([`watch_connection`]) that closes it once it has been without a
//! request in progress for longer than keep-alive plus the head timeout, which is what
//! a client trickling the head of a later request on a kept-alive connection looks like.

use super::apple::{CHECKIN_PATH, SERVER_PATH};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::Extensions;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use futures::Stream;
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The limits and timeouts, as configured (`mdm serve --help`, docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseSettings {
    /// Requests per minute one device identity may send to the MDM endpoints
    /// (burst of as many); 0 turns the limit off.
    pub device_per_identity: u32,
    /// Requests per minute one address may send to the MDM endpoints; 0 = off.
    pub device_per_address: u32,
    /// Requests per minute one address may send to the enrollment URL and SCEP; 0 = off.
    pub enroll_per_address: u32,
    /// Wrong enrollment tokens or SCEP challenges one address may try per
    /// `enroll_failure_window` before it is refused; 0 = off.
    pub enroll_max_failures: u32,
    pub enroll_failure_window: Duration,
    /// Failed admin API authentications one address may make per
    /// `admin_failure_window` before its admin API calls get 429; 0 = off.
    pub admin_max_failures: u32,
    pub admin_failure_window: Duration,
    /// Count the address a trusted proxy put last into `X-Forwarded-For`, not the TCP peer.
    pub trust_forwarded_for: bool,
    /// From connection to the complete request head.
    pub header_timeout: Duration,
    /// From the complete head to the complete body.
    pub body_timeout: Duration,
    /// Idle time of a kept-alive connection; zero turns keep-alive off.
    pub keep_alive: Duration,
    /// Time a closing connection gets to shut down (TLS close-notify).
    pub disconnect_timeout: Duration,
    /// Open connections per worker thread; past it new ones wait in the accept queue.
    pub max_connections: usize,
}

impl Default for AbuseSettings {
    /// Well above what real devices do: a device drains its queue in bursts of a few
    /// dozen requests; a whole office may sit behind one NAT address (a fan-out to
    /// thousands of devices answered from one address within a minute or two); a device
    /// enrolls with four or five requests.
    fn default() -> Self {
        AbuseSettings {
            device_per_identity: 300,
            device_per_address: 30_000,
            enroll_per_address: 300,
            enroll_max_failures: 20,
            enroll_failure_window: Duration::from_secs(600),
            admin_max_failures: 10,
            admin_failure_window: Duration::from_secs(600),
            trust_forwarded_for: false,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(30),
            disconnect_timeout: Duration::from_secs(5),
            max_connections: 10_000,
        }
    }
}

/// Put into a response's extensions by the handler that looked up an enrollment token
/// or a SCEP challenge and found none: the middleware counts it against the address.
#[derive(Debug, Clone, Copy)]
pub struct FailedGuess;

/// Marks `response` as a failed token or challenge lookup.
pub fn failed_guess(mut response: HttpResponse) -> HttpResponse {
    response.extensions_mut().insert(FailedGuess);
    response
}

/// Sweep at least this often, and at most once a second while many keys are tracked.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
const SWEEP_EAGERLY_ABOVE: usize = 100_000;

type GuessLimiter = RateLimiter<
    IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<IpAddr>,
    governor::clock::DefaultClock,
    StateInformationMiddleware,
>;

/// The counters, shared by all workers (registered as `web::Data<Limits>`).
pub struct Limits {
    settings: AbuseSettings,
    per_identity: Option<DefaultKeyedRateLimiter<String>>,
    device_per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    enroll_per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    guesses: Option<GuessLimiter>,
    /// Addresses refused on the enrollment endpoints until the given time.
    locked_out: Mutex<HashMap<IpAddr, Instant>>,
    /// Failed admin authentications, and the addresses refused on the admin API.
    admin_failures: Option<GuessLimiter>,
    admin_locked_out: Mutex<HashMap<IpAddr, Instant>>,
    last_sweep: Mutex<Instant>,
}

fn per_minute(n: u32) -> Option<Quota> {
    NonZeroU32::new(n).map(Quota::per_minute)
}

/// Which limits a path falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Area {
    Device,
    Enrollment,
    Other,
}

fn area(path: &str) -> Area {
    if path == CHECKIN_PATH || path == SERVER_PATH {
        Area::Device
    } else if path == "/scep"
        || path == "/enroll"
        || path.starts_with("/enroll/")
        || path.starts_with("/lost/")
    {
        Area::Enrollment
    } else {
        Area::Other
    }
}

/// The key an address is counted under: IPv4 as is (also when mapped into IPv6),
/// IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// The last address in the last `X-Forwarded-For` header: the one the trusted proxy
/// itself appended (anything before it the client could have written).
fn forwarded_for(req: &HttpRequest) -> Option<IpAddr> {
    let value = req.headers().get_all("X-Forwarded-For").last()?;
    let last = value.to_str().ok()?.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// Seconds for `Retry-After`: rounded up, at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The 429: plain text on the enrollment URL (a person reads it on a setup screen),
/// `{"error": ...}` elsewhere like every other API error.
fn too_many(path: &str, wait: Duration, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(StatusCode::TOO_MANY_REQUESTS);
    response.insert_header(("Retry-After", retry_after_secs(wait).to_string()));
    if path.starts_with("/enroll") {
        response
            .content_type("text/plain; charset=utf-8")
            .body(format!("{message}\n"))
    } else {
        response.json(serde_json::json!({ "error": message }))
    }
}

/// A limiter of `n` failures per `window`, refilled evenly: after using them up an
/// address gets one more try each window/n.
fn failure_limiter(n: u32, window: Duration) -> Option<GuessLimiter> {
    NonZeroU32::new(n).and_then(|n| {
        Quota::with_period(window / n.get())
            .map(|q| RateLimiter::dashmap(q.allow_burst(n)).with_middleware())
    })
}

/// Counts a failure of `ip` in `limiter`; the one that uses up the address's
/// allowance locks it out (in `locked_out`) until the next try is due. Returns the
/// lockout it started, if any.
fn record_failure(
    limiter: &Option<GuessLimiter>,
    locked_out: &Mutex<HashMap<IpAddr, Instant>>,
    ip: IpAddr,
) -> Option<Duration> {
    let limiter = limiter.as_ref()?;
    let lock_for = match limiter.check_key(&ip) {
        Ok(state) if state.remaining_burst_capacity() == 0 => state.quota().replenish_interval(),
        Ok(_) => return None,
        // Requests already in flight when the lockout began.
        Err(not_until) => not_until.wait_time_from(limiter.clock().now()),
    };
    locked_out
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(ip, Instant::now() + lock_for);
    Some(lock_for)
}

/// How much longer `ip` is locked out, if it is.
fn remaining_lockout(locked_out: &Mutex<HashMap<IpAddr, Instant>>, ip: IpAddr) -> Option<Duration> {
    let locked = locked_out.lock().unwrap_or_else(|p| p.into_inner());
    let until = *locked.get(&ip)?;
    until.checked_duration_since(Instant::now())
}

impl Limits {
    pub fn new(settings: AbuseSettings) -> Self {
        let guesses = failure_limiter(settings.enroll_max_failures, settings.enroll_failure_window);
        let admin_failures =
            failure_limiter(settings.admin_max_failures, settings.admin_failure_window);
        Limits {
            admin_failures,
            admin_locked_out: Mutex::new(HashMap::new()),
            per_identity: per_minute(settings.device_per_identity).map(RateLimiter::dashmap),
            device_per_address: per_minute(settings.device_per_address).map(RateLimiter::dashmap),
            enroll_per_address: per_minute(settings.enroll_per_address).map(RateLimiter::dashmap),
            guesses,
            settings,
            locked_out: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    pub fn settings(&self) -> &AbuseSettings {
        &self.settings
    }

    /// The address a request is counted under.
    fn client(&self, req: &HttpRequest) -> Option<IpAddr> {
        let forwarded = self
            .settings
            .trust_forwarded_for
            .then(|| forwarded_for(req))
            .flatten();
        forwarded
            .or_else(|| req.peer_addr().map(|a| a.ip()))
            .map(address_key)
    }

    /// `Err(wait)` when `key` is over `limiter`'s quota.
    fn check<K: std::hash::Hash + Eq + Clone>(
        limiter: &Option<DefaultKeyedRateLimiter<K>>,
        key: &K,
    ) -> Result<(), Duration> {
        match limiter {
            Some(l) => l
                .check_key(key)
                .map_err(|not_until| not_until.wait_time_from(l.clock().now())),
            None => Ok(()),
        }
    }

    /// Refusal of an enrollment request from an address that guessed too often.
    fn lockout(&self, ip: IpAddr) -> Option<Duration> {
        remaining_lockout(&self.locked_out, ip)
    }

    /// Counts a failed token or challenge lookup; the one that uses up the address's
    /// allowance locks it out until the next try is due.
    fn record_failed_guess(&self, ip: IpAddr) {
        if let Some(lock_for) = record_failure(&self.guesses, &self.locked_out, ip) {
            tracing::warn!(
                peer = %ip,
                seconds = lock_for.as_secs(),
                "too many wrong enrollment tokens or SCEP challenges from one address: refusing its enrollment requests for now"
            );
        }
    }

    /// The 429 for an admin API call from an address locked out after failed
    /// authentications: checked before the token is, so a locked-out address learns
    /// nothing about the tokens it tries. Other addresses are not affected.
    pub fn admin_lockout(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let ip = self.client(req)?;
        let wait = remaining_lockout(&self.admin_locked_out, ip)?;
        Some(too_many(
            req.path(),
            wait,
            "too many failed authentications from this address; try again later",
        ))
    }

    /// Counts a failed admin authentication of the request's address.
    pub fn record_admin_failure(&self, req: &HttpRequest) {
        let Some(ip) = self.client(req) else { return };
        if let Some(lock_for) = record_failure(&self.admin_failures, &self.admin_locked_out, ip) {
            tracing::warn!(
                peer = %ip,
                seconds = lock_for.as_secs(),
                "too many failed admin authentications from one address: refusing its admin API calls for now"
            );
        }
    }

    fn tracked_keys(&self) -> usize {
        self.per_identity.as_ref().map_or(0, |l| l.len())
            + self.device_per_address.as_ref().map_or(0, |l| l.len())
            + self.enroll_per_address.as_ref().map_or(0, |l| l.len())
            + self.guesses.as_ref().map_or(0, |l| l.len())
            + self.admin_failures.as_ref().map_or(0, |l| l.len())
    }

    /// Drops keys whose state is back to fresh, and expired lockouts. Runs inline on
    /// whichever request finds it due (one at a time; others do not wait for it).
    fn sweep_if_due(&self) {
        let Ok(mut last) = self.last_sweep.try_lock() else {
            return;
        };
        let now = Instant::now();
        let since = now.duration_since(*last);
        let due = since >= SWEEP_INTERVAL
            || (since >= Duration::from_secs(1) && self.tracked_keys() > SWEEP_EAGERLY_ABOVE);
        if !due {
            return;
        }
        *last = now;
        fn sweep<K: std::hash::Hash + Eq + Clone, M>(
            limiter: &Option<
                RateLimiter<
                    K,
                    governor::state::keyed::DefaultKeyedStateStore<K>,
                    governor::clock::DefaultClock,
                    M,
                >,
            >,
        ) where
            M: governor::middleware::RateLimitingMiddleware<Instant>,
        {
            if let Some(l) = limiter {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        sweep(&self.per_identity);
        sweep(&self.device_per_address);
        sweep(&self.enroll_per_address);
        sweep(&self.guesses);
        sweep(&self.admin_failures);
        for locked_out in [&self.locked_out, &self.admin_locked_out] {
            let mut locked = locked_out.lock().unwrap_or_else(|p| p.into_inner());
            locked.retain(|_, until| *until > now);
            locked.shrink_to_fit();
        }
    }
}

/// One connection as its watchdog sees it: requests in progress, and since when none is.
/// Put into the connection's data by [`watch_connection`]; the middleware counts
/// requests on it. Dropped with the connection, which ends the watchdog at once.
struct ConnectionState {
    in_flight: Cell<u32>,
    idle_since: Cell<Instant>,
    _closed: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct ConnectionWatch(Rc<ConnectionState>);

/// A request in progress on a watched connection, for as long as it is alive.
struct Busy(Rc<ConnectionState>);

impl Busy {
    fn start(watch: &ConnectionWatch) -> Busy {
        watch.0.in_flight.set(watch.0.in_flight.get() + 1);
        Busy(watch.0.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0
            .in_flight
            .set(self.0.in_flight.get().saturating_sub(1));
        self.0.idle_since.set(Instant::now());
    }
}

/// The `HttpServer::on_connect` callback: a watchdog per connection (see the module
/// comment). It holds its own handle on the socket (a duplicate, dropped as soon as
/// the connection is) so that it can shut the socket down under the dispatcher, which
/// then sees the end of the stream and lets the connection go.
pub fn watch_connection(
    settings: &AbuseSettings,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    let idle_limit = settings.keep_alive + settings.header_timeout;
    move |conn, data| {
        use actix_web::rt::net::TcpStream;
        let tcp = conn.downcast_ref::<TcpStream>().or_else(|| {
            conn.downcast_ref::<actix_tls::accept::openssl::TlsStream<TcpStream>>()
                .map(|tls| tls.get_ref())
        });
        let Some(socket) = tcp.and_then(|t| socket2::SockRef::from(t).try_clone().ok()) else {
            return;
        };
        let peer = tcp.and_then(|t| t.peer_addr().ok());
        let (closed_tx, mut closed) = tokio::sync::oneshot::channel::<()>();
        let state = Rc::new(ConnectionState {
            in_flight: Cell::new(0),
            idle_since: Cell::new(Instant::now()),
            _closed: closed_tx,
        });
        let weak = Rc::downgrade(&state);
        data.insert(ConnectionWatch(state));
        actix_web::rt::spawn(async move {
            loop {
                let deadline = match weak.upgrade() {
                    None => return,
                    Some(state) if state.in_flight.get() > 0 => Instant::now() + idle_limit,
                    Some(state) => {
                        let deadline = state.idle_since.get() + idle_limit;
                        if deadline <= Instant::now() {
                            tracing::warn!(peer = ?peer, "connection without a complete request for too long (slow client); closed");
                            let _ = socket.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        deadline
                    }
                };
                tokio::select! {
                    // The connection is gone: drop the duplicate handle now.
                    _ = &mut closed => return,
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
        });
    }
}

/// The per-identity limit, checked by the MDM endpoints once the request's signature
/// is verified (only then is the identity known). `Some` is the 429 to answer.
pub fn throttle_identity(req: &HttpRequest, fingerprint: &str) -> Option<HttpResponse> {
    let limits = req.app_data::<web::Data<Limits>>()?;
    let wait = Limits::check(&limits.per_identity, &fingerprint.to_owned()).err()?;
    tracing::debug!(
        fingerprint,
        path = req.path(),
        "device identity over its rate limit"
    );
    Some(too_many(
        req.path(),
        wait,
        "too many requests from this device; try again later",
    ))
}

/// The middleware (`middleware::from_fn(guard)`): per-address limits and the guessing
/// lockout before the handler, the body deadline around it, failed guesses after it.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let watch = req.request().conn_data::<ConnectionWatch>().cloned();
    let _busy = watch.as_ref().map(Busy::start);
    let Some(limits) = req.app_data::<web::Data<Limits>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    limits.sweep_if_due();
    let area = area(req.path());
    let client = limits.client(req.request());
    if let (Some(ip), Area::Device | Area::Enrollment) = (client, area) {
        let refusal = if area == Area::Device {
            Limits::check(&limits.device_per_address, &ip)
                .err()
                .map(|wait| (wait, "too many requests from this address; try again later"))
        } else if let Some(wait) = limits.lockout(ip) {
            Some((
                wait,
                "too many invalid enrollment links or challenges from this address; try again later",
            ))
        } else {
            Limits::check(&limits.enroll_per_address, &ip)
                .err()
                .map(|wait| {
                    (
                        wait,
                        "too many enrollment requests from this address; try again later",
                    )
                })
        };
        if let Some((wait, message)) = refusal {
            tracing::debug!(peer = %ip, path = %super::redact::redact_target(req.path()), "address over its rate limit");
            let response = too_many(req.path(), wait, message);
            return Ok(req.into_response(response));
        }
    }

    let timed_out = Rc::new(Cell::new(false));
    let payload = req.take_payload();
    let deadline: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
        Box::pin(DeadlinePayload {
            inner: payload,
            deadline: Box::pin(tokio::time::sleep(limits.settings.body_timeout)),
            timed_out: timed_out.clone(),
        });
    req.set_payload(Payload::from(deadline));

    let response = next.call(req).await?;
    if timed_out.get() {
        tracing::warn!(peer = ?client, "request body not received in time; connection closed");
        let (req, _) = response.into_parts();
        // Closing is the point: the slow client loses the connection it was holding.
        let response = HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
            .force_close()
            .json(serde_json::json!({ "error": "request body not received in time" }));
        return Ok(ServiceResponse::new(req, response));
    }
    if let (Some(ip), Area::Enrollment) = (client, area) {
        if response.response().extensions().contains::<FailedGuess>() {
            limits.record_failed_guess(ip);
        }
    }
    Ok(response.map_into_boxed_body())
}

/// The request body, cut off with an error once the deadline has passed: actix bounds
/// the time to the request head, not the time to the body.
struct DeadlinePayload {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Rc<Cell<bool>>,
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timed_out.set(true);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body not received in time",
            )))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn paths_fall_under_their_limits() {
        assert_eq!(area("/mdm/checkin"), Area::Device);
        assert_eq!(area("/mdm/connect"), Area::Device);
        assert_eq!(area("/enroll/abc"), Area::Enrollment);
        assert_eq!(area("/scep"), Area::Enrollment);
        assert_eq!(area("/lost/abc"), Area::Enrollment);
        assert_eq!(area("/api/v1/devices"), Area::Other);
        assert_eq!(area("/healthz"), Area::Other);
    }

    #[test]
    fn swept_keys_are_the_fresh_ones() {
        let limits = Limits::new(AbuseSettings {
            enroll_per_address: 2,
            ..AbuseSettings::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(Limits::check(&limits.enroll_per_address, &ip).is_ok());
        assert!(Limits::check(&limits.enroll_per_address, &ip).is_ok());
        let wait = Limits::check(&limits.enroll_per_address, &ip).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        // A key still limited survives a sweep: sweeping never resets a limit.
        *limits.last_sweep.lock().unwrap() = Instant::now() - SWEEP_INTERVAL;
        limits.sweep_if_due();
        assert_eq!(limits.enroll_per_address.as_ref().unwrap().len(), 1);
        assert!(Limits::check(&limits.enroll_per_address, &ip).is_err());
    }

    #[test]
    fn the_failure_that_uses_up_the_allowance_locks_the_address_out() {
        let limits = Limits::new(AbuseSettings {
            enroll_max_failures: 3,
            enroll_failure_window: Duration::from_secs(300),
            ..AbuseSettings::default()
        });
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        limits.record_failed_guess(ip);
        limits.record_failed_guess(ip);
        assert!(limits.lockout(ip).is_none());
        limits.record_failed_guess(ip);
        let wait = limits.lockout(ip).expect("locked out after 3 failures");
        assert!(wait <= Duration::from_secs(100), "{wait:?}");
        assert!(limits.lockout(other).is_none());
    }

    #[test]
    fn rotating_addresses_leaves_nothing_behind_once_their_window_is_over() {
        // 60,000 a minute: a key is back to fresh 1 ms after its one request.
        let limits = Limits::new(AbuseSettings {
            enroll_per_address: 60_000,
            ..AbuseSettings::default()
        });
        let limiter = limits.enroll_per_address.as_ref().unwrap();
        for i in 0..5_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(Limits::check(&limits.enroll_per_address, &ip).is_ok());
        }
        assert_eq!(limiter.len(), 5_000);
        std::thread::sleep(Duration::from_millis(20));
        *limits.last_sweep.lock().unwrap() = Instant::now() - SWEEP_INTERVAL;
        limits.sweep_if_due();
        assert_eq!(limiter.len(), 0, "fresh keys are dropped by the sweep");
    }

    #[test]
    fn admin_failures_lock_out_only_their_address() {
        let limits = Limits::new(AbuseSettings {
            admin_max_failures: 2,
            ..AbuseSettings::default()
        });
        let ip: IpAddr = "192.0.2.20".parse().unwrap();
        let other: IpAddr = "192.0.2.21".parse().unwrap();
        assert!(record_failure(&limits.admin_failures, &limits.admin_locked_out, ip).is_none());
        let lock = record_failure(&limits.admin_failures, &limits.admin_locked_out, ip)
            .expect("locked out after 2 failures");
        assert!(
            lock > Duration::ZERO && lock <= Duration::from_secs(300),
            "{lock:?}"
        );
        assert!(remaining_lockout(&limits.admin_locked_out, ip).is_some());
        assert!(remaining_lockout(&limits.admin_locked_out, other).is_none());
        // The enrollment lockout is a separate matter.
        assert!(limits.lockout(ip).is_none());
    }
}
