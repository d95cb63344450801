#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! A transaction's staged writes, as effects, remake on another copy of the store exactly the
//! state the transaction made: random transactions (puts, puts with expiry, deletes of present
//! and absent keys, several writes to one key) over a random starting state.

use bytes::Bytes;
use caskdb_raft::Effects;
use caskdb_testkit::rng::Rng;

/// Far in the future: nothing expires while the test runs.
const LATER: u64 = 4_000_000_000_000;

fn state(db: &caskdb::Db) -> Vec<(Bytes, Bytes, Option<u64>)> {
    db.keys()
        .map(|k| {
            let k = k.unwrap();
            let (v, at) = db.get_with_expiry(&k).unwrap().unwrap();
            (k, v, at)
        })
        .collect()
}

#[test]
fn staged_writes_remake_the_transaction_elsewhere() {
    let mut rng = Rng::new(caskdb_testkit::rng::seed("CASKDB_RAFT_SEED"));
    for round in 0..50 {
        let a_dir = tempfile::tempdir().unwrap();
        let b_dir = tempfile::tempdir().unwrap();
        let a = caskdb::Db::open(a_dir.path()).unwrap();
        let b = caskdb::Db::open(b_dir.path()).unwrap();
        let key = |rng: &mut Rng| format!("k{}", rng.below(12));
        // The same starting state on both.
        for _ in 0..rng.below(10) {
            let (k, v) = (key(&mut rng), format!("base{}", rng.below(100)));
            a.put(&k, &v).unwrap();
            b.put(&k, &v).unwrap();
        }
        let staged = a
            .transaction(|tx| {
                for i in 0..1 + rng.below(15) {
                    let k = key(&mut rng);
                    match rng.below(3) {
                        0 => tx.put(&k, format!("v{round}-{i}"))?,
                        1 => tx.put_expiring_at(&k, format!("e{round}-{i}"), LATER + i)?,
                        _ => {
                            tx.delete(&k)?;
                        }
                    }
                }
                Ok::<_, caskdb::Error>(tx.staged())
            })
            .unwrap();
        let effects = Effects::from_staged(staged);
        b.transaction(|tx| effects.apply_to(tx)).unwrap();
        assert_eq!(state(&a), state(&b), "round {round}: {effects:?}");
    }
}
