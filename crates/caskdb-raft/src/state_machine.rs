//! The state machine: the node's data directory (a caskdb engine). Applying entries makes
//! their effects and records the applied log id and membership under a key of the caller's
//! choosing, all in one engine transaction. A snapshot is a file holding every key (its value
//! and expiry) at an applied log id, with a CRC32 at the end; installing one replaces the
//! whole keyspace in one transaction.

use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StorageIOError, StoredMembership,
};
use parking_lot::Mutex;

use crate::codec::{Reader, Writer};
use crate::{Applied, Error, NodeId, TypeConfig};

type Meta = SnapshotMeta<NodeId, BasicNode>;

/// The applied state: the last applied log id and the membership in force.
type AppliedState = (Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>);

/// Bytes of effects applied per engine transaction (the engine's default batch limit is
/// 64 MiB).
const CHUNK: usize = 16 << 20;
/// Bytes of keys and values per transaction when a snapshot is loaded (well under any engine's
/// batch limit: the server's is at least 1 GiB).
const LOAD_CHUNK: usize = 4 << 20;

/// About how many bytes an entry's effects take in an engine batch.
fn effects_size(e: &openraft::Entry<TypeConfig>) -> usize {
    match &e.payload {
        EntryPayload::Normal(effects) => effects.bytes() + 32 * effects.ops.len(),
        _ => 0,
    }
}

const RECORD: u8 = 1;
const END: u8 = 0;

/// The state machine of one node. Cheap to clone (clones share the engine and the current
/// snapshot).
#[derive(Clone)]
pub struct StateMachine {
    db: caskdb::Db,
    /// Where the applied log id and membership are kept in `db` (outside the user's keys).
    meta_key: Bytes,
    /// Where snapshot files live.
    dir: PathBuf,
    /// The newest snapshot built or installed, and its file.
    current: Arc<Mutex<Option<(Meta, PathBuf)>>>,
    /// Makes snapshot ids and temporary names unique within the process.
    counter: Arc<AtomicU64>,
    /// The file the snapshot being received is written to.
    incoming: Arc<Mutex<Option<PathBuf>>>,
    /// Given each applied entry's notes, once its transaction committed.
    on_apply: Option<OnApply>,
    /// Called once a snapshot was installed (with empty notes).
    on_install: Option<OnApply>,
    /// Held by an install for its whole run, and by a build while it copies the data: a
    /// build (openraft runs it beside the applies) never copies half an install.
    installing: Arc<Mutex<()>>,
}

/// A hook given the [`notes`](crate::Effects::notes) of each entry applied (not empty ones),
/// in log order, once they are committed to the data engine.
#[derive(Clone)]
pub struct OnApply(pub Arc<dyn Fn(&Bytes) + Send + Sync>);

impl std::fmt::Debug for OnApply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnApply(..)")
    }
}

fn write_meta(w: &mut Writer, state: &AppliedState) {
    w.opt_log_id(state.0.as_ref());
    w.stored_membership(&state.1);
}

