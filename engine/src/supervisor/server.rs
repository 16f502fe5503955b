//! The control socket's server side: accepts connections on
//! `.locald/supervisor.sock`, reads newline-delimited JSON [`Request`]s,
//! forwards them to the actor and writes one [`Response`] line per request.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::actor::{Control, ControlError, Envelope};
use super::protocol::{Request, Response, HEARTBEAT};

/// Requests longer than this are refused (they are a few dozen bytes).
const MAX_REQUEST: u64 = 64 * 1024;

/// Connections whose `down` was answered: kept open until the supervisor
/// exits, so the client learns of the exit from end of file.
pub type HeldConnections = Arc<Mutex<Vec<UnixStream>>>;

/// Accept connections forever.
pub async fn serve(
    listener: UnixListener,
    controls: mpsc::Sender<Envelope>,
    held: HeldConnections,
    dashboard: Option<String>,
) {
    let dashboard: Arc<Option<String>> = Arc::new(dashboard);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(
                    stream,
                    controls.clone(),
                    held.clone(),
                    dashboard.clone(),
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(
    stream: UnixStream,
    controls: mpsc::Sender<Envelope>,
    held: HeldConnections,
    dashboard: Arc<Option<String>>,
) {
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        match (&mut reader).take(MAX_REQUEST).read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // No newline within the bound: not a request of ours; its rest must
        // not be read as more requests.
        if !line.ends_with('\n') {
            let response = Response::failed(format!("request longer than {MAX_REQUEST} bytes"));
            let _ = write(&mut writer, &response).await;
            return;
        }
        let request = match serde_json::from_str::<Request>(line.trim_end()) {
            Ok(request) => request,
            Err(error) => {
                let response = Response::failed(format!("invalid request: {error}"));
                if write(&mut writer, &response).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let mut call = Call {
            reader: &mut reader,
            writer: &mut writer,
            controls: &controls,
        };
        let response = match request {
            // The socket is the owner's only (0600 in a 0700 directory): it
            // may learn the dashboard's token.
            Request::Dashboard => Some(Some(Response::dashboard(dashboard.as_ref().clone()))),
            Request::Status => {
                let (reply, answer) = oneshot::channel();
                call.carry_out(Control::Status(reply), answer)
                    .await
                    .map(|answer| answer.map(Response::statuses))
            }
            Request::Start { service } => {
                let (reply, answer) = oneshot::channel();
                call.carry_out(Control::Start(service, reply), answer)
                    .await
                    .map(unit_response)
            }
            Request::Stop { service } => {
                let (reply, answer) = oneshot::channel();
                call.carry_out(Control::Stop(service, reply), answer)
                    .await
                    .map(unit_response)
            }
            Request::Restart { service } => {
                let (reply, answer) = oneshot::channel();
                call.carry_out(Control::Restart(service, reply), answer)
                    .await
                    .map(unit_response)
            }
            Request::Kill { service } => {
                let (reply, answer) = oneshot::channel();
                call.carry_out(Control::Kill(service, reply), answer)
                    .await
                    .map(unit_response)
            }
            Request::Run { service, program } => {
                let (reply, answer) = oneshot::channel();
                let control = Control::Run {
                    service,
                    command: program,
                    reply,
                };
                call.carry_out(control, answer).await.map(|answer| {
                    answer.map(|result| match result {
                        Ok(process) => Response::processes(vec![process]),
                        Err(error) => Response::refused(&error),
                    })
                })
            }
            Request::Ps { all } => {
                let (reply, answer) = oneshot::channel();
                call.carry_out(Control::Ps { all, reply }, answer)
                    .await
                    .map(|answer| answer.map(Response::processes))
            }
            Request::Reload => {
                let (reply, answer) = oneshot::channel();
                call.carry_out(Control::Reload(reply), answer)
                    .await
                    .map(|answer| {
                        answer.map(|result| match result {
                            Ok(report) => Response::reloaded(report),
                            Err(error) => Response::refused(&error),
                        })
                    })
            }
            Request::Wait {
                services,
                baseline,
                timeout_ms,
            } => {
                let (reply, answer) = oneshot::channel();
                let control = Control::Wait {
                    services,
                    baseline,
                    timeout: timeout_ms.map(std::time::Duration::from_millis),
                    reply,
                };
                call.carry_out(control, answer).await.map(|answer| {
                    answer.map(|result| match result {
                        Ok(outcome) => Response::waited(outcome),
                        Err(error) => Response::refused(&error),
                    })
                })
            }
            Request::Down { force } => {
                let (reply, answer) = oneshot::channel();
                let Some(answer) = call.carry_out(Control::Down { force, reply }, answer).await
                else {
                    return;
                };
                let Some(ack) = answer else {
                    let _ = write(&mut writer, &gone()).await;
                    return;
                };
                // Answered once every service is gone and the files are
                // removed; the connection stays open until the supervisor
                // exits, so the client learns of the exit from end of file.
                let _ = write(&mut writer, &Response::done()).await;
                if let (Ok(stream), Ok(mut held)) =
                    (reader.into_inner().reunite(writer), held.lock())
                {
                    held.push(stream);
                }
                let _ = ack.send(());
                return;
            }
        };
        // `None`: the client has gone, the request was dropped.
        let Some(response) = response else { return };
        let response = response.unwrap_or_else(gone);
        if write(&mut writer, &response).await.is_err() {
            return;
        }
    }
}

fn gone() -> Response {
    Response::failed(ControlError::ShuttingDown.to_string())
}

fn unit_response(answer: Option<Result<(), ControlError>>) -> Option<Response> {
    answer.map(|result| match result {
        Ok(()) => Response::done(),
        Err(error) => Response::refused(&error),
    })
}

/// One request on its way through the actor, tied to its connection.
struct Call<'a> {
    reader: &'a mut BufReader<OwnedReadHalf>,
    writer: &'a mut OwnedWriteHalf,
    controls: &'a mpsc::Sender<Envelope>,
}

impl Call<'_> {
    /// Hand `control` to the actor and wait for its answer. `None` when the
    /// client has gone: a request whose client has gone before the actor
    /// took it up is never carried out. `Some(None)` when the actor is gone.
    ///
    /// Why tie requests to the connection rather than give them a deadline:
    /// the client gives up by closing its connection (its timeout, Ctrl-C,
    /// being killed), and the kernel keeps what it wrote readable after the
    /// close, so a supervisor resumed after SIGSTOP would otherwise find and
    /// run requests nobody waits for any more. A closed connection is an
    /// exact signal that needs no clock shared between processes; it is
    /// checked before the request is queued and again, by the actor, when it
    /// takes the request up (the receiver of `taken` is dropped as soon as
    /// this side sees the connection close).
    async fn carry_out<T>(
        &mut self,
        control: Control,
        answer: oneshot::Receiver<T>,
    ) -> Option<Option<T>> {
        if client_gone(self.reader) {
            tracing::info!("dropping a request whose client has gone");
            return None;
        }
        let (taken, taken_receiver) = oneshot::channel();
        if self
            .controls
            .send(Envelope { control, taken })
            .await
            .is_err()
        {
            return Some(None);
        }
        // Until the actor takes it up, only the client's own timeout bounds
        // the wait: a wedged actor sends nothing, so the client gives up.
        tokio::select! {
            _ = taken_receiver => {}
            () = closed(self.reader) => return None,
        }
        // Taken up: say so every HEARTBEAT until the answer comes, so a slow
        // stop is told from a stopped supervisor.
        tokio::pin!(answer);
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            tokio::select! {
                answer = &mut answer => return Some(answer.ok()),
                _ = heartbeat.tick() => {
                    if write(self.writer, &Response::working()).await.is_err() {
                        // The work goes on (it was taken up); nobody hears of it.
                        return None;
                    }
                }
                () = closed(self.reader) => return None,
            }
        }
    }
}

