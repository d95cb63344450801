#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! GEOADD, GEOPOS, GEODIST and GEOHASH against redis-server (RESP2 and RESP3): the scores
//! (ZRANGE … WITHSCORES shows the 52-bit geohashes), coordinates printed as Redis prints them,
//! distances to four decimals in every unit, geohash strings; options, errors and events; and
//! random positions over the whole valid range.

mod common;

use caskdb_testkit::rng::{Rng, seed};
use common::diff::differential;

#[test]
fn geo_commands_and_errors() {
    differential(|d| {
        d.script("geo");
        d.run(
            r"
            GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania
            ZRANGE Sicily 0 -1 WITHSCORES
            GEOPOS Sicily Palermo Catania NonExisting
            GEODIST Sicily Palermo Catania
            GEODIST Sicily Palermo Catania km
            GEODIST Sicily Palermo Catania MI
            GEODIST Sicily Palermo Catania ft
            GEODIST Sicily Palermo Palermo
            GEODIST Sicily Palermo Nope
            GEODIST Nokey a b
            GEODIST Sicily Palermo Catania parsecs
            GEODIST Sicily Palermo Catania km extra
            GEOHASH Sicily Palermo Catania Nope
            GEOHASH Nokey a
            GEOPOS Nokey a
            GEOADD Sicily NX 13.361389 38.115556 Palermo 1 1 New
            GEOADD Sicily XX CH 13 38 Palermo 2 2 Other
            GEOADD Sicily CH 13 38 Palermo 13.5 38 Palermo
            ZRANGE Sicily 0 -1 WITHSCORES
            GEOADD Sicily NX XX 1 1 a
            GEOADD Sicily 1 1
            GEOADD Sicily 181 0 bad
            GEOADD Sicily 0 85.06 bad
            GEOADD Sicily -180 -85.05112878 corner 180 85.05112878 other
            GEOPOS Sicily corner other
            GEOHASH Sicily corner other
            GEOADD Sicily x 1 bad
            GEOADD Sicily 1 nan bad
            GEOADD Sicily CH CH CH
            SET str x
            GEOADD str 1 1 a
            GEOPOS str a
            GEODIST str a b
            GEOHASH str a
            ZADD plain 1.5 a -3 b 1e300 c
            GEOPOS plain a
            GEOHASH plain a
            GEODIST plain a a
            GEOADD
            GEOPOS
            ",
        );
    });
}

#[test]
fn events_of_geoadd() {
    differential(|d| {
        d.script("geo events");
        d.run(
            r"
            CONFIG SET notify-keyspace-events KEA
            @1 PSUBSCRIBE __key*__:*
            GEOADD g 1 1 a
            @1 read: 4
            GEOADD g 1 1 a
            GEOADD g 2 2 a
            @1 read: 2
            CONFIG SET notify-keyspace-events ''
            ",
        );
    });
}

#[test]
fn random_positions_match_redis() {
    let seed = seed("CASKDB_GEO_SEED");
    differential(|d| {
        let mut rng = Rng::new(seed);
        d.script(&format!(
            "random geo (seed {seed}, CASKDB_GEO_SEED to replay)"
        ));
        let unit = |rng: &mut Rng| rng.next_u64() as f64 / u64::MAX as f64;
        for i in 0..200 {
            let lon = -180.0 + 360.0 * unit(&mut rng);
            let lat = -85.05112878 + 2.0 * 85.05112878 * unit(&mut rng);
            d.eq(&[
                "GEOADD",
                "r",
                &format!("{lon}"),
                &format!("{lat}"),
                &format!("m{i}"),
            ]);
        }
        d.eq(&["ZRANGE", "r", "0", "-1", "WITHSCORES"]);
        for i in (0..200).step_by(7) {
            let (a, b) = (format!("m{i}"), format!("m{}", (i * 13 + 5) % 200));
            d.eq(&["GEOPOS", "r", &a, &b]);
            d.eq(&["GEOHASH", "r", &a, &b]);
            for unit in ["m", "km", "mi", "ft"] {
                d.eq(&["GEODIST", "r", &a, &b, unit]);
            }
        }
    });
}
