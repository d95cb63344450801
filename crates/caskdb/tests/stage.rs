#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Staged transactions over an overlay (`Db::stage_over`): a stage sees the writes of the stages
//! before it (point reads, scans, deletions) though the database does not have them; a failed
//! stage leaves the overlay as it was; and staging commands one after another, then making
//! their writes in order, ends where running them as transactions does.

use bytes::Bytes;
use caskdb::{Db, Error, Overlay, StagedWrite, Transaction};
use proptest::prelude::*;

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    (dir, db)
}

/// Makes `staged` in `db`, as a group's node applies a proposal.
fn make(db: &Db, staged: &[StagedWrite]) {
    db.transaction(|tx| {
        for (key, write) in staged {
            match write {
                Some((value, None)) => tx.put(key, value)?,
                Some((value, Some(at))) => tx.put_expiring_at(key, value, *at)?,
                None => {
                    tx.delete(key)?;
                }
            }
        }
        Ok::<_, Error>(())
    })
    .unwrap();
}

fn keys(staged: &[StagedWrite]) -> Vec<Bytes> {
    staged.iter().map(|(k, _)| k.clone()).collect()
}

#[test]
fn a_stage_reads_through_the_writes_of_earlier_stages() {
    let (_dir, db) = open();
    db.put("q:1", "stored").unwrap();
    db.put("gone", "x").unwrap();
    let mut overlay = Overlay::new();
    let (_, first) = db
        .stage_over(&mut overlay, 1, |tx| {
            tx.put("q:2", "staged")?;
            tx.delete("gone")?;
            Ok::<_, Error>(())
        })
        .unwrap();
    assert_eq!(first.len(), 2);
    let (seen, second) = db
        .stage_over(&mut overlay, 2, |tx| {
            let scan: Vec<_> = tx.prefix("q:").collect::<Result<_, _>>()?;
            let gone = tx.get("gone")?;
            // Deleting what only the overlay has is a deletion of its own.
            let deleted = tx.delete("q:2")?;
            Ok::<_, Error>((scan, gone, deleted))
        })
        .unwrap();
    let (scan, gone, deleted) = seen;
    assert_eq!(
        scan,
        vec![
            (Bytes::from_static(b"q:1"), Bytes::from_static(b"stored")),
            (Bytes::from_static(b"q:2"), Bytes::from_static(b"staged")),
        ]
    );
    assert_eq!(gone, None);
    assert!(deleted);
    assert_eq!(second, vec![(Bytes::from_static(b"q:2"), None)]);
    // Nothing reached the database.
    assert_eq!(db.get("q:2").unwrap(), None);
    assert!(db.get("gone").unwrap().is_some());

    // Stage 1 is made: its deletion of "gone" is forgotten, its "q:2" is not (stage 2
    // replaced it).
    make(&db, &first);
    overlay.settle(1, &keys(&first));
    assert_eq!(overlay.len(), 1);
    make(&db, &second);
    overlay.settle(2, &keys(&second));
    assert!(overlay.is_empty());
    assert_eq!(db.get("q:2").unwrap(), None);
    assert_eq!(db.get("gone").unwrap(), None);
}

#[test]
fn a_failed_stage_leaves_the_overlay_as_it_was() {
    let (_dir, db) = open();
    let mut overlay = Overlay::new();
    db.stage_over(&mut overlay, 1, |tx| tx.put("a", "1"))
        .unwrap();
    let failed = db.stage_over(&mut overlay, 2, |tx| {
        tx.put("a", "2")?;
        tx.put("b", "2")?;
        tx.delete("a")?;
        Err::<(), _>(Error::KeyIsEmpty)
    });
    assert!(matches!(failed, Err(Error::KeyIsEmpty)));
    let (seen, staged) = db
        .stage_over(&mut overlay, 3, |tx| {
            Ok::<_, Error>((tx.get("a")?, tx.get("b")?))
        })
        .unwrap();
    assert_eq!(seen, (Some(Bytes::from_static(b"1")), None));
    assert!(staged.is_empty());
    assert_eq!(overlay.len(), 1);
}

/// One command of the model: on key `k` (of four), set, delete, or add to its number.
#[derive(Debug, Clone)]
enum Cmd {
    Set(u8, u8),
    Del(u8),
    Add(u8, u8),
}

fn run(tx: &mut Transaction<'_>, cmd: &Cmd) -> Result<Option<u64>, Error> {
    let key = |k: &u8| format!("k{}", k % 4);
    match cmd {
        Cmd::Set(k, v) => {
            tx.put(key(k), v.to_string())?;
            Ok(None)
        }
        Cmd::Del(k) => Ok(Some(u64::from(tx.delete(key(k))?))),
        Cmd::Add(k, by) => {
            let n: u64 = tx
                .get(key(k))?
                .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
                .unwrap_or(0)
                + u64::from(*by);
            tx.put(key(k), n.to_string())?;
            Ok(Some(n))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Commands staged back to back over the overlay (several in flight), their writes made in
    /// order with the oldest in-flight ones settled as they land, answer and end as the same
    /// commands run as transactions one by one.
    #[test]
    fn staging_in_flight_matches_running_in_order(
        cmds in prop::collection::vec(
            prop_oneof![
                (0u8..8, any::<u8>()).prop_map(|(k, v)| Cmd::Set(k, v)),
                (0u8..8).prop_map(Cmd::Del),
                (0u8..8, any::<u8>()).prop_map(|(k, v)| Cmd::Add(k, v)),
            ],
            1..40,
        ),
        in_flight in 1usize..6,
    ) {
        let (_d1, staged_db) = open();
        let (_d2, plain) = open();
        let mut overlay = Overlay::new();
        let mut flight: std::collections::VecDeque<(u64, Vec<StagedWrite>)> = Default::default();
        for (seq, cmd) in (1u64..).zip(&cmds) {
            let want = plain.transaction(|tx| run(tx, cmd)).unwrap();
            let (got, staged) = staged_db.stage_over(&mut overlay, seq, |tx| run(tx, cmd)).unwrap();
            prop_assert_eq!(got, want);
            flight.push_back((seq, staged));
            while flight.len() > in_flight {
                let (s, w) = flight.pop_front().unwrap();
                make(&staged_db, &w);
                overlay.settle(s, &keys(&w));
            }
        }
        for (s, w) in flight {
            make(&staged_db, &w);
            overlay.settle(s, &keys(&w));
        }
        prop_assert!(overlay.is_empty());
        for k in 0..4 {
            let key = format!("k{k}");
            prop_assert_eq!(staged_db.get(&key).unwrap(), plain.get(&key).unwrap());
        }
    }
}