impl StateMachine {
    /// The state machine over `db`, keeping its applied state under `meta_key` and its
    /// snapshots in `snapshot_dir` (created if missing; the newest complete snapshot there is
    /// the current one).
    ///
    /// # Errors
    /// [`Error::Snapshot`] if the directory cannot be made or read.
    pub fn open(
        db: caskdb::Db,
        meta_key: impl Into<Bytes>,
        snapshot_dir: impl AsRef<Path>,
    ) -> Result<StateMachine, Error> {
        let dir = snapshot_dir.as_ref().to_path_buf();
        let io = |source| Error::Snapshot {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let meta_key: Bytes = meta_key.into();
        // The file of an install a crash interrupted (see `load`): kept, and finished below.
        let loading = db.get(marker_key(&meta_key))?;
        let mut newest: Option<(Meta, PathBuf)> = None;
        for item in std::fs::read_dir(&dir).map_err(io)? {
            let path = item.map_err(io)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.starts_with("loading-") {
                if loading.as_deref() != Some(name.as_bytes()) {
                    // Left by an install a crash cut short after its last step.
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            if !name.starts_with("snapshot-") {
                continue;
            }
            if name.ends_with(".tmp") {
                // Left by a crash: a build (its file, or its copy of the data), a transfer or
                // an install that did not finish.
                if path.is_dir() {
                    let _ = std::fs::remove_dir_all(&path);
                } else {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            match read_header(&path) {
                Ok(meta) => {
                    if newest
                        .as_ref()
                        .is_none_or(|(m, _)| m.last_log_id < meta.last_log_id)
                    {
                        newest = Some((meta, path));
                    }
                }
                Err(e) => tracing::warn!("ignoring snapshot {}: {e}", path.display()),
            }
        }
        let sm = StateMachine {
            db,
            meta_key,
            dir,
            current: Arc::new(Mutex::new(newest)),
            counter: Arc::new(AtomicU64::new(0)),
            incoming: Arc::new(Mutex::new(None)),
            on_apply: None,
            on_install: None,
            installing: Arc::new(Mutex::new(())),
        };
        sm.resume_load()?;
        Ok(sm)
    }

    /// Calls `hook` with the notes of every entry applied from now on (see [`OnApply`]).
    #[must_use]
    pub fn on_apply(mut self, hook: Option<OnApply>) -> Self {
        self.on_apply = hook;
        self
    }

    /// Calls `hook` once each snapshot received from the leader is installed (the data it
    /// replaced may be mirrored in memory).
    #[must_use]
    pub fn on_install(mut self, hook: Option<OnApply>) -> Self {
        self.on_install = hook;
        self
    }

    /// The last applied log id and the membership, as stored.
    ///
    /// # Errors
    /// The engine's, or [`Error::Format`] for a record that does not decode.
    pub fn applied(&self) -> Result<AppliedState, Error> {
        match self.db.get(&self.meta_key)? {
            None => Ok((None, StoredMembership::default())),
            Some(v) => {
                let mut r = Reader::versioned(&v, "raft applied state")?;
                let applied = r.opt_log_id()?;
                let membership = r.stored_membership()?;
                r.end()?;
                Ok((applied, membership))
            }
        }
    }

    fn encoded_applied(state: &AppliedState) -> Vec<u8> {
        let mut w = Writer::versioned();
        write_meta(&mut w, state);
        w.0
    }

    /// Makes snapshot `meta` at `path` the current one unless a newer one is (a build and an
    /// install may finish in either order); the file of the one that loses is deleted.
    fn make_current(&self, meta: &Meta, path: &Path) {
        let mut current = self.current.lock();
        let stale = current
            .as_ref()
            .is_some_and(|(m, _)| m.last_log_id > meta.last_log_id);
        let loser = if stale {
            Some(path.to_path_buf())
        } else {
            current
                .replace((meta.clone(), path.to_path_buf()))
                .map(|(_, p)| p)
                .filter(|p| p != path)
        };
        drop(current);
        if let Some(p) = loser {
            let _ = std::fs::remove_file(p);
        }
    }

    fn unique(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes a snapshot of the current state to a new file: every key but the meta key, read
    /// in one engine transaction (writers wait meanwhile).
    fn build(&self) -> Result<(Meta, PathBuf), Error> {
        let n = self.unique();
        // A consistent copy of the data, taken without stopping writers: the engine's backup
        // holds the writer lock only to note where the active file ends, and hard-links the
        // sealed files. The dump then reads the copy.
        let copy_dir = self.dir.join(format!("snapshot-build-{n}.data.tmp"));
        {
            let _no_install = self.installing.lock();
            self.db.checkpoint(&copy_dir)?;
        }
        let built = self.dump(n, &copy_dir);
        let _ = std::fs::remove_dir_all(&copy_dir);
        built
    }

    /// Writes the snapshot of the data copied into `copy_dir` (see `build`).
    fn dump(&self, n: u64, copy_dir: &Path) -> Result<(Meta, PathBuf), Error> {
        // openraft purges the log behind a snapshot: the applied state must not be able to
        // fall back behind it (a data engine that syncs on an interval could, at a power
        // loss, and the entries to re-apply would be gone). Everything up to the copy's cut
        // is durable once this returns.
        self.db.sync()?;
        let copy = self.db.options().clone().auto_merge(false).open(copy_dir)?;
        let tmp = self.dir.join(format!("snapshot-build-{n}.tmp"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Snapshot { path, source }
        };
        let meta = copy.transaction(|tx| -> Result<Meta, Error> {
            let state = match tx.get(&self.meta_key)? {
                None => (None, StoredMembership::default()),
                Some(v) => {
                    let mut r = Reader::versioned(&v, "raft applied state")?;
                    (r.opt_log_id()?, r.stored_membership()?)
                }
            };
            let id = match &state.0 {
                Some(l) => format!(
                    "{}-{}-{}-{n}",
                    l.leader_id.term, l.leader_id.node_id, l.index
                ),
                None => format!("0-0-0-{n}"),
            };
            let meta = Meta {
                last_log_id: state.0,
                last_membership: state.1.clone(),
                snapshot_id: id,
            };
            let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            let mut out = Crc32Writer::new(BufWriter::new(file));
            out.write_all(&header(&meta)).map_err(io(&tmp))?;
            for key in tx.keys() {
                let key = key?;
                if self.is_own(&key) {
                    continue;
                }
                let Some((value, expire_at)) = tx.get_with_expiry(&key)? else {
                    continue;
                };
                let mut w = Writer::default();
                w.u8(RECORD);
                w.bytes(&key);
                w.bytes(&value);
                w.u64(expire_at.unwrap_or(0));
                out.write_all(&w.0).map_err(io(&tmp))?;
            }
            out.write_all(&[END]).map_err(io(&tmp))?;
            out.finish().map_err(io(&tmp))?;
            Ok(meta)
        })?;
        let path = self.dir.join(format!("snapshot-{}", meta.snapshot_id));
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        Ok((meta, path))
    }

    /// This state machine's install marker key.
    fn marker_key(&self) -> Vec<u8> {
        marker_key(&self.meta_key)
    }

    /// Whether `key` is one of the state machine's own (not the user's).
    fn is_own(&self, key: &[u8]) -> bool {
        key.starts_with(&self.meta_key)
    }

    /// Replaces the whole keyspace with snapshot file `path` (already checked, and named
    /// `loading-…` in the snapshot directory) and records its applied state. The keyspace can
    /// be far larger than one engine transaction, so it goes in steps of about `LOAD_CHUNK` bytes;
    /// a marker naming the file is written first and removed with the last step, so that a
    /// crash in between leaves a state that `open` finishes loading (never half of two).
    fn load(&self, meta: &Meta, path: &Path) -> Result<(), Error> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let _installing = self.installing.lock();
        self.db.put(self.marker_key(), name.as_bytes())?;
        self.db.sync()?;
        self.finish_load(meta, path)
    }

    /// The steps of `load` after the marker: clear the user's keys, load the file's records,
    /// then record the applied state and drop the marker in one last transaction.
    fn finish_load(&self, meta: &Meta, path: &Path) -> Result<(), Error> {
        let io = |source| Error::Snapshot {
            path: path.to_path_buf(),
            source,
        };
        // Every user key goes, a bounded batch at a time.
        loop {
            let batch: Vec<Bytes> = self
                .db
                .range_keys::<&[u8], _>(..)
                .filter(|k| k.as_ref().is_ok_and(|k| !self.is_own(k)))
                .take(10_000)
                .collect::<caskdb::Result<_>>()?;
            if batch.is_empty() {
                break;
            }
            self.db.transaction(|tx| -> Result<(), Error> {
                for k in &batch {
                    tx.delete(k)?;
                }
                Ok(())
            })?;
        }
        let mut input = BufReader::new(std::fs::File::open(path).map_err(io)?);
        let mut head = Vec::new();
        read_header_from(&mut input, &mut head).map_err(|e| match e {
            HeaderError::Io(source) => io(source),
            HeaderError::Format(e) => e,
        })?;
        let mut done = false;
        while !done {
            self.db.transaction(|tx| -> Result<(), Error> {
                let mut size = 0;
                while size < LOAD_CHUNK {
                    let mut tag = [0u8; 1];
                    input.read_exact(&mut tag).map_err(io)?;
                    if tag[0] == END {
                        done = true;
                        break;
                    }
                    if tag[0] != RECORD {
                        return Err(Error::Format(format!(
                            "snapshot {}: bad record tag {}",
                            path.display(),
                            tag[0]
                        )));
                    }
                    let key = read_bytes(&mut input).map_err(io)?;
                    let value = read_bytes(&mut input).map_err(io)?;
                    let mut at = [0u8; 8];
                    input.read_exact(&mut at).map_err(io)?;
                    match u64::from_le_bytes(at) {
                        0 => tx.put(&key, &value)?,
                        at => tx.put_expiring_at(&key, &value, at)?,
                    }
                    size += key.len() + value.len();
                }
                if done {
                    let state = (meta.last_log_id, meta.last_membership.clone());
                    tx.put(&self.meta_key, Self::encoded_applied(&state))?;
                    tx.delete(self.marker_key())?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// At open: an install a crash interrupted is finished from its file (see `load`).
    fn resume_load(&self) -> Result<(), Error> {
        let Some(name) = self.db.get(self.marker_key())? else {
            return Ok(());
        };
        let path = self.dir.join(String::from_utf8_lossy(&name).as_ref());
        let meta = read_header(&path)?;
        tracing::info!(
            "finishing the install of snapshot {} that a crash interrupted",
            path.display()
        );
        self.finish_load(&meta, &path)?;
        self.db.sync()?;
        self.name_loaded(&meta, &path)
    }

    /// A loaded snapshot's file becomes a snapshot (`snapshot-<id>`), and the current one.
    fn name_loaded(&self, meta: &Meta, loading: &Path) -> Result<(), Error> {
        let path = self.dir.join(format!("snapshot-{}", meta.snapshot_id));
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::Snapshot { path: p, source }
        };
        std::fs::rename(loading, &path).map_err(io(&path))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        self.make_current(meta, &path);
        Ok(())
    }
}

/// The header of a snapshot file: magic, format version, the snapshot's meta.
fn header(meta: &Meta) -> Vec<u8> {
    let mut w = Writer(MAGIC.to_vec());
    w.u8(crate::codec::FORMAT);
    w.opt_log_id(meta.last_log_id.as_ref());
    w.stored_membership(&meta.last_membership);
    w.bytes(meta.snapshot_id.as_bytes());
    let len = w.0.len() as u32;
    // (Its length first, so a reader knows how much to read.)
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(&w.0);
    out
}

const MAGIC: &[u8; 8] = b"CASKSNAP";

enum HeaderError {
    Io(std::io::Error),
    Format(Error),
}

fn read_header_from(input: &mut impl Read, buf: &mut Vec<u8>) -> Result<Meta, HeaderError> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(HeaderError::Io)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(HeaderError::Format(Error::Format(
            "snapshot: header too large".into(),
        )));
    }
    buf.resize(len, 0);
    input.read_exact(buf).map_err(HeaderError::Io)?;
    if !buf.starts_with(MAGIC) {
        return Err(HeaderError::Format(Error::Format(
            "snapshot: not a caskdb snapshot".into(),
        )));
    }
    let parse = || -> Result<Meta, Error> {
        let mut r = Reader::versioned(&buf[MAGIC.len()..], "snapshot header")?;
        let last_log_id = r.opt_log_id()?;
        let last_membership = r.stored_membership()?;
        let snapshot_id = String::from_utf8_lossy(r.bytes()?).into_owned();
        r.end()?;
        Ok(Meta {
            last_log_id,
            last_membership,
            snapshot_id,
        })
    };
    parse().map_err(HeaderError::Format)
}

/// Reads the header of snapshot file `path` after checking the whole file's CRC.
fn read_header(path: &Path) -> Result<Meta, Error> {
    let io = |source| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    check_crc(path)?;
    let mut input = BufReader::new(std::fs::File::open(path).map_err(io)?);
    read_header_from(&mut input, &mut Vec::new()).map_err(|e| match e {
        HeaderError::Io(source) => io(source),
        HeaderError::Format(e) => e,
    })
}

/// Checks that the last 4 bytes of `path` are the CRC32 of the bytes before them.
fn check_crc(path: &Path) -> Result<(), Error> {
    let io = |source| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len < 4 {
        return Err(Error::Format(format!(
            "snapshot {}: truncated",
            path.display()
        )));
    }
    let mut hasher = crc32fast::Hasher::new();
    let mut left = len - 4;
    let mut buf = vec![0u8; 64 << 10];
    while left > 0 {
        let n = (left as usize).min(buf.len());
        f.read_exact(&mut buf[..n]).map_err(io)?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; 4];
    f.read_exact(&mut stored).map_err(io)?;
    let computed = hasher.finalize();
    if u32::from_le_bytes(stored) != computed {
        return Err(Error::Format(format!(
            "snapshot {}: CRC mismatch (stored {:08x}, computed {computed:08x}) at offset {}",
            path.display(),
            u32::from_le_bytes(stored),
            len - 4
        )));
    }
    Ok(())
}

fn read_bytes(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    let mut v = Vec::new();
    // (Grown as bytes arrive: a damaged length cannot make it allocate gigabytes at once.)
    input.take(len as u64).read_to_end(&mut v)?;
    if v.len() != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "record truncated",
        ));
    }
    Ok(v)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A writer that appends the CRC32 of everything written when finished, then syncs the file.
struct Crc32Writer {
    inner: BufWriter<std::fs::File>,
    hasher: crc32fast::Hasher,
}

impl Crc32Writer {
    fn new(inner: BufWriter<std::fs::File>) -> Self {
        Crc32Writer {
            inner,
            hasher: crc32fast::Hasher::new(),
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        let crc = self.hasher.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        let file = self.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    }
}

impl Write for Crc32Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn sm_read(e: Error) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(&e).into()
}

fn sm_write(e: Error) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(&e).into()
}

/// The key that marks an install in progress (see `StateMachine::load`), beside the applied
/// state's `meta_key`: it names the snapshot file being loaded.
fn marker_key(meta_key: &[u8]) -> Vec<u8> {
    [meta_key, b"-installing"].concat()
}

fn snapshot_err(e: Error) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, &e).into()
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (meta, path) = self.build().map_err(snapshot_err)?;
        let file = tokio::fs::File::open(&path).await.map_err(|source| {
            snapshot_err(Error::Snapshot {
                path: path.clone(),
                source,
            })
        })?;
        self.make_current(&meta, &path);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(&mut self) -> Result<AppliedState, StorageError<NodeId>> {
        self.applied().map_err(sm_read)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let (_, mut membership) = self.applied().map_err(sm_read)?;
        let n = entries.len();
        // Entries are applied in transactions of at most about CHUNK bytes of effects (each
        // entry whole: the leader's own transaction bounded it), each recording the applied
        // state with its effects: a crash between two leaves the state of a prefix of the log.
        let mut rest = &entries[..];
        while !rest.is_empty() {
            let mut size = 0;
            let take = rest
                .iter()
                .take_while(|e| {
                    let first = size == 0;
                    size += effects_size(e);
                    first || size <= CHUNK
                })
                .count();
            let (chunk, tail) = rest.split_at(take);
            rest = tail;
            self.db
                .transaction(|tx| -> Result<(), Error> {
                    let mut last = None;
                    for e in chunk {
                        match &e.payload {
                            EntryPayload::Blank => {}
                            EntryPayload::Normal(effects) => effects.apply_to(tx)?,
                            EntryPayload::Membership(m) => {
                                membership = StoredMembership::new(Some(e.log_id), m.clone());
                            }
                        }
                        last = Some(e.log_id);
                    }
                    let state = (last, membership.clone());
                    tx.put(&self.meta_key, Self::encoded_applied(&state))?;
                    Ok(())
                })
                .map_err(sm_write)?;
            if let Some(hook) = &self.on_apply {
                for e in chunk {
                    if let EntryPayload::Normal(effects) = &e.payload
                        && !effects.notes.is_empty()
                    {
                        (hook.0)(&effects.notes);
                    }
                }
            }
        }
        Ok(vec![Applied; n])
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<tokio::fs::File>, StorageError<NodeId>> {
        let path = self
            .dir
            .join(format!("snapshot-incoming-{}.tmp", self.unique()));
        if let Some(old) = self.incoming.lock().replace(path.clone()) {
            let _ = std::fs::remove_file(old);
        }
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(|source| snapshot_err(Error::Snapshot { path, source }))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError<NodeId>> {
        // Copied into a file of our own (the one received may be anyone's), checked, loaded.
        let tmp = self
            .dir
            .join(format!("snapshot-install-{}.tmp", self.unique()));
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |source| snapshot_err(Error::Snapshot { path: p, source })
        };
        let mut from = snapshot.into_std().await;
        from.seek(std::io::SeekFrom::Start(0)).map_err(io(&tmp))?;
        {
            let mut to = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            std::io::copy(&mut from, &mut to).map_err(io(&tmp))?;
            to.sync_all().map_err(io(&tmp))?;
        }
        drop(from);
        // The received copy is no longer needed.
        if let Some(incoming) = self.incoming.lock().take() {
            let _ = std::fs::remove_file(incoming);
        }
        let checked = read_header(&tmp).and_then(|m| {
            if m.last_log_id == meta.last_log_id {
                Ok(())
            } else {
                Err(Error::Format(format!(
                    "snapshot {}: its log id {:?} is not the announced {:?}",
                    tmp.display(),
                    m.last_log_id,
                    meta.last_log_id
                )))
            }
        });
        if let Err(e) = checked {
            let _ = std::fs::remove_file(&tmp);
            return Err(snapshot_err(e));
        }
        // Loaded under the name `loading-…` (kept at open while an install is marked), then
        // named as a snapshot: a crash in between never leaves a snapshot newer than the data.
        let loading = self.dir.join(format!("loading-{}", meta.snapshot_id));
        std::fs::rename(&tmp, &loading).map_err(io(&loading))?;
        sync_dir(&self.dir).map_err(io(&self.dir))?;
        self.load(meta, &loading).map_err(sm_write)?;
        // Durable before openraft purges the log behind it (see `build`).
        self.db.sync().map_err(|e| sm_write(e.into()))?;
        self.name_loaded(meta, &loading).map_err(snapshot_err)?;
        if let Some(hook) = &self.on_install {
            (hook.0)(&Bytes::new());
        }
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let current = self.current.lock().clone();
        let Some((meta, path)) = current else {
            return Ok(None);
        };
        let file = tokio::fs::File::open(&path).await.map_err(|source| {
            StorageIOError::read_snapshot(None, &Error::Snapshot { path, source })
        })?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}
