//! A connection's session: the state commands may change (selected database, protocol,
//! authentication, MULTI queue, watched keys…). Commands see it as `Ctx::conn`; the
//! connection owns it.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::blocking::{Served, Waiter};
use crate::clients::ClientInfo;
use crate::keyspace::EngineKey;
use crate::notify::{Event, Touched};
use crate::pubsub::{Message, Subscriber};
use crate::watch::WatchState;

/// Per-connection state that commands may change.
pub(crate) struct ConnState {
    pub id: u64,
    /// The selected database.
    pub db: u8,
    /// Whether HELLO 3 switched the connection to RESP3.
    pub resp3: bool,
    pub authenticated: bool,
    /// The request changed the FUNCTION libraries, or the database map (SWAPDB): in a group,
    /// its entry tells every node to reload them (`relay::encode_notes`).
    pub libraries_changed: bool,
    pub db_map_changed: bool,
    /// The ACL user it runs as, as of ACL generation `acl_generation` (`acl.rs`).
    pub user: Arc<crate::acl::User>,
    pub acl_generation: u64,
    pub info: Arc<ClientInfo>,
    /// Set between MULTI and EXEC/DISCARD.
    pub multi: Option<Multi>,
    pub watch: WatchState,
    /// Close once the pending replies are written (QUIT, protocol error, SHUTDOWN).
    pub close_after_reply: bool,
    /// Send no reply for this command (SHUTDOWN, CLIENT REPLY OFF|SKIP).
    pub suppress_reply: bool,
    /// CLIENT REPLY OFF: no replies until CLIENT REPLY ON.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: no reply for the next command (`skip_next`, then `skip` while it
    /// runs).
    pub skip_next: bool,
    pub skip: bool,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) was given: applies to the next command (all
    /// of a MULTI's), as Redis's `CLIENT_TRACKING_CACHING` flag.
    pub caching: bool,
    /// Pub/sub subscriptions, from the first SUBSCRIBE (of any kind) on.
    pub subs: Option<Box<Subscriptions>>,
    /// Set by a blocking command that found nothing: the connection waits for its reply.
    pub parked: Option<Parked>,
    /// Keys this request's writes made ready for blocked clients (`blocking.rs`).
    pub ready: Vec<EngineKey>,
    /// Keys the running command changed, while keyspace notifications are on.
    pub touched: Vec<Touched>,
    /// Keyspace events of this request, published once it is committed.
    pub events: Vec<Event>,
    /// Events the running command emits after those its name implies (XADD's `xtrim`): put
    /// after them once it succeeds.
    pub late_events: Vec<Event>,
    /// Keys this request changed, while clients track keys (CLIENT TRACKING); and whether it
    /// flushed a database. Their invalidations go out once it is committed.
    pub invalidated: Vec<Bytes>,
    pub invalidated_all: bool,
    /// The request passed dispatch's checks and ran (INFO commandstats).
    pub executed: bool,
    /// In a replicated group: the writes the request staged, to be proposed before its reply.
    pub proposal: Option<Proposal>,
    /// READONLY: in a replicated group, reads are served from this node's state (possibly
    /// behind the leader) rather than the leader's.
    pub readonly: bool,
    /// A follower's link (`CASKDB.LINK`): never forwarded further.
    pub is_link: bool,
    /// The request running is a group leader's write (`connection/route.rs`): it is staged
    /// over the writes in flight.
    pub write_routed: bool,
    /// Commands run for a script (`redis.call`): XREAD's BLOCK is refused there.
    pub in_script: bool,
    /// The command runs again for a blocked client a write served (XREADGROUP then names a
    /// group that went away as Redis does).
    pub serving_blocked: bool,
}

/// What a request on a group's leader waits for before its reply: its writes agreed on and
/// applied; then the blocked clients it served get their replies.
pub(crate) struct Proposal {
    /// Its number in the leader's pipeline (`cluster::Pipeline`); with no effects, the last
    /// proposal whose writes the request read.
    pub seq: u64,
    pub effects: caskdb_raft::Effects,
    pub served: Vec<(Arc<Waiter>, crate::frame::Frame)>,
}

/// A blocked command: its registration, the reply channel, and when it times out.
pub(crate) struct Parked {
    pub waiter: Arc<Waiter>,
    pub rx: oneshot::Receiver<Served>,
    pub deadline: Option<std::time::Instant>,
}

/// A connection's subscriptions and the queue of messages published to them.
pub(crate) struct Subscriptions {
    pub handle: Arc<Subscriber>,
    pub rx: mpsc::UnboundedReceiver<Message>,
    /// Channels, patterns and shard channels (`pubsub::Kind` order).
    pub names: [HashSet<Bytes>; 3],
}

impl ConnState {
    /// Whether the connection is subscribed to any channel, pattern or shard channel: in RESP2,
    /// only the pub/sub commands are then allowed.
    pub fn subscribed(&self) -> bool {
        self.subs
            .as_ref()
            .is_some_and(|s| s.names.iter().any(|n| !n.is_empty()))
    }

    /// Whether the reply of the command that just ran is to be sent (CLIENT REPLY, SHUTDOWN);
    /// called once per command. A SKIP applies from the next command.
    pub fn reply_wanted(&mut self) -> bool {
        let wanted = !std::mem::take(&mut self.suppress_reply) && !self.reply_off && !self.skip;
        self.skip = std::mem::take(&mut self.skip_next);
        wanted
    }

    /// The connection's message queue (pub/sub messages, invalidation messages), made on
    /// first use and published in its [`ClientInfo`] (where tracking redirections find it).
    pub fn subscriptions(&mut self) -> &mut Subscriptions {
        let id = self.id;
        let info = self.info.clone();
        self.subs.get_or_insert_with(|| {
            let (handle, rx) = Subscriber::new(id);
            *info.inbox.lock() = Some(handle.clone());
            Box::new(Subscriptions {
                handle,
                rx,
                names: Default::default(),
            })
        })
    }

    /// The state of a new connection: database 0, RESP2, authenticated only if no password is
    /// set.
    pub fn new(
        info: Arc<ClientInfo>,
        authenticated: bool,
        user: Arc<crate::acl::User>,
    ) -> ConnState {
        ConnState {
            id: info.id,
            db: 0,
            resp3: false,
            authenticated,
            libraries_changed: false,
            db_map_changed: false,
            user,
            acl_generation: 0,
            info,
            multi: None,
            watch: WatchState::default(),
            close_after_reply: false,
            suppress_reply: false,
            reply_off: false,
            skip_next: false,
            skip: false,
            caching: false,
            subs: None,
            parked: None,
            ready: Vec::new(),
            touched: Vec::new(),
            events: Vec::new(),
            late_events: Vec::new(),
            invalidated: Vec::new(),
            invalidated_all: false,
            executed: false,
            proposal: None,
            write_routed: false,
            in_script: false,
            serving_blocked: false,
            readonly: false,
            is_link: false,
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
