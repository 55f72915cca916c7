//! Every interleaving of the sessions' steps that keeps each session's own order, in the order
//! isolationtester runs them when a spec names no permutation: depth first, taking the next step of
//! the first session that has one left, then of the second, and so on.

use super::model::{Permutation, PermutationStep, Spec, StepRef};

/// All of `spec`'s interleavings (the multinomial number of them: 3 sessions of 3 steps give 1680).
pub(crate) fn all(spec: &Spec) -> Vec<Permutation> {
    let mut taken = vec![0; spec.sessions.len()];
    let mut current = Vec::new();
    let mut out = Vec::new();
    recurse(spec, &mut taken, &mut current, &mut out);
    out
}

fn recurse(spec: &Spec, taken: &mut [usize], current: &mut Vec<PermutationStep>, out: &mut Vec<Permutation>) {
    let mut found = false;
    for session in 0..spec.sessions.len() {
        let index = taken[session];
        let Some(step) = spec.sessions[session].steps.get(index) else { continue };
        current.push(PermutationStep {
            name: step.name.clone(),
            step: StepRef { session, index },
            blockers: Vec::new(),
        });
        taken[session] += 1;
        recurse(spec, taken, current, out);
        taken[session] -= 1;
        current.pop();
        found = true;
    }
    if !found {
        out.push(Permutation { steps: current.clone() });
    }
}

/// How many interleavings `spec` has, without listing them (saturating): a spec whose count is
/// too large to run is refused before anything starts.
pub fn count(spec: &Spec) -> u128 {
    // Multinomial: (sum n_i)! / prod(n_i!), built up one session at a time as binomials.
    let mut total: u128 = 1;
    let mut placed: u128 = 0;
    for session in &spec.sessions {
        let n = session.steps.len() as u128;
        for k in 1..=n {
            total = total.saturating_mul(placed + k) / k;
        }
        placed += n;
    }
    total
}
