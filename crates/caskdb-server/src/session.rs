//! A connection's session: the state commands may change (selected database, protocol,
//! authentication, MULTI queue, watched keys…). Commands see it as `Ctx::conn`; the
//! connection owns it.

use std::sync::Arc;

use bytes::Bytes;

use crate::clients::ClientInfo;
use crate::watch::WatchState;

/// Per-connection state that commands may change.
pub(crate) struct ConnState {
    pub id: u64,
    /// The selected database.
    pub db: u8,
    /// Whether HELLO 3 switched the connection to RESP3.
    pub resp3: bool,
    pub authenticated: bool,
    pub info: Arc<ClientInfo>,
    /// Set between MULTI and EXEC/DISCARD.
    pub multi: Option<Multi>,
    pub watch: WatchState,
    /// Close once the pending replies are written (QUIT, protocol error, SHUTDOWN).
    pub close_after_reply: bool,
    /// Send no reply for this command (SHUTDOWN).
    pub suppress_reply: bool,
}

impl ConnState {
    /// The state of a new connection: database 0, RESP2, authenticated only if no password is
    /// set.
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> ConnState {
        ConnState {
            id: info.id,
            db: 0,
            resp3: false,
            authenticated,
            info,
            multi: None,
            watch: WatchState::default(),
            close_after_reply: false,
            suppress_reply: false,
        }
    }
}

/// A connection's MULTI state.
#[derive(Default)]
pub(crate) struct Multi {
    /// Commands queued since MULTI.
    pub queue: Vec<Vec<Bytes>>,
    /// A command was refused while queuing: EXEC will abort.
    pub failed: bool,
}
