//! Parsers for the command-line values every binary shares (`X,Y`, `W,H`).

use peerworld_protocol::World;

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
}
