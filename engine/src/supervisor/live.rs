//! Live output for watchers inside the supervisor (the dashboard): every
//! batch of lines a service writes, as it is written, on a bounded
//! broadcast channel. A watcher that falls behind loses the oldest batches
//! and is told how many (the log files keep everything); nothing is built
//! while nobody watches, so an idle supervisor pays nothing for it.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use super::logs::Stream;

/// Batches kept for a slow watcher before it starts losing them. A batch is
/// one pipe read (at most 32 KiB of lines), so this bounds the memory held
/// for watchers to a few MB whatever the output rate.
const CAPACITY: usize = 256;

/// Lines of one service read together (one pipe read, one time).
#[derive(Debug, Clone, Serialize)]
pub struct LiveBatch {
    pub service: String,
    pub stream: &'static str,
    /// When they were written, as the log files write it.
    pub time: String,
    pub lines: Vec<String>,
}

/// The sending side, shared by every service's output.
#[derive(Clone)]
pub struct LiveLogs {
    sender: broadcast::Sender<Arc<LiveBatch>>,
}

impl Default for LiveLogs {
    fn default() -> Self {
        LiveLogs {
            sender: broadcast::Sender::new(CAPACITY),
        }
    }
}

impl LiveLogs {
    /// Whether anybody watches (so lines are worth copying).
    pub fn watched(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    pub fn send(&self, service: &str, stream: Stream, time: &str, lines: Vec<String>) {
        if lines.is_empty() || !self.watched() {
            return;
        }
        let _ = self.sender.send(Arc::new(LiveBatch {
            service: service.to_string(),
            stream: stream.as_str(),
            time: time.to_string(),
            lines,
        }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveBatch>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_sent_unwatched_and_a_slow_watcher_is_told_what_it_lost() {
        let live = LiveLogs::default();
        live.send("web", Stream::Stdout, "t", vec!["lost".into()]);
        let mut watcher = live.subscribe();
        assert!(matches!(
            watcher.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));
        for i in 0..CAPACITY + 3 {
            live.send("web", Stream::Stdout, "t", vec![i.to_string()]);
        }
        assert!(matches!(
            watcher.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
        let next = watcher.try_recv().unwrap();
        assert_eq!(next.lines, ["3"]);
    }
}
