//! Geo commands on sorted sets, as Redis 7.0 stores them: a member's score is the 52-bit
//! interleaved geohash of its position (26 bits of latitude in the even bits, 26 of longitude
//! in the odd ones, over -180..180 and -85.05112878..85.05112878), so ZRANGE and the other
//! sorted-set commands see what they see on Redis. GEOADD (NX/XX/CH, through ZADD), GEOPOS,
//! GEODIST (m, km, ft, mi; haversine on Redis's Earth radius), GEOHASH (the standard 11
//! characters), and the searches: GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and
//! their _RO forms, which look in the geohash cell around the centre and its eight neighbours
//! at a precision chosen from the radius, exactly as Redis does, so the same members come back
//! in the same order.

use std::ops::Bound;

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::spec::flags::{FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::zsets;
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind, score_bits};
use crate::parse::parse_i64;

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
    /// Queries a geospatial index for members inside an area of a box or a circle.
    "geosearch", -7, READ_TX, 1, 1, 1 => geosearch;
    /// Queries a geospatial index for members inside an area of a box or a circle, optionally
    /// stores the result.
    "geosearchstore", -8, WRITE, 1, 2, 1 => geosearchstore;
    /// Queries a geospatial index for members within a distance from a coordinate, optionally
    /// stores the result.
    "georadius", -6, WRITE, 1, 1, 1 => georadius;
    /// Returns members from a geospatial index that are within a distance from a coordinate.
    "georadius_ro", -6, READ_TX, 1, 1, 1 => georadius_ro;
    /// Queries a geospatial index for members within a distance from a member, optionally
    /// stores the result.
    "georadiusbymember", -5, WRITE, 1, 1, 1 => georadiusbymember;
    /// Returns members from a geospatial index that are within a distance from a member.
    "georadiusbymember_ro", -5, READ_TX, 1, 1, 1 => georadiusbymember_ro;
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
    encode_step(lon, lat, lon_range, lat_range, STEP)
}

/// [`encode`] with `step` bits per coordinate.
fn encode_step(lon: f64, lat: f64, lon_range: (f64, f64), lat_range: (f64, f64), step: u32) -> u64 {
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_range.0) / (lat_range.1 - lat_range.0) * scale;
    let lon_off = (lon - lon_range.0) / (lon_range.1 - lon_range.0) * scale;
    // (As C converts a double to uint32: truncation.)
    spread(lat_off as u32) | (spread(lon_off as u32) << 1)
}

/// A geohash cell of `step` bits per coordinate (step 0: none, as Redis's zeroed neighbours).
#[derive(Clone, Copy, PartialEq)]
struct Cell {
    bits: u64,
    step: u32,
}

/// A cell's bounds: (lon min, lon max, lat min, lat max).
fn cell_area(c: Cell) -> (f64, f64, f64, f64) {
    let scale = (1u64 << c.step) as f64;
    let (ilat, ilon) = (f64::from(squash(c.bits)), f64::from(squash(c.bits >> 1)));
    (
        LONG_MIN + (ilon * 1.0 / scale) * (LONG_MAX - LONG_MIN),
        LONG_MIN + ((ilon + 1.0) * 1.0 / scale) * (LONG_MAX - LONG_MIN),
        LAT_MIN + (ilat * 1.0 / scale) * (LAT_MAX - LAT_MIN),
        LAT_MIN + ((ilat + 1.0) * 1.0 / scale) * (LAT_MAX - LAT_MIN),
    )
}

