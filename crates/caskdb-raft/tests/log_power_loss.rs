#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The Raft log under power loss (the test kit's simulated file system): entries appended and
//! votes saved, the power cut before the N-th change to the disk, for every N over the run; on
//! the disk that is left, every acknowledged entry and the last acknowledged vote are there,
//! nothing later than the one write in flight, and every entry decodes.

use std::path::Path;

use bytes::Bytes;
use caskdb_raft::{Effects, LogStore, Op, TypeConfig};
use caskdb_testkit::rng::Rng;
use caskdb_testkit::simfs::{Fault, Lie, SimVfs, Tear};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};

const ENTRIES: u64 = 24;

fn entry(index: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1 + index / 10, 1), index),
        payload: EntryPayload::Normal(Effects {
            ops: vec![Op::Put {
                key: Bytes::from(format!("key{index}")),
                value: Bytes::from(vec![index as u8; 100 + (index as usize * 37) % 900]),
                expire_at: None,
            }],
            // Some entries carry notes (their bytes follow the ops).
            notes: if index.is_multiple_of(3) {
                Bytes::from(format!("notes of {index}"))
            } else {
                Bytes::new()
            },
        }),
    }
}

fn options(sim: &SimVfs) -> caskdb::Options {
    // Small files: rotation happens during the run too.
    sim.options(caskdb::Options::default().data_file_size(4096))
}

/// What was acknowledged before the power went: the last entry index and the last vote term;
/// and what was in flight when it went.
#[derive(Default, Debug)]
struct Acked {
    last_entry: u64,
    vote: Option<u64>,
    in_flight_entry: Option<u64>,
    in_flight_vote: Option<u64>,
}

async fn run(sim: &SimVfs, dir: &Path) -> Acked {
    let mut acked = Acked::default();
    let Ok(mut log) = LogStore::open_with(dir, options(sim)) else {
        return acked;
    };
    for i in 1..=ENTRIES {
        acked.in_flight_entry = Some(i);
        if log.blocking_append([entry(i)]).await.is_err() {
            return acked;
        }
        acked.last_entry = i;
        acked.in_flight_entry = None;
        if i % 4 == 0 {
            let term = i / 4;
            acked.in_flight_vote = Some(term);
            if log.save_vote(&Vote::new(term, 1)).await.is_err() {
                return acked;
            }
            acked.vote = Some(term);
            acked.in_flight_vote = None;
        }
    }
    acked
}

/// Checks the log left on `after` against what was acknowledged.
async fn check(after: &SimVfs, dir: &Path, acked: &Acked) -> Result<(), String> {
    let mut log =
        LogStore::open_with(dir, options(after)).map_err(|e| format!("reopen failed: {e}"))?;
    let entries = log
        .try_get_log_entries(1..=ENTRIES)
        .await
        .map_err(|e| format!("read failed: {e}"))?;
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    let kept = indexes.len() as u64;
    if indexes != (1..=kept).collect::<Vec<u64>>() {
        return Err(format!("the log is not a prefix: {indexes:?}"));
    }
    let ok_len = kept == acked.last_entry
        || (Some(kept) == acked.in_flight_entry && kept == acked.last_entry + 1);
    if !ok_len {
        return Err(format!("{kept} entries kept, {acked:?}"));
    }
    for e in &entries {
        if format!("{e:?}") != format!("{:?}", entry(e.log_id.index)) {
            return Err(format!("entry {} differs: {e:?}", e.log_id.index));
        }
    }
    let vote = log
        .read_vote()
        .await
        .map_err(|e| format!("vote: {e}"))?
        .map(|v| v.leader_id.term);
    if !(vote == acked.vote || (vote.is_some() && vote == acked.in_flight_vote)) {
        return Err(format!("vote {vote:?}, {acked:?}"));
    }
    Ok(())
}

#[tokio::test]
async fn acknowledged_entries_and_votes_survive_power_loss() {
    let dir = Path::new("/sim/raft-log");
    // How many changes the whole run makes, without a fault.
    let total = {
        let sim = SimVfs::new();
        run(&sim, dir).await;
        sim.calls().1
    };
    assert!(total > 40, "the run makes {total} changes");
    let mut rng = Rng::new(caskdb_testkit::rng::seed("CASKDB_RAFT_SEED"));
    for cut in 0..total {
        let sim = SimVfs::new();
        sim.set_fault(Fault::PowerCut(cut));
        let acked = run(&sim, dir).await;
        let tear = if cut % 2 == 0 {
            Tear::Random
        } else {
            Tear::LoseFirstDirtyPage
        };
        let (after, _) = sim.crash(&mut rng, tear);
        if let Err(e) = check(&after, dir, &acked).await {
            panic!("power cut before change {cut}: {e}");
        }
    }
}

#[tokio::test]
async fn the_check_catches_a_log_whose_fsync_lies() {
    let dir = Path::new("/sim/raft-log");
    let sim = SimVfs::new();
    sim.set_lie(Lie::Fsync);
    let acked = run(&sim, dir).await;
    assert_eq!(acked.last_entry, ENTRIES);
    let (after, _) = sim.crash(&mut Rng::new(1), Tear::None);
    assert!(check(&after, dir, &acked).await.is_err());
}
