//! Who may use the dashboard: the person who started the supervisor, and
//! nobody else on the machine or on the web.
//!
//! - A random token per supervisor, in the URL locald prints (`/?token=…`).
//!   The first visit trades it for a cookie (HttpOnly, SameSite=Strict,
//!   named after the port, since cookies are shared by every port of a host)
//!   and is sent on to `/`, so the token leaves the address bar. Every
//!   request needs the cookie (or the token as a bearer, for tools).
//! - Only the user who started the supervisor (and, under `sudo`, the user
//!   who ran it) may even talk to it: the client's end of each loopback
//!   connection is looked up in `/proc/net/tcp`, which names its owner, and
//!   another user's connection is answered 403 at once, before its request
//!   is read. So another local user can neither try tokens nor hold the
//!   dashboard's connection slots with requests that never end.
//! - `Host` must name the loopback address and our port: a page of another
//!   site that rebinds its DNS name to 127.0.0.1 is refused.
//! - A request carrying `Origin` must come from the dashboard itself, and a
//!   control (`POST`) authorised by the cookie must carry it: another site's
//!   page cannot press a button in the person's browser.

use std::io::Read;
use std::net::{SocketAddr, SocketAddrV4};

use super::http::Request;

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The first visit with the URL's token: set the cookie and go to `/`.
    Welcome {
        cookie: String,
    },
    Refused {
        status: u16,
        why: &'static str,
    },
}

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

    fn cookie_name(&self) -> String {
        format!("locald_dashboard_{}", self.port)
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
        let origin = request.header("origin");
        if let Some(origin) = origin {
            let ours = origin == format!("http://127.0.0.1:{}", self.port)
                || origin == format!("http://localhost:{}", self.port);
            if !ours {
                return refused(403, "requests from other sites are refused");
            }
        }
        let bearer = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| self.matches(token));
        let cookie = request
            .header("cookie")
            .is_some_and(|cookies| self.cookie_matches(cookies));
        if bearer || cookie {
            // A browser sends its cookie with a form another site posts to
            // us; it cannot add the bearer, and its Origin is not ours.
            if request.method == "POST" && !bearer && origin.is_none() {
                return refused(403, "a control needs the dashboard's own Origin");
            }
            return Verdict::Allowed;
        }
        if request.method == "GET" && request.path == "/" {
            if let Some(token) = request.query("token") {
                if self.matches(token) {
                    return Verdict::Welcome {
                        cookie: format!(
                            "{}={}; Path=/; HttpOnly; SameSite=Strict",
                            self.cookie_name(),
                            self.token
                        ),
                    };
                }
            }
        }
        refused(
            401,
            "open the address `locald dashboard` prints (it carries this dashboard's token)",
        )
    }

    fn cookie_matches(&self, cookies: &str) -> bool {
        let name = self.cookie_name();
        cookies.split(';').any(|pair| {
            pair.trim()
                .split_once('=')
                .is_some_and(|(key, value)| key == name && self.matches(value))
        })
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
    const COOKIE: (&str, &str) = ("Cookie", "a=b; locald_dashboard_4000=secret");

    fn guard() -> Guard {
        Guard::with_token(4000, "secret".into())
    }

    #[test]
    fn the_token_is_traded_for_a_cookie_on_the_first_visit() {
        let verdict = guard().check(&request("GET", "/?token=secret", &[HOST]));
        let Verdict::Welcome { cookie } = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(
            cookie,
            "locald_dashboard_4000=secret; Path=/; HttpOnly; SameSite=Strict"
        );
        assert_eq!(
            guard().check(&request("GET", "/api/services", &[HOST, COOKIE])),
            Verdict::Allowed
        );
        assert_eq!(
            guard().check(&request(
                "GET",
                "/api/services",
                &[HOST, ("Authorization", "Bearer secret")]
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
    fn no_token_a_wrong_one_or_another_ports_cookie_is_refused() {
        for headers in [
            vec![HOST],
            vec![HOST, ("Cookie", "locald_dashboard_4000=secreT")],
            vec![HOST, ("Cookie", "locald_dashboard_4001=secret")],
            vec![HOST, ("Authorization", "Bearer secre")],
        ] {
            let verdict = guard().check(&request("GET", "/api/services", &headers));
            assert!(
                matches!(verdict, Verdict::Refused { status: 401, .. }),
                "{headers:?}: {verdict:?}"
            );
        }
        let wrong_token = guard().check(&request("GET", "/?token=guess", &[HOST]));
        assert!(matches!(wrong_token, Verdict::Refused { status: 401, .. }));
    }

    #[test]
    fn rebound_hosts_and_other_origins_are_refused() {
        for host in ["evil.example:4000", "127.0.0.1:4001", "127.0.0.1"] {
            let verdict =
                guard().check(&request("GET", "/api/services", &[("Host", host), COOKIE]));
            assert!(
                matches!(verdict, Verdict::Refused { status: 421, .. }),
                "{host}"
            );
        }
        let missing = guard().check(&request("GET", "/", &[COOKIE]));
        assert!(matches!(missing, Verdict::Refused { status: 421, .. }));
        let other = guard().check(&request(
            "POST",
            "/api/services/web/restart",
            &[HOST, COOKIE, ("Origin", "http://evil.example")],
        ));
        assert!(matches!(other, Verdict::Refused { status: 403, .. }));
    }

    #[test]
    fn a_control_by_cookie_needs_our_origin() {
        let post = |headers: &[(&str, &str)]| {
            guard().check(&request("POST", "/api/services/web/restart", headers))
        };
        assert!(matches!(
            post(&[HOST, COOKIE]),
            Verdict::Refused { status: 403, .. }
        ));
        assert_eq!(
            post(&[HOST, COOKIE, ("Origin", "http://127.0.0.1:4000")]),
            Verdict::Allowed
        );
        assert_eq!(
            post(&[HOST, ("Origin", "http://localhost:4000"), COOKIE]),
            Verdict::Allowed
        );
        assert_eq!(
            post(&[HOST, ("Authorization", "Bearer secret")]),
            Verdict::Allowed
        );
    }
}
