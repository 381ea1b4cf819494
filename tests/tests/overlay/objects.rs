//! World objects in the simulator: held by the peers nearest them, seen by
//! everyone within radius, lost by nobody, while everyone walks.

use peerworld_protocol::sim::Sim;

use super::walkers;

#[test]
fn objects_stay_readable_and_visible_while_everyone_walks_and_churns() {
    // 300 walkers at the density of 1 000 in 1200², one object per peer,
    // each edited about once a minute; with and without churn.
    for (seed, churn) in [(2, 0.0), (3, 0.002)] {
        let mut cfg = walkers(300, 660.0, seed, 100, 1);
        cfg.objects = 300;
        cfg.churn = churn;
        let r = Sim::new(cfg).run();
        let readable = r.objects_readable.expect("objects placed");
        let visible = r.objects_visible.expect("objects placed");
        assert_eq!(r.objects_lost, Some(0), "seed {seed}: {r:?}");
        assert!(readable >= 0.999, "seed {seed}: readable {readable}: {r:?}");
        assert!(visible >= 0.998, "seed {seed}: visible {visible}: {r:?}");
        assert!(r.object_edits.unwrap_or(0) > 0, "{r:?}");
    }
}

#[test]
fn a_tenth_of_the_peers_crashing_at_once_loses_no_object() {
    let mut cfg = walkers(300, 660.0, 4, 100, 10);
    cfg.objects = 300;
    let from = cfg.measure_from.unwrap();
    let mut sim = Sim::new(cfg);
    sim.run_ticks(from + 10);
    let copies = sim.object_copies();
    assert!(
        copies.iter().all(|&n| n >= 3),
        "an object with fewer than three holders: {:?}",
        copies.iter().min()
    );
    let crashed = sim.crash_random(30);
    assert_eq!(crashed.len(), 30);
    sim.run_ticks(60);
    assert_eq!(sim.objects_lost(), 0);
    // And they are held by three or more again.
    let copies = sim.object_copies();
    assert!(copies.iter().all(|&n| n >= 3), "{:?}", copies.iter().min());
}
