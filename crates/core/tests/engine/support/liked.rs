//! Likes as the liker tests make and read them: a fixed answer, and the counts of the likes made.

use racelab_core::likes::Liked;

/// The answer a test's likes are stored with: `{"like": n}`.
pub fn answer(like: i64) -> (u16, String) {
    (200, format!("{{\"like\":{like}}}"))
}

/// The count of each like made, in order; any other result fails the test.
pub fn made_counts(results: &[Liked]) -> Vec<i64> {
    results
        .iter()
        .map(|liked| match liked {
            Liked::Made { like, .. } => *like,
            other => panic!("expected a made like, got {other:?}"),
        })
        .collect()
}
