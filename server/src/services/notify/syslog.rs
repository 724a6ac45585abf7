//! Syslog receivers: RFC 5424 messages over UDP (RFC 5426, one per datagram), TCP
//! (RFC 6587) or TLS (RFC 5425), octet-counted on a fresh connection.

use super::Transport;
use std::io::Write;
use std::time::Duration;

/// An RFC 5424 message for the event (payload = the event's JSON).
pub fn syslog_message(facility: u8, hostname: &str, event_id: i64, payload: &str) -> Vec<u8> {
    let event: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let severity = event["severity"].as_i64().unwrap_or(0);
    // Our 0-5 onto syslog's 7 (debug) .. 0 (emergency).
    let syslog_severity = match severity {
        0 => 6,
        1 => 5,
        2 => 4,
        3 => 3,
        4 => 2,
        _ => 1,
    };
    let printable = |s: &str, max: usize| -> String {
        let cleaned: String = s
            .chars()
            .filter(|c| ('!'..='~').contains(c))
            .take(max)
            .collect();
        if cleaned.is_empty() {
            "-".into()
        } else {
            cleaned
        }
    };
    // SD-PARAM values escape '"', '\' and ']' (RFC 5424 §6.3.3).
    let sd_value = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    let timestamp = event["occurred_at"].as_str().unwrap_or("-");
    let kind = event["kind"].as_str().unwrap_or("-");
    let device = event["device_id"].as_str().unwrap_or("");
    let mut out = format!(
        "<{pri}>1 {timestamp} {host} mdm - {msgid} [mdm@32473 event_id=\"{event_id}\" kind=\"{kind}\" severity=\"{severity}\" device=\"{device}\"] ",
        pri = u32::from(facility) * 8 + syslog_severity,
        host = printable(hostname, 255),
        msgid = printable(kind, 32),
        kind = sd_value(kind),
        device = sd_value(device),
    )
    .into_bytes();
    // MSG in UTF-8, marked with the BOM as RFC 5424 §6.4 asks.
    out.extend_from_slice("\u{feff}".as_bytes());
    out.extend_from_slice(payload.as_bytes());
    out
}

/// One syslog message: a datagram, or octet-counted on a fresh TCP/TLS connection.
pub(super) fn send_syslog(
    transport: Transport,
    host: &str,
    port: u16,
    tls: Option<openssl::ssl::SslConnector>,
    message: &[u8],
) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))?;
    let timeout = Duration::from_secs(10);
    match transport {
        Transport::Udp => {
            let bind = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let socket = std::net::UdpSocket::bind(bind).map_err(|e| e.to_string())?;
            // RFC 5426: one message per datagram; keep under a safe size.
            let max = 8192.min(message.len());
            socket
                .send_to(&message[..max], addr)
                .map_err(|e| format!("{addr}: {e}"))?;
            Ok(())
        }
        Transport::Tcp | Transport::Tls => {
            let tcp = std::net::TcpStream::connect_timeout(&addr, timeout)
                .map_err(|e| format!("{addr}: {e}"))?;
            tcp.set_write_timeout(Some(timeout))
                .map_err(|e| e.to_string())?;
            let framed = [format!("{} ", message.len()).into_bytes(), message.to_vec()].concat();
            match tls {
                None => {
                    let mut tcp = tcp;
                    tcp.write_all(&framed).map_err(|e| format!("{addr}: {e}"))?;
                    tcp.flush().map_err(|e| e.to_string())
                }
                Some(connector) => {
                    let mut stream = connector
                        .connect(host, tcp)
                        .map_err(|e| format!("{addr}: TLS: {e}"))?;
                    stream
                        .write_all(&framed)
                        .map_err(|e| format!("{addr}: {e}"))?;
                    stream.flush().map_err(|e| e.to_string())?;
                    let _ = stream.shutdown();
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_message_is_rfc5424() {
        let payload = r#"{"id":7,"occurred_at":"2026-12-01T10:00:00Z","kind":"security.identity_mismatch","severity":2,"device_id":"d\"1]","message":"m"}"#;
        let m = String::from_utf8(syslog_message(13, "host", 7, payload)).unwrap();
        assert!(m.starts_with("<108>1 2026-12-01T10:00:00Z host mdm - security.identity_mismatch [mdm@32473 event_id=\"7\""), "{m}");
        assert!(m.contains("device=\"d\\\"1\\]\""), "{m}");
        assert!(m.contains("\u{feff}{"));
    }
}
