//! Who may use the dashboard: the person who started the supervisor, and
//! nobody else on the machine or on the web.
//!
//! - A random token per supervisor, in the URL locald prints (`/?token=…`).
//!   The page keeps it in its origin's storage (which, unlike cookies, is
//!   per port) and sends it with every API request as
//!   `Authorization: Bearer`, and to the event stream as `?token=` (an
//!   `EventSource` cannot set headers). No cookie: a browser sends the
//!   cookies of 127.0.0.1 to every port of 127.0.0.1, so a cookie would
//!   hand the token to any local server the person opens (a service, a
//!   container's image, another user's server).
//! - The page and its assets are static and public (nothing in them is
//!   secret); everything under `/api/` needs the token.
//! - Only the user who started the supervisor (and, under `sudo`, the user
//!   who ran it) may even talk to it: the client's end of each loopback
//!   connection is looked up in `/proc/net/tcp`, which names its owner, and
//!   another user's connection is answered 403 at once, before its request
//!   is read. So another local user can neither use a token it learnt nor
//!   hold the dashboard's connection slots with requests that never end.
//! - `Host` must name the loopback address and our port: a page of another
//!   site that rebinds its DNS name to 127.0.0.1 is refused.
//! - A request carrying `Origin` must come from the dashboard itself. Another
//!   site's page cannot add the `Authorization` header without a CORS
//!   preflight, which this server refuses, so it cannot press a button.

use std::io::Read;
use std::net::{SocketAddr, SocketAddrV4};

use super::http::Request;

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Refused { status: u16, why: &'static str },
}

/// What anyone may fetch: the page's static files.
const PUBLIC: [&str; 3] = ["/", "/assets/app.js", "/assets/app.css"];

pub struct Guard {
    token: String,
    port: u16,
    /// The users whose connections are served.
    users: Vec<u32>,
}

/// The users a dashboard serves: the supervisor's own, and, when it runs
/// as root under `sudo`, the user who ran `sudo` (whose browser it is).
fn own_users() -> Vec<u32> {
    let uid = nix::unistd::geteuid().as_raw();
    let mut users = vec![uid];
    if uid == 0 {
        if let Some(sudo) = std::env::var("SUDO_UID").ok().and_then(|v| v.parse().ok()) {
            users.push(sudo);
        }
    }
    users
}

impl Guard {
    /// A guard with a fresh random token.
    pub fn new(port: u16) -> std::io::Result<Guard> {
        let mut bytes = [0u8; 24];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(Guard::with_token(port, hex::encode(bytes)))
    }

    pub fn with_token(port: u16, token: String) -> Guard {
        Guard {
            token,
            port,
            users: own_users(),
        }
    }

    /// Whether the connection from `peer` to `local` is one of our users'
    /// (see the module's doc). Unknown owners are refused.
    pub async fn serves(&self, local: SocketAddr, peer: SocketAddr) -> bool {
        let (SocketAddr::V4(local), SocketAddr::V4(peer)) = (local, peer) else {
            return false;
        };
        match tokio::fs::read_to_string("/proc/net/tcp").await {
            Ok(table) => {
                socket_owner(&table, peer, local).is_some_and(|uid| self.users.contains(&uid))
            }
            Err(error) => {
                tracing::warn!(%error, "dashboard: cannot read /proc/net/tcp to check a client");
                false
            }
        }
    }

    /// The address to open: it carries the token.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.port, self.token)
    }

    /// A page that sends the browser on to [`Guard::url`]. `locald
    /// dashboard` opens this page (kept in the private `.locald/`) rather
    /// than the address itself: a browser's command line is readable by
    /// every user of the machine (`ps`), so the token must not be on it.
    pub fn opener_page(&self) -> String {
        let url = self.url();
        format!(
            "<!doctype html>\n<meta charset=\"utf-8\">\n<meta name=\"referrer\" content=\"no-referrer\">\n\
             <meta http-equiv=\"refresh\" content=\"0;url={url}\">\n<title>locald dashboard</title>\n\
             <p><a href=\"{url}\">Open the dashboard</a></p>\n"
        )
    }

    pub fn check(&self, request: &Request) -> Verdict {
        let refused = |status, why| Verdict::Refused { status, why };
        let host_ok = request.header("host").is_some_and(|host| {
            host == format!("127.0.0.1:{}", self.port) || host == format!("localhost:{}", self.port)
        });
        if !host_ok {
            return refused(
                421,
                "this dashboard answers only at 127.0.0.1 and its own port",
            );
        }
        if let Some(origin) = request.header("origin") {
            let ours = origin == format!("http://127.0.0.1:{}", self.port)
                || origin == format!("http://localhost:{}", self.port);
            if !ours {
                return refused(403, "requests from other sites are refused");
            }
        }
        if request.method == "GET" && PUBLIC.contains(&request.path.as_str()) {
            return Verdict::Allowed;
        }
        let bearer = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "));
        // Only the event stream takes it in the query: a URL is more easily
        // shown or kept than a header.
        let query = (request.method == "GET" && request.path == "/api/events")
            .then(|| request.query("token"))
            .flatten();
        if bearer.or(query).is_some_and(|token| self.matches(token)) {
            return Verdict::Allowed;
        }
        refused(
            401,
            "open the address `locald dashboard` prints (it carries this dashboard's token)",
        )
    }

    /// Compared in constant time: how long a refusal takes says nothing of
    /// how much of a guess was right.
    fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), candidate.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

