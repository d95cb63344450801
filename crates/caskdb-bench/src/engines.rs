//! One adapter per engine, each used the way its own documentation recommends (see
//! docs/BENCHMARKS.md, "What each engine was given").

use std::path::Path;

use anyhow::{Context, Result};

/// The engines this program can run, in the order of its tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    Caskdb,
    Redb,
    Fjall,
    Sled,
    /// Needs the `rocksdb` cargo feature.
    Rocksdb,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Caskdb => "caskdb",
            Kind::Redb => "redb",
            Kind::Fjall => "fjall",
            Kind::Sled => "sled",
            Kind::Rocksdb => "rocksdb",
        }
    }

    /// Every engine compiled into this binary.
    pub fn available() -> Vec<Kind> {
        let mut all = vec![Kind::Caskdb, Kind::Redb, Kind::Fjall, Kind::Sled];
        if cfg!(feature = "rocksdb") {
            all.push(Kind::Rocksdb);
        }
        all
    }
}

/// How writes reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Each put is committed (visible, logged) but not synced; `sync` makes everything durable.
    Buffered,
    /// Each put is on disk before it returns.
    Durable,
}

/// The operations the workloads need. Reads return the value's length after touching its bytes,
/// so that no engine is charged for a copy another one avoids.
pub trait Store: Send + Sync {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    fn get(&self, key: &[u8]) -> Result<Option<usize>>;
    /// Writes many pairs at once (used to load data for reopen, not measured).
    fn put_many(&self, pairs: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()>;
    /// Makes every earlier put durable.
    fn sync(&self) -> Result<()>;
    /// Walks every pair in key order; returns the number of pairs.
    fn scan_all(&self) -> Result<u64>;
    /// Reads up to `n` pairs in key order starting at `start`; returns how many were read.
    fn scan_from(&self, start: &[u8], n: usize) -> Result<usize>;
    /// Runs the engine's own full compaction, if it has one; returns false if it has none.
    fn compact(&mut self) -> Result<bool>;
    /// Closes the store cleanly.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Opens (or creates) `kind`'s store in `dir`.
pub fn open(kind: Kind, dir: &Path, durability: Durability) -> Result<Box<dyn Store>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(match kind {
        Kind::Caskdb => Box::new(caskdb_store::open(dir, durability)?),
        Kind::Redb => Box::new(redb_store::open(dir, durability)?),
        Kind::Fjall => Box::new(fjall_store::open(dir, durability)?),
        Kind::Sled => Box::new(sled_store::open(dir, durability)?),
        #[cfg(feature = "rocksdb")]
        Kind::Rocksdb => Box::new(rocksdb_store::open(dir, durability)?),
        #[cfg(not(feature = "rocksdb"))]
        Kind::Rocksdb => anyhow::bail!(
            "this binary was built without RocksDB; rebuild with `--features rocksdb`"
        ),
    })
}

/// Sums the bytes of every byte touched so the optimizer cannot skip reading values.
#[inline]
fn touch(bytes: &[u8]) -> usize {
    std::hint::black_box(bytes.first().copied());
    std::hint::black_box(bytes.last().copied());
    bytes.len()
}

/// Walks `items`, touching every key and value; returns how many there were.
fn walk<K: AsRef<[u8]>, V: AsRef<[u8]>, E: Into<anyhow::Error>>(
    items: impl Iterator<Item = std::result::Result<(K, V), E>>,
) -> Result<usize> {
    let mut n = 0;
    for item in items {
        let (k, v) = item.map_err(Into::into)?;
        touch(k.as_ref());
        touch(v.as_ref());
        n += 1;
    }
    Ok(n)
}

mod caskdb_store {
    use super::*;
    use caskdb::{Db, Options, SyncPolicy};

    pub struct Caskdb(Db);

    /// Defaults, except the sync policy: `Never` for buffered puts (one `sync` at the end),
    /// `Always` (group commit) for durable ones.
    pub fn open(dir: &Path, durability: Durability) -> Result<Caskdb> {
        let policy = match durability {
            Durability::Buffered => SyncPolicy::Never,
            Durability::Durable => SyncPolicy::Always,
        };
        Ok(Caskdb(Options::default().sync(policy).open(dir)?))
    }