/// The cell next to `c`: `dx` east (longitude, odd bits), `dy` north (latitude, even bits).
fn moved(c: Cell, dx: i8, dy: i8) -> Cell {
    let shift = 64 - c.step * 2;
    let mut bits = c.bits;
    for (d, own, other) in [
        (dx, 0xaaaa_aaaa_aaaa_aaaau64, 0x5555_5555_5555_5555u64),
        (dy, 0x5555_5555_5555_5555, 0xaaaa_aaaa_aaaa_aaaa),
    ] {
        if d == 0 {
            continue;
        }
        let mut v = bits & own;
        let keep = bits & other;
        let zz = other >> shift;
        if d > 0 {
            v = v.wrapping_add(zz + 1);
        } else {
            v |= zz;
            v = v.wrapping_sub(zz + 1);
        }
        v &= own >> shift;
        bits = v | keep;
    }
    Cell { bits, step: c.step }
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

/// Distance in meters along a meridian between two latitudes.
fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (lat2 * D_R - lat1 * D_R).abs()
}

/// Haversine distance in meters, as Redis computes it.
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (lon1 * D_R, lon2 * D_R);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
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
        let (lon, lat) = lon_lat(&triple[0], &triple[1])?;
        let bits = encode(lon, lat, (LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX));
        zadd.push(Bytes::from(bits.to_string()));
        zadd.push(triple[2].clone());
    }
    zsets::zadd(ctx, &zadd)
}