/// Whether the client has closed its side already (checked without waiting).
/// Data still unread means a later request, not a close.
fn client_gone(reader: &BufReader<OwnedReadHalf>) -> bool {
    if !reader.buffer().is_empty() {
        return false;
    }
    let stream: &UnixStream = reader.get_ref().as_ref();
    let mut byte = [0u8; 1];
    match recv(
        stream.as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(0) => true,
        Ok(_) => false,
        Err(Errno::EAGAIN) | Err(Errno::EINTR) => false,
        Err(_) => true,
    }
}

/// Resolves once the client has closed its side (or the connection broke);
/// never when it sends more (a next request, left in the buffer).
async fn closed(reader: &mut BufReader<OwnedReadHalf>) {
    match reader.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

async fn write(stream: &mut OwnedWriteHalf, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn an_over_long_request_is_refused_and_the_connection_closed() {
        let (client, server) = UnixStream::pair().unwrap();
        let (controls, mut received) = mpsc::channel(4);
        let served = tokio::spawn(handle(
            server,
            controls,
            HeldConnections::default(),
            Arc::default(),
        ));
        let (mut from_server, mut to_server) = client.into_split();
        // A "request" with no newline within the bound, then what would be
        // a valid one if the rest were read as more requests.
        let mut bytes = vec![b'x'; MAX_REQUEST as usize + 10];
        bytes.extend_from_slice(b"\n{\"command\":\"down\"}\n");
        to_server.write_all(&bytes).await.unwrap();
        let mut from_server = BufReader::new(&mut from_server);
        let mut answer = String::new();
        from_server.read_line(&mut answer).await.unwrap();
        assert!(
            answer.contains("request longer than 65536 bytes"),
            "{answer}"
        );
        // Then the end of the connection (a reset, as the rest went unread).
        let mut rest = String::new();
        let end = from_server.read_to_string(&mut rest).await;
        assert!(end.is_err() || rest.is_empty(), "{rest}");
        served.await.unwrap();
        assert!(
            received.try_recv().is_err(),
            "nothing reached the supervisor"
        );
    }
}