/// The owner (uid) of the TCP socket bound at `socket` and connected to
/// `remote`, in a `/proc/net/tcp` table.
fn socket_owner(table: &str, socket: SocketAddrV4, remote: SocketAddrV4) -> Option<u32> {
    let (socket, remote) = (proc_address(socket), proc_address(remote));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&socket.as_str()) && fields.get(2) == Some(&remote.as_str()) {
            fields.get(7)?.parse().ok()
        } else {
            None
        }
    })
}

/// An address as `/proc/net/tcp` writes it: the address's four bytes as
/// the kernel holds them, read as a native-endian number, in hex; the port
/// in hex.
fn proc_address(address: SocketAddrV4) -> String {
    format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(address.ip().octets()),
        address.port()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> Request {
        let mut head = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        Request::parse(head.as_bytes()).unwrap().unwrap()
    }

    const HOST: (&str, &str) = ("Host", "127.0.0.1:4000");
    const BEARER: (&str, &str) = ("Authorization", "Bearer secret");

    fn guard() -> Guard {
        Guard::with_token(4000, "secret".into())
    }

    fn refused(verdict: Verdict, status: u16) -> bool {
        matches!(verdict, Verdict::Refused { status: s, .. } if s == status)
    }

    #[test]
    fn the_page_is_public_and_the_api_needs_the_token() {
        for path in ["/", "/?token=anything", "/assets/app.js", "/assets/app.css"] {
            assert_eq!(
                guard().check(&request("GET", path, &[HOST])),
                Verdict::Allowed,
                "{path}"
            );
        }
        assert_eq!(
            guard().check(&request("GET", "/api/services", &[HOST, BEARER])),
            Verdict::Allowed
        );
        assert_eq!(
            guard().check(&request("GET", "/api/events?token=secret", &[HOST])),
            Verdict::Allowed
        );
        assert_eq!(
            guard().check(&request(
                "POST",
                "/api/services/web/restart",
                &[HOST, BEARER]
            )),
            Verdict::Allowed
        );
    }

    #[test]
    fn a_connections_owner_is_read_from_proc_net_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let (SocketAddr::V4(from), SocketAddr::V4(to)) =
            (client.local_addr().unwrap(), client.peer_addr().unwrap())
        else {
            panic!("IPv4")
        };
        assert_eq!(
            socket_owner(&table, from, to),
            Some(nix::unistd::geteuid().as_raw())
        );
        let sample = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
             3: 0100007F:A3D2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 5417 1\n";
        let port = |p| SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, p);
        assert_eq!(socket_owner(sample, port(0xA3D2), port(0x1F90)), Some(1001));
        assert_eq!(socket_owner(sample, port(0x1F90), port(0xA3D2)), None);
    }

    #[test]
    fn the_opener_page_sends_the_browser_to_the_address() {
        let page = guard().opener_page();
        assert!(
            page.contains(
                r#"<meta http-equiv="refresh" content="0;url=http://127.0.0.1:4000/?token=secret">"#
            ),
            "{page}"
        );
    }

    #[test]
    fn no_token_a_wrong_one_or_a_cookie_is_refused() {
        for (method, target, headers) in [
            ("GET", "/api/services", vec![HOST]),
            (
                "GET",
                "/api/services",
                vec![HOST, ("Authorization", "Bearer secre")],
            ),
            (
                "GET",
                "/api/services",
                vec![HOST, ("Authorization", "secret")],
            ),
            // The query serves the event stream only.
            ("GET", "/api/services?token=secret", vec![HOST]),
            ("GET", "/api/events?token=guess", vec![HOST]),
            ("POST", "/api/all/stop?token=secret", vec![HOST]),
            // Cookies are not how this dashboard knows you.
            (
                "GET",
                "/api/logs",
                vec![HOST, ("Cookie", "locald_dashboard_4000=secret")],
            ),
            ("GET", "/assets/other.js", vec![HOST]),
            ("POST", "/", vec![HOST]),
        ] {
            let verdict = guard().check(&request(method, target, &headers));
            assert!(refused(verdict, 401), "{method} {target} {headers:?}");
        }
    }

    #[test]
    fn rebound_hosts_and_other_origins_are_refused() {
        for host in ["evil.example:4000", "127.0.0.1:4001", "127.0.0.1"] {
            let verdict = guard().check(&request("GET", "/", &[("Host", host), BEARER]));
            assert!(refused(verdict, 421), "{host}");
        }
        assert!(refused(guard().check(&request("GET", "/", &[BEARER])), 421));
        for origin in ["http://evil.example", "http://127.0.0.1:4001", "null"] {
            let verdict = guard().check(&request(
                "POST",
                "/api/services/web/restart",
                &[HOST, BEARER, ("Origin", origin)],
            ));
            assert!(refused(verdict, 403), "{origin}");
        }
        for origin in ["http://127.0.0.1:4000", "http://localhost:4000"] {
            assert_eq!(
                guard().check(&request(
                    "POST",
                    "/api/all/restart",
                    &[HOST, BEARER, ("Origin", origin)]
                )),
                Verdict::Allowed
            );
        }
    }
}
