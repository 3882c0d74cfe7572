//! A bitset over node slots: the candidate set of one decision. Filters narrow it with
//! word-wide `&` and `&!`, so intersecting with "healthy" or "not full" costs n/64 words.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeSet {
    words: Vec<u64>,
}

impl NodeSet {
    /// Makes room for `slots` slots (never shrinks).
    pub fn grow(&mut self, slots: usize) {
        let n = slots.div_ceil(64);
        if self.words.len() < n {
            self.words.resize(n, 0);
        }
    }

    pub fn insert(&mut self, i: u32) {
        let w = (i / 64) as usize;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (i % 64);
    }

    pub fn remove(&mut self, i: u32) {
        if let Some(w) = self.words.get_mut((i / 64) as usize) {
            *w &= !(1 << (i % 64));
        }
    }

    pub fn set(&mut self, i: u32, on: bool) {
        if on {
            self.insert(i)
        } else {
            self.remove(i)
        }
    }

    pub fn contains(&self, i: u32) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    pub fn copy_from(&mut self, other: &NodeSet) {
        self.words.clear();
        self.words.extend_from_slice(&other.words);
    }

    /// `self &= other`.
    pub fn intersect(&mut self, other: &NodeSet) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
        }
    }

    /// `self &= !other`.
    pub fn subtract(&mut self, other: &NodeSet) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= !o;
        }
    }

    /// `self |= other`.
    pub fn union(&mut self, other: &NodeSet) {
        self.grow(other.words.len() * 64);
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ops() {
        let mut a = NodeSet::default();
        for i in [0, 5, 64, 130] {
            a.insert(i);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 5, 64, 130]);
        let mut b = NodeSet::default();
        b.insert(5);
        b.insert(130);
        let mut c = a.clone();
        c.intersect(&b);
        assert_eq!(c.iter().collect::<Vec<_>>(), [5, 130]);
        a.subtract(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 64]);
        assert_eq!(a.len(), 2);
        a.remove(0);
        a.remove(64);
        assert!(a.is_empty());
        assert!(!a.contains(5) && b.contains(5));
    }
}
