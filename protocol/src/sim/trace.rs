//! Movement traces: parsing the CSV and what replay needs of it.

use super::Sim;
use crate::geometry::Point;
use crate::mobility::Walker;

/// A movement trace: for each step, the rows `(peer, x, y)` of that step.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// `steps[s]` lists the peers present at step `s` and their positions.
    pub steps: Vec<Vec<(u32, Point)>>,
}

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The header is not `peer,step,x,y`.
    #[error("trace header must be `peer,step,x,y`, found {0:?}")]
    Header(String),
    /// A row could not be parsed.
    #[error("trace line {line}: {why}")]
    Row {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// Steps a trace may run ahead of its first row.
const MAX_STEP_GAP: usize = 100_000;
/// Steps each further row lets the trace run ahead (a trace's steps are
/// far fewer than its rows: every step lists every peer present).
const MAX_STEPS_PER_ROW: usize = 16;

impl Trace {
    /// Parses the CSV text of a trace (see `traces/README.md`).
    pub fn parse(text: &str) -> Result<Self, TraceError> {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("").trim();
        if header != "peer,step,x,y" {
            return Err(TraceError::Header(header.to_string()));
        }
        let mut steps: Vec<Vec<(u32, Point)>> = Vec::new();
        for (n, line) in lines.enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| TraceError::Row {
                line: n + 2,
                why: why.to_string(),
            };
            let mut it = line.split(',');
            let mut field = |name: &str| it.next().ok_or_else(|| bad(&format!("missing {name}")));
            let peer: u32 = field("peer")?
                .trim()
                .parse()
                .map_err(|_| bad("peer is not an integer"))?;
            let step: usize = field("step")?
                .trim()
                .parse()
                .map_err(|_| bad("step is not an integer"))?;
            let x: f32 = field("x")?
                .trim()
                .parse()
                .map_err(|_| bad("x is not a number"))?;
            let y: f32 = field("y")?
                .trim()
                .parse()
                .map_err(|_| bad("y is not a number"))?;
            if !x.is_finite() || !y.is_finite() {
                return Err(bad("position is not finite"));
            }
            // Bounded by the rows read so far, so a few bytes cannot make
            // us allocate millions of empty steps.
            if step > MAX_STEP_GAP + MAX_STEPS_PER_ROW * n {
                return Err(bad(&format!(
                    "step {step} is too far ahead of the rows before it (at most {} here)",
                    MAX_STEP_GAP + MAX_STEPS_PER_ROW * n
                )));
            }
            if steps.len() <= step {
                steps.resize_with(step + 1, Vec::new);
            }
            steps[step].push((peer, Point::new(x, y)));
        }
        Ok(Self { steps })
    }
}

/// The last step at which a peer first appears (when the trace's joins end).
pub(super) fn trace_last_entry(t: &Trace) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut last = 0;
    for (s, rows) in t.steps.iter().enumerate() {
        for (p, _) in rows {
            if seen.insert(*p) {
                last = s as u64;
            }
        }
    }
    last
}

impl Sim {
    /// Replays one step of the trace: leaves, moves and newcomers.
    pub(super) fn trace_step(&mut self) {
        let Some(trace) = self.cfg.trace.as_ref() else {
            return;
        };
        let step = self.tick as usize;
        let rows: Vec<(u32, Point)> = trace.steps.get(step).cloned().unwrap_or_default();
        let prev: Vec<u32> = if step > 0 {
            trace
                .steps
                .get(step - 1)
                .map(|r| r.iter().map(|x| x.0).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // Leaves: present at the previous step, absent now.
        let present: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.0).collect();
        for p in prev {
            if !present.contains(&p)
                && let Some(&slot) = self.by_trace.get(&p)
            {
                let id = self.slots[slot].peer.id();
                self.leave(&id);
                self.by_trace.remove(&p);
            }
        }
        for (p, pos) in rows {
            match self.by_trace.get(&p) {
                Some(&slot) => {
                    if self.slots[slot].alive {
                        self.slots[slot].walker = Walker::new(self.world.wrap(pos));
                        self.slots[slot].peer.move_to(pos, self.now);
                        self.flush(slot);
                    }
                }
                None => {
                    let id = self.spawn(pos);
                    let slot = self.by_id[&id];
                    self.by_trace.insert(p, slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_entry_is_the_step_of_the_last_newcomer() {
        let t =
            Trace::parse("peer,step,x,y\n1,0,1,1\n2,0,2,2\n1,1,1,2\n3,3,5,5\n2,4,2,3\n").unwrap();
        assert_eq!(trace_last_entry(&t), 3);
    }

    #[test]
    fn a_step_far_ahead_of_the_rows_is_refused_before_anything_is_allocated() {
        // "0,9999999,0,0" once made 10 million empty steps (240 MB) from
        // 27 bytes of input.
        let e = Trace::parse("peer,step,x,y\n0,9999999,0,0\n").unwrap_err();
        assert!(e.to_string().contains("too far ahead"), "{e}");
        let rows: String = (0..100).map(|s| format!("0,{s},1,1\n")).collect();
        let t = Trace::parse(&format!("peer,step,x,y\n{rows}0,101600,1,1\n")).unwrap();
        assert_eq!(t.steps.len(), 101_601);
        assert!(Trace::parse(&format!("peer,step,x,y\n{rows}0,101601,1,1\n")).is_err());
    }
}