    impl Store for Caskdb {
        fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
            Ok(self.0.put(key, value)?)
        }
        fn get(&self, key: &[u8]) -> Result<Option<usize>> {
            Ok(self.0.get(key)?.map(|v| touch(&v)))
        }
        fn put_many(&self, pairs: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()> {
            let mut batch = self.0.batch();
            for (k, v) in pairs {
                batch.put(k, v);
            }
            Ok(batch.commit()?)
        }
        fn sync(&self) -> Result<()> {
            Ok(self.0.sync()?)
        }
        fn scan_all(&self) -> Result<u64> {
            Ok(walk(self.0.iter())? as u64)
        }
        fn scan_from(&self, start: &[u8], n: usize) -> Result<usize> {
            walk(self.0.range(start..).take(n))
        }
        fn compact(&mut self) -> Result<bool> {
            self.0.merge()?;
            Ok(true)
        }
        fn close(self: Box<Self>) -> Result<()> {
            Ok(self.0.close()?)
        }
    }
}

mod redb_store {
    use super::*;
    use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

    const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

    pub struct Redb {
        db: Database,
        durability: redb::Durability,
    }

    /// Default builder (1 GiB cache). One write transaction per put, as redb needs for a put to
    /// be committed: `Durability::None` for buffered puts (an empty `Immediate` commit is the
    /// final sync), `Immediate` for durable ones.
    pub fn open(dir: &Path, durability: Durability) -> Result<Redb> {
        let db = Database::create(dir.join("redb.db"))?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        let durability = match durability {
            Durability::Buffered => redb::Durability::None,
            Durability::Durable => redb::Durability::Immediate,
        };
        Ok(Redb { db, durability })
    }

    impl Redb {
        fn commit_with(
            &self,
            durability: redb::Durability,
            f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> Result<()>,
        ) -> Result<()> {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(durability)?;
            {
                let mut table = tx.open_table(TABLE)?;
                f(&mut table)?;
            }
            tx.commit()?;
            Ok(())
        }
    }

    impl Store for Redb {
        fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
            self.commit_with(self.durability, |t| {
                t.insert(key, value)?;
                Ok(())
            })
        }
        fn get(&self, key: &[u8]) -> Result<Option<usize>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(TABLE)?;
            Ok(table.get(key)?.map(|v| touch(v.value())))
        }
        fn put_many(&self, pairs: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()> {
            self.commit_with(redb::Durability::Immediate, |t| {
                for (k, v) in pairs {
                    t.insert(k.as_slice(), v.as_slice())?;
                }
                Ok(())
            })
        }
        fn sync(&self) -> Result<()> {
            self.commit_with(redb::Durability::Immediate, |_| Ok(()))
        }
        fn scan_all(&self) -> Result<u64> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(TABLE)?;
            let mut n = 0;
            for item in table.iter()? {
                let (k, v) = item?;
                touch(k.value());
                touch(v.value());
                n += 1;
            }
            Ok(n)
        }
        fn scan_from(&self, start: &[u8], n: usize) -> Result<usize> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(TABLE)?;
            let mut got = 0;
            for item in table.range(start..)?.take(n) {
                let (k, v) = item?;
                touch(k.value());
                touch(v.value());
                got += 1;
            }
            Ok(got)
        }
        fn compact(&mut self) -> Result<bool> {
            // Compaction needs every earlier commit to be durable.
            self.sync()?;
            while self.db.compact()? {}
            Ok(true)
        }
        fn close(self: Box<Self>) -> Result<()> {
            drop(self);
            Ok(())
        }
    }
}

mod fjall_store {
    use super::*;
    use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

    pub struct Fjall {
        db: Database,
        items: Keyspace,
        durable: bool,
    }

    /// Default database and keyspace options. A put goes to the journal's buffer (fjall's
    /// default); durable puts add `persist(SyncData)` after each insert, the journal's fsync.
    pub fn open(dir: &Path, durability: Durability) -> Result<Fjall> {
        let db = Database::builder(dir).open()?;
        let items = db.keyspace("bench", KeyspaceCreateOptions::default)?;
        Ok(Fjall {
            db,
            items,
            durable: durability == Durability::Durable,
        })
    }

    impl Store for Fjall {
        fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
            self.items.insert(key, value)?;
            if self.durable {
                self.db.persist(PersistMode::SyncData)?;
            }
            Ok(())
        }
        fn get(&self, key: &[u8]) -> Result<Option<usize>> {
            Ok(self.items.get(key)?.map(|v| touch(&v)))
        }
        fn put_many(&self, pairs: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()> {
            let mut batch = self.db.batch();
            for (k, v) in pairs {
                batch.insert(&self.items, k, v);
            }
            batch.commit()?;
            self.db.persist(PersistMode::SyncAll)?;
            Ok(())
        }
        fn sync(&self) -> Result<()> {
            Ok(self.db.persist(PersistMode::SyncAll)?)
        }
        fn scan_all(&self) -> Result<u64> {
            Ok(walk(self.items.iter().map(|g| g.into_inner()))? as u64)
        }
        fn scan_from(&self, start: &[u8], n: usize) -> Result<usize> {
            walk(self.items.range(start..).take(n).map(|g| g.into_inner()))
        }
        fn compact(&mut self) -> Result<bool> {
            self.items.rotate_memtable_and_wait()?;
            self.items.major_compact()?;
            Ok(true)
        }
        fn close(self: Box<Self>) -> Result<()> {
            self.db.persist(PersistMode::SyncAll)?;
            Ok(())
        }
    }
}

