//! The control socket's server side: accepts connections on
//! `.locald/supervisor.sock`, reads newline-delimited JSON [`Request`]s,
//! forwards them to the actor and writes one [`Response`] line per request.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::actor::Control;
use super::protocol::{Request, Response};

/// Requests longer than this are refused (they are a few dozen bytes).
const MAX_REQUEST: u64 = 64 * 1024;

/// Connections whose `down` was answered: kept open until the supervisor
/// exits, so the client learns of the exit from end of file.
pub type HeldConnections = Arc<Mutex<Vec<UnixStream>>>;

/// Accept connections forever.
pub async fn serve(listener: UnixListener, controls: mpsc::Sender<Control>, held: HeldConnections) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle(stream, controls.clone(), held.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(stream: UnixStream, controls: mpsc::Sender<Control>, held: HeldConnections) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match (&mut reader).take(MAX_REQUEST).read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let request = match serde_json::from_str::<Request>(line.trim_end()) {
            Ok(request) => request,
            Err(error) => {
                let response = Response::failed(format!("invalid request: {error}"));
                if write(reader.get_mut(), &response).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if request == Request::Down {
            let (reply, answer) = oneshot::channel();
            if controls.send(Control::Down(reply)).await.is_err() {
                let _ = write(
                    reader.get_mut(),
                    &Response::failed("the supervisor is shutting down"),
                )
                .await;
                return;
            }
            // Answered once every service is gone and the files are removed.
            let Ok(ack) = answer.await else { return };
            let _ = write(reader.get_mut(), &Response::done()).await;
            if let Ok(mut held) = held.lock() {
                held.push(reader.into_inner());
            }
            let _ = ack.send(());
            return;
        }
        let response = dispatch(request, &controls).await;
        if write(reader.get_mut(), &response).await.is_err() {
            return;
        }
    }
}

async fn dispatch(request: Request, controls: &mpsc::Sender<Control>) -> Response {
    let gone = || Response::failed("the supervisor is shutting down");
    match request {
        Request::Status => {
            let (reply, answer) = oneshot::channel();
            if controls.send(Control::Status(reply)).await.is_err() {
                return gone();
            }
            answer
                .await
                .map(Response::statuses)
                .unwrap_or_else(|_| gone())
        }
        Request::Start { service } => ask(controls, |reply| Control::Start(service, reply)).await,
        Request::Stop { service } => ask(controls, |reply| Control::Stop(service, reply)).await,
        Request::Restart { service } => {
            ask(controls, |reply| Control::Restart(service, reply)).await
        }
        Request::Reload => {
            let (reply, answer) = oneshot::channel();
            if controls.send(Control::Reload(reply)).await.is_err() {
                return gone();
            }
            match answer.await {
                Ok(Ok(report)) => Response::reloaded(report),
                Ok(Err(message)) => Response::failed(message),
                Err(_) => gone(),
            }
        }
        Request::Down => Response::failed("down is answered by the connection handler"),
    }
}

async fn ask(
    controls: &mpsc::Sender<Control>,
    make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Control,
) -> Response {
    let (reply, answer) = oneshot::channel();
    if controls.send(make(reply)).await.is_err() {
        return Response::failed("the supervisor is shutting down");
    }
    match answer.await {
        Ok(Ok(())) => Response::done(),
        Ok(Err(message)) => Response::failed(message),
        Err(_) => Response::failed("the supervisor is shutting down"),
    }
}

async fn write(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}
