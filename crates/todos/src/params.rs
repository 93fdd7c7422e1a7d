//! SQL parameter numbers (`$1`, `$2`, …), written one way for every statement that binds a
//! list: an `IN (…)` list, or many rows of one `INSERT`.

/// `$first, …, $(first + n - 1)`.
pub(crate) fn numbered(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` rows of `width` parameters each, numbered on across the rows from `$1`; `row` writes
/// one row given its first parameter's number.
pub(crate) fn rows(n: usize, width: usize, row: impl Fn(usize) -> String) -> String {
    (0..n)
        .map(|i| row(i * width + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_number_on_across_rows() {
        assert_eq!(numbered(3, 2), "$3, $4");
        let pairs = rows(3, 2, |p| format!("({})", numbered(p, 2)));
        assert_eq!(pairs, "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(rows(2, 3, |p| format!("(${p}, x)")), "($1, x), ($4, x)");
    }
}
