//! Parsers for the command-line values every binary shares (`X,Y`, `W,H`,
//! `MIN..MAX`, the radius mode).

use peerworld_protocol::{HEARTBEAT_MS, RadiusMode, World};

/// `--radius-mode`: fixed, or adaptive (shrinks in crowds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RadiusModeArg {
    /// Always the configured radius.
    Fixed,
    /// Shrinks in crowds to keep the neighbours in range within
    /// `--neighbours`, grows back to the configured radius.
    Adaptive,
}

impl From<RadiusModeArg> for RadiusMode {
    fn from(a: RadiusModeArg) -> Self {
        match a {
            RadiusModeArg::Fixed => RadiusMode::Fixed,
            RadiusModeArg::Adaptive => RadiusMode::Adaptive,
        }
    }
}

/// Two whole numbers `A..B` (`form` names them in the error).
pub fn parse_range(s: &str, form: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected {form}, got {s:?}"))?;
    let parse = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| format!("{x:?} is not a whole number"))
    };
    Ok((parse(a)?, parse(b)?))
}

/// `MIN..MAX` neighbours within reach for the adaptive radius: 1 ≤ MIN and
/// MIN + 2 ≤ MAX ≤ 1000.
pub fn parse_neighbours(s: &str) -> Result<(usize, usize), String> {
    let (lo, hi) = parse_range(s, "MIN..MAX")?;
    if lo == 0 || hi < lo + 2 || hi > 1000 {
        return Err(format!("{s:?}: need 1 <= MIN and MIN + 2 <= MAX <= 1000"));
    }
    Ok((lo as usize, hi as usize))
}

/// A heartbeat in milliseconds, if within the protocol's bounds.
pub fn check_heartbeat(ms: u64) -> Result<u64, String> {
    if HEARTBEAT_MS.contains(&ms) {
        Ok(ms)
    } else {
        Err(format!(
            "heartbeat {ms} ms: must be within {}..={}",
            HEARTBEAT_MS.start(),
            HEARTBEAT_MS.end()
        ))
    }
}

/// `--heartbeat-ms`: whole milliseconds within the protocol's bounds.
pub fn heartbeat_ms(s: &str) -> Result<u64, String> {
    let ms = s
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{s:?} is not a whole number of milliseconds"))?;
    check_heartbeat(ms)
}

/// Two finite numbers separated by a comma: `X,Y` or `W,H`.
pub fn parse_pair(s: &str) -> Result<(f32, f32), String> {
    let (a, b) = s.split_once(',').ok_or("expected two numbers: A,B")?;
    let a: f32 = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not a number"))?;
    let b: f32 = b
        .trim()
        .parse()
        .map_err(|_| format!("{b:?} is not a number"))?;
    if !(a.is_finite() && b.is_finite()) {
        return Err("numbers must be finite".into());
    }
    Ok((a, b))
}

/// A world size `W,H` with positive sides.
pub fn parse_world(s: &str) -> Result<World, String> {
    let (w, h) = parse_pair(s)?;
    let world = World::new(w, h);
    if !world.is_valid() {
        return Err("world sides must be positive and finite".into());
    }
    Ok(world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_worlds_reject_bad_input() {
        assert_eq!(parse_pair(" 1.5, -2 "), Ok((1.5, -2.0)));
        assert!(parse_pair("1,NaN").is_err());
        assert!(parse_pair("12").is_err());
        assert!(parse_pair("a,2").is_err());
        assert_eq!(parse_world("800,600"), Ok(World::new(800.0, 600.0)));
        assert!(parse_world("0,5").is_err());
        assert!(parse_world("-1,5").is_err());
    }

    #[test]
    fn neighbour_bounds_are_checked() {
        assert_eq!(parse_neighbours("8..40"), Ok((8, 40)));
        assert_eq!(parse_neighbours(" 1 .. 3"), Ok((1, 3)));
        for bad in ["0..10", "10..11", "10..5", "8-40", "a..9", "1..5000"] {
            assert!(parse_neighbours(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_heartbeat_is_whole_milliseconds_within_the_protocols_bounds() {
        assert_eq!(heartbeat_ms(" 2000 "), Ok(2_000));
        assert_eq!(heartbeat_ms("250"), Ok(250));
        for bad in ["249", "30001", "1.5", "", "-1"] {
            assert!(heartbeat_ms(bad).is_err(), "{bad}");
        }
    }
}
