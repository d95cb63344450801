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
            GEOSEARCHSTORE d g FROMLONLAT 2 2 BYRADIUS 10 km
            @1 read: 4
            GEORADIUS g 2 2 10 km STORE d
            @1 read: 2
            GEORADIUS g 50 50 10 km STORE d
            @1 read: 2
            GEOSEARCHSTORE d g FROMLONLAT 50 50 BYRADIUS 10 km
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

#[test]
fn searches_and_their_errors() {
    differential(|d| {
        d.script("geosearch");
        d.run(
            r"
            GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania 12.758489 38.788135 edge1 17.241510 38.788135 edge2
            GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD
            GEORADIUS Sicily 15 37 200 km WITHDIST WITHCOORD WITHHASH ASC
            GEORADIUS Sicily 15 37 200 km DESC COUNT 1
            GEORADIUS Sicily 15 37 200 km COUNT 1 ANY
            GEORADIUS Sicily 15 37 500 km
            GEORADIUS Sicily 15 37 500 km WITHDIST DESC
            GEORADIUS Sicily 15 37 0 km
            GEORADIUS_RO Sicily 15 37 200 km WITHDIST
            GEORADIUS_RO Sicily 15 37 200 km STORE dst
            GEORADIUSBYMEMBER Sicily Palermo 200 km WITHDIST
            GEORADIUSBYMEMBER Sicily Nope 200 km
            GEORADIUSBYMEMBER_RO Sicily Palermo 300 mi WITHCOORD
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC
            GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 400 400 km ASC WITHDIST
            GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km DESC WITHCOORD WITHHASH
            GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 4000 4000 km COUNT 3
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km COUNT 2 ANY
            GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC
            ZRANGE dst 0 -1 WITHSCORES
            GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST
            ZRANGE dst 0 -1 WITHSCORES
            GEORADIUS Sicily 15 37 200 km STORE dst2
            ZRANGE dst2 0 -1 WITHSCORES
            GEORADIUS Sicily 15 37 200 km STOREDIST dst2
            ZRANGE dst2 0 -1 WITHSCORES
            GEOSEARCHSTORE dst Sicily FROMLONLAT 0 0 BYRADIUS 1 m
            EXISTS dst
            GEOSEARCHSTORE dst nokey FROMLONLAT 0 0 BYRADIUS 1 m
            GEOSEARCH nokey FROMLONLAT 0 0 BYRADIUS 1 m
            GEORADIUS nokey 0 0 1 m STORE x
            GEORADIUSBYMEMBER nokey a 1 m
            GEOSEARCH Sicily FROMLONLAT 15 37
            GEOSEARCH Sicily BYRADIUS 10 km
            GEOSEARCH Sicily FROMLONLAT 15 37 FROMMEMBER Palermo BYRADIUS 1 km
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km BYBOX 1 1 km
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km ANY
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km COUNT 0
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km COUNT x
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS -1 km
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS x km
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 parsec
            GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX -1 1 km
            GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX x 1 km
            GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 1 y km
            GEOSEARCH Sicily FROMLONLAT 200 37 BYRADIUS 1 km
            GEOSEARCH Sicily FROMMEMBER Nope BYRADIUS 1 km
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km STORE x
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 1 km STOREDIST
            GEOSEARCHSTORE dst Sicily FROMLONLAT 15 37 BYRADIUS 1 km WITHDIST
            GEORADIUS Sicily 15 37 200 km STORE dst WITHCOORD
            GEORADIUS_RO Sicily 15 37 200 km STOREDIST dst
            GEORADIUS Sicily 15 37 200 km BOGUS
            GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km FROMLONLAT 1 1
            SET str x
            GEOSEARCH str FROMLONLAT 0 0 BYRADIUS 1 m
            GEORADIUS str 0 0 1 m
            ",
        );
    });
}

#[test]
fn random_searches_match_redis() {
    let seed = seed("CASKDB_GEO_SEARCH_SEED");
    differential(|d| {
        let mut rng = Rng::new(seed);
        d.script(&format!(
            "random geosearch (seed {seed}, CASKDB_GEO_SEARCH_SEED to replay)"
        ));
        let unit = |rng: &mut Rng| rng.next_u64() as f64 / u64::MAX as f64;
        // Points clustered around a few centres, at every latitude, and some anywhere.
        let centres = [
            (2.35, 48.85),
            (-74.0, 40.7),
            (151.2, -33.87),
            (179.9, 70.0),
            (0.0, -84.0),
        ];
        for i in 0..400 {
            let (lon, lat) = if i % 5 == 0 {
                (
                    -180.0 + 360.0 * unit(&mut rng),
                    -85.0 + 170.0 * unit(&mut rng),
                )
            } else {
                let (clon, clat) = centres[i % centres.len()];
                let lon = (clon + (unit(&mut rng) - 0.5) * 4.0).clamp(-180.0, 180.0);
                let lat = (clat + (unit(&mut rng) - 0.5) * 2.0).clamp(-85.0, 85.0);
                (lon, lat)
            };
            d.eq(&[
                "GEOADD",
                "r",
                &format!("{lon}"),
                &format!("{lat}"),
                &format!("p{i}"),
            ]);
        }
        for q in 0..120 {
            let (clon, clat) = centres[q % centres.len()];
            let lon = format!("{}", clon + (unit(&mut rng) - 0.5));
            let lat = format!("{}", (clat + (unit(&mut rng) - 0.5)).clamp(-85.0, 85.0));
            let r = format!(
                "{}",
                [1.0, 20.0, 100.0, 400.0, 3000.0][rng.index(5)] * unit(&mut rng)
            );
            let unit_name = *rng.pick(&["m", "km", "mi", "ft"]);
            let r = if unit_name == "m" || unit_name == "ft" {
                format!("{}", r.parse::<f64>().unwrap() * 1000.0)
            } else {
                r
            };
            let mut args: Vec<String> = vec!["GEOSEARCH".into(), "r".into()];
            if rng.chance(1, 4) {
                args.extend(["FROMMEMBER".into(), format!("p{}", rng.index(400))]);
            } else {
                args.extend(["FROMLONLAT".into(), lon.clone(), lat.clone()]);
            }
            if rng.chance(1, 2) {
                args.extend(["BYRADIUS".into(), r.clone(), unit_name.into()]);
            } else {
                args.extend([
                    "BYBOX".into(),
                    r.clone(),
                    format!("{}", r.parse::<f64>().unwrap() / 2.0),
                    unit_name.into(),
                ]);
            }
            args.extend(["WITHDIST".into(), "WITHHASH".into(), "WITHCOORD".into()]);
            match rng.below(4) {
                0 => args.push("ASC".into()),
                1 => args.push("DESC".into()),
                2 => args.extend(["COUNT".into(), format!("{}", 1 + rng.index(10))]),
                _ => {}
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            d.eq(&refs);
            d.eq(&["GEORADIUS_RO", "r", &lon, &lat, &r, unit_name, "WITHDIST"]);
        }
    });
}