fn geopos(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let found = zsets::scores(ctx, &args[1], &args[2..])?;
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

/// Meters per `arg` unit (m, km, ft, mi).
fn unit(arg: &[u8]) -> Result<f64, CmdError> {
    Ok(match arg.to_ascii_lowercase().as_slice() {
        b"m" => 1.0,
        b"km" => 1000.0,
        b"ft" => 0.3048,
        b"mi" => 1609.34,
        _ => {
            return Err(Frame::err("unsupported unit provided. please use M, KM, FT, MI").into());
        }
    })
}

fn geodist(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let to_meter = match args.len() {
        5 => unit(&args[4])?,
        4 => 1.0,
        _ => return Err(syntax_error()),
    };
    let found = zsets::scores(ctx, &args[1], &args[2..4])?;
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
    let found = zsets::scores(ctx, &args[1], &args[2..])?;
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

// ---------------------------------------------------------------------------------------------
// Searches.

/// What a search covers: a circle (`radius`) or a box (`width` × `height`), in units of
/// `conversion` meters, around (`lon`, `lat`).
#[derive(Clone, Copy, Default)]
struct Shape {
    lon: f64,
    lat: f64,
    circle: bool,
    radius: f64,
    width: f64,
    height: f64,
    conversion: f64,
}

/// A member found, where it is and how far from the centre (in meters).
struct Found {
    member: Bytes,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// Whether the point of `score` is inside `shape`: its position and distance if so.
fn within(shape: &Shape, score: f64) -> Option<(f64, f64, f64)> {
    let (lon, lat) = decode(score);
    if shape.circle {
        let d = distance(shape.lon, shape.lat, lon, lat);
        return (d <= shape.radius * shape.conversion).then_some((lon, lat, d));
    }
    let (w, h) = (
        shape.width * shape.conversion,
        shape.height * shape.conversion,
    );
    if lat_distance(lat, shape.lat) > h / 2.0 {
        return None;
    }
    if distance(lon, lat, shape.lon, lat) > w / 2.0 {
        return None;
    }
    Some((lon, lat, distance(shape.lon, shape.lat, lon, lat)))
}

/// Redis's precision for a search of `range` meters at latitude `lat`.
fn steps_for(range: f64, lat: f64) -> u32 {
    const MERCATOR_MAX: f64 = 20_037_726.37;
    if range == 0.0 {
        return 26;
    }
    let (mut range, mut step) = (range, 1i32);
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u32
}

/// The cells to look in, in Redis's order: the centre's, then north, south, east, west,
/// north-east, north-west, south-east, south-west (those that cannot hold a match zeroed).
fn cells(shape: &Shape) -> [Cell; 9] {
    let (h, w) = if shape.circle {
        (shape.radius, shape.radius)
    } else {
        (shape.height / 2.0, shape.width / 2.0)
    };
    let (h, w) = (shape.conversion * h, shape.conversion * w);
    let lat_delta = (h / EARTH_RADIUS_IN_METERS) / D_R;
    let top = (w / EARTH_RADIUS_IN_METERS / ((shape.lat + lat_delta) * D_R).cos()) / D_R;
    let bottom = (w / EARTH_RADIUS_IN_METERS / ((shape.lat - lat_delta) * D_R).cos()) / D_R;
    let south = shape.lat < 0.0;
    let min_lon = shape.lon - if south { bottom } else { top };
    let max_lon = shape.lon + if south { bottom } else { top };
    let (min_lat, max_lat) = (shape.lat - lat_delta, shape.lat + lat_delta);
    let radius = if shape.circle {
        shape.radius
    } else {
        ((shape.width / 2.0) * (shape.width / 2.0) + (shape.height / 2.0) * (shape.height / 2.0))
            .sqrt()
    } * shape.conversion;
    let mut step = steps_for(radius, shape.lat);
    let around = |step: u32| {
        let bits = encode_step(
            shape.lon,
            shape.lat,
            (LONG_MIN, LONG_MAX),
            (LAT_MIN, LAT_MAX),
            step,
        );
        let c = Cell { bits, step };
        // centre, N, S, E, W, NE, NW, SE, SW
        [
            c,
            moved(c, 0, 1),
            moved(c, 0, -1),
            moved(c, 1, 0),
            moved(c, -1, 0),
            moved(c, 1, 1),
            moved(c, -1, 1),
            moved(c, 1, -1),
            moved(c, -1, -1),
        ]
    };
    let mut n = around(step);
    let too_coarse = cell_area(n[1]).3 < max_lat
        || cell_area(n[2]).2 > min_lat
        || cell_area(n[3]).1 < max_lon
        || cell_area(n[4]).0 > min_lon;
    if step > 1 && too_coarse {
        step -= 1;
        n = around(step);
    }
    if step >= 2 {
        let (lon_lo, lon_hi, lat_lo, lat_hi) = cell_area(n[0]);
        let zero = Cell { bits: 0, step: 0 };
        let mut clear = |which: [usize; 3]| {
            for i in which {
                n[i] = zero;
            }
        };
        if lat_lo < min_lat {
            clear([2, 8, 7]);
        }
        if lat_hi > max_lat {
            clear([1, 5, 6]);
        }
        if lon_lo < min_lon {
            clear([4, 8, 6]);
        }
        if lon_hi > max_lon {
            clear([3, 7, 5]);
        }
    }
    n
}

/// The members of zset `m` inside `shape`, in the order Redis finds them; at most `limit`
/// (0: all).
fn search(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    shape: &Shape,
    limit: usize,
) -> Result<Vec<Found>, CmdError> {
    let cells = cells(shape);
    let mut found = Vec::new();
    let mut last = 0;
    for (i, c) in cells.iter().enumerate() {
        if c.bits == 0 && c.step == 0 {
            continue;
        }
        // Huge radii make neighbours repeat: a cell equal to the last one searched is skipped
        // (as in Redis, which does not compare with the centre's).
        if last != 0 && cells[last] == *c {
            continue;
        }
        if limit != 0 && found.len() >= limit {
            break;
        }
        let shift = 52 - c.step * 2;
        let (min, max) = (c.bits << shift, (c.bits + 1) << shift);
        let lo = score_bits(min as f64).to_be_bytes();
        let hi = score_bits(max as f64).to_be_bytes();
        let entries = ctx.members(
            m,
            kind::SCORE,
            Bound::Included(&lo[..]),
            Bound::Excluded(&hi[..]),
            usize::MAX,
            false,
        )?;
        for (rest, _) in entries {
            let (member, score) = zsets::split_entry(&rest);
            if let Some((lon, lat, dist)) = within(shape, score) {
                found.push(Found {
                    member,
                    score,
                    lon,
                    lat,
                    dist,
                });
            }
            if limit != 0 && found.len() >= limit {
                break;
            }
        }
        last = i;
    }
    Ok(found)
}

/// A distance and its unit: (value, meters per unit).
fn distance_arg(value: &[u8], unit_arg: &[u8]) -> Result<(f64, f64), CmdError> {
    let d = zsets::parse_double(value, "need numeric radius")?;
    if d < 0.0 {
        return Err(Frame::err("radius cannot be negative").into());
    }
    Ok((d, unit(unit_arg)?))
}

/// The position of `member` in `m`.
fn member_position(ctx: &mut Ctx<'_, '_>, m: &Meta, member: &[u8]) -> Result<(f64, f64), CmdError> {
    match zsets::score_of(ctx, m, member)? {
        Some(score) => Ok(decode(score)),
        None => Err(Frame::err("could not decode requested zset member").into()),
    }
}

/// A longitude and a latitude argument, within the ranges a geohash covers.
fn lon_lat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), CmdError> {
    let lon = zsets::parse_double(lon, "value is not a valid float")?;
    let lat = zsets::parse_double(lat, "value is not a valid float")?;
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(
            Frame::err(format!("invalid longitude,latitude pair {lon:.6},{lat:.6}")).into(),
        );
    }
    Ok((lon, lat))
}

#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// GEORADIUS key lon lat radius unit …
    RadiusCoords,
    /// GEORADIUSBYMEMBER key member radius unit …
    RadiusMember,
    /// GEOSEARCH key …
    Search,
    /// GEOSEARCHSTORE dest src …
    SearchStore,
}