mod sled_store {
    use super::*;

    pub struct Sled {
        db: sled::Db,
        durable: bool,
    }

    /// Default config. Durable puts add `flush()` after each insert, sled's durability point.
    pub fn open(dir: &Path, durability: Durability) -> Result<Sled> {
        // sled's background threads let go of its directory lock a moment after the handle
        // is dropped: a reopen right after a close retries while the lock is still held.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match sled::Config::new().path(dir).open() {
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other?,
            }
        };
        Ok(Sled {
            db,
            durable: durability == Durability::Durable,
        })
    }

    impl Store for Sled {
        fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
            self.db.insert(key, value)?;
            if self.durable {
                self.db.flush()?;
            }
            Ok(())
        }
        fn get(&self, key: &[u8]) -> Result<Option<usize>> {
            Ok(self.db.get(key)?.map(|v| touch(&v)))
        }
        fn put_many(&self, pairs: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()> {
            let mut batch = sled::Batch::default();
            for (k, v) in pairs {
                batch.insert(k, v);
            }
            self.db.apply_batch(batch)?;
            self.db.flush()?;
            Ok(())
        }
        fn sync(&self) -> Result<()> {
            self.db.flush()?;
            Ok(())
        }
        fn scan_all(&self) -> Result<u64> {
            Ok(walk(self.db.iter())? as u64)
        }
        fn scan_from(&self, start: &[u8], n: usize) -> Result<usize> {
            walk(self.db.range(start..).take(n))
        }
        fn compact(&mut self) -> Result<bool> {
            // sled has no compaction call; it reclaims space in the background.
            self.db.flush()?;
            Ok(false)
        }
        fn close(self: Box<Self>) -> Result<()> {
            self.db.flush()?;
            Ok(())
        }
    }
}

#[cfg(feature = "rocksdb")]
mod rocksdb_store {
    use super::*;
    use rocksdb::{DB, Options, WriteBatch, WriteOptions};

    pub struct Rocks {
        db: DB,
        write: WriteOptions,
    }

    /// Default options plus `create_if_missing`, built without compression libraries (the
    /// values are incompressible). Each put goes through the WAL; durable puts set
    /// `WriteOptions::set_sync(true)` (RocksDB groups concurrent synced writes itself); the
    /// final sync is `flush_wal(true)`.
    pub fn open(dir: &Path, durability: Durability) -> Result<Rocks> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir)?;
        let mut write = WriteOptions::default();
        write.set_sync(durability == Durability::Durable);
        Ok(Rocks { db, write })
    }

    impl Store for Rocks {
        fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
            Ok(self.db.put_opt(key, value, &self.write)?)
        }
        fn get(&self, key: &[u8]) -> Result<Option<usize>> {
            Ok(self.db.get_pinned(key)?.map(|v| touch(&v)))
        }
        fn put_many(&self, pairs: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<()> {
            let mut batch = WriteBatch::default();
            for (k, v) in pairs {
                batch.put(k, v);
            }
            self.db.write(batch)?;
            self.db.flush_wal(true)?;
            Ok(())
        }
        fn sync(&self) -> Result<()> {
            Ok(self.db.flush_wal(true)?)
        }
        fn scan_all(&self) -> Result<u64> {
            // The raw iterator, as RocksDB's docs advise for speed: no copy per item.
            let mut it = self.db.raw_iterator();
            it.seek_to_first();
            let mut n = 0;
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                touch(k);
                touch(v);
                n += 1;
                it.next();
            }
            it.status()?;
            Ok(n)
        }
        fn scan_from(&self, start: &[u8], n: usize) -> Result<usize> {
            let mut it = self.db.raw_iterator();
            it.seek(start);
            let mut got = 0;
            while got < n {
                let (Some(k), Some(v)) = (it.key(), it.value()) else {
                    break;
                };
                touch(k);
                touch(v);
                got += 1;
                it.next();
            }
            it.status()?;
            Ok(got)
        }
        fn compact(&mut self) -> Result<bool> {
            self.db.flush()?;
            self.db.compact_range::<&[u8], &[u8]>(None, None);
            Ok(true)
        }
        fn close(self: Box<Self>) -> Result<()> {
            self.db.flush_wal(true)?;
            Ok(())
        }
    }
}
