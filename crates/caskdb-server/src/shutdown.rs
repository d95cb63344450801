//! The shutdown signal: triggered once (SIGINT, SIGTERM, SHUTDOWN), seen by every task.

use tokio::sync::watch;

/// Triggered once; every [`Listener`] sees it.
pub(crate) struct Shutdown {
    tx: watch::Sender<bool>,
}

/// One task's view of the shutdown signal.
pub(crate) struct Listener {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    /// Starts the shutdown (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn subscribe(&self) -> Listener {
        Listener {
            rx: self.tx.subscribe(),
        }
    }
}

impl Listener {
    /// Resolves once the shutdown has been triggered (at once if it already was).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|&stop| stop).await;
    }
}
