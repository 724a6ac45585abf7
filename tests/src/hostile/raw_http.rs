//! HTTP/1.1 written by hand over a loopback TCP connection, for request targets that
//! a URL library would normalise or refuse before sending (`..` segments, raw
//! control bytes, invalid percent escapes, request lines of 100 kB).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `GET <target>` (bytes as given) to `base_url` (http://host:port) and returns
/// the status code, or why there was none.
pub async fn get(base_url: &str, target: &[u8], headers: &[(&str, &str)]) -> Result<u16, String> {
    let authority = base_url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{base_url} is not plain http"))?
        .trim_end_matches('/');
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    request.extend_from_slice(authority.as_bytes());
    request.extend_from_slice(b"\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    // The server may answer (and close) before it has read a long request; the
    // answer is still there to read, so a failed write is not yet an error.
    let write = stream.write_all(&request).await;
    let mut reply = Vec::new();
    let read = stream.read_to_end(&mut reply).await;
    let head = String::from_utf8_lossy(&reply[..reply.len().min(64)]).into_owned();
    match head
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
    {
        Some(code) => Ok(code),
        None => Err(format!(
            "no HTTP answer (write: {write:?}, read: {read:?}, got {head:?})"
        )),
    }
}
