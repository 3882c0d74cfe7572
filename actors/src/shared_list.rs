//! Finding what changed between two versions of a list whose items are shared (`Arc`).
//!
//! A node's container table and its offers are rebuilt on every change by copying pointers,
//! and keep their items in place; comparing the two versions position by position with
//! pointer equality finds the few items that can have changed without hashing every ID.
//! Callers then match those few by ID.

use std::sync::Arc;

/// The items of `old` and of `new` that are not the same shared item at the same position:
/// every added, removed or replaced item is among them (plus items that moved).
pub fn positional_changes<'a, T>(
    old: &'a [Arc<T>],
    new: &'a [Arc<T>],
) -> (Vec<&'a Arc<T>>, Vec<&'a Arc<T>>) {
    let (mut gone, mut came) = (Vec::new(), Vec::new());
    for i in 0..old.len().max(new.len()) {
        match (old.get(i), new.get(i)) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => {}
            (a, b) => {
                gone.extend(a);
                came.extend(b);
            }
        }
    }
    (gone, came)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_in_place() {
        let (a, b, c, d) = (Arc::new(1), Arc::new(2), Arc::new(3), Arc::new(4));
        let old = vec![a.clone(), b.clone(), c.clone()];
        let new = vec![a.clone(), c.clone(), b.clone(), d.clone()];
        let (gone, came) = positional_changes(&old, &new);
        assert_eq!(gone.iter().map(|x| ***x).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(came.iter().map(|x| ***x).collect::<Vec<_>>(), vec![3, 2, 4]);
        let (gone, came) = positional_changes(&old, &old);
        assert!(gone.is_empty() && came.is_empty());
    }
}
