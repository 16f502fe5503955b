//! The little HTTP/1.1 the dashboard speaks: one request per connection
//! (`Connection: close`), a head read within a size and a time bound and
//! parsed by `httparse`, no request bodies (the controls carry everything in
//! their path), and responses with a known length or an event stream.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most a request head may be; a browser's is well under 8 KiB.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// A client has this long to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A client has this long to take each write: one that stopped reading (a
/// wedged page, or a client holding connections on purpose) is dropped
/// instead of holding one of the dashboard's connections for ever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("no request within {HEAD_TIMEOUT:?}")]
    Timeout,
    #[error("connection closed before the request ended")]
    Closed,
    #[error("malformed request: {0}")]
    Malformed(#[from] httparse::Error),
    #[error("request bodies are not accepted")]
    Body,
    #[error("the client took nothing for {0:?}")]
    Stalled(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A request head, with the path split from its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl Request {
    /// A header's value (names compared without case); `None` when absent
    /// or given more than once (an ambiguity this server does not guess at).
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name));
        let first = values.next()?;
        match values.next() {
            Some(_) => None,
            None => Some(first.1.as_str()),
        }
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Parses one complete head (ending with an empty line).
    pub fn parse(head: &[u8]) -> Result<Option<Request>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        if request.parse(head)?.is_partial() {
            return Ok(None);
        }
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|header| {
                (
                    header.name.to_string(),
                    String::from_utf8_lossy(header.value).into_owned(),
                )
            })
            .collect();
        let has_body = headers.iter().any(|(name, value)| {
            (name.eq_ignore_ascii_case("content-length") && value.trim() != "0")
                || name.eq_ignore_ascii_case("transfer-encoding")
        });
        if has_body {
            return Err(HttpError::Body);
        }
        let target = request.path.unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Ok(Some(Request {
            method: request.method.unwrap_or("GET").to_string(),
            path: percent_decode(path),
            query: parse_query(query),
            headers,
        }))
    }

    /// Reads the request head from `stream`, within [`MAX_HEAD`] and
    /// [`HEAD_TIMEOUT`].
    pub async fn read(stream: &mut TcpStream) -> Result<Request, HttpError> {
        let read = async {
            let mut head = Vec::with_capacity(1024);
            let mut buffer = [0u8; 2048];
            loop {
                let count = stream.read(&mut buffer).await?;
                if count == 0 {
                    return Err(HttpError::Closed);
                }
                head.extend_from_slice(&buffer[..count]);
                if head.len() > MAX_HEAD {
                    return Err(HttpError::TooLarge);
                }
                if let Some(request) = Request::parse(&head)? {
                    return Ok(request);
                }
            }
        };
        tokio::time::timeout(HEAD_TIMEOUT, read)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&key.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

/// `%41` → `A`; malformed escapes are kept as they are.
fn percent_decode(text: &str) -> String {
    let hex = |byte: u8| (byte as char).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A whole response, sent with its length and `Connection: close`.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn json(value: &impl serde::Serialize) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200, "application/json", body),
            Err(error) => Response::text(500, &format!("cannot encode the answer: {error}")),
        }
    }

    pub fn text(status: u16, text: &str) -> Response {
        let mut body = text.to_string();
        body.push('\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub async fn send(&self, stream: &mut TcpStream) -> Result<(), HttpError> {
        let mut out = head(self.status, &self.headers);
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
        write_within(stream, &out, WRITE_TIMEOUT).await
    }
}

/// Writes all of `bytes`, or fails when the client has taken nothing for
/// `limit` (each write that makes progress starts the time again).
pub async fn write_within(
    stream: &mut TcpStream,
    mut bytes: &[u8],
    limit: Duration,
) -> Result<(), HttpError> {
    while !bytes.is_empty() {
        let written = tokio::time::timeout(limit, stream.write(bytes))
            .await
            .map_err(|_| HttpError::Stalled(limit))??;
        if written == 0 {
            return Err(HttpError::Closed);
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

/// The head of an event stream (the body follows as events are sent).
pub fn event_stream_head() -> Vec<u8> {
    let mut out = head(
        200,
        &[
            ("Content-Type", "text/event-stream".to_string()),
            ("X-Accel-Buffering", "no".to_string()),
        ],
    );
    out.extend_from_slice(b"\r\n");
    out
}

fn head(status: u16, headers: &[(&'static str, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status)).into_bytes();
    let fixed = [
        ("Connection", "close"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in fixed {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    for (name, value) in headers {
        // Values are ours, but never let one end the head early.
        let value: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        421 => "Misdirected Request",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_parses_once_complete() {
        assert_eq!(
            Request::parse(b"GET /api/logs?service=w%65b&lines=5 HTTP/1.1\r\nHost: x\r\n").unwrap(),
            None
        );
        let request = Request::parse(b"GET /api/logs?service=w%65b&lines=5 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nhost: again\r\nOrigin: o\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/api/logs");
        assert_eq!(request.query("service"), Some("web"));
        assert_eq!(request.query("lines"), Some("5"));
        // Twice is ambiguous: treated as absent.
        assert_eq!(request.header("HOST"), None);
        assert_eq!(request.header("origin"), Some("o"));
    }

    #[test]
    fn bodies_and_garbage_are_refused() {
        assert!(matches!(
            Request::parse(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Err(HttpError::Body)
        ));
        assert!(matches!(
            Request::parse(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(HttpError::Body)
        ));
        assert!(Request::parse(b"\x00\x01 nonsense\r\n\r\n").is_err());
    }

    #[test]
    fn percent_decoding_keeps_what_it_cannot_decode() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%é%41"), "%éA");
        assert_eq!(
            parse_query("a=1+2&b&=c"),
            [
                ("a".into(), "1 2".into()),
                ("b".into(), "".into()),
                ("".into(), "c".into())
            ]
        );
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_let_go() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // Connected, and never read from.
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // More than the kernel's buffers on both sides can hold.
        let bytes = vec![b'x'; 64 << 20];
        let started = std::time::Instant::now();
        let result = write_within(&mut server, &bytes, Duration::from_millis(300)).await;
        assert!(matches!(result, Err(HttpError::Stalled(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        // A reading client gets everything, however long it takes.
        let (mut reader, mut writer) = tokio::io::duplex(1024);
        let read = tokio::spawn(async move {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).await.unwrap();
            all.len()
        });
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let copy = tokio::spawn(async move {
            tokio::io::copy(&mut client, &mut writer).await.unwrap();
        });
        let chunk = vec![b'y'; 8 << 20];
        write_within(&mut server, &chunk, Duration::from_millis(300))
            .await
            .unwrap();
        drop(server);
        copy.await.unwrap();
        assert_eq!(read.await.unwrap(), 8 << 20);
    }

    #[test]
    fn header_values_cannot_end_the_head() {
        let out = head(200, &[("Location", "/a\r\nSet-Cookie: evil".to_string())]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Location: /aSet-Cookie: evil\r\n"), "{text}");
    }
}