fn geosearch(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::Search, false)
}

fn geosearchstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::SearchStore, false)
}

fn georadius(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusCoords, false)
}

fn georadius_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusCoords, true)
}

fn georadiusbymember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusMember, false)
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    radius_generic(ctx, args, Form::RadiusMember, true)
}

/// The options after the fixed arguments.
#[derive(Default)]
struct Options {
    store: Option<Bytes>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoord: bool,
    any: bool,
    from: bool,
    by: bool,
    /// `Some(true)`: ascending.
    sort: Option<bool>,
    count: i64,
}

/// Redis's `georadiusGeneric`: the checks in its order, the search, the reply or the store.
fn radius_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], form: Form, no_store: bool) -> CmdResult {
    let search_form = matches!(form, Form::Search | Form::SearchStore);
    let src = if form == Form::SearchStore {
        &args[2]
    } else {
        &args[1]
    };
    let zset = ctx.coll(src, Type::ZSet)?;
    let mut shape = Shape::default();
    let base = match form {
        Form::RadiusCoords => {
            (shape.lon, shape.lat) = lon_lat(&args[2], &args[3])?;
            (shape.radius, shape.conversion) = distance_arg(&args[4], &args[5])?;
            shape.circle = true;
            6
        }
        Form::RadiusMember => {
            if let Some(m) = &zset {
                (shape.lon, shape.lat) = member_position(ctx, m, &args[2])?;
                (shape.radius, shape.conversion) = distance_arg(&args[3], &args[4])?;
                shape.circle = true;
            }
            5
        }
        Form::Search => 2,
        Form::SearchStore => 3,
    };
    let mut o = Options {
        store: (form == Form::SearchStore).then(|| args[1].clone()),
        ..Options::default()
    };
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let rest = &args[base.min(args.len())..];
    let mut i = 0;
    while i < rest.len() {
        let a = &rest[i];
        let left = rest.len() - i - 1;
        if is(a, "withdist") {
            o.withdist = true;
        } else if is(a, "withhash") {
            o.withhash = true;
        } else if is(a, "withcoord") {
            o.withcoord = true;
        } else if is(a, "any") {
            o.any = true;
        } else if is(a, "asc") {
            o.sort = Some(true);
        } else if is(a, "desc") {
            o.sort = Some(false);
        } else if is(a, "count") && left >= 1 {
            o.count = parse_i64(&rest[i + 1])
                .ok_or_else(|| Frame::err("value is not an integer or out of range"))?;
            if o.count <= 0 {
                return Err(Frame::err("COUNT must be > 0").into());
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && left >= 1 && !no_store && !search_form {
            o.store = Some(rest[i + 1].clone());
            o.storedist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && form == Form::SearchStore {
            o.storedist = true;
        } else if is(a, "frommember") && left >= 1 && search_form && !fromloc {
            if let Some(m) = &zset {
                (shape.lon, shape.lat) = member_position(ctx, m, &rest[i + 1])?;
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && left >= 2 && search_form && !frommember {
            (shape.lon, shape.lat) = lon_lat(&rest[i + 1], &rest[i + 2])?;
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && left >= 2 && search_form && !bybox {
            (shape.radius, shape.conversion) = distance_arg(&rest[i + 1], &rest[i + 2])?;
            shape.circle = true;
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && left >= 3 && search_form && !byradius {
            let w = zsets::parse_double(&rest[i + 1], "need numeric width")?;
            let h = zsets::parse_double(&rest[i + 2], "need numeric height")?;
            if h < 0.0 || w < 0.0 {
                return Err(Frame::err("height or width cannot be negative").into());
            }
            let u = unit(&rest[i + 3])?;
            (shape.width, shape.height, shape.conversion) = (w, h, u);
            shape.circle = false;
            bybox = true;
            i += 3;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    o.from = frommember || fromloc;
    o.by = byradius || bybox;
    check_options(&o, form, &args[0])?;
    let Some(m) = zset else {
        if let Some(key) = &o.store {
            ctx.remove_counting(key)?;
            return Ok(Frame::Integer(0));
        }
        return Ok(Frame::Array(Vec::new()));
    };
    if o.count != 0 && o.sort.is_none() && !o.any {
        o.sort = Some(true);
    }
    let limit = if o.any { o.count as usize } else { 0 };
    let mut found = search(ctx, &m, &shape, limit)?;
    if let Some(asc) = o.sort {
        found.sort_by(|a, b| {
            let ord = a
                .dist
                .partial_cmp(&b.dist)
                .unwrap_or(std::cmp::Ordering::Equal);
            if asc { ord } else { ord.reverse() }
        });
    }
    if o.count != 0 {
        found.truncate(o.count as usize);
    }
    if let Some(key) = o.store {
        let items = found
            .into_iter()
            .map(|f| {
                let score = if o.storedist {
                    f.dist / shape.conversion
                } else {
                    f.score
                };
                (f.member, score)
            })
            .collect();
        let n = zsets::store_zset(ctx, &key, items)?;
        return Ok(Frame::Integer(n as i64));
    }
    let with = o.withdist || o.withhash || o.withcoord;
    let mut out = Vec::with_capacity(found.len());
    for f in found {
        if !with {
            out.push(Frame::Bulk(f.member));
            continue;
        }
        let mut item = vec![Frame::Bulk(f.member)];
        if o.withdist {
            item.push(Frame::bulk(fixed4(f.dist / shape.conversion)));
        }
        if o.withhash {
            item.push(Frame::Integer(f.score as i64));
        }
        if o.withcoord {
            item.push(Frame::Array(vec![
                coordinate(ctx, f.lon),
                coordinate(ctx, f.lat),
            ]));
        }
        out.push(Frame::Array(item));
    }
    Ok(Frame::Array(out))
}

/// The checks Redis makes once the options are read.
fn check_options(o: &Options, form: Form, name: &[u8]) -> Result<(), CmdError> {
    if o.store.is_some() && (o.withdist || o.withhash || o.withcoord) {
        let what = if form == Form::SearchStore {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(Frame::err(format!(
            "{what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        ))
        .into());
    }
    let name = String::from_utf8_lossy(name);
    if matches!(form, Form::Search | Form::SearchStore) {
        if !o.from {
            return Err(Frame::err(format!(
                "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
            ))
            .into());
        }
        if !o.by {
            return Err(Frame::err(format!(
                "exactly one of BYRADIUS and BYBOX can be specified for {name}"
            ))
            .into());
        }
    }
    if o.any && o.count == 0 {
        return Err(Frame::err("the ANY argument requires COUNT argument").into());
    }
    Ok(())
}
