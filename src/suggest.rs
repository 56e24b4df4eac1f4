//! "Did you mean ...?": the known name closest to a misspelt one.

/// The candidate closest to `name` by edit distance, if reasonably close.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| {
            (
                datafusion::common::utils::datafusion_strsim::levenshtein(name, c),
                c,
            )
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_near_miss_is_suggested_and_a_far_one_is_not() {
        let names = ["name", "status", "expires_on"];
        assert_eq!(closest("naem", names.iter().copied()), Some("name"));
        assert_eq!(
            closest("expires", names.iter().copied()),
            Some("expires_on")
        );
        assert_eq!(closest("policies", names.iter().copied()), None);
    }
}
