//! Geo commands on sorted sets, as Redis 7.0 stores them: a member's score is the 52-bit
//! interleaved geohash of its position (26 bits of latitude in the even bits, 26 of longitude
//! in the odd ones, over -180..180 and -85.05112878..85.05112878), so ZRANGE and the other
//! sorted-set commands see what they see on Redis. GEOADD (NX/XX/CH, through ZADD), GEOPOS,
//! GEODIST (m, km, ft, mi; haversine on Redis's Earth radius), GEOHASH (the standard 11
//! characters). GEOSEARCH and GEORADIUS are not here yet.

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdResult, syntax_error};
use super::spec::flags::{FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::zsets;
use crate::frame::Frame;
use crate::keyspace::Type;

pub(super) static COMMANDS: &[Spec] = commands! {
    group "geo";
    /// Adds one or more members to a geospatial index. The key is created if it doesn't exist.
    "geoadd", -5, WRITE, 1, 1, 1 => geoadd;
    /// Returns the longitude and latitude of members from a geospatial index.
    "geopos", -2, READ_TX, 1, 1, 1 => geopos;
    /// Returns the distance between two members of a geospatial index.
    "geodist", -4, READ_TX, 1, 1, 1 => geodist;
    /// Returns members from a geospatial index as geohash strings.
    "geohash", -2, READ_TX | FAST, 1, 1, 1 => geohash;
};

const LONG_MAX: f64 = 180.0;
const LONG_MIN: f64 = -180.0;
const LAT_MAX: f64 = 85.051_128_78;
const LAT_MIN: f64 = -85.051_128_78;
const STEP: u32 = 26;
const EARTH_RADIUS_IN_METERS: f64 = 6_372_797.560_856;
const D_R: f64 = std::f64::consts::PI / 180.0;

/// Spreads the 32 bits of `v` over the even bits.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

/// The even bits of `v`, packed.
fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// The geohash of a position within the ranges given (latitude in the even bits).
fn encode(lon: f64, lat: f64, lon_range: (f64, f64), lat_range: (f64, f64)) -> u64 {
    let lat_off = (lat - lat_range.0) / (lat_range.1 - lat_range.0) * f64::from(1u32 << STEP);
    let lon_off = (lon - lon_range.0) / (lon_range.1 - lon_range.0) * f64::from(1u32 << STEP);
    // (As C converts a double to uint32: truncation.)
    spread(lat_off as u32) | (spread(lon_off as u32) << 1)
}

/// The centre of the cell a score names, clamped to the valid ranges.
fn decode(score: f64) -> (f64, f64) {
    let bits = score as u64;
    let (ilat, ilon) = (squash(bits), squash(bits >> 1));
    let scale = f64::from(1u32 << STEP);
    let lat_min = LAT_MIN + (f64::from(ilat) * 1.0 / scale) * (LAT_MAX - LAT_MIN);
    let lat_max = LAT_MIN + ((f64::from(ilat) + 1.0) * 1.0 / scale) * (LAT_MAX - LAT_MIN);
    let lon_min = LONG_MIN + (f64::from(ilon) * 1.0 / scale) * (LONG_MAX - LONG_MIN);
    let lon_max = LONG_MIN + ((f64::from(ilon) + 1.0) * 1.0 / scale) * (LONG_MAX - LONG_MIN);
    let lon = ((lon_min + lon_max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((lat_min + lat_max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// Haversine distance in meters, as Redis computes it.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (lon1 * D_R, lon2 * D_R);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return EARTH_RADIUS_IN_METERS * (lat2 * D_R - lat1 * D_R).abs();
    }
    let (lat1r, lat2r) = (lat1 * D_R, lat2 * D_R);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// Redis's `%.17Lf` with trailing zeros (and a trailing dot) removed.
fn human(v: f64) -> String {
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" { "0".into() } else { s }
}

/// A distance with four decimals, rounded half to even as `llrint` does.
fn fixed4(d: f64) -> String {
    let n = (d * 10_000.0).round_ties_even() as i64;
    let sign = if n < 0 { "-" } else { "" };
    let n = n.unsigned_abs();
    format!("{sign}{}.{:04}", n / 10_000, n % 10_000)
}

fn coordinate(ctx: &Ctx<'_, '_>, v: f64) -> Frame {
    if ctx.conn.resp3 {
        Frame::DoubleText(human(v))
    } else {
        Frame::bulk(human(v))
    }
}

fn geoadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut first = 2;
    let (mut nx, mut xx) = (false, false);
    while first < args.len() {
        let a = &args[first];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        first += 1;
    }
    if !(args.len() - first).is_multiple_of(3) || (xx && nx) {
        return Err(syntax_error());
    }
    // ZADD key [options] score member …, the score the position's geohash.
    let mut zadd: Vec<Bytes> = vec![Bytes::from_static(b"zadd")];
    zadd.extend(args[1..first].iter().cloned());
    for triple in args[first..].chunks(3) {
        let lon = zsets::parse_double(&triple[0], "value is not a valid float")?;
        let lat = zsets::parse_double(&triple[1], "value is not a valid float")?;
        if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
            return Err(
                Frame::err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")).into(),
            );
        }
        let bits = encode(lon, lat, (LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX));
        zadd.push(Bytes::from(bits.to_string()));
        zadd.push(triple[2].clone());
    }
    zsets::zadd(ctx, &zadd)
}

/// The score of each member of zset `key` (`None` for a missing member or key).
fn scores(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    members: &[Bytes],
) -> Result<Vec<Option<f64>>, super::reply::CmdError> {
    let m = ctx.coll(key, Type::ZSet)?;
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        out.push(match &m {
            Some(m) => zsets::score_of(ctx, m, member)?,
            None => None,
        });
    }
    Ok(out)
}

fn geopos(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let found = scores(ctx, &args[1], &args[2..])?;
    Ok(Frame::Array(
        found
            .into_iter()
            .map(|s| match s {
                None => Frame::NullArray,
                Some(score) => {
                    let (lon, lat) = decode(score);
                    Frame::Array(vec![coordinate(ctx, lon), coordinate(ctx, lat)])
                }
            })
            .collect(),
    ))
}

fn unit(arg: &[u8]) -> Option<f64> {
    match arg.to_ascii_lowercase().as_slice() {
        b"m" => Some(1.0),
        b"km" => Some(1000.0),
        b"ft" => Some(0.3048),
        b"mi" => Some(1609.34),
        _ => None,
    }
}

fn geodist(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let to_meter = match args.len() {
        5 => unit(&args[4])
            .ok_or_else(|| Frame::err("unsupported unit provided. please use M, KM, FT, MI"))?,
        4 => 1.0,
        _ => return Err(syntax_error()),
    };
    let found = scores(ctx, &args[1], &args[2..4])?;
    let (Some(a), Some(b)) = (found[0], found[1]) else {
        return Ok(Frame::Null);
    };
    let ((lon1, lat1), (lon2, lat2)) = (decode(a), decode(b));
    Ok(Frame::bulk(fixed4(
        distance(lon1, lat1, lon2, lat2) / to_meter,
    )))
}

fn geohash(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let found = scores(ctx, &args[1], &args[2..])?;
    Ok(Frame::Array(
        found
            .into_iter()
            .map(|s| match s {
                None => Frame::Null,
                Some(score) => {
                    // Decoded, then encoded again over the standard ranges (-90..90).
                    let (lon, lat) = decode(score);
                    let bits = encode(lon, lat, (-180.0, 180.0), (-90.0, 90.0));
                    let text: Vec<u8> = (0..11)
                        .map(|i| {
                            let idx = if i == 10 {
                                0
                            } else {
                                (bits >> (52 - (i + 1) * 5)) & 0x1f
                            };
                            ALPHABET[idx as usize]
                        })
                        .collect();
                    Frame::Bulk(Bytes::from(text))
                }
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_squash_are_inverse() {
        for v in [0u32, 1, 0xffff_ffff, 0x1234_5678, 1 << 25] {
            assert_eq!(squash(spread(v)), v);
        }
    }

    #[test]
    fn formats_like_redis() {
        assert_eq!(fixed4(166274.15156960033), "166274.1516");
        assert_eq!(fixed4(0.0), "0.0000");
        assert_eq!(human(13.361389338970184), "13.36138933897018433");
        assert_eq!(human(15.0), "15");
    }
}
